// SPDX-License-Identifier: MIT
/*
 * qcow2, versions 2 and 3 (QEMU's docs/interop/qcow2.txt, "the spec"):
 * a two-level table (L1, L2) maps guest clusters to host clusters, and
 * refcounts say which host clusters are in use.
 *
 * Crash consistency. New clusters are always appended at the end of the
 * file, never reused, so a stale pointer can never alias new data. The
 * order on disk is: refcount (written at once) and data cluster, then, at
 * the next flush and after an fdatasync, the L2 entries that point at them,
 * then the L1 entries. Clusters given up (discard, copy-on-write) lose their
 * refcount only after the entries that dropped them are durable. A crash
 * anywhere leaks clusters at worst, which `qemu-img check` allows.
 *
 * Locking. One mutex guards the tables, the L2 cache and allocation. Reads
 * and in-place writes of allocated clusters look the mapping up under it
 * and move the data without it; writes that allocate hold it throughout.
 *
 * Every number read from the file is checked before use: an image that
 * lies is refused at open with one line, or fails the guest's request with
 * an I/O error.
 */
#include "devices/block/block.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "vmm/error.h"

#define QCOW2_MAGIC        "QFI\xfb"
#define V2_HEADER_LENGTH   72
#define V3_HEADER_LENGTH   104
#define MIN_CLUSTER_BITS   9
#define MAX_CLUSTER_BITS   21
#define MAX_BACKING_NAME   1023         /* the spec's limit */
#define MAX_VIRTUAL_SIZE   (1ULL << 56) /* what a 56-bit host offset can address */
#define MAX_L1_BYTES       (32u << 20)
#define MAX_REFTABLE_BYTES (8u << 20)
#define L2_CACHE_BYTES     (16u << 20)
#define L2_CACHE_MAX       1024

/* Header feature bits (spec: "Header") */
#define INCOMPAT_DIRTY       (1ULL << 0)
#define INCOMPAT_CORRUPT     (1ULL << 1)
#define INCOMPAT_DATA_FILE   (1ULL << 2)
#define INCOMPAT_COMPRESSION (1ULL << 3)
#define INCOMPAT_EXTENDED_L2 (1ULL << 4)

/* Header extensions (spec: "Header extensions") */
#define EXT_END            0
#define EXT_BACKING_FORMAT 0xe2792aca

#define COMPRESSION_ZLIB 0
#define COMPRESSION_ZSTD 1

/* Table entries (spec: "Cluster mapping", "Host cluster management") */
#define OFFSET_MASK      0x00fffffffffffe00ULL /* L1 and standard L2: bits 9-55 */
#define REFTABLE_MASK    0xfffffffffffffe00ULL /* bits 9-63 */
#define OFLAG_COPIED     (1ULL << 63)          /* refcount is exactly 1 */
#define OFLAG_COMPRESSED (1ULL << 62)
#define OFLAG_ZERO       1ULL /* v3 only */

enum cluster_kind { UNALLOCATED, ZERO, NORMAL, COMPRESSED };

struct l2_slot {
	uint64_t offset; /* the table's host offset; 0 for an empty slot */
	uint64_t *table; /* big-endian, as on disk */
	uint64_t last_use;
	bool dirty;
};

struct qcow2 {
	struct block_backend b;
	int fd;
	GMutex lock;
	unsigned int version, cluster_bits, refcount_order;
	uint64_t cluster_size, l2_entries;
	uint8_t compression;
	bool dirty_bit; /* as found at open (block_describe) */

	uint64_t *l1; /* host-endian */
	uint64_t l1_size, l1_offset;
	uint64_t l1_dirty_lo, l1_dirty_hi; /* entries [lo, hi) differ from the file */

	uint64_t *reftable; /* host-endian */
	uint64_t reftable_entries, reftable_offset;
	unsigned int refblock_bits; /* log2 of the refcounts in one block */

	uint64_t file_end; /* allocation appends here; every host offset is below it */
	struct l2_slot *cache;
	unsigned int cache_slots;
	uint64_t clock;
	GArray *to_free; /* L2 entries dropped since the last flush: freed once that is durable */

	struct block_backend *backing;
	char *backing_name, *backing_format;
};

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}

static uint32_t be32_at(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}

static bool aligned(const struct qcow2 *q, uint64_t off)
{
	return (off & (q->cluster_size - 1)) == 0;
}

/* A cluster's worth at off lies in the file (as far as this process knows it). */
static bool in_file(const struct qcow2 *q, uint64_t off)
{
	return off < q->file_end && q->file_end - off >= q->cluster_size;
}

static int pwrite_be64(struct qcow2 *q, uint64_t off, uint64_t v)
{
	v = htobe64(v);
	return block_full_io(q->fd, &v, 8, off, true);
}

static int sync_file(struct qcow2 *q)
{
	return fdatasync(q->fd) == 0 ? 0 : -errno;
}

/* ---- refcounts (spec: "Host cluster management") --------------------------------- */

static int refcount_adjust(struct qcow2 *q, uint64_t host, int delta);

/* Refcount number 'index' of a block, for any refcount_order (0 to 6). */
static uint64_t refcount_get(const uint8_t *block, uint64_t index, unsigned int order)
{
	if (order >= 3) {
		unsigned int bytes = 1u << (order - 3);
		uint64_t v = 0;
		for (unsigned int i = 0; i < bytes; i++)
			v = v << 8 | block[index * bytes + i];
		return v;
	}
	/* Narrower than a byte: the first entry in the lowest bits. */
	unsigned int per_byte = 8u >> order, shift = (unsigned int)(index % per_byte) << order;
	return (block[index / per_byte] >> shift) & ((1u << (1u << order)) - 1);
}

static void refcount_put(uint8_t *block, uint64_t index, unsigned int order, uint64_t v)
{
	if (order >= 3) {
		unsigned int bytes = 1u << (order - 3);
		for (unsigned int i = bytes; i-- > 0; v >>= 8)
			block[index * bytes + i] = (uint8_t)v;
		return;
	}
	unsigned int per_byte = 8u >> order, shift = (unsigned int)(index % per_byte) << order;
	uint8_t mask = (uint8_t)(((1u << (1u << order)) - 1) << shift);
	uint8_t *p = &block[index / per_byte];
	*p = (uint8_t)((*p & ~mask) | ((v << shift) & mask));
}

static uint64_t refcount_max(const struct qcow2 *q)
{
	return q->refcount_order == 6 ? UINT64_MAX : (1ULL << (1u << q->refcount_order)) - 1;
}

