/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2, 5.2) on a disk stack (devices/block/block.h):
 * read, write, flush, discard, write-zeroes and the device id. A flush
 * completes only once the backend made it durable (fdatasync), so data the
 * guest was told is flushed is on the host's disk.
 */
#ifndef HUSK_VIRTIO_BLK_H
#define HUSK_VIRTIO_BLK_H

#include <glib.h>
#include <stdbool.h>

#include "devices/virtio/pci.h"

#define VIRTIO_BLK_ID_BYTES 20

enum disk_cache {
	DISK_CACHE_WRITEBACK, /* through the host's page cache; FLUSH syncs it */
	DISK_CACHE_NONE,      /* O_DIRECT: around the page cache; FLUSH still syncs */
};

struct disk_config {
	char *path;
	bool read_only;
	bool snapshot; /* guest writes land in a throwaway overlay; the image never changes */
	enum disk_cache cache;
	char *serial; /* at most VIRTIO_BLK_ID_BYTES bytes, or NULL */
	char *format; /* "raw", "qcow2", or NULL: detected (devices/block/block.c) */
};

extern const struct virtio_device_ops virtio_blk_ops;

/*
 * Opens and locks the image (a shared lock when read-only, an exclusive one
 * otherwise, so two VMs cannot write one image). Errors are usage errors.
 * 'queues' request queues (VIRTIO_BLK_F_MQ; 1 to VIRTIO_MAX_QUEUES), one
 * per vCPU as QEMU does: each vCPU submits and completes on its own.
 */
struct virtio_blk *virtio_blk_open(const struct disk_config *cfg, unsigned int queues,
                                   GError **err);
void virtio_blk_close(struct virtio_blk *blk);

/*
 * Carries out one request; returns its status (VIRTIO_BLK_S_*), or -1 for a
 * chain that is not a request at all. *written counts the bytes put in the
 * chain, status included.
 */
int virtio_blk_process(struct virtio_blk *blk, struct vq_chain *chain, uint32_t *written);

/*
 * Parses "PATH[,ro][,snapshot][,serial=ID][,cache=writeback|none][,format=raw|qcow2]"
 * as given to --disk.
 */
bool disk_config_parse(const char *text, struct disk_config *out, GError **err);
void disk_config_clear(struct disk_config *cfg);

#endif
