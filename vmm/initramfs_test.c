// SPDX-License-Identifier: MIT
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vmm/error.h"
#include "vmm/initramfs.h"

static unsigned long field(const uint8_t *hdr, int i)
{
	char hex[9] = {0};

	memcpy(hex, hdr + 6 + 8 * i, 8);
	return strtoul(hex, NULL, 16);
}

/* Walks the archive as the kernel does and checks each entry against 'want'. */
static void test_cpio(void)
{
	struct cpio c;
	static const struct {
		const char *name;
		unsigned long mode, size, rdevmajor, rdevminor;
	} want[] = {
	    {"dev", S_IFDIR | 0755, 0, 0, 0},
	    {"dev/console", S_IFCHR | 0600, 0, 5, 1},
	    {"init", S_IFREG | 0755, 5, 0, 0},
	    {"TRAILER!!!", 0, 0, 0, 0},
	};

	cpio_init(&c);
	cpio_add_dir(&c, "dev", 0755);
	cpio_add_char_dev(&c, "dev/console", 0600, 5, 1);
	cpio_add_file(&c, "init", 0755, "hello", 5);
	GBytes *b = cpio_finish(&c);
	gsize len;
	const uint8_t *p = g_bytes_get_data(b, &len);
	g_assert_cmpuint(len % 512, ==, 0);
	size_t off = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
		g_assert_cmpuint(off + 110, <=, len);
		g_assert_true(memcmp(p + off, "070701", 6) == 0);
		unsigned long namesize = field(p + off, 11), size = field(p + off, 6);
		g_assert_cmpstr((const char *)p + off + 110, ==, want[i].name);
		g_assert_cmpuint(namesize, ==, strlen(want[i].name) + 1);
		g_assert_cmphex(field(p + off, 1), ==, want[i].mode);
		g_assert_cmpuint(size, ==, want[i].size);
		g_assert_cmpuint(field(p + off, 9), ==, want[i].rdevmajor);
		g_assert_cmpuint(field(p + off, 10), ==, want[i].rdevminor);
		off += (110 + namesize + 3) & ~3ul;
		if (size)
			g_assert_true(memcmp(p + off, "hello", 5) == 0);
		off += (size + 3) & ~3ul;
	}
	g_bytes_unref(b);
}

static char *make_moddir(void)
{
	char *dir = g_dir_make_tmp("husk-mods-XXXXXX", NULL);
	char *dep = g_build_filename(dir, "modules.dep", NULL);
	char *builtin = g_build_filename(dir, "modules.builtin", NULL);

	g_assert_true(g_file_set_contents(dep,
	                                  "kernel/a.ko: kernel/b.ko kernel/c.ko\n"
	                                  "kernel/b.ko: kernel/c.ko\n"
	                                  "kernel/c.ko:\n"
	                                  "kernel/fs/virtio-fs.ko.xz: kernel/c.ko\n",
	                                  -1, NULL));
	g_assert_true(g_file_set_contents(builtin, "kernel/fs/ext4/ext4.ko\n", -1, NULL));
	g_free(dep);
	g_free(builtin);
	return dir;
}

static void remove_moddir(char *dir)
{
	char *dep = g_build_filename(dir, "modules.dep", NULL);
	char *builtin = g_build_filename(dir, "modules.builtin", NULL);

	g_unlink(dep);
	g_unlink(builtin);
	g_rmdir(dir);
	g_free(dep);
	g_free(builtin);
	g_free(dir);
}

static char *joined(GPtrArray *a)
{
	g_ptr_array_add(a, NULL);
	char *s = g_strjoinv(" ", (char **)a->pdata);
	g_ptr_array_remove_index(a, a->len - 1);
	return s;
}

static void test_modules_order(void)
{
	char *dir = make_moddir();
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	const char *names[] = {"virtio_fs", "a", "ext4", NULL};

	g_assert_true(modules_resolve(dir, names, true, out, NULL));
	char *s = joined(out);
	/* Each module after what it needs, each once; ext4 is built in. */
	g_assert_cmpstr(s, ==, "kernel/c.ko kernel/fs/virtio-fs.ko.xz kernel/b.ko kernel/a.ko");
	g_free(s);
	g_ptr_array_unref(out);
	remove_moddir(dir);
}

static void test_modules_missing(void)
{
	char *dir = make_moddir();
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	const char *names[] = {"nosuch", NULL};
	GError *err = NULL;

	g_assert_true(modules_resolve(dir, names, false, out, NULL));
	g_assert_cmpuint(out->len, ==, 0);
	g_assert_false(modules_resolve(dir, names, true, out, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_nonnull(strstr(err->message, "no nosuch module"));
	g_clear_error(&err);
	g_assert_false(modules_resolve("/nonexistent", names, true, out, &err));
	g_assert_nonnull(strstr(err->message, "/nonexistent/modules.dep"));
	g_clear_error(&err);
	g_ptr_array_unref(out);
	remove_moddir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/initramfs/cpio", test_cpio);
	g_test_add_func("/initramfs/modules-order", test_modules_order);
	g_test_add_func("/initramfs/modules-missing", test_modules_missing);
	return g_test_run();
}