/* Bytes [*at, *at + *len) of the refblock hold the refcount of a cluster, and its index there. */
static void refcount_place(const struct qcow2 *q, uint64_t index, uint64_t *at, size_t *len,
                           uint64_t *index_in_bytes)
{
	if (q->refcount_order >= 3) {
		*len = 1u << (q->refcount_order - 3);
		*at = index * *len;
		*index_in_bytes = 0;
	} else {
		*len = 1;
		*at = index / (8u >> q->refcount_order);
		*index_in_bytes = index % (8u >> q->refcount_order);
	}
}

static int grow_reftable(struct qcow2 *q, uint64_t need);

/* refcount_table_offset and refcount_table_clusters, in one write. */
static int write_reftable_pointer(struct qcow2 *q)
{
	uint8_t header[12];
	uint64_t at = htobe64(q->reftable_offset);
	uint32_t clusters = htobe32((uint32_t)(q->reftable_entries * 8 / q->cluster_size));

	memcpy(header, &at, 8);
	memcpy(header + 8, &clusters, 4);
	return block_full_io(q->fd, header, sizeof(header), 48, true);
}

/*
 * A new refcount block for reftable entry 'index', at the end of the file.
 * Its contents (its own refcount, when it covers itself) are durable before
 * the reftable entry that points at it.
 */
static int new_refblock(struct qcow2 *q, uint64_t index)
{
	uint64_t at = q->file_end, cluster = at >> q->cluster_bits;
	bool covers_itself = cluster >> q->refblock_bits == index;
	uint8_t *block = g_malloc0(q->cluster_size);
	int e;

	q->file_end += q->cluster_size;
	if (covers_itself)
		refcount_put(block, cluster & ((1ULL << q->refblock_bits) - 1), q->refcount_order,
		             1);
	e = block_full_io(q->fd, block, q->cluster_size, at, true);
	g_free(block);
	if (e == 0 && !covers_itself)
		e = refcount_adjust(q, at, +1);
	if (e == 0)
		e = sync_file(q);
	if (e == 0)
		e = pwrite_be64(q, q->reftable_offset + index * 8, at);
	if (e == 0)
		q->reftable[index] = at;
	return e;
}

/* The refblock for reftable entry 'index': *block is 0 when there is none and !create. */
static int refblock_find(struct qcow2 *q, uint64_t index, bool create, uint64_t *block)
{
	int e;

	*block = 0;
	if (index >= q->reftable_entries) {
		if (!create)
			return 0;
		if ((e = grow_reftable(q, index)) < 0)
			return e;
	}
	uint64_t off = q->reftable[index] & REFTABLE_MASK;
	if (off) {
		if (!aligned(q, off) || !in_file(q, off))
			return -EIO;
		*block = off;
		return 0;
	}
	if (!create)
		return 0;
	if ((e = new_refblock(q, index)) < 0)
		return e;
	*block = q->reftable[index];
	return 0;
}

static int refcount_read(struct qcow2 *q, uint64_t host, uint64_t *value)
{
	uint64_t cluster = host >> q->cluster_bits, block, at, sub;
	uint8_t bytes[8];
	size_t len;
	int e = refblock_find(q, cluster >> q->refblock_bits, false, &block);

	*value = 0;
	if (e < 0 || !block)
		return e;
	refcount_place(q, cluster & ((1ULL << q->refblock_bits) - 1), &at, &len, &sub);
	if ((e = block_full_io(q->fd, bytes, len, block + at, false)) < 0)
		return e;
	*value = refcount_get(bytes, sub, q->refcount_order);
	return 0;
}

/* Adds delta (+1 or -1) to a host cluster's refcount, on disk at once. */
static int refcount_adjust(struct qcow2 *q, uint64_t host, int delta)
{
	uint64_t cluster = host >> q->cluster_bits, block, at, sub, v;
	uint8_t bytes[8];
	size_t len;
	int e = refblock_find(q, cluster >> q->refblock_bits, delta > 0, &block);

	if (e < 0)
		return e;
	if (!block)
		return -EIO; /* freeing a cluster no refblock covers */
	refcount_place(q, cluster & ((1ULL << q->refblock_bits) - 1), &at, &len, &sub);
	if ((e = block_full_io(q->fd, bytes, len, block + at, false)) < 0)
		return e;
	v = refcount_get(bytes, sub, q->refcount_order);
	if ((delta < 0 && v == 0) || (delta > 0 && v == refcount_max(q)))
		return -EIO;
	refcount_put(bytes, sub, q->refcount_order, delta > 0 ? v + 1 : v - 1);
	return block_full_io(q->fd, bytes, len, block + at, true);
}

/*
 * A reftable too small for entry 'need': a bigger one at the end of the
 * file, durable with its own refcounts before the header points at it;
 * only then is the old one freed.
 */
static int grow_reftable(struct qcow2 *q, uint64_t need)
{
	uint64_t per_cluster = q->cluster_size / 8;
	uint64_t entries = MAX(need + 1, q->reftable_entries * 2), clusters;
	int e;

	/* Room also for entries covering the new table and the refblocks it may need. */
	for (;;) {
		clusters = (entries + per_cluster - 1) / per_cluster;
		uint64_t last = (q->file_end >> q->cluster_bits) + clusters + 2;
		if ((last >> q->refblock_bits) < entries)
			break;
		entries = (last >> q->refblock_bits) + 1;
	}
	if (clusters * q->cluster_size > MAX_REFTABLE_BYTES)
		return -ENOSPC;
	uint64_t *old = q->reftable, old_offset = q->reftable_offset;
	uint64_t old_clusters = (q->reftable_entries * 8 + q->cluster_size - 1) / q->cluster_size;
	uint64_t at = q->file_end;

	q->file_end += clusters * q->cluster_size;
	q->reftable = g_new0(uint64_t, clusters * per_cluster);
	memcpy(q->reftable, old, q->reftable_entries * 8);
	g_free(old);
	q->reftable_entries = clusters * per_cluster;
	q->reftable_offset = at; /* new refblocks are entered in the new table only */
	/* The table is in the file before any refcount says it is (see alloc_cluster). */
	uint64_t *disk = g_new(uint64_t, q->reftable_entries);
	for (uint64_t i = 0; i < q->reftable_entries; i++)
		disk[i] = htobe64(q->reftable[i]);
	e = block_full_io(q->fd, disk, q->reftable_entries * 8, at, true);
	g_free(disk);
	for (uint64_t i = 0; i < clusters && e == 0; i++)
		e = refcount_adjust(q, at + i * q->cluster_size, +1);
	if (e < 0 || (e = sync_file(q)) < 0 || (e = write_reftable_pointer(q)) < 0 ||
	    (e = sync_file(q)) < 0)
		return e;
	for (uint64_t i = 0; i < old_clusters; i++)
		refcount_adjust(q, old_offset + i * q->cluster_size, -1); /* a leak at worst */
	return 0;
}

