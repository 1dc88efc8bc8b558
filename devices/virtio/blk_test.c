// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "devices/block/block.h"
#include "devices/test_rss.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/test_ring.h"
#include "vmm/layout.h"

#define SECTORS  64
#define S_OK     0
#define S_IOERR  1
#define S_UNSUPP 2

struct fixture {
	char *path;
	struct virtio_blk *blk;
	uint8_t header[16];
	uint8_t data[8192];
	uint8_t status;
	struct vq_chain chain;
};

/* An image of SECTORS sectors, each filled with its number; in DIR, or $TMPDIR. */
static void setup_image_in(struct fixture *f, const char *dir, bool read_only, const char *serial)
{
	char *image = g_malloc(SECTORS * 512);
	int fd = dir ? g_mkstemp(f->path = g_build_filename(dir, "husk-blk-XXXXXX", NULL))
	             : g_file_open_tmp("husk-blk-XXXXXX", &f->path, NULL);
	struct disk_config cfg = {
	    .path = f->path, .read_only = read_only, .serial = (char *)serial};

	for (int i = 0; i < SECTORS * 512; i++)
		image[i] = (char)(i / 512);
	g_assert_cmpint(write(fd, image, SECTORS * 512), ==, SECTORS * 512);
	close(fd);
	g_free(image);
	f->blk = virtio_blk_open(&cfg, 1, NULL);
	g_assert_nonnull(f->blk);
}

static void setup_image(struct fixture *f, bool read_only, const char *serial)
{
	setup_image_in(f, NULL, read_only, serial);
}

static void setup(struct fixture *f, gconstpointer data)
{
	setup_image(f, data != NULL, "disk-serial");
}

/* On tmpfs, which cannot zero a range with fallocate() (when it is there). */
static void setup_tmpfs(struct fixture *f, gconstpointer data)
{
	setup_image_in(f, g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : NULL, false,
	               NULL);
}

static void teardown(struct fixture *f, gconstpointer data)
{
	virtio_blk_close(f->blk);
	g_unlink(f->path);
	g_free(f->path);
}

/* header, then 'data' (readable for writes, writable for reads), then status. */
static void make(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len, bool data_in)
{
	memset(&f->chain, 0, sizeof(f->chain));
	memcpy(f->header, &type, 4);
	memset(f->header + 4, 0, 4);
	memcpy(f->header + 8, &sector, 8);
	f->chain.seg[f->chain.nseg++] = (struct vq_seg){f->header, 16, false};
	f->chain.out_len = 16;
	if (len) {
		f->chain.seg[f->chain.nseg++] = (struct vq_seg){f->data, len, data_in};
		if (data_in)
			f->chain.in_len += len;
		else
			f->chain.out_len += len;
	}
	f->chain.seg[f->chain.nseg++] = (struct vq_seg){&f->status, 1, true};
	f->chain.in_len += 1;
	f->status = 0xff;
}

static int run(struct fixture *f, uint32_t *written)
{
	return virtio_blk_process(f->blk, &f->chain, written);
}

static void test_read(struct fixture *f, gconstpointer data)
{
	uint32_t written;

	make(f, 0, 3, 1024, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->status, ==, S_OK);
	g_assert_cmpuint(written, ==, 1025);
	g_assert_cmpuint(f->data[0], ==, 3);
	g_assert_cmpuint(f->data[1023], ==, 4);
}

static void test_write_flush_read_back(struct fixture *f, gconstpointer data)
{
	uint32_t written;

	memset(f->data, 0xab, 512);
	make(f, 1, 10, 512, false);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(written, ==, 1);
	make(f, 4, 0, 0, false);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	memset(f->data, 0, 512);
	make(f, 0, 10, 512, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->data[0], ==, 0xab);
	g_assert_cmpuint(f->data[511], ==, 0xab);
}

static void test_out_of_range(struct fixture *f, gconstpointer data)
{
	uint32_t written;

	make(f, 0, SECTORS - 1, 1024, true); /* runs one sector past the end */
	g_assert_cmpint(run(f, &written), ==, S_IOERR);
	make(f, 1, UINT64_MAX, 512, false);
	g_assert_cmpint(run(f, &written), ==, S_IOERR);
	make(f, 0, 0, 100, true); /* not a whole sector */
	g_assert_cmpint(run(f, &written), ==, S_IOERR);
	make(f, 0, SECTORS - 1, 512, true); /* the last sector is fine */
	g_assert_cmpint(run(f, &written), ==, S_OK);
}

static void test_read_only(struct fixture *f, gconstpointer data)
{
	uint32_t written;

	make(f, 1, 0, 512, false);
	g_assert_cmpint(run(f, &written), ==, S_IOERR);
	make(f, 0, 0, 512, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->data[0], ==, 0);
}

