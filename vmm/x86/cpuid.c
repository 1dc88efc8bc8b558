// SPDX-License-Identifier: MIT
#include "vmm/x86/cpuid.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/error.h"

#define CPUID_FEATURES        0x1
#define CPUID_THERMAL_POWER   0x6
#define CPUID_EXT_TOPOLOGY    0xb
#define CPUID_V2_EXT_TOPOLOGY 0x1f

#define FEAT_ECX_TSC_DEADLINE (1U << 24)
#define FEAT_ECX_HYPERVISOR   (1U << 31)
#define THERMAL_ECX_EPB       (1U << 3) /* energy-performance bias MSR: not emulated */

/*
 * KVM emulates the local APIC's TSC-deadline mode, but before Linux 6.14
 * it left the CPUID bit out of KVM_GET_SUPPORTED_CPUID and said so with
 * KVM_CAP_TSC_DEADLINE_TIMER instead (the KVM API's "known problems",
 * 9.1). Offered, Linux times with it and skips calibrating the APIC
 * timer at boot (a wait of HZ/10 jiffies), as under QEMU and Firecracker.
 */
static void offer_tsc_deadline(int kvm_fd, struct kvm_cpuid2 *c)
{
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) <= 0)
		return;
	for (unsigned int i = 0; i < c->nent; i++)
		if (c->entries[i].function == CPUID_FEATURES)
			c->entries[i].ecx |= FEAT_ECX_TSC_DEADLINE;
}

struct kvm_cpuid2 *cpuid_supported(int kvm_fd, GError **err)
{
	/* KVM says E2BIG until the buffer is big enough (hosts report about 80 leaves). */
	for (unsigned int n = 256; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = g_malloc0(sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));

		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			offer_tsc_deadline(kvm_fd, c);
			return c;
		}
		g_free(c);
		if (errno != E2BIG)
			break;
	}
	g_set_error(err, HUSK_ERROR, HUSK_EXIT_HOST, "KVM_GET_SUPPORTED_CPUID: %s",
	            g_strerror(errno));
	return NULL;
}

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *base, unsigned int apic_id)
{
	size_t size = sizeof(*base) + base->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = g_memdup2(base, size);

	for (unsigned int i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case CPUID_FEATURES:
			/* Initial APIC id in EBX[31:24]; tell the guest it is a guest. */
			e->ebx = (e->ebx & 0x00ffffff) | (apic_id << 24);
			e->ecx |= FEAT_ECX_HYPERVISOR;
			break;
		case CPUID_THERMAL_POWER:
			e->ecx &= ~THERMAL_ECX_EPB;
			break;
		case CPUID_EXT_TOPOLOGY:
		case CPUID_V2_EXT_TOPOLOGY:
			e->edx = apic_id; /* x2APIC id, on every sub-leaf */
			break;
		}
	}
	return c;
}
