// SPDX-License-Identifier: MIT
#include "vmm/x86/acpi.h"

#include <glib.h>
#include <stdbool.h>
#include <string.h>

#include "vmm/x86/aml.h"

#define OEM_ID       "HUSK  "
#define OEM_TABLE_ID "HUSKVM  "
#define CREATOR_ID   "HUSK"
#define MAX_CPUS     254

/* ACPI 6.4, 5.2.6: the header every table but the RSDP starts with. */
struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* 5.2.5.3 */
struct acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* of the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* of all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

/* 5.2.3.2 Generic Address Structure */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

#define GAS_SYSTEM_IO   1
#define GAS_ACCESS_BYTE 1

/* 5.2.9, revision 6: 276 bytes. Fields husk leaves zero are grouped as padding. */
struct acpi_fadt {
	struct acpi_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0[109 - 44];
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm_blocks[8]; /* PM1a/b event and control, PM2, timer, GPE0/1 */
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor[8];
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes");

#define FADT_WBINVD          (1U << 0)
#define FADT_PWR_BUTTON      (1U << 4) /* set: no fixed-feature power button */
#define FADT_SLP_BUTTON      (1U << 5)
#define FADT_RESET_REG_SUP   (1U << 10)
#define FADT_HW_REDUCED_ACPI (1U << 20)
/* IA-PC boot architecture flags (5.2.9.3); the 8042 bit stays clear: no PS/2. */
#define BOOT_ARCH_VGA_NOT_PRESENT (1U << 2)
#define BOOT_ARCH_NO_CMOS_RTC     (1U << 5)

/* 5.2.12 MADT and its entries */
struct acpi_madt {
	struct acpi_header header;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

#define MADT_PCAT_COMPAT 1 /* the in-kernel 8259 pair exists */

struct madt_lapic {
	uint8_t type, length, uid, apic_id;
	uint32_t flags;
} __attribute__((packed));

struct madt_ioapic {
	uint8_t type, length, id, reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct madt_override {
	uint8_t type, length, bus, source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));

struct madt_lapic_nmi {
	uint8_t type, length, uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

#define MADT_TYPE_LAPIC     0
#define MADT_TYPE_IOAPIC    1
#define MADT_TYPE_OVERRIDE  2
#define MADT_TYPE_LAPIC_NMI 4
#define MADT_LAPIC_ENABLED  1
#define MADT_ALL_CPUS       0xff

#define LAPIC_BASE 0xfee00000U

static uint8_t checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return (uint8_t)-sum;
}

/* A table under construction: a header, then the body appended after it. */
static GByteArray *table_new(const char *sig, uint8_t revision)
{
	struct acpi_header h = {.revision = revision, .oem_revision = 1, .creator_revision = 1};
	GByteArray *t = g_byte_array_new();

	memcpy(h.signature, sig, 4);
	memcpy(h.oem_id, OEM_ID, 6);
	memcpy(h.oem_table_id, OEM_TABLE_ID, 8);
	memcpy(h.creator_id, CREATOR_ID, 4);
	g_byte_array_append(t, (const guint8 *)&h, sizeof(h));
	return t;
}

static void table_finish(GByteArray *t)
{
	struct acpi_header *h = (struct acpi_header *)t->data;

	h->length = t->len;
	h->checksum = 0;
	h->checksum = checksum(t->data, t->len);
}

static struct acpi_gas io_register(uint16_t port)
{
	return (struct acpi_gas){.space_id = GAS_SYSTEM_IO,
	                         .bit_width = 8,
	                         .access_size = GAS_ACCESS_BYTE,
	                         .address = port};
}

static GByteArray *build_fadt(const struct acpi_config *cfg, uint64_t dsdt)
{
	struct acpi_fadt f = {
	    .dsdt = (uint32_t)dsdt,
	    .iapc_boot_arch = BOOT_ARCH_VGA_NOT_PRESENT | BOOT_ARCH_NO_CMOS_RTC,
	    .flags = FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP |
	             FADT_HW_REDUCED_ACPI,
	    .reset_reg = io_register(cfg->pm_port + ACPI_PM_RESET),
	    .reset_value = ACPI_RESET_VALUE,
	    .x_dsdt = dsdt,
	    /* In a hardware-reduced system S5 goes through these (4.8.3.7). */
	    .sleep_control_reg = io_register(cfg->pm_port + ACPI_PM_SLEEP_CONTROL),
	    .sleep_status_reg = io_register(cfg->pm_port + ACPI_PM_SLEEP_STATUS),
	};
	GByteArray *t = table_new("FACP", 6);

	memcpy(f.hypervisor_vendor, "HUSK\0\0\0\0", 8);
	g_byte_array_append(t, (const guint8 *)&f + sizeof(f.header), sizeof(f) - sizeof(f.header));
	return t;
}

static void append(GByteArray *t, const void *entry, size_t len)
{
	g_byte_array_append(t, entry, (guint)len);
}

static GByteArray *build_madt(const struct acpi_config *cfg)
{
	struct acpi_madt m = {.lapic_address = LAPIC_BASE, .flags = MADT_PCAT_COMPAT};
	struct madt_ioapic io = {MADT_TYPE_IOAPIC,           sizeof(io), cfg->ioapic_id, 0,
	                         (uint32_t)cfg->ioapic_addr, 0};
	/* The PIT drives ISA IRQ 0, which reaches the IOAPIC on pin 2, as on a PC. */
	struct madt_override pit = {MADT_TYPE_OVERRIDE, sizeof(pit), 0, 0, 2, 0};
	struct madt_lapic_nmi nmi = {MADT_TYPE_LAPIC_NMI, sizeof(nmi), MADT_ALL_CPUS, 0, 1};
	GByteArray *t = table_new("APIC", 5);

	append(t, (const uint8_t *)&m + sizeof(m.header), sizeof(m) - sizeof(m.header));
	for (unsigned int i = 0; i < cfg->ncpus; i++) {
		struct madt_lapic cpu = {MADT_TYPE_LAPIC, sizeof(cpu), (uint8_t)i, (uint8_t)i,
		                         MADT_LAPIC_ENABLED};
		append(t, &cpu, sizeof(cpu));
	}
	append(t, &io, sizeof(io));
	append(t, &pit, sizeof(pit));
	append(t, &nmi, sizeof(nmi));
	return t;
}

/* Device(name) { _HID, _UID ...: returns the mark aml_close() takes. */
static size_t device_open(GByteArray *t, const char *name, const char *hid, bool eisa)
{
	size_t dev = aml_open(t, AML_DEVICE_OP);

	aml_name_string(t, name);
	aml_name(t, "_HID");
	if (eisa)
		aml_eisaid(t, hid);
	else
		aml_string(t, hid);
	aml_name(t, "_UID");
	aml_integer(t, 0);
	return dev;
}

/* Device(name) { _HID, _UID, _CRS }: the shape of both legacy devices. */
static void dsdt_device(GByteArray *t, const char *name, const char *hid, bool eisa,
                        const GByteArray *res)
{
	size_t dev = device_open(t, name, hid, eisa);

	aml_resource_template(t, "_CRS", res);
	aml_close(t, dev);
}

/* 5.2.6: MCFG, one allocation: segment 0, bus 0 only. */
struct mcfg_allocation {
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus;
	uint8_t end_bus;
	uint32_t reserved;
} __attribute__((packed));

static GByteArray *build_mcfg(const struct acpi_config *cfg)
{
	GByteArray *t = table_new("MCFG", 1);
	struct mcfg_allocation a = {.base = cfg->pci_ecam};
	uint64_t reserved = 0;

	append(t, &reserved, sizeof(reserved));
	append(t, &a, sizeof(a));
	return t;
}

/*
 * The host bridge (PCI Firmware Spec 3.2, 4.1): a PCIe root (_HID PNP0A08,
 * _CID PNP0A03) whose _CRS hands out bus 0, the I/O ports around the
 * config ports and both BAR windows.
 */
static void dsdt_pci_host(GByteArray *t, const struct acpi_config *cfg)
{
	GByteArray *res = g_byte_array_new();
	size_t dev = aml_open(t, AML_DEVICE_OP);

	aml_name_string(t, "PCI0");
	aml_name(t, "_HID");
	aml_eisaid(t, "PNP0A08");
	aml_name(t, "_CID");
	aml_eisaid(t, "PNP0A03");
	aml_name(t, "_SEG");
	aml_integer(t, 0);
	aml_name(t, "_BBN");
	aml_integer(t, 0);
	aml_name(t, "_UID");
	aml_integer(t, 0);
	aml_res_word_bus(res, 0, 0);
	aml_res_io(res, cfg->pci_config_port, 8);
	aml_res_word_io(res, 0, (uint16_t)(cfg->pci_config_port - 1));
	aml_res_word_io(res, (uint16_t)(cfg->pci_config_port + 8), 0xffff);
	aml_res_dword_memory(res, cfg->pci_mmio32_start,
	                     cfg->pci_mmio32_start + cfg->pci_mmio32_size - 1);
	aml_res_qword_memory(res, cfg->pci_mmio64_start,
	                     cfg->pci_mmio64_start + cfg->pci_mmio64_size - 1);
	aml_resource_template(t, "_CRS", res);
	aml_close(t, dev);
	g_byte_array_free(res, TRUE);
}

/*
 * A power button for hardware-reduced ACPI, as QEMU's microvm has one: a
 * Generic Event Device (5.6.9) whose interrupt runs _EVT, which notifies
 * the control-method power button (PNP0C0C). Linux's button driver turns
 * that into KEY_POWER; systemd-logind powers off.
 */
static void dsdt_power_button(GByteArray *t, const struct acpi_config *cfg)
{
	GByteArray *res = g_byte_array_new();

	aml_close(t, device_open(t, "PWRB", "PNP0C0C", true));
	size_t dev = device_open(t, "GED0", "ACPI0013", false);
	aml_res_interrupt(res, cfg->power_button_gsi);
	aml_resource_template(t, "_CRS", res);
	size_t method = aml_open(t, AML_METHOD_OP);
	aml_name_string(t, "_EVT");
	g_byte_array_append(t, (const guint8[]){1}, 1); /* one argument: the GSI */
	aml_notify(t, "\\_SB_.PWRB", 0x80);             /* 0x80: the button was pressed */
	aml_close(t, method);
	aml_close(t, dev);
	g_byte_array_free(res, TRUE);
}

static GByteArray *build_dsdt(const struct acpi_config *cfg)
{
	GByteArray *t = table_new("DSDT", 2); /* revision 2: 64-bit integers */
	GByteArray *res = g_byte_array_new();

	size_t sb = aml_open(t, AML_SCOPE_OP);
	aml_name_string(t, "\\_SB_");
	aml_res_io(res, cfg->com1_port, 8);
	aml_res_irq(res, cfg->com1_irq);
	dsdt_device(t, "COM1", "PNP0501", true, res);
	/* QEMU's pvpanic id: Linux's pvpanic-mmio driver binds to it. */
	g_byte_array_set_size(res, 0);
	aml_res_io(res, cfg->pvpanic_port, 1);
	dsdt_device(t, "PEVT", "QEMU0001", false, res);
	dsdt_pci_host(t, cfg);
	if (cfg->power_button_gsi)
		dsdt_power_button(t, cfg);
	aml_close(t, sb);

	/* \_S5_: Package { SLP_TYPa, SLP_TYPb } (7.4.2) */
	aml_name(t, "\\_S5_");
	size_t pkg = aml_open(t, AML_PACKAGE_OP);
	g_byte_array_append(t, (const guint8[]){2}, 1);
	aml_integer(t, ACPI_S5_SLEEP_TYPE);
	aml_integer(t, 0);
	aml_close(t, pkg);
	g_byte_array_free(res, TRUE);
	return t;
}

struct layout {
	uint8_t *buf;
	uint64_t gpa;
	size_t size;
	size_t used;
};

/* Copies a finished table into the guest area; returns its address or 0. */
static uint64_t place(struct layout *l, const void *data, size_t len)
{
	size_t at = (l->used + 15) & ~(size_t)15;

	if (at > l->size || len > l->size - at)
		return 0;
	memcpy(l->buf + at, data, len);
	l->used = at + len;
	return l->gpa + at;
}

static uint64_t place_table(struct layout *l, GByteArray *t)
{
	table_finish(t);
	uint64_t addr = place(l, t->data, t->len);
	g_byte_array_free(t, TRUE);
	return addr;
}

uint64_t acpi_build(const struct acpi_config *cfg, uint8_t *buf, uint64_t gpa, size_t size)
{
	struct layout l = {buf, gpa, size, sizeof(struct acpi_rsdp)};
	struct acpi_rsdp rsdp = {.revision = 2, .length = sizeof(rsdp)};

	if (cfg->ncpus == 0 || cfg->ncpus > MAX_CPUS || size < sizeof(rsdp))
		return 0;
	uint64_t dsdt = place_table(&l, build_dsdt(cfg));
	uint64_t fadt = dsdt ? place_table(&l, build_fadt(cfg, dsdt)) : 0;
	uint64_t madt = fadt ? place_table(&l, build_madt(cfg)) : 0;
	uint64_t mcfg = madt ? place_table(&l, build_mcfg(cfg)) : 0;
	if (!mcfg)
		return 0;

	GByteArray *xsdt = table_new("XSDT", 1);
	append(xsdt, &fadt, 8);
	append(xsdt, &madt, 8);
	append(xsdt, &mcfg, 8);
	rsdp.xsdt_address = place_table(&l, xsdt);
	if (!rsdp.xsdt_address)
		return 0;

	memcpy(rsdp.signature, "RSD PTR ", 8);
	memcpy(rsdp.oem_id, OEM_ID, 6);
	rsdp.checksum = checksum(&rsdp, 20);
	rsdp.extended_checksum = checksum(&rsdp, sizeof(rsdp));
	memcpy(buf, &rsdp, sizeof(rsdp));
	return gpa;
}