static void test_get_id(struct fixture *f, gconstpointer data)
{
	uint32_t written;

	make(f, 8, 0, 20, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpmem(f->data, 11, "disk-serial", 11);
}

static void test_discard_and_zeroes(struct fixture *f, gconstpointer data)
{
	uint32_t written;
	uint8_t range[16] = {0};
	uint64_t sector = 2;
	uint32_t count = 2;

	memcpy(range, &sector, 8);
	memcpy(range + 8, &count, 4);
	memcpy(f->data, range, 16);
	make(f, 13, 0, 16, false); /* write zeroes */
	g_assert_cmpint(run(f, &written), ==, S_OK);
	make(f, 0, 2, 1024, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->data[0] | f->data[1023], ==, 0);
	count = 1000; /* past the end */
	memcpy(range + 8, &count, 4);
	memcpy(f->data, range, 16);
	make(f, 11, 0, 16, false);
	g_assert_cmpint(run(f, &written), ==, S_IOERR);
	make(f, 11, 0, 15, false); /* not whole ranges */
	g_assert_cmpint(run(f, &written), ==, S_UNSUPP);
}

/* Write zeroes where the file system has no FALLOC_FL_ZERO_RANGE: written out. */
static void test_zeroes_written_out(struct fixture *f, gconstpointer data)
{
	uint32_t written;
	uint64_t sector = 3;
	uint32_t count = 5;

	memset(f->data, 0, 16);
	memcpy(f->data, &sector, 8);
	memcpy(f->data + 8, &count, 4);
	make(f, 13, 0, 16, false);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	make(f, 0, 2, 4096, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	for (int i = 0; i < 4096; i++)
		g_assert_cmpuint(f->data[i], ==, i < 512 ? 2 : i < 3072 ? 0 : 8 + (i - 3072) / 512);
}

static void test_unknown_type(struct fixture *f, gconstpointer data)
{
	uint32_t written;

	make(f, 99, 0, 0, false);
	g_assert_cmpint(run(f, &written), ==, S_UNSUPP);
	g_assert_cmpuint(f->status, ==, S_UNSUPP);
}

static void test_malformed_chains(struct fixture *f, gconstpointer data)
{
	uint32_t written;

	make(f, 0, 0, 512, true);
	f->chain.nseg--; /* no status byte: the data segment is last */
	f->chain.in_len -= 1;
	f->chain.seg[f->chain.nseg - 1].len = 512;
	/* The last writable byte becomes the status; 511 data bytes is no whole sector. */
	g_assert_cmpint(run(f, &written), ==, S_IOERR);
	g_assert_cmpuint(f->data[511], ==, S_IOERR);
	make(f, 0, 0, 0, false);
	f->chain.seg[0].len = 8; /* header too short */
	f->chain.out_len = 8;
	g_assert_cmpint(run(f, &written), ==, -1);
	make(f, 1, 0, 512, false);
	f->chain.nseg--; /* a write with nothing writable */
	f->chain.in_len = 0;
	g_assert_cmpint(run(f, &written), ==, -1);
}

/* The image again, with cache=none; false (the test skipped) where O_DIRECT is not supported. */
static bool reopen_cache_none(struct fixture *f)
{
	struct disk_config cfg = {.path = f->path, .cache = DISK_CACHE_NONE};
	GError *err = NULL;

	virtio_blk_close(f->blk);
	f->blk = virtio_blk_open(&cfg, 1, &err);
	if (f->blk)
		return true;
	g_test_skip("O_DIRECT is not supported where the test image lives");
	g_clear_error(&err);
	f->blk = virtio_blk_open(&(struct disk_config){.path = f->path}, 1, NULL);
	return false;
}

/* cache=none: O_DIRECT, with unaligned guest buffers bounced. */
static void test_cache_none(struct fixture *f, gconstpointer data)
{
	uint32_t written;

	if (!reopen_cache_none(f))
		return;
	uint8_t *unaligned = f->data + 1;
	make(f, 0, 8, 4096, true);
	f->chain.seg[1].addr = unaligned;
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(unaligned[0], ==, 8);
	g_assert_cmpuint(unaligned[4095], ==, 15);
	memset(unaligned, 0x5c, 4096);
	make(f, 1, 8, 4096, false);
	f->chain.seg[1].addr = unaligned;
	g_assert_cmpint(run(f, &written), ==, S_OK);
	memset(f->data, 0, sizeof(f->data));
	make(f, 0, 8, 4096, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->data[0], ==, 0x5c);
	g_assert_cmpuint(f->data[4095], ==, 0x5c);
}

/*
 * O_DIRECT as its contract has it: offsets, lengths and buffers aligned to
 * the logical block size (512 for the test images' file systems), though
 * this kernel may let unaligned buffers through. The raw backend's own
 * pread/pwrite calls come here.
 */
static bool refused_by_direct(int fd, const void *buf, size_t len, off_t off)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_DIRECT) && ((uintptr_t)buf % 512 || len % 512 || off % 512);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (refused_by_direct(fd, buf, len, off)) {
		errno = EINVAL;
		return -1;
	}
	return syscall(SYS_pwrite64, fd, buf, len, off);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	if (refused_by_direct(fd, buf, len, off)) {
		errno = EINVAL;
		return -1;
	}
	return syscall(SYS_pread64, fd, buf, len, off);
}

