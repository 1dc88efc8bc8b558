/* SPDX-License-Identifier: MIT */
/*
 * Files out of an ext2/3/4 filesystem in a partition of the image, with
 * libext2fs reading through the image's read callback, and the names of
 * the filesystems we do not read.
 */
#ifndef HUSK_BOOTDISK_EXT_READER_H
#define HUSK_BOOTDISK_EXT_READER_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bootdisk/bootdisk.h"

struct ext_fs;

/*
 * What the partition holds, by its superblock's magic: "ext" for ext2/3/4,
 * the name of another filesystem ("btrfs", "xfs"...), or NULL for nothing
 * known.
 */
const char *fs_probe(const struct bootdisk_reader *r, uint64_t offset, uint64_t size);

struct ext_fs *ext_open(const struct bootdisk_reader *r, uint64_t offset, uint64_t size,
                        GError **err);
void ext_close(struct ext_fs *fs);

const char *ext_kind(const struct ext_fs *fs); /* "ext2", "ext3" or "ext4" */
const char *ext_uuid(const struct ext_fs *fs); /* as in root=UUID= */

bool ext_is_dir(struct ext_fs *fs, const char *path);
bool ext_is_file(struct ext_fs *fs, const char *path);

/* The regular file at 'path', NUL-terminated, if it is at most 'max' bytes. */
char *ext_read_text(struct ext_fs *fs, const char *path, size_t max, size_t *len);

/* Names in directory 'dir' that start with 'prefix' (at most a few thousand). */
GPtrArray *ext_list(struct ext_fs *fs, const char *dir, const char *prefix);

/* Hands the file to 'sink' in pieces of at most 1 MiB; refuses one over 'max' bytes. */
bool ext_stream(struct ext_fs *fs, const char *path, uint64_t max,
                bool (*sink)(void *opaque, const void *buf, size_t len), void *opaque,
                GError **err);

#endif
