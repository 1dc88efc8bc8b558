/* SPDX-License-Identifier: MIT */
/* For unit tests: a stop hook that records the reasons it is given. */
#ifndef HUSK_STOP_RECORDER_H
#define HUSK_STOP_RECORDER_H

#include <glib.h>

#include "vmm/stop.h"

struct stop_recorder {
	enum stop_reason reasons[4];
	unsigned int count;
};

static inline void stop_recorder_request(void *ctx, enum stop_reason reason)
{
	struct stop_recorder *st = ctx;

	g_assert_cmpuint(st->count, <, G_N_ELEMENTS(st->reasons));
	st->reasons[st->count++] = reason;
}

static inline struct stop_hook stop_recorder_hook(struct stop_recorder *st)
{
	return (struct stop_hook){stop_recorder_request, st};
}

/* The last reason recorded. */
static inline enum stop_reason stop_recorder_last(const struct stop_recorder *st)
{
	return st->count ? st->reasons[st->count - 1] : STOP_NONE;
}

#endif
