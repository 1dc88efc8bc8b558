// SPDX-License-Identifier: MIT
/*
 * An image's layers, unpacked with libarchive into one root folder.
 *
 * A layer is untrusted: its paths may climb out ("../x"), pass through a
 * symbolic link it planted ("lib -> /etc", then "lib/passwd"), hard-link a
 * host file, or whiteout something through a link. libarchive's secure
 * extraction flags refuse the first two for the files it writes; the rest
 * (whiteouts, opaque folders, hard-link targets, folders) husk does itself,
 * resolving every path under the root with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), so nothing is ever looked up through a link.
 *
 * Folders are made by husk, writable, and get their own permissions and
 * times only at the end, after every layer: a later layer may write into a
 * folder an earlier one made read-only, and no path is chmod-ed by name
 * after a later entry could have made one of its parts a link.
 */
#include "vmm/oci/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vmm/error.h"

#define WHITEOUT         ".wh."
#define OPAQUE           ".wh..wh..opq"
#define MAX_PATH_LEN     4096
#define MAX_REMOVE_DEPTH 2048
#define READ_CHUNK       (128 * 1024)

struct dir_meta {
	char *path;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
};

struct oci_unpack {
	int rootfd;
	int flags;        /* libarchive's extraction flags */
	GHashTable *dirs; /* path -> struct dir_meta: the last layer's word on each folder */
};

/* --- paths ----------------------------------------------------------------- */

char *oci_clean_path(const char *path)
{
	if (!path || strlen(path) >= MAX_PATH_LEN)
		return NULL;
	char **parts = g_strsplit(path, "/", -1);
	GString *out = g_string_new(NULL);
	bool ok = true;

	for (char **p = parts; ok && *p; p++) {
		if (!**p || strcmp(*p, ".") == 0)
			continue;
		if (strcmp(*p, "..") == 0)
			ok = false;
		else
			g_string_append_printf(out, "%s%s", out->len ? "/" : "", *p);
	}
	g_strfreev(parts);
	return g_string_free(out, !ok);
}

bool oci_digest_valid(const char *digest)
{
	const char *colon = digest ? strchr(digest, ':') : NULL;
	size_t want;

	if (!colon)
		return false;
	if (colon - digest == 6 && strncmp(digest, "sha256", 6) == 0)
		want = 64;
	else if (colon - digest == 6 && strncmp(digest, "sha512", 6) == 0)
		want = 128;
	else
		return false;
	if (strlen(colon + 1) != want)
		return false;
	for (const char *c = colon + 1; *c; c++)
		if (!g_ascii_isdigit(*c) && !(*c >= 'a' && *c <= 'f'))
			return false;
	return true;
}

int oci_open_beneath(int rootfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
}

/* --- removing ------------------------------------------------------------------ */

static void remove_at(int dirfd, const char *name, int depth)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT || depth > MAX_REMOVE_DEPTH)
		return;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		/* Ours, though perhaps read-only: made writable to empty it. */
		fchmod(fd, 0700);
		DIR *d = fdopendir(fd);
		GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
		struct dirent *de;
		/* Names first, then removal: readdir need not agree with a folder that shrinks. */
		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				g_ptr_array_add(names, g_strdup(de->d_name));
		for (guint i = 0; i < names->len; i++)
			remove_at(fd, names->pdata[i], depth + 1);
		g_ptr_array_unref(names);
		if (d)
			closedir(d);
		else
			close(fd);
	}
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

void oci_remove_tree(const char *dir)
{
	remove_at(AT_FDCWD, dir, 0);
}

/* --- entries --------------------------------------------------------------------- */

/* The folder a path's entry goes in, opened; -1 with errno when there is none to use. */
static int open_parent(int rootfd, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	char *parent = slash ? g_strndup(path, (size_t)(slash - path)) : g_strdup("");
	int fd = oci_open_beneath(rootfd, parent, O_RDONLY | O_DIRECTORY);

	g_free(parent);
	*name = slash ? slash + 1 : path;
	return fd;
}

static bool refuse_link_in_path(const char *what, const char *path, GError **err)
{
	if (errno == ELOOP || errno == EXDEV)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s \"%s\" goes through a symbolic link",
		                 what, path);
	return husk_fail(err, HUSK_EXIT_USAGE, "%s \"%s\": %s", what, path, g_strerror(errno));
}

