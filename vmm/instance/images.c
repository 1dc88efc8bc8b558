// SPDX-License-Identifier: MIT
#include "vmm/instance/images.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/instance/instance.h"

#define DEBIAN "https://cloud.debian.org/images/cloud/"
#define UBUNTU "https://cloud-images.ubuntu.com/"

const struct image_alias image_aliases[] = {
    {"debian-12", "bookworm/latest/debian-12-genericcloud-amd64.qcow2",
     "bookworm/latest/SHA512SUMS", DEBIAN},
    {"debian-13", "trixie/latest/debian-13-genericcloud-amd64.qcow2", "trixie/latest/SHA512SUMS",
     DEBIAN},
    {"ubuntu-22.04", "jammy/current/jammy-server-cloudimg-amd64.img", "jammy/current/SHA256SUMS",
     UBUNTU},
    {"ubuntu-24.04", "noble/current/noble-server-cloudimg-amd64.img", "noble/current/SHA256SUMS",
     UBUNTU},
    {0},
};

const struct image_alias *images_find_alias(const char *name)
{
	for (const struct image_alias *a = image_aliases; a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

char *images_alias_url(const struct image_alias *a, const char *file)
{
	const char *base = g_getenv("HUSK_IMAGE_BASE");

	if (!base || !*base)
		base = a->base;
	return g_strconcat(base, g_str_has_suffix(base, "/") ? "" : "/", file, NULL);
}

char *images_sum_for(const char *sums, const char *file)
{
	char **lines = g_strsplit(sums, "\n", -1);
	char *sum = NULL;

	/* "HEX  NAME" or "HEX *NAME" (binary mode), as sha256sum writes them. */
	for (char **l = lines; *l && !sum; l++) {
		char *space = strchr(*l, ' ');
		if (!space)
			continue;
		const char *name = space + 1 + (space[1] == ' ' || space[1] == '*');
		if (strcmp(g_strchomp(*l + (name - *l)), file) == 0)
			sum = g_ascii_strdown(*l, space - *l);
	}
	g_strfreev(lines);
	return sum;
}

/* --- downloads ------------------------------------------------------------ */

struct transfer {
	FILE *out;
	int write_errno;
	int64_t shown_us;
	curl_off_t resumed;
};

static size_t on_data(char *data, size_t size, size_t n, void *opaque)
{
	struct transfer *t = opaque;
	size_t done = fwrite(data, size, n, t->out);

	if (done != n)
		t->write_errno = errno;
	return done * size;
}

/* A progress line on a terminal, at most ten times a second. */
static int on_progress(void *opaque, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
	struct transfer *t = opaque;
	int64_t us = g_get_monotonic_time();

	if (!isatty(STDERR_FILENO) || us - t->shown_us < 100000 || total <= 0)
		return 0;
	t->shown_us = us;
	total += t->resumed, now += t->resumed;
	int width = 30, filled = (int)(width * now / total);
	fprintf(stderr,
	        "\r\033[Khusk: downloading [%.*s%*s] %3d%% %" CURL_FORMAT_CURL_OFF_T
	        " / %" CURL_FORMAT_CURL_OFF_T " MiB",
	        filled, "##############################", width - filled, "",
	        (int)(100 * now / total), now >> 20, total >> 20);
	return 0;
}

/*
 * Fetches 'url' onto the end of 'path' (resuming what an earlier attempt
 * left there), or into memory when 'path' is NULL.
 */
static bool download(const char *url, const char *path, GString *memory, CURLcode *code,
                     GError **err)
{
	struct transfer t = {0};
	char *tmp = NULL;
	size_t tmp_len = 0;
	struct stat st;

	t.out = path ? fopen(path, "ab") : open_memstream(&tmp, &tmp_len);
	if (!t.out)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path, g_strerror(errno));
	if (path && stat(path, &st) == 0)
		t.resumed = st.st_size;
	CURL *c = curl_easy_init();
	char why[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, why);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, t.resumed);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, path ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
	/* A stalled server: under 1 KiB/s for a minute ends the attempt (resumable). */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	if (code)
		*code = rc;
	bool closed = fclose(t.out) == 0;
	if (path && isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	if (rc == CURLE_OK && closed && !t.write_errno) {
		if (memory)
			g_string_append_len(memory, tmp, (gssize)tmp_len);
		free(tmp);
		return true;
	}
	free(tmp);
	if (t.write_errno || !closed)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path,
		                 g_strerror(t.write_errno ? t.write_errno : errno));
	return husk_fail(err, HUSK_EXIT_RUNTIME, "cannot download %s: %s", url,
	                 *why ? why : curl_easy_strerror(rc));
}

/* Resumes what an earlier attempt left, or starts again where the server cannot. */
static bool download_resuming(const char *url, const char *part, GError **err)
{
	GError *why = NULL;
	CURLcode rc;

	if (download(url, part, NULL, &rc, &why))
		return true;
	if (rc != CURLE_RANGE_ERROR) {
		g_propagate_error(err, why);
		return false;
	}
	g_error_free(why);
	unlink(part);
	return download(url, part, NULL, NULL, err);
}

/* The hex digest of a file, SHA-256 or SHA-512 by the expected digest's length. */
static char *file_digest(const char *path, size_t hex_len, GError **err)
{
	GChecksum *sum = g_checksum_new(hex_len == 128 ? G_CHECKSUM_SHA512 : G_CHECKSUM_SHA256);
	FILE *f = fopen(path, "rb");
	guchar buf[65536];
	size_t n;

	if (!f) {
		g_checksum_free(sum);
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path, g_strerror(errno));
		return NULL;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		g_checksum_update(sum, buf, (gssize)n);
	fclose(f);
	char *hex = g_strdup(g_checksum_get_string(sum));
	g_checksum_free(sum);
	return hex;
}

