/* SPDX-License-Identifier: MIT */
/*
 * An ARM PrimeCell PL061 GPIO controller (the PL061 Technical Reference
 * Manual, DDI 0190): eight lines the host drives as the guest's inputs,
 * with the interrupt logic Linux's gpio-pl061 driver programs. The arm64
 * board wires its power button to one line, as a gpio-keys node in the
 * device tree says (KEY_POWER): the way an arm64 guest without ACPI
 * learns that it should shut down.
 */
#ifndef HUSK_PL061_H
#define HUSK_PL061_H

#include <stdbool.h>
#include <stdint.h>

#define PL061_SIZE  0x1000
#define PL061_LINES 8

struct pl061;

/* 'set_irq' drives the controller's interrupt line (from the caller's thread). */
struct pl061 *pl061_new(void (*set_irq)(void *opaque, bool level), void *opaque);
void pl061_free(struct pl061 *g);

/* From any thread: input 'line' is now high or low. */
void pl061_set_input(struct pl061 *g, unsigned int line, bool high);

/*
 * From any thread: a button on 'line' is pressed (the line goes high) and
 * let go as soon as the guest has read it high: a driver that reads the
 * line once its interrupt came (gpio-keys, after its debounce) sees the
 * press, then the release, however late it looks, and no timer is needed.
 */
void pl061_press(struct pl061 *g, unsigned int line);

/* The bus callback for its PL061_SIZE bytes of MMIO (32-bit registers). */
void pl061_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
