/* SPDX-License-Identifier: MIT */
/*
 * The x86 machine: a KVM VM with its RAM, in-kernel interrupt controllers,
 * vCPUs, legacy devices and ACPI tables, booted into a Linux kernel. The
 * calling thread becomes the I/O thread while the machine runs.
 */
#ifndef HUSK_MACHINE_H
#define HUSK_MACHINE_H

#include <glib.h>

#include "vmm/options.h"
#include "vmm/stop.h"

struct machine;

/* Errors carry their exit status as the GError code (vmm/error.h). */
struct machine *machine_create(const struct vm_config *cfg, GError **err);

/* Runs until the guest or the user stops the VM; *signal gets the signal for STOP_SIGNAL. */
enum stop_reason machine_run(struct machine *m, int *signal);

void machine_destroy(struct machine *m);

/* An ACPI power-button press: the guest's OS decides what to do (systemd powers off). */
void machine_press_power_button(struct machine *m);

/* Stops the VM as 'reason' would (the first reason wins); from any thread. */
void machine_request_stop(struct machine *m, enum stop_reason reason);

/*
 * SIGINT, SIGTERM and SIGHUP call fn (on the I/O thread) instead of stopping
 * the VM: husk run --image passes them on to the app, and stops the VM itself.
 */
void machine_on_signal(struct machine *m, void (*fn)(void *data, int signo), void *data);

/* The I/O thread's loop, for work that runs alongside the VM (husk exec's output). */
GMainContext *machine_context(struct machine *m);

#endif
