// SPDX-License-Identifier: MIT
#include <glib.h>
#include <string.h>

#include "vmm/bus.h"

struct recorder {
	uint64_t offset;
	uint32_t len;
	bool is_write;
	int calls;
};

static void record(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct recorder *r = opaque;

	r->offset = offset;
	r->len = len;
	r->is_write = is_write;
	r->calls++;
	if (!is_write)
		data[0] = 0x42;
}

static void test_dispatch_offsets(void)
{
	struct recorder a = {0}, b = {0};
	struct bus bus;
	uint8_t data[4];

	bus_init(&bus, "pio");
	g_assert_true(bus_register(&bus, 0x3f8, 8, record, &b, "b"));
	g_assert_true(bus_register(&bus, 0x60, 1, record, &a, "a"));
	g_assert_true(bus_dispatch(&bus, 0x3fd, data, 1, false));
	g_assert_cmpuint(b.offset, ==, 5);
	g_assert_cmpuint(data[0], ==, 0x42);
	g_assert_true(bus_dispatch(&bus, 0x60, data, 1, true));
	g_assert_cmpint(a.calls, ==, 1);
	g_assert_true(a.is_write);
	bus_destroy(&bus);
}

static void test_unclaimed_reads_all_ones(void)
{
	struct recorder a = {0};
	struct bus bus;
	uint8_t data[4] = {0};

	bus_init(&bus, "pio");
	g_assert_true(bus_register(&bus, 0x60, 1, record, &a, "a"));
	g_assert_false(bus_dispatch(&bus, 0x61, data, 4, false));
	g_assert_cmpuint(data[0] & data[1] & data[2] & data[3], ==, 0xff);
	g_assert_false(bus_dispatch(&bus, 0x5f, data, 1, true));
	g_assert_cmpint(a.calls, ==, 0);
	bus_destroy(&bus);
}

static void test_overlap_and_wrap_refused(void)
{
	struct recorder a = {0};
	struct bus bus;

	bus_init(&bus, "mmio");
	g_assert_true(bus_register(&bus, 0x1000, 0x100, record, &a, "a"));
	g_assert_false(bus_register(&bus, 0x10ff, 1, record, &a, "overlap end"));
	g_assert_false(bus_register(&bus, 0xf00, 0x101, record, &a, "overlap start"));
	g_assert_false(bus_register(&bus, 0x2000, 0, record, &a, "empty"));
	g_assert_false(bus_register(&bus, UINT64_MAX - 1, 4, record, &a, "wraps"));
	g_assert_true(bus_register(&bus, 0x1100, 0x100, record, &a, "adjacent"));
	g_assert_cmpuint(bus.count, ==, 2);
	bus_destroy(&bus);
}

static void test_many_ranges_sorted(void)
{
	struct recorder r[32] = {0};
	struct bus bus;
	uint8_t data[1];

	bus_init(&bus, "pio");
	for (int i = 31; i >= 0; i--)
		g_assert_true(bus_register(&bus, (uint64_t)i * 16, 8, record, &r[i], "r"));
	for (int i = 0; i < 32; i++) {
		g_assert_true(bus_dispatch(&bus, (uint64_t)i * 16 + 7, data, 1, true));
		g_assert_false(bus_dispatch(&bus, (uint64_t)i * 16 + 8, data, 1, true));
		g_assert_cmpint(r[i].calls, ==, 1);
	}
	bus_destroy(&bus);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/bus/dispatch-offsets", test_dispatch_offsets);
	g_test_add_func("/bus/unclaimed-reads-all-ones", test_unclaimed_reads_all_ones);
	g_test_add_func("/bus/overlap-and-wrap-refused", test_overlap_and_wrap_refused);
	g_test_add_func("/bus/many-ranges-sorted", test_many_ranges_sorted);
	return g_test_run();
}
