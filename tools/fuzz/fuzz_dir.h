/* SPDX-License-Identifier: MIT */
/*
 * A folder for one fuzzing process's files, made once and reused by every
 * input: on /dev/shm (tmpfs) where it can be, as targets that make and
 * remove files for each input spend most of their time in the file
 * system otherwise; else in $TMPDIR.
 */
#ifndef HUSK_FUZZ_DIR_H
#define HUSK_FUZZ_DIR_H

#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <unistd.h>

/* 'name' ends in XXXXXX; abort()s if no folder can be made. */
static inline char *fuzz_make_dir(const char *name)
{
	char *dir = NULL;

	if (g_access("/dev/shm", W_OK) == 0) {
		dir = g_build_filename("/dev/shm", name, NULL);
		if (!g_mkdtemp(dir))
			g_clear_pointer(&dir, g_free);
	}
	if (!dir)
		dir = g_dir_make_tmp(name, NULL);
	if (!dir)
		abort();
	return dir;
}

#endif