#define RMW_THREADS 8 /* one per sector of a 4 KiB block */
#define RMW_ROUNDS  300

struct rmw_writer {
	struct virtio_blk *blk;
	uint64_t sector;
};

/* One request on 'sector', from or into 512 bytes at 'data' (unaligned: bounced). */
static void rmw_request(struct virtio_blk *blk, uint32_t type, uint64_t sector, uint8_t *data)
{
	uint8_t header[16] = {0}, status = 0xff;
	struct vq_chain c = {.nseg = 3};
	uint32_t written;
	bool in = type == 0;

	memcpy(header, &type, 4);
	memcpy(header + 8, &sector, 8);
	c.seg[0] = (struct vq_seg){header, 16, false};
	c.seg[1] = (struct vq_seg){data, 512, in};
	c.seg[2] = (struct vq_seg){&status, 1, true};
	c.out_len = 16 + (in ? 0 : 512);
	c.in_len = 1 + (in ? 512 : 0);
	g_assert_cmpint(virtio_blk_process(blk, &c, &written), ==, S_OK);
	g_assert_cmpuint(status, ==, S_OK);
}

/* Writes its own sector again and again, each time something new, and reads it back. */
static gpointer rmw_write(gpointer data)
{
	struct rmw_writer *w = data;
	uint8_t *buf = g_malloc(513), *data_at = buf + 1;

	for (int i = 0; i < RMW_ROUNDS; i++) {
		uint8_t mark = (uint8_t)(i * RMW_THREADS + w->sector);
		memset(data_at, mark, 512);
		rmw_request(w->blk, 1, w->sector, data_at);
		rmw_request(w->blk, 0, w->sector, data_at);
		g_assert_cmpuint(data_at[0], ==, mark); /* acknowledged, so there */
		g_assert_cmpuint(data_at[511], ==, mark);
	}
	g_free(buf);
	return NULL;
}

/*
 * cache=none: writes to the sectors of one 4 KiB block at once, each from
 * an unaligned buffer, none lost (a read-modify-write of the whole block
 * would put back what a neighbour had just written); and a write at the
 * end of an image whose size is no multiple of 4 KiB does not grow it.
 */
static void test_cache_none_neighbours(struct fixture *f, gconstpointer data)
{
	struct rmw_writer w[RMW_THREADS];
	GThread *t[RMW_THREADS];
	uint32_t written;

	g_assert_cmpint(truncate(f->path, (SECTORS - 1) * 512), ==, 0);
	if (!reopen_cache_none(f))
		return;
	for (int i = 0; i < RMW_THREADS; i++) {
		w[i] = (struct rmw_writer){f->blk, 8 + (uint64_t)i};
		t[i] = g_thread_new("rmw", rmw_write, &w[i]);
	}
	for (int i = 0; i < RMW_THREADS; i++)
		g_thread_join(t[i]);
	/* The last sector, from an unaligned buffer. */
	memset(f->data + 1, 0x77, 512);
	make(f, 1, SECTORS - 2, 512, false);
	f->chain.seg[1].addr = f->data + 1;
	run(f, &written);
	GStatBuf st;
	g_assert_cmpint(g_stat(f->path, &st), ==, 0);
	g_assert_cmpint(st.st_size, ==, (SECTORS - 1) * 512);
}

static char *file_sha(const char *path)
{
	char *data;
	gsize len;

	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	char *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data, len);
	g_free(data);
	return sum;
}

