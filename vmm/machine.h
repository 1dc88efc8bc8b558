/* SPDX-License-Identifier: MIT */
/*
 * The machine: a KVM VM with its RAM, in-kernel interrupt controllers,
 * vCPUs, devices and the description a kernel reads of them (what is the
 * architecture's own is behind vmm/arch.h), booted into Linux. Its
 * lifecycle only: create, run, stop, destroy. What a husk process does
 * around it (signals, the terminal, the system-call filter, the exit
 * report) is vmm/process.c's, so that husk run, husk exec and an
 * instance's serving process drive the same machine.
 */
#ifndef HUSK_MACHINE_H
#define HUSK_MACHINE_H

#include <glib.h>

#include "devices/serial.h"
#include "devices/virtio/fs.h"
#include "vmm/options.h"
#include "vmm/stop.h"

struct machine;

/* Errors carry their exit status as the GError code (vmm/error.h). */
struct machine *machine_create(const struct vm_config *cfg, GError **err);

/*
 * Runs until something asks for a stop (the guest, a device, or
 * machine_request_stop): the devices' loop on a thread of its own (the
 * I/O thread), the vCPUs on theirs; the caller waits. Returns why it
 * stopped.
 */
enum stop_reason machine_run(struct machine *m);

void machine_destroy(struct machine *m);

/* A power-button press (ACPI's on x86): the guest's OS decides what to do (systemd powers off). */
void machine_press_power_button(struct machine *m);

/* Stops the VM as 'reason' would (the first reason wins); from any thread. */
void machine_request_stop(struct machine *m, enum stop_reason reason);

/* The I/O thread's loop, for work that runs alongside the VM (husk exec's output). */
GMainContext *machine_context(struct machine *m);

/* The display's device (--gpu), for screenshots; NULL without one. */
struct virtio_gpu *machine_gpu(struct machine *m);

/* The guest's serial console, for the host end of it (vmm/console.h). */
struct serial *machine_serial(struct machine *m);

/* The hook through which the machine's users (a console's Ctrl-A x) ask for a stop. */
struct stop_hook machine_stop_hook(struct machine *m);

/*
 * Once the process-wide system-call filter is on: the hot-plug thread
 * takes its own allow list (SECCOMP_THREAD_PLUG), before any husk mount,
 * and the devices' queue threads theirs, before any guest request; the
 * queue threads of a share plugged later take theirs as it is plugged.
 */
void machine_confine_threads(struct machine *m);

/*
 * Hot-plug of shared folders (husk mount): a virtio-fs device of its own
 * per folder, put on PCI bus 0 while the guest runs, which the guest finds
 * by rescanning its bus (husk-agent does). Each device is a --share's in
 * all: its own FUSE server, its threads under the share's seccomp list
 * and Landlock. Plugging starts those threads from a thread of the
 * machine's own, whose list allows what a share's does (a thread
 * inherits its starter's, and the I/O thread's forbids what a share
 * does); so any thread may call this. Returns the device's slot on bus 0, or -1.
 */
int machine_plug_share(struct machine *m, const struct share_config *cfg, GError **err);
/*
 * Takes the share plugged at 'slot' off the bus and frees it, once the
 * guest has let it go; on the I/O thread (or before machine_run).
 */
bool machine_unplug_share(struct machine *m, int slot, GError **err);

/* --timings: set-up time, memory, FUSE requests and queue polling, to stderr. */
void machine_report(struct machine *m);

#endif
