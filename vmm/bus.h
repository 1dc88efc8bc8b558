/* SPDX-License-Identifier: MIT */
/*
 * A tiny bus for port I/O and MMIO exits: an address range maps to a
 * device callback. Devices register before the vCPUs start; after that
 * the bus is read-only, so dispatch from vCPU threads needs no lock.
 * Each device serialises its own state.
 */
#ifndef HUSK_BUS_H
#define HUSK_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Called for one access of 'len' (1, 2, 4 or 8) bytes at 'offset' from the
 * start of the device's range. On a read the device fills 'data'; bytes
 * it leaves alone read as 0xff.
 */
typedef void (*bus_access_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                              bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_access_fn access;
	void *opaque;
	const char *name;
};

struct bus {
	struct bus_range *ranges; /* sorted by base, never overlapping */
	size_t count;
	const char *kind; /* "pio" or "mmio", for messages */
};

void bus_init(struct bus *bus, const char *kind);
void bus_destroy(struct bus *bus);

/* Returns false (and registers nothing) if the range is empty or overlaps. */
bool bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_access_fn access, void *opaque,
                  const char *name);

/* Returns false if no device claims 'addr'; reads then return all ones. */
bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
