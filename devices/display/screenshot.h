/* SPDX-License-Identifier: MIT */
/*
 * A scanout's picture (devices/display/virtio_gpu.h) as a PNG file,
 * through libpng's simplified interface: the format every viewer and test
 * tool reads, lossless, so a test can check exact pixel values.
 */
#ifndef HUSK_SCREENSHOT_H
#define HUSK_SCREENSHOT_H

#include <glib.h>
#include <stdbool.h>

#include "devices/display/virtio_gpu.h"

/* The PNG bytes of 'img', or NULL with 'err' set. */
GBytes *screenshot_encode_png(const struct gpu_image *img, GError **err);

/* Writes 'img' to 'path' as PNG; the file appears whole or not at all. */
bool screenshot_write_png(const struct gpu_image *img, const char *path, GError **err);

/* What scanout 0 of 'gpu' showed last (virtio_gpu_last_picture), written to 'path'. */
bool screenshot_take(struct virtio_gpu *gpu, const char *path, GError **err);

#endif
