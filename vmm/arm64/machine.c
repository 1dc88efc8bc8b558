// SPDX-License-Identifier: MIT
/*
 * The arm64 machine behind vmm/arch.h: RAM from 1 GiB, an in-kernel
 * GICv3 with an ITS for PCI's MSIs, the architected timer, a 16550A on
 * MMIO, PSCI 0.2 (in KVM) for CPU bring-up, power-off and reset, and a
 * device tree (vmm/arm64/fdt.h) for the kernel to find all that.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "devices/pci.h"
#include "devices/serial.h"
#include "vmm/arch.h"
#include "vmm/arm64/boot_image.h"
#include "vmm/arm64/fdt.h"
#include "vmm/arm64/state.h"
#include "vmm/config.h"
#include "vmm/error.h"

/* What a 16550A's divisor counts from (the PC's 1.8432 MHz crystal). */
#define UART_CLOCK_HZ 1843200
/* SPIs the GIC has: KVM's count includes the 32 private interrupts. */
#define GIC_NR_IRQS 128

const struct arch_kvm_cap arch_required_caps[] = {
    {KVM_CAP_ARM_PSCI_0_2, "KVM_CAP_ARM_PSCI_0_2"},
    {KVM_CAP_DEVICE_CTRL, "KVM_CAP_DEVICE_CTRL"},
    {KVM_CAP_ONE_REG, "KVM_CAP_ONE_REG"},
    {0, NULL},
};

/* KVM on arm64 runs only where the kernel was entered at EL2: a /dev/kvm is real hardware. */
bool arch_cpu_has_hw_virt(void)
{
	return true;
}

bool arch_check_files(const char *kernel, const char *initrd, GError **err)
{
	struct arm64_image img;
	uint8_t *data;
	size_t len;

	if (!arm64_image_read(kernel, &data, &len, err))
		return false;
	bool ok = arm64_image_parse(data, len, kernel, &img, err);
	g_free(data);
	if (ok && initrd && access(initrd, R_OK) < 0)
		ok = husk_fail(err, HUSK_EXIT_USAGE, "--initrd: %s: %s", initrd, g_strerror(errno));
	return ok;
}

bool arch_vm_init(struct arch_vm *a, GError **err)
{
	struct arch_state *s = g_new0(struct arch_state, 1);

	a->state = s;
	s->gic_fd = -1;
	s->its_fd = -1;
	if (ioctl(a->vm_fd, KVM_ARM_PREFERRED_TARGET, &s->init) < 0)
		return husk_fail_errno(err, HUSK_EXIT_HOST, "KVM_ARM_PREFERRED_TARGET");
	s->init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	return true;
}

void arch_vm_destroy(struct arch_vm *a)
{
	struct arch_state *s = a->state;

	if (!s)
		return;
	if (s->its_fd >= 0)
		close(s->its_fd);
	if (s->gic_fd >= 0)
		close(s->gic_fd);
	pl061_free(s->gpio);
	g_clear_pointer(&a->state, g_free);
}

/* KVM's default IPA space for a VM made with type 0. */
unsigned int arch_phys_bits(const struct arch_vm *a)
{
	return 40;
}

static bool set_attr(int fd, uint32_t group, uint64_t attr, const void *value, const char *what,
                     GError **err)
{
	struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uintptr_t)value};

	if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) == 0)
		return true;
	return husk_fail(err, HUSK_EXIT_HOST, "GICv3: %s: %s", what, g_strerror(errno));
}

static int create_device(struct arch_vm *a, uint32_t type, const char *what, GError **err)
{
	struct kvm_create_device dev = {.type = type};

	if (ioctl(a->vm_fd, KVM_CREATE_DEVICE, &dev) < 0) {
		husk_fail(err, HUSK_EXIT_HOST,
		          "%s: %s (this host's KVM has no in-kernel GICv3 to give the guest)", what,
		          g_strerror(errno));
		return -1;
	}
	return (int)dev.fd;
}

/* The ITS turns PCI's MSI writes into LPIs; each requester ID is its device ID. */
static bool create_its(struct arch_vm *a, GError **err)
{
	struct arch_state *s = a->state;
	uint64_t its = LAYOUT_GIC_ITS;

	s->its_fd = create_device(a, KVM_DEV_TYPE_ARM_VGIC_ITS, "KVM_CREATE_DEVICE(ITS)", err);
	return s->its_fd >= 0 &&
	       set_attr(s->its_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, &its,
	                "ITS address", err) &&
	       set_attr(s->its_fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
	                "ITS init", err);
}

/* The GICv3 is made once every vCPU exists: each gets a redistributor. */
bool arch_vcpus_ready(struct arch_vm *a, GError **err)
{
	struct arch_state *s = a->state;
	uint64_t dist = LAYOUT_GIC_DIST, redist = LAYOUT_GIC_REDIST;
	uint32_t nr_irqs = GIC_NR_IRQS;

	if (LAYOUT_GIC_REDIST + a->cfg->cpus * LAYOUT_GIC_REDIST_SIZE > LAYOUT_GIC_REDIST_END)
		return husk_fail(err, HUSK_EXIT_USAGE, "--cpus: at most %u on arm64",
		                 (unsigned int)((LAYOUT_GIC_REDIST_END - LAYOUT_GIC_REDIST) /
		                                LAYOUT_GIC_REDIST_SIZE));
	s->gic_fd = create_device(a, KVM_DEV_TYPE_ARM_VGIC_V3, "KVM_CREATE_DEVICE(GICv3)", err);
	return s->gic_fd >= 0 &&
	       set_attr(s->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
	                "distributor address", err) &&
	       set_attr(s->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
	                "redistributor address", err) &&
	       set_attr(s->gic_fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs, "interrupt count",
	                err) &&
	       set_attr(s->gic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
	                "init", err) &&
	       create_its(a, err);
}

