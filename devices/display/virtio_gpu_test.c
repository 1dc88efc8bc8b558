// SPDX-License-Identifier: MIT
#include <glib.h>
#include <string.h>

#include "devices/display/virtio_gpu.h"
#include "devices/display/virtio_gpu_virgl.h"
#include "vmm/layout.h"

#define RAM (16 * MiB)

enum {
	GET_DISPLAY_INFO = 0x0100,
	RESOURCE_CREATE_2D,
	RESOURCE_UNREF,
	SET_SCANOUT,
	RESOURCE_FLUSH,
	TRANSFER_TO_HOST_2D,
	ATTACH_BACKING,
	DETACH_BACKING,
	GET_EDID = 0x010a,
	CTX_CREATE = 0x0200,
	UPDATE_CURSOR = 0x0300,
	MOVE_CURSOR,
	OK_NODATA = 0x1100,
	OK_DISPLAY_INFO,
	OK_EDID = 0x1104,
	ERR_UNSPEC = 0x1200,
	ERR_OUT_OF_MEMORY,
	ERR_INVALID_SCANOUT_ID,
	ERR_INVALID_RESOURCE_ID,
	ERR_INVALID_CONTEXT_ID,
	ERR_INVALID_PARAMETER,
};

#define B8G8R8X8 2
#define R8G8B8A8 67

struct fixture {
	struct guest_memory gm;
	struct virtio_gpu *gpu;
	uint8_t request[4096];
	uint8_t response[2048];
	struct vq_chain chain;
};

static void setup(struct fixture *f, gconstpointer data)
{
	g_assert_true(guest_memory_alloc(&f->gm, RAM));
	f->gpu = virtio_gpu_new(&f->gm, 640, 480);
}

static void teardown(struct fixture *f, gconstpointer data)
{
	virtio_gpu_free(f->gpu);
	guest_memory_free(&f->gm);
}

/* A request: the header with 'type' and the 32-bit words of its body. */
static size_t put_request(struct fixture *f, uint32_t type, const uint32_t *body, size_t words)
{
	memset(f->request, 0, 24);
	memcpy(f->request, &type, 4);
	if (words) /* a header alone has no body, and memcpy wants a real pointer */
		memcpy(f->request + 24, body, words * 4);
	return 24 + words * 4;
}

/* Sends 'len' request bytes, as one readable and one writable buffer; returns the answer's type. */
static uint32_t send_bytes(struct fixture *f, size_t len, uint32_t *written)
{
	uint32_t type, n;

	memset(&f->chain, 0, sizeof(f->chain));
	memset(f->response, 0xee, sizeof(f->response));
	f->chain.seg[0] = (struct vq_seg){f->request, (uint32_t)len, false};
	f->chain.seg[1] = (struct vq_seg){f->response, sizeof(f->response), true};
	f->chain.nseg = 2;
	f->chain.out_len = (uint32_t)len;
	f->chain.in_len = sizeof(f->response);
	n = virtio_gpu_control(f->gpu, &f->chain);
	if (written)
		*written = n;
	g_assert_cmpuint(n, >=, 24);
	memcpy(&type, f->response, 4);
	return type;
}

#define SEND(f, type, ...)                                                                         \
	({                                                                                         \
		const uint32_t body_[] = {__VA_ARGS__};                                            \
		send_bytes(f, put_request(f, type, body_, G_N_ELEMENTS(body_)), NULL);             \
	})

static uint32_t attach(struct fixture *f, uint32_t id, const uint64_t *addr, const uint32_t *len,
                       uint32_t n)
{
	const uint32_t body[] = {id, n};
	size_t at = put_request(f, ATTACH_BACKING, body, 2);

	for (uint32_t i = 0; i < n; i++, at += 16) {
		memcpy(f->request + at, &addr[i], 8);
		memcpy(f->request + at + 8, &len[i], 4);
		memset(f->request + at + 12, 0, 4);
	}
	return send_bytes(f, at, NULL);
}

static void test_display_info(struct fixture *f, gconstpointer data)
{
	uint32_t written, mode[6];

	g_assert_cmphex(send_bytes(f, put_request(f, GET_DISPLAY_INFO, NULL, 0), &written), ==,
	                OK_DISPLAY_INFO);
	g_assert_cmpuint(written, ==, 408);
	memcpy(mode, f->response + 24, sizeof(mode));
	g_assert_cmpuint(mode[2], ==, 640);
	g_assert_cmpuint(mode[3], ==, 480);
	g_assert_cmpuint(mode[4], ==, 1); /* enabled */
	memcpy(mode, f->response + 48, sizeof(mode));
	g_assert_cmpuint(mode[4], ==, 0); /* the second scanout does not exist */
}

static void test_edid(struct fixture *f, gconstpointer data)
{
	static const uint8_t header[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
	uint32_t written, size;
	uint8_t sum = 0;

	g_assert_cmphex(SEND(f, GET_EDID, 0, 0), ==, OK_EDID);
	memcpy(&size, f->response + 24, 4);
	g_assert_cmpuint(size, ==, 128);
	g_assert_cmpmem(f->response + 32, 8, header, 8);
	for (int i = 0; i < 128; i++)
		sum += f->response[32 + i];
	g_assert_cmpuint(sum, ==, 0);
	/* The preferred mode is the display's: 640 = 0x280 wide, 480 = 0x1e0 high. */
	g_assert_cmpuint(f->response[32 + 56], ==, 0x80);
	g_assert_cmpuint(f->response[32 + 58] >> 4, ==, 2);
	g_assert_cmpuint(f->response[32 + 59], ==, 0xe0);
	g_assert_cmphex(send_bytes(f, put_request(f, GET_EDID, (uint32_t[]){1, 0}, 2), &written),
	                ==, ERR_INVALID_SCANOUT_ID);
	g_assert_cmpuint(written, ==, 24);
}

/* A 4x2 resource in 'format' backed by two pieces of guest RAM, drawn and shown. */
static void draw_small(struct fixture *f, uint32_t format)
{
	uint8_t pixels[32];
	const uint64_t addr[] = {0x10000, 0x20000};
	const uint32_t len[] = {12, 20}; /* the first row crosses from one piece to the next */

	for (int i = 0; i < 32; i++)
		pixels[i] = (uint8_t)(i * 7 + 1);
	g_assert_true(gm_write(&f->gm, addr[0], pixels, 12));
	g_assert_true(gm_write(&f->gm, addr[1], pixels + 12, 20));
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, 5, format, 4, 2), ==, OK_NODATA);
	g_assert_cmphex(attach(f, 5, addr, len, 2), ==, OK_NODATA);
	g_assert_cmphex(SEND(f, TRANSFER_TO_HOST_2D, 0, 0, 4, 2, 0, 0, 5, 0), ==, OK_NODATA);
	g_assert_cmphex(SEND(f, SET_SCANOUT, 0, 0, 4, 2, 0, 5), ==, OK_NODATA);
	g_assert_cmphex(SEND(f, RESOURCE_FLUSH, 0, 0, 4, 2, 5, 0), ==, OK_NODATA);
}

