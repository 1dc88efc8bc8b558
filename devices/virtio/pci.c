// SPDX-License-Identifier: MIT
#include "devices/virtio/pci.h"

#include <errno.h>
#include <glib-unix.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/seccomp_threads.h"

/* BAR 0 layout: one structure per 4 KiB page. */
#define BAR_COMMON        0x0000
#define BAR_ISR           0x1000
#define BAR_DEVICE        0x2000
#define BAR_NOTIFY        0x3000
#define BAR_MSIX_TABLE    0x4000
#define BAR_MSIX_PBA      0x5000
#define BAR_SIZE          0x8000
#define COMMON_SIZE       0x38
#define NOTIFY_MULT       4 /* queue q is kicked at BAR_NOTIFY + 4 * q */
#define MSIX_ENTRY_SIZE   16
#define POLL_MIN_US       16  /* the shortest polling window */
#define POLL_PREEMPTED_US 250 /* a longer gap between two looks: the thread was preempted */
#define POLL_CLOCK_EVERY  16  /* looks at the ring per look at the clock */

/* virtio 1.2, 4.1.4: capability types */
#define CAP_COMMON  1
#define CAP_NOTIFY  2
#define CAP_ISR     3
#define CAP_DEVICE  4
#define CAP_PCI_CFG 5

/* 2.1 device status bits */
#define STATUS_DRIVER_OK   4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40

#define NO_VECTOR        0xffff
#define ISR_QUEUE        1
#define ISR_CONFIG       2
#define MSIX_ENABLE      0x80 /* in the high byte of Message Control */
#define MSIX_MASKALL     0x40
#define MSIX_VECTOR_MASK 1

#define PCI_VENDOR_VIRTIO 0x1af4
#define PCI_DEVICE_MODERN 0x1040 /* + virtio device id (4.1.2.1) */

struct queue {
	struct virtio_pci *t;
	unsigned int index;
	uint16_t size;
	uint16_t vector;
	bool enabled;
	uint64_t desc, driver, device;
	struct virtqueue vq;
	int kick_fd;
	GSource *kick_source;
	pthread_t worker;
	bool has_worker;
	unsigned int poll_cap_us; /* env.poll_us, or 0 for unpolled_queues */
	unsigned int window_us;   /* how long the worker polls now (record_gap) */
	unsigned int gap_us;      /* the driver's average wait before its next request */
	int64_t idle_since;       /* when the worker last started to wait, for adapt_window */
	atomic_uint wakes;        /* virtio_pci_wake calls: each ends a poll */
	struct {
		atomic_uint_fast64_t woken, caught, late, preempted;
		atomic_uint_fast64_t gaps[VIRTIO_POLL_GAP_BUCKETS];
	} stats;            /* struct virtio_poll_stats; the worker alone writes them */
	uint64_t kick_addr; /* where the ioeventfd is assigned, 0 if not */
	bool handed;        /* the device gave the queue to the kernel (ops->start) */
	int call_fd;        /* where the kernel interrupts the driver, when handed */
};

struct msix_vector {
	uint64_t addr;
	uint32_t data;
	uint32_t control;
	bool pending;
	int fd; /* the irqfd */
	uint32_t gsi;
	/* For queues handed to the kernel: where their calls go while masked. */
	int masked_fd;
};

struct virtio_pci {
	struct pci_device pci;
	struct virtio_env env;
	const struct virtio_device_ops *ops;
	void *dev;
	unsigned int nqueues;
	pthread_mutex_t lock; /* everything below; queue work runs under it too */
	uint32_t device_feature_select;
	uint32_t driver_feature_select;
	uint64_t driver_features;
	uint16_t config_vector;
	uint8_t config_generation; /* moves when device configuration changes */
	uint8_t status;
	uint8_t isr;
	uint16_t queue_select;
	struct queue queues[VIRTIO_MAX_QUEUES];
	unsigned int nvectors;
	struct msix_vector vectors[VIRTIO_MAX_QUEUES + 1];
	uint8_t msix_cap;
	uint8_t cfg_cap;        /* VIRTIO_PCI_CAP_PCI_CFG: BAR access through config space */
	GSource *masked_source; /* the I/O thread's watch on the vectors' masked_fds */
	atomic_bool stopping;   /* queue workers end at their next wake */
};

static uint64_t offered_features(const struct virtio_pci *t)
{
	uint64_t device = t->ops->features ? t->ops->features(t->dev) : 0;

	return device | 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
	       1ULL << VIRTIO_F_EVENT_IDX;
}

