// SPDX-License-Identifier: MIT
/*
 * The arm64 device tree, built for a configuration and read back with
 * libfdt (and decompiled by dtc where device-tree-compiler is installed).
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <libfdt.h>
#include <string.h>

#include "vmm/arm64/fdt.h"
#include "vmm/error.h"

#define TREE_SIZE (64 * 1024)

struct tree {
	uint8_t buf[TREE_SIZE];
	struct fdt_uart uart;
	struct fdt_pci pci;
	struct fdt_gpio gpio;
	struct fdt_board board;
	char *stdout_path;
};

static void tree_init(struct tree *t, unsigned int ncpus, bool initrd)
{
	memset(t, 0, sizeof(*t));
	t->uart =
	    (struct fdt_uart){.addr = 0x9000000, .size = 0x1000, .spi = 1, .clock_hz = 1843200};
	t->pci = (struct fdt_pci){.ecam = 0x3f000000,
	                          .ecam_size = 0x100000,
	                          .mmio32 = 0x10000000,
	                          .mmio32_size = 0x2eff0000,
	                          .mmio64 = UINT64_C(0x400000000),
	                          .mmio64_size = UINT64_C(0x400000000)};
	t->gpio = (struct fdt_gpio){.addr = 0x9030000, .size = 0x1000, .spi = 2, .power_line = 3};
	t->stdout_path = fdt_uart_path(&t->uart);
	t->board = (struct fdt_board){
	    .ncpus = ncpus,
	    .ram_start = 0x40000000,
	    .ram_size = UINT64_C(512) << 20,
	    .bootargs = "console=ttyS0 quiet",
	    .stdout_path = t->stdout_path,
	    .initrd_start = initrd ? 0x48000000 : 0,
	    .initrd_end = initrd ? 0x48123456 : 0,
	    .gic_dist = 0x8000000,
	    .gic_dist_size = 0x10000,
	    .gic_redist = 0x80a0000,
	    .gic_redist_size = ncpus * 0x20000,
	    .gic_its = 0x8080000,
	    .gic_its_size = 0x20000,
	};
	memset(t->board.rng_seed, 0xa5, sizeof(t->board.rng_seed));
}

static size_t tree_build(struct tree *t, size_t size, GError **err)
{
	const struct fdt_device devs[] = {
	    {fdt_uart_node, &t->uart}, {fdt_gpio_node, &t->gpio}, {fdt_pci_node, &t->pci}};

	return fdt_build(&t->board, devs, G_N_ELEMENTS(devs), t->buf, size, err);
}

static void tree_free(struct tree *t)
{
	g_free(t->stdout_path);
}

static int node(const void *fdt, const char *path)
{
	int off = fdt_path_offset(fdt, path);

	g_assert_cmpint(off, >=, 0);
	return off;
}

static const char *str(const void *fdt, const char *path, const char *prop)
{
	const char *v = fdt_getprop(fdt, node(fdt, path), prop, NULL);

	g_assert_nonnull(v);
	return v;
}

static uint64_t u64_at(const void *fdt, const char *path, const char *prop, int i)
{
	int len;
	const uint8_t *v = fdt_getprop(fdt, node(fdt, path), prop, &len);
	fdt64_t cell;

	g_assert_nonnull(v);
	g_assert_cmpint(len, >=, (i + 1) * 8);
	/* A property is only 4-byte aligned in the blob: no 64-bit load from it. */
	memcpy(&cell, v + i * 8, sizeof(cell));
	return fdt64_to_cpu(cell);
}

static uint32_t u32_at(const void *fdt, const char *path, const char *prop, int i)
{
	int len;
	const fdt32_t *v = fdt_getprop(fdt, node(fdt, path), prop, &len);

	g_assert_nonnull(v);
	g_assert_cmpint(len, >=, (i + 1) * 4);
	return fdt32_to_cpu(v[i]);
}

