// SPDX-License-Identifier: MIT
/*
 * The VNC server end to end, without a VM: a guest's commands draw into
 * virtio-gpu, guest-tests/vnc-probe (VNC_PROBE) connects over RFB, and
 * what it sees and the key it sends are checked.
 */
#include <glib.h>
#include <linux/input-event-codes.h>
#include <string.h>

#include "devices/display/vnc.h"
#include "vmm/layout.h"

#define W 64
#define H 48

struct guest {
	struct guest_memory gm;
	struct virtio_gpu *gpu;
};

/* One control command: header type, then its body's words; the answer's type. */
static uint32_t command(struct guest *g, uint32_t type, const uint32_t *body, size_t words)
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

#define CMD(g, type, ...)                                                                          \
	({                                                                                         \
		const uint32_t body_[] = {__VA_ARGS__};                                            \
		command(g, type, body_, G_N_ELEMENTS(body_));                                      \
	})

/* The left half red, the right half blue, on a W x H resource in guest RAM at 1 MiB. */
static void draw(struct guest *g)
{
	for (uint32_t y = 0; y < H; y++)
		for (uint32_t x = 0; x < W; x++) {
			uint32_t px = x < W / 2 ? 0x00ff0000 : 0x000000ff; /* B8G8R8X8 */
			g_assert_true(gm_write(&g->gm, MiB + (y * W + x) * 4, &px, 4));
		}
	g_assert_cmphex(CMD(g, 0x101, 1, 2, W, H), ==, 0x1100);                 /* create */
	g_assert_cmphex(CMD(g, 0x106, 1, 1, MiB, 0, W * H * 4, 0), ==, 0x1100); /* attach */
	g_assert_cmphex(CMD(g, 0x105, 0, 0, W, H, 0, 0, 1, 0), ==, 0x1100);     /* transfer */
	g_assert_cmphex(CMD(g, 0x103, 0, 0, W, H, 0, 1), ==, 0x1100);           /* scanout */
	g_assert_cmphex(CMD(g, 0x104, 0, 0, W, H, 1, 0), ==, 0x1100);           /* flush */
}

static void test_picture_and_key(void)
{
	const char *probe = g_getenv("VNC_PROBE");
	struct guest g;
	struct virtio_input *kbd = virtio_input_new(INPUT_KEYBOARD);
	struct vnc_server *vnc = NULL;
	GError *err = NULL;
	char addr[32], port[8], *out = NULL, *errout = NULL;
	int status;

	if (!probe) {
		g_test_skip("VNC_PROBE is not set (meson test sets it)");
		return;
	}
	g_assert_true(guest_memory_alloc(&g.gm, 16 * MiB));
	g.gpu = virtio_gpu_new(&g.gm, W, H);
	draw(&g);
	/* A free port: a few tries from a random one. */
	for (int i = 0; i < 20 && !vnc; i++) {
		g_snprintf(port, sizeof(port), "%d", g_random_int_range(20000, 60000));
		g_snprintf(addr, sizeof(addr), "127.0.0.1:%s", port);
		vnc = vnc_start(addr, g.gpu, kbd, NULL, &err);
		g_clear_error(&err);
	}
	g_assert_nonnull(vnc);
	vnc_serve(vnc);
	const char *argv[] = {probe, "-k", "0x61", "127.0.0.1", port, "0,0", "63,47", NULL};
	g_assert_true(
	    g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &out, &errout, &status, NULL));
	g_assert_cmpstr(errout, ==, "");
	g_assert_cmpstr(out, ==, "64x48\n0,0 ff0000\n63,47 0000ff\n");
	/* The key: pressed, released, each with its SYN_REPORT. */
	for (int i = 0; i < 100 && virtio_input_pending(kbd) < 4; i++)
		g_usleep(20000);
	g_assert_cmpuint(virtio_input_pending(kbd), ==, 4);
	vnc_stop(vnc);
	g_free(out);
	g_free(errout);
	virtio_input_free(kbd);
	virtio_gpu_free(g.gpu);
	guest_memory_free(&g.gm);
}

static void test_addresses(void)
{
	char *host = NULL;
	int port = 0;

	g_assert_true(vnc_parse_address("127.0.0.1:5900", &host, &port, NULL));
	g_assert_cmpstr(host, ==, "127.0.0.1");
	g_assert_cmpint(port, ==, 5900);
	g_free(host);
	g_assert_true(vnc_parse_address("[::1]:5901", &host, &port, NULL));
	g_assert_cmpstr(host, ==, "::1");
	g_free(host);
	const char *bad[] = {"",
	                     ":5900",
	                     "127.0.0.1",
	                     "127.0.0.1:",
	                     "127.0.0.1:0",
	                     "127.0.0.1:65536",
	                     "localhost:5900",
	                     "::1:5900",
	                     "[::1:5900",
	                     "127.0.0.1:59x"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		GError *err = NULL;
		g_assert_false(vnc_parse_address(bad[i], &host, &port, &err));
		g_assert_nonnull(err);
		g_error_free(err);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vnc/addresses", test_addresses);
	g_test_add_func("/vnc/picture-and-key", test_picture_and_key);
	return g_test_run();
}
