/* SPDX-License-Identifier: MIT */
/*
 * MSI delivery through KVM: each vector is a GSI with an irqfd, routed to
 * the address/data pair the guest programmed. KVM_SET_GSI_ROUTING replaces
 * the whole table, so this keeps it all, starting with the default wiring
 * of the architecture's interrupt controller (arch_default_irq_routes).
 */
#ifndef HUSK_MSI_H
#define HUSK_MSI_H

#include <glib.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define MSI_MAX_ROUTES 1024

struct msi_router {
	int vm_fd;
	pthread_mutex_t lock;
	struct kvm_irq_routing *table;
	uint32_t next_gsi;
	bool devid; /* routes name the requester (KVM_CAP_MSI_DEVID: arm64's ITS needs it) */
};

bool msi_router_init(struct msi_router *r, int vm_fd, GError **err);
void msi_router_destroy(struct msi_router *r);

/* A new vector: its GSI gets an eventfd bound with KVM_IRQFD. Returns the eventfd or -1. */
int msi_vector_create(struct msi_router *r, uint32_t *gsi, GError **err);
/* Routes the GSI to an MSI message (from an MSI-X table entry) of PCI requester 'rid'. */
bool msi_vector_route(struct msi_router *r, uint32_t gsi, uint64_t addr, uint32_t data,
                      uint32_t rid);

#endif
