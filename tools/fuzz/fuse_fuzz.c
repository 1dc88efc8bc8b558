// SPDX-License-Identifier: MIT
/*
 * The FUSE server's decoder and operations, on a share of a few files: an
 * input is a series of requests, each a 16-bit length and that many bytes
 * (header, arguments, data; lengths inside may lie), answered by a fresh
 * server after INIT. The share is put back as it was every so often, so
 * what the requests make does not pile up.
 */
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/fs/fuse_server.h"

#define RESET_EVERY 4096
#define OUT_BYTES   (FUSE_SERVER_MAX_WRITE + 4096)
#define FALLOC_MAX  (16 << 20)

static char *top, *share;
static uint8_t *out;

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return ftw->level ? remove(path) : 0;
}

/* share/: hello, dir/inner, and a symlink out of it (top/outside must stay unread). */
static void make_share(void)
{
	char *path;

	nftw(share, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	path = g_build_filename(share, "hello", NULL);
	g_file_set_contents(path, "hello, guest\n", -1, NULL);
	g_free(path);
	path = g_build_filename(share, "dir", NULL);
	g_mkdir(path, 0755);
	g_free(path);
	path = g_build_filename(share, "dir", "inner", NULL);
	g_file_set_contents(path, "inner\n", -1, NULL);
	g_free(path);
	path = g_build_filename(share, "link", NULL);
	if (symlink("../outside", path))
		abort();
	g_free(path);
}

static void remove_all(void)
{
	nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	g_rmdir(top);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Not on /dev/shm: there a FALLOCATE of a few GB takes that much memory, and seconds. */
	top = g_dir_make_tmp("husk-fuse-fuzz-XXXXXX", NULL);
	share = g_build_filename(top, "share", NULL);
	char *outside = g_build_filename(top, "outside", NULL);
	g_file_set_contents(outside, "secret", -1, NULL);
	g_free(outside);
	g_mkdir(share, 0755);
	make_share();
	atexit(remove_all);
	out = g_malloc(OUT_BYTES);
	return 0;
}

static void answer(struct fuse_server *s, const uint8_t *req, size_t len)
{
	/* Two pieces, as a virtqueue chain may carry it. */
	size_t cut = len / 3;
	struct iovec in[2] = {{(void *)req, cut}, {(void *)(req + cut), len - cut}};
	struct iovec o[2] = {{out, 64}, {out + 64, OUT_BYTES - 64}};

	fuse_server_handle(s, in, 2, o, 2);
}

/*
 * A FALLOCATE's range kept within FALLOC_MAX: the host's file system does
 * what it asks, and one of tens of gigabytes (FALLOC_FL_KEEP_SIZE passes
 * RLIMIT_FSIZE by) would fill the disk under every other process for as
 * long as the input runs. The server's checks see the request otherwise
 * as it came.
 */
static const uint8_t *bounded(const uint8_t *req, size_t len)
{
	static uint8_t copy[UINT16_MAX];
	struct fuse_in_header h;
	struct fuse_fallocate_in fa;
	const size_t at = sizeof(h);

	if (len < at + sizeof(fa))
		return req;
	memcpy(&h, req, sizeof(h));
	if (h.opcode != FUSE_FALLOCATE)
		return req;
	memcpy(copy, req, len);
	memcpy(&fa, copy + at, sizeof(fa));
	fa.offset %= FALLOC_MAX;
	fa.length %= FALLOC_MAX;
	memcpy(copy + at, &fa, sizeof(fa));
	return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned int runs;
	struct fuse_in_header h = {
	    .len = sizeof(h) + sizeof(struct fuse_init_in), .opcode = FUSE_INIT, .unique = 1};
	struct fuse_init_in init = {.major = 7,
	                            .minor = 38,
	                            .max_readahead = 65536,
	                            .flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS |
	                                     FUSE_MAX_PAGES | FUSE_HANDLE_KILLPRIV_V2};
	uint8_t first[sizeof(h) + sizeof(init)];

	if (++runs % RESET_EVERY == 0)
		make_share();
	struct fuse_server *s = fuse_server_new(share, &(struct fuse_server_options){0}, NULL);
	if (!s)
		abort();
	memcpy(first, &h, sizeof(h));
	memcpy(first + sizeof(h), &init, sizeof(init));
	answer(s, first, sizeof(first));
	while (size >= 2) {
		size_t len = MIN((size_t)(data[0] | data[1] << 8), size - 2);
		answer(s, bounded(data + 2, len), len);
		data += 2 + len;
		size -= 2 + len;
	}
	fuse_server_free(s);
	return 0;
}
