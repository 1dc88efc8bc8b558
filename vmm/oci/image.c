// SPDX-License-Identifier: MIT
/*
 * From an image reference to a root folder and a configuration.
 *
 * Sources: an OCI image layout folder (oci-layout, index.json, blobs/) or
 * an archive of one (what `docker save` writes since Docker 25, and
 * skopeo/umoci/buildx), or the older `docker save` archive (manifest.json,
 * HEX.json, HEX/layer.tar). An archive is read by libarchive: once for its
 * small files (the JSON documents), then once per layer not yet cached,
 * streamed into the unpacker, never copied out whole.
 *
 * Every blob is checked against its digest: index -> manifest -> config
 * by their descriptors, layers by the manifest's digests (OCI) or the
 * config's diff_ids (docker save, whose layers are plain tar).
 *
 * The cache: $HUSK_HOME/oci/roots/KEY, where KEY hashes the verified
 * digests of the image's layers in order, so images built on the same
 * layers share one root. A root is unpacked in $HUSK_HOME/oci/tmp and
 * renamed into place whole: a root that exists is complete.
 */
#include "vmm/oci/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/instance/instance.h"
#include "vmm/oci/layer.h"

#define SMALL_FILES_MAX (256 * 1024 * 1024) /* what an archive's first pass keeps in memory */
#define MAX_INDEX_DEPTH 4
#define STALE_S         (24 * 3600)
#define PLATFORM_OS     "linux"
#define PLATFORM_ARCH   "amd64"

struct source {
	char *path;        /* as given, for messages */
	int dirfd;         /* a layout folder, or -1 for an archive */
	GHashTable *files; /* archive: clean name -> GBytes, the small files */
};

char *oci_cache_dir(void)
{
	char *home = instance_home();
	char *dir = g_build_filename(home, "oci", NULL);

	g_free(home);
	return dir;
}

/* --- reading a source --------------------------------------------------------------- */

static GBytes *read_small_fd(int fd, const char *name, GError **err)
{
	struct stat st;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s is not a file", name);
		return NULL;
	}
	if (st.st_size > OCI_JSON_MAX) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: bigger than %d bytes", name, OCI_JSON_MAX);
		return NULL;
	}
	char *buf = g_malloc((gsize)st.st_size + 1);
	gsize got = 0;
	ssize_t n;
	while (got < (gsize)st.st_size && (n = read(fd, buf + got, (gsize)st.st_size - got)) > 0)
		got += (gsize)n;
	return g_bytes_new_take(buf, got);
}

/* A JSON document of the image, whole. */
static GBytes *source_small(struct source *s, const char *name, GError **err)
{
	if (s->dirfd < 0) {
		GBytes *b = g_hash_table_lookup(s->files, name);
		if (!b)
			husk_fail(err, HUSK_EXIT_USAGE, "%s: no %s in the archive", s->path, name);
		return b ? g_bytes_ref(b) : NULL;
	}
	int fd = oci_open_beneath(s->dirfd, name, O_RDONLY | O_NOFOLLOW);
	if (fd < 0) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: no %s", s->path, name);
		return NULL;
	}
	GBytes *b = read_small_fd(fd, name, err);
	close(fd);
	if (!b)
		g_prefix_error(err, "%s: ", s->path);
	return b;
}

