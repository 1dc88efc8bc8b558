// SPDX-License-Identifier: MIT
#include <glib.h>

#include "devices/i8042.h"
#include "vmm/stop_recorder.h"

static void test_reset_command(void)
{
	struct stop_recorder s = {0};
	struct i8042 *k = i8042_create(stop_recorder_hook(&s));
	uint8_t v = 0xff;

	/* Linux's kb_wait(): the input buffer must read empty (bit 1 clear). */
	i8042_command_access(k, 0, &v, 1, false);
	g_assert_cmpuint(v & 0x02, ==, 0);
	v = 0xff;
	i8042_data_access(k, 0, &v, 1, false);
	g_assert_cmpuint(v, ==, 0);

	v = 0xad; /* disable keyboard: ignored */
	i8042_command_access(k, 0, &v, 1, true);
	v = 0xfe;
	i8042_data_access(k, 0, &v, 1, true); /* 0xfe on the data port is no command */
	g_assert_cmpuint(s.count, ==, 0);

	v = 0xfe; /* pulse the reset line */
	i8042_command_access(k, 0, &v, 1, true);
	g_assert_cmpuint(s.count, ==, 1);
	g_assert_cmpint(stop_recorder_last(&s), ==, STOP_REBOOT);
	i8042_destroy(k);
}

static void test_odd_sizes_ignored(void)
{
	struct stop_recorder s = {0};
	struct i8042 *k = i8042_create(stop_recorder_hook(&s));
	uint8_t v[4] = {0xfe, 0xfe, 0xfe, 0xfe};

	i8042_command_access(k, 0, v, 4, true);
	g_assert_cmpuint(s.count, ==, 0);
	i8042_destroy(k);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/i8042/reset-command", test_reset_command);
	g_test_add_func("/i8042/odd-sizes-ignored", test_odd_sizes_ignored);
	return g_test_run();
}
