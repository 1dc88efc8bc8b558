/* SPDX-License-Identifier: MIT */
/*
 * A window on the host's desktop (SDL2, on X11 or Wayland) showing
 * virtio-gpu's scanout, its keys and pointer going to virtio-input
 * devices, as a VNC client's do (vnc.h). Every SDL call is made on the
 * window's own thread, never a vCPU's nor the I/O thread's: it opens the
 * window when made, before the VM runs, and serves once asked, under its
 * own system-call list. Closing the window presses the guest's power
 * button, as closing a laptop's lid would not but a desktop VM's would.
 */
#ifndef HUSK_WINDOW_H
#define HUSK_WINDOW_H

#include <glib.h>
#include <stdbool.h>

#include "devices/display/virtio_gpu.h"
#include "devices/input/virtio_input.h"

struct display_window;

/* Is the window built in? (SDL2 was found at build time.) */
bool window_available(void);

/*
 * Opens the window, the display's size, titled 'title'; fails with one line
 * in 'err' where the host has no display ($DISPLAY, $WAYLAND_DISPLAY) SDL
 * can reach. 'keyboard' and 'tablet' may be NULL (their events are
 * dropped); 'on_close' (may be NULL) runs on the window's thread when the
 * user closes it.
 */
struct display_window *window_open(const char *title, struct virtio_gpu *gpu,
                                   struct virtio_input *keyboard, struct virtio_input *tablet,
                                   void (*on_close)(void *), void *opaque, GError **err);
/*
 * Lets the window's thread serve, once the process-wide system-call filter
 * is on (it goes on every thread at once, which one with a list of its own
 * would refuse); later calls do nothing.
 */
void window_serve(struct display_window *w);
void window_close(struct display_window *w);

/* The evdev code (KEY_*) of an SDL scancode (a USB HID usage); 0 if none. */
uint16_t window_evdev_code(int scancode);

/* For tests: how many passes drew something into the window. */
unsigned int window_frames(struct display_window *w);

#endif
