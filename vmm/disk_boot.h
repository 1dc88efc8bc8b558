/* SPDX-License-Identifier: MIT */
/* Booting the kernel a disk image holds, when `husk run` has no --kernel. */
#ifndef HUSK_DISK_BOOT_H
#define HUSK_DISK_BOOT_H

#include <glib.h>
#include <stdbool.h>

#include "vmm/options.h"

/*
 * Fills cfg->kernel, and cfg->initrd and cfg->cmdline where the user gave
 * none, from the first disk's default boot entry, and says on one line
 * what it chose. Errors are one line (HUSK_EXIT_USAGE for a disk with no
 * kernel husk can find). Forks a sandbox: call it before any thread starts.
 */
bool disk_boot_resolve(struct vm_config *cfg, GError **err);

#endif
