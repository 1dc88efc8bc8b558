/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci transport, modern only (virtio 1.2, 4.1): common, notify,
 * ISR and device configuration structures in BAR 0, MSI-X for interrupts,
 * an ioeventfd per queue so a guest kick reaches the I/O thread without
 * stopping in userspace. A device model sits behind virtio_device_ops.
 */
#ifndef HUSK_VIRTIO_PCI_H
#define HUSK_VIRTIO_PCI_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/pci.h"
#include "devices/virtio/virtqueue.h"
#include "vmm/guest_memory.h"
#include "vmm/msi.h"

#define VIRTIO_MAX_QUEUES 8

/* Feature bits every device may offer (virtio 1.2, 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

struct virtio_pci;

struct virtio_device_ops {
	const char *name;
	uint16_t device_id;  /* virtio device type: 2 block, 4 entropy */
	uint32_t class_code; /* PCI class for lspci */
	unsigned int num_queues;
	unsigned int (*queue_count)(void *dev); /* optional: overrides num_queues */
	uint16_t queue_size;                    /* the largest a driver may use */
	uint64_t (*features)(void *dev);        /* device-specific bits offered; may be NULL */
	uint32_t config_size;                   /* bytes of device configuration */
	void (*config_read)(void *dev, uint32_t offset, uint8_t *data, uint32_t len);
	/* Optional: the driver writes the device configuration (on a vCPU thread, as reads). */
	void (*config_write)(void *dev, uint32_t offset, const uint8_t *data, uint32_t len);
	/* The driver kicked queue 'q': take requests, push results, then virtio_pci_used(). */
	void (*queue_notify)(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q);
	/* Optional; also called once before the transport goes away, to quiesce workers. */
	void (*reset)(void *dev);
	/*
	 * Optional, when the driver sets DRIVER_OK: the device may hand its
	 * queues to the host kernel (vhost), reading them with
	 * virtio_pci_queue_info(). True if it did: until the next reset the
	 * transport leaves their kicks to the kernel and runs no queue_notify,
	 * and call_fd_changed says where their interrupts must go when the
	 * driver masks or unmasks a vector.
	 */
	bool (*start)(void *dev, struct virtio_pci *t);
	void (*call_fd_changed)(void *dev, unsigned int q, int fd);
	/*
	 * Queue work blocks (file I/O): run it on a thread per queue, which
	 * polls a busy queue (virtio_env.poll_us) before it sleeps.
	 */
	bool blocking;
	/*
	 * Optional, for blocking devices: narrows what a queue's thread can
	 * reach on the host (a share's directory), once, when the process's
	 * system-call lists are on (vmm/seccomp_threads.h).
	 */
	void (*confine_worker)(void *dev);
	/*
	 * Queues (a bit each) whose thread never polls: nobody waits for their
	 * answers (virtio-fs's FORGETs), so a spinning thread would only take
	 * a CPU from the guest.
	 */
	uint32_t unpolled_queues;
};

/* What the transport needs from the machine. */
struct virtio_env {
	int vm_fd;
	GMainContext *ctx; /* the I/O thread's loop: queue work runs there */
	struct msi_router *msi;
	const struct guest_memory *mem;
	unsigned int poll_us; /* the longest a queue's thread watches its ring (0: never) */
};

struct virtio_pci *virtio_pci_create(const struct virtio_env *env,
                                     const struct virtio_device_ops *ops, void *dev, GError **err);
void virtio_pci_destroy(struct virtio_pci *t);
struct pci_device *virtio_pci_device(struct virtio_pci *t);

/* Features the driver accepted (valid once the device is running). */
uint64_t virtio_pci_features(const struct virtio_pci *t);

/* A queue as the driver set it up, for a device that hands it to the kernel. */
struct virtio_queue_info {
	uint16_t size;
	uint16_t next_avail;          /* the first available entry not yet taken */
	void *desc, *driver, *device; /* the ring's parts, in host memory */
	int kick_fd;                  /* signalled on each kick */
	int call_fd;                  /* write to interrupt the driver now; -1: no vector */
};

/* Only from the device's start op. False if queue 'q' is not enabled. */
bool virtio_pci_queue_info(struct virtio_pci *t, unsigned int q, struct virtio_queue_info *out);
const struct guest_memory *virtio_pci_memory(const struct virtio_pci *t);
/*
 * Runs the device's queue_notify for queue 'index' as a kick would, for work
 * that arrives from elsewhere (a network backend with frames for the guest).
 * Call it from the I/O thread. False if the queue is not running.
 */
bool virtio_pci_notify_device(struct virtio_pci *t, unsigned int index);

/*
 * From any thread: has the I/O thread run queue_notify for queue 'index'
 * soon, as a kick does (a device's worker with finished requests).
 */
void virtio_pci_wake(struct virtio_pci *t, unsigned int index);

/*
 * Once the process-wide system-call filter is on: each queue thread of a
 * device whose work blocks wakes, takes its allow list, and finds no work
 * (a kick the driver did not make is allowed: it looks at the ring), so
 * that none waits for the guest's first request under the deny list alone.
 */
void virtio_pci_confine_workers(struct virtio_pci *t);

/*
 * The device's configuration changed (a link went down): a new
 * config_generation, and a configuration interrupt once the driver runs
 * (4.1.4.3, 4.1.5.5). Not from inside the device's own ops.
 */
void virtio_pci_config_changed(struct virtio_pci *t);

/*
 * The driver broke a queue the kernel serves (vhost found a bad descriptor):
 * the device needs a reset, and the driver hears so (2.1.2). From any thread.
 */
void virtio_pci_broken(struct virtio_pci *t);

#define VIRTIO_POLL_GAP_BUCKETS 16

/* How a queue's thread (ops->blocking) found its work, for --timings. */
struct virtio_poll_stats {
	const char *device; /* ops->name */
	uint64_t woken;     /* wake-ups from a kick, or from virtio_pci_wake */
	uint64_t caught;    /* polls that saw new work: kicks the driver did not need */
	uint64_t late;      /* work found as kicks came back on, the window closed */
	uint64_t preempted; /* windows among those cut short as the thread lost its CPU */
	/* Waits for the next request: [2^b, 2^(b+1)) us in bucket b; the last has the rest. */
	uint64_t gaps[VIRTIO_POLL_GAP_BUCKETS];
	bool polled; /* false: no thread, or one that never polls (unpolled_queues, --poll=0) */
};

/* False if the device has no queue 'index'. */
bool virtio_pci_poll_stats(struct virtio_pci *t, unsigned int index, struct virtio_poll_stats *out);

/* After pushing used buffers on 'vq': interrupts the driver if it wants one. */
void virtio_pci_used(struct virtio_pci *t, struct virtqueue *vq, unsigned int q);

#endif
