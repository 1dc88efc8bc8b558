// SPDX-License-Identifier: MIT
#include "devices/blk_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmm/error.h"

struct blk_snapshot {
	int base, overlay;
	uint64_t size;
	uint64_t *written; /* a bit per block: its current data is in the overlay */
};

static bool is_written(const struct blk_snapshot *s, uint64_t block)
{
	return s->written[block / 64] & (1ULL << (block % 64));
}

static void mark(struct blk_snapshot *s, uint64_t block)
{
	s->written[block / 64] |= 1ULL << (block % 64);
}

static bool full(int fd, uint8_t *buf, size_t len, off_t off, bool is_write)
{
	while (len) {
		ssize_t n = is_write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n == 0 && is_write))
			return false;
		if (n == 0) {
			memset(buf, 0, len); /* a base shorter than the disk reads as zeros */
			return true;
		}
		buf += n, len -= (size_t)n, off += n;
	}
	return true;
}

/* Writes part of a block the overlay does not have yet: the rest comes from the base. */
static bool write_partial(struct blk_snapshot *s, uint64_t block, const uint8_t *buf, size_t at,
                          size_t n)
{
	uint8_t tmp[SNAPSHOT_BLOCK];
	off_t start = (off_t)(block * SNAPSHOT_BLOCK);

	if (!full(s->base, tmp, SNAPSHOT_BLOCK, start, false))
		return false;
	memcpy(tmp + at, buf, n);
	if (!full(s->overlay, tmp, SNAPSHOT_BLOCK, start, true))
		return false;
	mark(s, block);
	return true;
}

bool blk_snapshot_io(struct blk_snapshot *s, uint8_t *buf, size_t len, off_t off, bool is_write)
{
	while (len) {
		uint64_t block = (uint64_t)off / SNAPSHOT_BLOCK;
		size_t at = (size_t)((uint64_t)off % SNAPSHOT_BLOCK);
		size_t n = MIN(len, SNAPSHOT_BLOCK - at);
		bool in_overlay = is_written(s, block);
		bool ok;

		/* Reads take whole runs of blocks from one side at once. */
		while (!is_write && n < len &&
		       is_written(s, block + (at + n) / SNAPSHOT_BLOCK) == in_overlay)
			n = MIN(len, n + SNAPSHOT_BLOCK);
		if (!is_write)
			ok = full(in_overlay ? s->overlay : s->base, buf, n, off, false);
		else if (in_overlay || n == SNAPSHOT_BLOCK)
			ok = full(s->overlay, buf, n, off, true);
		else
			ok = write_partial(s, block, buf, at, n);
		if (!ok)
			return false;
		if (is_write)
			mark(s, block);
		buf += n, len -= n, off += (off_t)n;
	}
	return true;
}

bool blk_snapshot_zero(struct blk_snapshot *s, off_t off, uint64_t len)
{
	static const uint8_t zeros[SNAPSHOT_BLOCK];

	while (len) {
		size_t n = (size_t)MIN(len, SNAPSHOT_BLOCK - (uint64_t)off % SNAPSHOT_BLOCK);
		if (!blk_snapshot_io(s, (uint8_t *)zeros, n, off, true))
			return false;
		off += (off_t)n, len -= n;
	}
	return true;
}

struct blk_snapshot *blk_snapshot_new(int base_fd, uint64_t size, GError **err)
{
	const char *dir = g_get_tmp_dir();
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		husk_fail(err, HUSK_EXIT_USAGE,
		          "--disk: snapshot: cannot make a temporary file in %s: %s", dir,
		          g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct blk_snapshot *s = g_new0(struct blk_snapshot, 1);
	s->base = base_fd;
	s->overlay = fd;
	s->size = size;
	s->written = g_new0(uint64_t, (size / SNAPSHOT_BLOCK + 1) / 64 + 1);
	return s;
}

void blk_snapshot_free(struct blk_snapshot *s)
{
	if (!s)
		return;
	close(s->overlay);
	g_free(s->written);
	g_free(s);
}
