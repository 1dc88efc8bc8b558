// SPDX-License-Identifier: MIT
#include <glib.h>
#include <string.h>

#include "devices/virtio/test_ring.h"
#include "devices/virtio/virtqueue.h"
#include "vmm/layout.h"

#define QSIZE 16
#define DESC  (LAYOUT_RAM_START + 0x1000)
#define AVAIL (LAYOUT_RAM_START + 0x2000)
#define USED  (LAYOUT_RAM_START + 0x3000)
#define DATA  (LAYOUT_RAM_START + 0x10000)
#define INDIR (LAYOUT_RAM_START + 0x8000)

struct fixture {
	struct guest_memory gm;
	struct virtqueue vq;
	struct vq_chain chain;
};

static void set_desc(struct fixture *f, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
	test_put_desc(&f->gm, table, i, addr, len, flags, next);
}

static uint16_t *avail(struct fixture *f, unsigned int field)
{
	return gm_ptr(&f->gm, AVAIL + 2ULL * field, 2);
}

/* Publishes 'head' as the next available entry. */
static void offer(struct fixture *f, uint16_t head)
{
	uint16_t idx = *avail(f, 1);

	*avail(f, 2 + idx % QSIZE) = head;
	*avail(f, 1) = (uint16_t)(idx + 1);
}

static void setup(struct fixture *f, gconstpointer data)
{
	g_assert_true(guest_memory_alloc(&f->gm, 1 * MiB));
	g_assert_true(vq_init(&f->vq, &f->gm, QSIZE, DESC, AVAIL, USED));
}

static void teardown(struct fixture *f, gconstpointer data)
{
	guest_memory_free(&f->gm);
}

static void test_single(struct fixture *f, gconstpointer data)
{
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 0);
	set_desc(f, DESC, 3, DATA, 512, 0, 0);
	offer(f, 3);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	g_assert_cmpuint(f->chain.head, ==, 3);
	g_assert_cmpuint(f->chain.nseg, ==, 1);
	g_assert_true(f->chain.seg[0].addr == gm_ptr(&f->gm, DATA, 512));
	g_assert_cmpuint(f->chain.out_len, ==, 512);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 0);
}

/*
 * A head is the device's from its pop to its push: published again before
 * that, the queue is broken; pushed, or given back (vq_unpop), it may come
 * again.
 */
static void test_head_in_flight(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 3, DATA, 512, 0, 0);
	offer(f, 3);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	vq_push(&f->vq, 3, 0);
	offer(f, 3);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	vq_unpop(&f->vq, &(struct vq_used){3, 0}, 1);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	offer(f, 3);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, -1);
	g_assert_true(f->vq.broken);
}

static void test_read_then_write(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 0, DATA, 16, 1, 5);
	set_desc(f, DESC, 5, DATA + 16, 4096, 1 | 2, 7);
	set_desc(f, DESC, 7, DATA + 8192, 1, 2, 0);
	offer(f, 0);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	g_assert_cmpuint(f->chain.nseg, ==, 3);
	g_assert_cmpuint(f->chain.out_len, ==, 16);
	g_assert_cmpuint(f->chain.in_len, ==, 4097);
	g_assert_true(f->chain.seg[2].device_writable);
	vq_push(&f->vq, 0, 4097);
	uint32_t *used = gm_ptr(&f->gm, USED, 12);
	g_assert_cmpuint(used[0] >> 16, ==, 1); /* used->idx */
	g_assert_cmpuint(used[1], ==, 0);       /* id */
	g_assert_cmpuint(used[2], ==, 4097);    /* len */
}

static void test_indirect(struct fixture *f, gconstpointer data)
{
	set_desc(f, INDIR, 0, DATA, 16, 1, 1);
	set_desc(f, INDIR, 1, DATA + 16, 100, 1 | 2, 2);
	set_desc(f, INDIR, 2, DATA + 116, 1, 2, 0);
	set_desc(f, DESC, 2, INDIR, 3 * 16, 4, 0);
	offer(f, 2);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	g_assert_cmpuint(f->chain.nseg, ==, 3);
	g_assert_cmpuint(f->chain.in_len, ==, 101);
	g_assert_false(f->vq.broken);
}

