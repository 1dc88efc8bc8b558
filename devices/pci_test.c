// SPDX-License-Identifier: MIT
/* The PCI bus: BAR placement in both windows, sizing, routing, a guest moving a BAR. */
#include "devices/pci.h"

#include <glib.h>

#include "vmm/layout.h"

#define MMIO64_BASE (8 * GiB)
#define BAR_BYTES   0x8000

struct fake {
	struct pci_device dev;
	int accesses;
	uint64_t last_offset;
	int moves;
	uint64_t moved_to;
};

static void fake_bar_access(struct pci_device *dev, int bar, uint64_t offset, uint8_t *data,
                            uint32_t len, bool is_write)
{
	struct fake *f = dev->opaque;

	f->accesses++;
	f->last_offset = offset;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void fake_bar_moved(struct pci_device *dev, int bar, uint64_t old_addr, uint64_t new_addr)
{
	struct fake *f = dev->opaque;

	f->moves++;
	f->moved_to = new_addr;
}

static const struct pci_device_ops fake_ops = {
    .bar_access = fake_bar_access,
    .bar_moved = fake_bar_moved,
};

static void fake_init(struct fake *f, bool is64)
{
	memset(f, 0, sizeof(*f));
	pci_device_init(&f->dev, 0x1af4, 0x1040, 0xff0000, 1, &fake_ops, f);
	pci_device_add_bar(&f->dev, 0, BAR_BYTES, is64);
}

/* Configuration mechanism #1, as a guest does it: address to 0xcf8, data at 0xcfc. */
static uint32_t cfg_read(struct pci_bus *bus, int slot, uint32_t reg)
{
	uint8_t data[4];

	pci_put32(data, 1u << 31 | (uint32_t)slot << 11 | reg);
	pci_config_port_access(bus, 0, data, 4, true);
	pci_config_port_access(bus, 4, data, 4, false);
	return pci_get32(data);
}

static void cfg_write(struct pci_bus *bus, int slot, uint32_t reg, uint32_t v)
{
	uint8_t data[4];

	pci_put32(data, 1u << 31 | (uint32_t)slot << 11 | reg);
	pci_config_port_access(bus, 0, data, 4, true);
	pci_put32(data, v);
	pci_config_port_access(bus, 4, data, 4, true);
}

static void test_bar32_placed_and_sized(void)
{
	struct pci_bus bus;
	struct fake f;

	pci_bus_init(&bus);
	fake_init(&f, false);
	int slot = pci_bus_add(&bus, &f.dev);
	g_assert_cmpint(slot, ==, 1);
	g_assert_cmphex(cfg_read(&bus, slot, PCI_BAR0), ==, LAYOUT_PCI_MMIO32);
	cfg_write(&bus, slot, PCI_BAR0, 0xffffffff);
	g_assert_cmphex(cfg_read(&bus, slot, PCI_BAR0), ==, (uint32_t) ~(BAR_BYTES - 1));
	pci_bus_destroy(&bus);
}

static void test_bar64_placed_and_sized(void)
{
	struct pci_bus bus;
	struct fake f;

	pci_bus_init(&bus);
	pci_bus_set_mmio64(&bus, MMIO64_BASE, 16 * GiB);
	fake_init(&f, true);
	int slot = pci_bus_add(&bus, &f.dev);
	g_assert_cmpint(slot, ==, 1);
	uint32_t lo = cfg_read(&bus, slot, PCI_BAR0), hi = cfg_read(&bus, slot, PCI_BAR0 + 4);
	g_assert_cmphex(lo & 0xf, ==, PCI_BAR_MEM_64 | PCI_BAR_PREFETCH);
	g_assert_cmphex((uint64_t)hi << 32 | (lo & ~0xfu), ==, MMIO64_BASE);
	g_assert_cmphex(pci_device_bar_addr(&f.dev, 0), ==, MMIO64_BASE);
	/* Sizing both halves (PCI 3.0, 6.2.5.1): the type bits stay, the size shows. */
	cfg_write(&bus, slot, PCI_BAR0, 0xffffffff);
	cfg_write(&bus, slot, PCI_BAR0 + 4, 0xffffffff);
	g_assert_cmphex(cfg_read(&bus, slot, PCI_BAR0), ==, (uint32_t) ~(BAR_BYTES - 1) | 0xc);
	g_assert_cmphex(cfg_read(&bus, slot, PCI_BAR0 + 4), ==, 0xffffffff);
	pci_bus_destroy(&bus);
}

static void test_bar64_without_window_refused(void)
{
	struct pci_bus bus;
	struct fake f;

	pci_bus_init(&bus);
	fake_init(&f, true);
	g_assert_cmpint(pci_bus_add(&bus, &f.dev), ==, -1);
	pci_bus_destroy(&bus);
}

static void test_mmio64_routed_and_moved(void)
{
	struct pci_bus bus;
	struct fake f;
	uint8_t data[4];

	pci_bus_init(&bus);
	pci_bus_set_mmio64(&bus, MMIO64_BASE, 16 * GiB);
	fake_init(&f, true);
	int slot = pci_bus_add(&bus, &f.dev);
	/* Decoding off: nothing there. */
	pci_mmio64_access(&bus, 0x10, data, 4, false);
	g_assert_cmphex(pci_get32(data), ==, 0xffffffff);
	g_assert_cmpint(f.accesses, ==, 0);
	cfg_write(&bus, slot, PCI_COMMAND, PCI_COMMAND_MEMORY);
	g_assert_cmpint(f.moves, ==, 1);
	pci_mmio64_access(&bus, 0x10, data, 4, false);
	g_assert_cmpint(f.accesses, ==, 1);
	g_assert_cmphex(f.last_offset, ==, 0x10);
	g_assert_cmphex(pci_get32(data), ==, 0x5a5a5a5a);
	/* The guest moves the BAR up by 1 GiB: routing and the device follow. */
	cfg_write(&bus, slot, PCI_BAR0 + 4, (uint32_t)((MMIO64_BASE + GiB) >> 32));
	cfg_write(&bus, slot, PCI_BAR0, (uint32_t)(MMIO64_BASE + GiB));
	g_assert_cmphex(f.moved_to, ==, MMIO64_BASE + GiB);
	pci_mmio64_access(&bus, 0x10, data, 4, false);
	g_assert_cmpint(f.accesses, ==, 1);
	pci_mmio64_access(&bus, GiB + 0x20, data, 4, true);
	g_assert_cmpint(f.accesses, ==, 2);
	g_assert_cmphex(f.last_offset, ==, 0x20);
	pci_bus_destroy(&bus);
}

static void test_window_full(void)
{
	struct pci_bus bus;
	struct fake f[3];

	pci_bus_init(&bus);
	pci_bus_set_mmio64(&bus, MMIO64_BASE, 2 * BAR_BYTES);
	for (int i = 0; i < 2; i++) {
		fake_init(&f[i], true);
		g_assert_cmpint(pci_bus_add(&bus, &f[i].dev), ==, i + 1);
	}
	fake_init(&f[2], true);
	g_assert_cmpint(pci_bus_add(&bus, &f[2].dev), ==, -1);
	pci_bus_destroy(&bus);
}

/* A device plugged while the guest runs, then unplugged: its slot is empty again and reused. */
static void test_plug_unplug(void)
{
	struct pci_bus bus;
	struct fake f, g;
	uint8_t data[4];

	pci_bus_init(&bus);
	pci_bus_set_mmio64(&bus, MMIO64_BASE, 16 * GiB);
	fake_init(&f, true);
	int slot = pci_bus_plug(&bus, &f.dev);
	g_assert_cmpint(slot, ==, 1);
	g_assert_cmphex(cfg_read(&bus, slot, PCI_VENDOR_ID), ==, 0x10401af4);
	cfg_write(&bus, slot, PCI_COMMAND, PCI_COMMAND_MEMORY);
	pci_mmio64_access(&bus, 0x10, data, 4, false);
	g_assert_cmpint(f.accesses, ==, 1);
	g_assert_true(pci_bus_unplug(&bus, slot));
	g_assert_false(pci_bus_unplug(&bus, slot));
	g_assert_false(pci_bus_unplug(&bus, 0)); /* the host bridge stays */
	g_assert_false(pci_bus_unplug(&bus, PCI_MAX_DEVICES));
	/* Gone: all ones in config space, its BAR routes nowhere. */
	g_assert_cmphex(cfg_read(&bus, slot, PCI_VENDOR_ID), ==, 0xffffffff);
	pci_mmio64_access(&bus, 0x10, data, 4, false);
	g_assert_cmphex(pci_get32(data), ==, 0xffffffff);
	g_assert_cmpint(f.accesses, ==, 1);
	fake_init(&g, true);
	g_assert_cmpint(pci_bus_plug(&bus, &g.dev), ==, slot);
	pci_bus_destroy(&bus);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pci/plug-unplug", test_plug_unplug);
	g_test_add_func("/pci/bar32-placed-and-sized", test_bar32_placed_and_sized);
	g_test_add_func("/pci/bar64-placed-and-sized", test_bar64_placed_and_sized);
	g_test_add_func("/pci/bar64-without-window-refused", test_bar64_without_window_refused);
	g_test_add_func("/pci/mmio64-routed-and-moved", test_mmio64_routed_and_moved);
	g_test_add_func("/pci/window-full", test_window_full);
	return g_test_run();
}
