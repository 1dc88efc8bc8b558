/* SPDX-License-Identifier: MIT */
/* A wire from a device to one input (GSI) of the in-kernel interrupt controller. */
#ifndef HUSK_IRQ_H
#define HUSK_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct irq_line {
	void (*set)(void *ctx, uint32_t gsi, bool level);
	void *ctx;
	uint32_t gsi;
};

static inline void irq_line_set(const struct irq_line *line, bool level)
{
	line->set(line->ctx, line->gsi, level);
}

#endif
