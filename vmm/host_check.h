/* SPDX-License-Identifier: MIT */
/* Can this host run husk's VMs? One clear line when it cannot. */
#ifndef HUSK_HOST_CHECK_H
#define HUSK_HOST_CHECK_H

#include <glib.h>
#include <stdbool.h>

#define KVM_DEVICE "/dev/kvm"

/*
 * Opens /dev/kvm and checks the API version and every capability husk
 * relies on. A PVM-backed /dev/kvm is refused unless 'allow_pvm': it
 * cannot boot an unmodified kernel. Returns the fd, or -1 with 'err'
 * set (code HUSK_EXIT_HOST).
 */
int host_open_kvm(bool allow_pvm, GError **err);

/* Whether CPUID shows VMX (Intel) or SVM (AMD). */
bool host_cpu_has_hw_virt(void);
/* Whether /dev/kvm is PVM's: its module at 'module_path', or a CPU without VMX and SVM. */
bool host_kvm_is_pvm(const char *module_path, bool cpu_has_hw_virt);

#endif
