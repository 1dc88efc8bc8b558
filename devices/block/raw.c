// SPDX-License-Identifier: MIT
/*
 * A raw image: the disk's bytes are the file's bytes. pread/pwrite are
 * safe from many threads at once, so this backend takes no lock.
 */
#include "devices/block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vmm/error.h"

#define DIRECT_ALIGN 4096
#define GUARD_BYTES  512 /* what the format probes look at, at most */

struct raw {
	struct block_backend b;
	int fd;
	bool guard_header; /* the format was detected: see block.c */
};

/*
 * O_DIRECT wants buffers aligned to the host's block size; guest buffers
 * usually are (page-sized bio pages), but nothing promises it. Those that
 * are not go through an aligned bounce buffer.
 */
static int bounce_io(int fd, uint8_t *buf, size_t len, uint64_t off, bool is_write);

static int direct_io(int fd, uint8_t *buf, size_t len, uint64_t off, bool is_write)
{
	int e = block_full_io(fd, buf, len, off, is_write);

	if (e == -EINVAL && ((uintptr_t)buf % DIRECT_ALIGN || len % DIRECT_ALIGN))
		return bounce_io(fd, buf, len, off, is_write);
	return e;
}

static int bounce_io(int fd, uint8_t *buf, size_t len, uint64_t off, bool is_write)
{
	size_t size = (len + DIRECT_ALIGN - 1) & ~(size_t)(DIRECT_ALIGN - 1);
	void *bounce;
	int e;

	if (posix_memalign(&bounce, DIRECT_ALIGN, size))
		return -ENOMEM;
	if (is_write) {
		/* A partial last block: fill its tail from the image, write it whole. */
		e = size == len ? 0 : direct_io(fd, bounce, size, off, false);
		if (e == 0) {
			memcpy(bounce, buf, len);
			e = direct_io(fd, bounce, size, off, true);
		}
	} else {
		e = direct_io(fd, bounce, size, off, false);
		if (e == 0)
			memcpy(buf, bounce, len);
	}
	free(bounce);
	return e;
}

/* Would the image's first bytes, after this write, look like another format? */
static bool makes_header(struct raw *r, const void *buf, size_t len, uint64_t off)
{
	uint8_t head[GUARD_BYTES];

	if (!r->guard_header || off >= GUARD_BYTES)
		return false;
	if (direct_io(r->fd, head, sizeof(head), 0, false) < 0)
		return true;
	memcpy(head + off, buf, MIN(len, GUARD_BYTES - off));
	return block_qcow2.probe(head, sizeof(head));
}

static int raw_read(struct block_backend *b, void *buf, size_t len, uint64_t off)
{
	return direct_io(((struct raw *)b)->fd, buf, len, off, false);
}

static int raw_write(struct block_backend *b, const void *buf, size_t len, uint64_t off)
{
	struct raw *r = (struct raw *)b;

	if (makes_header(r, buf, len, off))
		return -EPERM;
	return direct_io(r->fd, (uint8_t *)buf, len, off, true);
}

/* Never waits for the disk: 0, or -EAGAIN / -EOPNOTSUPP, or another error. */
static int raw_read_nowait(struct block_backend *b, void *buf, size_t len, uint64_t off)
{
	int fd = ((struct raw *)b)->fd;
	uint8_t *p = buf;

	while (len) {
		struct iovec v = {p, len};
		ssize_t n = preadv2(fd, &v, 1, (off_t)off, RWF_NOWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int raw_flush(struct block_backend *b)
{
	return fdatasync(((struct raw *)b)->fd) == 0 ? 0 : -errno;
}

static int raw_discard(struct block_backend *b, uint64_t off, uint64_t len)
{
	int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

	return fallocate(((struct raw *)b)->fd, mode, (off_t)off, (off_t)len) == 0 ? 0 : -errno;
}

/* Zeroes the range with plain writes, from a page-aligned buffer (O_DIRECT). */
static int write_zero_bytes(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zeroes[64 * 1024] __attribute__((aligned(4096)));

	while (len > 0) {
		size_t chunk = (size_t)MIN(len, sizeof(zeroes));
		int e = direct_io(fd, (uint8_t *)zeroes, chunk, off, true);
		if (e < 0)
			return e;
		off += chunk;
		len -= chunk;
	}
	return 0;
}

static int raw_write_zeroes(struct block_backend *b, uint64_t off, uint64_t len, bool may_unmap)
{
	struct raw *r = (struct raw *)b;
	int mode = may_unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;

	if (fallocate(r->fd, mode, (off_t)off, (off_t)len) == 0)
		return 0;
	/* Where the file system cannot zero a range, write the zeros. */
	return errno == EOPNOTSUPP ? write_zero_bytes(r->fd, off, len) : -errno;
}

static void raw_close(struct block_backend *b)
{
	close(((struct raw *)b)->fd);
	g_free(b);
}

static const struct block_ops raw_ops = {
    .read = raw_read,
    .write = raw_write,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .read_nowait = raw_read_nowait,
    .close = raw_close,
};

static bool on_tmpfs(int fd)
{
	struct statfs fs;

	return fstatfs(fd, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC);
}

static struct block_backend *raw_open(int fd, const char *path, const struct block_open_options *o,
                                      struct block_chain *chain, GError **err)
{
	struct raw *r = g_new0(struct raw, 1);
	struct stat st;
	off_t end = lseek(fd, 0, SEEK_END);

	r->fd = fd;
	r->guard_header = o->format == NULL && !o->read_only;
	r->b.ops = &raw_ops;
	r->b.format = "raw";
	r->b.size = end > 0 ? (uint64_t)end : 0;
	r->b.read_only = o->read_only;
	r->b.in_memory = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && on_tmpfs(fd);
	return &r->b;
}

static bool raw_create(int fd, const char *path, uint64_t size, const char *backing,
                       const char *backing_format, GError **err)
{
	if (backing)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: a raw image has no backing file", path);
	if (ftruncate(fd, (off_t)size) < 0)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: %s", path, g_strerror(errno));
	return true;
}

const struct block_format block_raw = {
    .name = "raw",
    .open = raw_open,
    .create = raw_create,
};
