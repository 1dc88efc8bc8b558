/* SPDX-License-Identifier: MIT */
/* The arm64 machine's own state behind struct arch_vm (vmm/arch.h): vmm/arm64/ only. */
#ifndef HUSK_ARM64_STATE_H
#define HUSK_ARM64_STATE_H

#include <linux/kvm.h>

#include "devices/pl061.h"

struct arch_state {
	struct kvm_vcpu_init init; /* KVM_ARM_PREFERRED_TARGET, with PSCI 0.2 */
	int gic_fd;
	int its_fd;
	uint64_t dtb_addr;  /* from arch_load_kernel, for arch_describe_machine */
	struct pl061 *gpio; /* the power button's controller */
};

#endif