/* A snapshot disk takes writes, partial blocks and all, and the image never changes. */
static void test_snapshot(struct fixture *f, gconstpointer data)
{
	struct disk_config cfg = {.path = f->path, .snapshot = true};
	char *before = file_sha(f->path);
	uint32_t written;

	virtio_blk_close(f->blk);
	f->blk = virtio_blk_open(&cfg, 1, NULL);
	g_assert_nonnull(f->blk);
	memset(f->data, 0xcd, 512);
	make(f, 1, 9, 512, false); /* one sector inside the second 4 KiB block */
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->status, ==, S_OK);
	make(f, 4, 0, 0, false); /* FLUSH */
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->status, ==, S_OK);
	/* Sectors 7..11 span both blocks: base, base, overlay, base, base. */
	memset(f->data, 0, sizeof(f->data));
	make(f, 0, 7, 5 * 512, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->data[0], ==, 7);
	g_assert_cmpuint(f->data[512], ==, 8);
	g_assert_cmpuint(f->data[1024], ==, 0xcd);
	g_assert_cmpuint(f->data[1535], ==, 0xcd);
	g_assert_cmpuint(f->data[1536], ==, 10);
	g_assert_cmpuint(f->data[2048], ==, 11);
	/* Write zeroes reads back as zeros, still only in the overlay. */
	struct {
		uint64_t sector;
		uint32_t count, flags;
	} range = {16, 8, 0};
	make(f, 13, 0, 0, false);
	f->chain.seg[2] = f->chain.seg[1];
	f->chain.seg[1] = (struct vq_seg){&range, sizeof(range), false};
	f->chain.nseg = 3;
	f->chain.out_len += sizeof(range);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->status, ==, S_OK);
	make(f, 0, 16, 512, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->data[0], ==, 0);
	virtio_blk_close(f->blk);
	char *after = file_sha(f->path);
	g_assert_cmpstr(before, ==, after);
	g_free(before);
	g_free(after);
	f->blk = virtio_blk_open(&(struct disk_config){.path = f->path}, 1, NULL);
}

/* A qcow2 image (detected), and a snapshot over one: the device cannot tell them from raw. */
static void test_qcow2(struct fixture *f, gconstpointer data)
{
	char *path = g_strconcat(f->path, ".qcow2", NULL);
	struct disk_config cfg = {.path = path};
	uint32_t written;

	g_assert_true(block_create(path, "qcow2", SECTORS * 512, NULL, NULL, NULL));
	virtio_blk_close(f->blk);
	f->blk = virtio_blk_open(&cfg, 2, NULL);
	g_assert_nonnull(f->blk);
	memset(f->data, 0x77, 1024);
	make(f, 1, 5, 1024, false);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	make(f, 4, 0, 0, false);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	virtio_blk_close(f->blk);
	char *before = file_sha(path);
	cfg.snapshot = true;
	f->blk = virtio_blk_open(&cfg, 1, NULL);
	memset(f->data, 0x11, 512);
	make(f, 1, 6, 512, false);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	memset(f->data, 0, sizeof(f->data));
	make(f, 0, 4, 2048, true);
	g_assert_cmpint(run(f, &written), ==, S_OK);
	g_assert_cmpuint(f->data[0], ==, 0);
	g_assert_cmpuint(f->data[512], ==, 0x77);
	g_assert_cmpuint(f->data[1024], ==, 0x11);
	g_assert_cmpuint(f->data[1536], ==, 0);
	virtio_blk_close(f->blk);
	char *after = file_sha(path);
	g_assert_cmpstr(before, ==, after);
	f->blk = virtio_blk_open(&(struct disk_config){.path = f->path}, 1, NULL);
	g_unlink(path);
	g_free(before);
	g_free(after);
	g_free(path);
}

static void test_open_errors(void)
{
	struct disk_config cfg = {.path = "/nonexistent/disk.img"};
	GError *err = NULL;

	g_assert_null(virtio_blk_open(&cfg, 1, &err));
	g_assert_nonnull(strstr(err->message, "--disk: /nonexistent/disk.img"));
	g_clear_error(&err);
	cfg.path = "/";
	g_assert_null(virtio_blk_open(&cfg, 1, &err));
	g_assert_nonnull(strstr(err->message, "Is a directory"));
	g_clear_error(&err);
	cfg.read_only = true; /* opens, but is no image */
	g_assert_null(virtio_blk_open(&cfg, 1, &err));
	g_assert_nonnull(strstr(err->message, "not a regular file"));
	g_clear_error(&err);
}

/*
 * A raw image whose format was detected cannot be made to look like qcow2
 * by its guest (devices/block/block.c); given format=raw, it can.
 */
static void test_header_guard(struct fixture *f, gconstpointer data)
{
	struct disk_config cfg = {.path = f->path, .format = "raw"};
	uint32_t written;

	memcpy(f->data, "QFI\xfb", 4);
	make(f, 1, 0, 512, false);
	g_assert_cmpint(run(f, &written), ==, S_IOERR);
	make(f, 1, 1, 512, false); /* not the first sector: any bytes */
	g_assert_cmpint(run(f, &written), ==, S_OK);
	virtio_blk_close(f->blk);
	f->blk = virtio_blk_open(&cfg, 1, NULL);
	make(f, 1, 0, 512, false);
	g_assert_cmpint(run(f, &written), ==, S_OK);
}