static void test_draw_and_snapshot(struct fixture *f, gconstpointer data)
{
	struct gpu_image img;

	draw_small(f, B8G8R8X8);
	g_assert_true(virtio_gpu_snapshot(f->gpu, &img, NULL));
	g_assert_cmpuint(img.width, ==, 4);
	g_assert_cmpuint(img.height, ==, 2);
	/* Pixel 5 (second row, second column): bytes 20..23 are B, G, R, X. */
	g_assert_cmpuint(img.rgb[15], ==, (uint8_t)(22 * 7 + 1));
	g_assert_cmpuint(img.rgb[16], ==, (uint8_t)(21 * 7 + 1));
	g_assert_cmpuint(img.rgb[17], ==, (uint8_t)(20 * 7 + 1));
	g_free(img.rgb);
}

static void test_rgba_format(struct fixture *f, gconstpointer data)
{
	struct gpu_image img;

	draw_small(f, R8G8B8A8);
	g_assert_true(virtio_gpu_snapshot(f->gpu, &img, NULL));
	g_assert_cmpuint(img.rgb[0], ==, 1);
	g_assert_cmpuint(img.rgb[1], ==, 8);
	g_assert_cmpuint(img.rgb[2], ==, 15);
	g_free(img.rgb);
}

/* A transfer of part of the resource: the offset is where the rectangle starts. */
static void test_partial_transfer(struct fixture *f, gconstpointer data)
{
	const uint64_t addr[] = {0x40000};
	const uint32_t len[] = {16 * 16 * 4};
	uint32_t red = 0x00ff0000; /* B8G8R8X8 in a little-endian word */
	struct gpu_image img;

	for (int i = 0; i < 16 * 16; i++)
		g_assert_true(gm_write(&f->gm, addr[0] + i * 4, &red, 4));
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, 1, B8G8R8X8, 16, 16), ==, OK_NODATA);
	g_assert_cmphex(attach(f, 1, addr, len, 1), ==, OK_NODATA);
	/* Rows 2..3, columns 4..7. */
	g_assert_cmphex(SEND(f, TRANSFER_TO_HOST_2D, 4, 2, 4, 2, 2 * 64 + 16, 0, 1, 0), ==,
	                OK_NODATA);
	g_assert_cmphex(SEND(f, SET_SCANOUT, 0, 0, 16, 16, 0, 1), ==, OK_NODATA);
	g_assert_true(virtio_gpu_snapshot(f->gpu, &img, NULL));
	for (uint32_t y = 0; y < 16; y++)
		for (uint32_t x = 0; x < 16; x++) {
			bool drawn = x >= 4 && x < 8 && y >= 2 && y < 4;
			g_assert_cmpuint(img.rgb[(y * 16 + x) * 3], ==, drawn ? 0xff : 0);
		}
	g_free(img.rgb);
}

static void test_refusals(struct fixture *f, gconstpointer data)
{
	const uint64_t outside[] = {RAM - 8};
	const uint64_t inside[] = {0x1000};
	const uint32_t len[] = {64};

	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, 0, B8G8R8X8, 4, 4), ==,
	                ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, 1, 999, 4, 4), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, 1, B8G8R8X8, 0, 4), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, 1, B8G8R8X8, 65536, 65536), ==,
	                ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, 1, B8G8R8X8, 4, 4), ==, OK_NODATA);
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, 1, B8G8R8X8, 4, 4), ==,
	                ERR_INVALID_RESOURCE_ID);
	/* Backing: outside RAM, empty, too many entries, a list shorter than it says. */
	g_assert_cmphex(attach(f, 1, outside, len, 1), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(attach(f, 1, inside, (uint32_t[]){0}, 1), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, ATTACH_BACKING, 1, 100000), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, ATTACH_BACKING, 1, 3), ==, ERR_UNSPEC);
	g_assert_cmphex(attach(f, 2, inside, len, 1), ==, ERR_INVALID_RESOURCE_ID);
	/* A transfer before any backing, then one past the backing's end or the resource's. */
	g_assert_cmphex(SEND(f, TRANSFER_TO_HOST_2D, 0, 0, 4, 4, 0, 0, 1, 0), ==, ERR_UNSPEC);
	g_assert_cmphex(attach(f, 1, inside, len, 1), ==, OK_NODATA);
	g_assert_cmphex(attach(f, 1, inside, len, 1), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, TRANSFER_TO_HOST_2D, 0, 0, 4, 4, 4, 0, 1, 0), ==,
	                ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, TRANSFER_TO_HOST_2D, 0, 0, 4, 4, 0, 1, 1, 0), ==,
	                ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, TRANSFER_TO_HOST_2D, 1, 0, 4, 1, 0, 0, 1, 0), ==,
	                ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, TRANSFER_TO_HOST_2D, UINT32_MAX, 0, 2, 1, 0, 0, 1, 0), ==,
	                ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, TRANSFER_TO_HOST_2D, 0, 0, 4, 4, 0, 0, 1, 0), ==, OK_NODATA);
	/* Scanouts and flushes. */
	g_assert_cmphex(SEND(f, SET_SCANOUT, 0, 0, 4, 4, 1, 1), ==, ERR_INVALID_SCANOUT_ID);
	g_assert_cmphex(SEND(f, SET_SCANOUT, 0, 0, 4, 4, 0, 9), ==, ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(SEND(f, SET_SCANOUT, 0, 0, 5, 4, 0, 1), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(SEND(f, RESOURCE_FLUSH, 0, 0, 4, 4, 9, 0), ==, ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(SEND(f, RESOURCE_FLUSH, 2, 2, 4, 4, 1, 0), ==, ERR_INVALID_PARAMETER);
	/* Unknown commands, 3D ones (not offered), a truncated body. */
	g_assert_cmphex(SEND(f, 0x4242), ==, ERR_UNSPEC);
	g_assert_cmphex(SEND(f, CTX_CREATE, 1, 0), ==, ERR_UNSPEC);
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, 3, B8G8R8X8), ==, ERR_UNSPEC);
	g_assert_cmphex(SEND(f, DETACH_BACKING, 1, 0), ==, OK_NODATA);
	g_assert_cmphex(SEND(f, DETACH_BACKING, 1, 0), ==, ERR_UNSPEC);
	g_assert_cmphex(SEND(f, RESOURCE_UNREF, 1, 0), ==, OK_NODATA);
	g_assert_cmphex(SEND(f, RESOURCE_UNREF, 1, 0), ==, ERR_INVALID_RESOURCE_ID);
}

