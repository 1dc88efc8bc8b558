// SPDX-License-Identifier: MIT
#include "devices/virtio/rng.h"

#include <sys/random.h>

#define VIRTIO_ID_RNG  4
#define RNG_QUEUE_SIZE 64
#define CLASS_OTHER    0xff0000

/*
 * Every chain is device-writable buffers to fill. The guest can ask for
 * as much as it likes; getrandom() without flags never blocks once the
 * host's pool is initialised, which it is by the time anyone runs a VM.
 */
static uint32_t fill(struct vq_chain *chain)
{
	uint32_t written = 0;

	for (unsigned int i = 0; i < chain->nseg; i++) {
		struct vq_seg *s = &chain->seg[i];
		if (!s->device_writable)
			continue;
		ssize_t n = getrandom(s->addr, s->len, 0);
		if (n <= 0)
			break;
		written += (uint32_t)n;
		if ((uint32_t)n < s->len)
			break;
	}
	return written;
}

static void rng_notify(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	struct vq_chain chain;
	unsigned int budget;

	for (budget = VQ_BURST; budget && vq_pop(vq, &chain) > 0; budget--)
		vq_push(vq, chain.head, fill(&chain));
	if (!budget)
		virtio_pci_wake(t, q);
	virtio_pci_used(t, vq, q);
}

static void rng_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	/* No configuration space (5.4.4). */
}

const struct virtio_device_ops virtio_rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .class_code = CLASS_OTHER,
    .num_queues = 1,
    .queue_size = RNG_QUEUE_SIZE,
    .config_size = 0,
    .config_read = rng_config_read,
    .queue_notify = rng_notify,
};
