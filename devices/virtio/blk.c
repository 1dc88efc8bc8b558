// SPDX-License-Identifier: MIT
#include "devices/virtio/blk.h"

#include "devices/block/block.h"
#include "devices/virtio/vq_pool.h"

#include <errno.h>
#include <string.h>

#include "vmm/error.h"

#define VIRTIO_ID_BLOCK 2
#define BLK_QUEUE_SIZE  256
#define CLASS_STORAGE   0x018000
#define SECTOR          512
#define CONFIG_SIZE     60

/* Feature bits (5.2.3) */
#define F_SEG_MAX      2
#define F_MQ           12
#define F_RO           5
#define F_BLK_SIZE     6
#define F_FLUSH        9
#define F_DISCARD      13
#define F_WRITE_ZEROES 14

/* Request types and status (5.2.6) */
#define T_IN           0
#define T_OUT          1
#define T_FLUSH        4
#define T_GET_ID       8
#define T_DISCARD      11
#define T_WRITE_ZEROES 13
#define S_OK           0
#define S_IOERR        1
#define S_UNSUPP       2
#define S_AGAIN        0xfe /* ours, never the guest's: the request must go to the pool */

#define HEADER_SIZE       16
#define RANGE_SIZE        16 /* struct virtio_blk_discard_write_zeroes */
#define MAX_RANGES        32
#define MAX_RANGE_SECTORS 0x400000 /* 2 GiB per discard or write-zeroes range */
#define RANGE_F_UNMAP     1
#define IO_THREADS        16 /* requests carried out at once, like QEMU's aio=threads pool */

/*
 * Which requests the I/O thread carries out itself. A request handed to
 * the pool costs two thread switches; one served from the page cache
 * costs a copy. QEMU with io_uring makes the same split.
 */
enum inline_mode {
	INLINE_NONE,   /* O_DIRECT, or a format without RWF_NOWAIT: every request to the pool */
	INLINE_NOWAIT, /* reads, with RWF_NOWAIT: what is not in the page cache goes to the pool */
	INLINE_MEMORY, /* the image is in memory (tmpfs): reads and writes never wait for a disk */
};

struct virtio_blk {
	struct block_backend *disk;
	enum inline_mode inline_mode; /* read and changed on the I/O thread only */
	uint64_t sectors;
	bool read_only;
	char id[VIRTIO_BLK_ID_BYTES];
	unsigned int nqueues;
	struct vq_pool *pool[VIRTIO_MAX_QUEUES]; /* per queue: what the I/O thread does not do */
};

/* A request's bytes: readable ones (header, then data) and writable ones (data, then status). */
struct request {
	struct vq_chain *chain;
	uint32_t readable; /* total */
	uint32_t writable;
	uint8_t *status;
};

static bool parse_chain(struct vq_chain *c, struct request *r)
{
	r->chain = c;
	r->readable = c->out_len;
	r->writable = c->in_len;
	if (c->nseg == 0 || r->readable < HEADER_SIZE || r->writable < 1)
		return false;
	struct vq_seg *last = &c->seg[c->nseg - 1];
	if (!last->device_writable || last->len == 0)
		return false;
	r->status = (uint8_t *)last->addr + last->len - 1;
	return true;
}

/* Copies 'len' readable bytes starting 'skip' bytes into the request. */
static bool read_bytes(const struct request *r, uint32_t skip, void *dst, uint32_t len)
{
	uint8_t *out = dst;

	for (unsigned int i = 0; i < r->chain->nseg && len; i++) {
		struct vq_seg *s = &r->chain->seg[i];
		if (s->device_writable)
			continue;
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		uint32_t n = s->len - skip < len ? s->len - skip : len;
		memcpy(out, (uint8_t *)s->addr + skip, n);
		out += n;
		len -= n;
		skip = 0;
	}
	return len == 0;
}

static bool in_range(const struct virtio_blk *blk, uint64_t sector, uint64_t bytes)
{
	return bytes % SECTOR == 0 && sector <= blk->sectors &&
	       bytes / SECTOR <= blk->sectors - sector;
}

/* One data segment, the way the request is being carried out. */
static uint8_t segment_io(struct virtio_blk *blk, uint8_t *p, uint32_t len, uint64_t off,
                          bool is_write, bool nowait)
{
	struct block_backend *disk = blk->disk;
	int e;

	if (nowait) {
		e = disk->ops->read_nowait(disk, p, len, off);
		if (e == -EOPNOTSUPP)
			blk->inline_mode =
			    INLINE_NONE; /* this file system cannot say "not cached" */
		if (e == -EAGAIN || e == -EOPNOTSUPP)
			return S_AGAIN;
	} else {
		e = is_write ? disk->ops->write(disk, p, len, off)
		             : disk->ops->read(disk, p, len, off);
	}
	return e == 0 ? S_OK : S_IOERR;
}

