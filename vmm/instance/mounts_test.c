// SPDX-License-Identifier: MIT
/* Mounts: --mount's text, mounts.json both ways, and what a hostile file gets. */
#include "vmm/instance/mounts.h"

#include <glib.h>
#include <glib/gstdio.h>

#include "vmm/error.h"

static void test_spec_parse(void)
{
	struct mount_spec m;
	GError *err = NULL;

	g_assert_true(mount_spec_parse("/srv/src:/home/debian/src", &m, &err));
	g_assert_cmpstr(m.host, ==, "/srv/src");
	g_assert_cmpstr(m.guest, ==, "/home/debian/src");
	g_assert_false(m.read_only);
	mount_spec_clear(&m);
	g_assert_true(mount_spec_parse("/srv/a:b:/mnt/x:ro", &m, &err));
	g_assert_cmpstr(m.host, ==, "/srv/a:b");
	g_assert_cmpstr(m.guest, ==, "/mnt/x");
	g_assert_true(m.read_only);
	mount_spec_clear(&m);
	/* A relative host folder is made absolute, from the current one. */
	g_assert_true(mount_spec_parse("src/../lib:/mnt", &m, &err));
	char *want = g_canonicalize_filename("lib", NULL);
	g_assert_cmpstr(m.host, ==, want);
	g_free(want);
	mount_spec_clear(&m);
	const char *bad[] = {"/srv",         "/srv:relative", ":/mnt",
	                     "/srv:/a/../b", "/srv:/a/./b",   "/srv:"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_false(mount_spec_parse(bad[i], &m, &err));
		g_assert_cmpint(err->code, ==, HUSK_EXIT_USAGE);
		g_assert_null(strchr(err->message, '\n'));
		g_clear_error(&err);
	}
}

static void test_json_round_trip(void)
{
	GPtrArray *specs = mounts_new();
	struct mount_spec a = {g_strdup("/srv/x \"q\""), g_strdup("/mnt/x"), true};
	struct mount_spec b = {g_strdup("/home/u/p"), g_strdup("/home/debian/p"), false};
	GError *err = NULL;

	g_ptr_array_add(specs, g_memdup2(&a, sizeof(a)));
	g_ptr_array_add(specs, g_memdup2(&b, sizeof(b)));
	char *text = mounts_to_json(specs);
	GPtrArray *back = mounts_from_json(text, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(back->len, ==, 2);
	for (guint i = 0; i < 2; i++) {
		const struct mount_spec *x = specs->pdata[i], *y = back->pdata[i];
		g_assert_cmpstr(x->host, ==, y->host);
		g_assert_cmpstr(x->guest, ==, y->guest);
		g_assert_cmpint(x->read_only, ==, y->read_only);
	}
	g_free(text);
	g_ptr_array_unref(back);
	g_ptr_array_unref(specs);
}

static void test_json_refused(void)
{
	const char *bad[] = {
	    "",
	    "{}",
	    "[1]",
	    "[{\"host\": \"/a\"}]",
	    "[{\"host\": \"a\", \"guest\": \"/b\"}]",
	    "[{\"host\": \"/a\", \"guest\": \"b\"}]",
	    "[{\"host\": \"/a\", \"guest\": \"/b/..\"}]",
	    "[{\"host\": \"/a\", \"guest\": \"/b\", \"ro\": \"yes\"}]",
	    "[{\"host\": 1, \"guest\": \"/b\"}]",
	};
	GError *err = NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_null(mounts_from_json(bad[i], &err));
		g_assert_nonnull(err);
		g_assert_null(strchr(err->message, '\n'));
		g_clear_error(&err);
	}
	/* More than MOUNTS_MAX. */
	GString *many = g_string_new("[");
	for (int i = 0; i <= MOUNTS_MAX; i++)
		g_string_append_printf(many, "%s{\"host\": \"/a\", \"guest\": \"/m%d\"}",
		                       i ? "," : "", i);
	g_string_append(many, "]");
	g_assert_null(mounts_from_json(many->str, &err));
	g_clear_error(&err);
	g_string_free(many, TRUE);
	/* ro may be left out: read-write. */
	GPtrArray *ok = mounts_from_json("[{\"host\": \"/a\", \"guest\": \"/b\"}]", &err);
	g_assert_no_error(err);
	g_assert_false(((struct mount_spec *)ok->pdata[0])->read_only);
	g_ptr_array_unref(ok);
}

static void test_file(void)
{
	char *dir = g_dir_make_tmp("husk-mounts-XXXXXX", NULL);
	char *path = g_build_filename(dir, "mounts.json", NULL);
	GError *err = NULL;
	GPtrArray *specs = mounts_load(path, &err); /* none yet: no mounts */

	g_assert_no_error(err);
	g_assert_cmpuint(specs->len, ==, 0);
	struct mount_spec a = {g_strdup(dir), g_strdup("/mnt"), false};
	g_ptr_array_add(specs, g_memdup2(&a, sizeof(a)));
	g_assert_true(mounts_save(path, specs, &err));
	g_ptr_array_unref(specs);
	specs = mounts_load(path, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(specs->len, ==, 1);
	g_assert_cmpstr(((struct mount_spec *)specs->pdata[0])->host, ==, dir);
	g_ptr_array_unref(specs);
	g_assert_true(g_file_set_contents(path, "[{]", -1, NULL));
	g_assert_null(mounts_load(path, &err));
	g_assert_true(g_str_has_prefix(err->message, path));
	g_clear_error(&err);
	/* The checks a request gets. */
	g_assert_true(mount_host_check(dir, &err));
	g_assert_false(mount_host_check(path, &err)); /* a file, not a folder */
	g_clear_error(&err);
	g_unlink(path);
	g_rmdir(dir);
	g_free(path);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mounts/spec-parse", test_spec_parse);
	g_test_add_func("/mounts/json-round-trip", test_json_round_trip);
	g_test_add_func("/mounts/json-refused", test_json_refused);
	g_test_add_func("/mounts/file", test_file);
	return g_test_run();
}
