// SPDX-License-Identifier: MIT
/*
 * A raw image: the disk's bytes are the file's bytes. pread/pwrite are
 * safe from many threads at once, so this backend takes no lock, but
 * where O_DIRECT wants blocks larger than a sector (see bounce_write).
 */
#include "devices/block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vmm/error.h"

#define DIRECT_ALIGN 4096 /* bounce buffers: aligned for any host */
#define GUARD_BYTES  512  /* what the format probes look at, at most */

struct raw {
	struct block_backend b;
	int fd;
	bool guard_header; /* the format was detected: see block.c */
	/*
	 * The offsets and lengths O_DIRECT takes (statx's dio alignment), 1
	 * without O_DIRECT: a sector almost always. Where it is more, a write
	 * of part of a block is a read-modify-write of the whole, exclusive:
	 * every other write holds 'rmw' shared, or one to a neighbouring
	 * sector, landing between our read and our write, would be undone.
	 */
	uint32_t dio_align;
	pthread_rwlock_t rmw;
};

static uint64_t align_down(uint64_t x, uint32_t a)
{
	return x - x % a;
}

static uint64_t align_up(uint64_t x, uint32_t a)
{
	return align_down(x + a - 1, a);
}

/*
 * O_DIRECT wants buffers aligned to the host's block size; guest buffers
 * usually are (page-sized bio pages), but nothing promises it. Those that
 * are not go through an aligned bounce buffer covering whole blocks.
 */
static int bounce_read(struct raw *r, uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t start = align_down(off, r->dio_align);
	size_t size = align_up(off + len, r->dio_align) - start;
	uint8_t *bounce;
	int e;

	if (posix_memalign((void **)&bounce, DIRECT_ALIGN, size))
		return -ENOMEM;
	e = block_full_io(r->fd, bounce, size, start, false);
	if (e == 0)
		memcpy(buf, bounce + (off - start), len);
	free(bounce);
	return e;
}

static int read_direct(struct raw *r, uint8_t *buf, size_t len, uint64_t off)
{
	int e = block_full_io(r->fd, buf, len, off, false);

	return e == -EINVAL ? bounce_read(r, buf, len, off) : e;
}

/* Called with r->rmw held: shared for whole blocks, exclusive for part of one. */
static int bounce_write(struct raw *r, const uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t start = align_down(off, r->dio_align), end = align_up(off + len, r->dio_align);
	uint8_t *bounce;
	int e = 0;

	/* The whole last block would be written: past the image's end, it would grow it. */
	if (end > r->b.size)
		return -EINVAL;
	if (posix_memalign((void **)&bounce, DIRECT_ALIGN, end - start))
		return -ENOMEM;
	if (start != off || end != off + len)
		e = block_full_io(r->fd, bounce, end - start, start, false);
	if (e == 0) {
		memcpy(bounce + (off - start), buf, len);
		e = block_full_io(r->fd, bounce, end - start, start, true);
	}
	free(bounce);
	return e;
}

static int write_direct(struct raw *r, const uint8_t *buf, size_t len, uint64_t off)
{
	bool partial = off % r->dio_align || len % r->dio_align;
	int e;

	if (partial)
		pthread_rwlock_wrlock(&r->rmw);
	else
		pthread_rwlock_rdlock(&r->rmw);
	e = partial ? -EINVAL : block_full_io(r->fd, (uint8_t *)buf, len, off, true);
	if (e == -EINVAL)
		e = bounce_write(r, buf, len, off);
	pthread_rwlock_unlock(&r->rmw);
	return e;
}

/* Would the image's first bytes, after this write, look like another format? */
static bool makes_header(struct raw *r, const void *buf, size_t len, uint64_t off)
{
	uint8_t head[GUARD_BYTES];

	if (!r->guard_header || off >= GUARD_BYTES)
		return false;
	if (read_direct(r, head, sizeof(head), 0) < 0)
		return true;
	memcpy(head + off, buf, MIN(len, GUARD_BYTES - off));
	return block_qcow2.probe(head, sizeof(head));
}

static int raw_read(struct block_backend *b, void *buf, size_t len, uint64_t off)
{
	return read_direct((struct raw *)b, buf, len, off);
}

static int raw_write(struct block_backend *b, const void *buf, size_t len, uint64_t off)
{
	struct raw *r = (struct raw *)b;

	if (makes_header(r, buf, len, off))
		return -EPERM;
	return write_direct(r, buf, len, off);
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
static int write_zero_bytes(struct raw *r, uint64_t off, uint64_t len)
{
	static const uint8_t zeroes[64 * 1024] __attribute__((aligned(4096)));

	while (len > 0) {
		size_t chunk = (size_t)MIN(len, sizeof(zeroes));
		int e = write_direct(r, zeroes, chunk, off);
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
	return errno == EOPNOTSUPP ? write_zero_bytes(r, off, len) : -errno;
}

static void raw_close(struct block_backend *b)
{
	struct raw *r = (struct raw *)b;

	close(r->fd);
	pthread_rwlock_destroy(&r->rmw);
	g_free(r);
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

/* What O_DIRECT on 'fd' takes: what statx says (Linux 6.1), else a page to be safe. */
static uint32_t dio_align(int fd)
{
	struct statx x;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || !(fl & O_DIRECT))
		return 1;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &x) == 0 &&
	    (x.stx_mask & STATX_DIOALIGN) && x.stx_dio_offset_align)
		return x.stx_dio_offset_align;
	return DIRECT_ALIGN;
}

static struct block_backend *raw_open(int fd, const char *path, const struct block_open_options *o,
                                      struct block_chain *chain, GError **err)
{
	struct raw *r = g_new0(struct raw, 1);
	struct stat st;
	off_t end = lseek(fd, 0, SEEK_END);

	r->fd = fd;
	r->dio_align = dio_align(fd);
	pthread_rwlock_init(&r->rmw, NULL);
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