static void test_lock(struct fixture *f, gconstpointer data)
{
	struct disk_config cfg = {.path = f->path};
	GError *err = NULL;

	g_assert_null(virtio_blk_open(&cfg, 1, &err));
	g_assert_nonnull(strstr(err->message, "locked"));
	g_clear_error(&err);
}

static void test_parse(void)
{
	struct disk_config cfg;
	GError *err = NULL;

	g_assert_true(disk_config_parse("a.img", &cfg, NULL));
	g_assert_cmpstr(cfg.path, ==, "a.img");
	g_assert_false(cfg.read_only);
	disk_config_clear(&cfg);
	g_assert_true(disk_config_parse("b.img,ro,serial=XY", &cfg, NULL));
	g_assert_true(cfg.read_only);
	g_assert_cmpstr(cfg.serial, ==, "XY");
	disk_config_clear(&cfg);
	g_assert_true(disk_config_parse("b.img,snapshot", &cfg, NULL));
	g_assert_true(cfg.snapshot);
	disk_config_clear(&cfg);
	g_assert_true(disk_config_parse("b.img,cache=none", &cfg, NULL));
	g_assert_cmpint(cfg.cache, ==, DISK_CACHE_NONE);
	disk_config_clear(&cfg);
	g_assert_false(disk_config_parse("b.img,cache=unsafe", &cfg, &err));
	g_clear_error(&err);
	g_assert_false(disk_config_parse(",ro", &cfg, &err));
	g_clear_error(&err);
	g_assert_false(disk_config_parse("c.img,rw", &cfg, &err));
	g_assert_cmpstr(err->message, ==,
	                "--disk: unknown option \"rw\" (try ro, snapshot, serial=ID, "
	                "cache=writeback|none, format=raw|qcow2)");
	g_clear_error(&err);
	g_assert_true(disk_config_parse("d.img,format=qcow2", &cfg, NULL));
	g_assert_cmpstr(cfg.format, ==, "qcow2");
	disk_config_clear(&cfg);
	g_assert_false(disk_config_parse("d.img,format=vmdk", &cfg, &err));
	g_clear_error(&err);
	g_assert_false(disk_config_parse("c.img,serial=123456789012345678901", &cfg, &err));
	g_clear_error(&err);
}

/*
 * The queue path, with the transport faked at link time: requests go to the
 * pool, a wake says some finished, the next run pushes them.
 */
#define QSIZE 32 /* three descriptors per request */
#define NREQ  8
#define DESC  (LAYOUT_RAM_START + 0x1000)
#define REQS                                                                                       \
	(LAYOUT_RAM_START + 0x10000) /* request i: header, 512 data bytes, status, 1 KiB apart */
#define FAKE_T  ((struct virtio_pci *)&fake_transport)
#define F_NEXT  1
#define F_WRITE 2

static int fake_transport;
static gint wakes;
static gint woken_queue;

void virtio_pci_wake(struct virtio_pci *t, unsigned int index)
{
	g_assert_true(t == FAKE_T);
	g_atomic_int_set(&woken_queue, (gint)index);
	g_atomic_int_inc(&wakes);
}

void virtio_pci_used(struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
}

struct ring {
	struct guest_memory gm;
	struct virtqueue vq;
};

static void put_desc(struct ring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags)
{
	test_put_desc(&r->gm, r->vq.desc_addr, i, addr, len, flags, (uint16_t)(i + 1));
}

/* 'nreq' reads on a ring of 'qsize' at 'desc', request i of sector i, made available at once. */
static void ring_setup_sized(struct ring *r, uint16_t qsize, uint16_t nreq, uint64_t desc)
{
	g_assert_true(guest_memory_alloc(&r->gm, 1 * MiB));
	uint64_t avail_at = desc + 16ULL * qsize, used_at = avail_at + 4 * qsize;
	g_assert_true(vq_init(&r->vq, &r->gm, qsize, desc, avail_at, used_at));
	uint16_t *avail = gm_ptr(&r->gm, avail_at, 4 + 2ULL * qsize);
	for (uint16_t i = 0; i < nreq; i++) {
		uint64_t at = REQS + 1024ULL * i, sector = i % SECTORS;
		uint8_t *hdr = gm_ptr(&r->gm, at, 16);
		memset(hdr, 0, 16);
		memcpy(hdr + 8, &sector, 8);
		*(uint8_t *)gm_ptr(&r->gm, at + 16 + 512, 1) = 0xff;
		put_desc(r, (uint16_t)(3 * i), at, 16, F_NEXT);
		put_desc(r, (uint16_t)(3 * i + 1), at + 16, 512, F_NEXT | F_WRITE);
		put_desc(r, (uint16_t)(3 * i + 2), at + 16 + 512, 1, F_WRITE);
		avail[2 + i] = (uint16_t)(3 * i);
	}
	avail[1] = nreq;
}

