/* SPDX-License-Identifier: MIT */
/* The command line of `husk run`, checked into a vm_config. */
#ifndef HUSK_OPTIONS_H
#define HUSK_OPTIONS_H

#include <glib.h>
#include <stdbool.h>

#include "vmm/config.h"

/*
 * Parses `run`'s arguments (argv[0] is "run"). On failure 'err' holds one
 * line without the "husk: " prefix; its code is HUSK_EXIT_USAGE.
 */
bool options_parse_run(int argc, char **argv, struct vm_config *cfg, GError **err);

#endif
