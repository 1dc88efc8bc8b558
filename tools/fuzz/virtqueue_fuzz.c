// SPDX-License-Identifier: MIT
/*
 * The virtqueue walk, and what virtio-blk and virtio-net make of the
 * chains it hands over, in guest memory the input fills. The first byte
 * picks the queue's size, EVENT_IDX, and which device takes the chains;
 * the rest is guest RAM from address 0: descriptor table at 0, driver
 * ring at RING_AVAIL, device ring at RING_USED, buffers anywhere.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/virtqueue.h"
#include "vmm/layout.h"

#define RAM        (64 * 1024)
#define RING_AVAIL 0x1000
#define RING_USED  0x2000
#define SECTORS    64
#define F_CSUM     (1ULL << 0)

static struct guest_memory gm;
static struct virtio_blk *blk;
static struct vq_chain chain;
static struct vq_used used[VQ_MAX_SIZE];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *path;
	int fd = g_file_open_tmp("husk-vq-fuzz-XXXXXX", &path, NULL);

	if (fd < 0 || ftruncate(fd, SECTORS * 512) || !guest_memory_alloc(&gm, RAM))
		abort();
	close(fd);
	/* A snapshot: the guest's writes land in memory, the image stays as it is. */
	blk = virtio_blk_open(&(struct disk_config){.path = path, .snapshot = true}, 1, NULL);
	if (!blk)
		abort();
	g_unlink(path);
	g_free(path);
	return 0;
}

/* Every chain the ring offers, to the block device or the network's transmit check. */
static void serve(struct virtqueue *vq, bool net)
{
	for (unsigned int n = 0; n < 2u * vq->size && vq_pop(vq, &chain) > 0; n++) {
		uint32_t written = 0;
		size_t frame_len;
		if (net)
			virtio_net_check_tx(&chain, F_CSUM, &frame_len);
		else
			virtio_blk_process(blk, &chain, &written);
		vq_push(vq, chain.head, written);
		vq_should_notify(vq);
	}
}

/* Frames for the guest, merged over several buffers or one per chain. */
static void receive(struct virtqueue *vq, bool mergeable)
{
	static const uint8_t hdr[12];
	static uint8_t frame[1514];

	for (int n = 0; n < 8; n++)
		if (virtio_net_rx_frame(vq, mergeable, hdr, frame, 60 + 200u * (unsigned)n, &chain,
		                        used, G_N_ELEMENTS(used)) <= 0)
			break;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t sizes[] = {4, 16, 64, 256};
	struct virtqueue vq;

	if (size < 1)
		return 0;
	uint8_t how = data[0];
	memset(gm.mapping, 0, RAM);
	memcpy(gm.mapping, data + 1, MIN(size - 1, (size_t)RAM));
	if (!vq_init(&vq, &gm, sizes[how & 3], 0, RING_AVAIL, RING_USED))
		abort();
	vq.event_idx = how & 4;
	switch (how >> 3 & 3) {
	case 0:
		serve(&vq, false);
		break;
	case 1:
		serve(&vq, true);
		break;
	default:
		receive(&vq, how & 32);
		break;
	}
	return 0;
}
