// SPDX-License-Identifier: MIT
#include <glib.h>
#include <glib/gstdio.h>
#include <png.h>
#include <string.h>

#include "devices/display/screenshot.h"
#include "vmm/layout.h"

/* A picture whose every pixel differs: x in red, y in green, both in blue. */
static struct gpu_image pattern(uint32_t w, uint32_t h)
{
	struct gpu_image img = {w, h, g_malloc((size_t)w * h * 3)};

	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			uint8_t *p = img.rgb + ((size_t)y * w + x) * 3;
			p[0] = (uint8_t)x;
			p[1] = (uint8_t)y;
			p[2] = (uint8_t)(x ^ y);
		}
	return img;
}

/* Decodes PNG bytes with libpng's reader: the RGB pixels, or NULL. */
static uint8_t *decode(const void *data, size_t len, uint32_t *w, uint32_t *h)
{
	png_image png = {.version = PNG_IMAGE_VERSION};

	if (!png_image_begin_read_from_memory(&png, data, len))
		return NULL;
	png.format = PNG_FORMAT_RGB;
	uint8_t *rgb = g_malloc(PNG_IMAGE_SIZE(png));
	if (!png_image_finish_read(&png, NULL, rgb, 0, NULL)) {
		g_free(rgb);
		return NULL;
	}
	*w = png.width;
	*h = png.height;
	return rgb;
}

static void test_round_trip(void)
{
	struct gpu_image img = pattern(300, 7);
	GBytes *png = screenshot_encode_png(&img, NULL);
	uint32_t w, h;
	gsize len;

	g_assert_nonnull(png);
	const uint8_t *data = g_bytes_get_data(png, &len);
	g_assert_cmpmem(data, 8, "\x89PNG\r\n\x1a\n", 8);
	uint8_t *rgb = decode(data, len, &w, &h);
	g_assert_nonnull(rgb);
	g_assert_cmpuint(w, ==, 300);
	g_assert_cmpuint(h, ==, 7);
	g_assert_cmpmem(rgb, 300 * 7 * 3, img.rgb, 300 * 7 * 3);
	g_free(rgb);
	g_bytes_unref(png);
	g_free(img.rgb);
}

/* From the device to the file: what the guest drew, as the guest drew it. */
static void test_scanout_to_file(void)
{
	struct guest_memory gm;
	struct virtio_gpu *gpu;
	uint8_t req[64] = {0}, resp[64];
	struct vq_chain *chain = g_new0(struct vq_chain, 1);
	uint32_t green = 0x0000ff00; /* B8G8R8X8 */
	char *dir = g_dir_make_tmp("husk-shot-XXXXXX", NULL);
	char *path = g_build_filename(dir, "shot.png", NULL);
	GError *err = NULL;

	g_assert_true(guest_memory_alloc(&gm, 4 * MiB));
	gpu = virtio_gpu_new(&gm, 64, 64);
	g_assert_false(screenshot_take(gpu, path, &err));
	g_assert_nonnull(strstr(err->message, "shows nothing"));
	g_clear_error(&err);
	for (int i = 0; i < 8 * 8; i++)
		g_assert_true(gm_write(&gm, 0x1000 + i * 4, &green, 4));
	const uint32_t cmds[][10] = {
	    {0x0101, 0, 0, 0, 0, 0, 3, 2, 8, 8},      /* create 3, 8x8 */
	    {0x0106, 0, 0, 0, 0, 0, 3, 1, 0x1000, 0}, /* attach one entry */
	    {0x0105, 0, 0, 0, 0, 0, 0, 0, 8, 8},      /* transfer all ... */
	    {0x0103, 0, 0, 0, 0, 0, 0, 0, 8, 8},      /* set scanout ... */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
		size_t len = sizeof(cmds[i]) + 32;
		memset(req, 0, sizeof(req));
		memcpy(req, cmds[i], sizeof(cmds[i]));
		if (i == 1) /* the entry's length */
			memcpy(req + 40, &(uint32_t){256}, 4);
		if (i == 2) /* offset 0, resource 3 */
			memcpy(req + 48, &(uint32_t){3}, 4);
		if (i == 3) /* scanout 0, resource 3 */
			memcpy(req + 44, &(uint32_t){3}, 4);
		memset(chain, 0, sizeof(*chain));
		chain->seg[0] = (struct vq_seg){req, (uint32_t)len, false};
		chain->seg[1] = (struct vq_seg){resp, sizeof(resp), true};
		chain->nseg = 2;
		chain->out_len = (uint32_t)len;
		chain->in_len = sizeof(resp);
		g_assert_cmpuint(virtio_gpu_control(gpu, chain), ==, 24);
		g_assert_cmphex(*(uint32_t *)resp, ==, 0x1100);
	}
	g_assert_true(screenshot_take(gpu, path, &err));
	g_assert_no_error(err);
	gchar *data;
	gsize len;
	uint32_t w, h;
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	uint8_t *rgb = decode(data, len, &w, &h);
	g_assert_nonnull(rgb);
	g_assert_cmpuint(w, ==, 8);
	g_assert_cmpuint(h, ==, 8);
	for (int i = 0; i < 64; i++) {
		g_assert_cmpuint(rgb[i * 3], ==, 0);
		g_assert_cmpuint(rgb[i * 3 + 1], ==, 0xff);
		g_assert_cmpuint(rgb[i * 3 + 2], ==, 0);
	}
	g_free(rgb);
	g_free(data);
	g_unlink(path);
	g_rmdir(dir);
	/* A file that cannot be written: one error line. */
	g_assert_false(screenshot_take(gpu, "/nonexistent/dir/shot.png", &err));
	g_assert_nonnull(strstr(err->message, "screenshot:"));
	g_clear_error(&err);
	virtio_gpu_free(gpu);
	guest_memory_free(&gm);
	g_free(chain);
	g_free(path);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/screenshot/round-trip", test_round_trip);
	g_test_add_func("/screenshot/scanout-to-file", test_scanout_to_file);
	return g_test_run();
}
