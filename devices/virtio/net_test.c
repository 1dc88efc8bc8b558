// SPDX-License-Identifier: MIT
#include <glib.h>
#include <linux/virtio_net.h>
#include <string.h>

#include "devices/virtio/net.h"
#include "devices/virtio/test_ring.h"
#include "vmm/layout.h"

#define QSIZE  16
#define DESC   (LAYOUT_RAM_START + 0x1000)
#define AVAIL  (LAYOUT_RAM_START + 0x2000)
#define USED   (LAYOUT_RAM_START + 0x3000)
#define DATA   (LAYOUT_RAM_START + 0x10000)
#define BIT(f) (1ULL << (f))

/* ---- transmit checks: chains made of host buffers --------------------------- */

struct tx {
	struct virtio_net_hdr_v1 hdr;
	uint8_t frame[2048];
	struct vq_chain chain;
};

static void tx_chain(struct tx *t, size_t frame_len)
{
	memset(&t->chain, 0, sizeof(t->chain));
	t->chain.seg[0] = (struct vq_seg){&t->hdr, sizeof(t->hdr), false};
	t->chain.seg[1] = (struct vq_seg){t->frame, (uint32_t)frame_len, false};
	t->chain.nseg = 2;
	t->chain.out_len = (uint32_t)(sizeof(t->hdr) + frame_len);
}

static enum net_tx_verdict check(struct tx *t, uint64_t f)
{
	size_t len = 0;
	enum net_tx_verdict v = virtio_net_check_tx(&t->chain, f, &len);

	if (v == NET_TX_OK)
		g_assert_cmpuint(len, ==, t->chain.out_len - VIRTIO_NET_HDR_BYTES);
	return v;
}

static void test_tx_plain(void)
{
	struct tx t = {0};

	g_assert_cmpuint(sizeof(t.hdr), ==, VIRTIO_NET_HDR_BYTES);
	tx_chain(&t, 60);
	g_assert_cmpint(check(&t, 0), ==, NET_TX_OK);
	tx_chain(&t, NET_MIN_FRAME);
	g_assert_cmpint(check(&t, 0), ==, NET_TX_OK);
}

static void test_tx_bad_lengths(void)
{
	struct tx t = {0};

	tx_chain(&t, NET_MIN_FRAME - 1);
	g_assert_cmpint(check(&t, 0), ==, NET_TX_TRUNCATED);
	/* A header alone, split over two buffers, is still truncated. */
	tx_chain(&t, 0);
	g_assert_cmpint(check(&t, 0), ==, NET_TX_TRUNCATED);
	/* The lengths the chain claims decide, not the buffers behind them. */
	tx_chain(&t, 60);
	t.chain.out_len = VIRTIO_NET_HDR_BYTES + NET_MAX_FRAME + 1;
	g_assert_cmpint(check(&t, 0), ==, NET_TX_OVERSIZE);
}

static void test_tx_writable_buffer(void)
{
	struct tx t = {0};

	tx_chain(&t, 60);
	t.chain.seg[1].device_writable = true;
	t.chain.out_len = sizeof(t.hdr);
	t.chain.in_len = 60;
	g_assert_cmpint(check(&t, 0), ==, NET_TX_BAD_CHAIN);
}

static void test_tx_checksum_offload(void)
{
	struct tx t = {0};

	tx_chain(&t, 100);
	t.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	t.hdr.csum_start = 34;
	t.hdr.csum_offset = 16;
	g_assert_cmpint(check(&t, 0), ==, NET_TX_BAD_HEADER); /* CSUM not negotiated */
	g_assert_cmpint(check(&t, BIT(VIRTIO_NET_F_CSUM)), ==, NET_TX_OK);
	t.hdr.csum_start = 90; /* 90 + 16 + 2 > 100 */
	g_assert_cmpint(check(&t, BIT(VIRTIO_NET_F_CSUM)), ==, NET_TX_BAD_HEADER);
	t.hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID; /* the device's flag, not the driver's */
	g_assert_cmpint(check(&t, BIT(VIRTIO_NET_F_CSUM)), ==, NET_TX_BAD_HEADER);
}