/* ".wh.NAME": NAME from the layers below is gone. */
static bool whiteout(struct oci_unpack *u, const char *path, GError **err)
{
	const char *name;
	int fd = open_parent(u->rootfd, path, &name);

	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR
		           ? true
		           : refuse_link_in_path("whiteout", path, err);
	const char *target = name + strlen(WHITEOUT);
	bool ok = *target && strcmp(target, ".") && strcmp(target, "..");
	if (ok)
		remove_at(fd, target, 0);
	close(fd);
	return ok || husk_fail(err, HUSK_EXIT_USAGE, "whiteout \"%s\" names no file", path);
}

/* ".wh..wh..opq": the folder holds nothing from the layers below (but keeps this layer's). */
static bool opaque(struct oci_unpack *u, const char *path, GHashTable *made, GError **err)
{
	const char *name;
	int parent = open_parent(u->rootfd, path, &name);

	if (parent < 0)
		return errno == ENOENT || errno == ENOTDIR
		           ? true
		           : refuse_link_in_path("opaque", path, err);
	DIR *d = fdopendir(parent);
	struct dirent *de;
	GPtrArray *doomed = g_ptr_array_new_with_free_func(g_free);
	char *dir = g_path_get_dirname(path);

	while (d && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *child = strcmp(dir, ".") ? g_strdup_printf("%s/%s", dir, de->d_name)
		                               : g_strdup(de->d_name);
		if (!g_hash_table_contains(made, child))
			g_ptr_array_add(doomed, g_strdup(de->d_name));
		g_free(child);
	}
	for (guint i = 0; i < doomed->len; i++)
		remove_at(dirfd(d), doomed->pdata[i], 0);
	if (d)
		closedir(d);
	g_ptr_array_unref(doomed);
	g_free(dir);
	return true;
}

/* A hard link's target: a file this root already holds, reached without links. */
static bool check_hardlink(struct oci_unpack *u, const char *target, GError **err)
{
	int fd = oci_open_beneath(u->rootfd, target, O_PATH | O_NOFOLLOW);
	struct stat st;
	bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);

	if (fd >= 0)
		close(fd);
	return ok || husk_fail(err, HUSK_EXIT_USAGE,
	                       "hard link to \"%s\": not a file inside the image", target);
}

/* Folders are husk's to make: writable now, their own mode at the end. */
static bool make_dir(struct oci_unpack *u, const char *path, struct archive_entry *e, GError **err)
{
	const char *name;
	int parent = open_parent(u->rootfd, path, &name);
	struct stat st;

	if (parent < 0 && errno == ENOENT) {
		/* A folder whose parents the layer did not list: make them first. */
		char *up = g_path_get_dirname(path);
		bool ok = make_dir(u, up, NULL, err);
		g_free(up);
		if (!ok)
			return false;
		parent = open_parent(u->rootfd, path, &name);
	}
	if (parent < 0)
		return refuse_link_in_path("folder", path, err);
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		remove_at(parent, name, 0);
	int r = mkdirat(parent, name, 0700);
	int saved = errno;
	close(parent);
	if (r && saved != EEXIST) {
		errno = saved;
		return refuse_link_in_path("folder", path, err);
	}
	/* A folder made only to hold others gets what tar gives such folders. */
	if (e || !g_hash_table_contains(u->dirs, path)) {
		struct dir_meta *m = g_new(struct dir_meta, 1);
		*m = (struct dir_meta){.path = g_strdup(path), .mode = 0755};
		if (e) {
			m->mode = archive_entry_perm(e);
			m->uid = (uid_t)archive_entry_uid(e);
			m->gid = (gid_t)archive_entry_gid(e);
			m->mtime =
			    (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
		} else {
			clock_gettime(CLOCK_REALTIME, &m->mtime);
		}
		g_hash_table_replace(u->dirs, m->path, m);
	}
	return true;
}

static void remember_made(GHashTable *made, const char *path)
{
	char *p = g_strdup(path);

	/* The path and every folder above it now hold this layer's content. */
	for (;;) {
		g_hash_table_add(made, g_strdup(p));
		char *slash = strrchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	g_free(p);
}

static bool copy_data(struct archive *in, struct archive *out, GError **err)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(in, &buf, &size, &off)) == ARCHIVE_OK)
		if (archive_write_data_block(out, buf, size, off) < ARCHIVE_WARN)
			return husk_fail(err, HUSK_EXIT_USAGE, "%s", archive_error_string(out));
	if (r != ARCHIVE_EOF)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s", archive_error_string(in));
	return true;
}

static bool write_entry(struct oci_unpack *u, struct archive *in, struct archive *out,
                        struct archive_entry *e, const char *path, GError **err)
{
	const char *link = archive_entry_hardlink(e), *name;
	int parent = open_parent(u->rootfd, path, &name);