/*
 * A new host cluster at the end of the file, holding 'contents', its
 * refcount 1 on disk already. The data goes first: a refcount never
 * counts a cluster past the end of the file, which the next open would
 * hand out again.
 */
static int alloc_cluster(struct qcow2 *q, const void *contents, uint64_t *host)
{
	uint64_t at = q->file_end;
	int e = block_full_io(q->fd, (void *)contents, q->cluster_size, at, true);

	q->file_end += q->cluster_size;
	*host = at;
	return e < 0 ? e : refcount_adjust(q, at, +1);
}

/* ---- L2 tables and their cache ---------------------------------------------------- */

static void l1_mark(struct qcow2 *q, uint64_t i)
{
	if (q->l1_dirty_lo >= q->l1_dirty_hi) {
		q->l1_dirty_lo = i;
		q->l1_dirty_hi = i + 1;
	}
	q->l1_dirty_lo = MIN(q->l1_dirty_lo, i);
	q->l1_dirty_hi = MAX(q->l1_dirty_hi, i + 1);
}

/* A dirty table goes to disk only after what its entries point at is durable. */
static int l2_write_back(struct qcow2 *q, struct l2_slot *s, bool synced)
{
	int e = synced ? 0 : sync_file(q);

	if (e == 0 && s->dirty)
		e = block_full_io(q->fd, s->table, q->cluster_size, s->offset, true);
	if (e == 0)
		s->dirty = false;
	return e;
}

static int l2_load(struct qcow2 *q, uint64_t offset, struct l2_slot **out)
{
	struct l2_slot *victim = &q->cache[0];
	int e;

	for (unsigned int i = 0; i < q->cache_slots; i++) {
		struct l2_slot *s = &q->cache[i];
		if (s->offset == offset) {
			s->last_use = ++q->clock;
			*out = s;
			return 0;
		}
		if (s->last_use < victim->last_use)
			victim = s;
	}
	if (victim->dirty && (e = l2_write_back(q, victim, false)) < 0)
		return e;
	if (!victim->table)
		victim->table = g_malloc(q->cluster_size);
	victim->offset = 0;
	if ((e = block_full_io(q->fd, victim->table, q->cluster_size, offset, false)) < 0)
		return e;
	victim->offset = offset;
	victim->last_use = ++q->clock;
	*out = victim;
	return 0;
}

/* A fresh, zeroed L2 table for L1 entry i; durable zeros before anything points at it. */
static int l2_create(struct qcow2 *q, uint64_t i)
{
	uint8_t *zeros = g_malloc0(q->cluster_size);
	uint64_t at;
	int e = alloc_cluster(q, zeros, &at);

	g_free(zeros);
	if (e < 0)
		return e;
	q->l1[i] = at | OFLAG_COPIED;
	l1_mark(q, i);
	return 0;
}

/* The L2 table holding guest cluster 'cluster'; *out is NULL when there is none and !create. */
static int l2_find(struct qcow2 *q, uint64_t cluster, bool create, struct l2_slot **out)
{
	uint64_t i = cluster / q->l2_entries;
	int e;

	*out = NULL;
	if (i >= q->l1_size)
		return -EIO;
	if (!(q->l1[i] & OFFSET_MASK)) {
		if (!create)
			return 0;
		if ((e = l2_create(q, i)) < 0)
			return e;
	}
	uint64_t off = q->l1[i] & OFFSET_MASK;
	if (!aligned(q, off) || !in_file(q, off))
		return -EIO;
	return l2_load(q, off, out);
}

static uint64_t *l2_entry(struct qcow2 *q, struct l2_slot *s, uint64_t cluster)
{
	return &s->table[cluster % q->l2_entries];
}

/* The L2 entry of a guest cluster (host-endian), 0 when no table maps it. */
static int entry_get(struct qcow2 *q, uint64_t cluster, uint64_t *entry)
{
	struct l2_slot *s;
	int e = l2_find(q, cluster, false, &s);

	*entry = e == 0 && s ? be64toh(*l2_entry(q, s, cluster)) : 0;
	return e;
}

static int entry_set(struct qcow2 *q, uint64_t cluster, uint64_t entry)
{
	struct l2_slot *s;
	int e = l2_find(q, cluster, true, &s);

	if (e < 0)
		return e;
	*l2_entry(q, s, cluster) = htobe64(entry);
	s->dirty = true;
	return 0;
}

/* ---- cluster kinds (spec: "Cluster mapping") ------------------------------------- */

static unsigned int compressed_offset_bits(const struct qcow2 *q)
{
	return 62 - (q->cluster_bits - 8);
}

static enum cluster_kind kind_of(const struct qcow2 *q, uint64_t entry)
{
	if (entry & OFLAG_COMPRESSED)
		return COMPRESSED;
	if (q->version >= 3 && (entry & OFLAG_ZERO))
		return ZERO;
	return entry & OFFSET_MASK ? NORMAL : UNALLOCATED;
}

/* A compressed cluster's bytes: where they start and how many, up to the sector's end. */
static void compressed_extent(const struct qcow2 *q, uint64_t entry, uint64_t *at, uint64_t *len)
{
	unsigned int x = compressed_offset_bits(q);
	uint64_t sectors = ((entry & ~(OFLAG_COPIED | OFLAG_COMPRESSED)) >> x) + 1;

	*at = entry & ((1ULL << x) - 1);
	*len = sectors * 512 - (*at & 511);
}

static bool inflate_zlib(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
	z_stream z = {.next_in = (Bytef *)in,
	              .avail_in = (uInt)in_len,
	              .next_out = out,
	              .avail_out = (uInt)out_len};
	bool ok;

	if (inflateInit2(&z, -12) != Z_OK) /* raw deflate, 4 KiB window */
		return false;
	int r = inflate(&z, Z_FINISH);
	ok = (r == Z_STREAM_END || r == Z_BUF_ERROR) && z.avail_out == 0;
	inflateEnd(&z);
	return ok;
}

static bool inflate_zstd(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
	ZSTD_DCtx *z = ZSTD_createDCtx();
	ZSTD_inBuffer src = {in, in_len, 0};
	ZSTD_outBuffer dst = {out, out_len, 0};

	/* The sectors after the frame are padding: stop once the cluster is whole. */
	while (z && dst.pos < dst.size && src.pos < src.size) {
		size_t before = src.pos + dst.pos;
		if (ZSTD_isError(ZSTD_decompressStream(z, &dst, &src)) ||
		    src.pos + dst.pos == before)
			break;
	}
	ZSTD_freeDCtx(z);
	return z && dst.pos == dst.size;
}

