// SPDX-License-Identifier: MIT
#include "devices/virtio/vq_pool.h"

#include <glib.h>

#include "vmm/seccomp_threads.h"

struct vq_pool {
	GThreadPool *threads;
	vq_work_fn work;
	void *dev;
	struct virtio_pci *t; /* whom to wake, and which queue */
	unsigned int q;
	unsigned int max_jobs;
	GMutex lock;            /* the three below */
	GCond idle;             /* signalled when in_flight drops to 0 */
	unsigned int in_flight; /* submitted, not yet in 'done' */
	GQueue done;            /* struct vq_job, finished, not yet pushed */
};

static void run_job(gpointer data, gpointer user)
{
	struct vq_job *job = data;
	struct vq_pool *p = user;

	/* glib starts the pool's threads as it needs them: each takes its list at its first job. */
	seccomp_thread_enter_or_exit(SECCOMP_THREAD_POOL);
	p->work(p->dev, job);
	g_mutex_lock(&p->lock);
	/* The first of a batch wakes the queue's thread, which takes the whole batch. Under the
	 * lock, so a drain that returns has seen every wake. */
	if (g_queue_is_empty(&p->done))
		virtio_pci_wake(p->t, p->q);
	g_queue_push_tail(&p->done, job);
	if (--p->in_flight == 0)
		g_cond_broadcast(&p->idle);
	g_mutex_unlock(&p->lock);
}

struct vq_pool *vq_pool_new(unsigned int threads, unsigned int max_jobs, vq_work_fn work, void *dev)
{
	struct vq_pool *p = g_new0(struct vq_pool, 1);

	p->max_jobs = max_jobs;
	p->work = work;
	p->dev = dev;
	g_mutex_init(&p->lock);
	g_cond_init(&p->idle);
	g_queue_init(&p->done);
	/* Shared threads, started as needed; such a pool cannot fail to be made. */
	p->threads = g_thread_pool_new(run_job, p, (gint)threads, FALSE, NULL);
	return p;
}

void vq_pool_free(struct vq_pool *p)
{
	if (!p)
		return;
	g_thread_pool_free(p->threads, FALSE, TRUE);
	g_queue_clear_full(&p->done, g_free);
	g_cond_clear(&p->idle);
	g_mutex_clear(&p->lock);
	g_free(p);
}

struct vq_job *vq_job_new(void)
{
	/* Not zeroed: vq_pop fills what it uses of the 16 KiB of segments. */
	return g_new(struct vq_job, 1);
}

void vq_job_free(struct vq_job *job)
{
	g_free(job);
}

bool vq_pool_full(struct vq_pool *p)
{
	g_mutex_lock(&p->lock);
	bool full = p->in_flight + g_queue_get_length(&p->done) >= p->max_jobs;
	g_mutex_unlock(&p->lock);
	return full;
}

void vq_pool_submit(struct vq_pool *p, struct virtio_pci *t, unsigned int q, struct vq_job *job)
{
	g_mutex_lock(&p->lock);
	p->t = t;
	p->q = q;
	p->in_flight++;
	g_mutex_unlock(&p->lock);
	g_thread_pool_push(p->threads, job, NULL);
}

void vq_pool_push_done(struct vq_pool *p, struct virtqueue *vq)
{
	GQueue done;
	struct vq_job *job;

	g_mutex_lock(&p->lock);
	done = p->done;
	g_queue_init(&p->done);
	g_mutex_unlock(&p->lock);
	while ((job = g_queue_pop_head(&done))) {
		vq_push(vq, job->chain.head, job->written);
		vq_job_free(job);
	}
}

void vq_pool_drain(struct vq_pool *p)
{
	g_mutex_lock(&p->lock);
	while (p->in_flight)
		g_cond_wait(&p->idle, &p->lock);
	g_queue_clear_full(&p->done, g_free);
	g_mutex_unlock(&p->lock);
}
