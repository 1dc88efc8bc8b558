// SPDX-License-Identifier: MIT
/*
 * qcow2 against qemu-img: images qemu-img makes read back as qemu-img reads
 * them; images husk writes pass `qemu-img check` and compare equal to a raw
 * copy that got the same writes. Tests that need qemu-img skip without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/block/block.h"

#define MIB (1024 * 1024)

struct dir {
	char *path;
};

static bool need_qemu_img(void)
{
	char *img = g_find_program_in_path("qemu-img");
	char *io = g_find_program_in_path("qemu-io");
	bool ok = img && io;

	if (!ok)
		g_test_skip("qemu-img or qemu-io is missing (Debian: qemu-utils)");
	g_free(img);
	g_free(io);
	return ok;
}

/* Runs a shell command in the test's folder; returns its exit status. */
static int sh(struct dir *d, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static int sh(struct dir *d, const char *fmt, ...)
{
	va_list ap;
	char *out = NULL, *cmd;
	int status = -1;

	va_start(ap, fmt);
	cmd = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	g_assert_true(g_spawn_sync(d->path, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL,
	                           NULL, &out, NULL, &status, NULL));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		g_test_message("%s: status %d: %s", cmd, status, out);
	g_free(cmd);
	g_free(out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* On tmpfs where there is one: the tests fdatasync a lot, and a disk makes that slow. */
static void dir_setup(struct dir *d, gconstpointer data)
{
	if (g_file_test("/dev/shm", G_FILE_TEST_IS_DIR))
		d->path = g_mkdtemp(g_strdup("/dev/shm/husk-qcow2-XXXXXX"));
	else
		d->path = g_dir_make_tmp("husk-qcow2-XXXXXX", NULL);
	g_assert_nonnull(d->path);
}

static void dir_teardown(struct dir *d, gconstpointer data)
{
	char *q = g_shell_quote(d->path);
	char *cmd = g_strdup_printf("rm -rf %s", q);
	g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL));
	g_free(cmd);
	g_free(q);
	g_free(d->path);
}

static char *at(struct dir *d, const char *name)
{
	return g_build_filename(d->path, name, NULL);
}

/* Random 4 KiB blocks, a quarter of them zeros (so converted images have holes). */
static uint8_t *random_disk(size_t size, uint32_t seed)
{
	GRand *r = g_rand_new_with_seed(seed);
	uint8_t *p = g_malloc0(size);

	for (size_t b = 0; b < size; b += 4096) {
		if (g_rand_int_range(r, 0, 4) == 0)
			continue;
		for (size_t i = b; i < MIN(size, b + 4096); i++)
			p[i] = (uint8_t)g_rand_int(r);
	}
	g_rand_free(r);
	return p;
}

static void write_file(struct dir *d, const char *name, const void *p, size_t len)
{
	char *path = at(d, name);
	g_assert_true(g_file_set_contents(path, p, (gssize)len, NULL));
	g_free(path);
}

/* A file of random_disk()'s bytes. */
static void random_file(struct dir *d, const char *name, size_t size, uint32_t seed)
{
	uint8_t *disk = random_disk(size, seed);
	write_file(d, name, disk, size);
	g_free(disk);
}

static struct block_backend *open_image(struct dir *d, const char *name, const char *format,
                                        bool read_only, GError **err)
{
	char *path = at(d, name);
	struct block_open_options o = {.format = format, .read_only = read_only};
	struct block_backend *b = block_open(path, &o, err);
	g_free(path);
	return b;
}

/* The image reads, through husk, as qemu-img converts it to raw. */
static void assert_reads_like_qemu(struct dir *d, const char *name)
{
	GError *err = NULL;
	gchar *want;
	gsize want_len;

	g_assert_cmpint(sh(d, "qemu-img convert -O raw %s want.raw", name), ==, 0);
	char *want_path = at(d, "want.raw");
	g_assert_true(g_file_get_contents(want_path, &want, &want_len, NULL));
	g_free(want_path);
	struct block_backend *b = open_image(d, name, NULL, true, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(b->size, ==, want_len);
	uint8_t *got = g_malloc(want_len);
	GRand *r = g_rand_new_with_seed(7);
	for (size_t off = 0; off < want_len;) {
		size_t n = (size_t)g_rand_int_range(r, 1, 300000);
		n = MIN(n, want_len - off);
		g_assert_cmpint(block_pread(b, got + off, n, off), ==, 0);
		off += n;
	}
	g_assert_true(memcmp(got, want, want_len) == 0);
	g_rand_free(r);
	g_free(got);
	g_free(want);
	block_close(b);
}

static void test_cluster_sizes(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	random_file(d, "src.raw", 3 * MIB + 1536, 1);
	for (unsigned int bits = 9; bits <= 21; bits++) {
		g_assert_cmpint(sh(d,
		                   "qemu-img convert -O qcow2 -o cluster_size=%u src.raw c.qcow2",
		                   1u << bits),
		                ==, 0);
		assert_reads_like_qemu(d, "c.qcow2");
	}
}

static void test_compressed(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	static const char *const types[] = {"zlib", "zstd"};
	uint8_t *disk = random_disk(2 * MIB, 2);

	/* Half the disk compresses well: text-like bytes. */
	for (size_t i = 0; i < MIB; i++)
		disk[i] = (uint8_t) "husk qcow2 "[i % 11];
	write_file(d, "src.raw", disk, 2 * MIB);
	for (int t = 0; t < 2; t++) {
		for (unsigned int cs = 4096; cs <= 65536; cs *= 16) {
			g_assert_cmpint(sh(d,
			                   "qemu-img convert -c -O qcow2 -o compression_type=%s,"
			                   "cluster_size=%u src.raw c.qcow2",
			                   types[t], cs),
			                ==, 0);
			assert_reads_like_qemu(d, "c.qcow2");
		}
	}
	g_free(disk);
}

static void test_v2_and_zero_clusters(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	random_file(d, "src.raw", 2 * MIB, 3);
	g_assert_cmpint(sh(d, "qemu-img convert -O qcow2 -o compat=0.10 src.raw v2.qcow2"), ==, 0);
	assert_reads_like_qemu(d, "v2.qcow2");
	g_assert_cmpint(sh(d, "qemu-img create -q -f qcow2 z.qcow2 2M && qemu-io -f qcow2 "
	                      "-c 'write -P 0x5a 0 2M' -c 'write -z 64k 256k' "
	                      "-c 'write -z -u 1M 192k' -c 'write -z 1500k 3k' z.qcow2"),
	                ==, 0);
	assert_reads_like_qemu(d, "z.qcow2");
}

static void test_backing_chain(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	random_file(d, "base.raw", 2 * MIB, 4);
	g_assert_cmpint(sh(d, "qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 && "
	                      "qemu-io -f qcow2 -c 'write -P 1 100k 300k' -c 'write -z 1M 64k' "
	                      "mid.qcow2 && mkdir top && "
	                      "qemu-img create -q -f qcow2 -b ../mid.qcow2 -F qcow2 top/top.qcow2 "
	                      "3M && qemu-io -f qcow2 -c 'write -P 2 200k 10k' "
	                      "-c 'write -P 3 2040k 100k' top/top.qcow2"),
	                ==, 0);
	assert_reads_like_qemu(d, "mid.qcow2");
	assert_reads_like_qemu(d, "top/top.qcow2");
}

static uint64_t get_be64(struct dir *d, const char *name, uint64_t off)
{
	char *path = at(d, name);
	int fd = open(path, O_RDONLY);
	uint8_t b[8];
	uint64_t v = 0;

	g_assert_cmpint(pread(fd, b, 8, (off_t)off), ==, 8);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	close(fd);
	g_free(path);
	return v;
}

/* ---- husk writes, qemu-img checks ------------------------------------------------ */

struct mirror {
	struct block_backend *b;
	uint8_t *ref; /* what the disk must read as */
	uint64_t size;
	uint64_t cluster; /* of the image, for what discard does to whole clusters */
	bool discard_zeroes;
};

static void mirror_write(struct mirror *m, GRand *r, uint64_t off, uint64_t len)
{
	uint8_t *buf = g_malloc(len);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)g_rand_int(r);
	g_assert_cmpint(block_pwrite(m->b, buf, len, off), ==, 0);
	memcpy(m->ref + off, buf, len);
	g_free(buf);
}

/* Discard drops whole clusters (reads as zeros, or the backing file where it shows). */
static void mirror_discard(struct mirror *m, uint64_t off, uint64_t len)
{
	g_assert_cmpint(m->b->ops->discard(m->b, off, len), ==, 0);
	uint64_t first = (off + m->cluster - 1) / m->cluster * m->cluster;
	for (uint64_t c = first; c < off + len; c += m->cluster) {
		uint64_t n = MIN(m->cluster, m->size - c);
		if (c + n > off + len)
			break;
		if (m->discard_zeroes) {
			memset(m->ref + c, 0, n);
		} else {
			/* Over a backing file its data shows again: ask husk, check it is one of
			 * two. */
			uint8_t *got = g_malloc(n);
			g_assert_cmpint(block_pread(m->b, got, n, c), ==, 0);
			memcpy(m->ref + c, got, n);
			g_free(got);
		}
	}
}

static void random_ops(struct mirror *m, uint32_t seed, int ops)
{
	GRand *r = g_rand_new_with_seed(seed);

	for (int i = 0; i < ops; i++) {
		uint64_t off = (uint64_t)g_rand_double_range(r, 0, (double)m->size);
		uint64_t len = (uint64_t)g_rand_int_range(r, 1, 3 * 65536);
		len = MIN(len, m->size - off);
		int op = g_rand_int_range(r, 0, 10);
		if (len == 0)
			continue;
		if (op < 6) {
			mirror_write(m, r, off, len);
		} else if (op < 8) {
			g_assert_cmpint(m->b->ops->write_zeroes(m->b, off, len, op == 7), ==, 0);
			memset(m->ref + off, 0, len);
		} else if (op == 8) {
			mirror_discard(m, off, len);
		} else {
			g_assert_cmpint(m->b->ops->flush(m->b), ==, 0);
		}
	}
	g_rand_free(r);
}

/* qemu-img check: 0 is clean, 3 is leaked clusters only, both fine. */
static void assert_clean_and_equal(struct dir *d, struct mirror *m, const char *name)
{
	write_file(d, "ref.raw", m->ref, m->size);
	int check = sh(d, "qemu-img check -q %s", name);
	g_assert_true(check == 0 || check == 3);
	g_assert_cmpint(sh(d, "qemu-img compare -q -f qcow2 -F raw %s ref.raw", name), ==, 0);
}

/* Opens 'name' for writing, with its current contents (as qemu-img reads it) as the reference. */
static void mirror_open(struct dir *d, struct mirror *m, const char *name, uint64_t cluster,
                        bool discard_zeroes)
{
	GError *err = NULL;
	gchar *data;
	gsize len;

	g_assert_cmpint(sh(d, "qemu-img convert -O raw %s start.raw", name), ==, 0);
	char *path = at(d, "start.raw");
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_free(path);
	m->ref = (uint8_t *)data;
	m->size = len;
	m->cluster = cluster;
	m->discard_zeroes = discard_zeroes;
	m->b = open_image(d, name, "qcow2", false, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(m->b->size, ==, len);
}

static void mirror_close(struct dir *d, struct mirror *m, const char *name)
{
	block_close(m->b);
	assert_clean_and_equal(d, m, name);
	g_free(m->ref);
}

static void write_and_check(struct dir *d, const char *create, uint64_t cluster, bool zeroes,
                            uint32_t seed)
{
	struct mirror m;

	g_assert_cmpint(sh(d, "%s", create), ==, 0);
	mirror_open(d, &m, "w.qcow2", cluster, zeroes);
	random_ops(&m, seed, 300);
	mirror_close(d, &m, "w.qcow2");
}

static void test_write_cluster_sizes(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	for (unsigned int bits = 9; bits <= 21; bits += 3) {
		char *create = g_strdup_printf(
		    "rm -f w.qcow2; qemu-img create -q -f qcow2 -o cluster_size=%u w.qcow2 5M",
		    1u << bits);
		write_and_check(d, create, 1u << bits, true, bits);
		g_free(create);
	}
}

static void test_write_refcount_widths(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	for (unsigned int order = 0; order <= 6; order++) {
		char *create = g_strdup_printf("rm -f w.qcow2; qemu-img create -q -f qcow2 -o "
		                               "refcount_bits=%u,cluster_size=4096 w.qcow2 3M",
		                               1u << order);
		write_and_check(d, create, 4096, true, 100 + order);
		g_free(create);
	}
}

static void test_write_v2(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	write_and_check(d,
	                "qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4096 w.qcow2 3M",
	                4096, true, 200);
}

/* Persistent bitmaps husk does not keep up: their autoclear bit goes when it writes. */
static void test_write_drops_bitmaps(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	write_and_check(d,
	                "qemu-img create -q -f qcow2 w.qcow2 3M && qemu-img bitmap --add "
	                "w.qcow2 b0",
	                65536, true, 250);
	g_assert_cmpuint(get_be64(d, "w.qcow2", 88), ==, 0);
}

/* Writes into compressed clusters copy them; writes over a backing file cover it. */
static void test_write_compressed_and_backed(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	random_file(d, "src.raw", 3 * MIB, 5);
	write_and_check(d, "qemu-img convert -c -O qcow2 -o cluster_size=4096 src.raw w.qcow2",
	                4096, true, 300);
	write_and_check(d,
	                "rm -f w.qcow2; qemu-img convert -c -O qcow2 -o compression_type=zstd "
	                "src.raw w.qcow2",
	                65536, true, 301);
	write_and_check(d,
	                "rm -f w.qcow2; qemu-img create -q -f qcow2 -b src.raw -F raw -o "
	                "cluster_size=4096 w.qcow2",
	                4096, false, 302);
	write_and_check(d,
	                "rm -f w.qcow2; qemu-img create -q -f qcow2 -b src.raw -F raw -o "
	                "cluster_size=4096,compat=0.10 w.qcow2",
	                4096, false, 303);
}

#define THREADS 8

struct worker {
	struct mirror *m;
	unsigned int id;
};

/* Ops on the clusters this worker owns (every THREADS-th), beside the others' at once. */
static gpointer worker_run(gpointer data)
{
	struct worker *w = data;
	struct mirror *m = w->m;
	GRand *r = g_rand_new_with_seed(500 + w->id);
	uint64_t clusters = m->size / m->cluster;
	uint8_t *buf = g_malloc(m->cluster);

	for (int i = 0; i < 400; i++) {
		uint64_t c = (uint64_t)g_rand_int_range(r, 0, (gint32)(clusters / THREADS));
		uint64_t base = (c * THREADS + w->id) * m->cluster;
		uint64_t at = (uint64_t)g_rand_int_range(r, 0, (gint32)m->cluster);
		uint64_t len = (uint64_t)g_rand_int_range(r, 1, (gint32)(m->cluster - at + 1));
		int op = g_rand_int_range(r, 0, 8);
		if (op < 4) {
			mirror_write(m, r, base + at, len);
		} else if (op == 4) {
			g_assert_cmpint(m->b->ops->write_zeroes(m->b, base + at, len, true), ==, 0);
			memset(m->ref + base + at, 0, len);
		} else if (op == 5) {
			g_assert_cmpint(m->b->ops->discard(m->b, base, m->cluster), ==, 0);
			memset(m->ref + base, 0, m->cluster);
		} else if (op == 6) {
			g_assert_cmpint(block_pread(m->b, buf, len, base + at), ==, 0);
			g_assert_true(memcmp(buf, m->ref + base + at, len) == 0);
		} else {
			g_assert_cmpint(m->b->ops->flush(m->b), ==, 0);
		}
	}
	g_free(buf);
	g_rand_free(r);
	return NULL;
}

/* Requests from a pool of threads at once, as virtio-blk sends them. */
static void test_write_threads(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	struct mirror m;
	struct worker w[THREADS];
	GThread *t[THREADS];

	g_assert_cmpint(sh(d, "qemu-img create -q -f qcow2 -o cluster_size=4096 w.qcow2 4M"), ==,
	                0);
	mirror_open(d, &m, "w.qcow2", 4096, true);
	for (unsigned int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){&m, i};
		t[i] = g_thread_new("worker", worker_run, &w[i]);
	}
	for (unsigned int i = 0; i < THREADS; i++)
		g_thread_join(t[i]);
	mirror_close(d, &m, "w.qcow2");
}

/* Enough writes that the refcount table must grow (512 B clusters, 64-bit refcounts). */
static void test_write_grows_reftable(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	struct mirror m;

	g_assert_cmpint(sh(d, "qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 "
	                      "w.qcow2 64M"),
	                ==, 0);
	uint64_t before = get_be64(d, "w.qcow2", 48);
	mirror_open(d, &m, "w.qcow2", 512, true);
	GRand *r = g_rand_new_with_seed(9);
	for (uint64_t off = 0; off < 6 * MIB; off += 65536)
		mirror_write(&m, r, off, 65536);
	for (uint64_t off = 8 * MIB; off < 64 * MIB; off += 512 * 37)
		mirror_write(&m, r, off, 512);
	g_rand_free(r);
	mirror_close(d, &m, "w.qcow2");
	g_assert_cmpuint(get_be64(d, "w.qcow2", 48), !=, before);
}

static void put_be(struct dir *d, const char *name, uint64_t off, uint64_t v, int bytes);

/* A dirty image whose refcounts lie (its first refcount block zeroed) is rebuilt, then written. */
static void test_write_dirty_rebuilt(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	struct mirror m;

	random_file(d, "src.raw", 2 * MIB, 10);
	g_assert_cmpint(sh(d, "qemu-img convert -c -O qcow2 -o cluster_size=4096,lazy_refcounts=on "
	                      "src.raw w.qcow2 && qemu-io -f qcow2 -c 'write -P 4 100k 200k' "
	                      "-c 'write -z 1M 64k' w.qcow2"),
	                ==, 0);
	uint64_t refblock = get_be64(d, "w.qcow2", get_be64(d, "w.qcow2", 48));
	for (uint64_t off = 0; off < 4096; off += 8)
		put_be(d, "w.qcow2", refblock + off, 0, 8);
	put_be(d, "w.qcow2", 72, 1, 8); /* dirty */
	g_assert_cmpint(sh(d, "qemu-img check -q w.qcow2"), !=, 0);
	mirror_open(d, &m, "w.qcow2", 4096, true);
	random_ops(&m, 400, 200);
	mirror_close(d, &m, "w.qcow2");
	g_assert_cmpuint(get_be64(d, "w.qcow2", 72) & 1, ==, 0);
}

/* ---- refusals --------------------------------------------------------------------- */

static void put_be(struct dir *d, const char *name, uint64_t off, uint64_t v, int bytes)
{
	char *path = at(d, name);
	int fd = open(path, O_WRONLY);
	uint8_t b[8];

	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	g_assert_cmpint(pwrite(fd, b, bytes, (off_t)off), ==, bytes);
	close(fd);
	g_free(path);
}

static void assert_refused(struct dir *d, const char *name, bool read_only, const char *what)
{
	GError *err = NULL;

	g_assert_null(open_image(d, name, NULL, read_only, &err));
	g_assert_nonnull(err);
	g_test_message("%s", err->message);
	g_assert_nonnull(strstr(err->message, what));
	g_assert_null(strchr(err->message, '\n'));
	g_clear_error(&err);
}

static void assert_opens(struct dir *d, const char *name, bool read_only)
{
	GError *err = NULL;
	struct block_backend *b = open_image(d, name, NULL, read_only, &err);

	g_assert_no_error(err);
	block_close(b);
}

static void test_refusals(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	g_assert_cmpint(sh(d, "qemu-img create -q -f qcow2 a.qcow2 1M && cp a.qcow2 keep.qcow2"),
	                ==, 0);
	put_be(d, "a.qcow2", 72, 2, 8); /* corrupt */
	assert_refused(d, "a.qcow2", false, "qemu-img check -r all");
	assert_opens(d, "a.qcow2", true);
	put_be(d, "a.qcow2", 72, 1ULL << 20, 8);
	assert_refused(d, "a.qcow2", true, "unknown qcow2 incompatible features 0x100000");
	put_be(d, "a.qcow2", 72, 0, 8);
	put_be(d, "a.qcow2", 32, 1, 4);
	assert_refused(d, "a.qcow2", true, "encrypted");
	g_assert_cmpint(sh(d, "qemu-img create -q -f qcow2 -o extended_l2=on x.qcow2 1M"), ==, 0);
	assert_refused(d, "x.qcow2", true, "extended L2");
	g_assert_cmpint(sh(d, "qemu-img create -q -f qcow2 -o data_file=x.data e.qcow2 1M"), ==, 0);
	assert_refused(d, "e.qcow2", true, "external data file");
	g_assert_cmpint(sh(d, "qemu-img snapshot -c s1 keep.qcow2"), ==, 0);
	assert_refused(d, "keep.qcow2", false, "internal snapshots");
	assert_opens(d, "keep.qcow2", true);
}

static void test_backing_refusals(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	g_assert_cmpint(sh(d, "truncate -s 1M base.raw && qemu-img create -q -f qcow2 -b base.raw "
	                      "-F raw top.qcow2 && qemu-img create -q -f qcow2 -b base.raw -F raw "
	                      "nofmt.qcow2 && qemu-img create -q -f qcow2 -b base.raw -F raw "
	                      "long.qcow2 && qemu-img create -q -f qcow2 -b base.raw -F raw "
	                      "self.qcow2 && qemu-img rebase -u -b self.qcow2 -F qcow2 self.qcow2"),
	                ==, 0);
	assert_opens(d, "top.qcow2", false);
	/* The backing format extension's type, made unknown: the format is not recorded. */
	put_be(d, "nofmt.qcow2", 112, 0x12345678, 4);
	assert_refused(d, "nofmt.qcow2", true, "format is not recorded");
	put_be(d, "long.qcow2", 16, 1024, 4);
	assert_refused(d, "long.qcow2", true, "backing file name is invalid");
	assert_refused(d, "self.qcow2", true, "loops");
	/* 17 qcow2 images over one raw: one too many. */
	g_assert_cmpint(sh(d, "prev=base.raw; fmt=raw; for i in $(seq 1 17); do qemu-img create "
	                      "-q -f qcow2 -b $prev -F $fmt c$i.qcow2 || exit 1; prev=c$i.qcow2; "
	                      "fmt=qcow2; done"),
	                ==, 0);
	assert_opens(d, "c16.qcow2", true);
	assert_refused(d, "c17.qcow2", true, "deeper than 16");
}

static void test_bad_compressed_cluster(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	GError *err = NULL;
	uint8_t buf[4096];
	uint8_t *disk = random_disk(64 * 1024, 6);

	memset(disk, 'a', 4096);
	write_file(d, "src.raw", disk, 64 * 1024);
	g_assert_cmpint(sh(d, "qemu-img convert -c -O qcow2 -o cluster_size=4096 src.raw c.qcow2 "
	                      "&& qemu-img map --output=json c.qcow2 > /dev/null"),
	                ==, 0);
	/* Spoil every byte after the metadata: compressed data no longer inflates. */
	char *path = at(d, "c.qcow2");
	int fd = open(path, O_RDWR);
	off_t end = lseek(fd, 0, SEEK_END);
	for (off_t o = 5 * 4096; o < end; o += 512)
		g_assert_cmpint(pwrite(fd, "\xff\xff\xff\xff", 4, o), ==, 4);
	close(fd);
	g_free(path);
	struct block_backend *b = open_image(d, "c.qcow2", NULL, true, &err);
	g_assert_no_error(err);
	g_assert_cmpint(block_pread(b, buf, sizeof(buf), 0), ==, -EIO);
	block_close(b);
	g_free(disk);
}

/* ---- hostile images --------------------------------------------------------------- */

#define HOSTILE_IMAGES 3000

static const uint64_t boundary[] = {0,          1,          511,        512,
                                    4096,       65536,      0x7fffffff, 0xffffffff,
                                    1ULL << 32, 1ULL << 55, 1ULL << 62, UINT64_MAX};

/* A few bytes or fields of the image, made something it should not be. */
static void mutate(GRand *r, uint8_t *img, size_t len, const uint64_t *hot, int nhot)
{
	int changes = g_rand_int_range(r, 1, 6);

	if (g_rand_int_range(r, 0, 4) == 0)
		img[79] |= 1; /* dirty: the refcounts are rebuilt from the tables it lies in */

	for (int i = 0; i < changes; i++) {
		size_t off;
		int k = g_rand_int_range(r, 0, 4);
		if (k == 0)
			off = (size_t)g_rand_int_range(r, 0, 112); /* the header */
		else if (k == 1)
			off = (size_t)(hot[g_rand_int_range(r, 0, nhot)] +
			               g_rand_int_range(r, 0, 512));
		else
			off = (size_t)g_rand_int_range(r, 0, (gint32)len);
		off &= ~(size_t)(g_rand_boolean(r) ? 7 : 0);
		if (off + 8 > len)
			continue;
		if (g_rand_boolean(r)) {
			img[off + g_rand_int_range(r, 0, 8)] ^=
			    (uint8_t)(1u << g_rand_int_range(r, 0, 8));
		} else {
			uint64_t v = boundary[g_rand_int_range(r, 0, G_N_ELEMENTS(boundary))] +
			             (uint64_t)g_rand_int_range(r, -1, 2);
			int bytes = g_rand_boolean(r) ? 8 : 4;
			for (int b = 0; b < bytes; b++)
				img[off + b] = (uint8_t)(v >> (8 * (bytes - 1 - b)));
		}
	}
}

/* Whatever opens must answer reads and writes within bounds, and close. */
static void exercise(struct block_backend *b, GRand *r)
{
	uint8_t buf[8192];

	for (int i = 0; i < 8; i++) {
		uint64_t off = b->size ? (uint64_t)g_rand_double_range(r, 0, (double)b->size) : 0;
		size_t len = (size_t)MIN(sizeof(buf), b->size - off);
		int op = g_rand_int_range(r, 0, 4);
		if (op == 0 || b->read_only)
			block_pread(b, buf, len, off);
		else if (op == 1)
			block_pwrite(b, buf, len, off);
		else if (op == 2)
			b->ops->write_zeroes(b, off, len, false);
		else
			b->ops->discard(b, off, len);
	}
	b->ops->flush(b);
}

static void test_hostile_images(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	uint8_t *disk = random_disk(256 * 1024, 8);
	gchar *good;
	gsize len;
	int opened = 0;

	memset(disk, 'z', 32 * 1024);
	write_file(d, "src.raw", disk, 256 * 1024);
	g_assert_cmpint(sh(d,
	                   "qemu-img convert -O qcow2 -o cluster_size=4096 src.raw p.qcow2 && "
	                   "qemu-img convert -c -O qcow2 -o cluster_size=4096 p.qcow2 good.qcow2 "
	                   "&& qemu-io -f qcow2 -c 'write -z 64k 16k' -c 'write -P 7 200k 8k' "
	                   "good.qcow2"),
	                ==, 0);
	char *path = at(d, "good.qcow2");
	char *victim = at(d, "h.qcow2");
	g_assert_true(g_file_get_contents(path, &good, &len, NULL));
	/* Where the tables are: the header says (L1 at 40, refcount table at 48). */
	uint64_t hot[3] = {0, 0, 0};
	for (int i = 0; i < 8; i++) {
		hot[0] = hot[0] << 8 | (uint8_t)good[40 + i];
		hot[1] = hot[1] << 8 | (uint8_t)good[48 + i];
	}
	hot[2] = hot[1] + 4096; /* most likely the first refcount block or an L2 table */
	GRand *r = g_rand_new_with_seed(2026);
	uint8_t *img = g_malloc(len);
	for (int i = 0; i < HOSTILE_IMAGES; i++) {
		GError *err = NULL;
		memcpy(img, good, len);
		mutate(r, img, len, hot, 3);
		g_assert_true(g_file_set_contents(victim, (char *)img, (gssize)len, NULL));
		struct block_open_options o = {.format = "qcow2", .read_only = g_rand_boolean(r)};
		struct block_backend *b = block_open(victim, &o, &err);
		if (!b) {
			g_assert_nonnull(err);
			g_assert_null(strchr(err->message, '\n'));
			g_clear_error(&err);
			continue;
		}
		opened++;
		exercise(b, r);
		block_close(b);
	}
	g_test_message("%d of %d hostile images opened", opened, HOSTILE_IMAGES);
	g_assert_cmpint(opened, >, HOSTILE_IMAGES / 10);
	g_rand_free(r);
	g_free(img);
	g_free(good);
	g_free(path);
	g_free(victim);
	g_free(disk);
}

/* ---- crash consistency ------------------------------------------------------------ */

#define CRASH_RUNS   40
#define CRASH_BLOCKS 512
#define CRASH_BLOCK  4096

#define DISCARDED (1ULL << 62) /* in a report: the block was discarded, not written */

/*
 * The child writes blocks stamped (block, sequence), discards some, and
 * flushes now and then, telling the parent each step before (write,
 * discard) or after (flush) it.
 */
static G_GNUC_NORETURN void crash_child(const char *path, int report, uint32_t seed)
{
	struct block_open_options o = {.format = "qcow2"};
	struct block_backend *b = block_open(path, &o, NULL);
	GRand *r = g_rand_new_with_seed(seed);
	uint64_t buf[CRASH_BLOCK / 8];

	if (!b)
		_exit(1);
	for (uint64_t seq = 1;; seq++) {
		uint64_t block = (uint64_t)g_rand_int_range(r, 0, CRASH_BLOCKS);
		bool discard = g_rand_int_range(r, 0, 8) == 0;
		uint64_t msg[2] = {block | (discard ? DISCARDED : 0), seq};
		if (g_rand_int_range(r, 0, 16) == 0) {
			if (b->ops->flush(b) < 0)
				_exit(1);
			msg[0] = UINT64_MAX; /* flushed: everything before is durable */
			if (write(report, msg, sizeof(msg)) != sizeof(msg))
				_exit(1);
			continue;
		}
		if (write(report, msg, sizeof(msg)) != sizeof(msg))
			_exit(1);
		for (size_t i = 0; i < G_N_ELEMENTS(buf); i++)
			buf[i] = block << 32 | seq;
		int e = discard ? b->ops->discard(b, block * CRASH_BLOCK, CRASH_BLOCK)
		                : block_pwrite(b, buf, sizeof(buf), block * CRASH_BLOCK);
		if (e < 0)
			_exit(1);
	}
}

/* What a block reads as after report i: its stamp, or zeros for a discard. */
static uint64_t stamp_of(const uint64_t *log, size_t i)
{
	return log[2 * i] & DISCARDED ? 0 : log[2 * i] << 32 | log[2 * i + 1];
}

/*
 * After the crash: each block holds what it held at the last completed
 * flush (a write or discard before it, or what the last run left), or what
 * a later write or discard made it. 'held' is updated to what it reads.
 */
static void check_after_crash(struct dir *d, const uint64_t *log, size_t n, uint64_t *held)
{
	size_t last_flush = 0;
	GError *err = NULL;

	for (size_t i = 0; i < n; i++)
		if (log[2 * i] == UINT64_MAX)
			last_flush = i;
	int check = sh(d, "qemu-img check -q crash.qcow2; s=$?; [ $s = 3 ] && exit 0; exit $s");
	g_assert_cmpint(check, ==, 0);
	struct block_backend *b = open_image(d, "crash.qcow2", "qcow2", true, &err);
	g_assert_no_error(err);
	for (uint64_t block = 0; block < CRASH_BLOCKS; block++) {
		uint64_t got;
		g_assert_cmpint(block_pread(b, &got, sizeof(got), block * CRASH_BLOCK), ==, 0);
		uint64_t durable = held[block];
		for (size_t i = 0; i < last_flush; i++)
			if ((log[2 * i] & ~DISCARDED) == block)
				durable = stamp_of(log, i);
		bool ok = got == durable;
		for (size_t i = last_flush; i < n && !ok; i++)
			ok = (log[2 * i] & ~DISCARDED) == block && got == stamp_of(log, i);
		if (!ok)
			g_test_message("block %" G_GUINT64_FORMAT " reads %" G_GINT64_MODIFIER
			               "x, not %" G_GINT64_MODIFIER "x",
			               block, (guint64)got, (guint64)durable);
		g_assert_true(ok);
		held[block] = got;
	}
	block_close(b);
}

static void test_crash_consistency(struct dir *d, gconstpointer data)
{
	if (!need_qemu_img())
		return;
	char *path = at(d, "crash.qcow2");
	GRand *r = g_rand_new_with_seed(42);
	uint64_t held[CRASH_BLOCKS] = {0};

	g_assert_cmpint(sh(d, "qemu-img create -q -f qcow2 -o %s crash.qcow2 2M", (char *)data), ==,
	                0);
	for (int run = 0; run < CRASH_RUNS; run++) {
		int fds[2];
		g_assert_cmpint(pipe(fds), ==, 0);
		pid_t pid = fork();
		g_assert_cmpint(pid, >=, 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(path, fds[1], (uint32_t)run);
		}
		close(fds[1]);
		g_usleep((gulong)g_rand_int_range(r, 1000, 60000));
		kill(pid, SIGKILL);
		int status;
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status));
		GByteArray *log = g_byte_array_new();
		uint8_t chunk[4096];
		ssize_t got;
		while ((got = read(fds[0], chunk, sizeof(chunk))) > 0)
			g_byte_array_append(log, chunk, (guint)got);
		close(fds[0]);
		/* The child's last report may be half written: whole ones only. */
		check_after_crash(d, (uint64_t *)log->data, log->len / 16, held);
		g_byte_array_free(log, true);
		/* The next run starts from a repaired image, so each crash is judged alone. */
		g_assert_cmpint(sh(d, "qemu-img check -q -r leaks crash.qcow2 >/dev/null; true"),
		                ==, 0);
	}
	g_rand_free(r);
	g_free(path);
}

