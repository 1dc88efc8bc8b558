/* SPDX-License-Identifier: MIT */
/* Small socket helpers shared by husk's clients of its own sockets. */
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

#endif