static void test_tx_segmentation_offload(void)
{
	struct tx t = {0};
	uint64_t tso4 = BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4);

	tx_chain(&t, 1500);
	t.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	t.hdr.csum_start = 34;
	t.hdr.csum_offset = 16;
	t.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	t.hdr.gso_size = 1448;
	g_assert_cmpint(check(&t, BIT(VIRTIO_NET_F_CSUM)), ==, NET_TX_BAD_HEADER);
	g_assert_cmpint(check(&t, tso4), ==, NET_TX_OK);
	t.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	g_assert_cmpint(check(&t, tso4), ==, NET_TX_BAD_HEADER);
	g_assert_cmpint(check(&t, tso4 | BIT(VIRTIO_NET_F_HOST_TSO6)), ==, NET_TX_OK);
	t.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	g_assert_cmpint(check(&t, tso4), ==, NET_TX_BAD_HEADER);
	g_assert_cmpint(check(&t, tso4 | BIT(VIRTIO_NET_F_HOST_ECN)), ==, NET_TX_OK);
	t.hdr.gso_type = VIRTIO_NET_HDR_GSO_UDP; /* UFO is never offered */
	g_assert_cmpint(check(&t, ~0ULL), ==, NET_TX_BAD_HEADER);
	t.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	t.hdr.gso_size = 0;
	g_assert_cmpint(check(&t, tso4), ==, NET_TX_BAD_HEADER);
	t.hdr.gso_size = 1448;
	t.hdr.flags = 0; /* segmentation without a checksum to fill in */
	g_assert_cmpint(check(&t, tso4), ==, NET_TX_BAD_HEADER);
	t.hdr.gso_type = VIRTIO_NET_HDR_GSO_NONE | VIRTIO_NET_HDR_GSO_ECN;
	g_assert_cmpint(check(&t, ~0ULL), ==, NET_TX_BAD_HEADER);
}

/*
 * What 5.1.6.2 lets a driver send, written out apart from the device's
 * code: the flags only NEEDS_CSUM, whose checksum lies in the frame and
 * needs VIRTIO_NET_F_CSUM; segmentation only TCP over IPv4 or IPv6, each
 * with its feature, a checksum to fill in and a segment size; ECN only
 * with segmentation and HOST_ECN.
 */
static bool tx_allowed(const struct virtio_net_hdr_v1 *h, uint64_t f, size_t frame)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	bool csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;

	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return false;
	if (csum &&
	    (!(f & BIT(VIRTIO_NET_F_CSUM)) || (size_t)h->csum_start + h->csum_offset + 2 > frame))
		return false;
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    (gso == VIRTIO_NET_HDR_GSO_NONE || !(f & BIT(VIRTIO_NET_F_HOST_ECN))))
		return false;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return (f & BIT(VIRTIO_NET_F_HOST_TSO4)) && csum && h->gso_size;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return (f & BIT(VIRTIO_NET_F_HOST_TSO6)) && csum && h->gso_size;
	default:
		return false;
	}
}

/*
 * Headers and chains made at random (the same every run), the header
 * split anywhere over the chain's first buffers: the device's verdict is
 * what the length rules and tx_allowed say.
 */
