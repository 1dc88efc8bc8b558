/* SPDX-License-Identifier: MIT */
/*
 * Instances: named VMs that outlive the command that made them. Each is a
 * folder under $HUSK_HOME/instances (its saved configuration, disk
 * overlay, cloud-init seed, console log and control socket) and, while
 * it runs, one detached husk process that serves it.
 *
 * Two locks: 'lock', which each command that changes an instance holds
 * while it works (commands on one instance take turns), and 'running',
 * which the serving process holds for its whole life. The kernel lets go
 * of both when a process dies, however it dies, so a killed husk or a
 * rebooted host leaves an instance that is simply stopped.
 *
 * An instance launched with --user (root giving root up) keeps what its
 * serving process writes after the drop in state/, a folder that user
 * owns: the console log, the sockets, mounts.json and exit-status. The
 * configuration, disks and locks stay in the folder root owns, so that
 * user cannot change what the next start as root opens. Without state/,
 * those files are in the instance's folder itself.
 */
#ifndef HUSK_INSTANCE_H
#define HUSK_INSTANCE_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#define INSTANCE_NAME_MAX 63 /* a host name's label */
#define EXIT_STATUS_MAX   16 /* exit-status: a number and a newline */

struct instance {
	char *name;
	char *dir;
	char *state_dir; /* dir/state when it is a real folder, else dir */
	int lock_fd;     /* -1 unless instance_lock() holds it */
};

/* $HUSK_HOME, else $XDG_DATA_HOME/husk, else ~/.local/share/husk. */
char *instance_home(void);
/* Where downloaded and resolved base images are kept. */
char *instance_image_cache(void);

/* 1 to 63 of a-z, 0-9 and -, not starting or ending with -: a host name. */
bool instance_name_check(const char *name, GError **err);

/* The instance's folder, which need not exist (instance_exists() says). */
struct instance *instance_get(const char *name, GError **err);
bool instance_exists(const struct instance *inst);
void instance_free(struct instance *inst);

/* A file in the instance's folder: "config.json", "control.sock", ... */
char *instance_path(const struct instance *inst, const char *file);

/* A file the serving process writes: "console.log", "control.sock", ... */
char *instance_state_path(const struct instance *inst, const char *file);

/*
 * Makes state/, owned by uid and gid, for an instance whose serving
 * process gives root up. Only root can.
 */
bool instance_make_state_dir(struct instance *inst, uid_t uid, gid_t gid, GError **err);

/*
 * Reads a state file, which the serving process's user may have replaced
 * with anything: a regular file of at most max bytes, no symlink, FIFO or
 * device. *text ends in a NUL. False with errno set (EFBIG: too big).
 */
bool instance_read_state(const struct instance *inst, const char *file, size_t max, char **text,
                         size_t *len);

/*
 * Reads a file root acts on (config.json): owned by root or by whoever
 * runs husk, not writable by group or others, in a folder no one else
 * may write to. Anything else is refused with one line.
 */
bool instance_read_trusted(const struct instance *inst, const char *file, char **text,
                           GError **err);

/* Every instance's name, sorted. */
GPtrArray *instance_list(void);

/*
 * Takes the command lock without waiting: fails with HUSK_EXIT_BUSY when
 * another command holds it. instance_free() lets go.
 */
bool instance_lock(struct instance *inst, GError **err);

/*
 * The serving process's lock, taken by that process for its life: false
 * with HUSK_EXIT_BUSY when the instance already runs.
 */
bool instance_claim_running(const struct instance *inst, int *fd, GError **err);

/* The serving process's pid, or 0 when nothing serves the instance. */
pid_t instance_running_pid(const struct instance *inst);

/* Removes the instance's folder and everything in it, state/ included. */
bool instance_remove(struct instance *inst, GError **err);

#endif
