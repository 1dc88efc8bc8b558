/* SPDX-License-Identifier: MIT */
/*
 * Building initramfs images: cpio "newc" archives as the kernel unpacks
 * them, and the kernel modules a guest needs, found through the kernel's
 * modules.dep and listed in the order they must be loaded.
 */
#ifndef HUSK_INITRAMFS_H
#define HUSK_INITRAMFS_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cpio {
	GByteArray *buf;
	uint32_t ino;
};

void cpio_init(struct cpio *c);
void cpio_add_dir(struct cpio *c, const char *path, mode_t mode);
void cpio_add_file(struct cpio *c, const char *path, mode_t mode, const void *data, size_t len);
void cpio_add_char_dev(struct cpio *c, const char *path, mode_t mode, unsigned int major,
                       unsigned int minor);
/* Ends the archive (the TRAILER!!! entry); the bytes are the caller's to free. */
GBytes *cpio_finish(struct cpio *c);

/*
 * Appends to 'out' the files (relative to 'moddir', e.g. "kernel/fs/fuse/fuse.ko") of
 * the modules named in 'names' and of everything they depend on, dependencies
 * first. Modules built into the kernel need no file and are left out. A name
 * the kernel does not have at all is an error when 'required'.
 */
bool modules_resolve(const char *moddir, const char *const *names, bool required, GPtrArray *out,
                     GError **err);

#endif
