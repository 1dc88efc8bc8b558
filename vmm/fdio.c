// SPDX-License-Identifier: MIT
#include "vmm/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int fdio_unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

bool fdio_read_until(int fd, void *buf, size_t len, int64_t deadline_us)
{
	uint8_t *p = buf;

	while (len) {
		int64_t left = (deadline_us - g_get_monotonic_time()) / 1000;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return false;
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool put_all(int fd, const void *buf, size_t len, bool socket)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = socket ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

bool fdio_write_all(int fd, const void *buf, size_t len)
{
	return put_all(fd, buf, len, false);
}

bool fdio_send_all(int fd, const void *buf, size_t len)
{
	return put_all(fd, buf, len, true);
}

/* Reads up to max + 1 bytes: one more than allowed says the file grew past it. */
static bool read_capped(int fd, size_t max, char **text, size_t *len)
{
	GByteArray *buf = g_byte_array_new();
	char chunk[16384];
	ssize_t n = 0;

	while (buf->len <= max && (n = read(fd, chunk, MIN(sizeof(chunk), max + 1 - buf->len))) > 0)
		g_byte_array_append(buf, (const guint8 *)chunk, (guint)n);
	if (n < 0 || buf->len > max) {
		int saved = n < 0 ? errno : EFBIG;
		g_byte_array_unref(buf);
		errno = saved;
		return false;
	}
	*len = buf->len;
	g_byte_array_append(buf, (const guint8 *)"", 1);
	*text = (char *)g_byte_array_free(buf, FALSE);
	return true;
}

bool fdio_read_regular(const char *path, size_t max, char **text, size_t *len, struct stat *st_out)
{
	/* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	bool ok = false;

	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0)
		goto out;
	if (!S_ISREG(st.st_mode))
		errno = EINVAL;
	else if ((uint64_t)st.st_size > max)
		errno = EFBIG;
	else
		ok = read_capped(fd, max, text, len);
	if (st_out)
		*st_out = st;
out:;
	int saved = errno;
	close(fd);
	errno = saved;
	return ok;
}
