// SPDX-License-Identifier: MIT
/* The arm64 Image loader: header checks, placement, gzip'd kernels, bad files. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <zlib.h>

#include "vmm/arm64/boot_image.h"
#include "vmm/error.h"

#define MiB         (UINT64_C(1) << 20)
#define IMAGE_LEN   (64 * 1024)
#define TEXT_OFFSET UINT64_C(0x80000)
#define RAM         (64 * MiB)

struct fixture {
	char *dir, *kernel, *initrd;
	uint8_t image[IMAGE_LEN];
	struct guest_memory gm;
};

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The header as booting.rst lays it out, and a payload to find again in guest memory. */
static void make_image(struct fixture *f, uint64_t image_size)
{
	memset(f->image, 0, sizeof(f->image));
	put64(f->image + 8, TEXT_OFFSET);
	put64(f->image + 16, image_size);
	put64(f->image + 24, 0x2); /* 4 KiB pages, little-endian */
	memcpy(f->image + 56, "ARM\x64", 4);
	for (size_t i = 64; i < IMAGE_LEN; i++)
		f->image[i] = (uint8_t)(i * 13);
	g_assert_true(g_file_set_contents(f->kernel, (const char *)f->image, IMAGE_LEN, NULL));
}

static void setup(struct fixture *f, gconstpointer data)
{
	f->dir = g_dir_make_tmp("husk-arm64-XXXXXX", NULL);
	f->kernel = g_build_filename(f->dir, "Image", NULL);
	f->initrd = g_build_filename(f->dir, "initrd", NULL);
	make_image(f, 2 * MiB);
	g_assert_true(g_file_set_contents(f->initrd, "initrd-bytes", 12, NULL));
	g_assert_true(guest_memory_alloc(&f->gm, RAM));
}

static void teardown(struct fixture *f, gconstpointer data)
{
	guest_memory_free(&f->gm);
	g_unlink(f->kernel);
	g_unlink(f->initrd);
	g_rmdir(f->dir);
	g_free(f->kernel);
	g_free(f->initrd);
	g_free(f->dir);
}

/* RAM starts where this host's guest memory does (gm's first region). */
static uint64_t ram_start(struct fixture *f)
{
	return f->gm.regions[0].gpa;
}

static void check_loaded(struct fixture *f, const struct arm64_boot *b)
{
	uint64_t base = (ram_start(f) + 2 * MiB - 1) & ~(2 * MiB - 1);

	g_assert_cmpuint(b->entry, ==, base + TEXT_OFFSET);
	g_assert_cmpmem(gm_ptr(&f->gm, b->entry, IMAGE_LEN), IMAGE_LEN, f->image, IMAGE_LEN);
	g_assert_cmpuint(b->dtb_addr, ==, ram_start(f) + RAM - ARM64_DTB_MAX);
	g_assert_cmpuint(b->initrd_size, ==, 12);
	g_assert_cmpuint(b->initrd_addr % 4096, ==, 0);
	g_assert_cmpuint(b->initrd_addr, >=, b->entry + 2 * MiB); /* past image_size */
	g_assert_cmpuint(b->initrd_addr + b->initrd_size, <=, b->dtb_addr);
	g_assert_cmpmem(gm_ptr(&f->gm, b->initrd_addr, 12), 12, "initrd-bytes", 12);
}

static void test_load(struct fixture *f, gconstpointer data)
{
	struct arm64_boot b;
	GError *err = NULL;

	g_assert_true(arm64_load(&f->gm, ram_start(f), f->kernel, f->initrd, &b, &err));
	g_assert_no_error(err);
	check_loaded(f, &b);
}

/* What Debian ships as vmlinuz: the same Image, gzip'd. */
static void test_gzip(struct fixture *f, gconstpointer data)
{
	struct arm64_boot b;
	GError *err = NULL;
	gzFile gz = gzopen(f->kernel, "wb9");

	g_assert_nonnull(gz);
	g_assert_cmpint(gzwrite(gz, f->image, IMAGE_LEN), ==, IMAGE_LEN);
	g_assert_cmpint(gzclose(gz), ==, Z_OK);
	g_assert_true(arm64_load(&f->gm, ram_start(f), f->kernel, f->initrd, &b, &err));
	g_assert_no_error(err);
	check_loaded(f, &b);
}

static void expect_usage_error(struct fixture *f, const char *initrd, const char *needle)
{
	struct arm64_boot b;
	GError *err = NULL;

	g_assert_false(arm64_load(&f->gm, ram_start(f), f->kernel, initrd, &b, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_nonnull(strstr(err->message, needle));
	g_error_free(err);
}

static void test_bad_magic(struct fixture *f, gconstpointer data)
{
	f->image[56] = 'X';
	g_assert_true(g_file_set_contents(f->kernel, (const char *)f->image, IMAGE_LEN, NULL));
	expect_usage_error(f, NULL, "not an arm64 Linux Image");
}

static void test_big_endian(struct fixture *f, gconstpointer data)
{
	f->image[24] |= 1;
	g_assert_true(g_file_set_contents(f->kernel, (const char *)f->image, IMAGE_LEN, NULL));
	expect_usage_error(f, NULL, "big-endian");
}

static void test_too_big(struct fixture *f, gconstpointer data)
{
	make_image(f, RAM);
	expect_usage_error(f, NULL, "does not fit");
}

static void test_truncated_gzip(struct fixture *f, gconstpointer data)
{
	gzFile gz = gzopen(f->kernel, "wb9");
	gchar *all;
	gsize len;

	gzwrite(gz, f->image, IMAGE_LEN);
	gzclose(gz);
	g_assert_true(g_file_get_contents(f->kernel, &all, &len, NULL));
	g_assert_true(g_file_set_contents(f->kernel, all, (gssize)len / 2, NULL));
	g_free(all);
	expect_usage_error(f, NULL, "cannot decompress");
}

static void test_short_file(struct fixture *f, gconstpointer data)
{
	g_assert_true(g_file_set_contents(f->kernel, "ARM", 3, NULL));
	expect_usage_error(f, NULL, "not an arm64 Linux Image");
}

static void test_missing_initrd(struct fixture *f, gconstpointer data)
{
	char *missing = g_build_filename(f->dir, "none", NULL);

	expect_usage_error(f, missing, "--initrd");
	g_free(missing);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/arm64-image/" name, struct fixture, NULL, setup, fn, teardown)
	ADD("load", test_load);
	ADD("gzip", test_gzip);
	ADD("bad-magic", test_bad_magic);
	ADD("big-endian", test_big_endian);
	ADD("too-big", test_too_big);
	ADD("truncated-gzip", test_truncated_gzip);
	ADD("short-file", test_short_file);
	ADD("missing-initrd", test_missing_initrd);
	return g_test_run();
}
