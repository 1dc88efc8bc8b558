// SPDX-License-Identifier: MIT
#include "vmm/arm64/fdt.h"

#include <libfdt.h>
#include <stdio.h>

#include "vmm/error.h"

/* Interrupt specifiers of the GIC binding: type, number, flags. */
#define GIC_SPI        0
#define GIC_PPI        1
#define IRQ_EDGE_RISE  1
#define IRQ_LEVEL_HIGH 4

#define PHANDLE_GIC       1
#define PHANDLE_ITS       2
#define PHANDLE_APB_CLOCK 3
#define PHANDLE_GPIO      4

#define KEY_POWER        116 /* linux/input-event-codes.h */
#define GPIO_ACTIVE_HIGH 0

/* libfdt's sequential writer returns 0 or a negative FDT_ERR_*; stop at the first. */
#define TRY(call)                                                                                  \
	do {                                                                                       \
		if ((call) < 0)                                                                    \
			return false;                                                              \
	} while (0)

/* A reg (or ranges) property of (address, size) pairs, two cells each. */
static int prop_reg64(void *fdt, const char *name, const uint64_t *pairs, size_t n)
{
	fdt64_t cells[8];

	g_assert(n <= G_N_ELEMENTS(cells));
	for (size_t i = 0; i < n; i++)
		cells[i] = cpu_to_fdt64(pairs[i]);
	return fdt_property(fdt, name, cells, (int)(n * sizeof(cells[0])));
}

static int prop_cells(void *fdt, const char *name, const uint32_t *v, size_t n)
{
	fdt32_t cells[24];

	g_assert(n <= G_N_ELEMENTS(cells));
	for (size_t i = 0; i < n; i++)
		cells[i] = cpu_to_fdt32(v[i]);
	return fdt_property(fdt, name, cells, (int)(n * sizeof(cells[0])));
}

static int begin_node_at(void *fdt, const char *name, uint64_t addr)
{
	char node[64];

	snprintf(node, sizeof(node), "%s@%" G_GINT64_MODIFIER "x", name, addr);
	return fdt_begin_node(fdt, node);
}

uint32_t fdt_cpu_mpidr(unsigned int id)
{
	return ((id >> 4) & 0xff) << 8 | (id & 0xf);
}

static bool add_chosen(void *fdt, const struct fdt_board *b)
{
	TRY(fdt_begin_node(fdt, "chosen"));
	if (b->bootargs)
		TRY(fdt_property_string(fdt, "bootargs", b->bootargs));
	if (b->stdout_path)
		TRY(fdt_property_string(fdt, "stdout-path", b->stdout_path));
	if (b->initrd_end > b->initrd_start) {
		TRY(fdt_property_u64(fdt, "linux,initrd-start", b->initrd_start));
		TRY(fdt_property_u64(fdt, "linux,initrd-end", b->initrd_end));
	}
	TRY(fdt_property(fdt, "rng-seed", b->rng_seed, sizeof(b->rng_seed)));
	/* husk places PCI's BARs itself (devices/pci.h): the kernel keeps them. */
	TRY(fdt_property_cell(fdt, "linux,pci-probe-only", 1));
	return fdt_end_node(fdt) == 0;
}

static bool add_memory(void *fdt, const struct fdt_board *b)
{
	uint64_t reg[] = {b->ram_start, b->ram_size};

	TRY(begin_node_at(fdt, "memory", b->ram_start));
	TRY(fdt_property_string(fdt, "device_type", "memory"));
	TRY(prop_reg64(fdt, "reg", reg, 2));
	return fdt_end_node(fdt) == 0;
}

static bool add_cpus(void *fdt, const struct fdt_board *b)
{
	TRY(fdt_begin_node(fdt, "cpus"));
	TRY(fdt_property_cell(fdt, "#address-cells", 1));
	TRY(fdt_property_cell(fdt, "#size-cells", 0));
	for (unsigned int i = 0; i < b->ncpus; i++) {
		TRY(begin_node_at(fdt, "cpu", fdt_cpu_mpidr(i)));
		TRY(fdt_property_string(fdt, "device_type", "cpu"));
		TRY(fdt_property_string(fdt, "compatible", "arm,armv8"));
		TRY(fdt_property_string(fdt, "enable-method", "psci"));
		TRY(fdt_property_cell(fdt, "reg", fdt_cpu_mpidr(i)));
		TRY(fdt_end_node(fdt));
	}
	return fdt_end_node(fdt) == 0;
}

/* PSCI 0.2 through HVC, which KVM implements: CPU on/off, system off and reset. */
static bool add_psci(void *fdt)
{
	static const char compat[] = "arm,psci-0.2\0arm,psci";

	TRY(fdt_begin_node(fdt, "psci"));
	TRY(fdt_property(fdt, "compatible", compat, sizeof(compat)));
	TRY(fdt_property_string(fdt, "method", "hvc"));
	return fdt_end_node(fdt) == 0;
}

