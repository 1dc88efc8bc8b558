/* SPDX-License-Identifier: MIT */
/*
 * Finding the kernel inside a disk image, for `husk run IMAGE` with no
 * --kernel: the partition table, the filesystem holding /boot, its default
 * boot entry (grub.cfg as grub-mkconfig writes it, Boot Loader
 * Specification entries, or else the newest vmlinuz), then the kernel,
 * initrd and command line that entry names.
 *
 * The image is untrusted. bootdisk_find parses it in a forked child under a
 * strict system-call filter, which reaches the image only by asking this
 * process for bytes; what comes back is bounded and checked here.
 */
#ifndef HUSK_BOOTDISK_H
#define HUSK_BOOTDISK_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The image, whatever its format: raw, qcow2, an overlay. */
struct bootdisk_reader {
	/* Reads 'len' bytes at 'off' (off + len <= size); false on an I/O error. */
	bool (*read)(void *opaque, void *buf, size_t len, uint64_t off);
	uint64_t size; /* bytes */
	void *opaque;
};

/* What the child may hand back, at most. */
#define BOOTDISK_KERNEL_MAX      (128u << 20)
#define BOOTDISK_INITRD_MAX      (1024u << 20)
#define BOOTDISK_CMDLINE_MAX     4096
#define BOOTDISK_DESCRIPTION_MAX 1024

struct boot_choice {
	GBytes *kernel; /* a bzImage */
	GBytes *initrd; /* NULL without one */
	char *cmdline;  /* printable ASCII, with a serial console */
	/* For the user: "vmlinuz-6.1.0-28-cloud-amd64 from partition 1 (ext4), grub.cfg entry
	 * 'Debian GNU/Linux'". */
	char *description;
};

/*
 * Finds the default kernel of the image. Errors are one line, HUSK_EXIT_USAGE
 * for a bad or unsupported image, HUSK_EXIT_RUNTIME when the sandbox itself
 * cannot run. It forks: call it before seccomp_lock_down(), which forbids
 * that, and best before starting threads.
 */
bool bootdisk_find(const struct bootdisk_reader *r, struct boot_choice *out, GError **err);

void boot_choice_clear(struct boot_choice *c);

#endif
