/* SPDX-License-Identifier: MIT */
/* For the virtio tests: a split-ring descriptor (virtio 1.2, 2.7.5), written as a driver would. */
#ifndef HUSK_TEST_RING_H
#define HUSK_TEST_RING_H

#include <glib.h>
#include <string.h>

#include "vmm/guest_memory.h"

/* Descriptor 'i' of the table at 'table' in guest memory. */
static inline void test_put_desc(struct guest_memory *gm, uint64_t table, uint16_t i, uint64_t addr,
                                 uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = gm_ptr(gm, table + 16ULL * i, 16);

	g_assert_nonnull(d);
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

#endif