/* Data segments: for a read the writable ones minus the status byte, for a write the readable ones
 * after the header. */
static uint8_t do_rw(struct virtio_blk *blk, struct request *r, uint64_t sector, bool is_write,
                     uint32_t *written, bool nowait)
{
	uint64_t bytes = is_write ? r->readable - HEADER_SIZE : r->writable - 1u;
	uint32_t skip = is_write ? HEADER_SIZE : 0;
	uint64_t off = sector * SECTOR;

	if (is_write && blk->read_only)
		return S_IOERR;
	if (!in_range(blk, sector, bytes))
		return S_IOERR;
	for (unsigned int i = 0; i < r->chain->nseg && bytes; i++) {
		struct vq_seg *s = &r->chain->seg[i];
		if (s->device_writable != !is_write)
			continue;
		uint32_t len = s->len;
		uint8_t *p = s->addr;
		if (skip) {
			uint32_t n = skip < len ? skip : len;
			skip -= n;
			len -= n;
			p += n;
		}
		if (len > bytes)
			len = (uint32_t)bytes;
		uint8_t status = segment_io(blk, p, len, off, is_write, nowait);
		if (status != S_OK)
			return status;
		off += len;
		bytes -= len;
	}
	if (!is_write)
		*written = r->writable - 1;
	return S_OK;
}

static uint8_t do_get_id(struct virtio_blk *blk, struct request *r, uint32_t *written)
{
	uint32_t room = r->writable - 1;
	uint32_t n = room < VIRTIO_BLK_ID_BYTES ? room : VIRTIO_BLK_ID_BYTES;
	uint32_t done = 0;

	for (unsigned int i = 0; i < r->chain->nseg && done < n; i++) {
		struct vq_seg *s = &r->chain->seg[i];
		if (!s->device_writable)
			continue;
		uint32_t k = s->len < n - done ? s->len : n - done;
		memcpy(s->addr, blk->id + done, k);
		done += k;
	}
	*written = done;
	return S_OK;
}

/* Discard and write-zeroes carry a list of ranges (5.2.6.2). */
static uint8_t do_ranges(struct virtio_blk *blk, struct request *r, bool zeroes)
{
	uint32_t len = r->readable - HEADER_SIZE;

	if (blk->read_only)
		return S_IOERR;
	if (len == 0 || len % RANGE_SIZE || len / RANGE_SIZE > MAX_RANGES)
		return S_UNSUPP;
	for (uint32_t at = 0; at < len; at += RANGE_SIZE) {
		uint8_t range[RANGE_SIZE];
		read_bytes(r, HEADER_SIZE + at, range, RANGE_SIZE);
		uint64_t sector;
		uint32_t count, flags;
		memcpy(&sector, range, 8);
		memcpy(&count, range + 8, 4);
		memcpy(&flags, range + 12, 4);
		sector = le64toh(sector);
		count = le32toh(count);
		flags = le32toh(flags);
		if (count > MAX_RANGE_SECTORS || !in_range(blk, sector, (uint64_t)count * SECTOR))
			return S_IOERR;
		if (!zeroes && flags)
			return S_UNSUPP; /* discard has no flags */
		uint64_t off = sector * SECTOR, n = (uint64_t)count * SECTOR;
		struct block_backend *disk = blk->disk;
		/* Write zeroes was offered, so it must work; discard may say it cannot. */
		if (zeroes && disk->ops->write_zeroes(disk, off, n, flags & RANGE_F_UNMAP) < 0)
			return S_IOERR;
		if (!zeroes && disk->ops->discard(disk, off, n) < 0)
			return S_UNSUPP;
	}
	return S_OK;
}

/* The I/O thread's share (enum inline_mode); S_AGAIN for the rest. */
static uint8_t handle_inline(struct virtio_blk *blk, struct request *r, uint32_t type,
                             uint64_t sector, uint32_t *written)
{
	if (type == T_IN && blk->inline_mode == INLINE_NOWAIT)
		return do_rw(blk, r, sector, false, written, true);
	if ((type == T_IN || type == T_OUT) && blk->inline_mode == INLINE_MEMORY)
		return do_rw(blk, r, sector, type == T_OUT, written, false);
	return S_AGAIN;
}

