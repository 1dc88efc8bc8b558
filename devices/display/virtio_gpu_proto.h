/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu's wire format (virtio 1.2, 5.7.6), shared by the 2D device
 * (virtio_gpu.c) and its virglrenderer backend (virtio_gpu_virgl.c), and
 * the few calls between them. Internal to devices/display.
 */
#ifndef HUSK_VIRTIO_GPU_PROTO_H
#define HUSK_VIRTIO_GPU_PROTO_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/display/virtio_gpu.h"
#include "devices/virtio/virtqueue.h"

#define RESPONSE_EDID_MAX 1024

/* Command and response types (5.7.6.7). */
enum {
	CMD_GET_DISPLAY_INFO = 0x0100,
	CMD_RESOURCE_CREATE_2D,
	CMD_RESOURCE_UNREF,
	CMD_SET_SCANOUT,
	CMD_RESOURCE_FLUSH,
	CMD_TRANSFER_TO_HOST_2D,
	CMD_RESOURCE_ATTACH_BACKING,
	CMD_RESOURCE_DETACH_BACKING,
	CMD_GET_CAPSET_INFO,
	CMD_GET_CAPSET,
	CMD_GET_EDID,
	CMD_UPDATE_CURSOR = 0x0300,
	CMD_MOVE_CURSOR,
	/* 3D (F_VIRGL) */
	CMD_CTX_CREATE = 0x0200,
	CMD_CTX_DESTROY,
	CMD_CTX_ATTACH_RESOURCE,
	CMD_CTX_DETACH_RESOURCE,
	CMD_RESOURCE_CREATE_3D,
	CMD_TRANSFER_TO_HOST_3D,
	CMD_TRANSFER_FROM_HOST_3D,
	CMD_SUBMIT_3D,
	RESP_OK_NODATA = 0x1100,
	RESP_OK_DISPLAY_INFO,
	RESP_OK_CAPSET_INFO,
	RESP_OK_CAPSET,
	RESP_OK_EDID,
	RESP_ERR_UNSPEC = 0x1200,
	RESP_ERR_OUT_OF_MEMORY,
	RESP_ERR_INVALID_SCANOUT_ID,
	RESP_ERR_INVALID_RESOURCE_ID,
	RESP_ERR_INVALID_CONTEXT_ID,
	RESP_ERR_INVALID_PARAMETER,
};

#define FLAG_FENCE 1u

/* Pixel formats (5.7.6.8): all four bytes a pixel; where red, green and blue sit. */
enum {
	FMT_B8G8R8A8 = 1,
	FMT_B8G8R8X8 = 2,
	FMT_A8R8G8B8 = 3,
	FMT_X8R8G8B8 = 4,
	FMT_R8G8B8A8 = 67,
	FMT_X8B8G8R8 = 68,
	FMT_A8B8G8R8 = 121,
	FMT_R8G8B8X8 = 134,
};

/* Wire layouts, little-endian like x86 (5.7.6.7, 5.7.6.8). */
struct ctrl_hdr {
	uint32_t type, flags;
	uint64_t fence_id;
	uint32_t ctx_id;
	uint8_t ring_idx, padding[3];
};

struct rect {
	uint32_t x, y, width, height;
};

struct cmd_resource_create_2d {
	uint32_t resource_id, format, width, height;
};

struct cmd_resource_id {
	uint32_t resource_id, padding;
};

struct cmd_set_scanout {
	struct rect r;
	uint32_t scanout_id, resource_id;
};

struct cmd_resource_flush {
	struct rect r;
	uint32_t resource_id, padding;
};

struct cmd_transfer_to_host_2d {
	struct rect r;
	uint64_t offset;
	uint32_t resource_id, padding;
};

struct cmd_attach_backing {
	uint32_t resource_id, nr_entries;
};

struct mem_entry {
	uint64_t addr;
	uint32_t length, padding;
};

struct cmd_get_edid {
	uint32_t scanout, padding;
};

struct cursor_pos {
	uint32_t scanout_id, x, y, padding;
};

struct cmd_update_cursor {
	struct cursor_pos pos;
	uint32_t resource_id, hot_x, hot_y, padding;
};

struct display_one {
	struct rect r;
	uint32_t enabled, flags;
};

struct resp_display_info {
	struct ctrl_hdr hdr;
	struct display_one pmodes[16];
};

struct resp_edid {
	struct ctrl_hdr hdr;
	uint32_t size, padding;
	uint8_t edid[RESPONSE_EDID_MAX];
};

G_STATIC_ASSERT(sizeof(struct ctrl_hdr) == 24);
G_STATIC_ASSERT(sizeof(struct cmd_transfer_to_host_2d) == 32);
G_STATIC_ASSERT(sizeof(struct mem_entry) == 16);
G_STATIC_ASSERT(sizeof(struct cmd_update_cursor) == 32);
G_STATIC_ASSERT(sizeof(struct resp_display_info) == 408);
G_STATIC_ASSERT(sizeof(struct resp_edid) == 1056);

/* Copies 'len' readable bytes starting 'skip' bytes into the chain; false if it is shorter. */
bool gpu_chain_read(const struct vq_chain *c, uint64_t skip, void *dst, size_t len);

/* Writes the response into the writable buffers; returns the bytes that fit. */
uint32_t gpu_chain_write(const struct vq_chain *c, const void *src, size_t len);

/* Is 'format' one of the 4-byte formats a scanout may show (5.7.6.8)? */
bool gpu_format_known(uint32_t format);

/*
 * From the 3D backend, whose resources husk cannot read directly: what
 * scanout 0 shows now, 'width' x 'height' pixels in 'format', rows packed
 * (copied; NULL: the scanout is off), and the part of it that changed
 * (NULL: all).
 */
void virtio_gpu_shadow(struct virtio_gpu *gpu, uint32_t format, uint32_t width, uint32_t height,
                       const uint8_t *pixels, const struct rect *damage);

/* A flush of the scanout is on screen: 'since_us' is when its request was taken (monotonic). */
void virtio_gpu_note_shown(struct virtio_gpu *gpu, int64_t since_us);

/* From the 3D backend: one more command done, refused or not. */
void virtio_gpu_count(struct virtio_gpu *gpu, bool refused);

#endif