static void test_tx_hostile_headers(void)
{
	static const uint8_t gsos[] = {VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4,
	                               VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_UDP};
	GRand *g = g_rand_new_with_seed(0x7478);
	unsigned int ok = 0;

	for (int n = 0; n < 20000; n++) {
		struct tx t = {0};
		struct virtio_net_hdr_v1 *h = &t.hdr;
		uint64_t f = (uint64_t)g_rand_int(g) << 32 | g_rand_int(g);
		size_t frame = g_rand_int_range(g, 0, 8) ? (size_t)g_rand_int_range(g, 0, 2049)
		                                         : (size_t)g_rand_int_range(g, 0, 70000);
		h->flags = g_rand_int_range(g, 0, 4) ? (uint8_t)g_rand_int_range(g, 0, 2)
		                                     : (uint8_t)g_rand_int(g);
		h->gso_type = (uint8_t)(gsos[g_rand_int_range(g, 0, 4)] |
		                        (g_rand_int_range(g, 0, 4) ? 0 : VIRTIO_NET_HDR_GSO_ECN));
		h->gso_size =
		    g_rand_int_range(g, 0, 4) ? 1448 : (uint16_t)g_rand_int_range(g, 0, 2);
		h->csum_start = (uint16_t)g_rand_int_range(g, 0, 2100);
		h->csum_offset = (uint16_t)g_rand_int_range(g, 0, 20);
		tx_chain(&t, MIN(frame, sizeof(t.frame)));
		t.chain.out_len = (uint32_t)(sizeof(t.hdr) + frame); /* what the chain claims */
		/* The header split in two at any byte: the device must gather it. */
		uint32_t cut = (uint32_t)g_rand_int_range(g, 1, sizeof(t.hdr) + 1);
		if (cut < sizeof(t.hdr)) {
			t.chain.seg[2] = t.chain.seg[1];
			t.chain.seg[1] =
			    (struct vq_seg){(uint8_t *)&t.hdr + cut, sizeof(t.hdr) - cut, false};
			t.chain.seg[0].len = cut;
			t.chain.nseg = 3;
		}
		if (!g_rand_int_range(g, 0, 16))
			t.chain.in_len = 1;
		enum net_tx_verdict want = t.chain.in_len            ? NET_TX_BAD_CHAIN
		                           : frame < NET_MIN_FRAME   ? NET_TX_TRUNCATED
		                           : frame > NET_MAX_FRAME   ? NET_TX_OVERSIZE
		                           : tx_allowed(h, f, frame) ? NET_TX_OK
		                                                     : NET_TX_BAD_HEADER;
		g_assert_cmpint(check(&t, f), ==, want);
		ok += want == NET_TX_OK;
	}
	g_assert_cmpuint(ok, >, 1000);
	g_rand_free(g);
}

/* ---- receive: a real split ring in a fake guest memory ----------------------- */

struct rx {
	struct guest_memory gm;
	struct virtqueue vq;
	struct vq_chain scratch;
	struct vq_used used[QSIZE];
	uint8_t frame[8192];
	uint8_t hdr[VIRTIO_NET_HDR_BYTES];
};

static void set_desc(struct rx *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
	test_put_desc(&r->gm, DESC, i, addr, len, flags, next);
}

static uint16_t *avail(struct rx *r, unsigned int field)
{
	return gm_ptr(&r->gm, AVAIL + 2ULL * field, 2);
}

static uint16_t used_idx(struct rx *r)
{
	return *(uint16_t *)gm_ptr(&r->gm, USED + 2, 2);
}

static uint32_t used_len(struct rx *r, unsigned int slot)
{
	return *(uint32_t *)gm_ptr(&r->gm, USED + 4 + 8ULL * slot + 4, 4);
}

/* Publishes the chain at 'head' as the next available entry. */
static void publish(struct rx *r, uint16_t head)
{
	uint16_t idx = *avail(r, 1);

	*avail(r, 2 + idx % QSIZE) = head;
	*avail(r, 1) = (uint16_t)(idx + 1);
}

/* Offers buffer 'i' (one writable descriptor of 'len' bytes at DATA + i * 4 KiB). */
static void offer(struct rx *r, uint16_t i, uint32_t len)
{
	set_desc(r, i, DATA + 4096ULL * i, len, 2 /* WRITE */, 0);
	publish(r, i);
}

static uint8_t *buf(struct rx *r, uint16_t i)
{
	return gm_ptr(&r->gm, DATA + 4096ULL * i, 4096);
}

static void rx_setup(struct rx *r)
{
	g_assert_true(guest_memory_alloc(&r->gm, 1 * MiB));
	g_assert_true(vq_init(&r->vq, &r->gm, QSIZE, DESC, AVAIL, USED));
	for (size_t i = 0; i < sizeof(r->frame); i++)
		r->frame[i] = (uint8_t)(i * 7 + 3);
	memset(r->hdr, 0, sizeof(r->hdr));
	r->hdr[0] = VIRTIO_NET_HDR_F_DATA_VALID;
}

static int rx(struct rx *r, bool mergeable, size_t len)
{
	return virtio_net_rx_frame(&r->vq, mergeable, r->hdr, r->frame, len, &r->scratch, r->used,
	                           QSIZE);
}