static void test_unref_turns_display_off(struct fixture *f, gconstpointer data)
{
	struct gpu_image img;
	GError *err = NULL;

	g_assert_false(virtio_gpu_snapshot(f->gpu, &img, &err));
	g_assert_nonnull(strstr(err->message, "shows nothing"));
	g_clear_error(&err);
	draw_small(f, B8G8R8X8);
	g_assert_cmphex(SEND(f, RESOURCE_UNREF, 5, 0), ==, OK_NODATA);
	g_assert_false(virtio_gpu_snapshot(f->gpu, &img, &err));
	g_clear_error(&err);
	draw_small(f, B8G8R8X8);
	g_assert_cmphex(SEND(f, SET_SCANOUT, 0, 0, 0, 0, 0, 0), ==, OK_NODATA);
	g_assert_false(virtio_gpu_snapshot(f->gpu, &img, &err));
	g_clear_error(&err);
}

/* A reset turns the display off; the last picture is still there for an exit screenshot. */
static void test_last_picture_after_reset(struct fixture *f, gconstpointer data)
{
	struct gpu_image img;
	GError *err = NULL;

	g_assert_false(virtio_gpu_last_picture(f->gpu, &img, &err));
	g_clear_error(&err);
	draw_small(f, R8G8B8A8);
	virtio_gpu_ops.reset(f->gpu);
	g_assert_false(virtio_gpu_snapshot(f->gpu, &img, &err));
	g_clear_error(&err);
	g_assert_true(virtio_gpu_last_picture(f->gpu, &img, NULL));
	g_assert_cmpuint(img.width, ==, 4);
	g_assert_cmpuint(img.rgb[0], ==, 1);
	g_assert_cmpuint(img.rgb[2], ==, 15);
	g_free(img.rgb);
	virtio_gpu_ops.reset(f->gpu); /* nothing shown now: the picture before stays */
	g_assert_true(virtio_gpu_last_picture(f->gpu, &img, NULL));
	g_free(img.rgb);
}

static void test_fence_echoed(struct fixture *f, gconstpointer data)
{
	uint64_t fence = 0x1122334455667788, got;
	uint32_t flags = 1;
	size_t len = put_request(f, GET_DISPLAY_INFO, NULL, 0);

	memcpy(f->request + 4, &flags, 4);
	memcpy(f->request + 8, &fence, 8);
	g_assert_cmphex(send_bytes(f, len, NULL), ==, OK_DISPLAY_INFO);
	memcpy(&flags, f->response + 4, 4);
	memcpy(&got, f->response + 8, 8);
	g_assert_cmpuint(flags, ==, 1);
	g_assert_cmphex(got, ==, fence);
}

/* No room for a header: nothing written. A short response buffer: what fits. */
static void test_small_response_buffers(struct fixture *f, gconstpointer data)
{
	size_t len = put_request(f, GET_DISPLAY_INFO, NULL, 0);

	memset(&f->chain, 0, sizeof(f->chain));
	f->chain.seg[0] = (struct vq_seg){f->request, (uint32_t)len, false};
	f->chain.seg[1] = (struct vq_seg){f->response, 23, true};
	f->chain.nseg = 2;
	f->chain.out_len = (uint32_t)len;
	f->chain.in_len = 23;
	g_assert_cmpuint(virtio_gpu_control(f->gpu, &f->chain), ==, 0);
	f->chain.seg[1].len = f->chain.in_len = 100;
	g_assert_cmpuint(virtio_gpu_control(f->gpu, &f->chain), ==, 100);
}

static void test_budget(struct fixture *f, gconstpointer data)
{
	struct gpu_stats st;
	uint32_t id = 1;

	/* 4096 x 4096 x 4 = 64 MiB each: four fill the budget of pixels. */
	for (; id <= GPU_MAX_RESOURCE_BYTES / (64u << 20); id++)
		g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, id, B8G8R8X8, 4096, 4096), ==,
		                OK_NODATA);
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, id, B8G8R8X8, 4096, 4096), ==,
	                ERR_OUT_OF_MEMORY);
	for (uint32_t i = 1; i < id; i++)
		g_assert_cmphex(SEND(f, RESOURCE_UNREF, i, 0), ==, OK_NODATA);
	/* Many small ones: the count runs out first. */
	for (id = 1; id <= GPU_MAX_RESOURCES; id++)
		g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, id, B8G8R8X8, 1, 1), ==, OK_NODATA);
	g_assert_cmphex(SEND(f, RESOURCE_CREATE_2D, id, B8G8R8X8, 1, 1), ==, ERR_OUT_OF_MEMORY);
	virtio_gpu_stats(f->gpu, &st);
	g_assert_cmpuint(st.resources, ==, GPU_MAX_RESOURCES);
	g_assert_cmpuint(st.resource_bytes, ==, GPU_MAX_RESOURCES * 4);
	virtio_gpu_ops.reset(f->gpu);
	virtio_gpu_stats(f->gpu, &st);
	g_assert_cmpuint(st.resources, ==, 0);
	g_assert_cmpuint(st.resource_bytes, ==, 0);
}

static void test_cursor(struct fixture *f, gconstpointer data)
{
	const uint32_t update[] = {0, 10, 20, 0, 77, 1, 1, 0};
	struct gpu_stats st;

	put_request(f, UPDATE_CURSOR, update, G_N_ELEMENTS(update));
	memset(&f->chain, 0, sizeof(f->chain));
	f->chain.seg[0] = (struct vq_seg){f->request, 56, false};
	f->chain.nseg = 1;
	f->chain.out_len = 56;
	virtio_gpu_cursor(f->gpu, &f->chain); /* an unknown resource: no cursor image */
	f->chain.seg[0].len = f->chain.out_len = 30;
	virtio_gpu_cursor(f->gpu, &f->chain); /* truncated: ignored */
	virtio_gpu_stats(f->gpu, &st);
	g_assert_cmpuint(st.cursor_updates, ==, 1);
}

