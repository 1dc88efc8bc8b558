/* SPDX-License-Identifier: MIT */
/*
 * The partitions of a disk image: GPT (behind its protective MBR), MBR
 * with primary and logical partitions, or none (a whole-disk filesystem).
 */
#ifndef HUSK_BOOTDISK_PARTITION_H
#define HUSK_BOOTDISK_PARTITION_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bootdisk/bootdisk.h"

enum partition_kind {
	PARTITION_XBOOTLDR,   /* the Boot Loader Specification's /boot */
	PARTITION_LINUX,      /* a Linux filesystem, root or not */
	PARTITION_OTHER,      /* a type we do not know: worth a look */
	PARTITION_NO_KERNEL,  /* ESP, BIOS boot, swap, LVM, RAID: never a kernel we can read */
	PARTITION_WHOLE_DISK, /* no table: the disk is one filesystem */
};

struct partition {
	unsigned number; /* as Linux numbers it: GPT index + 1, MBR 1-4, logical 5 on */
	enum partition_kind kind;
	uint64_t offset; /* bytes */
	uint64_t size;
};

/* At most this many partitions are kept (GPT's usual table holds 128). */
#define PARTITION_MAX 128

/*
 * Fills 'parts' (PARTITION_MAX entries) and *count; false when the table is
 * damaged. A disk with no table gives one PARTITION_WHOLE_DISK entry.
 */
bool partition_read(const struct bootdisk_reader *r, struct partition *parts, int *count,
                    GError **err);

/* The CRC-32 GPT's checksums use (IEEE 802.3, as zlib's crc32). */
uint32_t gpt_crc32(const uint8_t *p, size_t len);

/* Reads from the reader, refusing what lies past its end. */
bool reader_read(const struct bootdisk_reader *r, void *buf, size_t len, uint64_t off);

#endif
