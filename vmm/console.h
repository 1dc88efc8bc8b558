/* SPDX-License-Identifier: MIT */
/*
 * The host end of the guest's serial console: the user's input (husk's
 * stdin) is read on the I/O thread and fed to the UART, with QEMU-style
 * Ctrl-A escapes when that input is a terminal. The guest's output does
 * not pass through here; the UART writes it straight to its out_fd.
 */
#ifndef HUSK_CONSOLE_H
#define HUSK_CONSOLE_H

#include <glib.h>

#include "devices/serial.h"
#include "vmm/stop.h"

struct console;

/*
 * Watches 'in_fd' from 'ctx', the I/O thread's context. A terminal is put
 * in raw mode until console_close() or exit, and Ctrl-A x asks 'stop' for
 * STOP_USER; any other input is forwarded byte for byte until EOF. An fd
 * that is not open is not watched. Never fails. Takes over the serial's
 * rx-space callback.
 */
struct console *console_open(int in_fd, GMainContext *ctx, struct serial *serial,
                             struct stop_hook stop);

/*
 * Stops watching and restores the terminal. Call it from the thread that
 * runs 'ctx', or once that loop has stopped, and before serial_destroy().
 */
void console_close(struct console *c);

/*
 * Puts the terminal 'fd' in full raw mode (no echo, line editing, signals
 * or output processing) until console_restore_terminal(), which exit and
 * husk's fatal-signal paths call too. One terminal at a time.
 */
bool console_make_raw(int fd);

/*
 * Puts the terminal back as husk found it. Idempotent and async-signal-safe,
 * so atexit handlers and fatal-signal paths may call it too.
 */
void console_restore_terminal(void);

#endif
