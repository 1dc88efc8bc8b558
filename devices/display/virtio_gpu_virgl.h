/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu's 3D backend (--gpu virgl, virtio 1.2 5.7 with F_VIRGL):
 * the control queue's requests go to virglrenderer, which runs on a thread
 * of its own (GL contexts are per thread, and a stall in the renderer must
 * never hold a vCPU or the I/O thread). Requests are handed over as they
 * come and answered from that thread; an answer to a fenced request waits
 * until virglrenderer has passed that fence. What the scanout shows is
 * read back after each flush and handed to the device (virtio_gpu_shadow),
 * so that screenshots and VNC see it as they see a 2D resource.
 *
 * Bounds, beyond what virglrenderer checks itself: GPU_MAX_RESOURCES
 * resources and GPU_MAX_RESOURCE_BYTES of their (estimated) pixels,
 * GPU_MAX_CONTEXTS contexts, backing pages in guest RAM only and at most
 * GPU_MAX_BACKING_ENTRIES of them, command streams of at most
 * GPU_MAX_SUBMIT_BYTES.
 */
#ifndef HUSK_VIRTIO_GPU_VIRGL_H
#define HUSK_VIRTIO_GPU_VIRGL_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtqueue.h"
#include "vmm/guest_memory.h"

#define GPU_MAX_CONTEXTS     64
#define GPU_MAX_SUBMIT_BYTES (16u << 20)
#define GPU_VIRGL_CAPSETS    2 /* VIRGL and VIRGL2 */

struct virtio_gpu;
struct gpu_virgl;

/*
 * Starts the renderer thread and virglrenderer on it (headless: EGL on a
 * surfaceless platform, so Mesa's llvmpipe does where no GPU is). 'wake'
 * is called, from that thread, when answers are ready to be taken. NULL
 * with 'err' set when virglrenderer cannot start.
 */
struct gpu_virgl *gpu_virgl_new(struct virtio_gpu *gpu, const struct guest_memory *mem,
                                void (*wake)(void *opaque), void *opaque, GError **err);
/* Stops the thread, after the request it is on. */
void gpu_virgl_free(struct gpu_virgl *v);

/* A control-queue request (copied), to be answered from the renderer thread. */
void gpu_virgl_submit(struct gpu_virgl *v, const struct vq_chain *chain);

/* The requests answered since the last call, at most 'max' of them. */
unsigned int gpu_virgl_take_done(struct gpu_virgl *v, struct vq_used *out, unsigned int max);

/*
 * The device was reset: requests not yet answered are dropped unanswered
 * and every context and resource goes. Does not wait for the renderer.
 */
void gpu_virgl_reset(struct gpu_virgl *v);

/* Counts for --timings. */
struct gpu_virgl_stats {
	uint64_t submits, submit_bytes, fences, readbacks, transfers, resource_bytes;
	uint32_t contexts, resources;
};
void gpu_virgl_stats(struct gpu_virgl *v, struct gpu_virgl_stats *out);

#endif
