/* SPDX-License-Identifier: MIT */
/*
 * A bounded log file: appended to until it holds 'max' bytes, then
 * renamed to PATH.1 (replacing the one before) and begun again. So the
 * newest output is always kept, at least 'max' bytes of it when there was
 * that much, and at most 2 * max bytes on disk. The serving process keeps
 * an image run's stdout and stderr so; husk logs reads them.
 */
#ifndef HUSK_APPLOG_H
#define HUSK_APPLOG_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define APPLOG_MAX (1024 * 1024) /* an image run's stdout and stderr each */

struct applog;

/* Opens (creating, or appending to) the log at 'path'. */
struct applog *applog_open(const char *path, uint64_t max, GError **err);
/* Appends all of buf; false when the disk refused (the log stays usable). */
bool applog_write(struct applog *log, const void *buf, size_t len);
void applog_close(struct applog *log);

/*
 * The log's text (PATH.1, then PATH), or its last 'lines' lines when
 * lines >= 0. Reads at most 2 * max bytes from the files' ends, however
 * large they have grown. *end_offset: where PATH ended, to follow from.
 */
GBytes *applog_read(const char *path, uint64_t max, int lines, uint64_t *end_offset);

#endif
