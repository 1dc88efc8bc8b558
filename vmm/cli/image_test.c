// SPDX-License-Identifier: MIT
/* husk image: what it makes, qemu-img reads back cleanly. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "devices/block/block.h"
#include "vmm/cli/image.h"

static char *dir;

static bool need_qemu_img(void)
{
	char *img = g_find_program_in_path("qemu-img");
	bool ok = img != NULL;

	if (!ok)
		g_test_skip("qemu-img is missing (Debian: qemu-utils)");
	g_free(img);
	return ok;
}

static int sh(const char *cmd)
{
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	int status;

	g_assert_true(g_spawn_sync(dir, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
	                           NULL, NULL, &status, NULL));
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int husk_image(const char *args)
{
	char **argv;
	g_assert_true(g_shell_parse_argv(args, NULL, &argv, NULL));
	char *cwd = g_get_current_dir();
	/* Option parsing takes what it reads out of the array it is given: give it a copy. */
	char **copy = g_new(char *, g_strv_length(argv) + 1);
	memcpy(copy, argv, (g_strv_length(argv) + 1) * sizeof(char *));
	g_assert_cmpint(g_chdir(dir), ==, 0);
	int status = husk_image_main((int)g_strv_length(argv), copy);
	g_free(copy);
	g_assert_cmpint(g_chdir(cwd), ==, 0);
	g_free(cwd);
	g_strfreev(argv);
	return status;
}

static void test_create(void)
{
	if (!need_qemu_img())
		return;
	g_assert_cmpint(husk_image("image create --size 20G big.qcow2"), ==, 0);
	g_assert_cmpint(sh("qemu-img check -q big.qcow2"), ==, 0);
	g_assert_cmpint(sh("qemu-img info --output=json big.qcow2 | grep -q '\"virtual-size\": "
	                   "21474836480'"),
	                ==, 0);
	g_assert_cmpint(husk_image("image create --size 8M --format raw base.raw"), ==, 0);
	g_assert_cmpint(sh("qemu-io -f raw -c 'write -P 9 1M 1M' base.raw"), ==, 0);
	g_assert_cmpint(husk_image("image create --backing base.raw top.qcow2"), ==, 0);
	g_assert_cmpint(sh("qemu-img check -q top.qcow2 && qemu-img compare -q top.qcow2 "
	                   "base.raw && qemu-img info top.qcow2 | grep -q 'backing file format: "
	                   "raw'"),
	                ==, 0);
	/* An image in use is neither emptied nor replaced. */
	char *top = g_build_filename(dir, "top.qcow2", NULL);
	struct block_open_options o = {.format = "qcow2"};
	struct block_backend *b = block_open(top, &o, NULL);
	g_assert_nonnull(b);
	g_assert_cmpint(husk_image("image create --size 1M top.qcow2"), ==, 2);
	g_assert_cmpint(block_pread(b, (uint8_t[512]){0}, 512, 1 << 20), ==, 0);
	block_close(b);
	g_assert_cmpint(sh("qemu-img compare -q top.qcow2 base.raw"), ==, 0);
	g_free(top);
	g_assert_cmpint(husk_image("image create big.qcow2"), ==, 2);
	g_assert_cmpint(husk_image("image create --size lots x.qcow2"), ==, 2);
	g_assert_cmpint(husk_image("image make x.qcow2"), ==, 2);
}

static void test_convert(void)
{
	if (!need_qemu_img())
		return;
	g_assert_cmpint(sh("head -c 3145728 /dev/urandom > a.raw && truncate -s 5M a.raw && "
	                   "qemu-img create -q -f qcow2 -b a.raw -F raw over.qcow2 && "
	                   "qemu-io -c 'write -P 3 4M 64k' -c 'write -z 0 64k' over.qcow2"),
	                ==, 0);
	g_assert_cmpint(husk_image("image convert -O qcow2 over.qcow2 flat.qcow2"), ==, 0);
	g_assert_cmpint(husk_image("image convert flat.qcow2 flat.raw"), ==, 0);
	g_assert_cmpint(sh("qemu-img check -q flat.qcow2 && qemu-img compare -q over.qcow2 "
	                   "flat.qcow2 && qemu-img compare -q -F raw over.qcow2 flat.raw && "
	                   "qemu-img info flat.qcow2 | grep -vq 'backing file'"),
	                ==, 0);
}

static void test_info_json(void)
{
	if (!need_qemu_img())
		return;
	g_assert_cmpint(sh("qemu-img create -q -f raw b.raw 1M && qemu-img create -q -f qcow2 "
	                   "-o cluster_size=4096 -b b.raw -F raw i.qcow2"),
	                ==, 0);
	if (g_test_subprocess()) {
		exit(husk_image("image info --format-output json i.qcow2"));
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
	g_test_trap_assert_stdout("{\"filename\": \"i.qcow2\", \"format\": \"qcow2\", "
	                          "\"virtual-size\": 1048576, \"actual-size\": *, "
	                          "\"cluster-size\": 4096, \"dirty-flag\": false, "
	                          "\"backing-filename\": \"b.raw\", \"backing-filename-format\": "
	                          "\"raw\", \"backing-image\": {\"filename\": \"b.raw\", "
	                          "\"format\": \"raw\", \"virtual-size\": 1048576}}\n");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* One folder for the run: the info test's subprocess finds its files there. */
	const char *given = g_getenv("HUSK_IMAGE_TEST_DIR");
	dir = given ? g_strdup(given) : g_dir_make_tmp("husk-image-XXXXXX", NULL);
	g_setenv("HUSK_IMAGE_TEST_DIR", dir, true);
	g_test_add_func("/image/create", test_create);
	g_test_add_func("/image/convert", test_convert);
	g_test_add_func("/image/info-json", test_info_json);
	int status = g_test_run();
	if (!given) {
		char *cmd = g_strdup_printf("rm -rf '%s'", dir);
		g_assert_cmpint(system(cmd), ==, 0);
		g_free(cmd);
	}
	g_free(dir);
	return status;
}
