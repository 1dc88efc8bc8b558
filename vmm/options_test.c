// SPDX-License-Identifier: MIT
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "devices/virtio/fs.h"
#include "vmm/error.h"
#include "vmm/options.h"
#include "vmm/size.h"

static bool parse(const char *line, struct vm_config *cfg, GError **err)
{
	char **argv = g_strsplit(line, " ", -1);
	bool ok = options_parse_run((int)g_strv_length(argv), argv, cfg, err);

	g_strfreev(argv);
	return ok;
}

static void expect_error(const char *line, const char *message)
{
	struct vm_config cfg;
	GError *err = NULL;

	g_assert_false(parse(line, &cfg, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_cmpstr(err->message, ==, message);
	g_error_free(err);
}

static void test_defaults(void)
{
	struct vm_config cfg;

	g_assert_true(parse("run --kernel vmlinuz", &cfg, NULL));
	g_assert_cmpstr(cfg.kernel, ==, "vmlinuz");
	g_assert_null(cfg.initrd);
	g_assert_cmpstr(cfg.cmdline, ==, "console=ttyS0");
	g_assert_cmpuint(cfg.memory, ==, 512 * MiB);
	g_assert_cmpuint(cfg.cpus, ==, 1);
	g_assert_cmpuint(cfg.poll_us, ==, VM_DEFAULT_POLL_US);
	g_assert_cmpint(cfg.halt_poll_us, ==, -1); /* the host's */
	g_assert_cmpint(cfg.on_reboot, ==, ON_REBOOT_EXIT);
	g_assert_false(cfg.allow_pvm);
	g_assert_false(cfg.no_seccomp);
	/* The console is the terminal's, both ways; no time limit. */
	g_assert_cmpint(cfg.console_out, ==, STDOUT_FILENO);
	g_assert_cmpint(cfg.console_in, ==, STDIN_FILENO);
	g_assert_cmpuint(cfg.timeout_s, ==, 0);
	g_assert_cmpuint(cfg.disks->len + cfg.nets->len + cfg.shares->len, ==, 0);
	g_assert_cmpint(cfg.gpu, ==, GPU_NONE);
	g_assert_null(cfg.screenshot_on_exit);
	config_clear(&cfg);
}

static void test_display_options(void)
{
	struct vm_config cfg;

	g_assert_true(parse("run --kernel k --gpu 2d --screenshot-on-exit shot.png", &cfg, NULL));
	g_assert_cmpint(cfg.gpu, ==, GPU_2D);
	g_assert_cmpstr(cfg.screenshot_on_exit, ==, "shot.png");
	config_clear(&cfg);
	expect_error("run --kernel k --gpu 3d", "--gpu: \"3d\" is not one of 2d, virgl, none");
	expect_error("run --kernel k --screenshot-on-exit s.png",
	             "--screenshot-on-exit needs a display (--gpu 2d or virgl)");
	expect_error("run --kernel k --gpu 2d --screenshot-on-exit=",
	             "--screenshot-on-exit: the path is empty");
}

static void test_all_options(void)
{
	struct vm_config cfg;
	char *argv[] = {
	    "run",       "-k",       "bz",           "--initrd=rd",     "--cmdline", "a b c",
	    "--memory",  "2G",       "--cpus=4",     "--on-reboot",     "restart",   "--allow-pvm",
	    "--timings", "--poll=0", "--no-seccomp", "--halt-poll=250", NULL};

	g_assert_true(options_parse_run(G_N_ELEMENTS(argv) - 1, argv, &cfg, NULL));
	g_assert_cmpstr(cfg.kernel, ==, "bz");
	g_assert_cmpstr(cfg.initrd, ==, "rd");
	g_assert_cmpstr(cfg.cmdline, ==, "a b c");
	g_assert_cmpuint(cfg.memory, ==, 2 * GiB);
	g_assert_cmpuint(cfg.cpus, ==, 4);
	g_assert_cmpint(cfg.on_reboot, ==, ON_REBOOT_RESTART);
	g_assert_true(cfg.allow_pvm);
	g_assert_true(cfg.timings);
	g_assert_cmpuint(cfg.poll_us, ==, 0);
	g_assert_true(cfg.no_seccomp);
	g_assert_cmpint(cfg.halt_poll_us, ==, 250);
	config_clear(&cfg);
}

static void test_share_options(void)
{
	struct vm_config cfg;

	g_assert_true(parse("run --kernel k --share /srv/a:a --share /srv/b:b,ro,submounts,noxattr",
	                    &cfg, NULL));
	g_assert_cmpuint(cfg.shares->len, ==, 2);
	const struct share_config *a = cfg.shares->pdata[0], *b = cfg.shares->pdata[1];
	g_assert_cmpstr(a->path, ==, "/srv/a");
	g_assert_cmpstr(a->tag, ==, "a");
	g_assert_false(a->serve.read_only || a->serve.submounts || a->serve.no_xattr);
	g_assert_cmpstr(b->path, ==, "/srv/b");
	g_assert_true(b->serve.read_only && b->serve.submounts && b->serve.no_xattr);
	config_clear(&cfg);
	expect_error("run --kernel k --share /srv:t,xattr",
	             "--share: unknown option \"xattr\" (try ro, submounts, noxattr, uid=, gid=)");
}

static void test_share_id_maps(void)
{
	struct vm_config cfg;

	g_assert_true(parse("run --kernel k --share /srv/a:a,uid=1000:1001,gid=100:0", &cfg, NULL));
	const struct share_config *a = cfg.shares->pdata[0];
	g_assert_true(a->serve.uid_map.on && a->serve.gid_map.on);
	g_assert_cmpuint(a->serve.uid_map.host, ==, 1000);
	g_assert_cmpuint(a->serve.uid_map.guest, ==, 1001);
	g_assert_cmpuint(a->serve.gid_map.host, ==, 100);
	g_assert_cmpuint(a->serve.gid_map.guest, ==, 0);
	/* A swap: each side's id is the other's, and the rest pass as they are. */
	g_assert_cmpuint(map_id(&a->serve.uid_map, 1000), ==, 1001);
	g_assert_cmpuint(map_id(&a->serve.uid_map, 1001), ==, 1000);
	g_assert_cmpuint(map_id(&a->serve.uid_map, 0), ==, 0);
	g_assert_cmpuint(map_id(&a->serve.gid_map, 0), ==, 100);
	config_clear(&cfg);
	expect_error("run --kernel k --share /srv:t,uid=1000",
	             "--share: \"uid=1000\" is not uid=HOST:GUEST (two numeric ids)");
	expect_error("run --kernel k --share /srv:t,gid=a:b",
	             "--share: \"gid=a:b\" is not gid=HOST:GUEST (two numeric ids)");
	expect_error("run --kernel k --share /srv:t,uid=4294967295:0",
	             "--share: \"uid=4294967295:0\" is not uid=HOST:GUEST (two numeric ids)");
	expect_error("run --kernel k --share /srv:t,uid=1:2:3",
	             "--share: \"uid=1:2:3\" is not uid=HOST:GUEST (two numeric ids)");
	expect_error("run --kernel k --share /srv:t,uid=1:2,uid=3:4",
	             "--share: uid= is given twice");
}

static void test_bad_options(void)
{
	expect_error("run --kernel k --memory 12Q", "--memory: \"12Q\" is not a size");
	expect_error("run --kernel k --memory 1K", "--memory: \"1K\" is out of range (16M to 1T)");
	expect_error("run --kernel k --memory 99999999999999999999",
	             "--memory: \"99999999999999999999\" is not a size");
	expect_error("run --kernel k --cpus 0", "--cpus: \"0\" is not a number from 1 to 254");
	expect_error("run --kernel k --cpus -1", "--cpus: \"-1\" is not a number from 1 to 254");
	expect_error("run --kernel k --cpus 4x", "--cpus: \"4x\" is not a number from 1 to 254");
	expect_error("run --kernel k --cpus 255", "--cpus: \"255\" is not a number from 1 to 254");
	expect_error("run --kernel k --poll 1000001",
	             "--poll: \"1000001\" is not a number of microseconds from 0 to 1000000");
	expect_error("run --kernel k --poll -5",
	             "--poll: \"-5\" is not a number of microseconds from 0 to 1000000");
	expect_error("run --kernel k --halt-poll 2s",
	             "--halt-poll: \"2s\" is not a number of microseconds from 0 to 1000000");
	expect_error("run --kernel k --on-reboot maybe",
	             "--on-reboot: \"maybe\" is not one of exit, restart");
	expect_error("run --kernel k image extra",
	             "run: unexpected argument \"extra\" (try 'husk run --help')");
	expect_error("run image,rw", "--disk: unknown option \"rw\" (try ro, snapshot, "
	                             "serial=ID, cache=writeback|none, format=raw|qcow2)");
	expect_error("run --kernel", "missing argument for --kernel");
}

/* `husk run IMAGE`: the image is the first disk, and its own boot entry has the command line. */
static void test_image_argument(void)
{
	struct vm_config cfg;
	const struct disk_config *d;

	g_assert_true(parse("run --disk data.img --memory 1G base.qcow2,snapshot", &cfg, NULL));
	g_assert_null(cfg.kernel);
	g_assert_null(cfg.cmdline);
	g_assert_cmpuint(cfg.disks->len, ==, 2);
	d = cfg.disks->pdata[0];
	g_assert_cmpstr(d->path, ==, "base.qcow2");
	g_assert_true(d->snapshot);
	d = cfg.disks->pdata[1];
	g_assert_cmpstr(d->path, ==, "data.img");
	config_clear(&cfg);
	g_assert_true(parse("run --cmdline quiet image.raw", &cfg, NULL));
	g_assert_cmpstr(cfg.cmdline, ==, "quiet");
	config_clear(&cfg);
}

static void test_unknown_option(void)
{
	struct vm_config cfg;
	GError *err = NULL;

	g_assert_false(parse("run --kernel k --frobnicate", &cfg, &err));
	g_assert_nonnull(strstr(err->message, "--frobnicate"));
	g_assert_true(g_ascii_islower(err->message[0]));
	g_error_free(err);
}

static void test_sizes(void)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} good[] = {
	    {"512M", 512 * MiB},     {"512", 512 * MiB}, {"2G", 2 * GiB},
	    {"2g", 2 * GiB},         {"2GiB", 2 * GiB},  {"1024k", MiB},
	    {"1T", 1024 * GiB},      {"4096B", 4096},    {"0", 0},
	    {"16777216b", 16 * MiB},
	};
	static const char *const bad[] = {
	    "",
	    "M",
	    "12Q",
	    "1.5G",
	    "-1G",
	    " 1G",
	    "1G ",
	    "1GG",
	    "18446744073709551616",
	    "17179869184G",
	};
	uint64_t bytes;

	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		g_assert_true(size_parse(good[i].text, &bytes));
		g_assert_cmpuint(bytes, ==, good[i].bytes);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_false(size_parse(bad[i], &bytes));
}