static bool add_its(void *fdt, const struct fdt_board *b)
{
	uint64_t reg[] = {b->gic_its, b->gic_its_size};

	TRY(begin_node_at(fdt, "msi-controller", b->gic_its));
	TRY(fdt_property_string(fdt, "compatible", "arm,gic-v3-its"));
	TRY(fdt_property(fdt, "msi-controller", NULL, 0));
	TRY(fdt_property_cell(fdt, "#msi-cells", 1));
	TRY(prop_reg64(fdt, "reg", reg, 2));
	TRY(fdt_property_cell(fdt, "phandle", PHANDLE_ITS));
	return fdt_end_node(fdt) == 0;
}

static bool add_gic(void *fdt, const struct fdt_board *b)
{
	uint64_t reg[] = {b->gic_dist, b->gic_dist_size, b->gic_redist, b->gic_redist_size};
	uint32_t maint[] = {GIC_PPI, 9, IRQ_LEVEL_HIGH};

	TRY(begin_node_at(fdt, "intc", b->gic_dist));
	TRY(fdt_property_string(fdt, "compatible", "arm,gic-v3"));
	TRY(fdt_property_cell(fdt, "#interrupt-cells", 3));
	TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
	TRY(fdt_property_cell(fdt, "#address-cells", 2));
	TRY(fdt_property_cell(fdt, "#size-cells", 2));
	TRY(fdt_property(fdt, "ranges", NULL, 0));
	TRY(prop_reg64(fdt, "reg", reg, 4));
	TRY(prop_cells(fdt, "interrupts", maint, 3));
	TRY(fdt_property_cell(fdt, "phandle", PHANDLE_GIC));
	if (b->gic_its_size && !add_its(fdt, b))
		return false;
	return fdt_end_node(fdt) == 0;
}

/* The architected timer's four PPIs: secure, non-secure physical, virtual, hypervisor. */
static bool add_timer(void *fdt)
{
	uint32_t irqs[] = {GIC_PPI, 13, IRQ_LEVEL_HIGH, GIC_PPI, 14, IRQ_LEVEL_HIGH,
	                   GIC_PPI, 11, IRQ_LEVEL_HIGH, GIC_PPI, 10, IRQ_LEVEL_HIGH};

	TRY(fdt_begin_node(fdt, "timer"));
	TRY(fdt_property_string(fdt, "compatible", "arm,armv8-timer"));
	TRY(prop_cells(fdt, "interrupts", irqs, G_N_ELEMENTS(irqs)));
	TRY(fdt_property(fdt, "always-on", NULL, 0));
	return fdt_end_node(fdt) == 0;
}

static bool add_board(void *fdt, const struct fdt_board *b)
{
	TRY(fdt_property_string(fdt, "compatible", "linux,dummy-virt"));
	TRY(fdt_property_string(fdt, "model", "husk"));
	TRY(fdt_property_cell(fdt, "#address-cells", 2));
	TRY(fdt_property_cell(fdt, "#size-cells", 2));
	TRY(fdt_property_cell(fdt, "interrupt-parent", PHANDLE_GIC));
	return add_chosen(fdt, b) && add_memory(fdt, b) && add_cpus(fdt, b) && add_psci(fdt) &&
	       add_gic(fdt, b) && add_timer(fdt);
}

size_t fdt_build(const struct fdt_board *board, const struct fdt_device *devs, size_t ndevs,
                 void *buf, size_t size, GError **err)
{
	struct fdt_refs refs = {.gic = PHANDLE_GIC, .its = board->gic_its_size ? PHANDLE_ITS : 0};
	bool ok = size <= INT32_MAX && fdt_create(buf, (int)size) == 0 &&
	          fdt_finish_reservemap(buf) == 0 && fdt_begin_node(buf, "") == 0 &&
	          add_board(buf, board);

	for (size_t i = 0; ok && i < ndevs; i++)
		ok = devs[i].fdt_node(buf, &refs, devs[i].opaque);
	ok = ok && fdt_end_node(buf) == 0 && fdt_finish(buf) == 0;
	if (!ok) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "the device tree does not fit in %zu KiB",
		          size / 1024);
		return 0;
	}
	return fdt_totalsize(buf);
}

char *fdt_uart_path(const struct fdt_uart *uart)
{
	return g_strdup_printf("/serial@%" G_GINT64_MODIFIER "x", uart->addr);
}

bool fdt_uart_node(void *fdt, const struct fdt_refs *refs, const void *opaque)
{
	const struct fdt_uart *u = opaque;
	uint64_t reg[] = {u->addr, u->size};
	uint32_t irq[] = {GIC_SPI, u->spi, IRQ_LEVEL_HIGH};

	TRY(begin_node_at(fdt, "serial", u->addr));
	TRY(fdt_property_string(fdt, "compatible", "ns16550a"));
	TRY(prop_reg64(fdt, "reg", reg, 2));
	TRY(prop_cells(fdt, "interrupts", irq, 3));
	TRY(fdt_property_cell(fdt, "clock-frequency", u->clock_hz));
	return fdt_end_node(fdt) == 0;
}

