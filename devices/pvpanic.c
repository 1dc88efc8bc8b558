// SPDX-License-Identifier: MIT
/*
 * pvpanic: reading the port tells the guest which events it may report;
 * writing reports them.
 */
#include "devices/pvpanic.h"

#include <glib.h>

#define PVPANIC_PANICKED     0x01 /* the kernel panicked and will not recover */
#define PVPANIC_CRASH_LOADED 0x02 /* it panicked, but a kdump kernel takes over */

struct pvpanic {
	struct stop_hook stop;
};

struct pvpanic *pvpanic_create(struct stop_hook stop)
{
	struct pvpanic *p = g_new0(struct pvpanic, 1);

	p->stop = stop;
	return p;
}

void pvpanic_destroy(struct pvpanic *p)
{
	g_free(p);
}

/*
 * CRASH_LOADED is accepted but ends nothing: the guest is about to boot its
 * crash kernel, which saves the dump and reboots on its own. Stopping the
 * VM here would throw that dump away.
 */
void pvpanic_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pvpanic *p = opaque;

	if (len != 1 || offset != 0)
		return;
	if (!is_write)
		*data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
	else if (*data & PVPANIC_PANICKED)
		stop_request(&p->stop, STOP_PANIC);
}