static int read_compressed(struct qcow2 *q, uint64_t entry, uint8_t *cluster)
{
	uint64_t at, len;

	/* Checked under the lock to start in the file (check_entry); past its end reads zeros. */
	compressed_extent(q, entry, &at, &len);
	uint8_t *in = g_malloc(len);
	int e = block_full_io(q->fd, in, len, at, false);
	bool ok = q->compression == COMPRESSION_ZSTD
	              ? inflate_zstd(in, len, cluster, q->cluster_size)
	              : inflate_zlib(in, len, cluster, q->cluster_size);
	g_free(in);
	return e < 0 ? e : ok ? 0 : -EIO;
}

/* What lies under an unallocated cluster: the backing file, or zeros past its end. */
static int read_backing(struct qcow2 *q, uint8_t *buf, size_t len, uint64_t off)
{
	struct block_backend *b = q->backing;
	size_t n = b && off < b->size ? (size_t)MIN(len, b->size - off) : 0;

	memset(buf + n, 0, len - n);
	return n ? b->ops->read(b, buf, n, off) : 0;
}

/* Bytes [at, at + len) of guest cluster 'cluster', whose L2 entry is 'entry'. */
static int read_part(struct qcow2 *q, uint64_t cluster, uint64_t entry, uint8_t *buf, size_t at,
                     size_t len)
{
	uint64_t guest = (cluster << q->cluster_bits) + at;
	uint8_t *whole;
	int e;

	switch (kind_of(q, entry)) {
	case UNALLOCATED:
		return read_backing(q, buf, len, guest);
	case ZERO:
		memset(buf, 0, len);
		return 0;
	case NORMAL:
		return block_full_io(q->fd, buf, len, (entry & OFFSET_MASK) + at, false);
	case COMPRESSED:
		whole = g_malloc(q->cluster_size);
		e = read_compressed(q, entry, whole);
		if (e == 0)
			memcpy(buf, whole + at, len);
		g_free(whole);
		return e;
	}
	return -EIO;
}

/* A mapping the rest of the code can trust: checked against the file and the version. */
static int check_entry(const struct qcow2 *q, uint64_t entry)
{
	uint64_t at, len;

	switch (kind_of(q, entry)) {
	case NORMAL:
		return aligned(q, entry & OFFSET_MASK) && in_file(q, entry & OFFSET_MASK) ? 0
		                                                                          : -EIO;
	case COMPRESSED:
		compressed_extent(q, entry, &at, &len);
		return at && at < q->file_end ? 0 : -EIO;
	default:
		return 0;
	}
}

static int lookup(struct qcow2 *q, uint64_t cluster, uint64_t *entry)
{
	g_mutex_lock(&q->lock);
	int e = entry_get(q, cluster, entry);
	if (e == 0)
		e = check_entry(q, *entry);
	g_mutex_unlock(&q->lock);
	return e;
}

static int qcow2_read(struct block_backend *b, void *buf, size_t len, uint64_t off)
{
	struct qcow2 *q = (struct qcow2 *)b;
	uint8_t *p = buf;

	while (len) {
		uint64_t cluster = off >> q->cluster_bits, entry;
		size_t at = (size_t)(off & (q->cluster_size - 1));
		size_t n = (size_t)MIN(len, q->cluster_size - at);
		int e = lookup(q, cluster, &entry);
		if (e == 0)
			e = read_part(q, cluster, entry, p, at, n);
		if (e < 0)
			return e;
		p += n, len -= n, off += n;
	}
	return 0;
}

/* ---- writing ---------------------------------------------------------------------- */

/* The clusters an entry held are freed once the entry that dropped them is durable. */
static void drop_later(struct qcow2 *q, uint64_t entry)
{
	uint64_t host = entry & OFFSET_MASK; /* a zero cluster (v3) may keep its host cluster */
	bool holds = kind_of(q, entry) == COMPRESSED ? check_entry(q, entry) == 0
	                                             : host && aligned(q, host) && in_file(q, host);

	if (holds)
		g_array_append_val(q->to_free, entry);
}

static void free_entry(struct qcow2 *q, uint64_t entry)
{
	uint64_t at, len;

	if (kind_of(q, entry) == COMPRESSED) {
		/* The sectors it spans, which may cross into the next host cluster. */
		compressed_extent(q, entry, &at, &len);
		uint64_t first = (at & ~511ULL) >> q->cluster_bits;
		uint64_t last = ((at & ~511ULL) + ((len + (at & 511)) - 1)) >> q->cluster_bits;
		for (uint64_t c = first; c <= last; c++)
			refcount_adjust(q, c << q->cluster_bits, -1);
		return;
	}
	at = entry & OFFSET_MASK;
	if (refcount_adjust(q, at, -1) == 0) {
		uint64_t left;
		if (refcount_read(q, at, &left) == 0 && left == 0)
			fallocate(q->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)at,
			          (off_t)q->cluster_size);
	}
}

/*
 * Copy-on-write of one guest cluster (unallocated, zero, compressed, or
 * shared): the old contents with the new bytes over them go to a new
 * cluster, then the entry points there. Under the lock.
 */
static int write_new_cluster(struct qcow2 *q, uint64_t cluster, uint64_t old, const uint8_t *buf,
                             size_t at, size_t len)
{
	uint8_t *whole = g_malloc(q->cluster_size);
	uint64_t host;
	int e = 0;

	if (len < q->cluster_size)
		e = read_part(q, cluster, old, whole, 0, q->cluster_size);
	memcpy(whole + at, buf, len);
	if (e == 0)
		e = alloc_cluster(q, whole, &host);
	if (e == 0)
		e = entry_set(q, cluster, host | OFLAG_COPIED);
	if (e == 0)
		drop_later(q, old);
	g_free(whole);
	return e;
}

static int write_part(struct qcow2 *q, uint64_t cluster, const uint8_t *buf, size_t at, size_t len)
{
	uint64_t entry;
	int e;

	g_mutex_lock(&q->lock);
	e = entry_get(q, cluster, &entry);
	if (e == 0)
		e = check_entry(q, entry);
	if (e == 0 && kind_of(q, entry) == NORMAL && (entry & OFLAG_COPIED)) {
		g_mutex_unlock(&q->lock);
		return block_full_io(q->fd, (void *)buf, len, (entry & OFFSET_MASK) + at, true);
	}
	if (e == 0)
		e = write_new_cluster(q, cluster, entry, buf, at, len);
	g_mutex_unlock(&q->lock);
	return e;
}

static int qcow2_write(struct block_backend *b, const void *buf, size_t len, uint64_t off)
{
	struct qcow2 *q = (struct qcow2 *)b;
	const uint8_t *p = buf;

	while (len) {
		size_t at = (size_t)(off & (q->cluster_size - 1));
		size_t n = (size_t)MIN(len, q->cluster_size - at);
		int e = write_part(q, off >> q->cluster_bits, p, at, n);
		if (e < 0)
			return e;
		p += n, len -= n, off += n;
	}
	return 0;
}