static void test_rx_merged(void)
{
	struct rx r;

	rx_setup(&r);
	for (uint16_t i = 0; i < 4; i++)
		offer(&r, i, 1536);
	/* 12 + 4000 bytes: three buffers, published at once, num_buffers = 3. */
	g_assert_cmpint(rx(&r, true, 4000), ==, 1);
	g_assert_cmpuint(used_idx(&r), ==, 3);
	g_assert_cmpuint(used_len(&r, 0), ==, 1536);
	g_assert_cmpuint(used_len(&r, 1), ==, 1536);
	g_assert_cmpuint(used_len(&r, 2), ==, 4012 - 2 * 1536);
	struct virtio_net_hdr_v1 h;
	memcpy(&h, buf(&r, 0), sizeof(h));
	g_assert_cmpuint(h.flags, ==, VIRTIO_NET_HDR_F_DATA_VALID);
	g_assert_cmpuint(h.num_buffers, ==, 3);
	g_assert_true(memcmp(buf(&r, 0) + 12, r.frame, 1524) == 0);
	g_assert_true(memcmp(buf(&r, 1), r.frame + 1524, 1536) == 0);
	g_assert_true(memcmp(buf(&r, 2), r.frame + 1524 + 1536, 4000 - 1524 - 1536) == 0);
	/* The fourth buffer is still there for the next frame. */
	g_assert_cmpint(rx(&r, true, 100), ==, 1);
	g_assert_cmpuint(used_idx(&r), ==, 4);
	memcpy(&h, buf(&r, 3), sizeof(h));
	g_assert_cmpuint(h.num_buffers, ==, 1);
	guest_memory_free(&r.gm);
}

static void test_rx_waits_for_room(void)
{
	struct rx r;

	rx_setup(&r);
	offer(&r, 0, 1536);
	/* Not enough buffers: nothing is taken or published. */
	g_assert_cmpint(rx(&r, true, 4000), ==, 0);
	g_assert_cmpuint(used_idx(&r), ==, 0);
	g_assert_cmpuint(r.vq.last_avail_idx, ==, 0);
	g_assert_cmpint(rx(&r, true, 4000), ==, 0);
	offer(&r, 1, 1536);
	offer(&r, 2, 1536);
	g_assert_cmpint(rx(&r, true, 4000), ==, 1);
	g_assert_cmpuint(used_idx(&r), ==, 3);
	guest_memory_free(&r.gm);
}

/*
 * With EVENT_IDX, a frame that found too few buffers leaves avail_event at
 * the driver's index, so the driver's next buffer brings a kick. Left
 * behind the buffers it gave back, the driver would never kick again: a
 * stalled receive queue under load (seen with TAP and large frames).
 */
static void test_rx_asks_for_a_kick(void)
{
	struct rx r;

	rx_setup(&r);
	r.vq.event_idx = true;
	offer(&r, 0, 1536);
	g_assert_cmpint(rx(&r, true, 4000), ==, 0);
	uint16_t avail_event = *(uint16_t *)gm_ptr(&r.gm, USED + 4 + 8ULL * QSIZE, 2);
	g_assert_cmpuint(avail_event, ==, *avail(&r, 1));
	offer(&r, 1, 1536);
	offer(&r, 2, 1536);
	g_assert_cmpint(rx(&r, true, 4000), ==, 1);
	guest_memory_free(&r.gm);
}

static void test_rx_unmerged_too_small(void)
{
	struct rx r;

	rx_setup(&r);
	offer(&r, 0, 1536);
	/* Without merged buffers a frame must fit one chain, or it is dropped. */
	g_assert_cmpint(rx(&r, false, 4000), ==, -1);
	g_assert_cmpuint(used_idx(&r), ==, 0);
	g_assert_cmpuint(r.vq.last_avail_idx, ==, 0);
	g_assert_cmpint(rx(&r, false, 1000), ==, 1);
	g_assert_cmpuint(used_len(&r, 0), ==, 1012);
	guest_memory_free(&r.gm);
}