static bool source_has(struct source *s, const char *name)
{
	if (s->dirfd < 0)
		return g_hash_table_contains(s->files, name);
	int fd = oci_open_beneath(s->dirfd, name, O_PATH | O_NOFOLLOW);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static struct archive *archive_open(const char *path, GError **err)
{
	struct archive *a = archive_read_new();

	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_none(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: not an image archive (%s)", path,
		          archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* The first pass over an archive: its small files, by clean name. */
static bool archive_index(struct source *s, GError **err)
{
	struct archive *a = archive_open(s->path, err);
	struct archive_entry *e;
	gsize kept = 0;
	int r;

	if (!a)
		return false;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		char *name = oci_clean_path(archive_entry_pathname(e));
		la_int64_t size = archive_entry_size(e);
		if (name && archive_entry_filetype(e) == AE_IFREG && size <= OCI_JSON_MAX &&
		    kept + (gsize)size <= SMALL_FILES_MAX) {
			char *buf = g_malloc((gsize)size + 1);
			la_ssize_t n = archive_read_data(a, buf, (size_t)size);
			if (n != size) {
				g_free(buf);
				g_free(name);
				r = ARCHIVE_FATAL;
				break;
			}
			kept += (gsize)size;
			g_hash_table_replace(s->files, name, g_bytes_new_take(buf, (gsize)size));
		} else {
			g_free(name);
		}
	}
	bool ok = r == ARCHIVE_EOF || husk_fail(err, HUSK_EXIT_USAGE, "%s: a broken archive (%s)",
	                                        s->path, archive_error_string(a));
	archive_read_free(a);
	return ok;
}

static bool source_open(struct source *s, const char *path, GError **err)
{
	struct stat st;

	s->path = g_strdup(path);
	s->dirfd = -1;
	s->files =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
	if (stat(path, &st))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: %s", path, g_strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return s->dirfd >= 0 ||
		       husk_fail(err, HUSK_EXIT_USAGE, "%s: %s", path, g_strerror(errno));
	}
	return archive_index(s, err);
}

static void source_close(struct source *s)
{
	if (s->dirfd >= 0)
		close(s->dirfd);
	g_hash_table_unref(s->files);
	g_free(s->path);
}

/* A blob's name in a layout: blobs/ALGORITHM/HEX. */
static char *blob_path(const char *digest)
{
	const char *colon = strchr(digest, ':');

	return g_strdup_printf("blobs/%.*s/%s", (int)(colon - digest), digest, colon + 1);
}

static bool bytes_match(GBytes *b, const char *digest)
{
	GChecksumType type =
	    g_str_has_prefix(digest, "sha512:") ? G_CHECKSUM_SHA512 : G_CHECKSUM_SHA256;
	gsize len;
	const guchar *data = g_bytes_get_data(b, &len);
	char *sum = g_compute_checksum_for_data(type, data, len);
	bool ok = strcmp(sum, strchr(digest, ':') + 1) == 0;

	g_free(sum);
	return ok;
}

/* A document blob, checked against its digest. */
static GBytes *source_blob(struct source *s, const char *digest, const char *what, GError **err)
{
	char *name = blob_path(digest);
	GBytes *b = source_small(s, name, err);

	g_free(name);
	if (b && !bytes_match(b, digest)) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: the %s %.19s does not match its digest",
		          s->path, what, digest);
		g_clear_pointer(&b, g_bytes_unref);
	}
	return b;
}

/* --- streaming a layer --------------------------------------------------------------- */

struct stream {
	int fd;            /* a layout's blob */
	struct archive *a; /* or the archive, at the layer's entry */
	GBytes *bytes;     /* or a small layer the first pass kept */
	gsize done;
};

static gssize stream_read(void *ctx, void *buf, gsize len, GError **err)
{
	struct stream *st = ctx;

	if (st->bytes) {
		gsize total;
		const char *data = g_bytes_get_data(st->bytes, &total);
		gsize n = MIN(len, total - st->done);
		memcpy(buf, data + st->done, n);
		st->done += n;
		return (gssize)n;
	}
	if (st->a) {
		la_ssize_t n = archive_read_data(st->a, buf, len);
		if (n < 0)
			husk_fail(err, HUSK_EXIT_USAGE, "%s", archive_error_string(st->a));
		return n < 0 ? -1 : n;
	}
	ssize_t n;
	while ((n = read(st->fd, buf, len)) < 0 && errno == EINTR)
		;
	if (n < 0)
		husk_fail(err, HUSK_EXIT_USAGE, "%s", g_strerror(errno));
	return n;
}

/* Positions an archive at the entry called name. */
static struct archive *archive_seek(struct source *s, const char *name, GError **err)
{
	struct archive *a = archive_open(s->path, err);
	struct archive_entry *e;
	int r;

