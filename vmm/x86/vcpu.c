// SPDX-License-Identifier: MIT
/* An x86 vCPU: CPUID, MSRs, FPU and local APIC at creation, long mode at boot, port I/O. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/arch.h"
#include "vmm/error.h"
#include "vmm/vcpu.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/long_mode.h"
#include "vmm/x86/state.h"

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_FAST_STR (1ULL << 0)
#define MSR_MTRR_DEF_TYPE    0x2ff
#define MTRR_ENABLE          (1ULL << 11)
#define MTRR_TYPE_WRITEBACK  6
#define APIC_LVT0            0x350
#define APIC_LVT1            0x360
#define APIC_DELIVERY_EXTINT 7
#define APIC_DELIVERY_NMI    4

static bool vcpu_ioctl(struct vcpu *v, unsigned long req, void *arg, const char *what, GError **err)
{
	if (ioctl(v->fd, req, arg) >= 0)
		return true;
	g_set_error(err, HUSK_ERROR, HUSK_EXIT_RUNTIME, "vCPU %u: %s: %s", v->id, what,
	            g_strerror(errno));
	return false;
}

static bool set_msrs(struct vcpu *v, GError **err)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[2];
	} msrs = {
	    .hdr.nmsrs = 2,
	    .entries =
	        {
	            {.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STR},
	            /* Without this, Linux treats RAM as uncached until it sets up PAT. */
	            {.index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE | MTRR_TYPE_WRITEBACK},
	        },
	};
	int n = ioctl(v->fd, KVM_SET_MSRS, &msrs);

	if (n == 2)
		return true;
	g_set_error(err, HUSK_ERROR, HUSK_EXIT_HOST, "vCPU %u: KVM_SET_MSRS set %d of 2 MSRs",
	            v->id, n);
	return false;
}

/* LINT0 carries the 8259's interrupts (ExtINT) and LINT1 NMIs, as on a PC. */
static bool set_lapic_lints(struct vcpu *v, GError **err)
{
	struct kvm_lapic_state lapic;
	uint32_t lvt;

	if (!vcpu_ioctl(v, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC", err))
		return false;
	memcpy(&lvt, &lapic.regs[APIC_LVT0], 4);
	lvt = (lvt & ~0x700U) | (APIC_DELIVERY_EXTINT << 8);
	memcpy(&lapic.regs[APIC_LVT0], &lvt, 4);
	memcpy(&lvt, &lapic.regs[APIC_LVT1], 4);
	lvt = (lvt & ~0x700U) | (APIC_DELIVERY_NMI << 8);
	memcpy(&lapic.regs[APIC_LVT1], &lvt, 4);
	return vcpu_ioctl(v, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC", err);
}

bool arch_vcpu_init(struct arch_vm *a, struct vcpu *v, GError **err)
{
	struct kvm_cpuid2 *cpuid = cpuid_for_vcpu(a->state->cpuid, v->id);
	bool ok = vcpu_ioctl(v, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2", err);
	g_free(cpuid);
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80}; /* the architectural reset values */
	return ok && set_msrs(v, err) && vcpu_ioctl(v, KVM_SET_FPU, &fpu, "KVM_SET_FPU", err) &&
	       set_lapic_lints(v, err);
}

/* The kernel's 64-bit entry point (the BSP only: APs wait for INIT/SIPI). */
bool arch_vcpu_boot(struct vcpu *v, const struct arch_boot *boot, GError **err)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (!vcpu_ioctl(v, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS", err))
		return false;
	long_mode_set_sregs(&sregs);
	long_mode_set_regs(&regs, boot->entry, boot->boot_arg);
	return vcpu_ioctl(v, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS", err) &&
	       vcpu_ioctl(v, KVM_SET_REGS, &regs, "KVM_SET_REGS", err);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* A string instruction (rep outsb) arrives as 'count' accesses in a row. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		bus_dispatch(v->env->pio, run->io.port, data, run->io.size, is_write);
}

enum arch_exit arch_handle_exit(struct vcpu *v)
{
	switch (v->run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return ARCH_EXIT_CONTINUE;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault: on a PC that resets the machine. */
		stop_request(&v->env->stop, STOP_TRIPLE_FAULT);
		return ARCH_EXIT_STOP;
	default:
		return ARCH_EXIT_UNKNOWN;
	}
}

uint64_t arch_vcpu_pc(struct vcpu *v)
{
	struct kvm_regs regs;

	return ioctl(v->fd, KVM_GET_REGS, &regs) == 0 ? regs.rip : 0;
}

const char *arch_pc_name(void)
{
	return "rip";
}
