/* SPDX-License-Identifier: MIT */
/* The BIOS-style memory map handed to Linux in the zero page. */
#ifndef HUSK_E820_H
#define HUSK_E820_H

#include <asm/bootparam.h>

#include "vmm/guest_memory.h"

/* Fills 'out' (room for 'max' entries); returns the number written, 0 if it does not fit. */
unsigned int e820_build(const struct guest_memory *gm, struct boot_e820_entry *out,
                        unsigned int max);

#endif
