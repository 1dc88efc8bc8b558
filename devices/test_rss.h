/* SPDX-License-Identifier: MIT */
/*
 * For unit tests that bound how much memory a hostile guest can make husk
 * take: this process's resident memory, in KiB.
 */
#ifndef HUSK_TEST_RSS_H
#define HUSK_TEST_RSS_H

#include <glib.h>
#include <stdio.h>
#include <unistd.h>

static inline long test_rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	g_assert_nonnull(f);
	g_assert_cmpint(fscanf(f, "%ld %ld", &pages, &resident), ==, 2);
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#endif
