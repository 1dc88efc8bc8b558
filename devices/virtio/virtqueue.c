// SPDX-License-Identifier: MIT
#include "devices/virtio/virtqueue.h"

#include <endian.h>
#include <stdatomic.h>
#include <string.h>

/* 2.7.5: struct virtq_desc */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
} __attribute__((packed));

#define DESC_F_NEXT          1
#define DESC_F_WRITE         2
#define DESC_F_INDIRECT      4
#define AVAIL_F_NO_INTERRUPT 1

/* Ring layouts (2.7.6, 2.7.8): flags and idx, then the ring, then the event field. */
#define RING_HEADER 4
#define USED_ELEM   8

static bool is_pow2(uint16_t n)
{
	return n && !(n & (n - 1));
}

bool vq_init(struct virtqueue *vq, const struct guest_memory *mem, uint16_t size, uint64_t desc,
             uint64_t avail, uint64_t used)
{
	memset(vq, 0, sizeof(*vq));
	if (!is_pow2(size) || size > VQ_MAX_SIZE || desc % 16 || avail % 2 || used % 4)
		return false;
	/* The rings' sizes, event fields included (2.7, "Virtqueue Part Sizes"). */
	if (!gm_ptr(mem, desc, 16ULL * size) ||
	    !gm_ptr(mem, avail, RING_HEADER + 2ULL * size + 2) ||
	    !gm_ptr(mem, used, RING_HEADER + (uint64_t)USED_ELEM * size + 2))
		return false;
	vq->mem = mem;
	vq->size = size;
	vq->desc_addr = desc;
	vq->avail_addr = avail;
	vq->used_addr = used;
	return true;
}

static uint16_t *avail_field(const struct virtqueue *vq, uint64_t off)
{
	return gm_ptr(vq->mem, vq->avail_addr + off, 2);
}

static uint16_t load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static int fail(struct virtqueue *vq)
{
	vq->broken = true;
	return -1;
}

static bool add_segment(struct virtqueue *vq, struct vq_chain *c, const struct desc *d)
{
	uint64_t addr = le64toh(d->addr);
	uint32_t len = le32toh(d->len);
	bool writable = le16toh(d->flags) & DESC_F_WRITE;
	void *host = gm_ptr(vq->mem, addr, len);

	if (!host || c->nseg == VQ_MAX_SEGS)
		return false;
	/*
	 * Device-readable buffers come before device-writable ones (2.7.4.2),
	 * an empty writable one included: its length cannot tell.
	 */
	if (!writable && c->nseg && c->seg[c->nseg - 1].device_writable)
		return false;
	uint32_t *total = writable ? &c->in_len : &c->out_len;
	if (len > UINT32_MAX - *total)
		return false;
	*total += len;
	c->seg[c->nseg++] = (struct vq_seg){host, len, writable};
	return true;
}

/* Walks an indirect table (2.7.5.3): no nesting, no NEXT leaving it. */
static bool walk_indirect(struct virtqueue *vq, struct vq_chain *c, const struct desc *d)
{
	uint32_t len = le32toh(d->len);
	uint32_t n = len / 16;
	const struct desc *table = gm_ptr(vq->mem, le64toh(d->addr), len);

	if (!table || len == 0 || len % 16 || n > VQ_MAX_SEGS)
		return false;
	uint32_t i = 0;
	for (uint32_t steps = 0;; steps++) {
		struct desc e;
		memcpy(&e, &table[i], sizeof(e));
		uint16_t flags = le16toh(e.flags);
		/* At most n steps: a cycle inside the table ends here. */
		if (steps >= n || (flags & DESC_F_INDIRECT) || !add_segment(vq, c, &e))
			return false;
		if (!(flags & DESC_F_NEXT))
			return true;
		i = le16toh(e.next);
		if (i >= n)
			return false;
	}
}

static bool head_in_flight(const struct virtqueue *vq, uint16_t head)
{
	return vq->in_flight_map[head / 8] & (1u << (head % 8));
}

static void take_head(struct virtqueue *vq, uint16_t head)
{
	vq->in_flight_map[head / 8] |= (uint8_t)(1u << (head % 8));
}

/* A head the device did not hold (its own bug) changes nothing. */
static void return_head(struct virtqueue *vq, uint16_t head)
{
	if (head < vq->size)
		vq->in_flight_map[head / 8] &= (uint8_t) ~(1u << (head % 8));
}

static int walk_chain(struct virtqueue *vq, struct vq_chain *c, uint16_t head)
{
	const struct desc *table = gm_ptr(vq->mem, vq->desc_addr, 16ULL * vq->size);
	uint16_t i = head;

	memset(c, 0, offsetof(struct vq_chain, seg));
	c->head = head;
	/* A head not yet pushed again is in flight: QEMU's "Virtqueue size exceeded". */
	if (head >= vq->size || head_in_flight(vq, head))
		return fail(vq);
	for (unsigned int steps = 0;; steps++) {
		struct desc d;
		memcpy(&d, &table[i], sizeof(d));
		uint16_t flags = le16toh(d.flags);
		/* A chain visits each descriptor at most once: longer means a cycle. */
		if (steps >= vq->size)
			return fail(vq);
		if (flags & DESC_F_INDIRECT) {
			/* An indirect descriptor is alone and neither writable nor chained. */
			if ((flags & (DESC_F_NEXT | DESC_F_WRITE)) || c->nseg ||
			    !walk_indirect(vq, c, &d))
				return fail(vq);
			return 1;
		}
		if (!add_segment(vq, c, &d))
			return fail(vq);
		if (!(flags & DESC_F_NEXT))
			return 1;
		i = le16toh(d.next);
		if (i >= vq->size)
			return fail(vq);
	}
}