	while (a && ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)) {
		char *clean = oci_clean_path(archive_entry_pathname(e));
		bool found =
		    clean && strcmp(clean, name) == 0 && archive_entry_filetype(e) == AE_IFREG;
		g_free(clean);
		if (found)
			return a;
	}
	if (a) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: no %s in the archive", s->path, name);
		archive_read_free(a);
	}
	return NULL;
}

static bool unpack_from(struct source *s, struct oci_unpack *u, const char *name,
                        const char *digest, GError **err)
{
	struct stream st = {.fd = -1};

	if (s->dirfd >= 0) {
		st.fd = oci_open_beneath(s->dirfd, name, O_RDONLY | O_NOFOLLOW);
		if (st.fd < 0)
			return husk_fail(err, HUSK_EXIT_USAGE, "%s: no %s", s->path, name);
	} else if ((st.bytes = g_hash_table_lookup(s->files, name))) {
		g_bytes_ref(st.bytes);
	} else if (!(st.a = archive_seek(s, name, err))) {
		return false;
	}
	bool ok = oci_unpack_layer(u, stream_read, &st, digest, err);
	if (st.fd >= 0)
		close(st.fd);
	if (st.a)
		archive_read_free(st.a);
	if (st.bytes)
		g_bytes_unref(st.bytes);
	return ok;
}

/* --- the cache ---------------------------------------------------------------------------- */

static char *root_key(char **digests)
{
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);

	g_checksum_update(sum, (const guchar *)"husk oci root 1\n", -1);
	for (char **d = digests; *d; d++) {
		g_checksum_update(sum, (const guchar *)*d, -1);
		g_checksum_update(sum, (const guchar *)"\n", 1);
	}
	char *key = g_strdup(g_checksum_get_string(sum));
	g_checksum_free(sum);
	return key;
}

/*
 * What an unpacking husk that was killed left in tmp/: anything a day old
 * (an unpacking in progress is minutes old at most).
 */
static void remove_stale(const char *tmpdir)
{
	GDir *d = g_dir_open(tmpdir, 0, NULL);
	const char *name;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	while (d && (name = g_dir_read_name(d))) {
		char *path = g_build_filename(tmpdir, name, NULL);
		struct stat st;
		if (lstat(path, &st) == 0 && now - st.st_mtime > STALE_S)
			oci_remove_tree(path);
		g_free(path);
	}
	if (d)
		g_dir_close(d);
}

/* names[i] in the source, of digest digests[i]: unpacked in order, once. */
static char *cached_root(struct source *s, char **names, char **digests, GError **err)
{
	char *cache = oci_cache_dir(), *key = root_key(digests);
	char *root = g_build_filename(cache, "roots", key, NULL);
	char *tmpdir = g_build_filename(cache, "tmp", NULL);
	char *tmp = g_build_filename(tmpdir, "root-XXXXXX", NULL);
	char *roots = g_build_filename(cache, "roots", NULL);
	struct oci_unpack *u = NULL;
	bool ok = true;

	g_free(key);
	if (g_file_test(root, G_FILE_TEST_IS_DIR))
		goto out;
	remove_stale(tmpdir);
	if (g_mkdir_with_parents(tmpdir, 0700) || g_mkdir_with_parents(roots, 0755) ||
	    !g_mkdtemp(tmp)) {
		ok = husk_fail(err, HUSK_EXIT_RUNTIME, "image cache %s: %s", cache,
		               g_strerror(errno));
		goto out;
	}
	u = oci_unpack_new(tmp, err);
	ok = u != NULL;
	for (guint i = 0; ok && names[i]; i++)
		ok = unpack_from(s, u, names[i], digests[i], err);
	if (ok) {
		ok = oci_unpack_finish(g_steal_pointer(&u), err);
		chmod(tmp, 0755);
	}
	/* Another husk may have unpacked the same root meanwhile: theirs is as good. */
	if (ok && rename(tmp, root) && !g_file_test(root, G_FILE_TEST_IS_DIR))
		ok = husk_fail(err, HUSK_EXIT_RUNTIME, "image cache: cannot rename %s: %s", tmp,
		               g_strerror(errno));
	if (g_file_test(tmp, G_FILE_TEST_EXISTS))
		oci_remove_tree(tmp);
	if (!ok)
		g_prefix_error(err, "%s: ", s->path);
out:
	oci_unpack_abort(u);
	g_free(cache);
	g_free(tmpdir);
	g_free(tmp);
	g_free(roots);
	if (!ok)
		g_clear_pointer(&root, g_free);
	return root;
}

