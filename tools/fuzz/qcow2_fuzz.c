// SPDX-License-Identifier: MIT
/*
 * The qcow2 reader (and writer) on an image the input is: opened as qcow2
 * from a memory file, read at its start, middle and end, written once at
 * its start and read back. A backing file it names is opened read-only,
 * relative to /proc/self/fd, where little is found.
 */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/block/block.h"

#define IO_BYTES 65536

static uint8_t buf[IO_BYTES];

static void read_at(struct block_backend *b, uint64_t off)
{
	uint64_t len = MIN((uint64_t)IO_BYTES, b->size - MIN(off, b->size));

	if (len)
		block_pread(b, buf, len, off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("qcow2-fuzz", MFD_CLOEXEC);
	char path[64];
	GError *err = NULL;

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct block_backend *b =
	    block_open(path, &(struct block_open_options){.format = "qcow2"}, &err);
	if (b) {
		read_at(b, 0);
		read_at(b, b->size / 2 & ~511ULL);
		read_at(b, b->size & ~511ULL);
		if (b->size >= 512 && block_pwrite(b, data, MIN(size, 512) & ~511ULL, 0) == 0)
			read_at(b, 0);
		block_close(b);
	}
	g_clear_error(&err);
	close(fd);
	return 0;
}