/* What the transport reads: one scanout, no capsets, EDID offered, VIRGL not. */
static void test_config_and_features(struct fixture *f, gconstpointer data)
{
	uint32_t config[4];

	g_assert_cmpuint(virtio_gpu_ops.device_id, ==, 16);
	g_assert_cmpuint(virtio_gpu_ops.num_queues, ==, 2);
	g_assert_cmpuint(virtio_gpu_ops.config_size, ==, sizeof(config));
	virtio_gpu_ops.config_read(f->gpu, 0, (uint8_t *)config, sizeof(config));
	g_assert_cmpuint(config[0], ==, 0); /* events_read */
	g_assert_cmpuint(config[2], ==, 1); /* num_scanouts */
	g_assert_cmpuint(config[3], ==, 0); /* num_capsets */
	g_assert_cmphex(virtio_gpu_ops.features(f->gpu), ==, 1u << 1);
}

/* --- a hostile driver ----------------------------------------------------------------------- */

#define HOSTILE_REQUESTS 20000

static uint32_t pick_u32(GRand *r, uint32_t usual_max)
{
	switch (g_rand_int_range(r, 0, 6)) {
	case 0:
		return g_rand_int(r);
	case 1:
		return 0;
	case 2:
		return UINT32_MAX - (uint32_t)g_rand_int_range(r, 0, 4);
	default:
		return (uint32_t)g_rand_int_range(r, 0, (gint32)usual_max + 1);
	}
}

/* A request of a known type (mostly) with fields near the edges, split across random buffers. */
static void hostile_request(struct fixture *f, GRand *r)
{
	static const uint32_t types[] = {
	    GET_DISPLAY_INFO,    RESOURCE_CREATE_2D, RESOURCE_UNREF, SET_SCANOUT, RESOURCE_FLUSH,
	    TRANSFER_TO_HOST_2D, ATTACH_BACKING,     DETACH_BACKING, GET_EDID,    CTX_CREATE};
	uint32_t words[16];
	size_t len = 24 + (size_t)g_rand_int_range(r, 0, 17) * 4;

	for (unsigned int i = 0; i < G_N_ELEMENTS(words); i++)
		words[i] = pick_u32(r, 300);
	put_request(f, types[g_rand_int_range(r, 0, G_N_ELEMENTS(types))], words, 16);
	if (g_rand_int_range(r, 0, 20) == 0)
		memcpy(f->request, &words[0], 4); /* a made-up type */
	/* Backing entries: mostly inside RAM, some anywhere. */
	for (size_t at = 32; at + 16 <= 24 + 16 * 4; at += 16) {
		uint64_t addr = g_rand_boolean(r) ? (uint64_t)g_rand_int_range(r, 0, RAM)
		                                  : (uint64_t)g_rand_int(r) << 20;
		memcpy(f->request + at, &addr, 8);
	}
	if (words[0] % 3 == 0) /* a resource id it has used */
		memcpy(f->request + 24, &(uint32_t){words[1] % 8}, 4);
	memset(&f->chain, 0, sizeof(f->chain));
	size_t done = 0;
	while (done < len) {
		uint32_t n = (uint32_t)MIN(len - done, (size_t)g_rand_int_range(r, 1, 40));
		f->chain.seg[f->chain.nseg++] = (struct vq_seg){f->request + done, n, false};
		done += n;
	}
	f->chain.out_len = (uint32_t)len;
	f->chain.in_len = (uint32_t)g_rand_int_range(r, 0, sizeof(f->response));
	f->chain.seg[f->chain.nseg++] = (struct vq_seg){f->response, f->chain.in_len, true};
}

static void test_hostile_driver(struct fixture *f, gconstpointer data)
{
	GRand *r = g_rand_new_with_seed(0x677075);
	struct gpu_stats st;
	unsigned int ok = 0;

	for (int i = 0; i < HOSTILE_REQUESTS; i++) {
		hostile_request(f, r);
		uint32_t written = virtio_gpu_control(f->gpu, &f->chain);
		uint32_t type;
		g_assert_cmpuint(written, <=, f->chain.in_len);
		if (f->chain.in_len < 24) {
			g_assert_cmpuint(written, ==, 0);
			continue;
		}
		memcpy(&type, f->response, 4);
		g_assert_true((type >= OK_NODATA && type <= OK_EDID) ||
		              (type >= ERR_UNSPEC && type <= ERR_INVALID_PARAMETER));
		ok += type < ERR_UNSPEC;
		if (i % 1000 == 0)
			virtio_gpu_cursor(f->gpu, &f->chain);
		virtio_gpu_stats(f->gpu, &st);
		g_assert_cmpuint(st.resources, <=, GPU_MAX_RESOURCES);
		g_assert_cmpuint(st.resource_bytes, <=, GPU_MAX_RESOURCE_BYTES);
		struct gpu_image img;
		if (i % 97 == 0 && virtio_gpu_snapshot(f->gpu, &img, NULL))
			g_free(img.rgb);
	}
	/* The driver got some commands through, or the test proves little. */
	g_assert_cmpuint(ok, >, HOSTILE_REQUESTS / 20);
	g_rand_free(r);
}

/* A viewer sees the display black at first, then only what the guest flushed, then nothing new. */
static void test_viewer_damage(struct fixture *f, gconstpointer data)
{
	uint8_t *fb = g_malloc0(640 * 480 * 4);
	struct gpu_rect r;

	g_assert_true(virtio_gpu_take_damage(f->gpu, fb, &r));
	g_assert_cmpuint(r.width, ==, 640);
	g_assert_cmpuint(r.height, ==, 480);
	g_assert_false(virtio_gpu_take_damage(f->gpu, fb, &r));
	draw_small(f, R8G8B8A8); /* set-scanout: all of it, the 4x2 resource and black beside */
	memset(fb, 0xaa, 640 * 480 * 4);
	g_assert_true(virtio_gpu_take_damage(f->gpu, fb, &r));
	g_assert_cmpuint(r.x, ==, 0);
	g_assert_cmpuint(r.width, ==, 640);
	/* Pixel 0 is R 1, G 8, B 15: as B, G, R, X bytes. */
	static const uint8_t first[4] = {15, 8, 1, 0}, black[4] = {0};
	g_assert_cmpmem(fb, 4, first, 4);
	g_assert_cmpmem(fb + 4 * 4, 4, black, 4);
	/* A flush of one pixel: that pixel alone, at its place. */
	g_assert_false(virtio_gpu_take_damage(f->gpu, fb, &r));
	g_assert_cmphex(SEND(f, RESOURCE_FLUSH, 2, 1, 1, 1, 5, 0), ==, OK_NODATA);
	g_assert_true(virtio_gpu_take_damage(f->gpu, fb, &r));
	g_assert_cmpuint(r.x, ==, 2);
	g_assert_cmpuint(r.y, ==, 1);
	g_assert_cmpuint(r.width, ==, 1);
	g_assert_cmpuint(r.height, ==, 1);
	/* The display turned off: black everywhere. */
	g_assert_cmphex(SEND(f, SET_SCANOUT, 0, 0, 0, 0, 0, 0), ==, OK_NODATA);
	g_assert_true(virtio_gpu_take_damage(f->gpu, fb, &r));
	g_assert_cmpmem(fb, 4, black, 4);
	g_free(fb);
}

