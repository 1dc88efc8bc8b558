// SPDX-License-Identifier: MIT
#include "vmm/msi.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/arch.h"
#include "vmm/error.h"

static void add_entry(struct msi_router *r, struct kvm_irq_routing_entry e)
{
	r->table->entries[r->table->nr++] = e;
}

static bool commit(struct msi_router *r)
{
	return ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, r->table) == 0;
}

bool msi_router_init(struct msi_router *r, int vm_fd, GError **err)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	pthread_mutex_init(&r->lock, NULL);
	r->table = g_malloc0(sizeof(*r->table) + MSI_MAX_ROUTES * sizeof(r->table->entries[0]));
	r->devid = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MSI_DEVID) > 0;
	r->table->nr = arch_default_irq_routes(r->table->entries, MSI_MAX_ROUTES, &r->next_gsi);
	if (commit(r))
		return true;
	return husk_fail(err, HUSK_EXIT_HOST, "KVM_SET_GSI_ROUTING: %s", g_strerror(errno));
}

void msi_router_destroy(struct msi_router *r)
{
	g_clear_pointer(&r->table, g_free);
	pthread_mutex_destroy(&r->lock);
}

int msi_vector_create(struct msi_router *r, uint32_t *gsi, GError **err)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "eventfd: %s", g_strerror(errno));
		return -1;
	}
	pthread_mutex_lock(&r->lock);
	*gsi = r->next_gsi++;
	pthread_mutex_unlock(&r->lock);
	struct kvm_irqfd irqfd = {.fd = (uint32_t)fd, .gsi = *gsi};
	if (ioctl(r->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		husk_fail(err, HUSK_EXIT_HOST, "KVM_IRQFD: %s", g_strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

bool msi_vector_route(struct msi_router *r, uint32_t gsi, uint64_t addr, uint32_t data,
                      uint32_t rid)
{
	struct kvm_irq_routing_entry e = {.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI};
	uint32_t i;
	bool ok = true;

	e.u.msi.address_lo = (uint32_t)addr;
	e.u.msi.address_hi = (uint32_t)(addr >> 32);
	e.u.msi.data = data;
	if (r->devid) {
		e.flags = KVM_MSI_VALID_DEVID;
		e.u.msi.devid = rid;
	}
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->table->nr; i++)
		if (r->table->entries[i].gsi == gsi)
			break;
	if (i < r->table->nr)
		r->table->entries[i] = e;
	else if (r->table->nr < MSI_MAX_ROUTES)
		add_entry(r, e);
	else
		ok = false;
	ok = ok && commit(r);
	pthread_mutex_unlock(&r->lock);
	return ok;
}