/*
 * The L2 entry a whole cluster gets when its data goes away: unallocated
 * lets the backing file show through, which a zero cluster (v3) hides.
 * Returns false where v2 has no entry for "zeros over a backing file".
 */
static bool emptied_entry(const struct qcow2 *q, bool must_read_zero, uint64_t *entry)
{
	if (!must_read_zero || !q->backing) {
		*entry = 0;
		return true;
	}
	*entry = OFLAG_ZERO;
	return q->version >= 3;
}

/* Zeros written as data, where no entry can say "zeros". */
static int write_zeros(struct qcow2 *q, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[4096];
	int e = 0;

	for (uint64_t k = 0; k < len && e == 0; k += sizeof(zeros))
		e = qcow2_write(&q->b, zeros, (size_t)MIN(sizeof(zeros), len - k), off + k);
	return e;
}

static int empty_cluster(struct qcow2 *q, uint64_t cluster, bool must_read_zero)
{
	uint64_t entry, old;
	int e;

	uint64_t start = cluster << q->cluster_bits;

	if (!emptied_entry(q, must_read_zero, &entry))
		return write_zeros(q, start, MIN(q->cluster_size, q->b.size - start));
	g_mutex_lock(&q->lock);
	e = entry_get(q, cluster, &old);
	if (e == 0 && old != entry) {
		e = entry_set(q, cluster, entry);
		if (e == 0)
			drop_later(q, old);
	}
	g_mutex_unlock(&q->lock);
	return e;
}

/* Whole clusters lose their data; the partial ones at the ends get zeros or nothing. */
static int empty_range(struct qcow2 *q, uint64_t off, uint64_t len, bool must_read_zero)
{
	while (len) {
		uint64_t at = off & (q->cluster_size - 1);
		uint64_t n = MIN(len, q->cluster_size - at);
		bool last_partial = off + n == q->b.size && at == 0;
		int e = 0;
		if (n == q->cluster_size || last_partial)
			e = empty_cluster(q, off >> q->cluster_bits, must_read_zero);
		else if (must_read_zero)
			e = write_zeros(q, off, n);
		if (e < 0)
			return e;
		off += n, len -= n;
	}
	return 0;
}

static int qcow2_discard(struct block_backend *b, uint64_t off, uint64_t len)
{
	return empty_range((struct qcow2 *)b, off, len, false);
}

static int qcow2_write_zeroes(struct block_backend *b, uint64_t off, uint64_t len, bool may_unmap)
{
	return empty_range((struct qcow2 *)b, off, len, true);
}

static int write_l1(struct qcow2 *q)
{
	uint64_t lo = q->l1_dirty_lo, hi = q->l1_dirty_hi;
	int e = 0;

	if (lo >= hi)
		return 0;
	uint64_t *disk = g_new(uint64_t, hi - lo);
	for (uint64_t i = lo; i < hi; i++)
		disk[i - lo] = htobe64(q->l1[i]);
	e = block_full_io(q->fd, disk, (hi - lo) * 8, q->l1_offset + lo * 8, true);
	g_free(disk);
	if (e == 0)
		q->l1_dirty_lo = q->l1_dirty_hi = 0;
	return e;
}

/* Data and refcounts, then the tables that point at them, then what they gave up. */
static int flush_locked(struct qcow2 *q)
{
	int e = sync_file(q);

	for (unsigned int i = 0; i < q->cache_slots && e == 0; i++)
		e = l2_write_back(q, &q->cache[i], true);
	if (e == 0)
		e = write_l1(q);
	if (e == 0)
		e = sync_file(q);
	if (e < 0)
		return e;
	for (guint i = 0; i < q->to_free->len; i++)
		free_entry(q, g_array_index(q->to_free, uint64_t, i));
	g_array_set_size(q->to_free, 0);
	return sync_file(q);
}

static int qcow2_flush(struct block_backend *b)
{
	struct qcow2 *q = (struct qcow2 *)b;

	if (b->read_only)
		return 0;
	g_mutex_lock(&q->lock);
	int e = flush_locked(q);
	g_mutex_unlock(&q->lock);
	return e;
}

static void qcow2_close(struct block_backend *b)
{
	struct qcow2 *q = (struct qcow2 *)b;

	qcow2_flush(b);
	for (unsigned int i = 0; i < q->cache_slots; i++)
		g_free(q->cache[i].table);
	g_free(q->cache);
	g_free(q->l1);
	g_free(q->reftable);
	g_array_free(q->to_free, true);
	block_close(q->backing);
	g_free(q->backing_name);
	g_free(q->backing_format);
	g_mutex_clear(&q->lock);
	close(q->fd);
	g_free(q);
}

static void qcow2_describe(struct block_backend *b, struct block_info *out)
{
	struct qcow2 *q = (struct qcow2 *)b;

	out->cluster_size = q->cluster_size;
	out->dirty = q->dirty_bit;
	out->backing_name = q->backing_name;
	out->backing_format = q->backing_format;
	out->backing = q->backing;
}

static const struct block_ops qcow2_ops = {
    .describe = qcow2_describe,
    .read = qcow2_read,
    .write = qcow2_write,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .close = qcow2_close,
};

/* ---- opening: the header, every field checked ------------------------------------ */

struct header {
	uint32_t version, cluster_bits, backing_size, crypt, l1_size, reftable_clusters;
	uint32_t nb_snapshots, refcount_order, length;
	uint64_t backing_offset, size, l1_offset, reftable_offset;
	uint64_t incompatible, compatible, autoclear;
	uint8_t compression;
};

static void header_parse(const uint8_t *h, struct header *o)
{
	o->version = be32_at(h + 4);
	o->backing_offset = be64_at(h + 8);
	o->backing_size = be32_at(h + 16);
	o->cluster_bits = be32_at(h + 20);
	o->size = be64_at(h + 24);
	o->crypt = be32_at(h + 32);
	o->l1_size = be32_at(h + 36);
	o->l1_offset = be64_at(h + 40);
	o->reftable_offset = be64_at(h + 48);
	o->reftable_clusters = be32_at(h + 56);
	o->nb_snapshots = be32_at(h + 60);
	if (o->version < 3) {
		o->refcount_order = 4;
		o->length = V2_HEADER_LENGTH;
		return;
	}
	o->incompatible = be64_at(h + 72);
	o->compatible = be64_at(h + 80);
	o->autoclear = be64_at(h + 88);
	o->refcount_order = be32_at(h + 96);
	o->length = be32_at(h + 100);
}

