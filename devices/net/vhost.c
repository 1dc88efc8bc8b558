// SPDX-License-Identifier: MIT
#include "devices/net/vhost.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/error.h"

#define BIT(f) (1ULL << (f))
/*
 * The accepted features the kernel's rings must follow: the ring layout
 * ones, and MRG_RXBUF with VERSION_1, which set the header's size. The
 * offloads are the TAP device's business, set there (TUNSETOFFLOAD).
 */
#define RING_FEATURES                                                                              \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_INDIRECT_DESC) |                              \
	 BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_NET_F_MRG_RXBUF))

struct vhost_net {
	int fd;
	uint64_t features; /* what this kernel's vhost-net can do */
	bool running;
};

struct vhost_net *vhost_net_open(GError **err)
{
	struct vhost_net *v = g_new0(struct vhost_net, 1);

	v->fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (v->fd < 0) {
		husk_fail(err, HUSK_EXIT_HOST, "/dev/vhost-net: %s", g_strerror(errno));
	} else if (ioctl(v->fd, VHOST_SET_OWNER) < 0 ||
	           ioctl(v->fd, VHOST_GET_FEATURES, &v->features) < 0) {
		husk_fail(err, HUSK_EXIT_HOST, "/dev/vhost-net: %s", g_strerror(errno));
	} else {
		return v;
	}
	vhost_net_close(v);
	return NULL;
}

void vhost_net_close(struct vhost_net *v)
{
	if (!v)
		return;
	vhost_net_stop(v);
	if (v->fd >= 0)
		close(v->fd);
	g_free(v);
}

static bool set_mem_table(struct vhost_net *v, const struct guest_memory *mem)
{
	struct vhost_memory *table =
	    g_malloc0(sizeof(*table) + mem->count * sizeof(struct vhost_memory_region));
	bool ok;

	table->nregions = mem->count;
	for (unsigned int i = 0; i < mem->count; i++)
		table->regions[i] = (struct vhost_memory_region){
		    .guest_phys_addr = mem->regions[i].gpa,
		    .memory_size = mem->regions[i].size,
		    .userspace_addr = (uintptr_t)mem->regions[i].hva,
		};
	ok = ioctl(v->fd, VHOST_SET_MEM_TABLE, table) == 0;
	g_free(table);
	return ok;
}

static bool set_ring(struct vhost_net *v, unsigned int i, const struct vhost_ring *r)
{
	struct vhost_vring_state num = {.index = i, .num = r->size};
	struct vhost_vring_state base = {.index = i, .num = r->next_avail};
	struct vhost_vring_addr addr = {
	    .index = i,
	    .desc_user_addr = (uintptr_t)r->desc,
	    .avail_user_addr = (uintptr_t)r->avail,
	    .used_user_addr = (uintptr_t)r->used,
	};
	struct vhost_vring_file kick = {.index = i, .fd = r->kick_fd};
	struct vhost_vring_file call = {.index = i, .fd = r->call_fd};
	struct vhost_vring_file error = {.index = i, .fd = r->err_fd};

	return ioctl(v->fd, VHOST_SET_VRING_NUM, &num) == 0 &&
	       ioctl(v->fd, VHOST_SET_VRING_BASE, &base) == 0 &&
	       ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr) == 0 &&
	       ioctl(v->fd, VHOST_SET_VRING_KICK, &kick) == 0 &&
	       ioctl(v->fd, VHOST_SET_VRING_CALL, &call) == 0 &&
	       ioctl(v->fd, VHOST_SET_VRING_ERR, &error) == 0;
}

static bool set_backend(struct vhost_net *v, unsigned int i, int fd)
{
	struct vhost_vring_file backend = {.index = i, .fd = fd};

	return ioctl(v->fd, VHOST_NET_SET_BACKEND, &backend) == 0;
}

bool vhost_net_start(struct vhost_net *v, const struct guest_memory *mem, uint64_t features,
                     const struct vhost_ring rings[2], int tap_fd, GError **err)
{
	uint64_t ring_features = features & RING_FEATURES;
	const char *step = "features";

	if (ring_features & ~v->features)
		return husk_fail(err, HUSK_EXIT_HOST,
		                 "vhost-net: this kernel lacks features 0x%" G_GINT64_MODIFIER "x",
		                 ring_features & ~v->features);
	vhost_net_stop(v);
	v->running = true; /* from here on, stop undoes what was done */
	if (ioctl(v->fd, VHOST_SET_FEATURES, &ring_features) < 0)
		goto fail;
	step = "memory table";
	if (!set_mem_table(v, mem))
		goto fail;
	step = "rings";
	for (unsigned int i = 0; i < 2; i++)
		if (!set_ring(v, i, &rings[i]))
			goto fail;
	step = "TAP device";
	for (unsigned int i = 0; i < 2; i++)
		if (!set_backend(v, i, tap_fd))
			goto fail;
	return true;
fail:;
	int e = errno;
	vhost_net_stop(v);
	return husk_fail(err, HUSK_EXIT_HOST, "vhost-net: %s: %s", step, g_strerror(e));
}

void vhost_net_stop(struct vhost_net *v)
{
	if (!v->running)
		return;
	for (unsigned int i = 0; i < 2; i++)
		set_backend(v, i, -1);
	v->running = false;
}

bool vhost_net_set_call(struct vhost_net *v, unsigned int index, int fd)
{
	struct vhost_vring_file call = {.index = index, .fd = fd};

	return v->running && ioctl(v->fd, VHOST_SET_VRING_CALL, &call) == 0;
}