static void expect_broken(struct fixture *f, uint16_t head)
{
	offer(f, head);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, -1);
	g_assert_true(f->vq.broken);
	/* A broken queue stays broken until the device is reset. */
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, -1);
}

static void test_address_outside_ram(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 0, 2 * MiB, 16, 0, 0);
	expect_broken(f, 0);
}

static void test_length_crosses_end(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 0, MiB - 8, 16, 0, 0);
	expect_broken(f, 0);
}

static void test_huge_length(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 0, DATA, 0xffffffff, 0, 0);
	expect_broken(f, 0);
}

static void test_cycle(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 0, DATA, 16, 1, 1);
	set_desc(f, DESC, 1, DATA, 16, 1, 0); /* 0 -> 1 -> 0 -> ... */
	expect_broken(f, 0);
}

static void test_self_loop(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 4, DATA, 16, 1, 4);
	expect_broken(f, 4);
}

static void test_next_out_of_range(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 0, DATA, 16, 1, QSIZE);
	expect_broken(f, 0);
}

static void test_head_out_of_range(struct fixture *f, gconstpointer data)
{
	expect_broken(f, QSIZE + 3);
}

static void test_read_after_write(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 0, DATA, 16, 1 | 2, 1);
	set_desc(f, DESC, 1, DATA + 16, 16, 0, 0);
	expect_broken(f, 0);
}

/* An empty writable buffer counts as one: nothing readable may follow it. */
static void test_read_after_empty_write(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 0, DATA, 0, 1 | 2, 1);
	set_desc(f, DESC, 1, DATA + 16, 16, 0, 0);
	expect_broken(f, 0);
}

static void test_avail_runs_ahead(struct fixture *f, gconstpointer data)
{
	*avail(f, 1) = QSIZE + 1;
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, -1);
	g_assert_true(f->vq.broken);
}

static void test_bad_indirect(struct fixture *f, gconstpointer data)
{
	/* nested indirect */
	set_desc(f, INDIR, 0, INDIR, 16, 4, 0);
	set_desc(f, DESC, 0, INDIR, 16, 4, 0);
	expect_broken(f, 0);
}

static void test_indirect_with_next(struct fixture *f, gconstpointer data)
{
	set_desc(f, INDIR, 0, DATA, 16, 0, 0);
	set_desc(f, DESC, 0, INDIR, 16, 4 | 1, 1);
	set_desc(f, DESC, 1, DATA, 16, 0, 0);
	expect_broken(f, 0);
}

static void test_indirect_bad_length(struct fixture *f, gconstpointer data)
{
	set_desc(f, DESC, 0, INDIR, 20, 4, 0);
	expect_broken(f, 0);
}

static void test_indirect_cycle(struct fixture *f, gconstpointer data)
{
	set_desc(f, INDIR, 0, DATA, 16, 1, 1);
	set_desc(f, INDIR, 1, DATA, 16, 1, 0);
	set_desc(f, DESC, 0, INDIR, 32, 4, 0);
	expect_broken(f, 0);
}

static void test_wraparound(struct fixture *f, gconstpointer data)
{
	f->vq.last_avail_idx = 65534;
	f->vq.used_idx = 65534;
	*avail(f, 1) = 65534;
	*(uint16_t *)gm_ptr(&f->gm, USED + 2, 2) = 65534;
	set_desc(f, DESC, 1, DATA, 16, 0, 0);
	for (int i = 0; i < 4; i++) {
		offer(f, 1);
		g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
		vq_push(&f->vq, 1, 0);
	}
	g_assert_cmpuint(f->vq.last_avail_idx, ==, 2);
	g_assert_cmpuint(*(uint16_t *)gm_ptr(&f->gm, USED + 2, 2), ==, 2);
	g_assert_false(f->vq.broken);
}

