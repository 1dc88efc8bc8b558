// SPDX-License-Identifier: MIT
#include "vmm/oci/layer.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/oci/test_tar.h"

struct mem {
	GBytes *b;
	gsize done;
};

static gssize mem_read(void *ctx, void *buf, gsize len, GError **err)
{
	struct mem *m = ctx;
	gsize total;
	const char *d = g_bytes_get_data(m->b, &total);
	gsize n = MIN(len, total - m->done);

	memcpy(buf, d + m->done, n);
	m->done += n;
	return (gssize)n;
}

/* A scratch folder: root/ for the image, outside/ with what must never change. */
struct scratch {
	char *top, *root, *outside;
};

static void scratch_init(struct scratch *s)
{
	s->top = g_dir_make_tmp("husk-layer-XXXXXX", NULL);
	s->root = g_build_filename(s->top, "root", NULL);
	s->outside = g_build_filename(s->top, "outside", NULL);
	g_assert_cmpint(g_mkdir(s->root, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(s->outside, 0755), ==, 0);
	char *canary = g_build_filename(s->outside, "canary", NULL);
	g_assert_true(g_file_set_contents(canary, "sing", -1, NULL));
	g_free(canary);
}

/* outside/ holds its canary, unchanged, alone, and with no second name. */
static void scratch_check_outside(struct scratch *s)
{
	char *canary = g_build_filename(s->outside, "canary", NULL), *text = NULL;
	struct stat st;

	g_assert_true(g_file_get_contents(canary, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "sing");
	g_assert_cmpint(stat(canary, &st), ==, 0);
	g_assert_cmpint(st.st_nlink, ==, 1);
	GDir *d = g_dir_open(s->outside, 0, NULL);
	int n = 0;
	while (g_dir_read_name(d))
		n++;
	g_dir_close(d);
	g_assert_cmpint(n, ==, 1);
	g_free(text);
	g_free(canary);
}

static void scratch_free(struct scratch *s)
{
	oci_remove_tree(s->top);
	g_assert_false(g_file_test(s->top, G_FILE_TEST_EXISTS));
	g_free(s->top);
	g_free(s->root);
	g_free(s->outside);
}

/* Applies the layers in order; the first failure's error, or TRUE. */
static bool apply(const char *root, GBytes **layers, int n, GError **err)
{
	struct oci_unpack *u = oci_unpack_new(root, err);
	bool ok = u != NULL;

	for (int i = 0; ok && i < n; i++) {
		struct mem m = {.b = layers[i]};
		char *digest = tar_digest(layers[i]);
		ok = oci_unpack_layer(u, mem_read, &m, digest, err);
		g_free(digest);
	}
	if (ok)
		return oci_unpack_finish(u, err);
	oci_unpack_abort(u);
	return false;
}

static char *read_in(const char *root, const char *path)
{
	char *full = g_build_filename(root, path, NULL), *text = NULL;

	g_file_get_contents(full, &text, NULL, NULL);
	g_free(full);
	return text;
}

static bool exists_in(const char *root, const char *path)
{
	char *full = g_build_filename(root, path, NULL);
	struct stat st;
	bool there = lstat(full, &st) == 0;

	g_free(full);
	return there;
}

static void test_clean_path(void)
{
	const char *cases[][2] = {
	    {"a/b", "a/b"},   {"./a//b/", "a/b"}, {"/etc/passwd", "etc/passwd"}, {".", ""},
	    {"a/./b", "a/b"}, {"../a", NULL},     {"a/../../b", NULL},           {"a/..", NULL},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *c = oci_clean_path(cases[i][0]);
		g_assert_cmpstr(c, ==, cases[i][1]);
		g_free(c);
	}
	g_assert_true(oci_digest_valid(
	    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	g_assert_false(oci_digest_valid("sha256:E3B0"));
	g_assert_false(oci_digest_valid(
	    "md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	g_assert_false(oci_digest_valid(
	    "sha256:../c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

static GBytes *base_layer(enum tar_compression c)
{
	struct tar t;

	tar_begin(&t, c);
	tar_add(&t, 'd', "etc", NULL, 0755);
	tar_add(&t, 'f', "etc/motd", "hello\n", 0644);
	tar_add(&t, 'f', "etc/gone", "bye\n", 0644);
	tar_add(&t, 'd', "data", NULL, 0555);
	tar_add(&t, 'f', "data/old", "old\n", 0644);
	tar_add(&t, 'd', "data/sub", NULL, 0755);
	tar_add(&t, 'f', "data/sub/deep", "deep\n", 0644);
	tar_add(&t, 'l', "bin", "usr/bin", 0777);
	tar_add(&t, 'd', "usr/bin", NULL, 0755);
	tar_add(&t, 'f', "usr/bin/tool", "#!/bin/sh\n", 0755);
	tar_add(&t, 'h', "usr/bin/tool2", "usr/bin/tool", 0755);
	tar_add(&t, 'l', "abs", "/etc/motd", 0777);
	tar_add(&t, 'd', "lib", NULL, 0755);
	tar_add(&t, 'f', "lib/libc.so", "elf", 0755);
	return tar_end(&t);
}

static GBytes *top_layer(enum tar_compression c)
{
	struct tar t;

	tar_begin(&t, c);
	tar_add(&t, 'f', "etc/.wh.gone", "", 0644);
	tar_add(&t, 'f', "etc/motd", "changed\n", 0644);
	/* Opaque: data/ keeps only what this layer puts there, before or after the marker. */
	tar_add(&t, 'f', "data/new", "new\n", 0644);
	tar_add(&t, 'f', "data/.wh..wh..opq", "", 0644);
	tar_add(&t, 'f', "data/later", "later\n", 0644);
	tar_add(&t, 'f', ".wh.nothing-there", "", 0644);
	/* A folder (with files) replaced by a link, as a usr-merge layer does. */
	tar_add(&t, 'l', "lib", "usr/bin", 0777);
	return tar_end(&t);
}

static void check_two_layers(enum tar_compression c)
{
	struct scratch s;
	GBytes *layers[2] = {base_layer(c), top_layer(c)};
	GError *err = NULL;

	scratch_init(&s);
	g_assert_true(apply(s.root, layers, 2, &err));
	g_assert_no_error(err);
	char *motd = read_in(s.root, "etc/motd"), *tool2 = read_in(s.root, "usr/bin/tool2");
	g_assert_cmpstr(motd, ==, "changed\n");
	g_assert_cmpstr(tool2, ==, "#!/bin/sh\n");
	g_assert_false(exists_in(s.root, "etc/gone"));
	g_assert_false(exists_in(s.root, "etc/.wh.gone"));
	g_assert_false(exists_in(s.root, "data/old"));
	g_assert_false(exists_in(s.root, "data/sub"));
	g_assert_true(exists_in(s.root, "data/new"));
	g_assert_true(exists_in(s.root, "data/later"));
	g_assert_false(exists_in(s.root, "data/.wh..wh..opq"));
	/* The folder's own mode, set at the end, after the top layer wrote into it. */
	char *data = g_build_filename(s.root, "data", NULL),
	     *abs = g_build_filename(s.root, "abs", NULL);
	struct stat st;
	g_assert_cmpint(stat(data, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0555);
	char *target = g_file_read_link(abs, NULL);
	g_assert_cmpstr(target, ==, "/etc/motd");
	char *lib = g_build_filename(s.root, "lib", NULL),
	     *lib_target = g_file_read_link(lib, NULL);
	g_assert_cmpstr(lib_target, ==, "usr/bin");
	g_free(lib_target);
	g_free(lib);
	scratch_check_outside(&s);
	scratch_free(&s);
	g_free(target);
	g_free(abs);
	g_free(data);
	g_free(motd);
	g_free(tool2);
	g_bytes_unref(layers[0]);
	g_bytes_unref(layers[1]);
}

static void test_two_layers(void)
{
	check_two_layers(TAR_PLAIN);
}

static void test_gzip_zstd(void)
{
	check_two_layers(TAR_GZIP);
	check_two_layers(TAR_ZSTD);
}

static void test_digest_mismatch(void)
{
	struct scratch s;
	GBytes *layer = base_layer(TAR_GZIP);
	struct oci_unpack *u;
	struct mem m = {.b = layer};
	GError *err = NULL;

	scratch_init(&s);
	u = oci_unpack_new(s.root, &err);
	g_assert_false(oci_unpack_layer(
	    u, mem_read, &m,
	    "sha256:0000000000000000000000000000000000000000000000000000000000000000", &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_nonnull(strstr(err->message, "does not match the digest"));
	oci_unpack_abort(u);
	g_clear_error(&err);
	scratch_free(&s);
	g_bytes_unref(layer);
}

/* One hostile layer over a root holding a link out of it: refused, nothing outside touched. */
static void refused(const char *what, void (*build)(struct tar *, const char *outside))
{
	struct scratch s;
	struct tar t;
	GError *err = NULL;

	scratch_init(&s);
	tar_begin(&t, TAR_PLAIN);
	build(&t, s.outside);
	GBytes *layer = tar_end(&t);
	g_assert_false(apply(s.root, &layer, 1, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_test_message("%s: %s", what, err->message);
	g_assert_nonnull(strstr(err->message, "layer sha256:"));
	g_clear_error(&err);
	scratch_check_outside(&s);
	scratch_free(&s);
	g_bytes_unref(layer);
}

static void dotdot(struct tar *t, const char *outside)
{
	tar_add(t, 'f', "../outside/evil", "x", 0644);
}

static void through_link(struct tar *t, const char *outside)
{
	tar_add(t, 'l', "out", outside, 0777);
	tar_add(t, 'f', "out/evil", "x", 0644);
}

static void through_relative_link(struct tar *t, const char *outside)
{
	tar_add(t, 'l', "out", "../outside", 0777);
	tar_add(t, 'f', "out/canary", "overwritten", 0644);
}

static void hardlink_out(struct tar *t, const char *outside)
{
	tar_add(t, 'h', "stolen", "../outside/canary", 0644);
}

static void hardlink_absolute(struct tar *t, const char *outside)
{
	char *target = g_build_filename(outside, "canary", NULL);
	/* Taken as a path inside the image, where there is no such file. */
	tar_add(t, 'h', "stolen", target, 0644);
	g_free(target);
}

static void hardlink_through_link(struct tar *t, const char *outside)
{
	tar_add(t, 'l', "out", outside, 0777);
	tar_add(t, 'h', "stolen", "out/canary", 0644);
}

static void whiteout_through_link(struct tar *t, const char *outside)
{
	tar_add(t, 'l', "out", outside, 0777);
	tar_add(t, 'f', "out/.wh.canary", "", 0644);
}

static void opaque_through_link(struct tar *t, const char *outside)
{
	tar_add(t, 'l', "out", outside, 0777);
	tar_add(t, 'f', "out/.wh..wh..opq", "", 0644);
}

static void dir_through_link(struct tar *t, const char *outside)
{
	tar_add(t, 'l', "out", outside, 0777);
	tar_add(t, 'd', "out/newdir", NULL, 0755);
}

static void test_escapes(void)
{
	refused("..", dotdot);
	refused("through a link", through_link);
	refused("through a relative link", through_relative_link);
	refused("hard link out", hardlink_out);
	refused("absolute hard link", hardlink_absolute);
	refused("hard link through a link", hardlink_through_link);
	refused("whiteout through a link", whiteout_through_link);
	refused("opaque through a link", opaque_through_link);
	refused("folder through a link", dir_through_link);
}

/* --- seeded random layers ------------------------------------------------------------ */

static const char *random_part(GRand *r)
{
	static const char *const common[] = {"a", "b",     "c",       "x",     "lnk",         ".",
	                                     "",  ".wh.a", ".wh.lnk", ".wh.b", ".wh..wh..opq"};
	static const char *const hostile[] = {"..", ".wh.", ".wh.."};
	/* Rarely: a layer with one of these is refused at once, the rest of it untried. */
	if (g_rand_int_range(r, 0, 40) == 0)
		return hostile[g_rand_int_range(r, 0, G_N_ELEMENTS(hostile))];
	return common[g_rand_int_range(r, 0, G_N_ELEMENTS(common))];
}

static char *random_path(GRand *r)
{
	GString *s = g_string_new(g_rand_int_range(r, 0, 4) == 0 ? "/" : "");
	int n = g_rand_int_range(r, 1, 5);

	for (int i = 0; i < n; i++)
		g_string_append_printf(s, "%s%s", i ? "/" : "", random_part(r));
	return g_string_free(s, FALSE);
}

/* Link targets: out of the root, or at what the layer already holds. */
static char *random_target(GRand *r, const char *outside, GPtrArray *files)
{
	switch (g_rand_int_range(r, 0, 6)) {
	case 0:
		return g_strdup(outside);
	case 1:
		return g_build_filename(outside, "canary", NULL);
	case 2:
		return g_strdup("../../outside/canary");
	case 3:
		return random_path(r);
	default:
		return files->len
		           ? g_strdup(files->pdata[g_rand_int_range(r, 0, (gint32)files->len)])
		           : random_path(r);
	}
}

static GBytes *random_layer(GRand *r, const char *outside)
{
	static const char types[] = "fffdddllhh";
	GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
	struct tar t;
	int n = g_rand_int_range(r, 1, 24);

	tar_begin(&t, TAR_PLAIN);
	for (int i = 0; i < n; i++) {
		char type = types[g_rand_int_range(r, 0, sizeof(types) - 1)];
		char *path = random_path(r);
		char *target = type == 'l' || type == 'h' ? random_target(r, outside, files) : NULL;
		tar_add(&t, type, path, type == 'f' ? "data" : target,
		        g_rand_boolean(r) ? 0755 : 0500);
		if (type == 'f')
			g_ptr_array_add(files, g_strdup(path));
		g_free(path);
		g_free(target);
	}
	g_ptr_array_unref(files);
	return tar_end(&t);
}

static void test_random_layers(void)
{
	guint32 seed = g_test_rand_int();
	int rounds = g_test_slow() ? 2000 : 300;

	g_test_message("seed %u", seed);
	GRand *r = g_rand_new_with_seed(seed);
	int accepted = 0;
	for (int round = 0; round < rounds; round++) {
		struct scratch s;
		GBytes *layers[3];
		int n = g_rand_int_range(r, 1, 4);
		GError *err = NULL;

		scratch_init(&s);
		for (int i = 0; i < n; i++)
			layers[i] = random_layer(r, s.outside);
		if (apply(s.root, layers, n, &err))
			accepted++;
		else
			g_assert_true(err && err->message[0] && !strchr(err->message, '\n'));
		if (err && round < 40)
			g_test_message("refused: %s", err->message);
		g_clear_error(&err);
		scratch_check_outside(&s);
		scratch_free(&s);
		for (int i = 0; i < n; i++)
			g_bytes_unref(layers[i]);
	}
	g_test_message("%d of %d accepted", accepted, rounds);
	g_rand_free(r);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/oci/layer/clean-path", test_clean_path);
	g_test_add_func("/oci/layer/two-layers", test_two_layers);
	g_test_add_func("/oci/layer/gzip-zstd", test_gzip_zstd);
	g_test_add_func("/oci/layer/digest-mismatch", test_digest_mismatch);
	g_test_add_func("/oci/layer/escapes", test_escapes);
	g_test_add_func("/oci/layer/random", test_random_layers);
	return g_test_run();
}
