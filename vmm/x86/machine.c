// SPDX-License-Identifier: MIT
/*
 * The x86 machine behind vmm/arch.h: an in-kernel IOAPIC, PICs and PIT,
 * legacy devices on I/O ports (COM1, i8042, pvpanic, ACPI PM registers,
 * PCI's 0xCF8 config ports), ACPI tables, a bzImage booted at its 64-bit
 * entry.
 */
#include <cpuid.h>
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/pvpanic.h"
#include "devices/serial.h"
#include "firmware/reset_vector.h"
#include "vmm/arch.h"
#include "vmm/error.h"
#include "vmm/options.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/boot_linux.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/long_mode.h"
#include "vmm/x86/state.h"

/* Hardware virtualization in CPUID (Intel SDM vol. 2A, CPUID; AMD APM vol. 3, E.4.2). */
#define CPUID_1_ECX_VMX        (1u << 5)
#define CPUID_80000001_ECX_SVM (1u << 2)

const struct arch_kvm_cap arch_required_caps[] = {
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {0, NULL},
};

bool arch_cpu_has_hw_virt(void)
{
	unsigned int eax, ebx, ecx, edx;

	if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & CPUID_1_ECX_VMX))
		return true;
	return __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) && (ecx & CPUID_80000001_ECX_SVM);
}

bool arch_check_files(const char *kernel, const char *initrd, GError **err)
{
	struct linux_boot_args files = {.kernel_path = kernel, .initrd_path = initrd};

	return linux_check_files(&files, err);
}

