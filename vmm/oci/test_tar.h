/* SPDX-License-Identifier: MIT */
/* For the unit tests: tar archives made in memory with libarchive. */
#ifndef HUSK_OCI_TEST_TAR_H
#define HUSK_OCI_TEST_TAR_H

#include <archive.h>
#include <archive_entry.h>
#include <glib.h>
#include <string.h>

enum tar_compression { TAR_PLAIN, TAR_GZIP, TAR_ZSTD };

struct tar {
	struct archive *a;
	char *buf;
	size_t size, used;
};

static inline void tar_begin(struct tar *t, enum tar_compression c)
{
	t->size = 1 << 20; /* meson fills every allocation (MALLOC_PERTURB_): keep it small */
	t->buf = g_malloc(t->size);
	t->used = 0;
	t->a = archive_write_new();
	archive_write_set_format_pax_restricted(t->a);
	if (c == TAR_GZIP)
		archive_write_add_filter_gzip(t->a);
	else if (c == TAR_ZSTD)
		archive_write_add_filter_zstd(t->a);
	g_assert_cmpint(archive_write_open_memory(t->a, t->buf, t->size, &t->used), ==, ARCHIVE_OK);
}

/* type: 'f' file (content), 'd' folder, 'l' symlink (content: target), 'h' hard link (target). */
static inline void tar_add(struct tar *t, char type, const char *path, const char *content,
                           int mode)
{
	struct archive_entry *e = archive_entry_new();
	size_t len = type == 'f' && content ? strlen(content) : 0;

	archive_entry_set_pathname(e, path);
	archive_entry_set_mtime(e, 1700000000, 0);
	archive_entry_set_perm(e, (mode_t)mode);
	switch (type) {
	case 'd':
		archive_entry_set_filetype(e, AE_IFDIR);
		break;
	case 'l':
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, content);
		break;
	case 'h':
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_hardlink(e, content);
		break;
	default:
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, (la_int64_t)len);
	}
	archive_write_header(t->a, e);
	if (len)
		archive_write_data(t->a, content, len);
	archive_entry_free(e);
}

/* The archive's bytes (the caller frees them). */
static inline GBytes *tar_end(struct tar *t)
{
	archive_write_close(t->a);
	archive_write_free(t->a);
	return g_bytes_new_take(t->buf, t->used);
}

static inline char *tar_digest(GBytes *b)
{
	gsize len;
	const guchar *d = g_bytes_get_data(b, &len);
	char *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, d, len);
	char *digest = g_strdup_printf("sha256:%s", hex);

	g_free(hex);
	return digest;
}

#endif