static uint64_t le_get(const uint8_t *p, uint32_t len)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void le_put(uint8_t *p, uint64_t v, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* --- interrupts --------------------------------------------------------- */

static bool msix_usable(const struct virtio_pci *t)
{
	uint8_t control = t->pci.config[t->msix_cap + 3];

	return (control & MSIX_ENABLE) && !(control & MSIX_MASKALL);
}

static void fire(struct virtio_pci *t, uint16_t vector)
{
	if (vector >= t->nvectors)
		return; /* NO_VECTOR: the driver polls */
	struct msix_vector *v = &t->vectors[vector];
	if (!msix_usable(t) || (v->control & MSIX_VECTOR_MASK)) {
		v->pending = true; /* delivered when unmasked (PCI 3.0, 6.8.2.9) */
		return;
	}
	v->pending = false;
	eventfd_write(v->fd, 1);
}

static void fire_pending(struct virtio_pci *t)
{
	for (unsigned int i = 0; i < t->nvectors; i++)
		if (t->vectors[i].pending)
			fire(t, (uint16_t)i);
}

/*
 * A queue handed to the kernel interrupts the driver itself, through the
 * vector's irqfd, which KVM delivers whatever the vector's mask says. So
 * while a vector is masked, its queues' calls go to masked_fd instead, and
 * a call there makes the vector pending, as a masked MSI-X vector must be
 * (PCI 3.0, 6.8.2.9), delivered when it is unmasked.
 */
static int call_target(const struct virtio_pci *t, const struct queue *q)
{
	if (q->vector >= t->nvectors)
		return -1;
	const struct msix_vector *v = &t->vectors[q->vector];
	return msix_usable(t) && !(v->control & MSIX_VECTOR_MASK) ? v->fd : v->masked_fd;
}

static void collect_masked_calls(struct virtio_pci *t)
{
	eventfd_t count;

	for (unsigned int i = 0; i < t->nvectors; i++)
		if (t->vectors[i].masked_fd >= 0 &&
		    eventfd_read(t->vectors[i].masked_fd, &count) == 0)
			fire(t, (uint16_t)i);
}

/* After a mask changed: point each handed queue's calls where they must go now. */
static void route_calls(struct virtio_pci *t)
{
	for (unsigned int i = 0; i < t->nqueues; i++) {
		struct queue *q = &t->queues[i];
		int fd = call_target(t, q);

		if (!q->handed || fd == q->call_fd)
			continue;
		q->call_fd = fd;
		t->ops->call_fd_changed(t->dev, i, fd);
	}
	/* Calls made before the switch: pending, or delivered if unmasked now. */
	collect_masked_calls(t);
}

static gboolean on_masked_call(GSource *source, GSourceFunc callback, gpointer data)
{
	struct virtio_pci *t = data;

	pthread_mutex_lock(&t->lock);
	collect_masked_calls(t);
	pthread_mutex_unlock(&t->lock);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs masked_funcs = {.dispatch = on_masked_call};

/* The device is broken (a malformed queue): tell the driver (2.1.2). */
static void needs_reset(struct virtio_pci *t)
{
	t->status |= STATUS_NEEDS_RESET;
	t->isr |= ISR_CONFIG;
	fire(t, t->config_vector);
}

void virtio_pci_broken(struct virtio_pci *t)
{
	pthread_mutex_lock(&t->lock);
	if (t->status & STATUS_DRIVER_OK)
		needs_reset(t);
	pthread_mutex_unlock(&t->lock);
}

void virtio_pci_config_changed(struct virtio_pci *t)
{
	pthread_mutex_lock(&t->lock);
	t->config_generation++;
	if (t->status & STATUS_DRIVER_OK) {
		t->isr |= ISR_CONFIG;
		fire(t, t->config_vector);
	}
	pthread_mutex_unlock(&t->lock);
}

void virtio_pci_used(struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	if (vq->broken) {
		needs_reset(t);
		return;
	}
	if (vq_should_notify(vq)) {
		t->isr |= ISR_QUEUE;
		fire(t, t->queues[q].vector);
	}
}

/* --- queue kicks ---------------------------------------------------------- */

static void set_ioeventfd(struct virtio_pci *t, struct queue *q, uint64_t addr)
{
	struct kvm_ioeventfd ev = {.len = 2, .fd = q->kick_fd};

	if (q->kick_addr) {
		ev.addr = q->kick_addr;
		ev.flags = KVM_IOEVENTFD_FLAG_DEASSIGN;
		ioctl(t->env.vm_fd, KVM_IOEVENTFD, &ev);
		q->kick_addr = 0;
	}
	if (addr) {
		ev.addr = addr;
		ev.flags = 0;
		/* Without it, kicks still arrive as MMIO exits (notify_write). */
		if (ioctl(t->env.vm_fd, KVM_IOEVENTFD, &ev) == 0)
			q->kick_addr = addr;
	}
}

static uint64_t notify_addr(const struct virtio_pci *t, unsigned int q)
{
	return pci_device_bar_addr(&t->pci, 0) + BAR_NOTIFY + NOTIFY_MULT * q;
}

static bool queue_running(const struct virtio_pci *t, const struct queue *q)
{
	return (t->status & STATUS_DRIVER_OK) && !(t->status & STATUS_NEEDS_RESET) && q->enabled &&
	       !q->handed;
}

bool virtio_pci_notify_device(struct virtio_pci *t, unsigned int index)
{
	struct queue *q = &t->queues[index];
	bool running;

	pthread_mutex_lock(&t->lock);
	running = queue_running(t, q);
	if (running) {
		t->ops->queue_notify(t->dev, t, &q->vq, q->index);
		if (q->vq.broken)
			needs_reset(t);
	}
	pthread_mutex_unlock(&t->lock);
	return running;
}

void virtio_pci_wake(struct virtio_pci *t, unsigned int index)
{
	atomic_fetch_add(&t->queues[index].wakes, 1);
	eventfd_write(t->queues[index].kick_fd, 1);
}

void virtio_pci_confine_workers(struct virtio_pci *t)
{
	for (unsigned int i = 0; i < t->nqueues; i++)
		if (t->queues[i].has_worker)
			eventfd_write(t->queues[i].kick_fd, 1);
}

/* A kick: let the device take what the driver made available. */
static void service_queue(struct queue *q)
{
	struct virtio_pci *t = q->t;
	eventfd_t count;

	eventfd_read(q->kick_fd, &count);
	virtio_pci_notify_device(t, q->index);
}

static gboolean on_kick(gint fd, GIOCondition condition, gpointer data)
{
	service_queue(data);
	return G_SOURCE_CONTINUE;
}

/* The I/O thread serves the queue's kicks, or (on: false) leaves them to the kernel. */
static void watch_kicks(struct virtio_pci *t, struct queue *q, bool on)
{
	if (on && !q->kick_source) {
		q->kick_source = g_unix_fd_source_new(q->kick_fd, G_IO_IN);
		g_source_set_callback(q->kick_source, G_SOURCE_FUNC(on_kick), q, NULL);
		g_source_attach(q->kick_source, t->env.ctx);
	} else if (!on && q->kick_source) {
		g_source_destroy(q->kick_source);
		g_source_unref(q->kick_source);
		q->kick_source = NULL;
	}
}

/* --- queue workers and polling ------------------------------------------ */

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* Relaxed: the worker alone writes its counts; a report may read them late. */
static void tally(atomic_uint_fast64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/*
 * How long the driver took to send its next request, in buckets of powers
 * of two microseconds: what a window of each length would have caught.
 */
static void note_gap(struct queue *q, int64_t gap_us)
{
	unsigned int b = gap_us < 2 ? 0 : 63 - (unsigned int)__builtin_clzll((uint64_t)gap_us);

	tally(&q->stats.gaps[MIN(b, VIRTIO_POLL_GAP_BUCKETS - 1)]);
}

/*
 * The window follows the driver: twice the average time its next request
 * took to come, whether polling caught it or a kick brought it, so a fast
 * guest gets a short window and a slow one a longer one, up to poll_cap_us.
 */
static void record_gap(struct queue *q, int64_t gap_us)
{
	q->gap_us = q->gap_us ? (7 * q->gap_us + (unsigned int)gap_us) / 8 : (unsigned int)gap_us;
	q->window_us = MIN(q->poll_cap_us, MAX(2 * q->gap_us, POLL_MIN_US));
}

/*
 * Polling, as KVM's halt polling and QEMU's iothreads do it: after its
 * work a worker watches the ring for up to window_us with kicks still off.
 * A driver that sends its next request within that time sends it without
 * a kick, which is a VM exit, and the worker takes it without a wake-up, a
 * system call and a thread switch. True: there is more work. False: kicks
 * are on again; sleep until one comes.
 */
static bool poll_queue(struct queue *q)
{
	struct virtio_pci *t = q->t;
	unsigned int wakes = atomic_load(&q->wakes);
	int64_t start = g_get_monotonic_time(), last = start;
	struct vq_watch ring;
	bool watching = false, more;

	/*
	 * The spin takes no lock: a poller preempted while holding the
	 * transport's lock would stall the other queues' work.
	 */
	if (q->window_us) {
		pthread_mutex_lock(&t->lock);
		watching = queue_running(t, q) && vq_watch(&q->vq, &ring);
		pthread_mutex_unlock(&t->lock);
	}
	/*
	 * The clock is read every POLL_CLOCK_EVERY looks only: where the
	 * host's clocksource has no vDSO read (HPET, as in a VM whose TSC is
	 * unstable), each read is a system call and a device access, dearer
	 * than a look at the ring, and polling would spend the host's CPU
	 * on the clock.
	 */
	for (unsigned int look = 1; watching && !atomic_load(&t->stopping); look++) {
		if (atomic_load(&q->wakes) != wakes || vq_watch_moved(&ring)) {
			int64_t gap = g_get_monotonic_time() - start;
			note_gap(q, gap);
			record_gap(q, gap);
			tally(&q->stats.caught);
			return true;
		}
		if (look % POLL_CLOCK_EVERY == 0) {
			int64_t now = g_get_monotonic_time();
			/*
			 * The host gave our CPU to another thread meanwhile (a
			 * vCPU, perhaps): it needs the CPU more. Stop, and wait
			 * longer before polling as long again.
			 */
			if (now - last > POLL_PREEMPTED_US) {
				q->gap_us /= 2;
				q->window_us = 0;
				tally(&q->stats.preempted);
				break;
			}
			if (now - start >= q->window_us)
				break;
			last = now;
		}
		cpu_relax();
	}
	q->idle_since = start;
	pthread_mutex_lock(&t->lock);
	more = queue_running(t, q) && vq_enable_kick(&q->vq);
	pthread_mutex_unlock(&t->lock);
	if (more)
		tally(&q->stats.late);
	return more;
}

/*
 * After a sleep: a request that came within poll_cap_us was one a longer
 * window would have caught, and counts toward the window. A longer sleep
 * means the queue went quiet: the window halves, so an idle guest costs
 * no CPU.
 */
static void adapt_window(struct queue *q)
{
	if (!q->idle_since || !q->poll_cap_us)
		return;
	int64_t idle = g_get_monotonic_time() - q->idle_since;
	note_gap(q, idle);
	if (idle <= q->poll_cap_us)
		record_gap(q, idle);
	else
		q->window_us /= 2;
	q->idle_since = 0;
}

/*
 * Once the process confines its threads (vmm/seccomp_threads.h), a queue
 * thread gives up at its start what it has no use for: capabilities, and
 * (ops->confine_worker) the host files outside its device's reach.
 */
static bool start_confined(struct virtio_pci *t)
{
	GError *err = NULL;

	if (!seccomp_armed())
		return true;
	if (!seccomp_thread_drop_caps(SECCOMP_THREAD_SHARE, &err)) {
		g_printerr("husk: %s: %s\n", t->ops->name, err->message);
		g_error_free(err);
		return false;
	}
	if (t->ops->confine_worker)
		t->ops->confine_worker(t->dev);
	return true;
}

/*
 * For devices whose queue work blocks (file I/O): a thread per queue, off
 * the I/O loop. It sleeps in a read of its (blocking) kick eventfd: one
 * system call per wake, not a poll and then a read.
 */
static void *queue_worker(void *data)
{
	struct queue *q = data;
	char name[16];
	eventfd_t count;

	snprintf(name, sizeof(name), "husk-%s", q->t->ops->name); /* cut to 15 bytes */
	pthread_setname_np(pthread_self(), name);
	if (!start_confined(q->t))
		return NULL;
	for (;;) {
		if (eventfd_read(q->kick_fd, &count) < 0 && errno != EINTR)
			break;
		if (atomic_load(&q->t->stopping))
			break;
		/*
		 * The system-call list at the first kick, not at the start: the
		 * thread starts while the machine is set up, before the
		 * process-wide filter goes on all threads at once, which a
		 * filter of its own would refuse. That first kick comes once
		 * the filter is on (virtio_pci_confine_workers), if not earlier.
		 */
		seccomp_thread_enter_or_exit(SECCOMP_THREAD_SHARE);
		tally(&q->stats.woken);
		adapt_window(q);
		do
			virtio_pci_notify_device(q->t, q->index);
		while (poll_queue(q));
	}
	return NULL;
}

bool virtio_pci_poll_stats(struct virtio_pci *t, unsigned int index, struct virtio_poll_stats *out)
{
	if (index >= t->nqueues)
		return false;
	struct queue *q = &t->queues[index];
	*out = (struct virtio_poll_stats){
	    .device = t->ops->name,
	    .woken = atomic_load(&q->stats.woken),
	    .caught = atomic_load(&q->stats.caught),
	    .late = atomic_load(&q->stats.late),
	    .preempted = atomic_load(&q->stats.preempted),
	    .polled = q->has_worker && q->poll_cap_us,
	};
	for (unsigned int b = 0; b < VIRTIO_POLL_GAP_BUCKETS; b++)
		out->gaps[b] = atomic_load(&q->stats.gaps[b]);
	return true;
}

/* --- common configuration (4.1.4.3) --------------------------------------- */

static struct queue *selected(struct virtio_pci *t)
{
	return t->queue_select < t->nqueues ? &t->queues[t->queue_select] : NULL;
}

static void reset(struct virtio_pci *t)
{
	for (unsigned int i = 0; i < t->nqueues; i++) {
		struct queue *q = &t->queues[i];

		set_ioeventfd(t, q, 0);
		q->enabled = false;
		q->size = t->ops->queue_size;
		q->vector = NO_VECTOR;
		q->desc = q->driver = q->device = 0;
		memset(&q->vq, 0, sizeof(q->vq));
	}
	t->driver_features = 0;
	t->device_feature_select = t->driver_feature_select = 0;
	t->config_vector = NO_VECTOR;
	t->status = 0;
	t->isr = 0;
	t->queue_select = 0;
	if (t->ops->reset)
		t->ops->reset(t->dev);
	/* The kernel has let go of handed queues (ops->reset): ours again. */
	for (unsigned int i = 0; i < t->nqueues; i++) {
		struct queue *q = &t->queues[i];

		if (q->handed)
			watch_kicks(t, q, true);
		q->handed = false;
		q->call_fd = -1;
	}
}

static void common_read(struct virtio_pci *t, uint32_t off, uint8_t *data, uint32_t len)
{
	uint8_t regs[COMMON_SIZE] = {0};
	struct queue *q = selected(t);
	uint64_t features = offered_features(t);

	le_put(regs + 0x00, t->device_feature_select, 4);
	if (t->device_feature_select < 2)
		le_put(regs + 0x04, features >> (32 * t->device_feature_select), 4);
	le_put(regs + 0x08, t->driver_feature_select, 4);
	if (t->driver_feature_select < 2)
		le_put(regs + 0x0c, t->driver_features >> (32 * t->driver_feature_select), 4);
	le_put(regs + 0x10, t->config_vector, 2);
	le_put(regs + 0x12, t->nqueues, 2);
	regs[0x14] = t->status;
	regs[0x15] = t->config_generation;
	le_put(regs + 0x16, t->queue_select, 2);
	if (q) {
		le_put(regs + 0x18, q->size, 2);
		le_put(regs + 0x1a, q->vector, 2);
		le_put(regs + 0x1c, q->enabled, 2);
		le_put(regs + 0x1e, q->index, 2); /* queue_notify_off */
		le_put(regs + 0x20, q->desc, 8);
		le_put(regs + 0x28, q->driver, 8);
		le_put(regs + 0x30, q->device, 8);
	}
	if (off + len <= COMMON_SIZE)
		memcpy(data, regs + off, len);
	else
		memset(data, 0, len);
}

static uint16_t valid_vector(const struct virtio_pci *t, uint64_t v)
{
	return v < t->nvectors ? (uint16_t)v : NO_VECTOR;
}

/* The device's start op took the enabled queues: the kernel serves their kicks now. */
static void hand_over(struct virtio_pci *t)
{
	for (unsigned int i = 0; i < t->nqueues; i++) {
		struct queue *q = &t->queues[i];

		if (!q->enabled)
			continue;
		q->handed = true;
		q->call_fd = call_target(t, q);
		watch_kicks(t, q, false);
		/* A kick the I/O thread took before: the kernel looks at the ring once. */
		eventfd_write(q->kick_fd, 1);
	}
}

bool virtio_pci_queue_info(struct virtio_pci *t, unsigned int index, struct virtio_queue_info *out)
{
	const struct guest_memory *mem = t->env.mem;

	if (index >= t->nqueues || !t->queues[index].enabled)
		return false;
	struct queue *q = &t->queues[index];
	/* vq_init checked these ranges when the queue was enabled (2.7). */
	*out = (struct virtio_queue_info){
	    .size = q->size,
	    .next_avail = q->vq.last_avail_idx,
	    .desc = gm_ptr(mem, q->desc, 16ULL * q->size),
	    .driver = gm_ptr(mem, q->driver, 6ULL + 2ULL * q->size),
	    .device = gm_ptr(mem, q->device, 6ULL + 8ULL * q->size),
	    .kick_fd = q->kick_fd,
	    .call_fd = call_target(t, q),
	};
	return out->desc && out->driver && out->device;
}

const struct guest_memory *virtio_pci_memory(const struct virtio_pci *t)
{
	return t->env.mem;
}

static void set_status(struct virtio_pci *t, uint8_t status)
{
	if (status == 0) {
		reset(t);
		return;
	}
	if ((status & STATUS_FEATURES_OK) && !(t->status & STATUS_FEATURES_OK)) {
		/* Refuse features we never offered, and legacy drivers (2.2, 6.1). */
		uint64_t f = t->driver_features;
		if ((f & ~offered_features(t)) || !(f & 1ULL << VIRTIO_F_VERSION_1))
			status &= (uint8_t)~STATUS_FEATURES_OK;
	}
	bool starting = (status & STATUS_DRIVER_OK) && !(t->status & STATUS_DRIVER_OK);
	if (starting) {
		for (unsigned int i = 0; i < t->nqueues; i++)
			if (t->queues[i].enabled)
				set_ioeventfd(t, &t->queues[i], notify_addr(t, i));
	}
	t->status = status | (t->status & STATUS_NEEDS_RESET);
	if (starting && !(t->status & STATUS_NEEDS_RESET) && t->ops->start &&
	    t->ops->start(t->dev, t))
		hand_over(t);
}

static void enable_queue(struct virtio_pci *t, struct queue *q)
{
	/* A driver may shrink a queue, never grow it (4.1.4.3.2). */
	if (q->size > t->ops->queue_size ||
	    !vq_init(&q->vq, t->env.mem, q->size, q->desc, q->driver, q->device)) {
		needs_reset(t);
		return;
	}
	q->vq.event_idx = t->driver_features & 1ULL << VIRTIO_F_EVENT_IDX;
	q->vq.device_polls = q->has_worker; /* poll_queue asks for kicks */
	q->enabled = true;
	if (t->status & STATUS_DRIVER_OK)
		set_ioeventfd(t, q, notify_addr(t, q->index));
}

/*
 * A 64-bit field written whole or as two 32-bit halves, as Linux does. A
 * write that runs past the field's end (8 bytes at its upper half) is
 * ignored: the driver may not cross fields (4.1.3.1).
 */
static void write_part(uint64_t *field, uint32_t off_in_field, uint64_t v, uint32_t len)
{
	uint8_t bytes[8];

	if (off_in_field + len > sizeof(bytes))
		return;
	le_put(bytes, *field, 8);
	le_put(bytes + off_in_field, v, len);
	*field = le_get(bytes, 8);
}

static void common_write(struct virtio_pci *t, uint32_t off, uint64_t v, uint32_t len)
{
	struct queue *q = selected(t);

	switch (off) {
	case 0x00:
		t->device_feature_select = (uint32_t)v;
		return;
	case 0x08:
		t->driver_feature_select = (uint32_t)v;
		return;
	case 0x0c:
		if (t->driver_feature_select < 2 && !(t->status & STATUS_FEATURES_OK))
			write_part(&t->driver_features, 4 * t->driver_feature_select, v, 4);
		return;
	case 0x10:
		t->config_vector = valid_vector(t, v);
		return;
	case 0x14:
		set_status(t, (uint8_t)v);
		return;
	case 0x16:
		t->queue_select = (uint16_t)v;
		return;
	}
	if (!q || q->enabled)
		return; /* queue fields are fixed once enabled (4.1.4.3.2) */
	switch (off) {
	case 0x18:
		q->size = (uint16_t)v;
		break;
	case 0x1a:
		q->vector = valid_vector(t, v);
		break;
	case 0x1c:
		if (v == 1)
			enable_queue(t, q);
		break;
	case 0x20:
	case 0x24:
		write_part(&q->desc, off - 0x20, v, len);
		break;
	case 0x28:
	case 0x2c:
		write_part(&q->driver, off - 0x28, v, len);
		break;
	case 0x30:
	case 0x34:
		write_part(&q->device, off - 0x30, v, len);
		break;
	}
}

/* --- MSI-X table ------------------------------------------------------------ */

static void msix_access(struct virtio_pci *t, uint32_t off, uint8_t *data, uint32_t len,
                        bool is_write)
{
	unsigned int i = off / MSIX_ENTRY_SIZE;
	uint32_t field = off % MSIX_ENTRY_SIZE;

	if (i >= t->nvectors || len > 4 || field % len) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	struct msix_vector *v = &t->vectors[i];
	uint8_t entry[MSIX_ENTRY_SIZE];
	le_put(entry, v->addr, 8);
	le_put(entry + 8, v->data, 4);
	le_put(entry + 12, v->control, 4);
	if (!is_write) {
		memcpy(data, entry + field, len);
		return;
	}
	memcpy(entry + field, data, len);
	bool was_masked = v->control & MSIX_VECTOR_MASK;
	v->addr = le_get(entry, 8);
	v->data = (uint32_t)le_get(entry + 8, 4);
	v->control = (uint32_t)le_get(entry + 12, 4) & MSIX_VECTOR_MASK;
	if (field < 12)
		msi_vector_route(t->env.msi, v->gsi, v->addr, v->data,
		                 PCI_REQUESTER_ID(t->pci.slot));
	if (was_masked != (bool)(v->control & MSIX_VECTOR_MASK))
		route_calls(t);
	if (was_masked && !(v->control & MSIX_VECTOR_MASK) && v->pending)
		fire(t, (uint16_t)i);
}

/* --- BAR 0 and config space hooks ------------------------------------------- */

static void bar_access(struct pci_device *pci, int bar, uint64_t off, uint8_t *data, uint32_t len,
                       bool is_write)
{
	struct virtio_pci *t = pci->opaque;

	if (len > 8)
		return;
	if (off >= BAR_NOTIFY && off < BAR_NOTIFY + NOTIFY_MULT * t->nqueues) {
		/* A kick the ioeventfd did not catch: hand it to the I/O thread the same way. */
		if (is_write)
			virtio_pci_wake(t, (unsigned int)((off - BAR_NOTIFY) / NOTIFY_MULT));
		return;
	}
	pthread_mutex_lock(&t->lock);
	if (off < COMMON_SIZE) {
		if (is_write)
			common_write(t, (uint32_t)off, le_get(data, len), len);
		else
			common_read(t, (uint32_t)off, data, len);
	} else if (off == BAR_ISR && !is_write) {
		memset(data, 0, len);
		data[0] = t->isr;
		t->isr = 0; /* reading the ISR acknowledges it (4.1.4.5) */
	} else if (off >= BAR_DEVICE && off + len <= BAR_DEVICE + t->ops->config_size) {
		if (!is_write)
			t->ops->config_read(t->dev, (uint32_t)(off - BAR_DEVICE), data, len);
		else if (t->ops->config_write)
			t->ops->config_write(t->dev, (uint32_t)(off - BAR_DEVICE), data, len);
	} else if (off >= BAR_MSIX_TABLE && off < BAR_MSIX_PBA) {
		msix_access(t, (uint32_t)(off - BAR_MSIX_TABLE), data, len, is_write);
	} else if (off >= BAR_MSIX_PBA && off < BAR_MSIX_PBA + 8 && !is_write) {
		uint64_t pba = 0;
		collect_masked_calls(t);
		for (unsigned int i = 0; i < t->nvectors; i++)
			pba |= (uint64_t)t->vectors[i].pending << i;
		le_put(data, pba >> (8 * (off - BAR_MSIX_PBA)), len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&t->lock);
}

/*
 * The PCI configuration access capability (4.1.4.9): the driver names a
 * BAR window in the capability, then reads or writes pci_cfg_data.
 */
static bool cfg_window(struct virtio_pci *t, uint32_t offset, uint32_t len, uint32_t *bar_off,
                       uint32_t *win_len)
{
	const uint8_t *cap = t->pci.config + t->cfg_cap;
	uint32_t data = t->cfg_cap + 16u;

	if (offset >= data + 4 || offset + len <= data)
		return false;
	*bar_off = pci_get32(cap + 8);
	*win_len = pci_get32(cap + 12);
	return cap[4] == 0 && (*win_len == 1 || *win_len == 2 || *win_len == 4) &&
	       *bar_off % *win_len == 0 && *bar_off < BAR_SIZE;
}

static void config_read(struct pci_device *pci, uint32_t offset, uint32_t len)
{
	struct virtio_pci *t = pci->opaque;
	uint32_t bar_off, win_len;

	if (cfg_window(t, offset, len, &bar_off, &win_len))
		bar_access(pci, 0, bar_off, pci->config + t->cfg_cap + 16, win_len, false);
}

static void config_written(struct pci_device *pci, uint32_t offset, uint32_t len)
{
	struct virtio_pci *t = pci->opaque;
	uint32_t bar_off, win_len;

	if (cfg_window(t, offset, len, &bar_off, &win_len))
		bar_access(pci, 0, bar_off, pci->config + t->cfg_cap + 16, win_len, true);
	if (offset <= t->msix_cap + 3u && offset + len > t->msix_cap + 3u) {
		pthread_mutex_lock(&t->lock);
		route_calls(t);
		if (msix_usable(t))
			fire_pending(t);
		pthread_mutex_unlock(&t->lock);
	}
}

static void bar_moved(struct pci_device *pci, int bar, uint64_t old_addr, uint64_t new_addr)
{
	struct virtio_pci *t = pci->opaque;

	pthread_mutex_lock(&t->lock);
	for (unsigned int i = 0; i < t->nqueues; i++)
		if (t->queues[i].kick_addr)
			set_ioeventfd(t, &t->queues[i], notify_addr(t, i));
	pthread_mutex_unlock(&t->lock);
}

static const struct pci_device_ops virtio_pci_ops = {
    .bar_access = bar_access,
    .config_read = config_read,
    .config_written = config_written,
    .bar_moved = bar_moved,
};

/* --- creation --------------------------------------------------------------- */

static uint8_t add_virtio_cap(struct virtio_pci *t, uint8_t type, uint32_t offset, uint32_t length)
{
	uint8_t len = type == CAP_NOTIFY || type == CAP_PCI_CFG ? 20 : 16;
	uint8_t at = pci_device_add_cap(&t->pci, PCI_CAP_ID_VENDOR, len);
	uint8_t *cap = t->pci.config + at;

	cap[2] = len;
	cap[3] = type;
	cap[4] = 0; /* BAR 0 */
	pci_put32(cap + 8, offset);
	pci_put32(cap + 12, length);
	if (type == CAP_NOTIFY)
		pci_put32(cap + 16, NOTIFY_MULT);
	return at;
}

static void add_msix_cap(struct virtio_pci *t)
{
	uint8_t at = pci_device_add_cap(&t->pci, PCI_CAP_ID_MSIX, 12);

	t->msix_cap = at;
	pci_put16(t->pci.config + at + 2, (uint16_t)(t->nvectors - 1));
	pci_put32(t->pci.config + at + 4, BAR_MSIX_TABLE); /* BIR 0 */
	pci_put32(t->pci.config + at + 8, BAR_MSIX_PBA);
	t->pci.wmask[at + 3] = MSIX_ENABLE | MSIX_MASKALL;
}

/* Only for devices that may hand queues to the kernel (ops->start). */
static bool watch_masked_calls(struct virtio_pci *t, GError **err)
{
	t->masked_source = g_source_new(&masked_funcs, sizeof(GSource));
	g_source_set_callback(t->masked_source, NULL, t, NULL);
	for (unsigned int i = 0; i < t->nvectors; i++) {
		struct msix_vector *v = &t->vectors[i];

		v->masked_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->masked_fd < 0)
			return husk_fail(err, HUSK_EXIT_RUNTIME, "eventfd: %s", g_strerror(errno));
		g_source_add_unix_fd(t->masked_source, v->masked_fd, G_IO_IN);
	}
	g_source_attach(t->masked_source, t->env.ctx);
	return true;
}

static bool setup_queues(struct virtio_pci *t, GError **err)
{
	for (unsigned int i = 0; i < t->nqueues; i++) {
		struct queue *q = &t->queues[i];

		q->t = t;
		q->index = i;
		q->kick_fd = eventfd(0, EFD_CLOEXEC | (t->ops->blocking ? 0 : EFD_NONBLOCK));
		if (q->kick_fd < 0)
			return husk_fail(err, HUSK_EXIT_RUNTIME, "eventfd: %s", g_strerror(errno));
		if (t->ops->blocking) {
			int rc = pthread_create(&q->worker, NULL, queue_worker, q);
			if (rc)
				return husk_fail(err, HUSK_EXIT_RUNTIME,
				                 "%s: cannot start a thread: %s", t->ops->name,
				                 g_strerror(rc));
			q->has_worker = true;
			q->poll_cap_us = t->ops->unpolled_queues & 1u << i ? 0 : t->env.poll_us;
			continue;
		}
		watch_kicks(t, q, true);
	}
	for (unsigned int i = 0; i < t->nvectors; i++) {
		t->vectors[i].control = MSIX_VECTOR_MASK;
		t->vectors[i].fd = msi_vector_create(t->env.msi, &t->vectors[i].gsi, err);
		if (t->vectors[i].fd < 0)
			return false;
	}
	return !t->ops->start || watch_masked_calls(t, err);
}

struct virtio_pci *virtio_pci_create(const struct virtio_env *env,
                                     const struct virtio_device_ops *ops, void *dev, GError **err)
{
	struct virtio_pci *t = g_new0(struct virtio_pci, 1);
	unsigned int nqueues = ops->queue_count ? ops->queue_count(dev) : ops->num_queues;

	g_assert(nqueues >= 1 && nqueues <= VIRTIO_MAX_QUEUES);
	t->env = *env;
	t->ops = ops;
	t->dev = dev;
	t->nqueues = nqueues;
	t->nvectors = nqueues + 1;
	pthread_mutex_init(&t->lock, NULL);
	for (unsigned int i = 0; i < G_N_ELEMENTS(t->vectors); i++)
		t->vectors[i].fd = t->vectors[i].masked_fd = -1;
	for (unsigned int i = 0; i < G_N_ELEMENTS(t->queues); i++)
		t->queues[i].kick_fd = t->queues[i].call_fd = -1;

	pci_device_init(&t->pci, PCI_VENDOR_VIRTIO, PCI_DEVICE_MODERN + ops->device_id,
	                ops->class_code, 1, &virtio_pci_ops, t);
	pci_put16(t->pci.config + PCI_SUBSYSTEM_VENDOR, PCI_VENDOR_VIRTIO);
	pci_put16(t->pci.config + PCI_SUBSYSTEM_ID, 0x40);
	pci_device_add_bar(&t->pci, 0, BAR_SIZE, true); /* above 4 GiB, as QEMU places it */
	add_virtio_cap(t, CAP_COMMON, BAR_COMMON, COMMON_SIZE);
	add_virtio_cap(t, CAP_ISR, BAR_ISR, 1);
	/* Only devices with a configuration have the structure (4.1.4.6). */
	if (ops->config_size)
		add_virtio_cap(t, CAP_DEVICE, BAR_DEVICE, ops->config_size);
	add_virtio_cap(t, CAP_NOTIFY, BAR_NOTIFY, NOTIFY_MULT * nqueues);
	/* The driver picks the window: bar, offset, length and the data are writable. */
	t->cfg_cap = add_virtio_cap(t, CAP_PCI_CFG, 0, 0);
	t->pci.wmask[t->cfg_cap + 4] = 0xff;
	memset(t->pci.wmask + t->cfg_cap + 8, 0xff, 12);
	add_msix_cap(t);
	if (!setup_queues(t, err)) {
		virtio_pci_destroy(t);
		return NULL;
	}
	reset(t);
	return t;
}

void virtio_pci_destroy(struct virtio_pci *t)
{
	if (!t)
		return;
	atomic_store(&t->stopping, true);
	for (unsigned int i = 0; i < G_N_ELEMENTS(t->queues); i++) {
		struct queue *q = &t->queues[i];

		if (q->has_worker) {
			eventfd_write(q->kick_fd, 1);
			pthread_join(q->worker, NULL);
		}
	}
	/* The device's own threads may still hold kick_fds: let them finish first. */
	if (t->ops->reset) {
		pthread_mutex_lock(&t->lock);
		t->ops->reset(t->dev);
		pthread_mutex_unlock(&t->lock);
	}
	for (unsigned int i = 0; i < G_N_ELEMENTS(t->queues); i++) {
		struct queue *q = &t->queues[i];

		if (q->kick_addr)
			set_ioeventfd(t, q, 0);
		watch_kicks(t, q, false);
		if (q->kick_fd >= 0)
			close(q->kick_fd);
	}
	if (t->masked_source) {
		g_source_destroy(t->masked_source);
		g_source_unref(t->masked_source);
	}
	for (unsigned int i = 0; i < G_N_ELEMENTS(t->vectors); i++) {
		if (t->vectors[i].fd >= 0)
			close(t->vectors[i].fd);
		if (t->vectors[i].masked_fd >= 0)
			close(t->vectors[i].masked_fd);
	}
	pthread_mutex_destroy(&t->lock);
	g_free(t);
}

struct pci_device *virtio_pci_device(struct virtio_pci *t)
{
	return &t->pci;
}

uint64_t virtio_pci_features(const struct virtio_pci *t)
{
	return t->driver_features;
}