/* --- choosing the image ------------------------------------------------------------------ */

static bool tag_matches(const char *name, const char *tag)
{
	if (!name)
		return false;
	if (strcmp(name, tag) == 0)
		return true;
	size_t n = strlen(name), t = strlen(tag);
	return n > t && name[n - t - 1] == ':' && strcmp(name + n - t, tag) == 0;
}

static bool platform_fits(const struct oci_descriptor *d)
{
	return (!d->os || strcmp(d->os, PLATFORM_OS) == 0) &&
	       (!d->architecture || strcmp(d->architecture, PLATFORM_ARCH) == 0);
}

static char *list_of(GPtrArray *ds, bool platforms)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < ds->len && i < 16; i++) {
		struct oci_descriptor *d = ds->pdata[i];
		if (platforms)
			g_string_append_printf(s, "%s%s/%s", i ? ", " : "", d->os ? d->os : "?",
			                       d->architecture ? d->architecture : "?");
		else
			g_string_append_printf(s, "%s%s", i ? ", " : "",
			                       d->ref_name ? d->ref_name : "(untagged)");
	}
	return g_string_free(s, FALSE);
}

/* The one descriptor of an index that names our image; NULL with err. */
static struct oci_descriptor *pick(struct source *s, GPtrArray *ds, const char *tag, GError **err)
{
	GPtrArray *named = g_ptr_array_new(), *fit = g_ptr_array_new();
	struct oci_descriptor *chosen = NULL;

	for (guint i = 0; i < ds->len; i++)
		if (!tag || tag_matches(((struct oci_descriptor *)ds->pdata[i])->ref_name, tag))
			g_ptr_array_add(named, ds->pdata[i]);
	for (guint i = 0; i < named->len; i++)
		if (platform_fits(named->pdata[i]))
			g_ptr_array_add(fit, named->pdata[i]);
	for (guint i = 0; !tag && fit->len > 1 && i < fit->len; i++)
		if (tag_matches(((struct oci_descriptor *)fit->pdata[i])->ref_name, "latest"))
			chosen = fit->pdata[i];
	if (!chosen && fit->len == 1)
		chosen = fit->pdata[0];
	char *list = NULL;
	if (chosen) {
	} else if (named->len == 0) {
		list = list_of(ds, false);
		husk_fail(err, HUSK_EXIT_USAGE, "%s: no image tagged \"%s\" (it has: %s)", s->path,
		          tag, *list ? list : "none");
	} else if (fit->len == 0) {
		list = list_of(named, true);
		husk_fail(err, HUSK_EXIT_USAGE, "%s: no %s/%s image (it has: %s)", s->path,
		          PLATFORM_OS, PLATFORM_ARCH, list);
	} else {
		list = list_of(fit, false);
		husk_fail(err, HUSK_EXIT_USAGE, "%s: %u images (%s); name one as %s:TAG", s->path,
		          fit->len, list, s->path);
	}
	g_free(list);
	g_ptr_array_unref(named);
	g_ptr_array_unref(fit);
	return chosen;
}

/* From an index to the manifest's bytes, through nested indexes. */
static GBytes *find_manifest(struct source *s, GBytes *index, const char *tag, int depth,
                             GError **err)
{
	gsize len;
	const char *data = g_bytes_get_data(index, &len);
	GPtrArray *ds = oci_index_parse(data, len, err);
	GBytes *out = NULL;

	if (!ds) {
		g_prefix_error(err, "%s: ", s->path);
		return NULL;
	}
	struct oci_descriptor *d = pick(s, ds, tag, err);
	if (d && oci_is_index(d) && depth >= MAX_INDEX_DEPTH) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: indexes nested deeper than %d", s->path,
		          MAX_INDEX_DEPTH);
	} else if (d && oci_is_index(d)) {
		GBytes *inner = source_blob(s, d->digest, "index", err);
		out = inner ? find_manifest(s, inner, NULL, depth + 1, err) : NULL;
		if (inner)
			g_bytes_unref(inner);
	} else if (d) {
		out = source_blob(s, d->digest, "manifest", err);
	}
	g_ptr_array_unref(ds);
	return out;
}

