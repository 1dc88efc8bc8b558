/* SPDX-License-Identifier: MIT */
/*
 * Where things live in the x86 guest: guest-physical addresses and I/O
 * ports. One table, so that the boot loader, the e820 map, the ACPI tables
 * and the devices cannot disagree.
 */
#ifndef HUSK_LAYOUT_H
#define HUSK_LAYOUT_H

#include <stdint.h>

#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

/* Low memory used by the boot path (all below 1 MiB, all RAM). */
#define LAYOUT_GDT	   0x00000500ULL
#define LAYOUT_ZERO_PAGE   0x00007000ULL /* struct boot_params */
#define LAYOUT_BOOT_STACK  0x00008ff0ULL
#define LAYOUT_PML4	   0x00009000ULL
#define LAYOUT_PDPT	   0x0000a000ULL
#define LAYOUT_PD	   0x0000b000ULL /* 4 pages: identity map of 0..4 GiB */
#define LAYOUT_CMDLINE	   0x00020000ULL
#define LAYOUT_CMDLINE_MAX 0x00010000ULL
#define LAYOUT_EBDA_START  0x0009fc00ULL /* RAM below here is usable */
#define LAYOUT_ACPI_START  0x000e0000ULL /* RSDP must be in 0xe0000..0xfffff */
#define LAYOUT_ACPI_END	   0x00100000ULL
#define LAYOUT_KERNEL	   0x00100000ULL /* protected-mode kernel, 1 MiB */

/* The 32-bit hole below 4 GiB: devices, never RAM. */
#define LAYOUT_MMIO32_START 0xc0000000ULL
#define LAYOUT_IOAPIC	    0xfec00000ULL
#define LAYOUT_LAPIC	    0xfee00000ULL
#define LAYOUT_KVM_IDMAP    0xfffbc000ULL /* KVM_SET_IDENTITY_MAP_ADDR, 1 page */
#define LAYOUT_KVM_TSS	    0xfffbd000ULL /* KVM_SET_TSS_ADDR, 3 pages */
#define LAYOUT_HIGH_RAM	    0x100000000ULL

/* I/O ports. */
#define PORT_I8042_DATA	   0x60
#define PORT_I8042_CMD	   0x64
#define PORT_COM1	   0x3f8
#define PORT_PVPANIC	   0x505
#define PORT_ACPI_PM	   0x600 /* see devices/acpi_pm.h */
#define PORT_ACPI_PM_LEN   4

/* Interrupt lines (GSIs of the in-kernel IOAPIC). */
#define IRQ_COM1 4

#endif
