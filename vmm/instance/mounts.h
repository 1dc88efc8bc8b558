/* SPDX-License-Identifier: MIT */
/*
 * Host folders mounted in a running guest (husk mount, launch --mount).
 *
 * How a folder reaches a guest that is already running: PCI hot-plug, one
 * virtio-fs device per mount (machine_plug_share), which husk-agent makes
 * the guest find by rescanning its PCI bus before it mounts the device's
 * tag. Not one device whose FUSE server grows more roots: each share's
 * queue threads are confined by Landlock to its folder, and a Landlock
 * domain can only ever narrow, so a thread already serving cannot be let
 * into a folder added later. A device per mount keeps every guarantee of
 * --share as it is: confinement to the folder, read-only, the uid and gid
 * maps, no procfs or sysfs, no crossing into other mounts, setuid bits
 * dropped, the seccomp list and Landlock on its own threads.
 *
 * An instance keeps its mounts in mounts.json in its folder (written by
 * its serving process, which owns the running VM; config.json stays the
 * launch's): at each start the folders are plugged again and, once the
 * agent says HELLO, mounted again.
 */
#ifndef HUSK_INSTANCE_MOUNTS_H
#define HUSK_INSTANCE_MOUNTS_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "devices/fs/fuse_server.h"

struct machine;

#define MOUNT_SYNTAX "HOSTDIR:GUESTPATH[:ro]"
#define MOUNTS_MAX   16
#define INSTANCE_GUEST_ID                                                                          \
	1000 /* a cloud image's first user: the owner of what the host user owns */ /* per guest:  \
	                                                                               each is a   \
	                                                                               device on   \
	                                                                               PCI bus 0   \
	                                                                               (32 slots)  \
	                                                                             */

struct mount_spec {
	char *host; /* absolute */
	char *guest;
	bool read_only;
};

/* HOSTDIR:GUESTPATH[:ro], as --mount takes it; HOSTDIR made absolute, not checked further. */
bool mount_spec_parse(const char *text, struct mount_spec *out, GError **err);
/* The guest path's rule (absolute, no . or .., shorter than 4096 bytes): one error line. */
bool mount_guest_path_check(const char *cmd, const char *guest, GError **err);
/* The host folder's: it exists and is a folder. */
bool mount_host_check(const char *host, GError **err);
/*
 * Whether uid and gid (no other groups) may open the folder, and write in
 * it unless read_only, as the serving process of an instance launched with
 * --user will: checked by a child that takes those ids. Only root can.
 */
bool mount_host_check_as(const char *host, bool read_only, uid_t uid, gid_t gid, GError **err);
void mount_spec_clear(struct mount_spec *m);

/* mounts.json's text: a JSON array of {"host", "guest", "ro"}; and back, checked. */
char *mounts_to_json(GPtrArray *specs);
GPtrArray *mounts_from_json(const char *text, GError **err); /* of struct mount_spec * */
GPtrArray *mounts_new(void);
/* A missing file is no mounts. */
GPtrArray *mounts_load(const char *path, GError **err);
bool mounts_save(const char *path, GPtrArray *specs, GError **err);

/*
 * The mounts of a running VM, as its control socket serves them (ops
 * mount, umount, mounts: vmm/instance/protocol.h). 'store' (or NULL) is
 * where they are kept; 'vsock' the socket its agent is reached through.
 * uid_map and gid_map are given to each mount's FUSE server.
 */
struct mount_table *mount_table_new(struct machine *m, const char *store, const char *vsock,
                                    struct fuse_id_map uid_map, struct fuse_id_map gid_map);
void mount_table_free(struct mount_table *t);
/* Plugs the stored mounts (before the guest boots); one that cannot be is said and kept. */
void mount_table_plug_stored(struct mount_table *t);
/* Asks the agent, on a thread of its own, to mount every plugged mount (after its HELLO). */
void mount_table_remount(struct mount_table *t);
/* Answers the ops above; false with *handled unset for any other op. */
bool mount_table_answer(struct mount_table *t, const char *op, JsonObject *request,
                        JsonObject *reply, bool *handled, GError **err);

/*
 * The client side: one MOUNT (umount false) or UMOUNT through the agent
 * behind 'vsock', answered DONE, or an error (the agent's words, one line).
 */
bool mount_agent_call(const char *vsock, bool umount, const char *tag, const char *guest, int slot,
                      bool read_only, GError **err);

#endif