/* --user, HUSK_USER behind it, and never with a restart that needs root again. */
static void test_user(void)
{
	struct vm_config cfg;

	g_assert_true(parse("run --kernel k", &cfg, NULL));
	g_assert_false(cfg.run_as.set);
	config_clear(&cfg);
	g_assert_true(parse("run --kernel k --user 4000123:4000124", &cfg, NULL));
	g_assert_true(cfg.run_as.set);
	g_assert_cmpuint(cfg.run_as.uid, ==, 4000123);
	g_assert_cmpuint(cfg.run_as.gid, ==, 4000124);
	config_clear(&cfg);
	g_setenv("HUSK_USER", "4000125:4000126", TRUE);
	g_assert_true(parse("run --kernel k", &cfg, NULL));
	g_assert_cmpuint(cfg.run_as.uid, ==, 4000125);
	config_clear(&cfg);
	g_assert_true(parse("run --kernel k --user 4000123:4000124", &cfg, NULL));
	g_assert_cmpuint(cfg.run_as.uid, ==, 4000123); /* the option wins */
	config_clear(&cfg);
	expect_error("run --kernel k --on-reboot restart",
	             "--user: not with --on-reboot restart (setting the VM up again takes root)");
	g_setenv("HUSK_USER", "root", TRUE);
	expect_error("run --kernel k", "HUSK_USER: \"root\" is root: nothing would be dropped");
	g_unsetenv("HUSK_USER");
	expect_error("run --kernel k --user 0", "--user: \"0\" is root: nothing would be dropped");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/options/defaults", test_defaults);
	g_test_add_func("/options/display", test_display_options);
	g_test_add_func("/options/all-options", test_all_options);
	g_test_add_func("/options/share-options", test_share_options);
	g_test_add_func("/options/share-id-maps", test_share_id_maps);
	g_test_add_func("/options/bad-options", test_bad_options);
	g_test_add_func("/options/image-argument", test_image_argument);
	g_test_add_func("/options/unknown-option", test_unknown_option);
	g_test_add_func("/options/sizes", test_sizes);
	g_test_add_func("/options/user", test_user);
	return g_test_run();
}