static bool config_fits(struct source *s, const struct oci_config *c, GError **err)
{
	if ((c->os && strcmp(c->os, PLATFORM_OS)) ||
	    (c->architecture && strcmp(c->architecture, PLATFORM_ARCH)))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: the image is for %s/%s, not %s/%s",
		                 s->path, c->os ? c->os : "?",
		                 c->architecture ? c->architecture : "?", PLATFORM_OS,
		                 PLATFORM_ARCH);
	return true;
}

static bool parse_config_bytes(struct source *s, GBytes *b, struct oci_config *c, GError **err)
{
	gsize len;
	const char *data = g_bytes_get_data(b, &len);

	if (!oci_config_parse(data, len, c, err)) {
		g_prefix_error(err, "%s: ", s->path);
		return false;
	}
	if (!config_fits(s, c, err)) {
		oci_config_clear(c);
		return false;
	}
	return true;
}

static bool open_oci(struct source *s, const char *tag, struct oci_image *img, GError **err)
{
	GBytes *index = source_small(s, "index.json", err);
	GBytes *manifest = index ? find_manifest(s, index, tag, 0, err) : NULL;
	struct oci_descriptor config = {0};
	GPtrArray *layers = NULL;
	GBytes *cfg = NULL;
	bool ok = false;

	if (manifest) {
		gsize len;
		const char *data = g_bytes_get_data(manifest, &len);
		if (!oci_manifest_parse(data, len, &config, &layers, err))
			g_prefix_error(err, "%s: ", s->path);
		else
			cfg = source_blob(s, config.digest, "config", err);
	}
	if (cfg && parse_config_bytes(s, cfg, &img->config, err)) {
		char **names = g_new0(char *, layers->len + 1);
		char **digests = g_new0(char *, layers->len + 1);
		for (guint i = 0; i < layers->len; i++) {
			digests[i] = g_strdup(((struct oci_descriptor *)layers->pdata[i])->digest);
			names[i] = blob_path(digests[i]);
		}
		guint diffs = img->config.diff_ids ? g_strv_length(img->config.diff_ids) : 0;
		if (diffs != layers->len)
			husk_fail(err, HUSK_EXIT_USAGE,
			          "%s: %u layers but %u diff_ids in the config", s->path,
			          layers->len, diffs);
		else
			img->root = cached_root(s, names, digests, err);
		ok = img->root != NULL;
		g_strfreev(names);
		g_strfreev(digests);
	}
	oci_descriptor_clear(&config);
	if (layers)
		g_ptr_array_unref(layers);
	if (cfg)
		g_bytes_unref(cfg);
	if (manifest)
		g_bytes_unref(manifest);
	if (index)
		g_bytes_unref(index);
	return ok;
}

static struct docker_image *pick_docker(struct source *s, GPtrArray *images, const char *tag,
                                        GError **err)
{
	for (guint i = 0; tag && i < images->len; i++) {
		struct docker_image *d = images->pdata[i];
		for (char **t = d->repo_tags; t && *t; t++)
			if (tag_matches(*t, tag))
				return d;
	}
	if (!tag && images->len == 1)
		return images->pdata[0];
	if (tag)
		husk_fail(err, HUSK_EXIT_USAGE, "%s: no image tagged \"%s\"", s->path, tag);
	else
		husk_fail(err, HUSK_EXIT_USAGE, "%s: %u images; name one as %s:TAG", s->path,
		          images->len, s->path);
	return NULL;
}

