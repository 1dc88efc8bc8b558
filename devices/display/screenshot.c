// SPDX-License-Identifier: MIT
#include "devices/display/screenshot.h"

#include <png.h>

#include "vmm/error.h"

GBytes *screenshot_encode_png(const struct gpu_image *img, GError **err)
{
	png_image png = {.version = PNG_IMAGE_VERSION,
	                 .width = img->width,
	                 .height = img->height,
	                 .format = PNG_FORMAT_RGB,
	                 /* Less compression, several times faster: the I/O thread waits for it. */
	                 .flags = PNG_IMAGE_FLAG_FAST};
	png_alloc_size_t size = 0;
	png_int_32 stride = (png_int_32)img->width * 3;

	/* First the size it takes, then the bytes. */
	if (!png_image_write_to_memory(&png, NULL, &size, 0, img->rgb, stride, NULL)) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "screenshot: PNG: %s", png.message);
		png_image_free(&png);
		return NULL;
	}
	void *buf = g_malloc(size);
	if (!png_image_write_to_memory(&png, buf, &size, 0, img->rgb, stride, NULL)) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "screenshot: PNG: %s", png.message);
		png_image_free(&png);
		g_free(buf);
		return NULL;
	}
	return g_bytes_new_take(buf, size);
}

bool screenshot_write_png(const struct gpu_image *img, const char *path, GError **err)
{
	GBytes *png = screenshot_encode_png(img, err);
	GError *e = NULL;
	gsize len;

	if (!png)
		return false;
	const char *data = g_bytes_get_data(png, &len);
	bool ok = g_file_set_contents(path, data, (gssize)len, &e);
	g_bytes_unref(png);
	if (!ok) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "screenshot: %s", e->message);
		g_error_free(e);
	}
	return ok;
}

bool screenshot_take(struct virtio_gpu *gpu, const char *path, GError **err)
{
	struct gpu_image img;

	if (!virtio_gpu_last_picture(gpu, &img, err))
		return false;
	bool ok = screenshot_write_png(&img, path, err);
	g_free(img.rgb);
	return ok;
}
