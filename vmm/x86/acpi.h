/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for the x86 machine: RSDP, XSDT, a hardware-reduced FADT,
 * MADT and DSDT. They tell a stock kernel where its CPUs and interrupt
 * controllers are and how to power off and reset (devices/acpi_pm.h).
 */
#ifndef HUSK_ACPI_H
#define HUSK_ACPI_H

#include <stddef.h>
#include <stdint.h>

/* The \_S5_ sleep type the DSDT announces and devices/acpi_pm expects. */
#define ACPI_S5_SLEEP_TYPE 5
#define ACPI_RESET_VALUE   0x01

/* Register offsets within the acpi_pm I/O ports. */
#define ACPI_PM_SLEEP_CONTROL 0
#define ACPI_PM_SLEEP_STATUS  1
#define ACPI_PM_RESET         2

struct acpi_config {
	unsigned int ncpus; /* LAPIC ids and processor UIDs 0..ncpus-1 */
	uint64_t ioapic_addr;
	uint8_t ioapic_id;
	uint16_t pm_port; /* base of the acpi_pm registers */
	uint16_t pvpanic_port;
	uint16_t com1_port;
	uint8_t com1_irq;
	uint8_t power_button_gsi; /* an edge here presses the power button; 0: none */
	/* PCI bus 0: ECAM at pci_ecam (MCFG), config ports, BAR windows. */
	uint64_t pci_ecam;
	uint16_t pci_config_port;
	uint32_t pci_mmio32_start;
	uint32_t pci_mmio32_size;
	uint64_t pci_mmio64_start;
	uint64_t pci_mmio64_size;
};

/*
 * Lays the tables out in 'buf', which the guest sees at 'gpa'. Returns the
 * RSDP's guest-physical address (it comes first, 16-byte aligned if gpa
 * is), or 0 if the tables do not fit or the configuration cannot be
 * described (more than 254 CPUs).
 */
uint64_t acpi_build(const struct acpi_config *cfg, uint8_t *buf, uint64_t gpa, size_t size);

#endif
