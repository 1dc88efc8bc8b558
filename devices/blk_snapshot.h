/* SPDX-License-Identifier: MIT */
/*
 * A throwaway copy-on-write layer over a disk image (--disk IMG,snapshot):
 * the guest writes into a sparse, already-unlinked temporary file, reads of
 * blocks it never wrote come from the image, and the image is opened
 * read-only, so it cannot change. Everything written is gone at exit.
 */
#ifndef HUSK_BLK_SNAPSHOT_H
#define HUSK_BLK_SNAPSHOT_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SNAPSHOT_BLOCK 4096

struct blk_snapshot *blk_snapshot_new(int base_fd, uint64_t size, GError **err);
void blk_snapshot_free(struct blk_snapshot *s);

/* Reads or writes len bytes at off, which the caller has checked are inside the disk. */
bool blk_snapshot_io(struct blk_snapshot *s, uint8_t *buf, size_t len, off_t off, bool is_write);
/* The range reads as zeros from now on (discard, write zeroes). */
bool blk_snapshot_zero(struct blk_snapshot *s, off_t off, uint64_t len);

#endif
