/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM and the only sanctioned way to reach it: checked accessors
 * that turn a guest-physical range into a host pointer, or refuse.
 * Guest-supplied addresses and lengths must go through gm_ptr() (or the
 * read/write helpers); never add an offset to a host pointer by hand.
 */
#ifndef HUSK_GUEST_MEMORY_H
#define HUSK_GUEST_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 2

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_memory {
	struct guest_region regions[GM_MAX_REGIONS];
	unsigned int count;
	uint64_t ram_size; /* sum of the regions */
	uint8_t *mapping;  /* one host mapping backs every region */
};

/*
 * RAM starts at LAYOUT_RAM_START; what does not fit below LAYOUT_RAM_LOW_END
 * goes to LAYOUT_HIGH_RAM, so that x86's 32-bit hole is left to devices
 * (vmm/layout.h). Returns false with errno set.
 */
bool guest_memory_alloc(struct guest_memory *gm, uint64_t ram_size);
void guest_memory_free(struct guest_memory *gm);

/* Host pointer for [gpa, gpa+len) if it lies inside one RAM region, else NULL. */
void *gm_ptr(const struct guest_memory *gm, uint64_t gpa, uint64_t len);

bool gm_read(const struct guest_memory *gm, uint64_t gpa, void *dst, uint64_t len);
bool gm_write(const struct guest_memory *gm, uint64_t gpa, const void *src, uint64_t len);

/* Bytes of guest RAM the host has backed with memory so far (mincore). */
uint64_t gm_resident_bytes(const struct guest_memory *gm);

/* End of the RAM that starts at 0 (the "low" region). */
uint64_t gm_low_end(const struct guest_memory *gm);

#endif
