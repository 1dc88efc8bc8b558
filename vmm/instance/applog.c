// SPDX-License-Identifier: MIT
/* A log that keeps its newest output and a bounded amount of it (applog.h). */
#include "vmm/instance/applog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/error.h"

struct applog {
	char *path;
	int fd;
	uint64_t size, max;
};

static int open_append(const char *path, int flags)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | flags, 0600);
}

struct applog *applog_open(const char *path, uint64_t max, GError **err)
{
	int fd = open_append(path, 0);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct applog *log = g_new0(struct applog, 1);
	log->path = g_strdup(path);
	log->fd = fd;
	log->size = (uint64_t)st.st_size;
	log->max = max ? max : APPLOG_MAX;
	return log;
}

/* PATH becomes PATH.1, and PATH begins again empty. */
static void rotate(struct applog *log)
{
	char *old = g_strconcat(log->path, ".1", NULL);
	int fd;

	if (rename(log->path, old) == 0 && (fd = open_append(log->path, O_TRUNC)) >= 0) {
		close(log->fd);
		log->fd = fd;
		log->size = 0;
	}
	g_free(old);
}

bool applog_write(struct applog *log, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		if (log->size >= log->max)
			rotate(log);
		/* Never past the cap in one file: a burst is split across the rotation. */
		size_t room = log->size < log->max ? (size_t)(log->max - log->size) : len;
		ssize_t n = write(log->fd, p, MIN(len, room));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		log->size += (uint64_t)n;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

void applog_close(struct applog *log)
{
	if (!log)
		return;
	close(log->fd);
	g_free(log->path);
	g_free(log);
}

/* Appends at most 'max' bytes from the end of 'path' to 'out'; its size in *size. */
static void append_tail(GByteArray *out, const char *path, uint64_t max, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	uint8_t buf[65536];

	*size = 0;
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		uint64_t end = (uint64_t)st.st_size;
		uint64_t at = end > max ? end - max : 0;
		ssize_t n;
		while (at < end &&
		       (n = pread(fd, buf, (size_t)MIN(sizeof(buf), end - at), (off_t)at)) > 0) {
			g_byte_array_append(out, buf, (guint)n);
			at += (uint64_t)n;
		}
		*size = at;
	}
	close(fd);
}

/* Where the last 'lines' lines of data begin (a final line without \n counts). */
static size_t last_lines_start(const uint8_t *data, size_t len, int lines)
{
	size_t i = len;

	if (lines == 0)
		return len;
	if (i > 0 && data[i - 1] == '\n')
		i--;
	while (i > 0) {
		if (data[i - 1] == '\n' && --lines == 0)
			return i;
		i--;
	}
	return 0;
}

GBytes *applog_read(const char *path, uint64_t max, int lines, uint64_t *end_offset)
{
	char *old = g_strconcat(path, ".1", NULL);
	GByteArray *all = g_byte_array_new();
	uint64_t ignored, end;

	max = max ? max : APPLOG_MAX;
	append_tail(all, old, max, &ignored);
	append_tail(all, path, max, &end);
	g_free(old);
	if (end_offset)
		*end_offset = end;
	size_t from = lines >= 0 ? last_lines_start(all->data, all->len, lines) : 0;
	GBytes *text = g_bytes_new(all->data + from, all->len - from);
	g_byte_array_unref(all);
	return text;
}
