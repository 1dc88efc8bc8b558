// SPDX-License-Identifier: MIT
#include "vmm/bus.h"

#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *bus, const char *kind)
{
	memset(bus, 0, sizeof(*bus));
	bus->kind = kind;
}

void bus_destroy(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->count = 0;
}

static bool ranges_overlap(const struct bus_range *r, uint64_t base, uint64_t len)
{
	return base < r->base + r->len && r->base < base + len;
}

bool bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_access_fn access, void *opaque,
                  const char *name)
{
	size_t pos = 0;

	if (len == 0 || base + len < base)
		return false;
	for (size_t i = 0; i < bus->count; i++) {
		if (ranges_overlap(&bus->ranges[i], base, len))
			return false;
		if (bus->ranges[i].base < base)
			pos = i + 1;
	}
	struct bus_range *grown = realloc(bus->ranges, (bus->count + 1) * sizeof(*grown));
	if (!grown)
		return false;
	bus->ranges = grown;
	memmove(&grown[pos + 1], &grown[pos], (bus->count - pos) * sizeof(*grown));
	grown[pos] = (struct bus_range){base, len, access, opaque, name};
	bus->count++;
	return true;
}

static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr);

	if (!is_write)
		memset(data, 0xff, len);
	if (!r)
		return false;
	r->access(r->opaque, addr - r->base, data, len, is_write);
	return true;
}
