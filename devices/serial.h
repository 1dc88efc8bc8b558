/* SPDX-License-Identifier: MIT */
/*
 * A 16550A UART (as on COM1 of a PC): eight I/O ports, one level-triggered
 * interrupt line. Transmitted bytes go straight to a host fd; received
 * bytes come from the console on the I/O thread.
 */
#ifndef HUSK_SERIAL_H
#define HUSK_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/irq.h"

#define SERIAL_PORTS 8 /* length of the I/O port range */

struct serial;

/*
 * 'out_fd' receives every byte the guest transmits; husk keeps ownership.
 * Writes block like a slow serial line would; if one fails (say EPIPE, so
 * husk must ignore SIGPIPE) the output is dropped from then on and the
 * guest runs on.
 */
struct serial *serial_create(struct irq_line irq, int out_fd);
void serial_destroy(struct serial *s);

/* bus_access_fn for the SERIAL_PORTS ports; any vCPU thread. */
void serial_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/*
 * Queues input for the guest. Returns how many bytes fit in the receive
 * FIFO: 0 when it is full or the guest has the UART in loopback mode.
 */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);

/*
 * After serial_receive() took fewer bytes than offered, 'cb' runs once the
 * guest has emptied the receive FIFO. It runs on a vCPU thread with the
 * UART's lock held: it must not call back into the serial, only wake
 * whoever feeds it. Passing NULL unhooks it; once this returns the old
 * callback is no longer running and will not be called again.
 */
void serial_set_rx_space_cb(struct serial *s, void (*cb)(void *ctx), void *ctx);

#endif