	/* libarchive would replace a link on the way with a folder; a layer that tries is
	 * refused instead. A folder where a file goes is replaced, whole, as a
	 * whiteout would remove it (libarchive only removes an empty one). */
	struct stat st;
	if (parent >= 0) {
		if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			remove_at(parent, name, 0);
		close(parent);
	} else if (errno == ELOOP || errno == EXDEV) {
		return refuse_link_in_path("file", path, err);
	}
	if (link) {
		char *target = oci_clean_path(link);
		bool ok = target && *target && check_hardlink(u, target, err);
		if (!target || !*target)
			husk_fail(err, HUSK_EXIT_USAGE,
			          "hard link \"%s\" -> \"%s\" leaves the image", path, link);
		if (ok)
			archive_entry_set_hardlink(e, target);
		g_free(target);
		if (!ok)
			return false;
	}
	archive_entry_set_pathname(e, path);
	if (archive_write_header(out, e) < ARCHIVE_WARN)
		return husk_fail(err, HUSK_EXIT_USAGE, "\"%s\": %s", path,
		                 archive_error_string(out));
	if (archive_entry_size(e) > 0 && !copy_data(in, out, err))
		return false;
	if (archive_write_finish_entry(out) < ARCHIVE_WARN)
		return husk_fail(err, HUSK_EXIT_USAGE, "\"%s\": %s", path,
		                 archive_error_string(out));
	return true;
}

static bool apply_entry(struct oci_unpack *u, struct archive *in, struct archive *out,
                        struct archive_entry *e, GHashTable *made, GError **err)
{
	const char *raw = archive_entry_pathname(e);
	char *path = oci_clean_path(raw);
	bool ok = true;

	if (!path)
		return husk_fail(err, HUSK_EXIT_USAGE, "\"%s\" leaves the image's root",
		                 raw ? raw : "(no name)");
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	mode_t type = archive_entry_filetype(e);

	if (!*path) {
		/* The root itself: nothing to make. */
	} else if (strcmp(base, OPAQUE) == 0) {
		ok = opaque(u, path, made, err);
	} else if (g_str_has_prefix(base, WHITEOUT)) {
		ok = whiteout(u, path, err);
	} else if (type == AE_IFDIR) {
		ok = make_dir(u, path, e, err);
		remember_made(made, path);
	} else if (archive_entry_hardlink(e) || type == AE_IFREG || type == AE_IFLNK ||
	           type == AE_IFIFO) {
		/* Device nodes and sockets are skipped: a container's /dev is the guest's own. */
		ok = write_entry(u, in, out, e, path, err);
		remember_made(made, path);
	}
	g_free(path);
	return ok;
}

/* --- reading a layer, hashing what is read ---------------------------------------- */

struct feed {
	oci_read_fn read;
	void *ctx;
	GChecksum *sum;
	GError *err;
	bool eof;
	char buf[READ_CHUNK];
};

static la_ssize_t feed_read(struct archive *a, void *data, const void **out)
{
	struct feed *f = data;

	if (f->eof)
		return 0;
	gssize n = f->read(f->ctx, f->buf, sizeof(f->buf), &f->err);
	if (n < 0) {
		archive_set_error(a, EIO, "%s", f->err ? f->err->message : "read error");
		return -1;
	}
	f->eof = n == 0;
	g_checksum_update(f->sum, (const guchar *)f->buf, n);
	*out = f->buf;
	return n;
}

/* After the tar's end: the rest of the blob (padding) still counts for the digest. */
static bool feed_drain(struct feed *f)
{
	const void *ignored;

	while (!f->eof)
		if (feed_read(NULL, f, &ignored) < 0)
			return false;
	return true;
}

