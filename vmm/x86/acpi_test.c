// SPDX-License-Identifier: MIT
#include <glib.h>
#include <string.h>

#include "devices/acpi_pm.h"
#include "vmm/stop_recorder.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/aml.h"

#define GPA  0xe0000
#define SIZE 0x20000

static const struct acpi_config config4 = {
    .ncpus = 4,
    .ioapic_addr = 0xfec00000,
    .ioapic_id = 4,
    .pm_port = 0x600,
    .pvpanic_port = 0x505,
    .com1_port = 0x3f8,
    .com1_irq = 4,
    .pci_ecam = 0xe0000000,
    .pci_config_port = 0xcf8,
    .pci_mmio32_start = 0xc0000000,
    .pci_mmio32_size = 0x20000000,
    .pci_mmio64_start = 0x140000000,
    .pci_mmio64_size = 0x400000000,
};

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* A table by signature, found through RSDP -> XSDT (or the FADT for the DSDT). */
static const uint8_t *find(const uint8_t *buf, const char *sig)
{
	const uint8_t *xsdt = buf + (le64(buf + 24) - GPA);
	uint32_t n = (le32(xsdt + 4) - 36) / 8;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = buf + (le64(xsdt + 36 + 8 * i) - GPA);
		if (memcmp(t, sig, 4) == 0)
			return t;
		if (memcmp(sig, "DSDT", 4) == 0 && memcmp(t, "FACP", 4) == 0)
			return buf + (le64(t + 140) - GPA);
	}
	return NULL;
}

static uint8_t *build(const struct acpi_config *cfg)
{
	uint8_t *buf = g_malloc0(SIZE);

	g_assert_cmpuint(acpi_build(cfg, buf, GPA, SIZE), ==, GPA);
	return buf;
}

static void test_checksums(void)
{
	uint8_t *buf = build(&config4);
	static const char *const sigs[] = {"XSDT", "FACP", "APIC", "DSDT", "MCFG"};

	g_assert_cmpmem(buf, 8, "RSD PTR ", 8);
	g_assert_cmpuint(sum(buf, 20), ==, 0);
	g_assert_cmpuint(sum(buf, 36), ==, 0);
	g_assert_cmpuint(buf[15], ==, 2); /* revision: XSDT present */
	for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++) {
		const uint8_t *t = i == 0 ? buf + (le64(buf + 24) - GPA) : find(buf, sigs[i]);
		g_assert_nonnull(t);
		g_assert_cmpmem(t, 4, sigs[i], 4);
		g_assert_true(t + le32(t + 4) <= buf + SIZE);
		g_assert_cmpuint(sum(t, le32(t + 4)), ==, 0);
	}
	g_free(buf);
}

static unsigned int count_madt(const uint8_t *madt, uint8_t type)
{
	unsigned int n = 0;

	for (uint32_t off = 44; off < le32(madt + 4); off += madt[off + 1]) {
		g_assert_cmpuint(madt[off + 1], >=, 2);
		n += madt[off] == type;
	}
	return n;
}

static void test_madt_cpus(void)
{
	static const unsigned int counts[] = {1, 4, 254};

	for (size_t i = 0; i < G_N_ELEMENTS(counts); i++) {
		struct acpi_config cfg = config4;
		cfg.ncpus = counts[i];
		uint8_t *buf = build(&cfg);
		const uint8_t *madt = find(buf, "APIC");
		g_assert_cmpuint(count_madt(madt, 0), ==, counts[i]);
		g_assert_cmpuint(count_madt(madt, 1), ==, 1);
		g_assert_cmpuint(count_madt(madt, 2), ==, 1);
		g_assert_cmpuint(le32(madt + 36), ==, 0xfee00000);
		g_free(buf);
	}
	struct acpi_config too_many = config4;
	too_many.ncpus = 255;
	uint8_t *buf = g_malloc0(SIZE);
	g_assert_cmpuint(acpi_build(&too_many, buf, GPA, SIZE), ==, 0);
	g_free(buf);
}

static void test_fadt(void)
{
	uint8_t *buf = build(&config4);
	const uint8_t *f = find(buf, "FACP");

	g_assert_cmpuint(le32(f + 4), ==, 276);
	g_assert_cmpuint(f[8], ==, 6);
	uint32_t flags = le32(f + 112);
	g_assert_true(flags & (1U << 20));     /* HW_REDUCED_ACPI */
	g_assert_true(flags & (1U << 10));     /* RESET_REG_SUP */
	g_assert_cmpuint(f[109] & 0x2, ==, 0); /* no 8042 */
	g_assert_cmpuint(f[116], ==, 1);       /* reset register in I/O space */
	g_assert_cmpuint(le64(f + 120), ==, 0x600 + ACPI_PM_RESET);
	g_assert_cmpuint(f[128], ==, ACPI_RESET_VALUE);
	g_assert_cmpuint(f[244], ==, 1);
	g_assert_cmpuint(le64(f + 248), ==, 0x600 + ACPI_PM_SLEEP_CONTROL);
	g_assert_cmpuint(le64(f + 260), ==, 0x600 + ACPI_PM_SLEEP_STATUS);
	g_assert_cmpuint(le64(f + 140), ==, le32(f + 40));
	g_free(buf);
}

