/* SPDX-License-Identifier: MIT */
/* husk run --image: a container image's app in its own VM. */
#ifndef HUSK_CLI_RUN_IMAGE_H
#define HUSK_CLI_RUN_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/cli/run_spec.h"
#include "vmm/exec.h"

/* Whether `husk run` was given --image (before any --). */
bool run_image_wanted(int argc, char **argv);
/* argv[0] is "run". Returns the app's exit status, or 124/125/128+N as husk exec does. */
int run_image_main(int argc, char **argv, int64_t start_ns);

/* Runs the spec's app in a VM, its output to 'io'; returns as run_image_main. */
int run_spec_exec(const struct run_spec *spec, int64_t start_ns, const struct exec_io *io);

#endif