bool fdt_gpio_node(void *fdt, const struct fdt_refs *refs, const void *opaque)
{
	const struct fdt_gpio *g = opaque;
	uint64_t reg[] = {g->addr, g->size};
	uint32_t irq[] = {GIC_SPI, g->spi, IRQ_LEVEL_HIGH};
	uint32_t gpios[] = {PHANDLE_GPIO, g->power_line, GPIO_ACTIVE_HIGH};
	static const char compatible[] = "arm,pl061\0arm,primecell";

	TRY(fdt_begin_node(fdt, "apb-pclk"));
	TRY(fdt_property_string(fdt, "compatible", "fixed-clock"));
	TRY(fdt_property_cell(fdt, "#clock-cells", 0));
	TRY(fdt_property_cell(fdt, "clock-frequency", 24000000));
	TRY(fdt_property_string(fdt, "clock-output-names", "clk24mhz"));
	TRY(fdt_property_cell(fdt, "phandle", PHANDLE_APB_CLOCK));
	TRY(fdt_end_node(fdt));

	TRY(begin_node_at(fdt, "pl061", g->addr));
	TRY(fdt_property(fdt, "compatible", compatible, sizeof(compatible)));
	TRY(prop_reg64(fdt, "reg", reg, 2));
	TRY(prop_cells(fdt, "interrupts", irq, 3));
	TRY(fdt_property_cell(fdt, "clocks", PHANDLE_APB_CLOCK));
	TRY(fdt_property_string(fdt, "clock-names", "apb_pclk"));
	TRY(fdt_property(fdt, "gpio-controller", NULL, 0));
	TRY(fdt_property_cell(fdt, "#gpio-cells", 2));
	TRY(fdt_property_cell(fdt, "phandle", PHANDLE_GPIO));
	TRY(fdt_end_node(fdt));

	TRY(fdt_begin_node(fdt, "gpio-keys"));
	TRY(fdt_property_string(fdt, "compatible", "gpio-keys"));
	TRY(fdt_begin_node(fdt, "poweroff"));
	TRY(fdt_property_string(fdt, "label", "power button"));
	TRY(fdt_property_cell(fdt, "linux,code", KEY_POWER));
	TRY(prop_cells(fdt, "gpios", gpios, 3));
	TRY(fdt_end_node(fdt));
	return fdt_end_node(fdt) == 0;
}

/* PCI address cells: space code (bits 25:24: 2 = 32-bit memory, 3 = 64-bit), then 64 bits. */
#define PCI_SPACE_MEM32 0x02000000u
#define PCI_SPACE_MEM64 0x03000000u

bool fdt_pci_node(void *fdt, const struct fdt_refs *refs, const void *opaque)
{
	const struct fdt_pci *p = opaque;
	uint64_t reg[] = {p->ecam, p->ecam_size};
	uint32_t bus_range[] = {0, 0};
	uint32_t ranges[] = {
	    PCI_SPACE_MEM32,
	    0,
	    (uint32_t)p->mmio32,
	    0,
	    (uint32_t)p->mmio32,
	    0,
	    (uint32_t)p->mmio32_size,
	    PCI_SPACE_MEM64,
	    (uint32_t)(p->mmio64 >> 32),
	    (uint32_t)p->mmio64,
	    (uint32_t)(p->mmio64 >> 32),
	    (uint32_t)p->mmio64,
	    (uint32_t)(p->mmio64_size >> 32),
	    (uint32_t)p->mmio64_size,
	};
	/* Every requester ID is its own ITS device ID. */
	uint32_t msi_map[] = {0, refs->its, 0, 0x10000};

	TRY(begin_node_at(fdt, "pcie", p->ecam));
	TRY(fdt_property_string(fdt, "compatible", "pci-host-ecam-generic"));
	TRY(fdt_property_string(fdt, "device_type", "pci"));
	TRY(fdt_property_cell(fdt, "#address-cells", 3));
	TRY(fdt_property_cell(fdt, "#size-cells", 2));
	TRY(prop_cells(fdt, "bus-range", bus_range, 2));
	TRY(fdt_property_cell(fdt, "linux,pci-domain", 0));
	TRY(prop_reg64(fdt, "reg", reg, 2));
	TRY(prop_cells(fdt, "ranges", ranges, G_N_ELEMENTS(ranges)));
	if (refs->its)
		TRY(prop_cells(fdt, "msi-map", msi_map, G_N_ELEMENTS(msi_map)));
	TRY(fdt_property(fdt, "dma-coherent", NULL, 0));
	return fdt_end_node(fdt) == 0;
}