static void test_no_interrupt_flag(struct fixture *f, gconstpointer data)
{
	vq_push(&f->vq, 0, 0);
	g_assert_true(vq_should_notify(&f->vq));
	g_assert_false(vq_should_notify(&f->vq)); /* nothing new since */
	*avail(f, 0) = 1;                         /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	vq_push(&f->vq, 0, 0);
	g_assert_false(vq_should_notify(&f->vq));
}

static void test_event_idx(struct fixture *f, gconstpointer data)
{
	uint16_t *used_event = avail(f, 2 + QSIZE);

	f->vq.event_idx = true;
	vq_push(&f->vq, 0, 0);                   /* used idx 1 */
	g_assert_true(vq_should_notify(&f->vq)); /* the first one always */
	*used_event = 3;                         /* "interrupt me when idx passes 3" */
	vq_push(&f->vq, 0, 0);                   /* 2 */
	g_assert_false(vq_should_notify(&f->vq));
	vq_push(&f->vq, 0, 0); /* 3 */
	g_assert_false(vq_should_notify(&f->vq));
	vq_push(&f->vq, 0, 0); /* 4: stepped past 3 */
	g_assert_true(vq_should_notify(&f->vq));
	/* Across the 16-bit wrap. */
	f->vq.used_idx = 65535;
	f->vq.signalled_used = 65534;
	*used_event = 65535;
	vq_push(&f->vq, 0, 0); /* 0 */
	g_assert_true(vq_should_notify(&f->vq));
}

/* avail_event stays put while buffers wait, and moves to the driver's index once none do. */
static void test_event_idx_sets_avail_event(struct fixture *f, gconstpointer data)
{
	uint16_t *avail_event = gm_ptr(&f->gm, USED + 4 + 8 * QSIZE, 2);

	f->vq.event_idx = true;
	set_desc(f, DESC, 0, DATA, 16, 0, 0);
	set_desc(f, DESC, 1, DATA, 16, 0, 0);
	offer(f, 0);
	offer(f, 1);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	g_assert_cmpuint(*avail_event, ==, 0);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	g_assert_cmpuint(*avail_event, ==, 0);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 0);
	g_assert_cmpuint(*avail_event, ==, 2);
}

/*
 * A polling device: an empty pop leaves avail_event behind the driver, so
 * the driver adds buffers without kicking, until vq_enable_kick asks again.
 */
static void test_device_polls(struct fixture *f, gconstpointer data)
{
	uint16_t *avail_event = gm_ptr(&f->gm, USED + 4 + 8 * QSIZE, 2);
	struct vq_watch w;

	f->vq.event_idx = true;
	f->vq.device_polls = true;
	set_desc(f, DESC, 0, DATA, 16, 0, 0);
	set_desc(f, DESC, 1, DATA, 16, 0, 0);
	g_assert_true(vq_watch(&f->vq, &w));
	g_assert_false(vq_watch_moved(&w));
	offer(f, 0);
	g_assert_true(vq_watch_moved(&w)); /* seen without the device doing anything */
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 0);
	g_assert_true(vq_watch(&f->vq, &w));
	g_assert_false(vq_watch_moved(&w));
	g_assert_cmpuint(*avail_event, ==, 0); /* no kick asked for */
	g_assert_false(vq_enable_kick(&f->vq));
	g_assert_cmpuint(*avail_event, ==, 1); /* a kick at the next buffer */
	offer(f, 1);
	g_assert_true(vq_enable_kick(&f->vq)); /* it came meanwhile: pop, do not sleep */
	g_assert_cmpint(vq_pop(&f->vq, &f->chain), ==, 1);
	g_assert_cmpuint(f->chain.head, ==, 1);
}

/* Without EVENT_IDX the driver always kicks; vq_enable_kick only says what waits. */
static void test_device_polls_without_event_idx(struct fixture *f, gconstpointer data)
{
	f->vq.device_polls = true;
	set_desc(f, DESC, 0, DATA, 16, 0, 0);
	g_assert_false(vq_enable_kick(&f->vq));
	offer(f, 0);
	g_assert_true(vq_enable_kick(&f->vq));
	f->vq.broken = true;
	g_assert_false(vq_enable_kick(&f->vq));
	g_assert_false(vq_watch(&f->vq, &(struct vq_watch){0}));
}