/* "HEX.json" or "blobs/sha256/HEX": the config's name says its digest. */
static char *docker_config_digest(const char *name)
{
	char *base = g_path_get_basename(name);
	char *dot = strrchr(base, '.');
	if (dot && strcmp(dot, ".json") == 0)
		*dot = '\0';
	char *digest = g_strdup_printf("sha256:%s", base);
	g_free(base);
	if (!oci_digest_valid(digest))
		g_clear_pointer(&digest, g_free);
	return digest;
}

static bool open_docker(struct source *s, const char *tag, struct oci_image *img, GError **err)
{
	GBytes *mj = source_small(s, "manifest.json", err);
	gsize len;
	const char *data = mj ? g_bytes_get_data(mj, &len) : NULL;
	GPtrArray *images = data ? docker_manifest_parse(data, len, err) : NULL;
	struct docker_image *d = images ? pick_docker(s, images, tag, err) : NULL;
	char *config_name = d ? oci_clean_path(d->config) : NULL;
	GBytes *cfg = config_name ? source_small(s, config_name, err) : NULL;
	char *config_digest = config_name ? docker_config_digest(config_name) : NULL;
	bool ok = false;

	if (images && !data)
		g_prefix_error(err, "%s: ", s->path);
	if (cfg && config_digest && !bytes_match(cfg, config_digest))
		husk_fail(err, HUSK_EXIT_USAGE, "%s: the config %s does not match its digest",
		          s->path, config_name);
	else if (cfg && parse_config_bytes(s, cfg, &img->config, err)) {
		guint n = g_strv_length(d->layers);
		guint diffs = img->config.diff_ids ? g_strv_length(img->config.diff_ids) : 0;
		char **names = g_new0(char *, n + 1);
		bool names_ok = true;
		for (guint i = 0; i < n; i++)
			names_ok &= (names[i] = oci_clean_path(d->layers[i])) != NULL;
		if (diffs != n || !names_ok)
			husk_fail(err, HUSK_EXIT_USAGE,
			          "%s: %u layers but %u diff_ids in the config", s->path, n, diffs);
		else
			img->root = cached_root(s, names, img->config.diff_ids, err);
		ok = img->root != NULL;
		for (guint i = 0; i < n; i++)
			g_free(names[i]);
		g_free(names);
	}
	if (!ok && d && !config_name && err && !*err)
		husk_fail(err, HUSK_EXIT_USAGE, "%s: the config's name leaves the archive",
		          s->path);
	g_free(config_digest);
	g_free(config_name);
	if (cfg)
		g_bytes_unref(cfg);
	if (images)
		g_ptr_array_unref(images);
	if (mj)
		g_bytes_unref(mj);
	return ok;
}

/* "PATH:TAG" unless PATH:TAG is itself a file; the tag has no '/'. */
static void split_ref(const char *ref, char **path, char **tag)
{
	const char *colon = strrchr(ref, ':');

	*tag = NULL;
	if (colon && colon[1] && !strchr(colon, '/') && !g_file_test(ref, G_FILE_TEST_EXISTS)) {
		*path = g_strndup(ref, (size_t)(colon - ref));
		*tag = g_strdup(colon + 1);
	} else {
		*path = g_strdup(ref);
	}
}

struct oci_image *oci_image_open(const char *ref, GError **err)
{
	struct oci_image *img = g_new0(struct oci_image, 1);
	struct source s;
	char *path, *tag;
	bool ok;

	split_ref(ref, &path, &tag);
	ok = source_open(&s, path, err);
	if (ok && source_has(&s, "index.json"))
		ok = open_oci(&s, tag, img, err);
	else if (ok && source_has(&s, "manifest.json"))
		ok = open_docker(&s, tag, img, err);
	else if (ok)
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "%s: not a container image (no index.json or manifest.json)", path);
	source_close(&s);
	g_free(path);
	g_free(tag);
	if (!ok)
		g_clear_pointer(&img, oci_image_free);
	return img;
}

void oci_image_free(struct oci_image *img)
{
	if (!img)
		return;
	g_free(img->root);
	oci_config_clear(&img->config);
	g_free(img);
}