static void test_board(void)
{
	struct tree t;
	GError *err = NULL;

	tree_init(&t, 2, true);
	size_t len = tree_build(&t, TREE_SIZE, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(len, >, 0);
	g_assert_cmpuint(len, ==, fdt_totalsize(t.buf));
	g_assert_cmpint(fdt_check_full(t.buf, len), ==, 0);

	g_assert_cmpstr(str(t.buf, "/chosen", "bootargs"), ==, "console=ttyS0 quiet");
	g_assert_cmpuint(u64_at(t.buf, "/chosen", "linux,initrd-start", 0), ==, 0x48000000);
	g_assert_cmpuint(u64_at(t.buf, "/chosen", "linux,initrd-end", 0), ==, 0x48123456);
	int seed_len;
	g_assert_nonnull(fdt_getprop(t.buf, node(t.buf, "/chosen"), "rng-seed", &seed_len));
	g_assert_cmpint(seed_len, ==, FDT_RNG_SEED_SIZE);
	/* stdout-path names the UART's node. */
	g_assert_cmpstr(str(t.buf, str(t.buf, "/chosen", "stdout-path"), "compatible"), ==,
	                "ns16550a");

	g_assert_cmpuint(u64_at(t.buf, "/memory@40000000", "reg", 0), ==, 0x40000000);
	g_assert_cmpuint(u64_at(t.buf, "/memory@40000000", "reg", 1), ==, UINT64_C(512) << 20);
	g_assert_cmpstr(str(t.buf, "/psci", "compatible"), ==, "arm,psci-0.2");
	g_assert_cmpstr(str(t.buf, "/psci", "method"), ==, "hvc");
	g_assert_cmpstr(str(t.buf, "/cpus/cpu@1", "enable-method"), ==, "psci");
	g_assert_cmpuint(u32_at(t.buf, "/cpus/cpu@1", "reg", 0), ==, 1);
	g_assert_cmpint(fdt_path_offset(t.buf, "/cpus/cpu@2"), <, 0);

	/* Everything's interrupts go to the GIC; the PCI bridge's MSIs to its ITS. */
	uint32_t gic = fdt_get_phandle(t.buf, node(t.buf, "/intc@8000000"));
	uint32_t its = fdt_get_phandle(t.buf, node(t.buf, "/intc@8000000/msi-controller@8080000"));
	g_assert_cmpuint(gic, !=, 0);
	g_assert_cmpuint(its, !=, 0);
	g_assert_cmpuint(u32_at(t.buf, "/", "interrupt-parent", 0), ==, gic);
	g_assert_cmpstr(str(t.buf, "/intc@8000000", "compatible"), ==, "arm,gic-v3");
	g_assert_cmpuint(u64_at(t.buf, "/intc@8000000", "reg", 3), ==, 2 * 0x20000);
	g_assert_cmpstr(str(t.buf, "/timer", "compatible"), ==, "arm,armv8-timer");
	g_assert_cmpuint(u32_at(t.buf, "/serial@9000000", "interrupts", 1), ==, 1);
	g_assert_cmpstr(str(t.buf, "/pcie@3f000000", "compatible"), ==, "pci-host-ecam-generic");
	g_assert_cmpuint(u32_at(t.buf, "/pcie@3f000000", "msi-map", 1), ==, its);
	g_assert_cmpuint(u64_at(t.buf, "/pcie@3f000000", "reg", 0), ==, 0x3f000000);
	/* The power button: KEY_POWER on the PL061's line 3, its clock the APB one. */
	uint32_t gpio = u32_at(t.buf, "/pl061@9030000", "phandle", 0);
	g_assert_cmpstr(str(t.buf, "/pl061@9030000", "compatible"), ==, "arm,pl061");
	g_assert_cmpuint(u32_at(t.buf, "/pl061@9030000", "interrupts", 1), ==, 2);
	g_assert_cmpuint(u32_at(t.buf, "/pl061@9030000", "clocks", 0), ==,
	                 u32_at(t.buf, "/apb-pclk", "phandle", 0));
	g_assert_cmpuint(u32_at(t.buf, "/gpio-keys/poweroff", "linux,code", 0), ==, 116);
	g_assert_cmpuint(u32_at(t.buf, "/gpio-keys/poweroff", "gpios", 0), ==, gpio);
	g_assert_cmpuint(u32_at(t.buf, "/gpio-keys/poweroff", "gpios", 1), ==, 3);
	tree_free(&t);
}

/* No initrd: no initrd properties (a kernel would take 0..0 as one). */
static void test_no_initrd(void)
{
	struct tree t;
	GError *err = NULL;

	tree_init(&t, 1, false);
	g_assert_cmpuint(tree_build(&t, TREE_SIZE, &err), >, 0);
	g_assert_null(fdt_getprop(t.buf, node(t.buf, "/chosen"), "linux,initrd-start", NULL));
	tree_free(&t);
}

/* vCPU 16 is MPIDR Aff1 1, Aff0 0: its node must say so, as KVM gives it that MPIDR. */
static void test_many_cpus(void)
{
	struct tree t;
	GError *err = NULL;

	tree_init(&t, 17, false);
	g_assert_cmpuint(tree_build(&t, TREE_SIZE, &err), >, 0);
	g_assert_cmpuint(u32_at(t.buf, "/cpus/cpu@100", "reg", 0), ==, 0x100);
	g_assert_cmpuint(fdt_cpu_mpidr(15), ==, 15);
	tree_free(&t);
}

static void test_too_small(void)
{
	struct tree t;
	GError *err = NULL;

	tree_init(&t, 4, true);
	g_assert_cmpuint(tree_build(&t, 512, &err), ==, 0);
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_RUNTIME);
	g_error_free(err);
	tree_free(&t);
}

/* dtc reads it back as a whole, and finds nothing to warn about in the bindings it knows. */
static void test_dtc(void)
{
	char *dtc = g_find_program_in_path("dtc");
	struct tree t;
	GError *err = NULL;

	if (!dtc) {
		g_test_skip("dtc not installed (device-tree-compiler)");
		return;
	}
	tree_init(&t, 2, true);
	size_t len = tree_build(&t, TREE_SIZE, &err);
	g_assert_cmpuint(len, >, 0);
	char *dir = g_dir_make_tmp("husk-fdt-XXXXXX", NULL);
	char *path = g_build_filename(dir, "husk.dtb", NULL);
	g_assert_true(g_file_set_contents(path, (const char *)t.buf, (gssize)len, NULL));
	char *argv[] = {dtc, "-I", "dtb", "-O", "dts", path, NULL};
	char *out = NULL, *errout = NULL;
	int status;
	g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &errout,
	                           &status, NULL));
	g_assert_cmpint(status, ==, 0);
	g_assert_nonnull(strstr(out, "compatible = \"pci-host-ecam-generic\";"));
	g_assert_nonnull(strstr(out, "stdout-path = \"/serial@9000000\";"));
	g_assert_nonnull(strstr(out, "linux,code = <0x74>;"));
	g_test_message("dtc: %s", errout);
	g_unlink(path);
	g_rmdir(dir);
	g_free(out);
	g_free(errout);
	g_free(path);
	g_free(dir);
	g_free(dtc);
	tree_free(&t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/fdt/board", test_board);
	g_test_add_func("/fdt/no-initrd", test_no_initrd);
	g_test_add_func("/fdt/many-cpus", test_many_cpus);
	g_test_add_func("/fdt/too-small", test_too_small);
	g_test_add_func("/fdt/dtc", test_dtc);
	return g_test_run();
}
