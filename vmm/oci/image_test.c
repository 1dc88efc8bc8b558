// SPDX-License-Identifier: MIT
#include "vmm/oci/image.h"

#include <glib/gstdio.h>
#include <string.h>
#include <time.h>
#include <utime.h>

#include "vmm/error.h"
#include "vmm/oci/layer.h"
#include "vmm/oci/test_tar.h"

#define MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define INDEX_TYPE    "application/vnd.oci.image.index.v1+json"

/* An image being written: as a layout folder, and the same files for an archive. */
struct image_files {
	char *dir;
	GPtrArray *names; /* char *, relative */
	GPtrArray *data;  /* GBytes * */
};

static void files_add(struct image_files *f, const char *name, GBytes *b)
{
	char *path = g_build_filename(f->dir, name, NULL), *parent = g_path_get_dirname(path);
	gsize len;
	const char *data = g_bytes_get_data(b, &len);

	g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
	g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
	g_ptr_array_add(f->names, g_strdup(name));
	g_ptr_array_add(f->data, g_bytes_ref(b));
	g_free(parent);
	g_free(path);
}

/* Writes b as a blob; returns its digest. */
static char *blob_add(struct image_files *f, GBytes *b)
{
	char *digest = tar_digest(b);
	char *name = g_strdup_printf("blobs/sha256/%s", digest + 7);

	files_add(f, name, b);
	g_free(name);
	return digest;
}

static GBytes *text(const char *s)
{
	return g_bytes_new(s, strlen(s));
}

