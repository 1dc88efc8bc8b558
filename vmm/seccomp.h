// SPDX-License-Identifier: MIT
/*
 * A system-call filter for the whole of husk, installed once the VM is set
 * up and before the guest runs: the calls a guest that took over a device
 * model would want next (run a program, trace or enter another process,
 * mount, load kernel code) fail with EPERM. Everything husk itself does
 * while the guest runs stays allowed.
 */
#ifndef HUSK_SECCOMP_H
#define HUSK_SECCOMP_H

#include <glib.h>
#include <stdbool.h>

/*
 * Installs the filter on every thread of the process (and so on every
 * thread created after). It cannot be taken off again. On failure 'err'
 * says why, in one line without the "husk: " prefix.
 */
bool seccomp_lock_down(GError **err);

#endif
