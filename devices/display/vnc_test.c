// SPDX-License-Identifier: MIT
/*
 * The VNC server end to end, without a VM: a guest's commands draw into
 * virtio-gpu, guest-tests/vnc-probe (VNC_PROBE) connects over RFB, and
 * what it sees and the key it sends are checked.
 */
#include <glib.h>
#include <linux/input-event-codes.h>
#include <string.h>

#include "devices/display/test_gpu.h"
#include "devices/display/vnc.h"

#define W 64
#define H 48

static void test_picture_and_key(void)
{
	const char *probe = g_getenv("VNC_PROBE");
	struct test_guest g;
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
	test_gpu_draw_halves(&g, W, H);
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