#ifdef HAVE_VIRGLRENDERER
/* --- 3D (--gpu virgl): the renderer thread, headless on llvmpipe ---------------------------- */

enum {
	CTX_DESTROY = 0x0201,
	CTX_ATTACH_RESOURCE,
	CTX_DETACH_RESOURCE,
	RESOURCE_CREATE_3D,
	TRANSFER_TO_HOST_3D,
	TRANSFER_FROM_HOST_3D,
	SUBMIT_3D,
	GET_CAPSET_INFO = 0x0108,
	GET_CAPSET,
	OK_CAPSET_INFO = 0x1102,
	OK_CAPSET,
};

#define TARGET_BUFFER 0
#define TARGET_2D     2
#define FENCE         1u

struct vfixture {
	struct fixture f;
	struct gpu_virgl *v;
};

static void nothing(void *opaque)
{
}

static void setup_virgl(struct vfixture *vf, gconstpointer data)
{
	GError *err = NULL;

	setup(&vf->f, data);
	vf->v = gpu_virgl_new(vf->f.gpu, &vf->f.gm, nothing, NULL, &err);
	if (!vf->v) { /* in_child saw it start: this is a failure */
		g_test_fail_printf("virglrenderer did not start: %s", err->message);
		g_error_free(err);
	}
}

static void teardown_virgl(struct vfixture *vf, gconstpointer data)
{
	gpu_virgl_free(vf->v);
	teardown(&vf->f, data);
}

/* Sends the request as send_bytes does, to the renderer; waits for its answer (5 s at most). */
static uint32_t vsend_hdr(struct vfixture *vf, size_t len, uint32_t flags, uint64_t fence,
                          uint32_t ctx, uint32_t *written)
{
	struct fixture *f = &vf->f;
	struct vq_used done;
	uint32_t type;

	memcpy(f->request + 4, &flags, 4);
	memcpy(f->request + 8, &fence, 8);
	memcpy(f->request + 16, &ctx, 4);
	memset(&f->chain, 0, sizeof(f->chain));
	memset(f->response, 0xee, sizeof(f->response));
	f->chain.head = 7;
	f->chain.seg[0] = (struct vq_seg){f->request, (uint32_t)len, false};
	f->chain.seg[1] = (struct vq_seg){f->response, sizeof(f->response), true};
	f->chain.nseg = 2;
	f->chain.out_len = (uint32_t)len;
	f->chain.in_len = sizeof(f->response);
	gpu_virgl_submit(vf->v, &f->chain);
	for (int i = 0; !gpu_virgl_take_done(vf->v, &done, 1); i++) {
		g_assert_cmpint(i, <, 5000);
		g_usleep(1000);
	}
	g_assert_cmpuint(done.head, ==, 7);
	g_assert_cmpuint(done.len, >=, 24);
	if (written)
		*written = done.len;
	memcpy(&type, f->response, 4);
	return type;
}

#define VSEND_CTX(vf, ctx, type, ...)                                                              \
	({                                                                                         \
		const uint32_t body_[] = {__VA_ARGS__};                                            \
		vsend_hdr(vf, put_request(&(vf)->f, type, body_, G_N_ELEMENTS(body_)), 0, 0, ctx,  \
		          NULL);                                                                   \
	})
#define VSEND(vf, type, ...) VSEND_CTX(vf, 0, type, __VA_ARGS__)

static uint32_t ctx_create(struct vfixture *vf, uint32_t ctx)
{
	uint32_t body[18] = {4, 0};

	memcpy(body + 2, "test", 4);
	return vsend_hdr(vf, put_request(&vf->f, CTX_CREATE, body, 18), 0, 0, ctx, NULL);
}

/* A resource through RESOURCE_CREATE_3D: a buffer of w bytes, or a texture of 4-byte pixels. */
static uint32_t create_3d(struct vfixture *vf, uint32_t id, uint32_t target, uint32_t w, uint32_t h,
                          uint32_t depth, uint32_t layers)
{
	/* A buffer is bytes (R8) bound as vertices; a texture, pixels bound as a render target. */
	uint32_t format = target == TARGET_BUFFER ? 64 : B8G8R8X8;
	uint32_t bind = target == TARGET_BUFFER ? 1u << 4 : 1u << 1;

	return VSEND(vf, RESOURCE_CREATE_3D, id, target, format, bind, w, h, depth, layers, 0, 0, 0,
	             0);
}

static uint32_t vattach(struct vfixture *vf, uint32_t id, uint64_t addr, uint32_t len)
{
	const uint32_t body[] = {id, 1};
	size_t at = put_request(&vf->f, ATTACH_BACKING, body, 2);

	memcpy(vf->f.request + at, &addr, 8);
	memcpy(vf->f.request + at + 8, &len, 4);
	memset(vf->f.request + at + 12, 0, 4);
	return vsend_hdr(vf, at + 16, 0, 0, 0, NULL);
}

/* In a child: does virglrenderer start here at all (EGL, a surfaceless platform)? */
static void test_virgl_starts(void)
{
	struct guest_memory gm;
	GError *err = NULL;

	g_assert_true(guest_memory_alloc(&gm, RAM));
	struct virtio_gpu *gpu = virtio_gpu_new(&gm, 64, 64);
	struct gpu_virgl *v = gpu_virgl_new(gpu, &gm, nothing, NULL, &err);
	g_assert_no_error(err);
	gpu_virgl_free(v);
	virtio_gpu_free(gpu);
	guest_memory_free(&gm);
}

