/* SPDX-License-Identifier: MIT */
/*
 * vhost-net: the host kernel moves frames between a virtio-net device's
 * rings and a TAP device itself. The guest's kicks reach the kernel's
 * worker through the queues' ioeventfds, and its interrupts go straight
 * into KVM's irqfds, so the data path never enters husk.
 */
#ifndef HUSK_VHOST_NET_H
#define HUSK_VHOST_NET_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/guest_memory.h"

/* One ring as the driver set it up, in host addresses. */
struct vhost_ring {
	uint16_t size;
	uint16_t next_avail; /* the first available entry not yet taken */
	void *desc, *avail, *used;
	int kick_fd; /* signalled on each guest kick */
	int call_fd; /* the kernel writes it to interrupt the guest; -1: never */
	int err_fd;  /* the kernel writes it when the driver broke the ring */
};

struct vhost_net;

/* Opens /dev/vhost-net and claims it for this process. NULL with *err if it cannot. */
struct vhost_net *vhost_net_open(GError **err);
void vhost_net_close(struct vhost_net *v);

/*
 * The kernel serves rings[0] (receive) and rings[1] (transmit) to and from
 * the TAP 'tap_fd' (which has a 12-byte virtio-net header) with the
 * features the driver accepted. False with *err if the kernel lacks a
 * transport feature they need, or refused; nothing is left running then.
 */
bool vhost_net_start(struct vhost_net *v, const struct guest_memory *mem, uint64_t features,
                     const struct vhost_ring rings[2], int tap_fd, GError **err);
/* The kernel lets go of the rings and the TAP device. */
void vhost_net_stop(struct vhost_net *v);
/* Where ring 'index' interrupts the guest from now on (a vector was masked). */
bool vhost_net_set_call(struct vhost_net *v, unsigned int index, int fd);

#endif
