// SPDX-License-Identifier: MIT
#include <glib.h>
#include <string.h>

#include "vmm/error.h"
#include "vmm/instance/images.h"

static void test_aliases(void)
{
	const struct image_alias *a = images_find_alias("debian-12");

	g_assert_nonnull(a);
	g_assert_null(images_find_alias("debian-11"));
	g_unsetenv("HUSK_IMAGE_BASE");
	char *url = images_alias_url(a, a->path);
	g_assert_cmpstr(url, ==,
	                "https://cloud.debian.org/images/cloud/bookworm/latest/"
	                "debian-12-genericcloud-amd64.qcow2");
	g_free(url);
	g_setenv("HUSK_IMAGE_BASE", "http://127.0.0.1:8000", TRUE);
	url = images_alias_url(images_find_alias("ubuntu-24.04"), "noble/current/SHA256SUMS");
	g_assert_cmpstr(url, ==, "http://127.0.0.1:8000/noble/current/SHA256SUMS");
	g_free(url);
	g_unsetenv("HUSK_IMAGE_BASE");
	/* Every alias names an image and the checksum list beside it. */
	for (a = image_aliases; a->name; a++) {
		char *dir = g_path_get_dirname(a->path), *sums_dir = g_path_get_dirname(a->sums);
		g_assert_cmpstr(dir, ==, sums_dir);
		g_assert_true(g_str_has_suffix(a->sums, "SUMS"));
		g_free(dir);
		g_free(sums_dir);
	}
}

static void test_sums(void)
{
	const char *sums = "AB12  other.img\n"
	                   "cd34 *noble-server-cloudimg-amd64.img\n"
	                   "ef56  debian-12-genericcloud-amd64.qcow2\r\n";
	char *s = images_sum_for(sums, "noble-server-cloudimg-amd64.img");

	g_assert_cmpstr(s, ==, "cd34");
	g_free(s);
	s = images_sum_for(sums, "debian-12-genericcloud-amd64.qcow2");
	g_assert_cmpstr(s, ==, "ef56");
	g_free(s);
	s = images_sum_for(sums, "other.img");
	g_assert_cmpstr(s, ==, "ab12");
	g_free(s);
	g_assert_null(images_sum_for(sums, "missing.img"));
	g_assert_null(images_sum_for(sums, "other"));
}

static void test_not_an_image(void)
{
	GError *err = NULL;

	g_assert_null(images_fetch("/nonexistent/x.qcow2", NULL, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_cmpstr(err->message, ==,
	                "launch: \"/nonexistent/x.qcow2\" is not an image file, an http(s):// URL "
	                "or an alias");
	g_error_free(err);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/images/aliases", test_aliases);
	g_test_add_func("/images/sums", test_sums);
	g_test_add_func("/images/not-an-image", test_not_an_image);
	return g_test_run();
}
