/* SPDX-License-Identifier: MIT */
/*
 * The user husk becomes once the VM is set up (--user, HUSK_USER), as
 * Firecracker's jailer does: /dev/kvm, disks, TAP devices, vhost-net and
 * shares are opened as the user who started husk (root), then every
 * thread of the process takes the new user, group and no supplementary
 * groups, and with them loses every capability. Nothing of root's can be
 * taken back: husk checks that it cannot regain uid 0.
 */
#ifndef HUSK_PRIVDROP_H
#define HUSK_PRIVDROP_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

struct run_as {
	bool set;
	uid_t uid;
	gid_t gid;
};

/*
 * "USER[:GROUP]", each a name or a number; without GROUP, the user's own
 * (a number without a passwd entry: the same number). User 0 is refused.
 * Errors are one line naming 'what' (the option), HUSK_EXIT_USAGE.
 */
bool run_as_parse(const char *what, const char *text, struct run_as *out, GError **err);

/*
 * Switches every thread of the process to 'r' (glibc changes them all at
 * once), then checks the switch took and cannot be undone. Needs
 * CAP_SETUID and CAP_SETGID in every thread, so it comes before any
 * thread drops its capabilities. Errors: HUSK_EXIT_HOST.
 */
bool run_as_apply(const struct run_as *r, GError **err);

#endif