/* avail_event, at the end of the used ring: kick us once the driver's index passes it. */
static void store_avail_event(struct virtqueue *vq, uint16_t idx)
{
	uint16_t *avail_event =
	    gm_ptr(vq->mem, vq->used_addr + RING_HEADER + (uint64_t)USED_ELEM * vq->size, 2);
	__atomic_store_n(avail_event, htole16(idx), __ATOMIC_RELAXED);
}

/*
 * avail_event (2.7.10) names the driver's index we want a kick at. Set to
 * the driver's current index, its next buffer brings one; left behind
 * buffers it already published (after an unpop, say) it would never come,
 * since a driver kicks only on passing it. So store, then read the index
 * again in case buffers came in between.
 */
static bool kick_on_next(struct virtqueue *vq)
{
	if (!vq->event_idx || vq->broken)
		return false;
	uint16_t seen = load16(avail_field(vq, 2));
	store_avail_event(vq, seen);
	/* Our avail_event store before the driver's next idx load (2.7.10). */
	atomic_thread_fence(memory_order_seq_cst);
	return load16(avail_field(vq, 2)) != seen;
}

int vq_pop(struct virtqueue *vq, struct vq_chain *chain)
{
	if (vq->broken)
		return -1;
	uint16_t avail_idx = load16(avail_field(vq, 2));
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail_idx);

	/*
	 * avail_event moves only when the ring is found empty, as QEMU does:
	 * while the device still has buffers to take, the driver adds more
	 * without a kick (each one a VM exit).
	 */
	if (pending == 0 && !vq->device_polls && kick_on_next(vq)) {
		avail_idx = load16(avail_field(vq, 2));
		pending = (uint16_t)(avail_idx - vq->last_avail_idx);
	}
	if (pending == 0)
		return 0;
	if (pending > vq->size)
		return fail(vq); /* the driver claims more buffers than the ring holds */
	/* Read the ring entry only after seeing the index that published it. */
	atomic_thread_fence(memory_order_acquire);
	uint16_t slot = vq->last_avail_idx % vq->size;
	uint16_t head = load16(avail_field(vq, RING_HEADER + 2ULL * slot));
	vq->last_avail_idx++;
	int got = walk_chain(vq, chain, head);
	if (got > 0)
		take_head(vq, head);
	return got;
}

bool vq_watch(const struct virtqueue *vq, struct vq_watch *w)
{
	*w = (struct vq_watch){avail_field(vq, 2), vq->last_avail_idx};
	return !vq->broken;
}

bool vq_watch_moved(const struct vq_watch *w)
{
	return load16(w->avail_idx) != w->taken;
}

bool vq_enable_kick(struct virtqueue *vq)
{
	struct vq_watch w;

	return kick_on_next(vq) || (vq_watch(vq, &w) && vq_watch_moved(&w));
}

void vq_unpop(struct virtqueue *vq, const struct vq_used *popped, uint16_t count)
{
	for (uint16_t i = 0; i < count; i++)
		return_head(vq, popped[i].head);
	vq->last_avail_idx = (uint16_t)(vq->last_avail_idx - count);
}

void vq_push_many(struct virtqueue *vq, const struct vq_used *used, unsigned int count)
{
	uint16_t *idx = gm_ptr(vq->mem, vq->used_addr + 2, 2);

	for (unsigned int i = 0; i < count; i++) {
		uint16_t slot = (uint16_t)(vq->used_idx + i) % vq->size;
		uint8_t *elem = gm_ptr(
		    vq->mem, vq->used_addr + RING_HEADER + (uint64_t)USED_ELEM * slot, USED_ELEM);
		uint32_t id = htole32(used[i].head), len = htole32(used[i].len);

		memcpy(elem, &id, 4);
		memcpy(elem + 4, &len, 4);
		return_head(vq, used[i].head);
	}
	vq->used_idx = (uint16_t)(vq->used_idx + count);
	/* The elements must be visible before the index that publishes them. */
	atomic_thread_fence(memory_order_release);
	__atomic_store_n(idx, htole16(vq->used_idx), __ATOMIC_RELAXED);
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t written)
{
	struct vq_used one = {head, written};

	vq_push_many(vq, &one, 1);
}

bool vq_should_notify(struct virtqueue *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_used_valid;

	/* Nothing new in the used ring since the last interrupt: nothing to say. */
	if (valid && old == now)
		return false;
	vq->signalled_used = now;
	vq->signalled_used_valid = true;
	/* Order our used->idx store before reading what the driver asked for. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!vq->event_idx)
		return !(load16(avail_field(vq, 0)) & AVAIL_F_NO_INTERRUPT);

	uint16_t used_event = load16(avail_field(vq, RING_HEADER + 2ULL * vq->size));
	if (!valid)
		return true;
	/* vring_need_event (2.7.10): did used->idx step past used_event since 'old'? */
	return (uint16_t)(now - used_event - 1) < (uint16_t)(now - old);
}
