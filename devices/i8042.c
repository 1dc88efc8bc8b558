// SPDX-License-Identifier: MIT
/*
 * Just enough of an i8042 for "reboot". Linux is not told a keyboard
 * controller exists (the FADT leaves out the 8042 boot flag, so its i8042
 * driver never probes), yet its reboot path falls back to the keyboard
 * controller and writes 0xfe, "pulse reset line", to port 0x64 after
 * waiting for the input buffer to drain. So status reads say both buffers
 * are empty, data reads return 0, and 0xfe asks the machine to reboot.
 * Every other command is ignored.
 */
#include "devices/i8042.h"

#include <glib.h>

#define STATUS_EMPTY    0x00 /* bit 0 output buffer full, bit 1 input buffer full */
#define CMD_PULSE_RESET 0xfe

struct i8042 {
	struct stop_hook stop;
};

struct i8042 *i8042_create(struct stop_hook stop)
{
	struct i8042 *k = g_new0(struct i8042, 1);

	k->stop = stop;
	return k;
}

void i8042_destroy(struct i8042 *k)
{
	g_free(k);
}

void i8042_data_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write && len == 1)
		*data = 0;
}

void i8042_command_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;

	if (len != 1)
		return;
	if (!is_write)
		*data = STATUS_EMPTY;
	else if (*data == CMD_PULSE_RESET)
		stop_request(&k->stop, STOP_REBOOT);
}
