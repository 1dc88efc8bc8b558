/* SPDX-License-Identifier: MIT */
/*
 * The pvpanic device (QEMU's ISA flavour): one I/O port through which the
 * guest kernel reports that it panicked. Linux's pvpanic-mmio driver binds
 * to it through ACPI id QEMU0001 with an I/O port resource.
 */
#ifndef HUSK_PVPANIC_H
#define HUSK_PVPANIC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/stop.h"

struct pvpanic;

struct pvpanic *pvpanic_create(struct stop_hook stop);
void pvpanic_destroy(struct pvpanic *p);

/* bus_access_fn for PORT_PVPANIC, 1 port. */
void pvpanic_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
