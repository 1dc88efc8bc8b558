/* SPDX-License-Identifier: MIT */
/*
 * virtio-fs (virtio 1.2, 5.11): a host directory the guest mounts by tag
 * (`mount -t virtiofs TAG /mnt`), served by husk's own FUSE server: no
 * separate daemon. One high-priority queue (FORGET) and one request queue,
 * each worked on its own thread.
 */
#ifndef HUSK_VIRTIO_FS_H
#define HUSK_VIRTIO_FS_H

#include <glib.h>
#include <stdbool.h>

#include "devices/fs/fuse_server.h"
#include "devices/virtio/pci.h"

#define VIRTIO_FS_TAG_BYTES 36

struct share_config {
	char *path;
	char *tag;
	struct fuse_server_options serve;
};

extern const struct virtio_device_ops virtio_fs_ops;

struct virtio_fs *virtio_fs_open(const struct share_config *cfg, GError **err);
void virtio_fs_close(struct virtio_fs *fs);
/* The share's FUSE requests so far (fuse_server_get_stats). */
void virtio_fs_get_stats(struct virtio_fs *fs, struct fuse_server_stats *out);

#define SHARE_SYNTAX "HOSTDIR:TAG[,ro][,submounts][,noxattr][,uid=HOST:GUEST][,gid=HOST:GUEST]"

/* Parses SHARE_SYNTAX, as given to --share. */
bool share_config_parse(const char *text, struct share_config *out, GError **err);
void share_config_clear(struct share_config *cfg);

#endif
