// SPDX-License-Identifier: MIT
#include "vmm/x86/long_mode.h"

#include <string.h>

#include "vmm/layout.h"

#define CR0_PE   (1ULL << 0)
#define CR0_MP   (1ULL << 1)
#define CR0_ET   (1ULL << 4)
#define CR0_NE   (1ULL << 5)
#define CR0_PG   (1ULL << 31)
#define CR4_PAE  (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define PTE_PRESENT (1ULL << 0)
#define PTE_RW      (1ULL << 1)
#define PTE_PS      (1ULL << 7) /* 2 MiB page in a page directory */

/* Selectors match the boot protocol's __BOOT_CS and __BOOT_DS. */
#define GDT_CODE_SEL 0x10
#define GDT_DATA_SEL 0x18
#define GDT_TSS_SEL  0x20
#define GDT_ENTRIES  5

/* Segment types (Intel SDM vol. 3, 3.4.5.1). */
#define SEG_TYPE_CODE_RX_ACCESSED 0xb
#define SEG_TYPE_DATA_RW_ACCESSED 0x3
#define SEG_TYPE_TSS_BUSY         0xb

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
	       ((uint64_t)(limit & 0x000f0000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
	       (uint64_t)(limit & 0x0000ffff);
}

bool long_mode_write_tables(const struct guest_memory *gm)
{
	uint64_t gdt[GDT_ENTRIES] = {
	    [GDT_CODE_SEL / 8] = gdt_entry(0xa09b, 0, 0xfffff), /* 64-bit code, G, L */
	    [GDT_DATA_SEL / 8] = gdt_entry(0xc093, 0, 0xfffff), /* data, G, D/B */
	    [GDT_TSS_SEL / 8] = gdt_entry(0x008b, 0, 0x67),     /* busy TSS */
	};
	uint64_t *pml4 = gm_ptr(gm, LAYOUT_PML4, 4096);
	uint64_t *pdpt = gm_ptr(gm, LAYOUT_PDPT, 4096);
	uint64_t *pd = gm_ptr(gm, LAYOUT_PD, 4 * 4096);

	if (!pml4 || !pdpt || !pd || !gm_write(gm, LAYOUT_GDT, gdt, sizeof(gdt)))
		return false;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
	return true;
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code)
{
	return (struct kvm_segment){
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = selector,
	    .type = type,
	    .present = 1,
	    .dpl = 0,
	    .db = code ? 0 : 1, /* must be 0 when L is set */
	    .s = 1,
	    .l = code ? 1 : 0,
	    .g = 1,
	};
}

void long_mode_set_sregs(struct kvm_sregs *sregs)
{
	struct kvm_segment data = flat_segment(GDT_DATA_SEL, SEG_TYPE_DATA_RW_ACCESSED, false);

	sregs->cs = flat_segment(GDT_CODE_SEL, SEG_TYPE_CODE_RX_ACCESSED, true);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	/* VMX refuses to enter with an unusable TR, so give it a busy TSS. */
	sregs->tr = (struct kvm_segment){
	    .selector = GDT_TSS_SEL, .limit = 0x67, .type = SEG_TYPE_TSS_BUSY, .present = 1};
	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
	sregs->cr3 = LAYOUT_PML4;
	sregs->cr4 = CR4_PAE;
	sregs->efer = EFER_LME | EFER_LMA;
}

void long_mode_set_regs(struct kvm_regs *regs, uint64_t entry, uint64_t zero_page)
{
	memset(regs, 0, sizeof(*regs));
	regs->rflags = 0x2; /* bit 1 is reserved-one; IF clear */
	regs->rip = entry;
	regs->rsi = zero_page;
	regs->rsp = LAYOUT_BOOT_STACK;
}
