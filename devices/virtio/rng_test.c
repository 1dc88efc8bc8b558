// SPDX-License-Identifier: MIT
/*
 * virtio-rng's queue path, with the transport faked at link time: every
 * writable buffer comes back full of entropy, and one kick takes at most
 * VQ_BURST of them, so a driver that keeps its ring full cannot hold the
 * I/O thread.
 */
#include <glib.h>
#include <string.h>

#include "devices/virtio/rng.h"
#include "devices/virtio/test_ring.h"
#include "vmm/layout.h"

#define QSIZE   1024
#define NBUF    300 /* more than one kick's budget */
#define BUFLEN  16
#define DESC    (LAYOUT_RAM_START + 0x1000)
#define BUFS    (LAYOUT_RAM_START + 0x10000)
#define FAKE_T  ((struct virtio_pci *)&fake_transport)
#define F_WRITE 2

static int fake_transport;
static gint wakes;

void virtio_pci_wake(struct virtio_pci *t, unsigned int index)
{
	g_assert_true(t == FAKE_T);
	g_assert_cmpuint(index, ==, 0);
	g_atomic_int_inc(&wakes);
}

void virtio_pci_used(struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
}

struct ring {
	struct guest_memory gm;
	struct virtqueue vq;
};

/* 'nbuf' one-descriptor buffers of BUFLEN bytes, zeroed: 'writable' or not. */
static void ring_setup(struct ring *r, uint16_t nbuf, bool writable)
{
	g_assert_true(guest_memory_alloc(&r->gm, 1 * MiB));
	uint64_t avail_at = DESC + 16ULL * QSIZE, used_at = avail_at + 4 + 2ULL * QSIZE;
	g_assert_true(vq_init(&r->vq, &r->gm, QSIZE, DESC, avail_at, used_at));
	uint16_t *avail = gm_ptr(&r->gm, avail_at, 4 + 2ULL * QSIZE);
	for (uint16_t i = 0; i < nbuf; i++) {
		uint64_t at = BUFS + BUFLEN * (uint64_t)i;

		memset(gm_ptr(&r->gm, at, BUFLEN), 0, BUFLEN);
		test_put_desc(&r->gm, DESC, i, at, BUFLEN, writable ? F_WRITE : 0, 0);
		avail[2 + i] = i;
	}
	avail[1] = nbuf;
}

static uint16_t used_idx(struct ring *r)
{
	return *(uint16_t *)gm_ptr(&r->gm, r->vq.used_addr + 2, 2);
}

/* Used element i: the buffer's id and the length the device wrote. */
static uint32_t used_len(struct ring *r, uint16_t i)
{
	uint32_t len;

	memcpy(&len, gm_ptr(&r->gm, r->vq.used_addr + 4 + 8ULL * i + 4, 4), 4);
	return len;
}

static void test_fills(void)
{
	struct ring r;

	ring_setup(&r, 4, true);
	virtio_rng_ops.queue_notify(NULL, FAKE_T, &r.vq, 0);
	g_assert_cmpuint(used_idx(&r), ==, 4);
	for (uint16_t i = 0; i < 4; i++) {
		static const uint8_t zero[BUFLEN];
		g_assert_cmpuint(used_len(&r, i), ==, BUFLEN);
		/* 128 random bits all zero: not in this universe's lifetime. */
		g_assert_true(memcmp(gm_ptr(&r.gm, BUFS + BUFLEN * i, BUFLEN), zero, BUFLEN) != 0);
	}
	guest_memory_free(&r.gm);
}

/* A buffer the device may not write comes back with nothing written. */
static void test_read_only_buffer(void)
{
	struct ring r;

	ring_setup(&r, 1, false);
	virtio_rng_ops.queue_notify(NULL, FAKE_T, &r.vq, 0);
	g_assert_cmpuint(used_idx(&r), ==, 1);
	g_assert_cmpuint(used_len(&r, 0), ==, 0);
	guest_memory_free(&r.gm);
}

static void test_budget(void)
{
	struct ring r;

	ring_setup(&r, NBUF, true);
	g_atomic_int_set(&wakes, 0);
	virtio_rng_ops.queue_notify(NULL, FAKE_T, &r.vq, 0);
	g_assert_cmpuint(used_idx(&r), ==, VQ_BURST);
	g_assert_cmpint(g_atomic_int_get(&wakes), ==, 1);
	virtio_rng_ops.queue_notify(NULL, FAKE_T, &r.vq, 0);
	g_assert_cmpuint(used_idx(&r), ==, NBUF);
	g_assert_cmpint(g_atomic_int_get(&wakes), ==, 1);
	guest_memory_free(&r.gm);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-rng/fills", test_fills);
	g_test_add_func("/virtio-rng/read-only-buffer", test_read_only_buffer);
	g_test_add_func("/virtio-rng/budget", test_budget);
	return g_test_run();
}
