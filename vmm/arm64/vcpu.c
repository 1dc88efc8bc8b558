// SPDX-License-Identifier: MIT
/* An arm64 vCPU: KVM_ARM_VCPU_INIT with PSCI 0.2; the boot vCPU at the Image's entry, x0 the device
 * tree. */
#include <errno.h>
#include <stddef.h>
#include <sys/ioctl.h>

#include "vmm/arch.h"
#include "vmm/arm64/state.h"
#include "vmm/error.h"
#include "vmm/vcpu.h"

#define CORE_REG(field)                                                                            \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |                                     \
	 (offsetof(struct kvm_regs, field) / sizeof(uint32_t)))

bool arch_vcpu_init(struct arch_vm *a, struct vcpu *v, GError **err)
{
	struct kvm_vcpu_init init = a->state->init;

	/* Secondaries start off, until the guest asks PSCI's CPU_ON for them. */
	if (v->id > 0)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	if (ioctl(v->fd, KVM_ARM_VCPU_INIT, &init) == 0)
		return true;
	return husk_fail(err, HUSK_EXIT_HOST, "vCPU %u: KVM_ARM_VCPU_INIT: %s", v->id,
	                 g_strerror(errno));
}

static bool set_reg(struct vcpu *v, uint64_t id, uint64_t value, GError **err)
{
	struct kvm_one_reg reg = {.id = id, .addr = (uintptr_t)&value};

	if (ioctl(v->fd, KVM_SET_ONE_REG, &reg) == 0)
		return true;
	return husk_fail(err, HUSK_EXIT_RUNTIME, "vCPU %u: KVM_SET_ONE_REG: %s", v->id,
	                 g_strerror(errno));
}

/* booting.rst: MMU off, interrupts masked at EL1 (KVM's reset state), x0 the DTB, x1-x3 zero. */
bool arch_vcpu_boot(struct vcpu *v, const struct arch_boot *boot, GError **err)
{
	return set_reg(v, CORE_REG(regs.regs[0]), boot->boot_arg, err) &&
	       set_reg(v, CORE_REG(regs.regs[1]), 0, err) &&
	       set_reg(v, CORE_REG(regs.regs[2]), 0, err) &&
	       set_reg(v, CORE_REG(regs.regs[3]), 0, err) &&
	       set_reg(v, CORE_REG(regs.pc), boot->entry, err);
}

/* Power-off and reset come as KVM_EXIT_SYSTEM_EVENT (PSCI), which the generic loop handles. */
enum arch_exit arch_handle_exit(struct vcpu *v)
{
	return ARCH_EXIT_UNKNOWN;
}

uint64_t arch_vcpu_pc(struct vcpu *v)
{
	uint64_t pc = 0;
	struct kvm_one_reg reg = {.id = CORE_REG(regs.pc), .addr = (uintptr_t)&pc};

	return ioctl(v->fd, KVM_GET_ONE_REG, &reg) == 0 ? pc : 0;
}

const char *arch_pc_name(void)
{
	return "pc";
}
