// SPDX-License-Identifier: MIT
#include "devices/pl061.h"

#include <glib.h>
#include <pthread.h>
#include <string.h>

/* Register offsets (TRM 3.2); GPIODATA is 0x000-0x3fc, address bits 9:2 its mask. */
#define REG_DATA_END 0x400
#define REG_DIR      0x400
#define REG_IS       0x404 /* 1: level-sensitive */
#define REG_IBE      0x408 /* 1: both edges */
#define REG_IEV      0x40c /* 1: rising edge or high level */
#define REG_IE       0x410 /* 1: not masked */
#define REG_RIS      0x414
#define REG_MIS      0x418
#define REG_IC       0x41c /* write 1: clear an edge */
#define REG_AFSEL    0x420
#define REG_ID       0xfe0 /* PeriphID0-3, then PCellID0-3: the AMBA bus probes by them */

static const uint8_t ids[8] = {0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

struct pl061 {
	pthread_mutex_t lock;
	uint8_t in, out, dir, is, ibe, iev, ie, edges, afsel;
	uint8_t release; /* pressed lines let go once the guest reads them */
	bool irq;        /* the level last driven */
	void (*set_irq)(void *opaque, bool level);
	void *opaque;
};

struct pl061 *pl061_new(void (*set_irq)(void *opaque, bool level), void *opaque)
{
	struct pl061 *g = g_new0(struct pl061, 1);

	pthread_mutex_init(&g->lock, NULL);
	g->set_irq = set_irq;
	g->opaque = opaque;
	return g;
}

void pl061_free(struct pl061 *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	g_free(g);
}

/* Raw status: latched edges, and the level-sensitive lines at their active level. */
static uint8_t raw_status(const struct pl061 *g)
{
	uint8_t active = (uint8_t)((g->in & g->iev) | (~g->in & ~g->iev));

	return (uint8_t)((g->edges & ~g->is) | (active & g->is & ~g->dir));
}

/* Under the lock: the interrupt line follows the masked status. */
static void update_irq(struct pl061 *g)
{
	bool level = (raw_status(g) & g->ie) != 0;

	if (level != g->irq) {
		g->irq = level;
		if (g->set_irq)
			g->set_irq(g->opaque, level);
	}
}

/* Under the lock. */
static void set_input(struct pl061 *g, uint8_t bit, bool high)
{
	bool was = g->in & bit;

	g->in = high ? (uint8_t)(g->in | bit) : (uint8_t)(g->in & ~bit);
	/* An edge on an input set for edges: both, or the one IEV names. */
	if (was != high && !(g->dir & bit) && !(g->is & bit) &&
	    ((g->ibe & bit) || (bool)(g->iev & bit) == high))
		g->edges |= bit;
	update_irq(g);
}

void pl061_set_input(struct pl061 *g, unsigned int line, bool high)
{
	if (line >= PL061_LINES)
		return;
	pthread_mutex_lock(&g->lock);
	g->release &= (uint8_t) ~(1u << line);
	set_input(g, (uint8_t)(1u << line), high);
	pthread_mutex_unlock(&g->lock);
}

void pl061_press(struct pl061 *g, unsigned int line)
{
	if (line >= PL061_LINES)
		return;
	pthread_mutex_lock(&g->lock);
	g->release |= (uint8_t)(1u << line);
	set_input(g, (uint8_t)(1u << line), true);
	pthread_mutex_unlock(&g->lock);
}

static uint8_t read_reg(struct pl061 *g, uint64_t off)
{
	if (off < REG_DATA_END) {
		uint8_t mask = (uint8_t)(off >> 2);
		uint8_t v = (uint8_t)(((g->out & g->dir) | (g->in & ~g->dir)) & mask);
		uint8_t seen = g->release & mask & v;

		/* A pressed button the guest has now seen: let go of it. */
		for (unsigned int line = 0; seen; line++, seen >>= 1)
			if (seen & 1) {
				g->release &= (uint8_t) ~(1u << line);
				set_input(g, (uint8_t)(1u << line), false);
			}
		return v;
	}
	switch (off) {
	case REG_DIR:
		return g->dir;
	case REG_IS:
		return g->is;
	case REG_IBE:
		return g->ibe;
	case REG_IEV:
		return g->iev;
	case REG_IE:
		return g->ie;
	case REG_RIS:
		return raw_status(g);
	case REG_MIS:
		return raw_status(g) & g->ie;
	case REG_AFSEL:
		return g->afsel;
	}
	if (off >= REG_ID && off < REG_ID + 4 * sizeof(ids))
		return ids[(off - REG_ID) / 4];
	return 0;
}

static void write_reg(struct pl061 *g, uint64_t off, uint8_t v)
{
	if (off < REG_DATA_END) {
		uint8_t mask = (uint8_t)(off >> 2);
		g->out = (uint8_t)((g->out & ~mask) | (v & mask));
		return;
	}
	switch (off) {
	case REG_DIR:
		g->dir = v;
		break;
	case REG_IS:
		g->is = v;
		break;
	case REG_IBE:
		g->ibe = v;
		break;
	case REG_IEV:
		g->iev = v;
		break;
	case REG_IE:
		g->ie = v;
		break;
	case REG_IC:
		g->edges &= (uint8_t)~v;
		break;
	case REG_AFSEL:
		g->afsel = v;
		break;
	}
}

void pl061_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pl061 *g = opaque;
	uint32_t v = 0;

	/* Registers are 32 bits wide, 8 of them used; other accesses are ignored. */
	if (len != 4 || (offset & 3) || offset >= PL061_SIZE) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&g->lock);
	if (is_write) {
		memcpy(&v, data, 4);
		write_reg(g, offset, (uint8_t)v);
		update_irq(g);
	} else {
		v = read_reg(g, offset);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&g->lock);
}
