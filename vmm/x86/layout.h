/* SPDX-License-Identifier: MIT */
/*
 * Where things live in the x86 guest: guest-physical addresses and I/O
 * ports. One table, so that the boot loader, the e820 map, the ACPI tables
 * and the devices cannot disagree.
 */
#ifndef HUSK_X86_LAYOUT_H
#define HUSK_X86_LAYOUT_H

/* Included through vmm/layout.h, which has the units. */

/* Low memory used by the boot path (all below 1 MiB, all RAM). */
#define LAYOUT_GDT         UINT64_C(0x00000500)
#define LAYOUT_ZERO_PAGE   UINT64_C(0x00007000) /* struct boot_params */
#define LAYOUT_BOOT_STACK  UINT64_C(0x00008ff0)
#define LAYOUT_PML4        UINT64_C(0x00009000)
#define LAYOUT_PDPT        UINT64_C(0x0000a000)
#define LAYOUT_PD          UINT64_C(0x0000b000) /* 4 pages: identity map of 0..4 GiB */
#define LAYOUT_CMDLINE     UINT64_C(0x00020000)
#define LAYOUT_CMDLINE_MAX UINT64_C(0x00010000)
#define LAYOUT_EBDA_START  UINT64_C(0x0009fc00) /* RAM below here is usable */
#define LAYOUT_ACPI_START  UINT64_C(0x000e0000) /* RSDP must be in 0xe0000..0xfffff */
#define LAYOUT_ACPI_END    UINT64_C(0x00100000)
#define LAYOUT_KERNEL      UINT64_C(0x00100000) /* protected-mode kernel, 1 MiB */

/* The 32-bit hole below 4 GiB: devices, never RAM. */
#define LAYOUT_MMIO32_START    UINT64_C(0xc0000000)
#define LAYOUT_PCI_MMIO32      LAYOUT_MMIO32_START /* window for PCI BARs */
#define LAYOUT_PCI_MMIO32_SIZE UINT64_C(0x20000000)
#define LAYOUT_PCI_ECAM        UINT64_C(0xe0000000) /* PCIe config space of bus 0 */
#define LAYOUT_PCI_ECAM_SIZE   UINT64_C(0x100000)
#define LAYOUT_IOAPIC          UINT64_C(0xfec00000)
#define LAYOUT_LAPIC           UINT64_C(0xfee00000)
#define LAYOUT_KVM_IDMAP       UINT64_C(0xfffbc000) /* KVM_SET_IDENTITY_MAP_ADDR, 1 page */
#define LAYOUT_KVM_TSS         UINT64_C(0xfffbd000) /* KVM_SET_TSS_ADDR, 3 pages */
#define LAYOUT_HIGH_RAM        UINT64_C(0x100000000)
/* Guest RAM: from 0 up to the hole, the rest from LAYOUT_HIGH_RAM. */
#define LAYOUT_RAM_START   UINT64_C(0)
#define LAYOUT_RAM_LOW_END LAYOUT_MMIO32_START
/* Above the end of RAM, 1 GiB aligned: the window for 64-bit PCI BARs. */
#define LAYOUT_PCI_MMIO64_ALIGN GiB
#define LAYOUT_PCI_MMIO64_SIZE  (16 * GiB)

/* I/O ports. */
#define PORT_I8042_DATA     0x60
#define PORT_I8042_CMD      0x64
#define PORT_COM1           0x3f8
#define PORT_PVPANIC        0x505
#define PORT_ACPI_PM        0x600 /* see devices/acpi_pm.h */
#define PORT_ACPI_PM_LEN    4
#define PORT_PCI_CONFIG     0xcf8 /* address at 0xcf8, data at 0xcfc..0xcff */
#define PORT_PCI_CONFIG_LEN 8

/* Interrupt lines (GSIs of the in-kernel IOAPIC). */
#define IRQ_COM1   4
#define IRQ_SERIAL IRQ_COM1 /* the console's UART, whatever the architecture */
/* The ACPI power button's GED (vmm/x86/acpi.c): an edge on an IOAPIC pin no legacy device uses. */
#define IRQ_POWER_BUTTON 5

#endif