static void test_rx_too_big_for_the_ring(void)
{
	struct rx r;

	rx_setup(&r);
	for (uint16_t i = 0; i < QSIZE; i++)
		offer(&r, i, 64);
	/* 16 buffers of 64 bytes cannot take 8 KiB: dropped, the ring untouched. */
	g_assert_cmpint(rx(&r, true, 8192), ==, -1);
	g_assert_cmpuint(used_idx(&r), ==, 0);
	g_assert_cmpuint(r.vq.last_avail_idx, ==, 0);
	guest_memory_free(&r.gm);
}

static void test_rx_header_split(void)
{
	struct rx r;

	rx_setup(&r);
	/* One chain: a readable buffer to skip, 11 writable bytes, then the rest. */
	set_desc(&r, 1, DATA + 4096, 100, 1, 0);
	set_desc(&r, 0, DATA, 11, 1 | 2, 2);
	set_desc(&r, 2, DATA + 8192, 2048, 2, 0);
	*avail(&r, 2) = 1;
	*avail(&r, 1) = 1;
	memset(buf(&r, 1), 0xee, 100);
	g_assert_cmpint(rx(&r, true, 1000), ==, 1);
	g_assert_cmpuint(used_len(&r, 0), ==, 1012);
	/* num_buffers straddles the two writable buffers. */
	g_assert_cmpuint(buf(&r, 0)[10], ==, 1);
	g_assert_cmpuint(buf(&r, 2)[0], ==, 0);
	g_assert_cmpuint(buf(&r, 1)[0], ==, 0xee); /* the device never writes a readable buffer */
	g_assert_true(memcmp(buf(&r, 2) + 1, r.frame, 1000) == 0);
	guest_memory_free(&r.gm);
}

static void test_rx_broken_ring(void)
{
	struct rx r;

	rx_setup(&r);
	set_desc(&r, 0, 0xfff00000, 4096, 2, 0); /* outside guest RAM */
	*avail(&r, 2) = 0;
	*avail(&r, 1) = 1;
	g_assert_cmpint(rx(&r, true, 100), ==, -1);
	g_assert_true(r.vq.broken);
	guest_memory_free(&r.gm);
}

/*
 * The bytes a published chain got: its writable buffers' first 'len'
 * bytes, in order, appended at 'out' (descriptor i's buffer is at DATA +
 * i * 4 KiB, as hostile_buffers lays them out).
 */
static size_t gather(struct rx *r, uint16_t head, uint32_t len, uint8_t *out)
{
	size_t n = 0;

	for (uint16_t i = head;;) {
		const uint8_t *d = gm_ptr(&r->gm, DESC + 16ULL * i, 16);
		uint32_t blen;
		uint16_t flags, next;
		memcpy(&blen, d + 8, 4);
		memcpy(&flags, d + 12, 2);
		memcpy(&next, d + 14, 2);
		if (flags & 2) {
			uint32_t take = MIN(blen, len - (uint32_t)n);
			memcpy(out + n, buf(r, i), take);
			n += take;
		}
		if (!(flags & 1))
			return n;
		i = next;
	}
}

/*
 * Offers chains of one to three buffers until the ring's 16 descriptors
 * run out: a readable one first at times, then writable ones of any
 * length, empty ones included. Readable buffers are filled with 0xee.
 */
static void hostile_buffers(struct rx *r, GRand *g)
{
	uint16_t next = 0;

	while (next < QSIZE) {
		uint16_t head = next;
		int count = MIN(g_rand_int_range(g, 1, 4), QSIZE - next);
		for (int k = 0; k < count; k++, next++) {
			bool readable = k == 0 && count > 1 && !g_rand_int_range(g, 0, 4);
			uint32_t len = g_rand_int_range(g, 0, 4)
			                   ? (uint32_t)g_rand_int_range(g, 0, 2049)
			                   : (uint32_t)g_rand_int_range(g, 0, 16);
			set_desc(r, next, DATA + 4096ULL * next, len,
			         (readable ? 0 : 2) | (k < count - 1 ? 1 : 0),
			         (uint16_t)(next + 1));
			memset(buf(r, next), readable ? 0xee : 0x55, 4096);
		}
		publish(r, head);
	}
}

