/* SPDX-License-Identifier: MIT */
/*
 * The search itself, with nothing around it: it trusts nothing it reads,
 * but runs in the calling process. bootdisk_find runs it in the sandbox;
 * tests call it directly too.
 */
#ifndef HUSK_BOOTDISK_FIND_H
#define HUSK_BOOTDISK_FIND_H

#include <glib.h>
#include <stdbool.h>

#include "vmm/bootdisk/bootdisk.h"

/* Where the kernel's and the initrd's bytes go, piece by piece, in order. */
struct boot_sink {
	bool (*kernel)(void *opaque, const void *buf, size_t len);
	bool (*initrd)(void *opaque, const void *buf, size_t len);
	void *opaque;
};

bool bootdisk_search(const struct bootdisk_reader *r, const struct boot_sink *sink, char **cmdline,
                     char **description, GError **err);

/* bootdisk_find with another deadline than its own, for tests. */
bool bootdisk_find_within(const struct bootdisk_reader *r, unsigned timeout_ms,
                          struct boot_choice *out, GError **err);

#endif