static void ring_setup(struct ring *r)
{
	ring_setup_sized(r, QSIZE, NREQ, DESC);
}

static uint16_t used_idx(struct ring *r)
{
	return __atomic_load_n((uint16_t *)gm_ptr(&r->gm, r->vq.used_addr + 2, 2),
	                       __ATOMIC_ACQUIRE);
}

/* Request i read sector i (filled with the byte i) and said OK. */
static void assert_done(struct ring *r)
{
	for (uint16_t i = 0; i < NREQ; i++) {
		uint8_t *data = gm_ptr(&r->gm, REQS + 1024ULL * i + 16, 513);
		g_assert_cmpuint(data[0], ==, i);
		g_assert_cmpuint(data[511], ==, i);
		g_assert_cmpuint(data[512], ==, S_OK);
	}
}

/* A snapshot disk sends every request to the pool. */
static void reopen_as_snapshot(struct fixture *f)
{
	struct disk_config cfg = {.path = f->path, .snapshot = true};

	virtio_blk_close(f->blk);
	f->blk = virtio_blk_open(&cfg, 1, NULL);
	g_assert_nonnull(f->blk);
}

/* On queue 2 of 4: the wake names the queue whose requests finished. */
static void test_queue_pool(struct fixture *f, gconstpointer data)
{
	struct disk_config cfg = {.path = f->path, .snapshot = true};
	struct ring r;

	virtio_blk_close(f->blk);
	f->blk = virtio_blk_open(&cfg, 4, NULL);
	ring_setup(&r);
	g_atomic_int_set(&wakes, 0);
	virtio_blk_ops.queue_notify(f->blk, FAKE_T, &r.vq, 2);
	for (int tries = 0; used_idx(&r) < NREQ && tries < 5000; tries++) {
		g_usleep(1000);
		if (g_atomic_int_get(&wakes))
			virtio_blk_ops.queue_notify(f->blk, FAKE_T, &r.vq, 2);
	}
	g_assert_cmpuint(used_idx(&r), ==, NREQ);
	g_assert_cmpint(g_atomic_int_get(&wakes), >=, 1);
	g_assert_cmpint(g_atomic_int_get(&woken_queue), ==, 2);
	assert_done(&r);
	guest_memory_free(&r.gm);
}

/* An image in memory (tmpfs): the I/O thread answers at once, no pool, no wake. */
static void test_queue_inline(struct fixture *f, gconstpointer data)
{
	struct ring r;

	ring_setup(&r);
	g_atomic_int_set(&wakes, 0);
	virtio_blk_ops.queue_notify(f->blk, FAKE_T, &r.vq, 0);
	g_assert_cmpuint(used_idx(&r), ==, NREQ);
	g_assert_cmpint(g_atomic_int_get(&wakes), ==, 0);
	assert_done(&r);
	guest_memory_free(&r.gm);
}

/* A reset returns only once every request handed out is done, and pushes none of them. */
static void test_queue_reset_waits(struct fixture *f, gconstpointer data)
{
	struct ring r;

	reopen_as_snapshot(f);
	ring_setup(&r);
	virtio_blk_ops.queue_notify(f->blk, FAKE_T, &r.vq, 0);
	virtio_blk_ops.reset(f->blk);
	assert_done(&r);
	virtio_blk_ops.queue_notify(f->blk, FAKE_T, &r.vq, 0);
	g_assert_cmpuint(used_idx(&r), ==, 0);
	guest_memory_free(&r.gm);
}

/* One request queue per vCPU (VIRTIO_BLK_F_MQ), at most VIRTIO_MAX_QUEUES. */
static void test_queue_count(struct fixture *f, gconstpointer data)
{
	struct disk_config cfg = {.path = f->path};
	uint8_t n[2];

	g_assert_cmpuint(virtio_blk_ops.queue_count(f->blk), ==, 1);
	virtio_blk_close(f->blk);
	f->blk = virtio_blk_open(&cfg, 4, NULL);
	g_assert_cmpuint(virtio_blk_ops.queue_count(f->blk), ==, 4);
	g_assert_true(virtio_blk_ops.features(f->blk) & 1ULL << 12);
	virtio_blk_ops.config_read(f->blk, 34, n, 2);
	g_assert_cmpuint(n[0] | n[1] << 8, ==, 4);
	virtio_blk_close(f->blk);
	f->blk = virtio_blk_open(&cfg, 64, NULL);
	g_assert_cmpuint(virtio_blk_ops.queue_count(f->blk), ==, VIRTIO_MAX_QUEUES);
}