/*
 * What the image must hash to: --sha256, or the first checksum list of
 * 'sums_urls' (NULL-terminated) that the server has.
 */
static char *expected_sum(const char *url, char **sums_urls, const char *sha256, GError **err)
{
	if (sha256)
		return g_ascii_strdown(sha256, -1);
	GString *sums = g_string_new(NULL);
	char *file = g_path_get_basename(url), *sum = NULL;
	GError *why = NULL;
	char **s = sums_urls;

	while (*s && !download(*s, NULL, sums, NULL, &why) && s[1]) {
		g_clear_error(&why);
		s++;
	}
	if (why) {
		g_propagate_prefixed_error(err, why, "no checksum for the image (give --sha256): ");
	} else {
		sum = images_sum_for(sums->str, file);
		if (!sum)
			husk_fail(err, HUSK_EXIT_USAGE, "%s does not list %s (give --sha256)", *s,
			          file);
	}
	g_string_free(sums, TRUE);
	g_free(file);
	return sum;
}

/* The cache's name for a URL: its file name, after a digest of the whole URL. */
static char *cache_path(const char *url, GError **err)
{
	char *dir = instance_image_cache();
	char *digest = g_compute_checksum_for_string(G_CHECKSUM_SHA256, url, -1);
	char *file = g_path_get_basename(url);
	char *name = g_strdup_printf("%.16s-%s", digest, file);
	char *path = g_build_filename(dir, name, NULL);

	if (g_mkdir_with_parents(dir, 0700) < 0) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", dir, g_strerror(errno));
		g_clear_pointer(&path, g_free);
	}
	g_free(dir);
	g_free(digest);
	g_free(file);
	g_free(name);
	return path;
}

/*
 * Launches take turns at the cache: a second launch of one image waits
 * for the first's download, then finds the image there. A lock on the
 * folder itself leaves no lock files behind.
 */
static int lock_cache(const char *path, GError **err)
{
	char *dir = g_path_get_dirname(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", dir, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	g_free(dir);
	return fd;
}

/* A cached image --sha256 names: it must be that one. */
static char *check_cached(char *path, const char *sha256, GError **err)
{
	char *want = g_ascii_strdown(sha256, -1), *got = file_digest(path, strlen(want), err);
	bool ok = got && strcmp(got, want) == 0;

	if (got && !ok)
		husk_fail(err, HUSK_EXIT_USAGE, "the cached %s does not match --sha256", path);
	g_free(want);
	g_free(got);
	if (!ok)
		g_clear_pointer(&path, g_free);
	return path;
}

static char *fetch_url(const char *url, char **sums_urls, const char *sha256, GError **err)
{
	char *path = cache_path(url, err);
	int lock = path ? lock_cache(path, err) : -1;

	if (lock < 0) {
		g_free(path);
		return NULL;
	}
	if (g_file_test(path, G_FILE_TEST_EXISTS)) {
		close(lock);
		return sha256 ? check_cached(path, sha256, err) : path;
	}
	char *want = expected_sum(url, sums_urls, sha256, err);
	char *part = g_strconcat(path, ".part", NULL);
	char *got = NULL;
	bool ok = want && download_resuming(url, part, err) &&
	          (got = file_digest(part, strlen(want), err)) != NULL;

	if (ok && strcmp(got, want) != 0) {
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "%s does not match its checksum (%s expected, %s downloaded)", url,
		               want, got);
		unlink(part); /* a bad download never resumes */
	}
	if (ok && rename(part, path) < 0)
		ok = husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path, g_strerror(errno));
	/* A failed transfer that got nothing (a 404, say) has nothing to resume. */
	struct stat st;
	if (!ok && stat(part, &st) == 0 && st.st_size == 0)
		unlink(part);
	close(lock);
	g_free(want);
	g_free(got);
	g_free(part);
	if (!ok)
		g_clear_pointer(&path, g_free);
	return path;
}

/* The checksum lists beside an image: Ubuntu's and most others', then Debian's. */
static char **sums_beside(const char *url)
{
	char *dir = g_path_get_dirname(url);
	char **sums = g_new0(char *, 3);

	sums[0] = g_strconcat(dir, "/SHA256SUMS", NULL);
	sums[1] = g_strconcat(dir, "/SHA512SUMS", NULL);
	g_free(dir);
	return sums;
}

char *images_fetch(const char *image, const char *sha256, GError **err)
{
	const struct image_alias *a = images_find_alias(image);
	char *path = NULL;

	if (a) {
		char *url = images_alias_url(a, a->path);
		char *sums[] = {images_alias_url(a, a->sums), NULL};
		path = fetch_url(url, sums, sha256, err);
		g_free(url);
		g_free(sums[0]);
	} else if (g_str_has_prefix(image, "http://") || g_str_has_prefix(image, "https://")) {
		char **sums = sums_beside(image);
		path = fetch_url(image, sums, sha256, err);
		g_strfreev(sums);
	} else if (g_file_test(image, G_FILE_TEST_IS_REGULAR)) {
		path = g_canonicalize_filename(image, NULL);
	} else {
		husk_fail(err, HUSK_EXIT_USAGE,
		          "\"%s\" is not an image file, an http(s):// URL or an alias", image);
	}
	if (!path)
		g_prefix_error(err, "launch: ");
	return path;
}