/* A table of 'bytes' at 'offset' lies in the file, cluster-aligned. */
static bool table_ok(uint64_t offset, uint64_t bytes, uint64_t cluster_size, uint64_t file_size)
{
	return offset % cluster_size == 0 && offset <= file_size && bytes <= file_size - offset &&
	       offset != 0;
}

static bool check_features(const struct header *h, const char *path, bool read_only, GError **err)
{
	static const struct {
		uint64_t bit;
		const char *what;
	} unsupported[] = {
	    {INCOMPAT_EXTENDED_L2, "extended L2 entries"},
	    {INCOMPAT_DATA_FILE, "external data files"},
	};
	uint64_t known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION;

	for (size_t i = 0; i < G_N_ELEMENTS(unsupported); i++)
		if (h->incompatible & unsupported[i].bit)
			return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 %s are not supported",
			                 path, unsupported[i].what);
	if (h->incompatible & ~known)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: unknown qcow2 incompatible features 0x%" G_GINT64_MODIFIER
		                 "x",
		                 path, (guint64)(h->incompatible & ~known));
	if (h->crypt)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: encrypted qcow2 images are not supported", path);
	if (read_only)
		return true;
	if (h->incompatible & INCOMPAT_CORRUPT)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: the image is marked corrupt; repair it with qemu-img check "
		                 "-r all, or attach it read-only",
		                 path);
	if (h->nb_snapshots)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: the image has internal snapshots: "
		                 "attach it read-only (or with ,snapshot)",
		                 path);
	return true;
}

static bool check_header(const struct header *h, const char *path, uint64_t file_size,
                         bool read_only, GError **err)
{
	if (h->version != 2 && h->version != 3)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 version %u is not supported",
		                 path, h->version);
	if (h->cluster_bits < MIN_CLUSTER_BITS || h->cluster_bits > MAX_CLUSTER_BITS)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 cluster_bits %u is out of range",
		                 path, h->cluster_bits);
	uint64_t cs = 1ULL << h->cluster_bits;
	if (h->version >= 3 && (h->length < V3_HEADER_LENGTH || h->length > cs || h->length % 8))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 header_length %u is invalid",
		                 path, h->length);
	if (h->refcount_order > 6)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 refcount_order %u is invalid",
		                 path, h->refcount_order);
	if (h->size > MAX_VIRTUAL_SIZE)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 virtual size is too large", path);
	uint64_t l2_span = cs * (cs / 8);
	if ((uint64_t)h->l1_size * 8 > MAX_L1_BYTES ||
	    h->l1_size < (h->size + l2_span - 1) / l2_span)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 L1 table size %u is invalid",
		                 path, h->l1_size);
	if (h->l1_size && !table_ok(h->l1_offset, (uint64_t)h->l1_size * 8, cs, file_size))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 L1 table lies outside the file",
		                 path);
	uint64_t rt_bytes = (uint64_t)h->reftable_clusters * cs;
	if (!h->reftable_clusters || rt_bytes > MAX_REFTABLE_BYTES ||
	    !table_ok(h->reftable_offset, rt_bytes, cs, file_size))
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: qcow2 refcount table is invalid or outside the file", path);
	if (h->backing_offset &&
	    (h->backing_size > MAX_BACKING_NAME || h->backing_size == 0 || h->backing_offset > cs ||
	     h->backing_size > cs - h->backing_offset))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 backing file name is invalid",
		                 path);
	return check_features(h, path, read_only, err);
}

/* Header extensions, in the first cluster after the header (spec: "Header extensions"). */
static bool read_extensions(struct qcow2 *q, const uint8_t *first, const struct header *h,
                            const char *path, GError **err)
{
	uint64_t at = h->length;

	while (at + 8 <= q->cluster_size) {
		uint32_t type = be32_at(first + at), len = be32_at(first + at + 4);
		if (type == EXT_END)
			return true;
		if (len > q->cluster_size - at - 8)
			return husk_fail(
			    err, HUSK_EXIT_USAGE,
			    "%s: qcow2 header extension 0x%x runs past the first cluster", path,
			    type);
		if (type == EXT_BACKING_FORMAT) {
			g_free(q->backing_format);
			q->backing_format = g_strndup((const char *)first + at + 8, len);
		}
		at += 8 + ((uint64_t)len + 7) / 8 * 8;
	}
	return true;
}

/* The backing file, its name relative to the image's folder, its format as recorded. */
static bool open_backing(struct qcow2 *q, const uint8_t *first, const struct header *h,
                         const char *path, struct block_chain *chain, GError **err)
{
	if (!h->backing_offset)
		return true;
	q->backing_name = g_strndup((const char *)first + h->backing_offset, h->backing_size);
	if (strlen(q->backing_name) != h->backing_size)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 backing file name holds a NUL",
		                 path);
	if (!q->backing_format)
		return husk_fail(
		    err, HUSK_EXIT_USAGE,
		    "%s: the backing file's format is not recorded (husk never guesses "
		    "it); record it with qemu-img rebase -u -b %s -F FORMAT",
		    path, q->backing_name);
	char *dir = g_path_get_dirname(path);
	char *full = g_path_is_absolute(q->backing_name)
	                 ? g_strdup(q->backing_name)
	                 : g_build_filename(dir, q->backing_name, NULL);
	/* The image the user named, then the file that failed (which names itself). */
	bool top = chain->depth == 1;
	q->backing = block_open_backing(full, q->backing_format, chain, err);
	g_free(dir);
	g_free(full);
	if (!q->backing && top)
		g_prefix_error(err, "%s: backing file: ", path);
	return q->backing != NULL;
}

static bool load_table(struct qcow2 *q, uint64_t **table, uint64_t entries, uint64_t offset,
                       const char *path, GError **err)
{
	*table = g_new0(uint64_t, MAX(entries, 1));
	if (entries && block_full_io(q->fd, *table, entries * 8, offset, false) < 0)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: cannot read a qcow2 table: %s", path,
		                 g_strerror(errno));
	for (uint64_t i = 0; i < entries; i++)
		(*table)[i] = be64toh((*table)[i]);
	return true;
}

static bool setup(struct qcow2 *q, const struct header *h, uint64_t file_size)
{
	q->version = h->version;
	q->cluster_bits = h->cluster_bits;
	q->cluster_size = 1ULL << h->cluster_bits;
	q->l2_entries = q->cluster_size / 8;
	q->refcount_order = h->refcount_order;
	q->refblock_bits = h->cluster_bits + 3 - h->refcount_order;
	q->dirty_bit = h->incompatible & INCOMPAT_DIRTY;
	q->l1_size = h->l1_size;
	q->l1_offset = h->l1_offset;
	q->reftable_entries = (uint64_t)h->reftable_clusters * q->cluster_size / 8;
	q->reftable_offset = h->reftable_offset;
	q->file_end = (file_size + q->cluster_size - 1) & ~(q->cluster_size - 1);
	q->cache_slots = (unsigned int)CLAMP(L2_CACHE_BYTES / q->cluster_size, 8, L2_CACHE_MAX);
	q->cache = g_new0(struct l2_slot, q->cache_slots);
	q->to_free = g_array_new(false, false, sizeof(uint64_t));
	q->b.ops = &qcow2_ops;
	q->b.format = "qcow2";
	q->b.size = h->size;
	return true;
}