#define BIG_QSIZE 1024
#define BIG_NREQ  300 /* more than one run's budget */
#define BIG_DESC  (LAYOUT_RAM_START + 0x80000)

/*
 * A kick takes at most VQ_BURST requests, then lets the loop serve
 * others and asks to run again: a driver that keeps its ring full does
 * not hold the I/O thread.
 */
static void test_queue_budget(struct fixture *f, gconstpointer data)
{
	struct ring r;

	ring_setup_sized(&r, BIG_QSIZE, BIG_NREQ, BIG_DESC);
	g_atomic_int_set(&wakes, 0);
	virtio_blk_ops.queue_notify(f->blk, FAKE_T, &r.vq, 0);
	g_assert_cmpuint(used_idx(&r), ==, VQ_BURST);
	g_assert_cmpint(g_atomic_int_get(&wakes), ==, 1);
	virtio_blk_ops.queue_notify(f->blk, FAKE_T, &r.vq, 0);
	g_assert_cmpuint(used_idx(&r), ==, BIG_NREQ);
	g_assert_cmpint(g_atomic_int_get(&wakes), ==, 1);
	guest_memory_free(&r.gm);
}

#define REPUBLISH_ROUNDS 2000
#define RSS_BOUND_KIB    (16 * 1024)

/*
 * A driver that publishes one head again and again, before the device
 * gave it back, broke the queue: the device must not queue a request per
 * pop (a proof of concept grew husk by 273 MiB in 1.6 s). Every request
 * goes to the pool (a snapshot disk), as a guest's would.
 */
static void test_queue_republished_head(struct fixture *f, gconstpointer data)
{
	struct ring r;

	reopen_as_snapshot(f);
	ring_setup(&r);
	uint16_t *avail = gm_ptr(&r.gm, r.vq.avail_addr, 4 + 2 * QSIZE);
	for (int i = 0; i < QSIZE; i++)
		avail[2 + i] = 0;
	long before = test_rss_kib();
	for (int round = 0; round < REPUBLISH_ROUNDS; round++) {
		avail[1] = (uint16_t)(r.vq.last_avail_idx + QSIZE);
		virtio_blk_ops.queue_notify(f->blk, FAKE_T, &r.vq, 0);
	}
	long grown = test_rss_kib() - before;
	virtio_blk_ops.reset(f->blk);
	g_test_message("RSS grew by %ld KiB", grown);
#ifndef __SANITIZE_ADDRESS__ /* whose quarantine keeps what each run allocates and frees */
	g_assert_cmpint(grown, <, RSS_BOUND_KIB);
#endif
	g_assert_true(r.vq.broken);
	guest_memory_free(&r.gm);
}

/* ---- hostile requests ------------------------------------------------------------- */

#define HOSTILE_REQUESTS 10000
#define ARENA            32768

/* A plausible header mostly: a known type and a sector near the image; else anything. */
static void hostile_header(GRand *r, uint8_t *p, uint32_t len)
{
	static const uint32_t types[] = {0, 1, 4, 8, 11, 13};
	uint32_t type =
	    g_rand_int_range(r, 0, 8) ? types[g_rand_int_range(r, 0, 6)] : g_rand_int(r);
	uint64_t sector = g_rand_int_range(r, 0, 4) ? (uint64_t)g_rand_int_range(r, 0, SECTORS + 4)
	                                            : (uint64_t)g_rand_int(r) << 32 | g_rand_int(r);

	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)g_rand_int(r);
	if (len >= 16) {
		memcpy(p, &type, 4);
		memcpy(p + 8, &sector, 8);
	}
}

/*
 * A chain as vq_pop hands it over (readable buffers, then writable ones)
 * but with any lengths, carved from 'arena' without overlaps: readable
 * ones hold a header and random bytes (discard ranges among them).
 */
