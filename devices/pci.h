/* SPDX-License-Identifier: MIT */
/*
 * PCI bus 0 behind one host bridge: configuration space through ports
 * 0xcf8/0xcfc and ECAM, and memory BARs placed by husk (there is no
 * firmware to do it): 32-bit BARs in the window below 4 GiB, 64-bit ones
 * in the window above RAM. MMIO in either window is routed by the BARs'
 * current values, so a guest that moves a BAR is followed.
 */
#ifndef HUSK_PCI_H
#define HUSK_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PCI_CONFIG_SIZE 256
#define PCI_MAX_DEVICES 32
#define PCI_NUM_BARS    6

/* Standard configuration header offsets (PCI Local Bus 3.0, 6.1). */
#define PCI_VENDOR_ID        0x00
#define PCI_DEVICE_ID        0x02
#define PCI_COMMAND          0x04
#define PCI_STATUS           0x06
#define PCI_REVISION         0x08
#define PCI_CLASS_PROG       0x09
#define PCI_HEADER_TYPE      0x0e
#define PCI_BAR0             0x10
#define PCI_SUBSYSTEM_VENDOR 0x2c
#define PCI_SUBSYSTEM_ID     0x2e
#define PCI_CAPABILITY_LIST  0x34
#define PCI_INTERRUPT_PIN    0x3d
#define PCI_COMMAND_MEMORY   0x2
#define PCI_COMMAND_MASTER   0x4
#define PCI_STATUS_CAP_LIST  0x10
#define PCI_BAR_MEM_64       0x4
#define PCI_BAR_PREFETCH     0x8
#define PCI_CAP_ID_VENDOR    0x09
#define PCI_CAP_ID_MSIX      0x11

struct pci_device;

struct pci_device_ops {
	/* An access inside BAR 'bar' at 'offset'; on vCPU threads. */
	void (*bar_access)(struct pci_device *dev, int bar, uint64_t offset, uint8_t *data,
	                   uint32_t len, bool is_write);
	/* Before the guest reads config bytes [offset, offset+len): a chance to fill them; the lock
	 * is held. */
	void (*config_read)(struct pci_device *dev, uint32_t offset, uint32_t len);
	/* After the guest wrote config bytes [offset, offset+len); the lock is held. */
	void (*config_written)(struct pci_device *dev, uint32_t offset, uint32_t len);
	/* A BAR's address changed (the guest moved it); the lock is held. */
	void (*bar_moved)(struct pci_device *dev, int bar, uint64_t old_addr, uint64_t new_addr);
};

struct pci_device {
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE];  /* bits the guest may write */
	uint64_t bar_size[PCI_NUM_BARS]; /* 0: no BAR (or the upper half of a 64-bit one) */
	const struct pci_device_ops *ops;
	void *opaque;
	uint8_t next_cap; /* where the next capability goes */
	uint8_t last_cap; /* offset of the last capability, to chain the next one */
	uint8_t slot;     /* on bus 0, once added */
};

/* Bus 0, function 0: what MSIs carry to say who sent them (arm64's ITS device ID). */
#define PCI_REQUESTER_ID(slot) ((uint32_t)(slot) << 3)

struct pci_bus {
	struct pci_device *devices[PCI_MAX_DEVICES];
	pthread_mutex_t lock; /* config space and BAR routing */
	/*
	 * Who is on the bus: read-held by every guest access from finding its
	 * device to the end of its handler, write-held to plug or unplug one,
	 * so that a device unplugged is in no handler and found by none after.
	 */
	pthread_rwlock_t plug_lock;
	uint32_t config_address; /* the 0xcf8 register */
	uint64_t next_bar;       /* where the next 32-bit BAR goes */
	uint64_t mmio64_base, mmio64_size;
	uint64_t next_bar64; /* where the next 64-bit BAR goes */
	struct pci_device host_bridge;
};

void pci_bus_init(struct pci_bus *bus);
/* The window for 64-bit BARs (none until set: such devices cannot be added). */
void pci_bus_set_mmio64(struct pci_bus *bus, uint64_t base, uint64_t size);
void pci_bus_destroy(struct pci_bus *bus);

/* Fills the header of a type-0 device; BARs and capabilities come next. */
void pci_device_init(struct pci_device *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint8_t revision, const struct pci_device_ops *ops, void *opaque);
/*
 * A memory BAR of 'size' bytes (a power of two, at least 4 KiB). A 64-bit
 * one (prefetchable, as QEMU's virtio BARs) takes slots bar and bar + 1.
 */
void pci_device_add_bar(struct pci_device *dev, int bar, uint64_t size, bool is64);
/* Reserves 'len' bytes of capability 'id' and chains it; returns its offset, 0 if full. */
uint8_t pci_device_add_cap(struct pci_device *dev, uint8_t id, uint8_t len);
uint64_t pci_device_bar_addr(const struct pci_device *dev, int bar);

/* Places the device's BARs and puts it in a free slot; returns the slot or -1. */
int pci_bus_add(struct pci_bus *bus, struct pci_device *dev);

/*
 * While the guest runs (hot-plug): pci_bus_add under the plug lock, and
 * taking a device off its slot; after pci_bus_unplug returns no guest
 * access is in or can reach the device's handlers. False if the slot
 * holds no device or the host bridge.
 */
int pci_bus_plug(struct pci_bus *bus, struct pci_device *dev);
bool pci_bus_unplug(struct pci_bus *bus, int slot);

/* bus_access_fn callbacks: ports 0xcf8..0xcff, the ECAM window, the two BAR windows. */
void pci_config_port_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                            bool is_write);
void pci_ecam_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pci_mmio32_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pci_mmio64_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Little-endian helpers for config space and device registers. */
static inline void pci_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void pci_put32(uint8_t *p, uint32_t v)
{
	pci_put16(p, (uint16_t)v);
	pci_put16(p + 2, (uint16_t)(v >> 16));
}

static inline uint16_t pci_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t pci_get32(const uint8_t *p)
{
	return pci_get16(p) | (uint32_t)pci_get16(p + 2) << 16;
}

#endif
