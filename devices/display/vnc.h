/* SPDX-License-Identifier: MIT */
/*
 * A VNC server (RFB, through libvncserver) showing virtio-gpu's scanout
 * and feeding the VNC clients' keys and pointer into virtio-input devices.
 * It listens from the moment it is made (on the calling thread, before the
 * VM runs) and serves from a thread of its own, never a vCPU's nor the I/O
 * thread's, under its own system-call list. The picture follows the
 * guest's RESOURCE_FLUSHes: each pass takes what the guest flushed since
 * the last one and marks that rectangle modified for the clients.
 */
#ifndef HUSK_VNC_H
#define HUSK_VNC_H

#include <glib.h>
#include <stdbool.h>

#include "devices/display/virtio_gpu.h"
#include "devices/input/virtio_input.h"

struct vnc_server;

/* Is VNC built in? (libvncserver was found at build time.) */
bool vnc_available(void);

/*
 * Listens on 'addr' ("HOST:PORT", an IPv4 address or [IPv6]); clients wait
 * until vnc_serve(). 'keyboard' and 'tablet' may be NULL (their events are
 * dropped).
 */
struct vnc_server *vnc_start(const char *addr, struct virtio_gpu *gpu,
                             struct virtio_input *keyboard, struct virtio_input *tablet,
                             GError **err);
/*
 * Starts the server's thread, once the process-wide system-call filter is
 * on (it goes on every thread at once, which one with a list of its own
 * would refuse); later calls do nothing.
 */
void vnc_serve(struct vnc_server *vnc);
void vnc_stop(struct vnc_server *vnc);

/* Splits "HOST:PORT" ("[::1]:5900" for IPv6); false with 'err' if it is not one. */
bool vnc_parse_address(const char *text, char **host, int *port, GError **err);

#endif
