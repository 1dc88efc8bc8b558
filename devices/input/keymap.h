/* SPDX-License-Identifier: MIT */
/*
 * X keysyms (what VNC's KeyEvent carries) to Linux evdev key codes, for a
 * US layout: a keysym names the key that makes it, so 'A', 'a' and the
 * shifted '!' of '1' go to the key they sit on (the client sends Shift as
 * its own key).
 */
#ifndef HUSK_KEYMAP_H
#define HUSK_KEYMAP_H

#include <stdint.h>

/* The evdev code (KEY_*) of the key making 'keysym'; 0 if there is none. */
uint16_t keymap_evdev_code(uint32_t keysym);

#endif