static bool compression_ok(struct qcow2 *q, const uint8_t *first, const struct header *h,
                           const char *path, GError **err)
{
	q->compression =
	    h->version >= 3 && h->length > V3_HEADER_LENGTH ? first[104] : COMPRESSION_ZLIB;
	if (q->compression > COMPRESSION_ZSTD)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: unknown qcow2 compression type %u",
		                 path, q->compression);
	if (q->compression && !(h->incompatible & INCOMPAT_COMPRESSION))
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: qcow2 compression type set without its feature bit", path);
	return true;
}

/* Clears autoclear bits husk does not keep up (bitmaps): the spec says a writer must. */
static bool clear_autoclear(struct qcow2 *q, const struct header *h, const char *path, GError **err)
{
	if (q->b.read_only || h->version < 3 || !h->autoclear)
		return true;
	if (pwrite_be64(q, 88, 0) < 0 || sync_file(q) < 0)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: cannot update the qcow2 header: %s",
		                 path, g_strerror(errno));
	return true;
}

/* ---- a dirty image: refcounts rebuilt from the tables -------------------------- */

#define MAX_REBUILD_CLUSTERS (16u << 20) /* 32 MiB of counts */

/* One more reference to each host cluster in [at, at + len). */
static bool count_range(uint16_t *counts, uint64_t nclusters, unsigned int bits, uint64_t at,
                        uint64_t len)
{
	uint64_t last = (at + len - 1) >> bits;

	if (len == 0 || at + len < at || last >= nclusters)
		return false;
	for (uint64_t c = at >> bits; c <= last; c++)
		counts[c] = counts[c] == UINT16_MAX ? UINT16_MAX : counts[c] + 1;
	return true;
}

/* The host clusters an L2 entry uses, counted; false for one outside the file. */
static bool count_entry(struct qcow2 *q, uint16_t *counts, uint64_t n, uint64_t entry)
{
	uint64_t at, len;

	if (kind_of(q, entry) == COMPRESSED) {
		compressed_extent(q, entry, &at, &len);
		return check_entry(q, entry) == 0 &&
		       count_range(counts, n, q->cluster_bits, at & ~511ULL, len + (at & 511));
	}
	at = entry & OFFSET_MASK;
	return !at ||
	       (aligned(q, at) && count_range(counts, n, q->cluster_bits, at, q->cluster_size));
}

/* Counts every reference the header, L1 and L2 tables make (spec: "Host cluster management"). */
static bool count_references(struct qcow2 *q, uint16_t *counts, uint64_t n)
{
	unsigned int bits = q->cluster_bits;
	uint64_t *l2 = g_malloc(q->cluster_size);
	bool ok = count_range(counts, n, bits, 0, q->cluster_size) &&
	          (!q->l1_size || count_range(counts, n, bits, q->l1_offset, q->l1_size * 8));

	for (uint64_t i = 0; ok && i < q->l1_size; i++) {
		uint64_t off = q->l1[i] & OFFSET_MASK;
		if (!off)
			continue;
		ok = aligned(q, off) && count_range(counts, n, bits, off, q->cluster_size) &&
		     block_full_io(q->fd, l2, q->cluster_size, off, false) == 0;
		for (uint64_t j = 0; ok && j < q->l2_entries; j++)
			ok = count_entry(q, counts, n, be64toh(l2[j]));
	}
	g_free(l2);
	return ok;
}

/* Refcount blocks, then the table, at the end of the file: counts for them included. */
static int write_refcounts(struct qcow2 *q, uint16_t **counts, uint64_t n)
{
	uint64_t per_block = 1ULL << q->refblock_bits, per_table = q->cluster_size / 8;
	uint64_t blocks = 0, tables = 0, total = n;

	for (;;) {
		uint64_t b = (total + per_block - 1) / per_block,
		         t = (b + per_table - 1) / per_table;
		if (b == blocks && t == tables)
			break;
		blocks = b, tables = t, total = n + b + t;
	}
	if (tables * q->cluster_size > MAX_REFTABLE_BYTES)
		return -EFBIG;
	*counts = g_renew(uint16_t, *counts, total);
	for (uint64_t c = n; c < total; c++)
		(*counts)[c] = 1;
	uint64_t at = q->file_end, table_at = at + blocks * q->cluster_size;
	uint8_t *block = g_malloc(q->cluster_size);
	uint64_t *table = g_new0(uint64_t, tables * per_table);
	int e = 0;
	for (uint64_t b = 0; b < blocks && e == 0; b++) {
		memset(block, 0, q->cluster_size);
		for (uint64_t c = b * per_block; c < MIN(total, (b + 1) * per_block) && e == 0;
		     c++) {
			if ((*counts)[c] > refcount_max(q))
				e = -EOVERFLOW;
			refcount_put(block, c - b * per_block, q->refcount_order, (*counts)[c]);
		}
		table[b] = htobe64(at + b * q->cluster_size);
		if (e == 0)
			e = block_full_io(q->fd, block, q->cluster_size, at + b * q->cluster_size,
			                  true);
	}
	if (e == 0)
		e = block_full_io(q->fd, table, tables * q->cluster_size, table_at, true);
	g_free(block);
	for (uint64_t i = 0; i < tables * per_table; i++)
		table[i] = be64toh(table[i]);
	g_free(q->reftable);
	q->reftable = table;
	q->reftable_entries = tables * per_table;
	q->reftable_offset = table_at;
	q->file_end = at + (blocks + tables) * q->cluster_size;
	return e;
}

/* The new table takes over, then the dirty bit goes: a crash before that rebuilds again. */
static int switch_refcounts(struct qcow2 *q, uint64_t incompatible)
{
	int e;

	if ((e = sync_file(q)) < 0 || (e = write_reftable_pointer(q)) < 0 ||
	    (e = sync_file(q)) < 0 || (e = pwrite_be64(q, 72, incompatible & ~INCOMPAT_DIRTY)) < 0)
		return e;
	return sync_file(q);
}

/*
 * A dirty image (lazy refcounts, spec: "incompatible features" bit 0) may
 * have refcounts that lie: before writing, count what the tables use and
 * write all the refcounts anew.
 */
