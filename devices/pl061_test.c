// SPDX-License-Identifier: MIT
/* The PL061 as Linux's gpio-pl061 and gpio-keys drive it: IDs, data, edges, the press. */
#include <glib.h>
#include <string.h>

#include "devices/pl061.h"

struct fixture {
	struct pl061 *g;
	bool irq;
	unsigned int raised;
};

static void set_irq(void *opaque, bool level)
{
	struct fixture *f = opaque;

	f->irq = level;
	f->raised += level;
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	pl061_access(f->g, off, (uint8_t *)&v, 4, false);
	return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
	pl061_access(f->g, off, (uint8_t *)&v, 4, true);
}

static void setup(struct fixture *f, gconstpointer data)
{
	memset(f, 0, sizeof(*f));
	f->g = pl061_new(set_irq, f);
}

static void teardown(struct fixture *f, gconstpointer data)
{
	pl061_free(f->g);
}

/* The AMBA bus matches the driver by these: periph id 0x00041061, cell id 0xb105f00d. */
static void test_ids(struct fixture *f, gconstpointer data)
{
	const uint32_t want[] = {0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

	for (unsigned int i = 0; i < G_N_ELEMENTS(want); i++)
		g_assert_cmphex(rd(f, 0xfe0 + 4 * i), ==, want[i]);
}

/* GPIODATA's address bits 9:2 mask what a read sees and what a write changes. */
static void test_data_mask(struct fixture *f, gconstpointer data)
{
	pl061_set_input(f->g, 3, true);
	pl061_set_input(f->g, 5, true);
	g_assert_cmphex(rd(f, 0x3fc), ==, 0x28);
	g_assert_cmphex(rd(f, 1u << (3 + 2)), ==, 0x08);
	g_assert_cmphex(rd(f, 1u << (4 + 2)), ==, 0);
	wr(f, 0x400, 0x01); /* line 0 an output */
	wr(f, 0x3fc, 0xff); /* only outputs take it */
	g_assert_cmphex(rd(f, 0x3fc), ==, 0x29);
	wr(f, 1u << (0 + 2), 0); /* masked: line 0 alone */
	g_assert_cmphex(rd(f, 0x3fc), ==, 0x28);
	/* Odd sizes and offsets are ignored, reads of them are 0. */
	uint8_t b = 0xff;
	pl061_access(f->g, 0x3fc, &b, 1, false);
	g_assert_cmphex(b, ==, 0);
	g_assert_cmphex(rd(f, 0x0fff & ~3u), ==, 0xb1);
}

/* Both edges, as gpio-keys asks: each latches, the interrupt follows IE, IC clears. */
static void test_edges(struct fixture *f, gconstpointer data)
{
	wr(f, 0x408, 0x08); /* IBE on line 3 */
	pl061_set_input(f->g, 3, true);
	g_assert_false(f->irq); /* masked */
	g_assert_cmphex(rd(f, 0x414), ==, 0x08);
	wr(f, 0x410, 0x08); /* IE */
	g_assert_true(f->irq);
	g_assert_cmphex(rd(f, 0x418), ==, 0x08);
	wr(f, 0x41c, 0x08); /* IC */
	g_assert_false(f->irq);
	pl061_set_input(f->g, 3, false);
	g_assert_true(f->irq);
	wr(f, 0x41c, 0x08);
	/* A rising edge only (IEV), and the same level again makes none. */
	wr(f, 0x408, 0);
	wr(f, 0x40c, 0x08);
	pl061_set_input(f->g, 3, false);
	g_assert_false(f->irq);
	pl061_set_input(f->g, 3, true);
	g_assert_true(f->irq);
	wr(f, 0x41c, 0x08);
	pl061_set_input(f->g, 3, true);
	g_assert_false(f->irq);
	/* Level-sensitive: the interrupt stands while the line does; IC does not clear it. */
	wr(f, 0x404, 0x08);
	g_assert_true(f->irq);
	wr(f, 0x41c, 0x08);
	g_assert_true(f->irq);
	pl061_set_input(f->g, 3, false);
	g_assert_false(f->irq);
	/* Out of range lines are ignored. */
	pl061_set_input(f->g, 8, true);
	pl061_press(f->g, 200);
	g_assert_cmphex(rd(f, 0x3fc), ==, 0);
}

/* The power button: high until the guest reads it, then let go, each an edge. */
static void test_press(struct fixture *f, gconstpointer data)
{
	wr(f, 0x408, 0x08);
	wr(f, 0x410, 0x08);
	pl061_press(f->g, 3);
	g_assert_true(f->irq);
	wr(f, 0x41c, 0x08); /* the handler's ack */
	/* Reading another line lets go of nothing. */
	g_assert_cmphex(rd(f, 1u << (2 + 2)), ==, 0);
	g_assert_false(f->irq);
	g_assert_cmphex(rd(f, 1u << (3 + 2)), ==, 0x08); /* gpio-keys: pressed */
	g_assert_true(f->irq);                           /* and the release's edge */
	wr(f, 0x41c, 0x08);
	g_assert_cmphex(rd(f, 1u << (3 + 2)), ==, 0); /* released */
	g_assert_false(f->irq);
	g_assert_cmpuint(f->raised, ==, 2);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/pl061/ids", struct fixture, NULL, setup, test_ids, teardown);
	g_test_add("/pl061/data-mask", struct fixture, NULL, setup, test_data_mask, teardown);
	g_test_add("/pl061/edges", struct fixture, NULL, setup, test_edges, teardown);
	g_test_add("/pl061/press", struct fixture, NULL, setup, test_press, teardown);
	return g_test_run();
}
