/* SPDX-License-Identifier: MIT */
/*
 * What a husk process does around the machine it drives, the same for
 * husk run, husk exec and an instance's serving process: the system-call
 * filters and capabilities once the machine is set up, SIGINT, SIGTERM
 * and SIGHUP, the terminal console, the time limit, and --timings' report.
 */
#ifndef HUSK_PROCESS_H
#define HUSK_PROCESS_H

#include <glib.h>

#include "vmm/config.h"
#include "vmm/machine.h"
#include "vmm/seccomp_threads.h"
#include "vmm/stop.h"

/*
 * machine_create(), then, unless cfg->no_seccomp, the process-wide filter
 * and the per-thread lists armed for the threads the machine starts. 'io'
 * (SECCOMP_IO_*) is what the driver's own work on the I/O thread needs
 * (husk exec reads the guest's output files there); what the devices need
 * follows from 'cfg'. Errors carry their exit status (vmm/error.h).
 */
struct machine *process_create_machine(const struct vm_config *cfg, unsigned int io, GError **err);

/*
 * The same, with the driver's file work on the I/O thread kept (by
 * Landlock) beneath 'io_dir', which must outlive the machine.
 */
struct machine *process_create_machine_in(const struct vm_config *cfg, unsigned int io,
                                          const char *io_dir, GError **err);

/*
 * Runs the machine to its end, as machine_run, with the process's side:
 * a signal stops it (STOP_SIGNAL, *signo says which), cfg->console_in is
 * its console, cfg->timeout_s its time limit (STOP_TIMEOUT), and
 * cfg->timings prints the machine's report once it stopped.
 */
enum stop_reason process_run_machine(struct machine *m, const struct vm_config *cfg, int *signo);

/*
 * As process_run_machine, but SIGINT, SIGTERM and SIGHUP call fn (on the
 * I/O thread) instead of stopping the VM: husk run --image passes them on
 * to the app, and stops the VM itself.
 */
enum stop_reason process_run_machine_forwarding(struct machine *m, const struct vm_config *cfg,
                                                int *signo, void (*fn)(void *data, int signo),
                                                void *data);

#endif
