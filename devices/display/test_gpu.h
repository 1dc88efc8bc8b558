/* SPDX-License-Identifier: MIT */
/*
 * For the display's tests: a guest's control commands to virtio-gpu, and a
 * known picture drawn with them (the left half red, the right half blue).
 */
#ifndef HUSK_TEST_GPU_H
#define HUSK_TEST_GPU_H

#include <glib.h>
#include <string.h>

#include "devices/display/virtio_gpu.h"
#include "vmm/layout.h"

struct test_guest {
	struct guest_memory gm;
	struct virtio_gpu *gpu;
};

/* One control command: header type, then its body's words; the answer's type. */
static inline uint32_t test_gpu_command(struct test_guest *g, uint32_t type, const uint32_t *body,
                                        size_t words)
{
	uint8_t req[128] = {0}, resp[64];
	struct vq_chain *c = g_new0(struct vq_chain, 1);
	uint32_t answer;

	memcpy(req, &type, 4);
	memcpy(req + 24, body, words * 4);
	c->seg[0] = (struct vq_seg){req, (uint32_t)(24 + words * 4), false};
	c->seg[1] = (struct vq_seg){resp, sizeof(resp), true};
	c->nseg = 2;
	c->out_len = c->seg[0].len;
	c->in_len = sizeof(resp);
	g_assert_cmpuint(virtio_gpu_control(g->gpu, c), >=, 24);
	memcpy(&answer, resp, 4);
	g_free(c);
	return answer;
}

#define TEST_GPU_CMD(g, type, ...)                                                                 \
	({                                                                                         \
		const uint32_t body_[] = {__VA_ARGS__};                                            \
		test_gpu_command(g, type, body_, G_N_ELEMENTS(body_));                             \
	})

/* A w x h resource in guest RAM at 1 MiB, the left half red, the right half blue, shown. */
static inline void test_gpu_draw_halves(struct test_guest *g, uint32_t w, uint32_t h)
{
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			uint32_t px = x < w / 2 ? 0x00ff0000 : 0x000000ff; /* B8G8R8X8 */
			g_assert_true(gm_write(&g->gm, MiB + (y * w + x) * 4, &px, 4));
		}
	g_assert_cmphex(TEST_GPU_CMD(g, 0x101, 1, 2, w, h), ==, 0x1100); /* create */
	g_assert_cmphex(TEST_GPU_CMD(g, 0x106, 1, 1, MiB, 0, w * h * 4, 0), ==,
	                0x1100);                                                     /* attach */
	g_assert_cmphex(TEST_GPU_CMD(g, 0x105, 0, 0, w, h, 0, 0, 1, 0), ==, 0x1100); /* transfer */
	g_assert_cmphex(TEST_GPU_CMD(g, 0x103, 0, 0, w, h, 0, 1), ==, 0x1100);       /* scanout */
	g_assert_cmphex(TEST_GPU_CMD(g, 0x104, 0, 0, w, h, 1, 0), ==, 0x1100);       /* flush */
}

#endif
