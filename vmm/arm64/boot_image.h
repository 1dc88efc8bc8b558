/* SPDX-License-Identifier: MIT */
/*
 * The arm64 Linux boot protocol (Documentation/arch/arm64/booting.rst):
 * an Image with its 64-byte header, or the gzip-compressed one distros
 * ship as vmlinuz, placed at a 2 MiB boundary plus its text_offset; the
 * initrd and the device tree above it. Plain C over guest memory.
 */
#ifndef HUSK_ARM64_BOOT_IMAGE_H
#define HUSK_ARM64_BOOT_IMAGE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/guest_memory.h"

#define ARM64_IMAGE_MAGIC       0x644d5241u /* "ARM\x64", little-endian at offset 56 */
#define ARM64_IMAGE_HEADER_SIZE 64
/* Where the device tree goes: the last 2 MiB of RAM (the protocol's limit on its size). */
#define ARM64_DTB_MAX (UINT64_C(2) << 20)
/* The most a decompressed kernel may take; Debian's is about 40 MiB. */
#define ARM64_IMAGE_MAX (UINT64_C(256) << 20)

struct arm64_image {
	uint64_t text_offset; /* from a 2 MiB boundary */
	uint64_t image_size;  /* bytes the kernel takes from there, .bss included */
};

/* Checks an Image's header ('len' bytes of it). */
bool arm64_image_parse(const uint8_t *head, size_t len, const char *name, struct arm64_image *out,
                       GError **err);

/* Reads a kernel file, decompressing it if it is gzip: 'data' is g_free'd by the caller. */
bool arm64_image_read(const char *path, uint8_t **data, size_t *len, GError **err);

struct arm64_boot {
	uint64_t entry;
	uint64_t initrd_addr, initrd_size; /* 0, 0: none */
	uint64_t dtb_addr;                 /* where the device tree is to go, ARM64_DTB_MAX */
};

/*
 * Places the kernel ('kernel_path') and initrd (may be NULL) in the RAM
 * that starts at 'ram_start'. Bad files are HUSK_EXIT_USAGE errors.
 */
bool arm64_load(const struct guest_memory *gm, uint64_t ram_start, const char *kernel_path,
                const char *initrd_path, struct arm64_boot *out, GError **err);

#endif