static bool contains(const uint8_t *hay, size_t len, const void *needle, size_t nlen)
{
	for (size_t i = 0; i + nlen <= len; i++)
		if (memcmp(hay + i, needle, nlen) == 0)
			return true;
	return false;
}

static void test_dsdt(void)
{
	uint8_t *buf = build(&config4);
	const uint8_t *d = find(buf, "DSDT");
	uint32_t len = le32(d + 4);
	/* Name(\_S5_, Package(2) { 5, 0 }) */
	static const uint8_t s5[] = {0x08, '\\', '_',  'S',  '5',  '_',
	                             0x12, 0x05, 0x02, 0x0a, 0x05, 0x00};
	/* IO(Decode16, 0x3f8, 0x3f8, 1, 8) and IRQNoFlags() {4} */
	static const uint8_t com1[] = {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03,
	                               0x01, 0x08, 0x22, 0x10, 0x00};

	g_assert_true(contains(d, len, s5, sizeof(s5)));
	g_assert_true(contains(d, len, com1, sizeof(com1)));
	g_assert_true(contains(d, len, "QEMU0001", 9));
	/* PCI0 with _HID PNP0A08 and a 32-bit window 0xc0000000..0xdfffffff */
	static const uint8_t pnp0a08[] = {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08};
	static const uint8_t window[] = {0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xdf};
	g_assert_true(contains(d, len, "PCI0", 4));
	g_assert_true(contains(d, len, pnp0a08, sizeof(pnp0a08)));
	g_assert_true(contains(d, len, window, sizeof(window)));
	/* QWordMemory 0x140000000..0x53fffffff: tag, length 43, memory, fixed, read-write */
	static const uint8_t window64[] = {0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x01, 0,    0,    0,    0,
	                                   0,    0,    0,    0,    0x00, 0x00, 0x00, 0x40, 0x01, 0,
	                                   0,    0,    0xff, 0xff, 0xff, 0x3f, 0x05, 0,    0,    0};
	g_assert_true(contains(d, len, window64, sizeof(window64)));
	g_free(buf);
}

