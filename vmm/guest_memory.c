// SPDX-License-Identifier: MIT
#include "vmm/guest_memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/layout.h"

static void add_region(struct guest_memory *gm, uint64_t gpa, uint64_t size, uint8_t *hva)
{
	gm->regions[gm->count++] = (struct guest_region){gpa, size, hva};
}

/*
 * KVM maps guest memory to the host's huge pages only where the guest
 * address and the host address agree modulo the huge page's size; in a
 * memory slot where they do not, it uses 4 KiB pages throughout
 * (kvm_alloc_memslot_metadata). Guest RAM starts at a 2 MiB multiple, so
 * its host mapping must too. Older kernels (Debian 12's 6.1) do not align
 * large anonymous mappings by themselves, and a start off 2 MiB costs the
 * guest a nested page fault for each 4 KiB it first touches, and 512 TLB
 * entries for each 2 MiB it uses.
 */
#define HUGE_PAGE (UINT64_C(2) << 20)

/*
 * 'size' bytes of anonymous memory starting at a multiple of 'align' (a
 * power of two): map 'align' more, then give back the ends. MAP_NORESERVE:
 * a guest rarely touches all its RAM, so do not charge it all against the
 * host's commit limit up front.
 */
static uint8_t *map_aligned(uint64_t size, uint64_t align)
{
	uint8_t *p = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t head = -(uintptr_t)p & (align - 1);
	uint64_t used = (head + size + page - 1) & ~(page - 1);
	if (head)
		munmap(p, head);
	if (used < size + align)
		munmap(p + used, size + align - used);
	return p + head;
}

bool guest_memory_alloc(struct guest_memory *gm, uint64_t ram_size)
{
	uint64_t low_max = LAYOUT_RAM_LOW_END - LAYOUT_RAM_START;
	uint64_t low = ram_size < low_max ? ram_size : low_max;

	memset(gm, 0, sizeof(*gm));
	if (ram_size == 0 || ram_size > (1ULL << 46)) {
		errno = EINVAL;
		return false;
	}
	uint8_t *p = map_aligned(ram_size, HUGE_PAGE);
	if (!p)
		return false;
	madvise(p, ram_size, MADV_DONTDUMP);
	madvise(p, ram_size, MADV_HUGEPAGE);
	gm->mapping = p;
	gm->ram_size = ram_size;
	add_region(gm, LAYOUT_RAM_START, low, gm->mapping);
	if (ram_size > low)
		add_region(gm, LAYOUT_HIGH_RAM, ram_size - low, gm->mapping + low);
	return true;
}

void guest_memory_free(struct guest_memory *gm)
{
	if (gm->mapping)
		munmap(gm->mapping, gm->ram_size);
	memset(gm, 0, sizeof(*gm));
}

void *gm_ptr(const struct guest_memory *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < gm->count; i++) {
		const struct guest_region *r = &gm->regions[i];

		/* Written so that no sum can overflow. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

bool gm_read(const struct guest_memory *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *src = gm_ptr(gm, gpa, len);

	if (!src)
		return false;
	memcpy(dst, src, len);
	return true;
}

bool gm_write(const struct guest_memory *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = gm_ptr(gm, gpa, len);

	if (!dst)
		return false;
	memcpy(dst, src, len);
	return true;
}

uint64_t gm_resident_bytes(const struct guest_memory *gm)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t pages = (gm->ram_size + (uint64_t)page - 1) / (uint64_t)page;
	unsigned char *vec = malloc(pages);
	uint64_t resident = 0;

	if (!vec || mincore(gm->mapping, gm->ram_size, vec) < 0) {
		free(vec);
		return 0;
	}
	for (size_t i = 0; i < pages; i++)
		resident += vec[i] & 1;
	free(vec);
	return resident * (uint64_t)page;
}

uint64_t gm_low_end(const struct guest_memory *gm)
{
	return gm->count ? gm->regions[0].size : 0;
}
