// SPDX-License-Identifier: MIT
#include <glib.h>

#include "vmm/layout.h"
#include "vmm/x86/e820.h"

#define RAM      1
#define RESERVED 2

static uint64_t ram_total(const struct boot_e820_entry *e, unsigned int n)
{
	uint64_t sum = 0;

	for (unsigned int i = 0; i < n; i++)
		if (e[i].type == RAM)
			sum += e[i].size;
	return sum;
}

static void check_sorted_disjoint(const struct boot_e820_entry *e, unsigned int n)
{
	for (unsigned int i = 1; i < n; i++)
		g_assert_cmpuint(e[i - 1].addr + e[i - 1].size, <=, e[i].addr);
}

static void test_small_guest(void)
{
	struct guest_memory gm;
	struct boot_e820_entry e[16];

	g_assert_true(guest_memory_alloc(&gm, 512 * MiB));
	unsigned int n = e820_build(&gm, e, 16);
	g_assert_cmpuint(n, ==, 5);
	check_sorted_disjoint(e, n);
	g_assert_cmpuint(e[0].addr, ==, 0);
	g_assert_cmpuint(e[0].size, ==, LAYOUT_EBDA_START);
	g_assert_cmpuint(e[2].type, ==, RESERVED); /* ACPI tables */
	g_assert_cmpuint(e[2].addr, ==, LAYOUT_ACPI_START);
	g_assert_cmpuint(e[3].addr + e[3].size, ==, 512 * MiB);
	g_assert_cmpuint(e[4].type, ==, RESERVED); /* PCI ECAM */
	g_assert_cmpuint(e[4].addr, ==, LAYOUT_PCI_ECAM);
	/* Only the legacy hole below 1 MiB is lost. */
	g_assert_cmpuint(ram_total(e, n), ==, 512 * MiB - (LAYOUT_KERNEL - LAYOUT_EBDA_START));
	guest_memory_free(&gm);
}

static void test_split_around_pci_hole(void)
{
	struct guest_memory gm;
	struct boot_e820_entry e[16];

	g_assert_true(guest_memory_alloc(&gm, 5 * GiB));
	unsigned int n = e820_build(&gm, e, 16);
	g_assert_cmpuint(n, ==, 6);
	check_sorted_disjoint(e, n);
	g_assert_cmpuint(e[3].addr + e[3].size, ==, LAYOUT_MMIO32_START);
	g_assert_cmpuint(e[5].addr, ==, LAYOUT_HIGH_RAM);
	g_assert_cmpuint(e[5].size, ==, 5 * GiB - LAYOUT_MMIO32_START);
	for (unsigned int i = 0; i < n; i++)
		g_assert_false(e[i].type == RAM && e[i].addr < LAYOUT_HIGH_RAM &&
		               e[i].addr + e[i].size > LAYOUT_MMIO32_START);
	guest_memory_free(&gm);
}

static void test_no_room(void)
{
	struct guest_memory gm;
	struct boot_e820_entry e[2];

	g_assert_true(guest_memory_alloc(&gm, 64 * MiB));
	g_assert_cmpuint(e820_build(&gm, e, 2), ==, 0);
	guest_memory_free(&gm);
}

static void test_guest_memory_bounds(void)
{
	struct guest_memory gm;

	g_assert_true(guest_memory_alloc(&gm, 4 * GiB));
	g_assert_nonnull(gm_ptr(&gm, 0, LAYOUT_MMIO32_START));
	g_assert_null(gm_ptr(&gm, 0, LAYOUT_MMIO32_START + 1));
	g_assert_null(gm_ptr(&gm, LAYOUT_MMIO32_START, 1));
	g_assert_nonnull(gm_ptr(&gm, LAYOUT_HIGH_RAM, GiB));
	g_assert_null(gm_ptr(&gm, LAYOUT_HIGH_RAM, GiB + 1));
	g_assert_null(gm_ptr(&gm, UINT64_MAX, 2));
	g_assert_null(gm_ptr(&gm, 16, UINT64_MAX));
	g_assert_nonnull(gm_ptr(&gm, LAYOUT_HIGH_RAM + GiB, 0));
	guest_memory_free(&gm);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/e820/small-guest", test_small_guest);
	g_test_add_func("/e820/split-around-pci-hole", test_split_around_pci_hole);
	g_test_add_func("/e820/no-room", test_no_room);
	g_test_add_func("/guest-memory/bounds", test_guest_memory_bounds);
	return g_test_run();
}
