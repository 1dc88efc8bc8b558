/* SPDX-License-Identifier: MIT */
/*
 * Requests of one virtqueue carried out on a pool of threads, for work
 * that may wait on a disk. The queue's own thread pops a chain and submits
 * it; a pool thread runs the device's work on it; finished requests wait
 * until the queue's thread runs again (virtio_pci_wake) and are pushed
 * there, several under one interrupt. Requests finish in any order.
 */
#ifndef HUSK_VQ_POOL_H
#define HUSK_VQ_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/pci.h"
#include "devices/virtio/virtqueue.h"

struct vq_job {
	uint32_t written; /* bytes the work put in the chain */
	struct vq_chain chain;
};

/* On a pool thread: carry out job->chain, set job->written. */
typedef void (*vq_work_fn)(void *dev, struct vq_job *job);

/* At most 'max_jobs' submitted and not yet pushed (vq_pool_full). */
struct vq_pool *vq_pool_new(unsigned int threads, unsigned int max_jobs, vq_work_fn work,
                            void *dev);
/* Call vq_pool_drain first: nothing may be in flight. */
void vq_pool_free(struct vq_pool *p);

/* A job to pop a chain into; give it back with vq_job_free unless submitted. */
struct vq_job *vq_job_new(void);
void vq_job_free(struct vq_job *job);

/*
 * True when no job may be submitted: the queue's thread stops popping, and
 * the wake of the next job done brings it back.
 */
bool vq_pool_full(struct vq_pool *p);

/* Hands the job over; queue 'q' of 't' is woken when it is done. */
void vq_pool_submit(struct vq_pool *p, struct virtio_pci *t, unsigned int q, struct vq_job *job);

/* On the queue's thread: pushes the finished jobs to 'vq'. */
void vq_pool_push_done(struct vq_pool *p, struct virtqueue *vq);

/*
 * For a device reset: waits until every submitted job is done (their
 * buffers are the guest's until then) and drops them unpushed.
 */
void vq_pool_drain(struct vq_pool *p);

#endif