static bool read_entries(struct oci_unpack *u, struct archive *in, GError **err)
{
	struct archive *out = archive_write_disk_new();
	struct archive_entry *e;
	GHashTable *made = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	bool ok = true;
	int r;

	archive_write_disk_set_options(out, u->flags);
	archive_write_disk_set_standard_lookup(out);
	while (ok && (r = archive_read_next_header(in, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			ok = husk_fail(err, HUSK_EXIT_USAGE, "%s", archive_error_string(in));
		else
			ok = apply_entry(u, in, out, e, made, err);
	}
	if (archive_write_close(out) < ARCHIVE_WARN && ok)
		ok = husk_fail(err, HUSK_EXIT_USAGE, "%s", archive_error_string(out));
	archive_write_free(out);
	g_hash_table_unref(made);
	return ok;
}

static GChecksumType digest_type(const char *digest)
{
	return g_str_has_prefix(digest, "sha512:") ? G_CHECKSUM_SHA512 : G_CHECKSUM_SHA256;
}

/* libarchive writes by relative path: from inside the root, then back. */
static bool unpack_in_root(struct oci_unpack *u, struct archive *in, GError **err)
{
	int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (here < 0 || fchdir(u->rootfd)) {
		if (here >= 0)
			close(here);
		return husk_fail(err, HUSK_EXIT_RUNTIME, "cannot enter the image's root: %s",
		                 g_strerror(errno));
	}
	bool ok = read_entries(u, in, err);
	if (fchdir(here))
		ok = ok && husk_fail(err, HUSK_EXIT_RUNTIME, "cannot return to the working folder");
	close(here);
	return ok;
}

bool oci_unpack_layer(struct oci_unpack *u, oci_read_fn read, void *ctx, const char *digest,
                      GError **err)
{
	if (!oci_digest_valid(digest))
		return husk_fail(err, HUSK_EXIT_USAGE, "layer: \"%s\" is not a digest", digest);
	/* Field by field: the read buffer, 128 KiB, needs no zeroing. */
	struct feed *f = g_new(struct feed, 1);
	struct archive *in = archive_read_new();
	GError *local = NULL;

	f->read = read;
	f->ctx = ctx;
	f->sum = g_checksum_new(digest_type(digest));
	f->err = NULL;
	f->eof = false;
	archive_read_support_filter_gzip(in);
	archive_read_support_filter_zstd(in);
	archive_read_support_filter_none(in);
	archive_read_support_format_tar(in);
	bool ok = archive_read_open(in, f, NULL, feed_read, NULL) == ARCHIVE_OK
	              ? unpack_in_root(u, in, &local)
	              : husk_fail(&local, HUSK_EXIT_USAGE, "%s", archive_error_string(in));
	ok = ok && feed_drain(f);
	archive_read_free(in);
	/* A read error says more than what libarchive made of it. */
	if (f->err) {
		g_clear_error(&local);
		local = g_steal_pointer(&f->err);
		ok = false;
	}
	const char *want = strchr(digest, ':') + 1;
	if (ok && strcmp(g_checksum_get_string(f->sum), want) != 0)
		ok = husk_fail(&local, HUSK_EXIT_USAGE, "its content does not match the digest");
	if (!ok)
		g_propagate_prefixed_error(err, local, "layer %.19s: ", digest);
	g_checksum_free(f->sum);
	g_free(f);
	return ok;
}

static void free_dir_meta(gpointer p)
{
	g_free(((struct dir_meta *)p)->path);
	g_free(p);
}

struct oci_unpack *oci_unpack_new(const char *root, GError **err)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", root, g_strerror(errno));
		return NULL;
	}
	struct oci_unpack *u = g_new0(struct oci_unpack, 1);
	u->rootfd = fd;
	u->dirs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, free_dir_meta);
	u->flags = ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
	           ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK |
	           ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME;
	/* Owners only when we may give files away; otherwise they are the user's. */
	if (geteuid() == 0)
		u->flags |= ARCHIVE_EXTRACT_OWNER;
	return u;
}

static void free_unpack(struct oci_unpack *u)
{
	g_hash_table_unref(u->dirs);
	close(u->rootfd);
	g_free(u);
}

void oci_unpack_abort(struct oci_unpack *u)
{
	if (u)
		free_unpack(u);
}

static gint deepest_first(gconstpointer a, gconstpointer b)
{
	const struct dir_meta *x = a, *y = b;
	int dx = 0, dy = 0;

	for (const char *c = x->path; *c; c++)
		dx += *c == '/';
	for (const char *c = y->path; *c; c++)
		dy += *c == '/';
	return dy - dx;
}

bool oci_unpack_finish(struct oci_unpack *u, GError **err)
{
	/* Children before their parents, whose times nothing changes after. */
	GList *dirs = g_list_sort(g_hash_table_get_values(u->dirs), deepest_first);

	for (GList *l = dirs; l; l = l->next) {
		struct dir_meta *m = l->data;
		int fd = oci_open_beneath(u->rootfd, m->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (fd < 0)
			continue; /* a later layer removed it, or made it something else */
		if (geteuid() == 0 && fchown(fd, m->uid, m->gid))
			g_debug("chown %s: %s", m->path, g_strerror(errno));
		fchmod(fd, m->mode & 07777);
		struct timespec times[2] = {m->mtime, m->mtime};
		futimens(fd, times);
		close(fd);
	}
	g_list_free(dirs);
	free_unpack(u);
	return true;
}
