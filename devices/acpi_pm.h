/* SPDX-License-Identifier: MIT */
/*
 * The ACPI sleep-control, sleep-status and reset registers of the
 * hardware-reduced FADT (vmm/x86/acpi.h): how a guest powers off or resets.
 */
#ifndef HUSK_ACPI_PM_H
#define HUSK_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/stop.h"

struct acpi_pm *acpi_pm_create(struct stop_hook stop);
void acpi_pm_destroy(struct acpi_pm *pm);
/* bus_access_fn for PORT_ACPI_PM, PORT_ACPI_PM_LEN ports. */
void acpi_pm_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
