// SPDX-License-Identifier: MIT
/*
 * The mount table on a real machine (made, never run: a stub bzImage is
 * its kernel), its ops answered on a thread under the I/O thread's
 * system-call list, as an instance's control socket answers them: plugs
 * through the machine's hot-plug thread, unplugs, slots reused, the
 * store written. Skipped where this host has no usable /dev/kvm.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/config.h"
#include "vmm/error.h"
#include "vmm/instance/mounts.h"
#include "vmm/instance/protocol.h"
#include "vmm/process.h"
#include "vmm/seccomp_threads.h"
#include "vmm/x86/boot_linux.h"

#define SETUP_SECTS 4
#define IMAGE_SIZE  ((SETUP_SECTS + 1) * 512 + 4096)

struct fixture {
	char *dir, *store;
	struct machine *m;
	struct mount_table *t;
};

/* The fields the loader reads, and a page of payload: never run. */
static bool write_stub_kernel(const char *path)
{
	static uint8_t image[IMAGE_SIZE];
	struct setup_header *hdr = (struct setup_header *)(image + 0x1f1);

	image[0x200] = 0xeb;
	image[0x201] = (uint8_t)(0x1f1 + sizeof(struct setup_header) - 0x202);
	hdr->setup_sects = SETUP_SECTS;
	hdr->boot_flag = 0xaa55;
	hdr->header = 0x53726448;
	hdr->version = 0x020f;
	hdr->loadflags = LOADED_HIGH;
	hdr->xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
	hdr->initrd_addr_max = 0x7fffffff;
	hdr->cmdline_size = 2047;
	hdr->init_size = 16 * 1024 * 1024;
	return g_file_set_contents(path, (const char *)image, sizeof(image), NULL);
}

/* One op, as the control socket would answer it: the reply, or NULL and the error. */
static JsonObject *op(struct fixture *f, const char *name, const char *host, const char *guest,
                      GError **err)
{
	JsonObject *req = json_object_new(), *reply = json_object_new();
	bool handled;

	if (host)
		json_object_set_string_member(req, "host", host);
	if (guest)
		json_object_set_string_member(req, "guest", guest);
	bool ok = mount_table_answer(f->t, name, req, reply, &handled, err);
	g_assert_true(handled);
	json_object_unref(req);
	if (!ok)
		g_clear_pointer(&reply, json_object_unref);
	return reply;
}

static gint64 slot_of(JsonObject *reply)
{
	gint64 slot = json_object_get_int_member(reply, "slot");
	json_object_unref(reply);
	return slot;
}

static gpointer io_thread_ops(gpointer data)
{
	struct fixture *f = data;
	GError *err = NULL;

	if (seccomp_armed())
		g_assert_true(seccomp_thread_enter(SECCOMP_THREAD_IO, &err));
	gint64 a = slot_of(op(f, "mount", f->dir, "/mnt/a", &err));
	gint64 b = slot_of(op(f, "mount", f->dir, "/mnt/b", &err));
	g_assert_no_error(err);
	g_assert_cmpint(a, >, 0);
	g_assert_cmpint(b, >, a);
	g_assert_null(op(f, "mount", f->dir, "/mnt/a", &err));
	g_assert_cmpstr(err->message, ==, "mount: something is already mounted at /mnt/a");
	g_clear_error(&err);
	g_assert_null(op(f, "mount", "/nonexistent/folder", "/mnt/c", &err));
	g_assert_cmpint(err->code, ==, HUSK_EXIT_USAGE);
	g_clear_error(&err);
	g_assert_null(op(f, "mount", f->dir, "/mnt/../c", &err));
	g_clear_error(&err);
	/* Unplugged, forgotten; its slot is the next plug's. */
	JsonObject *r = op(f, "umount", NULL, "/mnt/a", &err);
	g_assert_no_error(err);
	json_object_unref(r);
	g_assert_null(op(f, "umount", NULL, "/mnt/a", &err));
	g_assert_cmpstr(err->message, ==, "umount: nothing is mounted at /mnt/a");
	g_clear_error(&err);
	g_assert_cmpint(slot_of(op(f, "mount", f->dir, "/mnt/c", &err)), ==, a);
	r = op(f, "mounts", NULL, NULL, &err);
	JsonArray *list = json_object_get_array_member(r, "mounts");
	g_assert_cmpuint(json_array_get_length(list), ==, 2);
	json_object_unref(r);
	return NULL;
}

/* In a subprocess: the filters, once on, cannot be taken off. */
static void ops_in_subprocess(const char *skip_note)
{
	struct fixture f = {0};
	struct vm_config cfg;
	GError *err = NULL;

	f.dir = g_dir_make_tmp("husk-mounts-XXXXXX", NULL);
	f.store = g_build_filename(f.dir, "mounts.json", NULL);
	config_init(&cfg);
	cfg.kernel = g_build_filename(f.dir, "vmlinuz", NULL);
	cfg.cmdline = g_strdup("console=ttyS0");
	cfg.allow_pvm = true;
	cfg.memory = 64 * 1024 * 1024;
	g_assert_true(write_stub_kernel(cfg.kernel));
	f.m = process_create_machine(
	    &cfg, SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES | SECCOMP_IO_WRITE_FILES, &err);
	if (!f.m) {
		g_assert_true(g_file_set_contents(skip_note, err->message, -1, NULL));
		g_clear_error(&err);
	} else {
		struct fuse_id_map none = {0};
		f.t = mount_table_new(f.m, f.store, "/nonexistent.sock", none, none);
		g_thread_join(g_thread_new("io", io_thread_ops, &f));
		mount_table_free(f.t);
		machine_destroy(f.m);
		GPtrArray *kept = mounts_load(f.store, &err);
		g_assert_no_error(err);
		g_assert_cmpuint(kept->len, ==, 2);
		g_assert_cmpstr(((struct mount_spec *)kept->pdata[0])->guest, ==, "/mnt/b");
		g_assert_cmpstr(((struct mount_spec *)kept->pdata[1])->guest, ==, "/mnt/c");
		g_ptr_array_unref(kept);
	}
	g_unlink(f.store);
	g_unlink(cfg.kernel);
	g_rmdir(f.dir);
	config_clear(&cfg);
	g_free(f.store);
	g_free(f.dir);
}

static void test_ops(void)
{
	char *dir = g_dir_make_tmp("husk-mounts-skip-XXXXXX", NULL);
	char *note = g_build_filename(dir, "skip", NULL), *why = NULL;

	if (g_test_subprocess()) {
		ops_in_subprocess(g_getenv("HUSK_TEST_SKIP_NOTE"));
		/* Under the filters, LeakSanitizer's exit-time check cannot stop the threads. */
		_exit(0);
	}
	g_setenv("HUSK_TEST_SKIP_NOTE", note, TRUE);
	g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
	g_test_trap_assert_passed();
	if (g_file_get_contents(note, &why, NULL, NULL))
		g_test_skip_printf("no machine here: %s", why);
	g_unlink(note);
	g_rmdir(dir);
	g_free(why);
	g_free(note);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mounts/machine-ops", test_ops);
	return g_test_run();
}
