/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu in 2D (virtio 1.2, 5.7): one scanout, host-side resources
 * the guest draws into through TRANSFER_TO_HOST_2D from its backing pages,
 * the cursor queue, display information and EDID. Its queues run on the
 * I/O thread, never a vCPU's; what the scanout shows can be read from any
 * thread (virtio_gpu_snapshot) for screenshots.
 *
 * The guest's commands are checked one by one and refused with the
 * spec's error responses; what they may make the host hold is bounded:
 * at most GPU_MAX_RESOURCES resources of at most GPU_MAX_DIMENSION
 * pixels a side, GPU_MAX_RESOURCE_BYTES of pixels in all, and
 * GPU_MAX_BACKING_ENTRIES backing pages per resource.
 */
#ifndef HUSK_VIRTIO_GPU_H
#define HUSK_VIRTIO_GPU_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/pci.h"
#include "devices/virtio/virtqueue.h"
#include "vmm/guest_memory.h"

#define GPU_MAX_RESOURCES       512
#define GPU_MAX_DIMENSION       8192
#define GPU_MAX_RESOURCE_BYTES  (256u << 20) /* of pixels, every resource together */
#define GPU_MAX_BACKING_ENTRIES 16384        /* as QEMU: a 64 MiB resource in 4 KiB pages */
#define GPU_DEFAULT_WIDTH       1024
#define GPU_DEFAULT_HEIGHT      768

extern const struct virtio_device_ops virtio_gpu_ops;

/* A device whose scanout 0 reports width x height, the guest's RAM being 'mem'. */
struct virtio_gpu *virtio_gpu_new(const struct guest_memory *mem, uint32_t width, uint32_t height);
/*
 * The same with 3D (--gpu virgl): F_VIRGL, its capsets, contexts and
 * command streams, served by virglrenderer on a thread of its own
 * (virtio_gpu_virgl.h). NULL with 'err' set when husk was built without
 * virglrenderer or it cannot start here.
 */
struct virtio_gpu *virtio_gpu_new_virgl(const struct guest_memory *mem, uint32_t width,
                                        uint32_t height, GError **err);
void virtio_gpu_free(struct virtio_gpu *gpu);

/*
 * Carries out one control-queue request and writes its response; returns
 * the bytes written into the chain (0 when it has no room for a header).
 */
uint32_t virtio_gpu_control(struct virtio_gpu *gpu, const struct vq_chain *chain);

/* One cursor-queue request: the cursor's image and place are noted, nothing answered. */
void virtio_gpu_cursor(struct virtio_gpu *gpu, const struct vq_chain *chain);

/* Picture of what a scanout shows: RGB, 3 bytes a pixel, rows packed. */
struct gpu_image {
	uint32_t width, height;
	uint8_t *rgb; /* g_free() */
};

/*
 * From any thread: the pixels scanout 0 shows now. False with 'err' set
 * when the guest shows nothing (no driver yet, or the scanout disabled).
 */
bool virtio_gpu_snapshot(struct virtio_gpu *gpu, struct gpu_image *out, GError **err);

/*
 * As virtio_gpu_snapshot, but when the scanout shows nothing now because
 * the driver reset the device (newer kernels do as they power off), what
 * it showed before that reset.
 */
bool virtio_gpu_last_picture(struct virtio_gpu *gpu, struct gpu_image *out, GError **err);

/* A rectangle of the display, in pixels. */
struct gpu_rect {
	uint32_t x, y, width, height;
};

/* The display's size, as GET_DISPLAY_INFO reports it. */
void virtio_gpu_display_size(struct virtio_gpu *gpu, uint32_t *width, uint32_t *height);

/*
 * From any thread, for a viewer: the part of the display that changed
 * since the last call (what the guest flushed, or all of it when the
 * scanout changed), copied into 'fb' (the display's size, 4 bytes a
 * pixel: blue, green, red, unused), and where it is. False if nothing
 * changed. What no resource covers is black.
 */
bool virtio_gpu_take_damage(struct virtio_gpu *gpu, uint8_t *fb, struct gpu_rect *out);

/* Counts for tests and --timings. */
struct gpu_stats {
	uint64_t commands, errors, transfers, flushes, cursor_updates;
	uint32_t resources;
	uint64_t resource_bytes;
	/*
	 * Flushes of what the scanout shows, and the time from taking each off
	 * the ring to its pixels being where screenshots and VNC read them
	 * (2D: already there, the transfer put them; virgl: read back).
	 */
	uint64_t shown, shown_us_total, shown_us_max;
	/* --gpu virgl */
	uint32_t contexts;
	uint64_t submits, submit_bytes, fences;
};
void virtio_gpu_stats(struct virtio_gpu *gpu, struct gpu_stats *out);

#endif
