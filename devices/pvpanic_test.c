// SPDX-License-Identifier: MIT
#include "devices/pvpanic.h"

#include "vmm/stop_recorder.h"
#include <glib.h>

static void test_capabilities(void)
{
	struct stop_recorder st = {0};
	struct pvpanic *p = pvpanic_create(stop_recorder_hook(&st));
	uint8_t val = 0;

	pvpanic_access(p, 0, &val, 1, false);
	g_assert_cmphex(val, ==, 0x03);
	g_assert_cmpuint(st.count, ==, 0);
	pvpanic_destroy(p);
}

static void test_events(void)
{
	struct stop_recorder st = {0};
	struct pvpanic *p = pvpanic_create(stop_recorder_hook(&st));
	uint8_t val;

	val = 0x02; /* crash kernel loaded: kdump runs, the VM goes on */
	pvpanic_access(p, 0, &val, 1, true);
	g_assert_cmpuint(st.count, ==, 0);
	val = 0x00;
	pvpanic_access(p, 0, &val, 1, true);
	g_assert_cmpuint(st.count, ==, 0);
	val = 0x01;
	pvpanic_access(p, 0, &val, 1, true);
	g_assert_cmpuint(st.count, ==, 1);
	g_assert_cmpint(st.reasons[0], ==, STOP_PANIC);
	val = 0xff;
	pvpanic_access(p, 0, &val, 1, true);
	g_assert_cmpuint(st.count, ==, 2);
	g_assert_cmpint(st.reasons[1], ==, STOP_PANIC);
	pvpanic_destroy(p);
}

static void test_bad_access(void)
{
	struct stop_recorder st = {0};
	struct pvpanic *p = pvpanic_create(stop_recorder_hook(&st));
	uint8_t buf[4] = {0x01, 0x01, 0x01, 0x01};

	pvpanic_access(p, 0, buf, 4, true);
	pvpanic_access(p, 1, buf, 1, true);
	g_assert_cmpuint(st.count, ==, 0);
	pvpanic_destroy(p);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pvpanic/capabilities", test_capabilities);
	g_test_add_func("/pvpanic/events", test_events);
	g_test_add_func("/pvpanic/bad-access", test_bad_access);
	return g_test_run();
}