static void test_init_checks(void)
{
	struct guest_memory gm;
	struct virtqueue vq;

	g_assert_true(guest_memory_alloc(&gm, 1 * MiB));
	g_assert_false(vq_init(&vq, &gm, 15, DESC, AVAIL, USED)); /* not a power of 2 */
	g_assert_false(vq_init(&vq, &gm, 0, DESC, AVAIL, USED));
	g_assert_false(vq_init(&vq, &gm, 16, DESC + 8, AVAIL, USED)); /* misaligned */
	g_assert_false(vq_init(&vq, &gm, 16, DESC, AVAIL + 1, USED));
	g_assert_false(vq_init(&vq, &gm, 16, DESC, AVAIL, USED + 2));
	g_assert_false(vq_init(&vq, &gm, 16, MiB - 16, AVAIL, USED)); /* ring past RAM */
	g_assert_false(vq_init(&vq, &gm, 16, DESC, AVAIL, MiB - 8));
	g_assert_false(vq_init(&vq, &gm, 16, DESC, AVAIL, UINT64_MAX - 3));
	g_assert_true(vq_init(&vq, &gm, 16, DESC, AVAIL, USED));
	guest_memory_free(&gm);
}

/* ---- hostile rings ---------------------------------------------------------------- */

#define HOSTILE_ROUNDS 4000
#define INDIR_ENTRIES  64

static uint64_t hostile_addr(GRand *r)
{
	switch (g_rand_int_range(r, 0, 8)) {
	case 0:
		return MiB - (uint64_t)g_rand_int_range(r, 0, 64); /* at RAM's end */
	case 1:
		return (uint64_t)g_rand_int(r) << 32 | g_rand_int(r);
	case 2:
		return INDIR + 16ULL * (uint64_t)g_rand_int_range(r, 0, INDIR_ENTRIES);
	default:
		return DATA + (uint64_t)g_rand_int_range(r, 0, 65536);
	}
}

static uint32_t hostile_len(GRand *r)
{
	switch (g_rand_int_range(r, 0, 8)) {
	case 0:
		return g_rand_int(r);
	case 1:
		return 16 * (uint32_t)g_rand_int_range(r, 0, INDIR_ENTRIES + 2);
	default:
		return (uint32_t)g_rand_int_range(r, 0, 8192);
	}
}

/* A descriptor as a hostile driver might write it: mostly plausible, sometimes not. */
static void hostile_desc(struct fixture *f, GRand *r, uint64_t table, uint16_t i, uint16_t size)
{
	uint16_t flags = (uint16_t)g_rand_int_range(r, 0, 8); /* NEXT, WRITE, INDIRECT */
	uint16_t next = (uint16_t)g_rand_int_range(r, 0, size);

	if (!g_rand_int_range(r, 0, 16))
		flags = (uint16_t)g_rand_int(r);
	if (!g_rand_int_range(r, 0, 16))
		next = (uint16_t)g_rand_int(r);
	set_desc(f, table, i, hostile_addr(r), hostile_len(r), flags, next);
}

/* A chain vq_pop accepted: every byte of it in guest RAM, what the device reads first. */
static void check_chain(struct fixture *f)
{
	const uint8_t *ram = f->gm.mapping, *end = ram + f->gm.ram_size;
	uint64_t out = 0, in = 0;
	bool writing = false;

	g_assert_cmpuint(f->chain.head, <, QSIZE);
	g_assert_cmpuint(f->chain.nseg, <=, VQ_MAX_SEGS);
	for (unsigned int i = 0; i < f->chain.nseg; i++) {
		const struct vq_seg *s = &f->chain.seg[i];
		g_assert_true((const uint8_t *)s->addr >= ram && (const uint8_t *)s->addr <= end);
		g_assert_cmpuint(s->len, <=, (uint64_t)(end - (const uint8_t *)s->addr));
		g_assert_true(s->device_writable || !writing);
		writing = s->device_writable;
		*(s->device_writable ? &in : &out) += s->len;
	}
	g_assert_cmpuint(out, ==, f->chain.out_len);
	g_assert_cmpuint(in, ==, f->chain.in_len);
}