bool arch_vm_init(struct arch_vm *a, GError **err)
{
	uint64_t idmap = LAYOUT_KVM_IDMAP;
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};

	a->state = g_new0(struct arch_state, 1);
	/* Intel needs these two pages for real-mode emulation, even if we never use it. */
	if (ioctl(a->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
		return husk_fail_errno(err, HUSK_EXIT_HOST, "KVM_SET_TSS_ADDR");
	if (ioctl(a->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return husk_fail_errno(err, HUSK_EXIT_HOST, "KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(a->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return husk_fail_errno(err, HUSK_EXIT_HOST, "KVM_CREATE_IRQCHIP");
	if (ioctl(a->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return husk_fail_errno(err, HUSK_EXIT_HOST, "KVM_CREATE_PIT2");
	a->state->cpuid = cpuid_supported(a->kvm_fd, err);
	return a->state->cpuid != NULL;
}

void arch_vm_destroy(struct arch_vm *a)
{
	struct arch_state *s = a->state;

	if (!s)
		return;
	g_free(s->cpuid);
	g_clear_pointer(&s->i8042, i8042_destroy);
	g_clear_pointer(&s->pvpanic, pvpanic_destroy);
	g_clear_pointer(&s->acpi_pm, acpi_pm_destroy);
	g_clear_pointer(&a->state, g_free);
}

/* MAXPHYADDR the vCPUs report (CPUID 0x80000008, EAX bits 7:0); 36 without the leaf. */
unsigned int arch_phys_bits(const struct arch_vm *a)
{
	const struct kvm_cpuid2 *cpuid = a->state->cpuid;

	for (uint32_t i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == 0x80000008 && (cpuid->entries[i].eax & 0xff))
			return cpuid->entries[i].eax & 0xff;
	return 36;
}

bool arch_vcpus_ready(struct arch_vm *a, GError **err)
{
	return true;
}

#define IOAPIC_PINS 24
#define PIC_PINS    16

/* What KVM_CREATE_IRQCHIP sets up: ISA IRQs to both 8259s and the IOAPIC. */
unsigned int arch_default_irq_routes(struct kvm_irq_routing_entry *out, unsigned int max,
                                     uint32_t *next_gsi)
{
	unsigned int n = 0;

	for (uint32_t gsi = 0; gsi < IOAPIC_PINS && n + 2 <= max; gsi++) {
		struct kvm_irq_routing_entry e = {.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP};

		e.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e.u.irqchip.pin = gsi;
		out[n++] = e;
		if (gsi < PIC_PINS) {
			e.u.irqchip.irqchip =
			    gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			e.u.irqchip.pin = gsi % 8;
			out[n++] = e;
		}
	}
	*next_gsi = IOAPIC_PINS;
	return n;
}

void arch_set_irq(struct arch_vm *a, uint32_t line, bool level)
{
	struct kvm_irq_level irq = {.irq = line, .level = level};

	ioctl(a->vm_fd, KVM_IRQ_LINE, &irq);
}

static bool register_pio(struct arch_vm *a, uint16_t port, uint16_t len, bus_access_fn fn,
                         void *opaque, const char *name, GError **err)
{
	if (bus_register(a->pio, port, len, fn, opaque, name))
		return true;
	g_set_error(err, HUSK_ERROR, HUSK_EXIT_RUNTIME, "%s: I/O ports 0x%x+%u are taken", name,
	            port, len);
	return false;
}

bool arch_add_devices(struct arch_vm *a, struct serial *serial, GError **err)
{
	struct arch_state *s = a->state;

	s->i8042 = i8042_create(a->stop);
	s->pvpanic = pvpanic_create(a->stop);
	s->acpi_pm = acpi_pm_create(a->stop);
	return register_pio(a, PORT_COM1, SERIAL_PORTS, serial_access, serial, "serial", err) &&
	       register_pio(a, PORT_I8042_DATA, 1, i8042_data_access, s->i8042, "i8042", err) &&
	       register_pio(a, PORT_I8042_CMD, 1, i8042_command_access, s->i8042, "i8042", err) &&
	       register_pio(a, PORT_PVPANIC, 1, pvpanic_access, s->pvpanic, "pvpanic", err) &&
	       register_pio(a, PORT_ACPI_PM, PORT_ACPI_PM_LEN, acpi_pm_access, s->acpi_pm,
	                    "acpi-pm", err) &&
	       register_pio(a, PORT_PCI_CONFIG, PORT_PCI_CONFIG_LEN, pci_config_port_access, a->pci,
	                    "pci-config", err);
}

bool arch_load_kernel(struct arch_vm *a, struct arch_boot *boot, GError **err)
{
	struct linux_boot_args args = {
	    .kernel_path = a->cfg->kernel,
	    .initrd_path = a->cfg->initrd,
	    .cmdline = a->cfg->cmdline,
	};
	struct linux_boot lb;

	if (!linux_load(a->mem, &args, &lb, err))
		return false;
	if (!long_mode_write_tables(a->mem)) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_RUNTIME, "cannot write boot page tables");
		return false;
	}
	*boot = (struct arch_boot){.entry = lb.entry,
	                           .boot_arg = lb.zero_page,
	                           .initrd_addr = lb.initrd_addr,
	                           .initrd_size = lb.initrd_size};
	return true;
}

/* The ACPI tables, the reset vector, and where the zero page says the RSDP is. */
bool arch_describe_machine(struct arch_vm *a, struct arch_boot *boot, GError **err)
{
	struct acpi_config acpi = {
	    .ncpus = a->cfg->cpus,
	    .ioapic_addr = LAYOUT_IOAPIC,
	    .ioapic_id = (uint8_t)a->cfg->cpus,
	    .pm_port = PORT_ACPI_PM,
	    .pvpanic_port = PORT_PVPANIC,
	    .com1_port = PORT_COM1,
	    .com1_irq = IRQ_COM1,
	    .power_button_gsi = IRQ_POWER_BUTTON,
	    .pci_ecam = LAYOUT_PCI_ECAM,
	    .pci_config_port = PORT_PCI_CONFIG,
	    .pci_mmio32_start = (uint32_t)LAYOUT_PCI_MMIO32,
	    .pci_mmio32_size = (uint32_t)LAYOUT_PCI_MMIO32_SIZE,
	    .pci_mmio64_start = a->pci->mmio64_base,
	    .pci_mmio64_size = a->pci->mmio64_size,
	};
	/* The tables end where the reset vector's 16 bytes begin. */
	uint64_t size = RESET_VECTOR_ADDR - LAYOUT_ACPI_START;
	uint8_t reset[9];
	uint64_t rsdp;

	if (a->cfg->dump_dtb)
		return husk_fail(
		    err, HUSK_EXIT_USAGE,
		    "--dump-dtb: an x86 machine has no device tree (ACPI describes it)");
	reset_vector_code(reset, PORT_ACPI_PM + ACPI_PM_RESET, ACPI_RESET_VALUE);
	gm_write(a->mem, RESET_VECTOR_ADDR, reset, sizeof(reset));
	rsdp = acpi_build(&acpi, gm_ptr(a->mem, LAYOUT_ACPI_START, size), LAYOUT_ACPI_START, size);
	if (!rsdp) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_RUNTIME, "the ACPI tables do not fit");
		return false;
	}
	return linux_set_rsdp(a->mem, boot->boot_arg, rsdp, err);
}

void arch_press_power_button(struct arch_vm *a)
{
	arch_set_irq(a, IRQ_POWER_BUTTON, true);
	arch_set_irq(a, IRQ_POWER_BUTTON, false);
}
