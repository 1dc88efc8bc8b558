// SPDX-License-Identifier: MIT
/*
 * A throwaway copy-on-write layer over any backend (--disk IMG,snapshot):
 * the guest writes into a sparse, already-unlinked temporary file, reads of
 * blocks it never wrote come from the base, which is opened read-only, so
 * it cannot change. Everything written is gone at exit.
 */
#include "devices/block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmm/error.h"

#define SNAPSHOT_BLOCK 4096

struct snapshot {
	struct block_backend b;
	struct block_backend *base;
	int overlay;
	GMutex lock;       /* the map is not for two threads at once */
	uint64_t *written; /* a bit per block: its current data is in the overlay */
};

static bool is_written(const struct snapshot *s, uint64_t block)
{
	return s->written[block / 64] & (1ULL << (block % 64));
}

static void mark(struct snapshot *s, uint64_t block)
{
	s->written[block / 64] |= 1ULL << (block % 64);
}

/* The base is read up to its own size; the overlay past it reads as zeros. */
static int read_base(struct snapshot *s, uint8_t *buf, size_t len, uint64_t off)
{
	size_t n = off < s->base->size ? (size_t)MIN(len, s->base->size - off) : 0;

	memset(buf + n, 0, len - n);
	return n ? s->base->ops->read(s->base, buf, n, off) : 0;
}

/* Writes part of a block the overlay does not have yet: the rest comes from the base. */
static int write_partial(struct snapshot *s, uint64_t block, const uint8_t *buf, size_t at,
                         size_t n)
{
	uint8_t tmp[SNAPSHOT_BLOCK];
	uint64_t start = block * SNAPSHOT_BLOCK;
	int e = read_base(s, tmp, SNAPSHOT_BLOCK, start);

	if (e < 0)
		return e;
	memcpy(tmp + at, buf, n);
	return block_full_io(s->overlay, tmp, SNAPSHOT_BLOCK, start, true);
}

static int snapshot_io(struct snapshot *s, uint8_t *buf, size_t len, uint64_t off, bool is_write)
{
	while (len) {
		uint64_t block = off / SNAPSHOT_BLOCK;
		size_t at = (size_t)(off % SNAPSHOT_BLOCK);
		size_t n = MIN(len, SNAPSHOT_BLOCK - at);
		bool in_overlay = is_written(s, block);
		int e;

		/* Reads take whole runs of blocks from one side at once. */
		while (!is_write && n < len &&
		       is_written(s, block + (at + n) / SNAPSHOT_BLOCK) == in_overlay)
			n = MIN(len, n + SNAPSHOT_BLOCK);
		if (!is_write && in_overlay)
			e = block_full_io(s->overlay, buf, n, off, false);
		else if (!is_write)
			e = read_base(s, buf, n, off);
		else if (in_overlay || n == SNAPSHOT_BLOCK)
			e = block_full_io(s->overlay, buf, n, off, true);
		else
			e = write_partial(s, block, buf, at, n);
		if (e < 0)
			return e;
		if (is_write)
			mark(s, block);
		buf += n, len -= n, off += n;
	}
	return 0;
}

static int locked_io(struct block_backend *b, void *buf, size_t len, uint64_t off, bool is_write)
{
	struct snapshot *s = (struct snapshot *)b;

	g_mutex_lock(&s->lock);
	int e = snapshot_io(s, buf, len, off, is_write);
	g_mutex_unlock(&s->lock);
	return e;
}

static int snapshot_read(struct block_backend *b, void *buf, size_t len, uint64_t off)
{
	return locked_io(b, buf, len, off, false);
}

static int snapshot_write(struct block_backend *b, const void *buf, size_t len, uint64_t off)
{
	return locked_io(b, (void *)buf, len, off, true);
}

/* Nothing written here outlives husk: there is nothing to make durable. */
static int snapshot_flush(struct block_backend *b)
{
	return 0;
}

static int snapshot_write_zeroes(struct block_backend *b, uint64_t off, uint64_t len,
                                 bool may_unmap)
{
	static const uint8_t zeros[SNAPSHOT_BLOCK];

	while (len) {
		size_t n = (size_t)MIN(len, SNAPSHOT_BLOCK - off % SNAPSHOT_BLOCK);
		int e = locked_io(b, (void *)zeros, n, off, true);
		if (e < 0)
			return e;
		off += n, len -= n;
	}
	return 0;
}

/* Discarded blocks read as zeros: the overlay must not show the base's old data instead. */
static int snapshot_discard(struct block_backend *b, uint64_t off, uint64_t len)
{
	return snapshot_write_zeroes(b, off, len, true);
}

static void snapshot_close(struct block_backend *b)
{
	struct snapshot *s = (struct snapshot *)b;

	block_close(s->base);
	close(s->overlay);
	g_mutex_clear(&s->lock);
	g_free(s->written);
	g_free(s);
}

static const struct block_ops snapshot_ops = {
    .read = snapshot_read,
    .write = snapshot_write,
    .flush = snapshot_flush,
    .discard = snapshot_discard,
    .write_zeroes = snapshot_write_zeroes,
    .close = snapshot_close,
};

struct block_backend *block_snapshot_new(struct block_backend *base, GError **err)
{
	const char *dir = g_get_tmp_dir();
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)base->size) < 0) {
		husk_fail(err, HUSK_EXIT_USAGE, "snapshot: cannot make a temporary file in %s: %s",
		          dir, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		block_close(base);
		return NULL;
	}
	struct snapshot *s = g_new0(struct snapshot, 1);
	s->b.ops = &snapshot_ops;
	s->b.format = "snapshot";
	s->b.size = base->size;
	s->base = base;
	s->overlay = fd;
	g_mutex_init(&s->lock);
	s->written = g_new0(uint64_t, (base->size / SNAPSHOT_BLOCK + 1) / 64 + 1);
	return &s->b;
}
