// SPDX-License-Identifier: MIT
/*
 * The seed is checked by others' readers: dosfstools' fsck.fat and mtools
 * (skipped where they are missing), and the kernel's vfat when the test
 * may mount a loop device.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "vmm/error.h"
#include "vmm/instance/seed.h"

static char *dir;

/* The tool's stdout, or NULL (test skipped) when it is not installed. */
static char *run(const char *const *argv, int *status)
{
	char *out = NULL, *tool = g_find_program_in_path(argv[0]);

	if (!tool) {
		g_test_skip(argv[0]);
		return NULL;
	}
	g_free(tool);
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
	                           G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
	                           &out, NULL, status, NULL));
	return out;
}

static char *big_text(size_t len)
{
	char *t = g_malloc(len + 1);

	for (size_t i = 0; i < len; i++)
		t[i] = (char)('a' + i % 26);
	t[len] = 0;
	return t;
}

static char *write_seed(const char *name, size_t big)
{
	char *path = g_build_filename(dir, name, NULL);
	char *large = big_text(big);
	struct seed_file files[] = {
	    {"meta-data", "instance-id: i-1\n", 17},
	    {"user-data", large, big},
	    {"vendor-data", "", 0},
	};

	g_assert_true(seed_write(path, files, G_N_ELEMENTS(files), NULL));
	g_free(large);
	return path;
}

static void test_fsck(void)
{
	char *path = write_seed("fsck.img", 5000);
	const char *argv[] = {"fsck.fat", "-n", "-v", path, NULL};
	int status;
	char *out = run(argv, &status);

	if (out) {
		g_assert_true(g_spawn_check_wait_status(status, NULL));
		g_assert_nonnull(strstr(out, "12 bit entries"));
	}
	g_free(out);
	g_free(path);
}

/* libblkid, which cloud-init asks for a vfat or iso9660 volume labelled cidata. */
static void test_blkid(void)
{
	char *path = write_seed("blkid.img", 10);
	const char *argv[] = {"blkid", "-p", "-o", "export", path, NULL};
	int status;
	char *out = run(argv, &status);

	if (out) {
		g_assert_nonnull(strstr(out, "\nTYPE=vfat\n"));
		g_assert_nonnull(strstr(out, "\nLABEL=CIDATA\n"));
	}
	g_free(out);
	g_free(path);
}

/* mtools reads the long names, the label and each file's bytes back. */
static void test_mtools(void)
{
	char *path = write_seed("mtools.img", 100000);
	const char *label[] = {"mlabel", "-i", path, "-s", "::", NULL};
	const char *type[] = {"mtype", "-i", path, "::user-data", NULL};
	const char *meta[] = {"mtype", "-i", path, "::meta-data", NULL};
	int status;
	char *out = run(label, &status);

	if (out) {
		g_assert_nonnull(strstr(out, "CIDATA"));
		g_free(out);
		out = run(type, &status);
		char *expected = big_text(100000);
		g_assert_cmpstr(out, ==, expected);
		g_free(expected);
		g_free(out);
		out = run(meta, &status);
		g_assert_cmpstr(out, ==, "instance-id: i-1\n");
	}
	g_free(out);
	g_free(path);
}

static void test_instance_seed(void)
{
	char *path = g_build_filename(dir, "instance.img", NULL);
	const char *ud = "#cloud-config\nruncmd: [touch /x]\n";

	struct seed_instance si = {.name = "web",
	                           .instance_id = "husk-web-1",
	                           .ssh_key = "ssh-ed25519 AAAA k",
	                           .user_data = ud,
	                           .user_len = strlen(ud)};

	g_assert_true(seed_write_instance(path, &si, NULL));
	const char *vendor[] = {"mtype", "-i", path, "::vendor-data", NULL};
	const char *meta[] = {"mtype", "-i", path, "::meta-data", NULL};
	const char *agent[] = {"mtype", "-i", path, "::husk-agent", NULL};
	int status;
	char *out = run(vendor, &status);
	if (out) {
		g_assert_true(g_str_has_prefix(out, "#cloud-config\n"));
		g_assert_nonnull(strstr(out, "      - ssh-ed25519 AAAA k\n"));
		g_assert_null(strstr(out, "husk-agent"));
		g_free(out);
		out = run(meta, &status);
		g_assert_cmpstr(out, ==, "instance-id: husk-web-1\nlocal-hostname: web\n");
	}
	g_free(out);
	/* With the agent: the binary on the volume, and a vendor script beside the config. */
	char *binary = g_strnfill(300 * 1024, 'A');
	binary[1000] = '\n';
	si.agent = binary;
	si.agent_len = strlen(binary);
	g_assert_true(seed_write_instance(path, &si, NULL));
	out = run(agent, &status);
	if (out) {
		g_assert_cmpstr(out, ==, binary);
		g_free(out);
		out = run(vendor, &status);
		g_assert_true(g_str_has_prefix(out, "Content-Type: multipart/mixed; boundary="));
		g_assert_nonnull(strstr(out, "Content-Type: text/cloud-config;"));
		g_assert_nonnull(strstr(out, "      - ssh-ed25519 AAAA k\n"));
		g_assert_nonnull(strstr(out, "Content-Type: text/x-shellscript;"));
		g_assert_nonnull(strstr(out, "systemctl enable husk-agent.service\n"));
		g_assert_true(g_str_has_suffix(out, "--\n"));
	}
	g_free(out);
	g_free(binary);
	g_free(path);
}

static void test_bad_names(void)
{
	struct seed_file files[] = {{"a-name-too-long", "", 0}};
	char *path = g_build_filename(dir, "bad.img", NULL);
	GError *err = NULL;

	g_assert_false(seed_write(path, files, 1, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_error_free(err);
	g_free(path);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	dir = g_dir_make_tmp("husk-seed-XXXXXX", NULL);
	g_test_add_func("/seed/fsck", test_fsck);
	g_test_add_func("/seed/blkid", test_blkid);
	g_test_add_func("/seed/mtools", test_mtools);
	g_test_add_func("/seed/instance", test_instance_seed);
	g_test_add_func("/seed/bad-names", test_bad_names);
	int status = g_test_run();
	const char *rm[] = {"rm", "-rf", dir, NULL};
	g_spawn_sync(NULL, (char **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
	             NULL);
	return status;
}