/* The power button: a GED on GSI 5 whose _EVT notifies PWRB (PNP0C0C) with 0x80. */
static void test_power_button(void)
{
	struct acpi_config cfg = config4;
	cfg.power_button_gsi = 5;
	uint8_t *buf = build(&cfg);
	const uint8_t *d = find(buf, "DSDT");
	uint32_t len = le32(d + 4);
	/* Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { 5 } */
	static const uint8_t irq[] = {0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00};
	/* Method(_EVT, 1) { Notify(\_SB_.PWRB, 0x80) } */
	static const uint8_t evt[] = {'_', 'E', 'V', 'T', 0x01, 0x86, '\\', 0x2e, '_',
	                              'S', 'B', '_', 'P', 'W',  'R',  'B',  0x0a, 0x80};
	static const uint8_t pnp0c0c[] = {'_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x0c};

	g_assert_true(contains(d, len, irq, sizeof(irq)));
	g_assert_true(contains(d, len, evt, sizeof(evt)));
	g_assert_true(contains(d, len, pnp0c0c, sizeof(pnp0c0c)));
	g_assert_true(contains(d, len, "ACPI0013", 9));
	g_free(buf);
	/* Without a GSI, no button. */
	buf = build(&config4);
	d = find(buf, "DSDT");
	g_assert_false(contains(d, le32(d + 4), "ACPI0013", 9));
	g_free(buf);
}

static void test_mcfg(void)
{
	uint8_t *buf = build(&config4);
	const uint8_t *m = find(buf, "MCFG");

	g_assert_cmpuint(le32(m + 4), ==, 36 + 8 + 16);
	g_assert_cmphex(le64(m + 44), ==, 0xe0000000);
	g_assert_cmpuint(m[44 + 8] | m[44 + 9] << 8, ==, 0); /* segment */
	g_assert_cmpuint(m[44 + 10], ==, 0);                 /* buses 0..0 */
	g_assert_cmpuint(m[44 + 11], ==, 0);
	g_free(buf);
}

static void test_too_small(void)
{
	uint8_t buf[512];

	memset(buf, 0xaa, sizeof(buf));
	g_assert_cmpuint(acpi_build(&config4, buf, GPA, 300), ==, 0);
	for (size_t i = 300; i < sizeof(buf); i++)
		g_assert_cmpuint(buf[i], ==, 0xaa);
}

static void test_pkg_length(void)
{
	static const struct {
		uint32_t len;
		unsigned int n;
		uint8_t bytes[4];
	} cases[] = {
	    {0, 1, {0x01}},
	    {62, 1, {0x3f}},
	    {63, 2, {0x41, 0x04}},         /* 65 = 0x41: low nibble 1, next byte 4 */
	    {4093, 2, {0x4f, 0xff}},       /* 4095 */
	    {4094, 3, {0x81, 0x00, 0x01}}, /* 4097 = 0x1001: three bytes */
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		uint8_t out[4] = {0};
		g_assert_cmpuint(aml_pkg_length(cases[i].len, out), ==, cases[i].n);
		g_assert_cmpmem(out, cases[i].n, cases[i].bytes, cases[i].n);
	}
}

static void test_aml_values(void)
{
	GByteArray *b = g_byte_array_new();
	static const uint8_t want[] = {
	    0x00, 0x01, 0x0a, 0x05, 0x0b, 0x34, 0x12, 0x0c, 0x78, 0x56, 0x34,
	    0x12, 0x0e, 0x01, 0,    0,    0,    1,    0,    0,    0,    '\\',
	    0x2e, '_',  'S',  'B',  '_',  'C',  'O',  'M',  '1', /* \_SB_.COM1 */
	    '_',  'H',  'I',  'D',
	};

	aml_integer(b, 0);
	aml_integer(b, 1);
	aml_integer(b, 5);
	aml_integer(b, 0x1234);
	aml_integer(b, 0x12345678);
	aml_integer(b, 0x100000001ULL);
	aml_name_string(b, "\\_SB_.COM1");
	aml_name_string(b, "_HID");
	g_assert_cmpmem(b->data, b->len, want, sizeof(want));
	g_assert_cmphex(aml_eisaid_value("PNP0501"), ==, 0x0105d041);
	g_assert_cmphex(aml_eisaid_value("PNP0A08"), ==, 0x080ad041);
	g_byte_array_free(b, TRUE);
}

static void test_aml_nesting(void)
{
	GByteArray *b = g_byte_array_new();
	size_t outer = aml_open(b, AML_SCOPE_OP);

	for (int i = 0; i < 100; i++)
		aml_integer(b, 0x0a); /* 2 bytes each: pushes the scope past 63 bytes */
	aml_close(b, outer);
	g_assert_cmpuint(b->data[0], ==, 0x10);
	g_assert_cmpuint(b->len, ==, 1 + 2 + 200);
	g_assert_cmpuint((b->data[1] & 0x0f) | (b->data[2] << 4), ==, 202);
	g_byte_array_free(b, TRUE);
}

static void test_acpi_pm(void)
{
	struct stop_recorder s = {0};
	struct acpi_pm *pm = acpi_pm_create(stop_recorder_hook(&s));
	uint8_t v;

	v = (3 << 2) | 0x20; /* S3: not supported, ignored */
	acpi_pm_access(pm, ACPI_PM_SLEEP_CONTROL, &v, 1, true);
	v = ACPI_S5_SLEEP_TYPE << 2; /* S5 without SLP_EN */
	acpi_pm_access(pm, ACPI_PM_SLEEP_CONTROL, &v, 1, true);
	v = 0x02;
	acpi_pm_access(pm, ACPI_PM_RESET, &v, 1, true);
	g_assert_cmpuint(s.count, ==, 0);
	v = (ACPI_S5_SLEEP_TYPE << 2) | 0x20;
	acpi_pm_access(pm, ACPI_PM_SLEEP_CONTROL, &v, 1, true);
	g_assert_cmpuint(s.count, ==, 1);
	g_assert_cmpint(stop_recorder_last(&s), ==, STOP_POWEROFF);
	v = ACPI_RESET_VALUE;
	acpi_pm_access(pm, ACPI_PM_RESET, &v, 1, true);
	g_assert_cmpint(stop_recorder_last(&s), ==, STOP_REBOOT);
	v = 0xff;
	acpi_pm_access(pm, ACPI_PM_SLEEP_STATUS, &v, 1, false);
	g_assert_cmpuint(v, ==, 0);
	acpi_pm_destroy(pm);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/acpi/checksums", test_checksums);
	g_test_add_func("/acpi/madt-cpus", test_madt_cpus);
	g_test_add_func("/acpi/fadt", test_fadt);
	g_test_add_func("/acpi/dsdt", test_dsdt);
	g_test_add_func("/acpi/power-button", test_power_button);
	g_test_add_func("/acpi/mcfg", test_mcfg);
	g_test_add_func("/acpi/too-small", test_too_small);
	g_test_add_func("/aml/pkg-length", test_pkg_length);
	g_test_add_func("/aml/values", test_aml_values);
	g_test_add_func("/aml/nesting", test_aml_nesting);
	g_test_add_func("/acpi-pm/registers", test_acpi_pm);
	return g_test_run();
}
