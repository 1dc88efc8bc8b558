/* SPDX-License-Identifier: MIT */
/*
 * The CPU state Linux's 64-bit entry point expects (boot protocol,
 * "64-bit Boot Protocol"): long mode with an identity map covering the
 * kernel, zero page and command line, flat segments, interrupts off.
 */
#ifndef HUSK_LONG_MODE_H
#define HUSK_LONG_MODE_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "vmm/guest_memory.h"

/* Writes the GDT and page tables (identity map of 0..4 GiB, 2 MiB pages). */
bool long_mode_write_tables(const struct guest_memory *gm);

/* Adjusts special registers read from a fresh vCPU to long mode. */
void long_mode_set_sregs(struct kvm_sregs *sregs);

void long_mode_set_regs(struct kvm_regs *regs, uint64_t entry, uint64_t zero_page);

#endif
