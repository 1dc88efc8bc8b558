/* SPDX-License-Identifier: MIT */
/*
 * Where things live in the arm64 guest: devices below 1 GiB, RAM from
 * 1 GiB up (the addresses QEMU's virt board uses, which kernels and
 * firmware writers know well), PCI's 64-bit window past the end of RAM.
 * Included through vmm/layout.h, which has the units.
 */
#ifndef HUSK_ARM64_LAYOUT_H
#define HUSK_ARM64_LAYOUT_H

/* The GICv3: distributor, ITS (MSIs), one redistributor (2 x 64 KiB frames) per vCPU. */
#define LAYOUT_GIC_DIST        UINT64_C(0x08000000)
#define LAYOUT_GIC_DIST_SIZE   UINT64_C(0x10000)
#define LAYOUT_GIC_ITS         UINT64_C(0x08080000)
#define LAYOUT_GIC_ITS_SIZE    UINT64_C(0x20000)
#define LAYOUT_GIC_REDIST      UINT64_C(0x080a0000)
#define LAYOUT_GIC_REDIST_SIZE UINT64_C(0x20000) /* per vCPU */
#define LAYOUT_GIC_REDIST_END  UINT64_C(0x09000000)
/* A 16550A, one byte per register. */
#define LAYOUT_UART      UINT64_C(0x09000000)
#define LAYOUT_UART_SIZE UINT64_C(0x1000)
/* A PL061 GPIO controller: the power button's line. */
#define LAYOUT_GPIO      UINT64_C(0x09030000)
#define LAYOUT_GPIO_SIZE UINT64_C(0x1000)

#define LAYOUT_PCI_MMIO32      UINT64_C(0x10000000) /* window for 32-bit BARs */
#define LAYOUT_PCI_MMIO32_SIZE UINT64_C(0x2eff0000)
#define LAYOUT_PCI_ECAM        UINT64_C(0x3f000000) /* PCIe config space of bus 0 */
#define LAYOUT_PCI_ECAM_SIZE   UINT64_C(0x100000)

/* Guest RAM: one region from 1 GiB. */
#define LAYOUT_RAM_START        UINT64_C(0x40000000)
#define LAYOUT_RAM_LOW_END      (UINT64_C(1) << 48)
#define LAYOUT_HIGH_RAM         UINT64_C(0x100000000) /* PCI's 64-bit window is above this too */
#define LAYOUT_PCI_MMIO64_ALIGN GiB
#define LAYOUT_PCI_MMIO64_SIZE  (16 * GiB)

/*
 * Interrupt lines: SPIs, numbered from 0 (the GIC's INTID is 32 more), as
 * the device tree's interrupt specifiers and KVM's GSI routes count them.
 */
#define IRQ_SERIAL 1
#define IRQ_GPIO   2
/* The GPIO line the power button pulls high. */
#define GPIO_POWER_LINE 3

/* The architected timer's PPIs (as the device tree counts them: INTID - 16). */
#define IRQ_TIMER_SEC_PPI  13
#define IRQ_TIMER_PHYS_PPI 14
#define IRQ_TIMER_VIRT_PPI 11
#define IRQ_TIMER_HYP_PPI  10
/* The GIC's maintenance interrupt. */
#define IRQ_GIC_MAINT_PPI 9

#endif