static void hostile_chain(struct fixture *f, GRand *r, uint8_t *arena)
{
	int readable = g_rand_int_range(r, 0, 4), writable = g_rand_int_range(r, 0, 4);
	uint32_t at = 0;

	memset(&f->chain, 0, sizeof(f->chain));
	for (int i = 0; i < readable + writable; i++) {
		uint32_t len = g_rand_int_range(r, 0, 4)
		                   ? (uint32_t)g_rand_int_range(r, 0, 1100)
		                   : 512 * (uint32_t)g_rand_int_range(r, 0, 9);
		at += (uint32_t)g_rand_int_range(r, 0, 64);
		if (at + len > ARENA)
			break;
		bool w = i >= readable;
		if (w)
			memset(arena + at, 0xa5, len);
		else
			hostile_header(r, arena + at, len);
		f->chain.seg[f->chain.nseg++] = (struct vq_seg){arena + at, len, w};
		*(w ? &f->chain.in_len : &f->chain.out_len) += len;
		at += len;
	}
}

/* Whether arena byte 'i' lies in a writable buffer of the chain. */
static bool in_writable(const struct fixture *f, const uint8_t *arena, uint32_t i)
{
	for (unsigned int k = 0; k < f->chain.nseg; k++) {
		const struct vq_seg *s = &f->chain.seg[k];
		if (s->device_writable && arena + i >= (uint8_t *)s->addr &&
		    arena + i < (uint8_t *)s->addr + s->len)
			return true;
	}
	return false;
}

/*
 * Requests a hostile driver might send, made at random (the same ones
 * every run): any type, sector and lengths, headers cut short, no room
 * for the status. Each is refused (-1) or answered with a status in its
 * last writable byte, and nothing but writable buffers changes.
 */
static void test_hostile_requests(struct fixture *f, gconstpointer data)
{
	GRand *r = g_rand_new_with_seed(0x626c6b);
	uint8_t *arena = g_malloc(ARENA), *before = g_malloc(ARENA);
	unsigned int answered = 0;
	GStatBuf st;

	for (int n = 0; n < HOSTILE_REQUESTS; n++) {
		uint32_t written;
		hostile_chain(f, r, arena);
		memcpy(before, arena, ARENA);
		int status = virtio_blk_process(f->blk, &f->chain, &written);
		if (status >= 0) {
			const struct vq_seg *last = &f->chain.seg[f->chain.nseg - 1];
			g_assert_cmpint(status, <=, S_UNSUPP);
			g_assert_true(last->device_writable);
			g_assert_cmpuint(((uint8_t *)last->addr)[last->len - 1], ==, status);
			g_assert_cmpuint(written, >=, 1);
			g_assert_cmpuint(written, <=, f->chain.in_len);
			answered++;
		}
		for (uint32_t i = 0; i < ARENA; i++)
			if (arena[i] != before[i])
				g_assert_true(in_writable(f, arena, i));
	}
	g_assert_cmpuint(answered, >, HOSTILE_REQUESTS / 4);
	g_assert_cmpint(g_stat(f->path, &st), ==, 0);
	g_assert_cmpint(st.st_size, ==, SECTORS * 512);
	g_free(before);
	g_free(arena);
	g_rand_free(r);
}

#define ADD(name, fn)    g_test_add("/virtio-blk/" name, struct fixture, NULL, setup, fn, teardown)
#define ADD_RO(name, fn) g_test_add("/virtio-blk/" name, struct fixture, "ro", setup, fn, teardown)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("read", test_read);
	ADD("write-flush-read-back", test_write_flush_read_back);
	ADD("out-of-range", test_out_of_range);
	ADD_RO("read-only", test_read_only);
	ADD("get-id", test_get_id);
	ADD("discard-and-write-zeroes", test_discard_and_zeroes);
	g_test_add("/virtio-blk/write-zeroes-on-tmpfs", struct fixture, NULL, setup_tmpfs,
	           test_zeroes_written_out, teardown);
	ADD("unknown-type", test_unknown_type);
	ADD("malformed-chains", test_malformed_chains);
	ADD("hostile-requests", test_hostile_requests);
	ADD("second-writer-locked-out", test_lock);
	ADD("detected-raw-keeps-its-format", test_header_guard);
	ADD("cache-none", test_cache_none);
	ADD("cache-none-neighbours", test_cache_none_neighbours);
	ADD("snapshot", test_snapshot);
	ADD("qcow2", test_qcow2);
	ADD("queue-pool", test_queue_pool);
	ADD("queue-count", test_queue_count);
	g_test_add("/virtio-blk/queue-inline-on-tmpfs", struct fixture, NULL, setup_tmpfs,
	           test_queue_inline, teardown);
	ADD("queue-reset-waits", test_queue_reset_waits);
	ADD("queue-republished-head", test_queue_republished_head);
	g_test_add("/virtio-blk/queue-budget-on-tmpfs", struct fixture, NULL, setup_tmpfs,
	           test_queue_budget, teardown);
	g_test_add_func("/virtio-blk/open-errors", test_open_errors);
	g_test_add_func("/virtio-blk/parse", test_parse);
	return g_test_run();
}