#define ADD(name, fn) g_test_add("/qcow2/" name, struct dir, NULL, dir_setup, fn, dir_teardown)
#define ADD_WITH(name, arg, fn)                                                                    \
	g_test_add("/qcow2/" name, struct dir, arg, dir_setup, fn, dir_teardown)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("read/cluster-sizes", test_cluster_sizes);
	ADD("read/compressed", test_compressed);
	ADD("read/v2-and-zero-clusters", test_v2_and_zero_clusters);
	ADD("read/backing-chain", test_backing_chain);
	ADD("read/bad-compressed-cluster", test_bad_compressed_cluster);
	ADD("write/cluster-sizes", test_write_cluster_sizes);
	ADD("write/refcount-widths", test_write_refcount_widths);
	ADD("write/v2", test_write_v2);
	ADD("write/drops-bitmaps", test_write_drops_bitmaps);
	ADD("write/compressed-and-backed", test_write_compressed_and_backed);
	ADD("write/grows-refcount-table", test_write_grows_reftable);
	ADD("write/threads", test_write_threads);
	ADD("write/dirty-image-rebuilt", test_write_dirty_rebuilt);
	ADD("refuse/features", test_refusals);
	ADD("refuse/backing", test_backing_refusals);
	ADD("hostile-images", test_hostile_images);
	ADD_WITH("crash-consistency", "cluster_size=4096", test_crash_consistency);
	/* Tiny refcount blocks and table: the crashes land in refcount table growth too. */
	ADD_WITH("crash-consistency-growing-refcounts", "cluster_size=512,refcount_bits=64",
	         test_crash_consistency);
	return g_test_run();
}
