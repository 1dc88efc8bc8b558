/* SPDX-License-Identifier: MIT */
/*
 * The code at the x86 reset vector (physical 0xffff0, CS:IP f000:fff0).
 *
 * husk has no BIOS, but a guest may still jump there: Linux's "BIOS"
 * reboot method (machine_real_restart) does, and it is what Linux picks
 * on a hardware-reduced ACPI machine without EFI, before the ACPI reset
 * register is tried. So the reset vector asks for a reset the way the
 * ACPI tables describe it, and halts if that somehow returns.
 *
 *	mov	al, ACPI_RESET_VALUE
 *	mov	dx, PORT_ACPI_PM + ACPI_PM_RESET
 *	out	dx, al
 * 1:	hlt
 *	jmp	1b
 */
#ifndef HUSK_RESET_VECTOR_H
#define HUSK_RESET_VECTOR_H

#include <stdint.h>

#define RESET_VECTOR_ADDR 0xffff0

/* Real-mode machine code; the port and value bytes are filled in by reset_vector_code(). */
static inline void reset_vector_code(uint8_t code[9], uint16_t port, uint8_t value)
{
	const uint8_t insns[9] = {
	    0xb0, value,                               /* mov al, value */
	    0xba, (uint8_t)port, (uint8_t)(port >> 8), /* mov dx, port */
	    0xee,                                      /* out dx, al */
	    0xf4,                                      /* hlt */
	    0xeb, 0xfd,                                /* jmp to the hlt */
	};

	for (int i = 0; i < 9; i++)
		code[i] = insns[i];
}

#endif
