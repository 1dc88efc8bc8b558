/* SPDX-License-Identifier: MIT */
/* virtio-rng (virtio 1.2, 5.4): entropy for the guest from the host's getrandom(). */
#ifndef HUSK_VIRTIO_RNG_H
#define HUSK_VIRTIO_RNG_H

#include "devices/virtio/pci.h"

extern const struct virtio_device_ops virtio_rng_ops;

#endif
