/* SPDX-License-Identifier: MIT */
/*
 * The arm64 machine's device tree (a flattened DTB built with libfdt):
 * the board's nodes (memory, CPUs with PSCI, the GICv3 and its ITS, the
 * architected timer, /chosen) and then one node per device, which each
 * device writes itself through its fdt_node callback. Plain C over a
 * buffer, with no KVM in sight, so it is tested on any host.
 */
#ifndef HUSK_ARM64_FDT_H
#define HUSK_ARM64_FDT_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FDT_RNG_SEED_SIZE 32

/* What the board's nodes say. */
struct fdt_board {
	unsigned int ncpus;
	uint64_t ram_start, ram_size;
	const char *bootargs;    /* may be NULL */
	const char *stdout_path; /* the console's node, for /chosen; may be NULL */
	uint64_t initrd_start;   /* both 0: no initrd */
	uint64_t initrd_end;
	uint8_t rng_seed[FDT_RNG_SEED_SIZE];
	uint64_t gic_dist, gic_dist_size;
	uint64_t gic_redist, gic_redist_size; /* all vCPUs' frames */
	uint64_t gic_its, gic_its_size;       /* 0, 0: no ITS (no MSIs) */
};

/* What a device's node may refer to. */
struct fdt_refs {
	uint32_t gic;
	uint32_t its; /* 0 without one */
};

/* One device: its callback adds its node(s) under the root (libfdt's sequential writer). */
struct fdt_device {
	bool (*fdt_node)(void *fdt, const struct fdt_refs *refs, const void *opaque);
	const void *opaque;
};

/*
 * Builds the tree into 'buf' ('size' bytes). Returns its total size, or 0
 * with 'err' set when it does not fit or a device's node fails.
 */
size_t fdt_build(const struct fdt_board *board, const struct fdt_device *devs, size_t ndevs,
                 void *buf, size_t size, GError **err);

/* A 16550A on MMIO, one byte per register. */
struct fdt_uart {
	uint64_t addr, size;
	uint32_t spi; /* its interrupt, an SPI number */
	uint32_t clock_hz;
};
bool fdt_uart_node(void *fdt, const struct fdt_refs *refs, const void *opaque);
/* The node name fdt_uart_node gives 'uart', for /chosen's stdout-path; g_free it. */
char *fdt_uart_path(const struct fdt_uart *uart);

/*
 * A PL061 GPIO controller (with the fixed APB clock its AMBA driver asks
 * for) and a gpio-keys node: KEY_POWER on line 'power_line', active high.
 */
struct fdt_gpio {
	uint64_t addr, size;
	uint32_t spi;
	uint32_t power_line;
};
bool fdt_gpio_node(void *fdt, const struct fdt_refs *refs, const void *opaque);

/* A PCIe host bridge with ECAM for bus 0 (pci-host-ecam-generic), MSIs through the ITS. */
struct fdt_pci {
	uint64_t ecam, ecam_size;
	uint64_t mmio32, mmio32_size;
	uint64_t mmio64, mmio64_size;
};
bool fdt_pci_node(void *fdt, const struct fdt_refs *refs, const void *opaque);

/* The MPIDR KVM gives vCPU 'id' (Aff0 has 16 CPUs, Aff1 the rest), a CPU node's reg. */
uint32_t fdt_cpu_mpidr(unsigned int id);

#endif
