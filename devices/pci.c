// SPDX-License-Identifier: MIT
#include "devices/pci.h"

#include <string.h>

#include "vmm/layout.h"

#define HOST_BRIDGE_VENDOR 0x1b36 /* Red Hat, as QEMU's generic host bridge */
#define HOST_BRIDGE_DEVICE 0x0008
#define CLASS_HOST_BRIDGE  0x060000
#define CONFIG_ENABLE      (1U << 31)
#define FIRST_CAP          0x40

void pci_device_init(struct pci_device *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint8_t revision, const struct pci_device_ops *ops, void *opaque)
{
	memset(dev, 0, sizeof(*dev));
	pci_put16(dev->config + PCI_VENDOR_ID, vendor);
	pci_put16(dev->config + PCI_DEVICE_ID, device);
	dev->config[PCI_REVISION] = revision;
	dev->config[PCI_CLASS_PROG] = (uint8_t)class_code;
	pci_put16(dev->config + PCI_CLASS_PROG + 1, (uint16_t)(class_code >> 8));
	/* Memory decoding and bus mastering are the only command bits that mean anything here. */
	pci_put16(dev->wmask + PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	dev->ops = ops;
	dev->opaque = opaque;
	dev->next_cap = FIRST_CAP;
}

void pci_device_add_bar(struct pci_device *dev, int bar, uint64_t size, bool is64)
{
	dev->bar_size[bar] = size;
	/* The address bits above the size are writable: that is how sizing works (6.2.5.1). */
	pci_put32(dev->wmask + PCI_BAR0 + 4 * bar, (uint32_t) ~(size - 1));
	if (is64) {
		dev->config[PCI_BAR0 + 4 * bar] = PCI_BAR_MEM_64 | PCI_BAR_PREFETCH;
		pci_put32(dev->wmask + PCI_BAR0 + 4 * (bar + 1), (uint32_t) ~((size - 1) >> 32));
	}
}

uint8_t pci_device_add_cap(struct pci_device *dev, uint8_t id, uint8_t len)
{
	uint8_t at = dev->next_cap;

	if (at + len > PCI_CONFIG_SIZE)
		return 0;
	dev->config[at] = id;
	if (dev->last_cap)
		dev->config[dev->last_cap + 1] = at;
	else
		dev->config[PCI_CAPABILITY_LIST] = at;
	pci_put16(dev->config + PCI_STATUS,
	          pci_get16(dev->config + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	dev->last_cap = at;
	dev->next_cap = (uint8_t)((at + len + 3) & ~3);
	return at;
}

static bool bar_is64(const struct pci_device *dev, int bar)
{
	return dev->config[PCI_BAR0 + 4 * bar] & PCI_BAR_MEM_64;
}

uint64_t pci_device_bar_addr(const struct pci_device *dev, int bar)
{
	const uint8_t *reg = dev->config + PCI_BAR0 + 4 * bar;
	uint64_t addr = pci_get32(reg) & ~UINT32_C(0xf);

	if (bar_is64(dev, bar) && bar + 1 < PCI_NUM_BARS)
		addr |= (uint64_t)pci_get32(reg + 4) << 32;
	return addr;
}

static bool memory_enabled(const struct pci_device *dev)
{
	return pci_get16(dev->config + PCI_COMMAND) & PCI_COMMAND_MEMORY;
}

void pci_bus_init(struct pci_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	pthread_mutex_init(&bus->lock, NULL);
	pthread_rwlock_init(&bus->plug_lock, NULL);
	bus->next_bar = LAYOUT_PCI_MMIO32;
	pci_device_init(&bus->host_bridge, HOST_BRIDGE_VENDOR, HOST_BRIDGE_DEVICE,
	                CLASS_HOST_BRIDGE, 0, NULL, NULL);
	bus->devices[0] = &bus->host_bridge;
}

void pci_bus_set_mmio64(struct pci_bus *bus, uint64_t base, uint64_t size)
{
	bus->mmio64_base = bus->next_bar64 = base;
	bus->mmio64_size = size;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	pthread_mutex_destroy(&bus->lock);
	pthread_rwlock_destroy(&bus->plug_lock);
}

int pci_bus_plug(struct pci_bus *bus, struct pci_device *dev)
{
	pthread_rwlock_wrlock(&bus->plug_lock);
	int slot = pci_bus_add(bus, dev);
	pthread_rwlock_unlock(&bus->plug_lock);
	return slot;
}

bool pci_bus_unplug(struct pci_bus *bus, int slot)
{
	bool ok = slot > 0 && slot < PCI_MAX_DEVICES;

	pthread_rwlock_wrlock(&bus->plug_lock);
	ok = ok && bus->devices[slot];
	if (ok)
		bus->devices[slot] = NULL;
	pthread_rwlock_unlock(&bus->plug_lock);
	return ok;
}

int pci_bus_add(struct pci_bus *bus, struct pci_device *dev)
{
	int slot = 1;

	while (slot < PCI_MAX_DEVICES && bus->devices[slot])
		slot++;
	if (slot == PCI_MAX_DEVICES)
		return -1;
	/* Natural alignment, as firmware would place them; addresses never reused. */
	for (int bar = 0; bar < PCI_NUM_BARS; bar++) {
		uint64_t size = dev->bar_size[bar];
		if (!size)
			continue;
		bool is64 = bar_is64(dev, bar);
		uint64_t *next = is64 ? &bus->next_bar64 : &bus->next_bar;
		uint64_t end = is64 ? bus->mmio64_base + bus->mmio64_size
		                    : LAYOUT_PCI_MMIO32 + LAYOUT_PCI_MMIO32_SIZE;
		uint64_t addr = (*next + size - 1) & ~(size - 1);
		if (addr + size > end)
			return -1;
		pci_put32(dev->config + PCI_BAR0 + 4 * bar,
		          (uint32_t)addr | (dev->config[PCI_BAR0 + 4 * bar] & 0xf));
		if (is64)
			pci_put32(dev->config + PCI_BAR0 + 4 * (bar + 1), (uint32_t)(addr >> 32));
		*next = addr + size;
	}
	bus->devices[slot] = dev;
	dev->slot = (uint8_t)slot;
	return slot;
}

/* A guest write may have moved a BAR; tell the device once decoding is on. */
static void check_bars(struct pci_device *dev, const uint64_t old[PCI_NUM_BARS], bool was_enabled)
{
	if (!dev->ops || !dev->ops->bar_moved || !memory_enabled(dev))
		return;
	for (int bar = 0; bar < PCI_NUM_BARS; bar++) {
		uint64_t now = pci_device_bar_addr(dev, bar);
		if (dev->bar_size[bar] && (now != old[bar] || !was_enabled))
			dev->ops->bar_moved(dev, bar, old[bar], now);
	}
}

static void config_access_locked(struct pci_bus *bus, unsigned int slot, unsigned int fn,
                                 uint32_t reg, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_device *dev = fn == 0 && slot < PCI_MAX_DEVICES ? bus->devices[slot] : NULL;

	if (!dev || reg + len > PCI_CONFIG_SIZE) {
		/* No device: all ones. Extended space of a conventional device: zeros. */
		if (!is_write)
			memset(data, dev ? 0 : 0xff, len);
		return;
	}
	pthread_mutex_lock(&bus->lock);
	if (!is_write) {
		if (dev->ops && dev->ops->config_read)
			dev->ops->config_read(dev, reg, len);
		memcpy(data, dev->config + reg, len);
	} else {
		uint64_t old[PCI_NUM_BARS];
		bool was_enabled = memory_enabled(dev);

		for (int bar = 0; bar < PCI_NUM_BARS; bar++)
			old[bar] = pci_device_bar_addr(dev, bar);
		for (uint32_t i = 0; i < len; i++) {
			uint8_t m = dev->wmask[reg + i];
			dev->config[reg + i] =
			    (uint8_t)((dev->config[reg + i] & ~m) | (data[i] & m));
		}
		check_bars(dev, old, was_enabled);
		if (dev->ops && dev->ops->config_written)
			dev->ops->config_written(dev, reg, len);
	}
	pthread_mutex_unlock(&bus->lock);
}

static void config_access(struct pci_bus *bus, unsigned int slot, unsigned int fn, uint32_t reg,
                          uint8_t *data, uint32_t len, bool is_write)
{
	pthread_rwlock_rdlock(&bus->plug_lock);
	config_access_locked(bus, slot, fn, reg, data, len, is_write);
	pthread_rwlock_unlock(&bus->plug_lock);
}

void pci_config_port_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                            bool is_write)
{
	struct pci_bus *bus = opaque;

	if (offset < 4) {
		/* Only whole-dword accesses reach the address register (configuration mechanism
		 * #1). */
		if (offset != 0 || len != 4)
			return;
		if (is_write)
			bus->config_address = pci_get32(data);
		else
			pci_put32(data, bus->config_address);
		return;
	}
	uint32_t addr = bus->config_address;
	uint32_t reg = (addr & 0xfc) + (uint32_t)(offset - 4);
	if (!(addr & CONFIG_ENABLE) || ((addr >> 16) & 0xff) != 0 || reg + len > PCI_CONFIG_SIZE) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	config_access(bus, (addr >> 11) & 0x1f, (addr >> 8) & 0x7, reg, data, len, is_write);
}

void pci_ecam_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	/* Bus 0 only: the window is 1 MiB, 32 slots x 8 functions x 4 KiB. */
	config_access(opaque, (offset >> 15) & 0x1f, (offset >> 12) & 0x7, offset & 0xfff, data,
	              len, is_write);
}

/* An access at guest-physical 'addr' in a BAR window: to the BAR that holds it, if any. */
static void mmio_access_locked(struct pci_bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
                               bool is_write)
{
	struct pci_device *hit = NULL;
	int hit_bar = 0;
	uint64_t base = 0;

	pthread_mutex_lock(&bus->lock);
	for (int slot = 0; slot < PCI_MAX_DEVICES && !hit; slot++) {
		struct pci_device *dev = bus->devices[slot];
		if (!dev || !memory_enabled(dev))
			continue;
		for (int bar = 0; bar < PCI_NUM_BARS; bar++) {
			uint64_t a = pci_device_bar_addr(dev, bar);
			if (dev->bar_size[bar] && addr >= a && addr - a < dev->bar_size[bar]) {
				hit = dev;
				hit_bar = bar;
				base = a;
				break;
			}
		}
	}
	pthread_mutex_unlock(&bus->lock);
	if (hit && hit->ops && hit->ops->bar_access)
		hit->ops->bar_access(hit, hit_bar, addr - base, data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len);
}

static void mmio_access(struct pci_bus *bus, uint64_t addr, uint8_t *data, uint32_t len,
                        bool is_write)
{
	pthread_rwlock_rdlock(&bus->plug_lock);
	mmio_access_locked(bus, addr, data, len, is_write);
	pthread_rwlock_unlock(&bus->plug_lock);
}

void pci_mmio32_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	mmio_access(opaque, LAYOUT_PCI_MMIO32 + offset, data, len, is_write);
}

void pci_mmio64_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *bus = opaque;

	mmio_access(bus, bus->mmio64_base + offset, data, len, is_write);
}