/*
 * Wired lines are driven with KVM_IRQ_LINE, which needs no route; only
 * MSIs have routes, through the ITS, from GSI 0.
 */
unsigned int arch_default_irq_routes(struct kvm_irq_routing_entry *out, unsigned int max,
                                     uint32_t *next_gsi)
{
	*next_gsi = 0;
	return 0;
}

void arch_set_irq(struct arch_vm *a, uint32_t line, bool level)
{
	struct kvm_irq_level irq = {
	    .irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (line + 32),
	    .level = level,
	};

	ioctl(a->vm_fd, KVM_IRQ_LINE, &irq);
}

static void gpio_irq(void *opaque, bool level)
{
	arch_set_irq(opaque, IRQ_GPIO, level);
}

bool arch_add_devices(struct arch_vm *a, struct serial *serial, GError **err)
{
	a->state->gpio = pl061_new(gpio_irq, a);
	if (!bus_register(a->mmio, LAYOUT_UART, SERIAL_PORTS, serial_access, serial, "serial"))
		return husk_fail(err, HUSK_EXIT_RUNTIME, "serial: its MMIO range is taken");
	if (!bus_register(a->mmio, LAYOUT_GPIO, LAYOUT_GPIO_SIZE, pl061_access, a->state->gpio,
	                  "gpio"))
		return husk_fail(err, HUSK_EXIT_RUNTIME, "gpio: its MMIO range is taken");
	return true;
}

bool arch_load_kernel(struct arch_vm *a, struct arch_boot *boot, GError **err)
{
	struct arm64_boot ab;

	if (!arm64_load(a->mem, LAYOUT_RAM_START, a->cfg->kernel, a->cfg->initrd, &ab, err))
		return false;
	*boot = (struct arch_boot){.entry = ab.entry,
	                           .boot_arg = ab.dtb_addr,
	                           .initrd_addr = ab.initrd_addr,
	                           .initrd_size = ab.initrd_size};
	return true;
}

static bool dump_dtb(const char *path, const void *dtb, size_t len, GError **err)
{
	GError *e = NULL;

	if (g_file_set_contents(path, dtb, (gssize)len, &e))
		return true;
	husk_fail(err, HUSK_EXIT_USAGE, "--dump-dtb: %s", e->message);
	g_error_free(e);
	return false;
}

bool arch_describe_machine(struct arch_vm *a, struct arch_boot *boot, GError **err)
{
	struct fdt_uart uart = {.addr = LAYOUT_UART,
	                        .size = LAYOUT_UART_SIZE,
	                        .spi = IRQ_SERIAL,
	                        .clock_hz = UART_CLOCK_HZ};
	struct fdt_pci pci = {.ecam = LAYOUT_PCI_ECAM,
	                      .ecam_size = LAYOUT_PCI_ECAM_SIZE,
	                      .mmio32 = LAYOUT_PCI_MMIO32,
	                      .mmio32_size = LAYOUT_PCI_MMIO32_SIZE,
	                      .mmio64 = a->pci->mmio64_base,
	                      .mmio64_size = a->pci->mmio64_size};
	struct fdt_gpio gpio = {.addr = LAYOUT_GPIO,
	                        .size = LAYOUT_GPIO_SIZE,
	                        .spi = IRQ_GPIO,
	                        .power_line = GPIO_POWER_LINE};
	const struct fdt_device devs[] = {
	    {fdt_uart_node, &uart}, {fdt_gpio_node, &gpio}, {fdt_pci_node, &pci}};
	char *stdout_path = fdt_uart_path(&uart);
	struct fdt_board b = {
	    .ncpus = a->cfg->cpus,
	    .ram_start = LAYOUT_RAM_START,
	    .ram_size = a->mem->ram_size,
	    .bootargs = a->cfg->cmdline,
	    .stdout_path = stdout_path,
	    .initrd_start = boot->initrd_addr,
	    .initrd_end = boot->initrd_addr + boot->initrd_size,
	    .gic_dist = LAYOUT_GIC_DIST,
	    .gic_dist_size = LAYOUT_GIC_DIST_SIZE,
	    .gic_redist = LAYOUT_GIC_REDIST,
	    .gic_redist_size = a->cfg->cpus * LAYOUT_GIC_REDIST_SIZE,
	    .gic_its = LAYOUT_GIC_ITS,
	    .gic_its_size = LAYOUT_GIC_ITS_SIZE,
	};
	void *dtb = gm_ptr(a->mem, boot->boot_arg, ARM64_DTB_MAX);
	size_t len = 0;

	/* The kernel seeds its random pool from this before any device is up. */
	if (getrandom(b.rng_seed, sizeof(b.rng_seed), 0) != sizeof(b.rng_seed))
		husk_fail(err, HUSK_EXIT_HOST, "getrandom: %s", g_strerror(errno));
	else if (!dtb)
		husk_fail(err, HUSK_EXIT_RUNTIME, "the device tree's place is outside guest RAM");
	else
		len = fdt_build(&b, devs, G_N_ELEMENTS(devs), dtb, ARM64_DTB_MAX, err);
	g_free(stdout_path);
	if (!len)
		return false;
	return !a->cfg->dump_dtb || dump_dtb(a->cfg->dump_dtb, dtb, len, err);
}

/* A key on a GPIO line (the device tree's gpio-keys): Linux reports KEY_POWER. */
void arch_press_power_button(struct arch_vm *a)
{
	pl061_press(a->state->gpio, GPIO_POWER_LINE);
}
