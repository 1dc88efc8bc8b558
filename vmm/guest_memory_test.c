// SPDX-License-Identifier: MIT
#include <errno.h>
#include <glib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/guest_memory.h"
#include "vmm/layout.h"

/* Whether the host page at 'p' is mapped: msync fails with ENOMEM if not. */
static bool mapped(const uint8_t *p)
{
	long page = sysconf(_SC_PAGESIZE);
	void *start = (void *)((uintptr_t)p & ~(uintptr_t)(page - 1));

	if (msync(start, 1, MS_ASYNC) == 0)
		return true;
	g_assert_cmpint(errno, ==, ENOMEM);
	return false;
}

/*
 * Guest RAM starts on a 2 MiB boundary of the host's address space, so KVM
 * can back it with huge pages, whatever the size; all of it is usable, and
 * the padding taken to align it is not left mapped past its end.
 */
static void test_aligned_for_huge_pages(void)
{
	static const uint64_t sizes[] = {1 * MiB, 2 * MiB, 3 * MiB + 4096, 512 * MiB + 12288};

	for (unsigned int i = 0; i < G_N_ELEMENTS(sizes); i++) {
		struct guest_memory gm;
		uint64_t size = sizes[i];

		g_assert_true(guest_memory_alloc(&gm, size));
		g_assert_cmpuint((uintptr_t)gm.mapping % (2 * MiB), ==, 0);
		gm.mapping[0] = 1;
		gm.mapping[size - 1] = 1;
		g_assert_true(gm_ptr(&gm, LAYOUT_RAM_START + size - 1, 1) == gm.mapping + size - 1);
		g_assert_null(gm_ptr(&gm, LAYOUT_RAM_START + size, 1));
		g_assert_false(mapped(gm.mapping + size + 4095));
		guest_memory_free(&gm);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/guest_memory/aligned-for-huge-pages", test_aligned_for_huge_pages);
	return g_test_run();
}
