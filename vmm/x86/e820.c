// SPDX-License-Identifier: MIT
#include "vmm/x86/e820.h"

#include "vmm/layout.h"

#define E820_RAM      1
#define E820_RESERVED 2

static bool append(struct boot_e820_entry *out, unsigned int max, unsigned int *n, uint64_t start,
                   uint64_t end, uint32_t type)
{
	if (end <= start)
		return true;
	if (*n == max)
		return false;
	out[(*n)++] = (struct boot_e820_entry){.addr = start, .size = end - start, .type = type};
	return true;
}

/*
 * Below 1 MiB the layout mimics a PC: RAM up to the EBDA, then the legacy
 * video/ROM window, of which 0xe0000..0xfffff holds the ACPI tables and is
 * reserved so the guest keeps them. Linux wants real-mode RAM below 640 KiB
 * for its SMP trampoline.
 */
unsigned int e820_build(const struct guest_memory *gm, struct boot_e820_entry *out,
                        unsigned int max)
{
	uint64_t low_end = gm_low_end(gm);
	unsigned int n = 0;
	bool ok = true;

	if (low_end <= LAYOUT_KERNEL)
		return 0;
	ok &= append(out, max, &n, 0, LAYOUT_EBDA_START, E820_RAM);
	ok &= append(out, max, &n, LAYOUT_EBDA_START, 0xa0000, E820_RESERVED);
	ok &= append(out, max, &n, LAYOUT_ACPI_START, LAYOUT_ACPI_END, E820_RESERVED);
	ok &= append(out, max, &n, LAYOUT_KERNEL, low_end, E820_RAM);
	/* Linux only trusts the MCFG's ECAM window if the memory map reserves it. */
	ok &= append(out, max, &n, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM + LAYOUT_PCI_ECAM_SIZE,
	             E820_RESERVED);
	for (unsigned int i = 1; i < gm->count; i++)
		ok &= append(out, max, &n, gm->regions[i].gpa,
		             gm->regions[i].gpa + gm->regions[i].size, E820_RAM);
	return ok ? n : 0;
}
