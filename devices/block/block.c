// SPDX-License-Identifier: MIT
/*
 * Opening a disk stack, and the rule that keeps format detection safe.
 *
 * Format detection: without format= husk reads the image's first bytes,
 * and a qcow2 header makes it qcow2. A guest must never turn a raw image
 * into a qcow2 that names a host file as its backing file. So:
 *  - a raw image whose format was detected (not given) refuses a write that
 *    would make its first bytes a header some format would detect (raw.c);
 *  - a backing file is never probed: its format is the one the image above
 *    records (qcow2's backing format extension), and an image that records
 *    none cannot have its backing opened (qemu-img rebase -u -F fixes that).
 * A raw image attached with format=raw given is the user's to trust: its
 * guest can write anything, so attach it with format=raw again.
 */
#include "devices/block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/error.h"

#define PROBE_BYTES 4096 /* aligned, so an O_DIRECT descriptor can read it */

static const struct block_format *const formats[] = {&block_qcow2, &block_raw};

static const struct block_format *format_named(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
		if (strcmp(formats[i]->name, name) == 0)
			return formats[i];
	return NULL;
}

static const struct block_format *probe(int fd)
{
	void *head;
	const struct block_format *found = &block_raw;

	if (posix_memalign(&head, PROBE_BYTES, PROBE_BYTES))
		return NULL;
	if (block_full_io(fd, head, PROBE_BYTES, 0, false) == 0) {
		for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
			if (formats[i]->probe && formats[i]->probe(head, PROBE_BYTES)) {
				found = formats[i];
				break;
			}
		}
	}
	free(head);
	return found;
}

/* Like QEMU: an open file description lock, so a second VM cannot write the image. */
static bool lock_image(int fd, bool read_only)
{
	struct flock fl = {.l_type = read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};

	return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

/* Adds the file to the chain; refuses a loop and a chain too deep. */
static bool chain_add(struct block_chain *chain, const char *path, const struct stat *st,
                      GError **err)
{
	for (unsigned int i = 0; i < chain->depth; i++) {
		if (chain->file[i].dev == st->st_dev && chain->file[i].ino == st->st_ino)
			return husk_fail(err, HUSK_EXIT_USAGE,
			                 "%s: the backing chain loops back to this file", path);
	}
	if (chain->depth > BLOCK_MAX_CHAIN)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: backing chain deeper than %d images",
		                 path, BLOCK_MAX_CHAIN);
	chain->file[chain->depth].dev = st->st_dev;
	chain->file[chain->depth].ino = st->st_ino;
	chain->depth++;
	return true;
}

static int open_checked(const char *path, const struct block_open_options *o,
                        struct block_chain *chain, GError **err)
{
	int fd =
	    open(path, (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (o->direct ? O_DIRECT : 0));
	struct stat st;

	if (fd < 0) {
		bool ro_hint = !o->read_only && (errno == EACCES || errno == EROFS);
		husk_fail(err, HUSK_EXIT_USAGE, "%s: %s%s", path, g_strerror(errno),
		          ro_hint ? " (attach it read-only: ,ro)" : "");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: not a regular file or block device", path);
		close(fd);
		return -1;
	}
	if (!chain_add(chain, path, &st, err)) {
		close(fd);
		return -1;
	}
	if (!lock_image(fd, o->read_only)) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: in use by another process (locked)", path);
		close(fd);
		return -1;
	}
	return fd;
}

static struct block_backend *open_format(const char *path, const struct block_open_options *o,
                                         struct block_chain *chain, GError **err)
{
	const struct block_format *fmt = NULL;

	if (o->format && !(fmt = format_named(o->format))) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: unknown format \"%s\" (try raw or qcow2)",
		          path, o->format);
		return NULL;
	}
	int fd = open_checked(path, o, chain, err);
	if (fd < 0)
		return NULL;
	if (!fmt && !(fmt = probe(fd))) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	return fmt->open(fd, path, o, chain, err);
}

struct block_backend *block_open(const char *path, const struct block_open_options *o, GError **err)
{
	struct block_chain chain = {0};
	struct block_open_options image = *o;

	/* A snapshot never writes the image: it is opened read-only, with a shared lock. */
	image.read_only = o->read_only || o->snapshot;
	struct block_backend *b = open_format(path, &image, &chain, err);
	if (b && o->snapshot && !o->read_only)
		b = block_snapshot_new(b, err);
	return b;
}

struct block_backend *block_open_backing(const char *path, const char *format,
                                         struct block_chain *chain, GError **err)
{
	struct block_open_options o = {.format = format, .read_only = true};

	return open_format(path, &o, chain, err);
}

void block_close(struct block_backend *b)
{
	if (b)
		b->ops->close(b);
}

void block_describe(struct block_backend *b, struct block_info *out)
{
	memset(out, 0, sizeof(*out));
	if (b->ops->describe)
		b->ops->describe(b, out);
}

/* The size a new image over 'backing' gets when none is given: the backing file's. */
static bool backing_size(const char *path, const char *backing, const char *format, uint64_t *size,
                         GError **err)
{
	char *dir = g_path_get_dirname(path);
	char *full =
	    g_path_is_absolute(backing) ? g_strdup(backing) : g_build_filename(dir, backing, NULL);
	struct block_chain chain = {0};
	struct block_backend *b = block_open_backing(full, format, &chain, err);

	if (b)
		*size = b->size;
	block_close(b);
	g_free(full);
	g_free(dir);
	return b != NULL;
}

bool block_create(const char *path, const char *format, uint64_t size, const char *backing,
                  const char *backing_format, GError **err)
{
	const struct block_format *fmt = format_named(format);

	if (!fmt || !fmt->create)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: cannot create format \"%s\" (try raw "
		                 "or qcow2)",
		                 path, format);
	if (backing && !size && !backing_size(path, backing, backing_format, &size, err))
		return false;
	/* Emptied only once locked: a running VM's image is left alone. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: %s", path, g_strerror(errno));
	if (!lock_image(fd, false)) {
		close(fd);
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: in use by another process (locked)",
		                 path);
	}
	if (ftruncate(fd, 0) < 0) {
		close(fd);
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: %s", path, g_strerror(errno));
	}
	bool ok = fmt->create(fd, path, size, backing, backing_format, err);
	if (ok && fsync(fd) < 0)
		ok = husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path, g_strerror(errno));
	close(fd);
	return ok;
}

int block_pread(struct block_backend *b, void *buf, size_t len, uint64_t off)
{
	if (off > b->size || len > b->size - off)
		return -EIO;
	return b->ops->read(b, buf, len, off);
}

int block_pwrite(struct block_backend *b, const void *buf, size_t len, uint64_t off)
{
	if (b->read_only)
		return -EROFS;
	if (off > b->size || len > b->size - off)
		return -EIO;
	return b->ops->write(b, buf, len, off);
}

int block_full_io(int fd, void *buf, size_t len, uint64_t off, bool is_write)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n =
		    is_write ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			if (is_write)
				return -EIO;
			memset(p, 0, len); /* past the end of a shorter file: zeros */
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}
