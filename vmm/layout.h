/* SPDX-License-Identifier: MIT */
/*
 * Sizes, and where things live in the guest: the host architecture's
 * table (vmm/x86/layout.h, vmm/arm64/layout.h). Each defines the names
 * generic code uses (LAYOUT_RAM_START, LAYOUT_RAM_LOW_END, LAYOUT_HIGH_RAM,
 * the LAYOUT_PCI_* windows, IRQ_SERIAL) beside its own.
 */
#ifndef HUSK_LAYOUT_H
#define HUSK_LAYOUT_H

#include <stdint.h>

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

#if defined(__x86_64__)
#include "vmm/x86/layout.h"
#elif defined(__aarch64__)
#include "vmm/arm64/layout.h"
#else
#error "husk runs on x86_64 and arm64 hosts only"
#endif

#endif
