/* SPDX-License-Identifier: MIT */
/* The x86 machine's own state behind struct arch_vm (vmm/arch.h): vmm/x86/ only. */
#ifndef HUSK_X86_STATE_H
#define HUSK_X86_STATE_H

#include <linux/kvm.h>

struct arch_state {
	struct kvm_cpuid2 *cpuid; /* what KVM supports, each vCPU's taken from it */
	struct i8042 *i8042;
	struct pvpanic *pvpanic;
	struct acpi_pm *acpi_pm;
};

#endif
