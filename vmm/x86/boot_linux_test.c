// SPDX-License-Identifier: MIT
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "vmm/error.h"
#include "vmm/layout.h"
#include "vmm/x86/boot_linux.h"

#define SETUP_SECTS  4
#define PAYLOAD_SIZE (64 * 1024)
#define IMAGE_SIZE   ((SETUP_SECTS + 1) * 512 + PAYLOAD_SIZE)

struct fixture {
	uint8_t image[IMAGE_SIZE];
	struct setup_header *hdr;
	char *dir;
	char *kernel_path;
	char *initrd_path;
	struct guest_memory gm;
};

/* A minimal but well-formed bzImage: the fields a loader reads, and a payload. */
static void make_image(struct fixture *f)
{
	memset(f->image, 0, sizeof(f->image));
	f->hdr = (struct setup_header *)(f->image + 0x1f1);
	f->image[0x200] = 0xeb; /* jmp over the header: its length */
	f->image[0x201] = (uint8_t)(0x1f1 + sizeof(struct setup_header) - 0x202);
	f->hdr->setup_sects = SETUP_SECTS;
	f->hdr->boot_flag = 0xaa55;
	f->hdr->header = 0x53726448;
	f->hdr->version = 0x020f;
	f->hdr->loadflags = LOADED_HIGH;
	f->hdr->xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
	f->hdr->initrd_addr_max = 0x7fffffff;
	f->hdr->cmdline_size = 2047;
	f->hdr->init_size = 16 * MiB;
	for (size_t i = 0; i < PAYLOAD_SIZE; i++)
		f->image[(SETUP_SECTS + 1) * 512 + i] = (uint8_t)(i * 7);
}

static void write_files(struct fixture *f, size_t initrd_size)
{
	g_assert_true(
	    g_file_set_contents(f->kernel_path, (const char *)f->image, sizeof(f->image), NULL));
	char *initrd = g_malloc(initrd_size);
	memset(initrd, 0x5a, initrd_size);
	g_assert_true(g_file_set_contents(f->initrd_path, initrd, (gssize)initrd_size, NULL));
	g_free(initrd);
}

static void setup(struct fixture *f, gconstpointer data)
{
	f->dir = g_dir_make_tmp("husk-boot-XXXXXX", NULL);
	f->kernel_path = g_build_filename(f->dir, "vmlinuz", NULL);
	f->initrd_path = g_build_filename(f->dir, "initrd", NULL);
	make_image(f);
	write_files(f, 100000);
	g_assert_true(guest_memory_alloc(&f->gm, 128 * MiB));
}

static void teardown(struct fixture *f, gconstpointer data)
{
	g_unlink(f->kernel_path);
	g_unlink(f->initrd_path);
	g_rmdir(f->dir);
	g_free(f->kernel_path);
	g_free(f->initrd_path);
	g_free(f->dir);
	guest_memory_free(&f->gm);
}

static bool load(struct fixture *f, const char *cmdline, struct linux_boot *boot, GError **err)
{
	struct linux_boot_args args = {
	    .kernel_path = f->kernel_path,
	    .initrd_path = f->initrd_path,
	    .cmdline = cmdline,
	    .rsdp = 0xe0000,
	};

	write_files(f, 100000);
	return linux_load(&f->gm, &args, boot, err);
}

static void test_zero_page(struct fixture *f, gconstpointer data)
{
	struct linux_boot boot;
	GError *err = NULL;

	g_assert_true(load(f, "console=ttyS0 quiet", &boot, &err));
	g_assert_no_error(err);
	g_assert_cmpuint(boot.entry, ==, LAYOUT_KERNEL + 0x200);
	g_assert_cmpuint(boot.zero_page, ==, LAYOUT_ZERO_PAGE);

	struct boot_params *bp = gm_ptr(&f->gm, LAYOUT_ZERO_PAGE, sizeof(*bp));
	g_assert_cmpuint(bp->hdr.boot_flag, ==, 0xaa55);
	g_assert_cmpuint(bp->hdr.header, ==, 0x53726448);
	g_assert_cmpuint(bp->hdr.type_of_loader, ==, 0xff);
	g_assert_cmpuint(bp->hdr.vid_mode, ==, 0xffff);
	g_assert_cmpuint(bp->acpi_rsdp_addr, ==, 0xe0000);
	g_assert_cmpstr(gm_ptr(&f->gm, bp->hdr.cmd_line_ptr, 20), ==, "console=ttyS0 quiet");
	g_assert_cmpuint(bp->e820_entries, ==, 5);
	g_assert_cmpmem(gm_ptr(&f->gm, LAYOUT_KERNEL, PAYLOAD_SIZE), PAYLOAD_SIZE,
	                f->image + (SETUP_SECTS + 1) * 512, PAYLOAD_SIZE);
}

static void test_initrd_placement(struct fixture *f, gconstpointer data)
{
	struct linux_boot boot;
	GError *err = NULL;

	g_assert_true(load(f, "", &boot, &err));
	struct boot_params *bp = gm_ptr(&f->gm, LAYOUT_ZERO_PAGE, sizeof(*bp));
	g_assert_cmpuint(bp->hdr.ramdisk_image, ==, boot.initrd_addr);
	g_assert_cmpuint(bp->hdr.ramdisk_size, ==, 100000);
	g_assert_cmpuint(boot.initrd_addr % 4096, ==, 0);
	g_assert_cmpuint(boot.initrd_addr + 100000, <=, 128 * MiB);
	g_assert_cmpuint(boot.initrd_addr, >=, LAYOUT_KERNEL + 16 * MiB);
	g_assert_cmpuint(*(uint8_t *)gm_ptr(&f->gm, boot.initrd_addr + 99999, 1), ==, 0x5a);
}

