/* SPDX-License-Identifier: MIT */
/*
 * husk run --image --detach --name NAME: the app runs as an instance,
 * served like a cloud image's (vmm/instance/serve.c) by one background
 * husk process, which keeps its stdout and stderr in bounded logs
 * (stdout.log, stderr.log) and its exit status in exit-status.
 */
#ifndef HUSK_CLI_RUN_DETACHED_H
#define HUSK_CLI_RUN_DETACHED_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

#include "vmm/cli/run_spec.h"

struct instance;

/* Makes instance 'name' for the spec and starts it; husk's exit status. */
int run_detached(const char *name, struct run_spec *spec);

/*
 * Starts a stopped image-run instance's app again (husk start, restart);
 * the caller holds the command lock. True once the app runs.
 */
bool run_detached_boot(const char *name, GError **err);

/* list's and info's facts from an image run's folder: image, ports, exit status. */
void run_detached_describe(const struct instance *inst, JsonObject *d);

#endif
