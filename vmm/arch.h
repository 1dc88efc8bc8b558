/* SPDX-License-Identifier: MIT */
/*
 * The seam between the generic machine (vmm/machine.c, vmm/vcpu.c, the
 * buses and devices) and what one CPU architecture does its own way:
 * setting up the VM and its interrupt controller, a vCPU's registers,
 * the kernel's boot protocol, the description of the machine the kernel
 * reads (ACPI tables on x86, a device tree on arm64), platform devices
 * and exits only that architecture has. vmm/x86/ and vmm/arm64/ each
 * implement all of it; meson builds the host's one. Where things live in
 * guest memory is the architecture's too: vmm/layout.h.
 */
#ifndef HUSK_ARCH_H
#define HUSK_ARCH_H

#include <glib.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/guest_memory.h"
#include "vmm/layout.h"
#include "vmm/stop.h"

struct vm_config;
struct pci_bus;
struct serial;
struct vcpu;
struct arch_state; /* the architecture's own, made by arch_vm_init */

/* What the generic machine shares with its architecture's code. */
struct arch_vm {
	const struct vm_config *cfg;
	int kvm_fd;
	int vm_fd;
	struct guest_memory *mem;
	struct bus *pio; /* empty where the architecture has no port I/O */
	struct bus *mmio;
	struct pci_bus *pci;
	struct stop_hook stop;
	struct arch_state *state;
};

/* Where the kernel was put, for the machine's description and the boot vCPU. */
struct arch_boot {
	uint64_t entry;       /* the boot vCPU's first instruction */
	uint64_t boot_arg;    /* x86: the zero page (%rsi); arm64: the device tree (x0) */
	uint64_t initrd_addr; /* 0 without an initrd */
	uint64_t initrd_size;
};

/* What arch_handle_exit made of an exit the generic vCPU loop does not know. */
enum arch_exit {
	ARCH_EXIT_CONTINUE, /* handled: run on */
	ARCH_EXIT_STOP,     /* handled, and the vCPU stops (it asked for a stop) */
	ARCH_EXIT_UNKNOWN,  /* not this architecture's either: an error */
};

/* A KVM capability husk needs (vmm/host_check.c checks them all). */
struct arch_kvm_cap {
	int cap;
	const char *name;
};
/* What this architecture needs besides the generic ones; ends with {0, NULL}. */
extern const struct arch_kvm_cap arch_required_caps[];

/* Whether the CPU offers hardware virtualization (x86: VMX or SVM; arm64: KVM's EL2). */
bool arch_cpu_has_hw_virt(void);

/* Checks the kernel (and initrd) files without loading them: bad input is a usage error. */
bool arch_check_files(const char *kernel, const char *initrd, GError **err);

/* After KVM_CREATE_VM, before any vCPU: the VM-wide state (x86: IRQ chip, PIT, CPUID). */
bool arch_vm_init(struct arch_vm *a, GError **err);
void arch_vm_destroy(struct arch_vm *a);

/* The guest's physical address width, which bounds where PCI's 64-bit window may go. */
unsigned int arch_phys_bits(const struct arch_vm *a);

/* One vCPU just created (KVM_CREATE_VCPU, its run structure mapped). */
bool arch_vcpu_init(struct arch_vm *a, struct vcpu *v, GError **err);

/* Every vCPU exists (arm64's GIC needs them before it can be set up). */
bool arch_vcpus_ready(struct arch_vm *a, GError **err);

/*
 * The GSI routes KVM starts with, which a KVM_SET_GSI_ROUTING table must
 * keep (x86: the 8259s' and IOAPIC's pins). Writes at most 'max' to 'out',
 * returns how many, and the first GSI free for MSIs in 'next_gsi'.
 */
unsigned int arch_default_irq_routes(struct kvm_irq_routing_entry *out, unsigned int max,
                                     uint32_t *next_gsi);

/* Drives the interrupt controller input 'line' (vmm/irq.h's gsi) to 'level'. */
void arch_set_irq(struct arch_vm *a, uint32_t line, bool level);

/*
 * The platform devices besides PCI's windows and ECAM (which are generic):
 * 'serial' goes where this architecture's console UART lives, on IRQ_SERIAL.
 */
bool arch_add_devices(struct arch_vm *a, struct serial *serial, GError **err);

/* Places the kernel, initrd and command line in guest memory. */
bool arch_load_kernel(struct arch_vm *a, struct arch_boot *boot, GError **err);

/* Writes the machine's description for the loaded kernel: ACPI or a device tree. */
bool arch_describe_machine(struct arch_vm *a, struct arch_boot *boot, GError **err);

/* Puts the boot vCPU at the kernel's entry (the others wait for the guest to start them). */
bool arch_vcpu_boot(struct vcpu *v, const struct arch_boot *boot, GError **err);

/* An exit reason the generic loop (MMIO, system events, errors) does not handle. */
enum arch_exit arch_handle_exit(struct vcpu *v);

/* The vCPU's program counter for error messages, 0 if it cannot be read. */
uint64_t arch_vcpu_pc(struct vcpu *v);
/* What the architecture calls it: "rip", "pc". */
const char *arch_pc_name(void);

/* Asks the guest's OS to power off (an ACPI power button on x86). */
void arch_press_power_button(struct arch_vm *a);

#endif
