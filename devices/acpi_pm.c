// SPDX-License-Identifier: MIT
#include "devices/acpi_pm.h"

#include <glib.h>
#include <string.h>

#include "vmm/x86/acpi.h"

/* Sleep control register bits (ACPI 6.4, 4.8.3.7). */
#define SLP_TYP_SHIFT 2
#define SLP_TYP_MASK  0x7
#define SLP_EN        (1U << 5)

struct acpi_pm {
	struct stop_hook stop;
};

struct acpi_pm *acpi_pm_create(struct stop_hook stop)
{
	struct acpi_pm *pm = g_new0(struct acpi_pm, 1);

	pm->stop = stop;
	return pm;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	g_free(pm);
}

/*
 * Only S5 (soft off) is implemented: husk has no S1-S4, and the DSDT
 * announces no sleep state but \_S5_, so a guest never asks for them.
 * The sleep status register reads 0: no wake event is ever pending.
 * The device has no state, so concurrent vCPUs need no lock.
 */
void acpi_pm_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (offset == ACPI_PM_SLEEP_CONTROL && (data[0] & SLP_EN) &&
	    ((data[0] >> SLP_TYP_SHIFT) & SLP_TYP_MASK) == ACPI_S5_SLEEP_TYPE)
		stop_request(&pm->stop, STOP_POWEROFF);
	else if (offset == ACPI_PM_RESET && data[0] == ACPI_RESET_VALUE)
		stop_request(&pm->stop, STOP_REBOOT);
}
