/* SPDX-License-Identifier: MIT */
/*
 * Linux/x86 boot protocol (Documentation/arch/x86/boot.rst): check a
 * bzImage, place it, its initrd and command line in guest memory, and
 * build the zero page, for the 64-bit entry point.
 */
#ifndef HUSK_BOOT_LINUX_H
#define HUSK_BOOT_LINUX_H

#include <asm/bootparam.h>
#include <glib.h>
#include <stdint.h>

#include "vmm/guest_memory.h"

/* 2.12 is the first protocol with xloadflags, which says a 64-bit entry exists. */
#define BZIMAGE_MIN_PROTOCOL 0x020c

struct bzimage {
	struct setup_header hdr; /* as in the file; fields past its end are zero */
	size_t hdr_len;          /* bytes of setup header the file really has */
	uint64_t payload_offset; /* the protected-mode kernel within the file */
	uint64_t payload_size;
};

struct linux_boot_args {
	const char *kernel_path;
	const char *initrd_path; /* may be NULL */
	const char *cmdline;     /* may be NULL */
	uint64_t rsdp;           /* guest-physical address of the ACPI RSDP */
};

struct linux_boot {
	uint64_t entry;       /* where the BSP starts, in 64-bit mode */
	uint64_t zero_page;   /* %rsi at entry */
	uint64_t initrd_addr; /* 0 without an initrd */
	uint64_t initrd_size;
};

/* 'head' is the start of the file (at least the setup sectors if it has them). */
bool bzimage_parse(const uint8_t *head, size_t head_len, uint64_t file_size, const char *name,
                   struct bzimage *out, GError **err);

/* Checks the kernel and initrd files without loading them: bad input is a usage error. */
bool linux_check_files(const struct linux_boot_args *args, GError **err);

/* Errors are HUSK_EXIT_USAGE (a bad file or option) or HUSK_EXIT_RUNTIME. */
bool linux_load(const struct guest_memory *gm, const struct linux_boot_args *args,
                struct linux_boot *out, GError **err);

/* Tells the kernel where the ACPI tables are, once they are written after linux_load. */
bool linux_set_rsdp(const struct guest_memory *gm, uint64_t zero_page, uint64_t rsdp, GError **err);

#endif
