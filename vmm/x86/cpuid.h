/* SPDX-License-Identifier: MIT */
/* The CPUID each vCPU sees: what the host's KVM supports, made per-vCPU. */
#ifndef HUSK_CPUID_H
#define HUSK_CPUID_H

#include <glib.h>
#include <linux/kvm.h>

/* KVM_GET_SUPPORTED_CPUID, including KVM's paravirt leaves 0x40000000+. g_free() it. */
struct kvm_cpuid2 *cpuid_supported(int kvm_fd, GError **err);

/* A copy of 'base' with the fields that differ per vCPU filled in. g_free() it. */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *base, unsigned int apic_id);

#endif