/* Runs the 3D test at 'path' in a child; skipped where virglrenderer does not start. */
static void in_child(gconstpointer path)
{
	static int starts = -1;

	if (starts < 0) {
		g_test_trap_subprocess("/virtio-gpu/virgl/starts/subprocess", 0, 0);
		starts = g_test_trap_has_passed();
	}
	if (!starts) {
		g_test_skip(
		    "virglrenderer does not start here (no EGL with a surfaceless platform)");
		return;
	}
	g_test_trap_subprocess(path, 0,
	                       G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
	g_test_trap_assert_passed();
}

static void test_virgl_capsets(struct vfixture *vf, gconstpointer data)
{
	uint32_t info[4], written;

	if (!vf->v)
		return;
	for (uint32_t i = 0; i < GPU_VIRGL_CAPSETS; i++) {
		g_assert_cmphex(VSEND(vf, GET_CAPSET_INFO, i, 0), ==, OK_CAPSET_INFO);
		memcpy(info, vf->f.response + 24, sizeof(info));
		g_assert_cmpuint(info[0], ==, i + 1); /* VIRGL, then VIRGL2 */
		g_assert_cmpuint(info[1], >=, 1);
		g_assert_cmpuint(info[2], >, 0);
		g_assert_cmpuint(info[2], <=, sizeof(vf->f.response) - 24);
		uint32_t size = info[2];
		g_assert_cmphex(
		    vsend_hdr(vf, put_request(&vf->f, GET_CAPSET, (uint32_t[]){i + 1, info[1]}, 2),
		              0, 0, 0, &written),
		    ==, OK_CAPSET);
		g_assert_cmpuint(written, ==, 24 + size);
	}
	g_assert_cmphex(VSEND(vf, GET_CAPSET_INFO, 2, 0), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND(vf, GET_CAPSET, 7, 0), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND(vf, GET_CAPSET, 2, 1000), ==, ERR_INVALID_PARAMETER);
}

static void test_virgl_contexts(struct vfixture *vf, gconstpointer data)
{
	if (!vf->v)
		return;
	g_assert_cmphex(ctx_create(vf, 0), ==, ERR_INVALID_CONTEXT_ID);
	for (uint32_t ctx = 1; ctx <= GPU_MAX_CONTEXTS; ctx++)
		g_assert_cmphex(ctx_create(vf, ctx), ==, OK_NODATA);
	g_assert_cmphex(ctx_create(vf, 1), ==, ERR_INVALID_CONTEXT_ID);
	g_assert_cmphex(ctx_create(vf, GPU_MAX_CONTEXTS + 1), ==, ERR_OUT_OF_MEMORY);
	g_assert_cmphex(VSEND_CTX(vf, 1, CTX_DESTROY, 0), ==, OK_NODATA);
	g_assert_cmphex(VSEND_CTX(vf, 1, CTX_DESTROY, 0), ==, ERR_INVALID_CONTEXT_ID);
	g_assert_cmphex(ctx_create(vf, GPU_MAX_CONTEXTS + 1), ==, OK_NODATA);
	/* Resources attach to contexts that exist, and only resources that do. */
	g_assert_cmphex(create_3d(vf, 5, TARGET_2D, 16, 16, 1, 1), ==, OK_NODATA);
	g_assert_cmphex(VSEND_CTX(vf, 2, CTX_ATTACH_RESOURCE, 5, 0), ==, OK_NODATA);
	g_assert_cmphex(VSEND_CTX(vf, 1, CTX_ATTACH_RESOURCE, 5, 0), ==, ERR_INVALID_CONTEXT_ID);
	g_assert_cmphex(VSEND_CTX(vf, 2, CTX_ATTACH_RESOURCE, 6, 0), ==, ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(VSEND_CTX(vf, 2, CTX_DETACH_RESOURCE, 5, 0), ==, OK_NODATA);
}

static void test_virgl_resources(struct vfixture *vf, gconstpointer data)
{
	if (!vf->v)
		return;
	g_assert_cmphex(create_3d(vf, 0, TARGET_2D, 16, 16, 1, 1), ==, ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(create_3d(vf, 1, TARGET_2D, 16, 16, 1, 1), ==, OK_NODATA);
	g_assert_cmphex(create_3d(vf, 1, TARGET_2D, 16, 16, 1, 1), ==, ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(create_3d(vf, 2, TARGET_2D, 0, 16, 1, 1), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(create_3d(vf, 2, TARGET_2D, 1u << 20, 16, 1, 1), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(create_3d(vf, 2, 99, 16, 16, 1, 1), ==, ERR_INVALID_PARAMETER);
	/* 16384 x 16384 x 4 bytes is 1 GiB: past the budget, refused before the renderer sees it.
	 */
	g_assert_cmphex(create_3d(vf, 2, TARGET_2D, 16384, 16384, 1, 1), ==, ERR_OUT_OF_MEMORY);
	/* A flood of small ones ends at GPU_MAX_RESOURCES; freeing one makes room. */
	for (uint32_t id = 2; id <= GPU_MAX_RESOURCES; id++)
		g_assert_cmphex(create_3d(vf, id, TARGET_BUFFER, 64, 1, 1, 1), ==, OK_NODATA);
	g_assert_cmphex(create_3d(vf, 9999, TARGET_BUFFER, 64, 1, 1, 1), ==, ERR_OUT_OF_MEMORY);
	g_assert_cmphex(VSEND(vf, RESOURCE_UNREF, 3, 0), ==, OK_NODATA);
	g_assert_cmphex(VSEND(vf, RESOURCE_UNREF, 3, 0), ==, ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(create_3d(vf, 9999, TARGET_BUFFER, 64, 1, 1, 1), ==, OK_NODATA);
	/* A 2D resource through the renderer checks its format as the 2D device does. */
	g_assert_cmphex(VSEND(vf, RESOURCE_CREATE_2D, 10000, 999, 4, 4), ==, ERR_INVALID_PARAMETER);
}

static void test_virgl_hostile_transfers(struct vfixture *vf, gconstpointer data)
{
	if (!vf->v)
		return;
	g_assert_cmphex(create_3d(vf, 1, TARGET_2D, 64, 64, 1, 1), ==, OK_NODATA);
	/* No backing yet: nothing to transfer from. */
	g_assert_cmphex(VSEND(vf, TRANSFER_TO_HOST_3D, 0, 0, 0, 64, 64, 1, 0, 0, 1, 0, 0, 0), ==,
	                ERR_UNSPEC);
	/* Backing outside guest RAM, or empty, is refused. */
	g_assert_cmphex(vattach(vf, 1, RAM - 4096, 8192), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(vattach(vf, 1, 0x10000, 0), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(vattach(vf, 2, 0x10000, 4096), ==, ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(VSEND(vf, ATTACH_BACKING, 1, GPU_MAX_BACKING_ENTRIES + 1), ==,
	                ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND(vf, ATTACH_BACKING, 1, 4), ==, ERR_UNSPEC); /* the list is missing */
	/* 64 x 64 x 4 bytes fit; a box outside the texture or an offset past the backing do not. */
	g_assert_cmphex(vattach(vf, 1, 0x10000, 64 * 64 * 4), ==, OK_NODATA);
	g_assert_cmphex(vattach(vf, 1, 0x10000, 64 * 64 * 4), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND(vf, TRANSFER_TO_HOST_3D, 0, 0, 0, 64, 64, 1, 0, 0, 1, 0, 0, 0), ==,
	                OK_NODATA);
	g_assert_cmphex(VSEND(vf, TRANSFER_TO_HOST_3D, 32, 0, 0, 64, 64, 1, 0, 0, 1, 0, 0, 0), ==,
	                ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND(vf, TRANSFER_TO_HOST_3D, 0, 0, 0, 64, 64, 1, 4096, 0, 1, 0, 0, 0), ==,
	                ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND(vf, TRANSFER_FROM_HOST_3D, 0, 0, 0, 64, 64, 1, 0xffffffff, 0xffffffff,
	                      1, 0, 0, 0),
	                ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND(vf, TRANSFER_TO_HOST_3D, 0, 0, 0, 64, 64, 1, 0, 0, 7, 0, 0, 0), ==,
	                ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(VSEND(vf, DETACH_BACKING, 1, 0), ==, OK_NODATA);
	g_assert_cmphex(VSEND(vf, DETACH_BACKING, 1, 0), ==, ERR_UNSPEC);
}

static void test_virgl_submit(struct vfixture *vf, gconstpointer data)
{
	if (!vf->v)
		return;
	g_assert_cmphex(VSEND_CTX(vf, 1, SUBMIT_3D, 4, 0, 0), ==, ERR_INVALID_CONTEXT_ID);
	g_assert_cmphex(ctx_create(vf, 1), ==, OK_NODATA);
	/* Sizes: none, not whole words, more than the chain holds, more than the cap. */
	g_assert_cmphex(VSEND_CTX(vf, 1, SUBMIT_3D, 0, 0), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND_CTX(vf, 1, SUBMIT_3D, 6, 0, 0, 0), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND_CTX(vf, 1, SUBMIT_3D, 64, 0, 0), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND_CTX(vf, 1, SUBMIT_3D, GPU_MAX_SUBMIT_BYTES + 4, 0, 0), ==,
	                ERR_INVALID_PARAMETER);
	/* A NOP (command 0, no words) is a stream virglrenderer takes. */
	g_assert_cmphex(VSEND_CTX(vf, 1, SUBMIT_3D, 4, 0, 0), ==, OK_NODATA);
	/*
	 * A command claiming more words than the stream has: virglrenderer 0.10
	 * stops parsing and marks the context in error, but may answer OK.
	 */
	uint32_t t = VSEND_CTX(vf, 1, SUBMIT_3D, 8, 0, 0xffff0001u, 0);
	g_assert_true(t == OK_NODATA || t == ERR_INVALID_PARAMETER);
	/* Garbage does not bring the renderer down: it still answers afterwards. */
	uint32_t junk[2 + 256];
	junk[0] = 1024;
	junk[1] = 0;
	for (int i = 0; i < 256; i++)
		junk[2 + i] = (uint32_t)g_test_rand_int();
	vsend_hdr(vf, put_request(&vf->f, SUBMIT_3D, junk, G_N_ELEMENTS(junk)), 0, 0, 1, NULL);
	g_assert_cmphex(VSEND(vf, GET_CAPSET_INFO, 0, 0), ==, OK_CAPSET_INFO);
}

static void test_virgl_fence(struct vfixture *vf, gconstpointer data)
{
	uint32_t flags;
	uint64_t fence;

	if (!vf->v)
		return;
	g_assert_cmphex(ctx_create(vf, 1), ==, OK_NODATA);
	/* A fenced request is answered once the renderer passed the fence, with its id. */
	g_assert_cmphex(vsend_hdr(vf, put_request(&vf->f, SUBMIT_3D, (uint32_t[]){4, 0, 0}, 3),
	                          FENCE, 41, 1, NULL),
	                ==, OK_NODATA);
	memcpy(&flags, vf->f.response + 4, 4);
	memcpy(&fence, vf->f.response + 8, 8);
	g_assert_cmpuint(flags & FENCE, ==, FENCE);
	g_assert_cmpuint(fence, ==, 41);
	/* A refused fenced request is answered at once (nothing to wait for). */
	g_assert_cmphex(vsend_hdr(vf, put_request(&vf->f, SUBMIT_3D, (uint32_t[]){4, 0, 0}, 3),
	                          FENCE, 42, 9, NULL),
	                ==, ERR_INVALID_CONTEXT_ID);
	g_assert_cmphex(vsend_hdr(vf, put_request(&vf->f, RESOURCE_UNREF, (uint32_t[]){77, 0}, 2),
	                          FENCE, 43, 0, NULL),
	                ==, ERR_INVALID_RESOURCE_ID);
	struct gpu_virgl_stats st;
	gpu_virgl_stats(vf->v, &st);
	g_assert_cmpuint(st.fences, ==, 1);
}

/* 2D through the renderer: the known pixels reach the screenshot, and read back into RAM. */
static void test_virgl_scanout(struct vfixture *vf, gconstpointer data)
{
	const uint32_t w = 4, h = 2, pixels[] = {0x00ff0000, 0x00ff0000, 0x0000ff00, 0x0000ff00,
	                                         0x000000ff, 0x000000ff, 0x00ffffff, 0x00000000};
	uint8_t *ram = gm_ptr(&vf->f.gm, 0x10000, sizeof(pixels));
	struct gpu_image img;
	GError *err = NULL;

	if (!vf->v)
		return;
	memcpy(ram, pixels, sizeof(pixels));
	g_assert_cmphex(VSEND(vf, RESOURCE_CREATE_2D, 1, B8G8R8X8, w, h), ==, OK_NODATA);
	g_assert_cmphex(vattach(vf, 1, 0x10000, sizeof(pixels)), ==, OK_NODATA);
	g_assert_cmphex(VSEND(vf, TRANSFER_TO_HOST_2D, 0, 0, w, h, 0, 0, 1, 0), ==, OK_NODATA);
	g_assert_cmphex(VSEND(vf, TRANSFER_TO_HOST_2D, 0, 0, w + 1, h, 0, 0, 1, 0), ==,
	                ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND(vf, SET_SCANOUT, 0, 0, w + 1, h, 0, 1), ==, ERR_INVALID_PARAMETER);
	g_assert_cmphex(VSEND(vf, SET_SCANOUT, 0, 0, w, h, 1, 1), ==, ERR_INVALID_SCANOUT_ID);
	g_assert_cmphex(VSEND(vf, SET_SCANOUT, 0, 0, w, h, 0, 1), ==, OK_NODATA);
	g_assert_cmphex(VSEND(vf, RESOURCE_FLUSH, 0, 0, w, h, 1, 0), ==, OK_NODATA);
	g_assert_true(virtio_gpu_snapshot(vf->f.gpu, &img, &err));
	g_assert_cmpuint(img.width, ==, w);
	g_assert_cmpuint(img.height, ==, h);
	static const uint8_t want[] = {0xff, 0, 0,    0xff, 0, 0,    0,    0xff, 0,    0, 0xff, 0,
	                               0,    0, 0xff, 0,    0, 0xff, 0xff, 0xff, 0xff, 0, 0,    0};
	g_assert_cmpmem(img.rgb, sizeof(want), want, sizeof(want));
	g_free(img.rgb);
	struct gpu_stats st;
	virtio_gpu_stats(vf->f.gpu, &st);
	g_assert_cmpuint(st.shown, ==, 1); /* the flush, timed to its read-back */
	/* Back from the host into the (cleared) backing: the same bytes. */
	memset(ram, 0, sizeof(pixels));
	g_assert_cmphex(VSEND(vf, TRANSFER_FROM_HOST_3D, 0, 0, 0, w, h, 1, 0, 0, 1, 0, 0, 0), ==,
	                OK_NODATA);
	g_assert_cmpmem(ram, sizeof(pixels), pixels, sizeof(pixels));
	/* Its unref turns the display off. */
	g_assert_cmphex(VSEND(vf, RESOURCE_UNREF, 1, 0), ==, OK_NODATA);
	g_assert_false(virtio_gpu_snapshot(vf->f.gpu, &img, &err));
	g_clear_error(&err);
}

static void test_virgl_reset(struct vfixture *vf, gconstpointer data)
{
	if (!vf->v)
		return;
	g_assert_cmphex(ctx_create(vf, 1), ==, OK_NODATA);
	g_assert_cmphex(create_3d(vf, 1, TARGET_2D, 16, 16, 1, 1), ==, OK_NODATA);
	gpu_virgl_reset(vf->v);
	/* Everything went: the same ids are free again, the old resource unknown. */
	g_assert_cmphex(VSEND(vf, SET_SCANOUT, 0, 0, 16, 16, 0, 1), ==, ERR_INVALID_RESOURCE_ID);
	g_assert_cmphex(ctx_create(vf, 1), ==, OK_NODATA);
	g_assert_cmphex(create_3d(vf, 1, TARGET_2D, 16, 16, 1, 1), ==, OK_NODATA);
}
#endif

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, struct fixture, NULL, setup, fn, teardown)
	ADD("/virtio-gpu/display-info", test_display_info);
	ADD("/virtio-gpu/edid", test_edid);
	ADD("/virtio-gpu/draw-and-snapshot", test_draw_and_snapshot);
	ADD("/virtio-gpu/rgba-format", test_rgba_format);
	ADD("/virtio-gpu/partial-transfer", test_partial_transfer);
	ADD("/virtio-gpu/refusals", test_refusals);
	ADD("/virtio-gpu/unref-turns-display-off", test_unref_turns_display_off);
	ADD("/virtio-gpu/last-picture-after-reset", test_last_picture_after_reset);
	ADD("/virtio-gpu/fence-echoed", test_fence_echoed);
	ADD("/virtio-gpu/small-response-buffers", test_small_response_buffers);
	ADD("/virtio-gpu/budget", test_budget);
	ADD("/virtio-gpu/cursor", test_cursor);
	ADD("/virtio-gpu/config-and-features", test_config_and_features);
	ADD("/virtio-gpu/hostile-driver", test_hostile_driver);
	ADD("/virtio-gpu/viewer-damage", test_viewer_damage);
#ifdef HAVE_VIRGLRENDERER
	/*
	 * Each 3D test runs in a child of its own (virglrenderer is one a
	 * process), with LeakSanitizer off there: llvmpipe's shaders, compiled
	 * at run time, keep allocations it can only trace to generated code.
	 */
	const char *asan = g_getenv("ASAN_OPTIONS");
	char *quiet = g_strconcat(asan ? asan : "", asan ? ":" : "", "detect_leaks=0", NULL);
	g_setenv("ASAN_OPTIONS", quiet, TRUE);
	g_free(quiet);
#define ADD3D(name, fn)                                                                            \
	do {                                                                                       \
		g_test_add(name "/subprocess", struct vfixture, NULL, setup_virgl, fn,             \
		           teardown_virgl);                                                        \
		g_test_add_data_func(name, name "/subprocess", in_child);                          \
	} while (0)
	g_test_add_func("/virtio-gpu/virgl/starts/subprocess", test_virgl_starts);
	ADD3D("/virtio-gpu/virgl/capsets", test_virgl_capsets);
	ADD3D("/virtio-gpu/virgl/contexts", test_virgl_contexts);
	ADD3D("/virtio-gpu/virgl/resources", test_virgl_resources);
	ADD3D("/virtio-gpu/virgl/hostile-transfers", test_virgl_hostile_transfers);
	ADD3D("/virtio-gpu/virgl/submit", test_virgl_submit);
	ADD3D("/virtio-gpu/virgl/fence", test_virgl_fence);
	ADD3D("/virtio-gpu/virgl/scanout", test_virgl_scanout);
	ADD3D("/virtio-gpu/virgl/reset", test_virgl_reset);
#endif
	return g_test_run();
}