static void test_initrd_respects_addr_max(struct fixture *f, gconstpointer data)
{
	struct linux_boot boot;

	f->hdr->initrd_addr_max = 64 * MiB - 1;
	g_assert_true(load(f, "", &boot, NULL));
	g_assert_cmpuint(boot.initrd_addr + boot.initrd_size, <=, 64 * MiB);
}

static void test_initrd_too_big(struct fixture *f, gconstpointer data)
{
	struct linux_boot_args args = {.kernel_path = f->kernel_path,
	                               .initrd_path = f->initrd_path};
	struct linux_boot boot;
	GError *err = NULL;

	write_files(f, 120 * MiB);
	g_assert_false(linux_load(&f->gm, &args, &boot, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_nonnull(strstr(err->message, "more --memory"));
	g_error_free(err);
}

static void test_cmdline_too_long(struct fixture *f, gconstpointer data)
{
	char *longline = g_strnfill(2048, 'x');
	struct linux_boot boot;
	GError *err = NULL;

	g_assert_false(load(f, longline, &boot, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_nonnull(strstr(err->message, "--cmdline"));
	g_error_free(err);
	g_free(longline);
}

static void expect_parse_error(struct fixture *f, const char *needle)
{
	struct bzimage bz;
	GError *err = NULL;

	g_assert_false(bzimage_parse(f->image, sizeof(f->image), sizeof(f->image), "k", &bz, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	if (!strstr(err->message, needle))
		g_error("message \"%s\" lacks \"%s\"", err->message, needle);
	g_assert_null(strchr(err->message, '\n'));
	g_error_free(err);
}

static void test_rejects_bad_images(struct fixture *f, gconstpointer data)
{
	struct bzimage bz;

	g_assert_true(bzimage_parse(f->image, sizeof(f->image), sizeof(f->image), "k", &bz, NULL));
	g_assert_cmpuint(bz.payload_offset, ==, (SETUP_SECTS + 1) * 512);
	g_assert_cmpuint(bz.payload_size, ==, PAYLOAD_SIZE);

	f->hdr->boot_flag = 0;
	expect_parse_error(f, "no boot signature");
	make_image(f);
	f->hdr->version = 0x020a;
	expect_parse_error(f, "2.10 is too old");
	make_image(f);
	f->hdr->xloadflags = 0;
	expect_parse_error(f, "32-bit");
	make_image(f);
	f->hdr->loadflags = 0;
	expect_parse_error(f, "zImage");
	make_image(f);
	f->hdr->setup_sects = 200; /* claims more setup code than the file has */
	expect_parse_error(f, "truncated");
	memset(f->image, 'a', sizeof(f->image)); /* a text file */
	expect_parse_error(f, "not a Linux bzImage");
	memcpy(f->image, "\177ELF", 4);
	expect_parse_error(f, "ELF vmlinux");
}

static void test_rejects_short_file(struct fixture *f, gconstpointer data)
{
	struct bzimage bz;
	GError *err = NULL;

	g_assert_false(bzimage_parse(f->image, 100, 100, "k", &bz, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_error_free(err);
}

static void test_missing_files(struct fixture *f, gconstpointer data)
{
	struct linux_boot_args args = {.kernel_path = "/nonexistent/vmlinuz"};
	GError *err = NULL;

	g_assert_false(linux_check_files(&args, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_cmpstr(err->message, ==,
	                "--kernel: /nonexistent/vmlinuz: No such file or directory");
	g_clear_error(&err);
	args.kernel_path = f->dir;
	g_assert_false(linux_check_files(&args, &err));
	g_assert_nonnull(strstr(err->message, "not a regular file"));
	g_clear_error(&err);
	args.kernel_path = f->kernel_path;
	args.initrd_path = "/nonexistent/initrd";
	g_assert_false(linux_check_files(&args, &err));
	g_assert_nonnull(strstr(err->message, "--initrd"));
	g_clear_error(&err);
}

static void test_memory_too_small(struct fixture *f, gconstpointer data)
{
	struct linux_boot boot;
	GError *err = NULL;

	f->hdr->init_size = 200 * MiB;
	g_assert_false(load(f, "", &boot, &err));
	g_assert_nonnull(strstr(err->message, "--memory"));
	g_error_free(err);
}

#define ADD(name, fn) g_test_add("/boot-linux/" name, struct fixture, NULL, setup, fn, teardown)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("zero-page", test_zero_page);
	ADD("initrd-placement", test_initrd_placement);
	ADD("initrd-respects-addr-max", test_initrd_respects_addr_max);
	ADD("initrd-too-big", test_initrd_too_big);
	ADD("cmdline-too-long", test_cmdline_too_long);
	ADD("rejects-bad-images", test_rejects_bad_images);
	ADD("rejects-short-file", test_rejects_short_file);
	ADD("missing-files", test_missing_files);
	ADD("memory-too-small", test_memory_too_small);
	return g_test_run();
}
