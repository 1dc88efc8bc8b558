/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2, 5.1): one receive and one transmit queue, merged
 * receive buffers, checksum and segmentation offloads where the backend can
 * carry them out, MAC, MTU and link status. Frames go to and come from a
 * net_backend (slirp or TAP). Bad frames from the guest are dropped and
 * counted, never passed on.
 */
#ifndef HUSK_VIRTIO_NET_H
#define HUSK_VIRTIO_NET_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/net/net.h"
#include "devices/virtio/pci.h"

#define VIRTIO_NET_HDR_BYTES 12 /* struct virtio_net_hdr_v1, num_buffers included */

/* Why a frame from the guest was dropped. */
enum net_tx_verdict {
	NET_TX_OK,
	NET_TX_BAD_CHAIN,  /* device-writable buffers in a transmit chain */
	NET_TX_TRUNCATED,  /* shorter than the virtio header plus an Ethernet header */
	NET_TX_OVERSIZE,   /* longer than NET_MAX_FRAME */
	NET_TX_BAD_HEADER, /* an offload the device did not offer, or fields out of the frame */
	NET_TX_BACKEND,    /* the backend could not take it */
	NET_TX_NVERDICTS,
};

struct virtio_net_stats {
	uint64_t tx_frames, rx_frames;
	uint64_t tx_dropped[NET_TX_NVERDICTS];
	uint64_t rx_dropped;    /* runts, too big for its buffers, a broken queue */
	uint64_t rx_queue_full; /* dropped in the backend: the guest had no buffers free */
	uint64_t ring_faults;   /* malformed rings vhost-net found (it drops no frame itself) */
};

extern const struct virtio_device_ops virtio_net_ops;

struct virtio_net *virtio_net_create(const struct net_config *cfg, GMainContext *ctx, GError **err);
/* The device is on the bus: it can now hand frames to the guest. */
void virtio_net_attach(struct virtio_net *n, struct virtio_pci *t);
void virtio_net_destroy(struct virtio_net *n);
void virtio_net_get_stats(const struct virtio_net *n, struct virtio_net_stats *out);

/*
 * Checks a transmit chain against the negotiated features: the frame's
 * length (virtio header excluded) goes to *frame_len.
 */
enum net_tx_verdict virtio_net_check_tx(const struct vq_chain *chain, uint64_t features,
                                        size_t *frame_len);

/*
 * Puts one frame, after its virtio header 'hdr', into the receive queue: in
 * one chain, or with merged buffers over up to 'max_used' chains, published
 * together with num_buffers set (5.1.6.4). 1: delivered; 0: not enough
 * buffers yet, nothing taken; -1: dropped (too big, or a broken queue).
 */
int virtio_net_rx_frame(struct virtqueue *vq, bool mergeable, const uint8_t *hdr,
                        const uint8_t *frame, size_t len, struct vq_chain *scratch,
                        struct vq_used *used, unsigned int max_used);

#endif