static bool rebuild_refcounts(struct qcow2 *q, const struct header *h, const char *path,
                              GError **err)
{
	uint64_t n = q->file_end >> q->cluster_bits;
	int e = -EFBIG;

	if (q->b.read_only || !(h->incompatible & INCOMPAT_DIRTY))
		return true;
	if (n <= MAX_REBUILD_CLUSTERS) {
		uint16_t *counts = g_new0(uint16_t, n);
		e = count_references(q, counts, n) ? write_refcounts(q, &counts, n) : -EIO;
		if (e == 0)
			e = switch_refcounts(q, h->incompatible);
		g_free(counts);
	}
	if (e == 0)
		return true;
	return husk_fail(err, HUSK_EXIT_USAGE,
	                 "%s: the image is dirty and its refcounts cannot be rebuilt (%s); "
	                 "repair it with qemu-img check -r all, or attach it read-only",
	                 path, g_strerror(-e));
}

static bool open_image(struct qcow2 *q, const char *path, struct block_chain *chain, GError **err)
{
	uint8_t head[V3_HEADER_LENGTH] = {0};
	struct header h = {0};
	struct stat st;

	if (fstat(q->fd, &st) < 0 || block_full_io(q->fd, head, sizeof(head), 0, false) < 0)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: %s", path, g_strerror(errno));
	if (memcmp(head, QCOW2_MAGIC, 4) != 0)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: not a qcow2 image", path);
	header_parse(head, &h);
	if (!check_header(&h, path, (uint64_t)st.st_size, q->b.read_only, err))
		return false;
	setup(q, &h, (uint64_t)st.st_size);
	uint8_t *first = g_malloc0(q->cluster_size);
	bool ok = block_full_io(q->fd, first, q->cluster_size, 0, false) == 0 &&
	          compression_ok(q, first, &h, path, err) &&
	          read_extensions(q, first, &h, path, err) &&
	          open_backing(q, first, &h, path, chain, err) &&
	          load_table(q, &q->l1, q->l1_size, q->l1_offset, path, err) &&
	          load_table(q, &q->reftable, q->reftable_entries, q->reftable_offset, path, err) &&
	          rebuild_refcounts(q, &h, path, err) && clear_autoclear(q, &h, path, err);
	g_free(first);
	if (!ok && err && !*err)
		husk_fail(err, HUSK_EXIT_USAGE, "%s: cannot read the qcow2 header", path);
	return ok;
}

static bool qcow2_probe(const uint8_t *head, size_t len)
{
	return len >= 4 && memcmp(head, QCOW2_MAGIC, 4) == 0;
}

static struct block_backend *qcow2_open(int fd, const char *path,
                                        const struct block_open_options *o,
                                        struct block_chain *chain, GError **err)
{
	struct qcow2 *q = g_new0(struct qcow2, 1);

	/* Metadata is written in pieces smaller than a block: no O_DIRECT. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_DIRECT);
	q->fd = fd;
	q->b.read_only = o->read_only;
	g_mutex_init(&q->lock);
	if (!open_image(q, path, chain, err)) {
		if (!q->to_free)
			q->to_free = g_array_new(false, false, sizeof(uint64_t));
		q->b.read_only = true; /* nothing to flush */
		qcow2_close(&q->b);
		return NULL;
	}
	return &q->b;
}

/* ---- creating ------------------------------------------------------------------- */

#define NEW_CLUSTER_BITS   16 /* 64 KiB, as qemu-img makes them */
#define NEW_REFCOUNT_ORDER 4

static void put_be64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

/*
 * The first cluster: a v3 header, the backing format extension, the end
 * of the extensions, then the backing file's name.
 */
static bool write_header(int fd, const char *path, uint64_t size, uint32_t l1_size,
                         uint32_t l1_clusters, const char *backing, const char *backing_format,
                         GError **err)
{
	uint64_t cs = 1ULL << NEW_CLUSTER_BITS;
	uint8_t *h = g_malloc0(cs);
	size_t at = V3_HEADER_LENGTH;

	memcpy(h, QCOW2_MAGIC, 4);
	put_be32(h + 4, 3);
	put_be32(h + 20, NEW_CLUSTER_BITS);
	put_be64(h + 24, size);
	put_be32(h + 36, l1_size);
	put_be64(h + 40, 3 * cs);
	put_be64(h + 48, cs);
	put_be32(h + 56, 1);
	put_be32(h + 96, NEW_REFCOUNT_ORDER);
	put_be32(h + 100, V3_HEADER_LENGTH);
	if (backing) {
		size_t fmt_len = strlen(backing_format);
		put_be32(h + at, EXT_BACKING_FORMAT);
		put_be32(h + at + 4, (uint32_t)fmt_len);
		memcpy(h + at + 8, backing_format, fmt_len);
		at += 8 + (fmt_len + 7) / 8 * 8;
		at += 8; /* the end-of-extensions mark: zeros */
		put_be64(h + 8, at);
		put_be32(h + 16, (uint32_t)strlen(backing));
		memcpy(h + at, backing, strlen(backing));
	}
	bool ok = block_full_io(fd, h, cs, 0, true) == 0;
	/* Refcount table (cluster 1) -> block (cluster 2): header, the two, the L1 table. */
	memset(h, 0, cs);
	put_be64(h, 2 * cs);
	ok = ok && block_full_io(fd, h, cs, cs, true) == 0;
	memset(h, 0, cs);
	for (uint32_t c = 0; c < 3 + l1_clusters; c++)
		h[2 * c + 1] = 1; /* 16-bit big-endian refcounts */
	ok = ok && block_full_io(fd, h, cs, 2 * cs, true) == 0 &&
	     ftruncate(fd, (off_t)((3 + l1_clusters) * cs)) == 0;
	g_free(h);
	if (!ok)
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path, g_strerror(errno));
	return ok;
}

static bool qcow2_create(int fd, const char *path, uint64_t size, const char *backing,
                         const char *backing_format, GError **err)
{
	uint64_t cs = 1ULL << NEW_CLUSTER_BITS, l2_span = cs * (cs / 8);
	uint64_t l1_size = (size + l2_span - 1) / l2_span;
	uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;

	if (size > MAX_VIRTUAL_SIZE || l1_size * 8 > MAX_L1_BYTES)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: size too large for qcow2", path);
	if (backing && strlen(backing) > MAX_BACKING_NAME)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: backing file name longer than %d bytes",
		                 path, MAX_BACKING_NAME);
	if (backing && !backing_format)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: the backing file's format is needed",
		                 path);
	return write_header(fd, path, size, (uint32_t)l1_size, (uint32_t)MAX(l1_clusters, 1),
	                    backing, backing_format, err);
}

const struct block_format block_qcow2 = {
    .name = "qcow2",
    .probe = qcow2_probe,
    .open = qcow2_open,
    .create = qcow2_create,
};