static uint8_t handle(struct virtio_blk *blk, struct request *r, uint32_t *written,
                      bool on_io_thread)
{
	uint8_t header[HEADER_SIZE];
	uint32_t type;
	uint64_t sector;

	read_bytes(r, 0, header, HEADER_SIZE);
	memcpy(&type, header, 4);
	memcpy(&sector, header + 8, 8);
	type = le32toh(type);
	sector = le64toh(sector);
	if (on_io_thread)
		return handle_inline(blk, r, type, sector, written);
	switch (type) {
	case T_IN:
		return do_rw(blk, r, sector, false, written, false);
	case T_OUT:
		return do_rw(blk, r, sector, true, written, false);
	case T_FLUSH:
		/* The promise FLUSH makes: acknowledged writes are on the host's disk. */
		return blk->read_only || blk->disk->ops->flush(blk->disk) == 0 ? S_OK : S_IOERR;
	case T_GET_ID:
		return do_get_id(blk, r, written);
	case T_DISCARD:
		return do_ranges(blk, r, false);
	case T_WRITE_ZEROES:
		return do_ranges(blk, r, true);
	default:
		return S_UNSUPP;
	}
}

/* -1: not a request; S_AGAIN: left for the pool (only when on_io_thread); else the status. */
static int process(struct virtio_blk *blk, struct vq_chain *chain, uint32_t *written,
                   bool on_io_thread)
{
	struct request r;
	uint8_t status;

	*written = 0;
	if (!parse_chain(chain, &r))
		return -1;
	status = handle(blk, &r, written, on_io_thread);
	if (status == S_AGAIN)
		return S_AGAIN;
	*r.status = status;
	*written += 1; /* the status byte */
	return status;
}

int virtio_blk_process(struct virtio_blk *blk, struct vq_chain *chain, uint32_t *written)
{
	return process(blk, chain, written, false);
}

static void blk_work(void *dev, struct vq_job *job)
{
	virtio_blk_process(dev, &job->chain, &job->written);
}

/*
 * A kick, or a wake from the pool: push what is finished, hand new requests
 * to the pool. Requests run at once and finish in any order (5.2.6.4: the
 * driver orders what it needs with FLUSH and by waiting).
 */
static void blk_notify(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	struct virtio_blk *blk = dev;
	struct vq_job *job = vq_job_new();
	unsigned int budget;

	vq_pool_push_done(blk->pool[q], vq);
	for (budget = VQ_BURST; budget; budget--) {
		if (vq_pool_full(blk->pool[q]) || vq_pop(vq, &job->chain) <= 0)
			break;
		int status = process(blk, &job->chain, &job->written, true);
		if (status < 0) {
			/* No header or no place for a status: the driver broke the protocol
			 * (5.2.6.1). */
			vq->broken = true;
			break;
		}
		if (status != S_AGAIN) {
			vq_push(vq, job->chain.head, job->written);
			continue;
		}
		vq_pool_submit(blk->pool[q], t, q, job);
		job = vq_job_new();
	}
	vq_job_free(job);
	if (!budget)
		virtio_pci_wake(t, q);
	virtio_pci_used(t, vq, q);
}

/*
 * Under the transport's lock, on a vCPU thread: requests already handed out
 * finish (their buffers are the guest's until then), and none is pushed to
 * the reset rings.
 */
static void blk_reset(void *dev)
{
	struct virtio_blk *blk = dev;

	for (unsigned int q = 0; q < blk->nqueues; q++)
		vq_pool_drain(blk->pool[q]);
}

static void blk_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_blk *blk = dev;
	uint8_t cfg[CONFIG_SIZE] = {0};
	uint64_t capacity = htole64(blk->sectors);
	uint32_t v;

	memcpy(cfg + 0, &capacity, 8);
	v = htole32(BLK_QUEUE_SIZE - 2); /* seg_max: room for header and status */
	memcpy(cfg + 12, &v, 4);
	v = htole32(SECTOR);
	memcpy(cfg + 20, &v, 4);         /* blk_size */
	cfg[34] = (uint8_t)blk->nqueues; /* num_queues (le16) */
	v = htole32(MAX_RANGE_SECTORS);
	memcpy(cfg + 36, &v, 4); /* max_discard_sectors */
	v = htole32(MAX_RANGES);
	memcpy(cfg + 40, &v, 4); /* max_discard_seg */
	v = htole32(1);
	memcpy(cfg + 44, &v, 4); /* discard_sector_alignment */
	v = htole32(MAX_RANGE_SECTORS);
	memcpy(cfg + 48, &v, 4); /* max_write_zeroes_sectors */
	v = htole32(MAX_RANGES);
	memcpy(cfg + 52, &v, 4); /* max_write_zeroes_seg */
	cfg[56] = 1;             /* write_zeroes_may_unmap */
	if (offset + len <= CONFIG_SIZE)
		memcpy(data, cfg + offset, len);
}

static unsigned int blk_queue_count(void *dev)
{
	return ((struct virtio_blk *)dev)->nqueues;
}

