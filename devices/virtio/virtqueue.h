/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.2, 2.7), shared by every device: the walk of
 * descriptor chains with every guest address and length checked, indirect
 * tables, used-ring updates and notification suppression (EVENT_IDX).
 * A malformed ring marks the queue broken; it never crashes or loops.
 */
#ifndef HUSK_VIRTQUEUE_H
#define HUSK_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/guest_memory.h"

#define VQ_MAX_SIZE 32768
#define VQ_MAX_SEGS 1024 /* longest chain accepted, indirect tables included */
/*
 * Chains a device takes in one run of its queue: then it lets the loop
 * serve others and asks to run again (virtio_pci_wake), so a driver
 * that keeps its ring full cannot hold the I/O thread.
 */
#define VQ_BURST 256

struct virtqueue {
	const struct guest_memory *mem;
	uint16_t size;
	uint64_t desc_addr, avail_addr, used_addr;
	bool event_idx;          /* VIRTIO_F_EVENT_IDX negotiated */
	uint16_t last_avail_idx; /* next available entry to take */
	uint16_t used_idx;       /* our copy of used->idx */
	uint16_t signalled_used; /* used->idx at the last interrupt */
	bool signalled_used_valid;
	bool broken; /* the driver broke the rules; the device must be reset */
	/* The device polls: a pop that finds the ring empty asks for no kick (vq_enable_kick). */
	bool device_polls;
	/*
	 * Heads popped and not yet pushed. A head taken again before it comes
	 * back breaks the queue: else a driver republishing one head would
	 * have the device hold a request per pop, without end. Distinct heads
	 * below size: never more than the ring holds.
	 */
	uint8_t in_flight_map[VQ_MAX_SIZE / 8];
};

/* A guest buffer, already translated to host memory. */
struct vq_seg {
	void *addr;
	uint32_t len;
	bool device_writable;
};

struct vq_chain {
	uint16_t head;
	unsigned int nseg;
	uint32_t out_len; /* bytes the device may read */
	uint32_t in_len;  /* bytes the device may write */
	struct vq_seg seg[VQ_MAX_SEGS];
};

/* Checks size (a power of two) and that the three rings are aligned and in RAM. */
bool vq_init(struct virtqueue *vq, const struct guest_memory *mem, uint16_t size, uint64_t desc,
             uint64_t avail, uint64_t used);

/*
 * 1: *chain holds the next request; 0: nothing available; -1: malformed,
 * or a head already in flight (vq->broken set). With EVENT_IDX, the driver
 * kicks again only once a pop has found the ring empty (that pop asks for
 * a kick at its next buffer, even one given back by vq_unpop; with
 * device_polls, vq_enable_kick asks): a device pops until 0 or, stopping
 * early, comes back by itself.
 */
int vq_pop(struct virtqueue *vq, struct vq_chain *chain);

/*
 * A poller's watch on the ring, kept without the device's lock: where the
 * driver's index lives (guest RAM, mapped for the VM's life, whatever the
 * driver does to the queue meanwhile) and how far the device had taken
 * buffers when the watch began. Spinning on it takes no lock that queue
 * work needs.
 */
struct vq_watch {
	const uint16_t *avail_idx;
	uint16_t taken;
};

/* Under the device's lock. False if the queue is broken: nothing to watch. */
bool vq_watch(const struct virtqueue *vq, struct vq_watch *w);

/* From any thread: has the driver made buffers available since vq_watch? */
bool vq_watch_moved(const struct vq_watch *w);

/*
 * For a device that polls (device_polls), before it sleeps: asks for a
 * kick at the driver's next buffer. True if buffers came in meanwhile: pop
 * them instead of sleeping. Without EVENT_IDX the driver always kicks.
 */
bool vq_enable_kick(struct virtqueue *vq);

/* A chain given back: its head and the number of bytes written into it. */
struct vq_used {
	uint16_t head;
	uint32_t len;
};

/* Gives back the last 'count' chains popped and not pushed, to be popped again. */
void vq_unpop(struct virtqueue *vq, const struct vq_used *popped, uint16_t count);

/* Returns a chain to the driver with the number of bytes written into it. */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t written);

/*
 * Returns several chains under one used->idx update, so the driver sees
 * all or none of them (a frame spread over merged buffers, 5.1.6.4).
 */
void vq_push_many(struct virtqueue *vq, const struct vq_used *used, unsigned int count);

/* After pushing: does the driver want an interrupt (2.7.7, 2.7.10)? */
bool vq_should_notify(struct virtqueue *vq);

#endif
