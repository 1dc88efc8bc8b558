/* SPDX-License-Identifier: MIT */
/* Small file and socket helpers shared by husk's clients of its own files and sockets. */
#ifndef HUSK_FDIO_H
#define HUSK_FDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A connected SOCK_STREAM Unix socket to 'path' (close-on-exec), or -1 with errno set. */
int fdio_unix_connect(const char *path);

/*
 * Reads exactly 'len' bytes before 'deadline_us' (g_get_monotonic_time's
 * clock); false on end of file, an error, or silence until the deadline.
 */
bool fdio_read_until(int fd, void *buf, size_t len, int64_t deadline_us);

/*
 * Writes all of 'buf' (any fd; EINTR retried); false with errno set on an
 * error, ENOSPC when the fd takes no more.
 */
bool fdio_write_all(int fd, const void *buf, size_t len);

/* The same for a socket whose peer may be gone: an EPIPE to report, never a SIGPIPE. */
bool fdio_send_all(int fd, const void *buf, size_t len);

/*
 * Reads a regular file of at most 'max' bytes, whoever may have put
 * something else at 'path': no symlink is followed, a FIFO or device is
 * not opened for reading. *text ends in a NUL (free it). False with errno
 * set: EFBIG past 'max', EINVAL when it is not a regular file. What
 * fstat said of it goes to *st unless st is NULL.
 */
struct stat;
bool fdio_read_regular(const char *path, size_t max, char **text, size_t *len, struct stat *st);

#endif