static uint64_t blk_features(void *dev)
{
	struct virtio_blk *blk = dev;
	uint64_t f = 1ULL << F_SEG_MAX | 1ULL << F_BLK_SIZE | 1ULL << F_FLUSH | 1ULL << F_MQ;

	if (blk->read_only)
		return f | 1ULL << F_RO;
	return f | 1ULL << F_DISCARD | 1ULL << F_WRITE_ZEROES;
}

const struct virtio_device_ops virtio_blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .class_code = CLASS_STORAGE,
    .queue_count = blk_queue_count,
    .queue_size = BLK_QUEUE_SIZE,
    .features = blk_features,
    .config_size = CONFIG_SIZE,
    .config_read = blk_config_read,
    .queue_notify = blk_notify,
    .reset = blk_reset,
};

/* See enum inline_mode: reads the page cache may answer, or everything when it is memory. */
static enum inline_mode inline_mode_for(const struct block_backend *disk, bool direct)
{
	if (direct || !disk->ops->read_nowait)
		return INLINE_NONE;
	return disk->in_memory ? INLINE_MEMORY : INLINE_NOWAIT;
}

struct virtio_blk *virtio_blk_open(const struct disk_config *cfg, unsigned int queues, GError **err)
{
	struct block_open_options o = {
	    .format = cfg->format,
	    .read_only = cfg->read_only,
	    .snapshot = cfg->snapshot,
	    .direct = cfg->cache == DISK_CACHE_NONE && !cfg->snapshot,
	};
	struct block_backend *disk = block_open(cfg->path, &o, err);

	if (!disk) {
		g_prefix_error(err, "--disk: ");
		return NULL;
	}
	struct virtio_blk *blk = g_new0(struct virtio_blk, 1);
	blk->disk = disk;
	blk->sectors = disk->size / SECTOR;
	blk->read_only = cfg->read_only;
	blk->inline_mode = inline_mode_for(disk, o.direct);
	if (cfg->serial)
		memcpy(blk->id, cfg->serial, strnlen(cfg->serial, VIRTIO_BLK_ID_BYTES));
	blk->nqueues = CLAMP(queues, 1, VIRTIO_MAX_QUEUES);
	for (unsigned int q = 0; q < blk->nqueues; q++)
		blk->pool[q] = vq_pool_new(IO_THREADS, BLK_QUEUE_SIZE, blk_work, blk);
	return blk;
}

void virtio_blk_close(struct virtio_blk *blk)
{
	if (!blk)
		return;
	/* After the transport's last reset: nothing in flight. */
	for (unsigned int q = 0; q < blk->nqueues; q++)
		vq_pool_free(blk->pool[q]);
	block_close(blk->disk);
	g_free(blk);
}

bool disk_config_parse(const char *text, struct disk_config *out, GError **err)
{
	char **parts = g_strsplit(text, ",", -1);
	bool ok = parts[0] && *parts[0];

	memset(out, 0, sizeof(*out));
	if (!ok)
		husk_fail(err, HUSK_EXIT_USAGE, "--disk: \"%s\" names no image", text);
	for (int i = 1; ok && parts[i]; i++) {
		const char *p = parts[i];
		if (strcmp(p, "ro") == 0) {
			out->read_only = true;
		} else if (strcmp(p, "snapshot") == 0) {
			out->snapshot = true;
		} else if (strcmp(p, "cache=writeback") == 0) {
			out->cache = DISK_CACHE_WRITEBACK;
		} else if (strcmp(p, "cache=none") == 0) {
			out->cache = DISK_CACHE_NONE;
		} else if (strcmp(p, "format=raw") == 0 || strcmp(p, "format=qcow2") == 0) {
			g_free(out->format);
			out->format = g_strdup(p + strlen("format="));
		} else if (g_str_has_prefix(p, "serial=")) {
			const char *id = p + strlen("serial=");
			ok = strlen(id) <= VIRTIO_BLK_ID_BYTES;
			if (!ok)
				husk_fail(err, HUSK_EXIT_USAGE,
				          "--disk: serial \"%s\" is longer than %d bytes", id,
				          VIRTIO_BLK_ID_BYTES);
			g_free(out->serial);
			out->serial = g_strdup(id);
		} else {
			ok =
			    husk_fail(err, HUSK_EXIT_USAGE,
			              "--disk: unknown option \"%s\" (try ro, snapshot, serial=ID, "
			              "cache=writeback|none, format=raw|qcow2)",
			              p);
		}
	}
	if (ok)
		out->path = g_strdup(parts[0]);
	else
		disk_config_clear(out);
	g_strfreev(parts);
	return ok;
}

void disk_config_clear(struct disk_config *cfg)
{
	g_clear_pointer(&cfg->path, g_free);
	g_clear_pointer(&cfg->serial, g_free);
	g_clear_pointer(&cfg->format, g_free);
}
