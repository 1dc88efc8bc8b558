/* SPDX-License-Identifier: MIT */
/*
 * Landlock: the kernel confines the calling thread's file opens to one
 * directory and what lies beneath it, whatever path the thread's own code
 * would follow. A thread that a guest took over then cannot open a host
 * file outside its share, even with the calls its seccomp list allows.
 */
#ifndef HUSK_LANDLOCK_H
#define HUSK_LANDLOCK_H

#include <stdbool.h>

/*
 * Confines the calling thread (and threads it starts) to 'dir_fd' (an
 * O_PATH descriptor of a directory): reading only when 'read_only', else
 * reading and changing. Sets no_new_privs on the thread, as Landlock needs. Returns false with
 * errno set when the kernel has no Landlock (ENOSYS, EOPNOTSUPP) or one too old to allow renames
 * and links between directories (ABI 1), and on any other failure; the thread is then as it was.
 */
bool landlock_confine_beneath(int dir_fd, bool read_only);

#define LANDLOCK_MAX_DIRS 8

/*
 * The same for up to LANDLOCK_MAX_DIRS directories (none: no file opens
 * at all), each to read (files and listings) or, where 'writable', to
 * read and change; never to execute.
 */
bool landlock_confine_dirs(const int *dir_fds, const bool *writable, unsigned int n);

#endif
