/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock (virtio 1.2, 5.10), SOCK_STREAM only, its host side served
 * by husk on the I/O loop rather than by the host kernel's vhost-vsock.
 * Host connections are Unix sockets, as Firecracker maps them:
 *
 * - husk listens on PATH. A host program connects, writes "CONNECT <port>\n"
 *   and, once the guest accepted, reads "OK <hostport>\n"; then the socket
 *   is a byte stream to the guest's port. A guest that refuses closes it,
 *   as does a handshake not done within 5 s.
 * - A guest connecting to the host (cid 2) port P reaches the Unix socket
 *   "PATH_P", if something listens there; else it is refused (RST).
 *
 * Data from the guest is held only as far as the credit husk gives it
 * (VSOCK_BUF_ALLOC per connection, 5.10.6.3); data for the guest is read
 * from the host socket straight into the guest's buffers, never more than
 * the guest's credit, so a side that stops reading stops the other.
 */
#ifndef HUSK_VIRTIO_VSOCK_H
#define HUSK_VIRTIO_VSOCK_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/pci.h"

#define VSOCK_DEFAULT_CID 3
#define VSOCK_MAX_CONNS   1024        /* a REQUEST beyond them is refused */
#define VSOCK_BUF_ALLOC   (64 * 1024) /* bytes from the guest held per connection */
#define VSOCK_MAX_PAYLOAD (64 * 1024) /* the longest RW payload a packet may carry */

struct vsock_config {
	char *path;
	uint32_t cid;
};

/* "PATH[,cid=N]"; errors are one line, HUSK_EXIT_USAGE. */
bool vsock_config_parse(const char *text, struct vsock_config *cfg, GError **err);
void vsock_config_clear(struct vsock_config *cfg);

/* Listens on cfg->path (which must not exist yet), served on 'ctx'. */
struct virtio_vsock *virtio_vsock_create(const struct vsock_config *cfg, GMainContext *ctx,
                                         GError **err);
/* The transport the device wakes when host sockets have work for the guest. */
void virtio_vsock_attach(struct virtio_vsock *v, struct virtio_pci *t);
void virtio_vsock_destroy(struct virtio_vsock *v);

extern const struct virtio_device_ops virtio_vsock_ops;

/* For tests: what queue_notify does for queue 'q', without an interrupt. */
void virtio_vsock_serve(struct virtio_vsock *v, struct virtqueue *vq, unsigned int q);
/* Connections open or opening, and the bytes held for them. */
unsigned int virtio_vsock_connections(struct virtio_vsock *v);
size_t virtio_vsock_buffered(struct virtio_vsock *v);
/*
 * For tests and fuzzing: refuse connections beyond 'n' (at most
 * VSOCK_MAX_CONNS), so reaching the cap costs fewer sockets.
 */
void virtio_vsock_set_max_conns(struct virtio_vsock *v, unsigned int n);

#endif