static GBytes *layer_one(void)
{
	struct tar t;

	tar_begin(&t, TAR_GZIP);
	tar_add(&t, 'd', "etc", NULL, 0755);
	tar_add(&t, 'f', "etc/passwd",
	        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n", 0644);
	tar_add(&t, 'f', "etc/doomed", "x", 0644);
	tar_add(&t, 'f', "etc/motd", "one", 0644);
	return tar_end(&t);
}

static GBytes *layer_two(void)
{
	struct tar t;

	tar_begin(&t, TAR_ZSTD);
	tar_add(&t, 'f', "etc/.wh.doomed", "", 0644);
	tar_add(&t, 'f', "etc/motd", "two", 0644);
	return tar_end(&t);
}

static char *config_json(const char *arch, int layers)
{
	GString *diff = g_string_new(NULL);

	for (int i = 0; i < layers; i++)
		g_string_append_printf(diff, "%s\"sha256:%064d\"", i ? "," : "", i);
	char *json = g_strdup_printf(
	    "{\"architecture\":\"%s\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\",\"A=1\"],"
	    "\"Entrypoint\":[\"/bin/sh\"],\"Cmd\":[\"-c\",\"exit 3\"],\"WorkingDir\":\"/w\","
	    "\"User\":\"app\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
	    arch, diff->str);
	g_string_free(diff, TRUE);
	return json;
}

/* A manifest blob for these layers and a config of arch; its descriptor's JSON. */
static char *manifest_add(struct image_files *f, GBytes **layers, int n, const char *arch,
                          const char *ref)
{
	char *cfg_json = config_json(arch, n);
	GBytes *cfg = text(cfg_json);
	char *cfg_digest = blob_add(f, cfg);
	GString *ls = g_string_new(NULL);

	for (int i = 0; i < n; i++) {
		char *d = blob_add(f, layers[i]);
		g_string_append_printf(
		    ls,
		    "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
		    "\"digest\":\"%s\",\"size\":%zu}",
		    i ? "," : "", d, g_bytes_get_size(layers[i]));
		g_free(d);
	}
	char *m = g_strdup_printf(
	    "{\"schemaVersion\":2,\"mediaType\":\"" MANIFEST_TYPE "\","
	    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	    "\"digest\":\"%s\",\"size\":%zu},\"layers\":[%s]}",
	    cfg_digest, strlen(cfg_json), ls->str);
	GBytes *mb = text(m);
	char *md = blob_add(f, mb);
	char *desc =
	    g_strdup_printf("{\"mediaType\":\"" MANIFEST_TYPE "\",\"digest\":\"%s\",\"size\":%zu,"
	                    "\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}%s%s%s}",
	                    md, strlen(m), arch,
	                    ref ? ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"" : "",
	                    ref ? ref : "", ref ? "\"}" : "");
	g_bytes_unref(mb);
	g_free(md);
	g_free(m);
	g_string_free(ls, TRUE);
	g_free(cfg_digest);
	g_bytes_unref(cfg);
	g_free(cfg_json);
	return desc;
}

static void index_add(struct image_files *f, const char *name, const char *descs)
{
	char *idx = g_strdup_printf("{\"schemaVersion\":2,\"manifests\":[%s]}", descs);
	GBytes *b = text(idx);

	if (name)
		files_add(f, name, b);
	g_bytes_unref(b);
	g_free(idx);
}

static void files_init(struct image_files *f, const char *top, const char *name)
{
	f->dir = g_build_filename(top, name, NULL);
	f->names = g_ptr_array_new_with_free_func(g_free);
	f->data = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_assert_cmpint(g_mkdir_with_parents(f->dir, 0755), ==, 0);
	GBytes *layout = text("{\"imageLayoutVersion\":\"1.0.0\"}");
	files_add(f, "oci-layout", layout);
	g_bytes_unref(layout);
}

static void files_clear(struct image_files *f)
{
	g_free(f->dir);
	g_ptr_array_unref(f->names);
	g_ptr_array_unref(f->data);
}

/* The same files as one tar archive beside the folder. */
static char *files_archive(struct image_files *f)
{
	char *path = g_strdup_printf("%s.tar", f->dir);
	struct archive *a = archive_write_new();

	archive_write_set_format_pax_restricted(a);
	g_assert_cmpint(archive_write_open_filename(a, path), ==, ARCHIVE_OK);
	for (guint i = 0; i < f->names->len; i++) {
		struct archive_entry *e = archive_entry_new();
		gsize len;
		const void *data = g_bytes_get_data(f->data->pdata[i], &len);
		archive_entry_set_pathname(e, f->names->pdata[i]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)len);
		archive_write_header(a, e);
		archive_write_data(a, data, len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	return path;
}

struct fixture {
	char *top, *home;
};

static void setup(struct fixture *fx, gconstpointer data)
{
	fx->top = g_dir_make_tmp("husk-image-XXXXXX", NULL);
	fx->home = g_build_filename(fx->top, "home", NULL);
	g_setenv("HUSK_HOME", fx->home, TRUE);
}

static void teardown(struct fixture *fx, gconstpointer data)
{
	oci_remove_tree(fx->top);
	g_free(fx->top);
	g_free(fx->home);
}

static char *read_in(const char *root, const char *path)
{
	char *full = g_build_filename(root, path, NULL), *t = NULL;

	g_file_get_contents(full, &t, NULL, NULL);
	g_free(full);
	return t;
}

static void check_image(struct oci_image *img)
{
	char *motd = read_in(img->root, "etc/motd"), *doomed = read_in(img->root, "etc/doomed");

	g_assert_cmpstr(motd, ==, "two");
	g_assert_null(doomed);
	g_assert_cmpstr(img->config.env[1], ==, "A=1");
	g_assert_cmpstr(img->config.entrypoint[0], ==, "/bin/sh");
	g_assert_cmpstr(img->config.cmd[1], ==, "exit 3");
	g_assert_cmpstr(img->config.working_dir, ==, "/w");
	g_assert_cmpstr(img->config.user, ==, "app");
	g_free(motd);
}

/* The number of entries in $HUSK_HOME/oci/SUB. */
static int cache_entries(const char *sub)
{
	char *cache = oci_cache_dir(), *dir = g_build_filename(cache, sub, NULL);
	GDir *d = g_dir_open(dir, 0, NULL);
	int n = 0;

	while (d && g_dir_read_name(d))
		n++;
	if (d)
		g_dir_close(d);
	g_free(dir);
	g_free(cache);
	return n;
}

static void make_simple(struct image_files *f, const char *top, const char *ref)
{
	GBytes *layers[2] = {layer_one(), layer_two()};

	files_init(f, top, "img");
	char *desc = manifest_add(f, layers, 2, "amd64", ref);
	index_add(f, "index.json", desc);
	g_free(desc);
	g_bytes_unref(layers[0]);
	g_bytes_unref(layers[1]);
}

static void test_layout(struct fixture *fx, gconstpointer data)
{
	struct image_files f;
	GError *err = NULL;

	make_simple(&f, fx->top, "1.0");
	struct oci_image *img = oci_image_open(f.dir, &err);
	g_assert_no_error(err);
	check_image(img);
	g_assert_true(g_str_has_prefix(img->root, fx->home));
	oci_image_free(img);
	/* By tag; and a second open reuses the root. */
	char *ref = g_strdup_printf("%s:1.0", f.dir);
	img = oci_image_open(ref, &err);
	g_assert_no_error(err);
	check_image(img);
	oci_image_free(img);
	g_assert_cmpint(cache_entries("roots"), ==, 1);
	g_assert_cmpint(cache_entries("tmp"), ==, 0);
	g_free(ref);
	ref = g_strdup_printf("%s:2.0", f.dir);
	g_assert_null(oci_image_open(ref, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_nonnull(strstr(err->message, "no image tagged \"2.0\" (it has: 1.0)"));
	g_clear_error(&err);
	g_free(ref);
	files_clear(&f);
}

static void test_archive(struct fixture *fx, gconstpointer data)
{
	struct image_files f;
	GError *err = NULL;

	make_simple(&f, fx->top, "1.0");
	char *tar = files_archive(&f), *ref = g_strdup_printf("%s:1.0", tar);
	struct oci_image *img = oci_image_open(ref, &err);
	g_assert_no_error(err);
	check_image(img);
	oci_image_free(img);
	g_free(ref);
	g_free(tar);
	files_clear(&f);
}

static void test_docker_save(struct fixture *fx, gconstpointer data)
{
	struct image_files f;
	struct tar t;
	GError *err = NULL;

	files_init(&f, fx->top, "docker");
	tar_begin(&t, TAR_PLAIN);
	tar_add(&t, 'f', "etc/motd", "docker", 0644);
	tar_add(&t, 'f', "etc/doomed", "x", 0644);
	GBytes *l1 = tar_end(&t);
	tar_begin(&t, TAR_PLAIN);
	tar_add(&t, 'f', "etc/.wh.doomed", "", 0644);
	GBytes *l2 = tar_end(&t);
	char *d1 = tar_digest(l1), *d2 = tar_digest(l2);
	files_add(&f, "aaa/layer.tar", l1);
	files_add(&f, "bbb/layer.tar", l2);
	char *cfg = g_strdup_printf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":"
	                            "{\"Cmd\":[\"/bin/true\"]},\"rootfs\":{\"type\":\"layers\","
	                            "\"diff_ids\":[\"%s\",\"%s\"]}}",
	                            d1, d2);
	GBytes *cb = text(cfg);
	char *cd = tar_digest(cb), *cname = g_strdup_printf("%s.json", cd + 7);
	files_add(&f, cname, cb);
	char *mj = g_strdup_printf("[{\"Config\":\"%s\",\"RepoTags\":[\"web:1.2\"],"
	                           "\"Layers\":[\"aaa/layer.tar\",\"bbb/layer.tar\"]}]",
	                           cname);
	GBytes *mb = text(mj);
	files_add(&f, "manifest.json", mb);
	char *tar = files_archive(&f), *ref = g_strdup_printf("%s:1.2", tar);
	struct oci_image *img = oci_image_open(ref, &err);
	g_assert_no_error(err);
	char *motd = read_in(img->root, "etc/motd"), *doomed = read_in(img->root, "etc/doomed");
	g_assert_cmpstr(motd, ==, "docker");
	g_assert_null(doomed);
	g_assert_cmpstr(img->config.cmd[0], ==, "/bin/true");
	oci_image_free(img);
	g_free(motd);
	g_free(ref);
	g_free(tar);
	g_free(mj);
	g_bytes_unref(mb);
	g_free(cname);
	g_free(cd);
	g_bytes_unref(cb);
	g_free(cfg);
	g_free(d1);
	g_free(d2);
	g_bytes_unref(l1);
	g_bytes_unref(l2);
	files_clear(&f);
}

/* An index of indexes with arm64 and amd64: amd64 is picked; arm64 alone is an error. */
static void test_platforms(struct fixture *fx, gconstpointer data)
{
	struct image_files f;
	GBytes *layers[2] = {layer_one(), layer_two()};
	GError *err = NULL;

	files_init(&f, fx->top, "multi");
	char *arm = manifest_add(&f, layers, 1, "arm64", NULL);
	char *amd = manifest_add(&f, layers, 2, "amd64", NULL);
	char *both = g_strdup_printf("{\"schemaVersion\":2,\"manifests\":[%s,%s]}", arm, amd);
	GBytes *inner = text(both);
	char *inner_digest = blob_add(&f, inner);
	char *top =
	    g_strdup_printf("{\"mediaType\":\"" INDEX_TYPE "\",\"digest\":\"%s\",\"size\":%zu,"
	                    "\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}",
	                    inner_digest, strlen(both));
	index_add(&f, "index.json", top);
	struct oci_image *img = oci_image_open(f.dir, &err);
	g_assert_no_error(err);
	check_image(img);
	oci_image_free(img);

	index_add(&f, "index.json", arm);
	g_assert_null(oci_image_open(f.dir, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_nonnull(strstr(err->message, "no linux/amd64 image (it has: linux/arm64)"));
	g_clear_error(&err);
	g_free(top);
	g_free(inner_digest);
	g_bytes_unref(inner);
	g_free(both);
	g_free(arm);
	g_free(amd);
	g_bytes_unref(layers[0]);
	g_bytes_unref(layers[1]);
	files_clear(&f);
}

/* A layer that is not what its digest says: an error, and nothing left in the cache. */
static void test_corrupt_layer(struct fixture *fx, gconstpointer data)
{
	struct image_files f;
	GError *err = NULL;

	make_simple(&f, fx->top, NULL);
	/* What a killed husk left two days ago goes; what another is unpacking stays. */
	char *cache = oci_cache_dir(),
	     *old = g_build_filename(cache, "tmp", "root-old", "etc", NULL);
	char *recent = g_build_filename(cache, "tmp", "root-now", NULL);
	g_assert_cmpint(g_mkdir_with_parents(old, 0755), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(recent, 0755), ==, 0);
	char *old_top = g_path_get_dirname(old);
	struct utimbuf two_days = {.actime = time(NULL) - 2 * 86400,
	                           .modtime = time(NULL) - 2 * 86400};
	g_assert_cmpint(utime(old_top, &two_days), ==, 0);
	/* The second layer's blob, replaced by the first's bytes under its name. */
	GBytes *one = layer_one(), *two = layer_two();
	char *d2 = tar_digest(two);
	char *path = g_strdup_printf("%s/blobs/sha256/%s", f.dir, d2 + 7);
	gsize len;
	const char *bytes = g_bytes_get_data(one, &len);
	g_assert_true(g_file_set_contents(path, bytes, (gssize)len, NULL));
	g_assert_null(oci_image_open(f.dir, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_nonnull(strstr(err->message, "does not match the digest"));
	g_clear_error(&err);
	g_assert_cmpint(cache_entries("roots"), ==, 0);
	g_assert_false(g_file_test(old_top, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(recent, G_FILE_TEST_IS_DIR));
	g_assert_cmpint(cache_entries("tmp"), ==, 1);
	g_free(old_top);
	g_free(recent);
	g_free(old);
	g_free(cache);
	g_free(path);
	g_free(d2);
	g_bytes_unref(one);
	g_bytes_unref(two);
	files_clear(&f);
}

static void test_not_images(struct fixture *fx, gconstpointer data)
{
	const char *bad[] = {"empty", "garbage.tar", "index-not-json", "missing"};
	char *dir = g_build_filename(fx->top, "empty", NULL);
	char *garbage = g_build_filename(fx->top, "garbage.tar", NULL);
	char *notjson = g_build_filename(fx->top, "index-not-json", NULL);
	char *idx = g_build_filename(notjson, "index.json", NULL);
	GError *err = NULL;

	g_mkdir(dir, 0755);
	g_mkdir(notjson, 0755);
	g_file_set_contents(garbage, "this is not a tar archive at all", -1, NULL);
	g_file_set_contents(idx, "{\"manifests\": [[[[", -1, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *path = g_build_filename(fx->top, bad[i], NULL);
		g_assert_null(oci_image_open(path, &err));
		g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
		g_test_message("%s: %s", bad[i], err->message);
		g_assert_null(strchr(err->message, '\n'));
		g_clear_error(&err);
		g_free(path);
	}
	g_free(idx);
	g_free(notjson);
	g_free(garbage);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, struct fixture, NULL, setup, fn, teardown)
	ADD("/oci/image/layout", test_layout);
	ADD("/oci/image/archive", test_archive);
	ADD("/oci/image/docker-save", test_docker_save);
	ADD("/oci/image/platforms", test_platforms);
	ADD("/oci/image/corrupt-layer", test_corrupt_layer);
	ADD("/oci/image/not-images", test_not_images);
	return g_test_run();
}
