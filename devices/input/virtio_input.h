/* SPDX-License-Identifier: MIT */
/*
 * virtio-input (virtio 1.2, 5.8): a keyboard or an absolute pointer (a
 * tablet) whose events come from the host, such as a VNC client's. The
 * driver learns what the device is through the configuration space
 * (select and subsel written, then the answer read, on a vCPU thread);
 * events go into the buffers it leaves on the event queue (the I/O
 * thread); what it sends on the status queue (LEDs) is taken and dropped.
 *
 * Events can be queued from any thread; at most INPUT_MAX_PENDING wait
 * for buffers, and what comes while that many wait is dropped (counted).
 */
#ifndef HUSK_VIRTIO_INPUT_H
#define HUSK_VIRTIO_INPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/pci.h"
#include "devices/virtio/virtqueue.h"

#define INPUT_MAX_PENDING 1024
#define INPUT_ABS_MAX     0x7fff /* the tablet's axes run 0..INPUT_ABS_MAX, as QEMU's */

enum input_kind { INPUT_KEYBOARD, INPUT_TABLET };

extern const struct virtio_device_ops virtio_input_ops;

struct virtio_input *virtio_input_new(enum input_kind kind);
void virtio_input_free(struct virtio_input *in);

/* The transport serving it, so that events from other threads can wake its queue. */
void virtio_input_set_transport(struct virtio_input *in, struct virtio_pci *t);

/* One event as it travels on the event queue (5.8.6), in host order. */
struct input_event_v {
	uint16_t type, code;
	uint32_t value;
};

/*
 * From any thread: 'n' events and a SYN_REPORT after them, all or none.
 * False if they do not fit (the driver takes no events): dropped.
 */
bool virtio_input_send(struct virtio_input *in, const struct input_event_v *ev, unsigned int n);

/* A key (evdev code, KEY_*) pressed or released. */
bool virtio_input_key(struct virtio_input *in, uint16_t code, bool down);

/*
 * The tablet: the pointer at (x, y) of a w x h display, and the buttons held
 * as VNC says them (bit 0 left, 1 middle, 2 right, 3 wheel up, 4 wheel down).
 */
bool virtio_input_pointer(struct virtio_input *in, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                          unsigned int buttons);

/* One event-queue chain: the next pending event into its buffers; bytes written. */
uint32_t virtio_input_fill(struct virtio_input *in, const struct vq_chain *chain);

/* Events waiting for a buffer; events dropped so far. */
unsigned int virtio_input_pending(struct virtio_input *in);
uint64_t virtio_input_dropped(struct virtio_input *in);

#endif