/*
 * Frames of any length into rings of buffers of any size, merged or not,
 * made at random (the same every run). A frame is delivered whole: the
 * used entries' bytes are the header, with num_buffers the count of them,
 * then the frame; or nothing is published. Readable buffers stay as they
 * were.
 */
static void test_rx_hostile_buffers(void)
{
	GRand *g = g_rand_new_with_seed(0x6e6574);
	uint8_t *got = g_malloc(QSIZE * 2048 + 64), want[sizeof(((struct rx *)0)->frame) + 12];
	unsigned int delivered = 0;

	for (int round = 0; round < 2000; round++) {
		struct rx r;
		rx_setup(&r);
		hostile_buffers(&r, g);
		bool mergeable = g_rand_int_range(g, 0, 2);
		for (int n = 0; n < 8; n++) {
			guint len = g_rand_int_range(g, 0, 8) ? (guint)g_rand_int_range(g, 0, 3000)
			                                      : (guint)g_rand_int_range(g, 0, 8193);
			uint16_t before = used_idx(&r);
			int got_frame = rx(&r, mergeable, len);
			uint16_t k = (uint16_t)(used_idx(&r) - before);
			if (got_frame != 1) {
				g_assert_cmpuint(k, ==, 0);
				if (got_frame < 0 && r.vq.broken)
					break;
				continue;
			}
			g_assert_cmpuint(k, >=, 1);
			g_assert_true(mergeable || k == 1);
			size_t total = 0;
			for (uint16_t j = 0; j < k; j++) {
				uint16_t slot = (uint16_t)(before + j) % QSIZE;
				uint32_t id = *(uint32_t *)gm_ptr(&r.gm, USED + 4 + 8ULL * slot, 4);
				g_assert_cmpuint(id, <, QSIZE);
				total += gather(&r, (uint16_t)id, used_len(&r, slot), got + total);
			}
			g_assert_cmpuint(total, ==, VIRTIO_NET_HDR_BYTES + len);
			memcpy(want, r.hdr, VIRTIO_NET_HDR_BYTES);
			memcpy(want + 10, &k, 2); /* num_buffers: 1 without merging (5.1.6.4.1) */
			memcpy(want + VIRTIO_NET_HDR_BYTES, r.frame, MIN(len, sizeof(r.frame)));
			g_assert_true(memcmp(got, want, total) == 0);
			delivered++;
		}
		for (uint16_t i = 0; i < QSIZE; i++) {
			const uint8_t *d = gm_ptr(&r.gm, DESC + 16ULL * i, 16);
			if (!(d[12] & 2))
				g_assert_cmpuint(buf(&r, i)[0], ==, 0xee); /* readable: untouched */
		}
		guest_memory_free(&r.gm);
	}
	g_assert_cmpuint(delivered, >, 1000);
	g_free(got);
	g_rand_free(g);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-net/tx/plain", test_tx_plain);
	g_test_add_func("/virtio-net/tx/bad-lengths", test_tx_bad_lengths);
	g_test_add_func("/virtio-net/tx/writable-buffer", test_tx_writable_buffer);
	g_test_add_func("/virtio-net/tx/checksum-offload", test_tx_checksum_offload);
	g_test_add_func("/virtio-net/tx/segmentation-offload", test_tx_segmentation_offload);
	g_test_add_func("/virtio-net/tx/hostile-headers", test_tx_hostile_headers);
	g_test_add_func("/virtio-net/rx/merged", test_rx_merged);
	g_test_add_func("/virtio-net/rx/waits-for-room", test_rx_waits_for_room);
	g_test_add_func("/virtio-net/rx/asks-for-a-kick", test_rx_asks_for_a_kick);
	g_test_add_func("/virtio-net/rx/unmerged-too-small", test_rx_unmerged_too_small);
	g_test_add_func("/virtio-net/rx/too-big-for-the-ring", test_rx_too_big_for_the_ring);
	g_test_add_func("/virtio-net/rx/header-split", test_rx_header_split);
	g_test_add_func("/virtio-net/rx/broken-ring", test_rx_broken_ring);
	g_test_add_func("/virtio-net/rx/hostile-buffers", test_rx_hostile_buffers);
	return g_test_run();
}
