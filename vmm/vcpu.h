/* SPDX-License-Identifier: MIT */
/*
 * One vCPU: a thread looping on KVM_RUN. MMIO exits are dispatched to the
 * bus and handled there, on this thread; exits only one architecture has
 * (x86's port I/O) go to arch_handle_exit (vmm/arch.h); anything else
 * that ends the VM is reported through the stop hook.
 */
#ifndef HUSK_VCPU_H
#define HUSK_VCPU_H

#include <glib.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "vmm/arch.h"
#include "vmm/bus.h"
#include "vmm/stop.h"

/* What every vCPU of a VM shares. */
struct vcpu_env {
	int vm_fd;
	size_t run_size; /* KVM_GET_VCPU_MMAP_SIZE */
	struct arch_vm *arch;
	const struct bus *pio;
	const struct bus *mmio;
	struct stop_hook stop;
	atomic_bool *stopping; /* set once the VM is going down */
};

struct vcpu {
	const struct vcpu_env *env;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool running;
	int64_t first_run_ns; /* CLOCK_MONOTONIC at the first KVM_RUN */
	char *error; /* why this vCPU stopped the VM, printed once the console is restored */
};

bool vcpu_create(struct vcpu *v, const struct vcpu_env *env, unsigned int id, GError **err);
bool vcpu_start(struct vcpu *v, GError **err);
/* Makes a running KVM_RUN return so the thread sees *env->stopping. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);

/* Installs the signal handler vcpu_kick() relies on; once per process. */
void vcpu_init_signals(void);

#endif
