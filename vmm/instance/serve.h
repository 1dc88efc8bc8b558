/* SPDX-License-Identifier: MIT */
/*
 * The process that serves one instance: detached from the command that
 * started it, it runs the VM with the console going to a bounded log,
 * answers the control socket, and ends when the VM does.
 */
#ifndef HUSK_SERVE_H
#define HUSK_SERVE_H

#include <glib.h>
#include <stdbool.h>

/* The console log is cut in two at this size: console.log.1 keeps the older half. */
#define SERVE_LOG_MAX (1024 * 1024)

/*
 * Starts the serving process for 'name', which must hold the command lock,
 * and returns once that process holds the instance's running lock (false,
 * with an error, if it could not start).
 */
bool serve_spawn(const char *name, GError **err);

struct instance;
/* What a serving process does: the VM's whole life; returns its exit status. */
typedef int (*serve_body)(struct instance *inst);

/*
 * serve_spawn, with 'body' in place of the cloud-image VM's: husk run
 * --image --detach serves an image's app so. The body starts with
 * stdout and stderr on husk.log, the running lock on fd 3, from /.
 */
bool serve_spawn_body(const char *name, serve_body body, GError **err);

/* True if 'line' (one console line) is cloud-init's last word: the guest is ready. */
bool serve_line_is_ready(const char *line);

#endif