/*
 * Rings a hostile driver might write, made at random (the same every run):
 * chains that loop, run off the table or out of RAM, nest indirect tables,
 * put readable buffers after writable ones; heads and indexes out of range.
 * Every pop ends; what it accepts lies in guest RAM; what it refuses
 * breaks the queue.
 */
static void test_hostile_rings(struct fixture *f, gconstpointer data)
{
	GRand *r = g_rand_new_with_seed(0x76697274);
	unsigned int accepted = 0, refused = 0;

	for (int round = 0; round < HOSTILE_ROUNDS; round++) {
		memset(gm_ptr(&f->gm, DESC, 0x3000), 0, 0x3000);
		g_assert_true(vq_init(&f->vq, &f->gm, QSIZE, DESC, AVAIL, USED));
		for (uint16_t i = 0; i < QSIZE; i++)
			hostile_desc(f, r, DESC, i, QSIZE);
		for (uint16_t i = 0; i < INDIR_ENTRIES; i++)
			hostile_desc(f, r, INDIR, i, INDIR_ENTRIES);
		for (int n = g_rand_int_range(r, 0, QSIZE + 2); n > 0; n--)
			offer(f, g_rand_int_range(r, 0, 8) ? (uint16_t)g_rand_int_range(r, 0, QSIZE)
			                                   : (uint16_t)g_rand_int(r));
		for (int pops = 0; pops < 2 * QSIZE; pops++) {
			int got = vq_pop(&f->vq, &f->chain);
			if (got == 0)
				break;
			if (got < 0) {
				g_assert_true(f->vq.broken);
				refused++;
				break;
			}
			check_chain(f);
			accepted++;
			vq_push(&f->vq, f->chain.head, 0);
		}
	}
	/* Both kinds came up, or the rings were not hostile enough to mean anything. */
	g_assert_cmpuint(accepted, >, HOSTILE_ROUNDS / 10);
	g_assert_cmpuint(refused, >, HOSTILE_ROUNDS / 10);
	g_rand_free(r);
}

#define ADD(name, fn) g_test_add("/virtqueue/" name, struct fixture, NULL, setup, fn, teardown)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("single", test_single);
	ADD("read-then-write", test_read_then_write);
	ADD("indirect", test_indirect);
	ADD("address-outside-ram", test_address_outside_ram);
	ADD("length-crosses-end", test_length_crosses_end);
	ADD("huge-length", test_huge_length);
	ADD("cycle", test_cycle);
	ADD("self-loop", test_self_loop);
	ADD("next-out-of-range", test_next_out_of_range);
	ADD("head-out-of-range", test_head_out_of_range);
	ADD("head-in-flight", test_head_in_flight);
	ADD("read-after-write", test_read_after_write);
	ADD("read-after-empty-write", test_read_after_empty_write);
	ADD("avail-runs-ahead", test_avail_runs_ahead);
	ADD("nested-indirect", test_bad_indirect);
	ADD("indirect-with-next", test_indirect_with_next);
	ADD("indirect-bad-length", test_indirect_bad_length);
	ADD("indirect-cycle", test_indirect_cycle);
	ADD("wraparound", test_wraparound);
	ADD("no-interrupt-flag", test_no_interrupt_flag);
	ADD("event-idx", test_event_idx);
	ADD("event-idx-sets-avail-event", test_event_idx_sets_avail_event);
	ADD("device-polls", test_device_polls);
	ADD("device-polls-without-event-idx", test_device_polls_without_event_idx);
	ADD("hostile-rings", test_hostile_rings);
	g_test_add_func("/virtqueue/init-checks", test_init_checks);
	return g_test_run();
}
