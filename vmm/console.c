// SPDX-License-Identifier: MIT
#include "vmm/console.h"

#include <errno.h>
#include <glib-unix.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define CTRL_A 0x01

/*
 * Input read but not yet taken by the guest. stdin stays watched while
 * this has room, so an escape typed while the guest ignores its UART still
 * gets through; once it is full, reading stops and the pipe or terminal
 * behind stdin holds the rest.
 */
#define CONSOLE_BUF 4096

struct console {
	int in_fd;
	bool raw;     /* in_fd is a terminal in raw mode: escapes apply */
	bool escape;  /* the last byte read was Ctrl-A */
	bool in_done; /* EOF or a lasting error: stop watching in_fd */
	GMainContext *ctx;
	struct serial *serial;
	struct stop_hook stop;
	GSource *input;  /* watches in_fd; NULL while paused or done */
	GSource *wakeup; /* made ready from a vCPU thread when the UART drained */
	uint8_t buf[CONSOLE_BUF];
	size_t head, len; /* pending input: buf[head .. head + len) */
};

/*
 * The terminal settings husk found. saved_fd is published after
 * saved_termios is filled and taken back with one atomic exchange, so a
 * signal handler racing an exit handler restores at most once.
 */
static struct termios saved_termios;
static atomic_int saved_fd = -1;

void console_restore_terminal(void)
{
	int fd = atomic_exchange(&saved_fd, -1);

	if (fd >= 0)
		tcsetattr(fd, TCSANOW, &saved_termios);
}

/*
 * Full raw mode, as QEMU's -nographic: no echo, no line editing, no
 * signals from ^C (the guest gets it), no output processing (the guest's
 * 8250 driver sends its own CR LF).
 */
bool console_make_raw(int fd)
{
	static bool atexit_done;
	struct termios raw;

	if (atomic_load(&saved_fd) >= 0)
		return true; /* already raw; keep the original settings */
	if (tcgetattr(fd, &saved_termios) < 0)
		return false;
	raw = saved_termios;
	cfmakeraw(&raw);
	atomic_store(&saved_fd, fd);
	if (tcsetattr(fd, TCSANOW, &raw) < 0) {
		atomic_store(&saved_fd, -1);
		return false;
	}
	if (!atexit_done)
		atexit_done = atexit(console_restore_terminal) == 0;
	return true;
}

static void print_help(void)
{
	/* The terminal is raw: every line ends in CR LF. */
	static const char help[] = "\r\n"
	                           "husk console escapes: Ctrl-A followed by\r\n"
	                           "  x       stop the VM and quit husk\r\n"
	                           "  h       print this help\r\n"
	                           "  Ctrl-A  send one Ctrl-A to the guest\r\n";

	fputs(help, stderr);
}

static void put(struct console *c, uint8_t byte)
{
	c->buf[c->head + c->len++] = byte;
}

static void escape_command(struct console *c, uint8_t byte)
{
	switch (byte) {
	case 'x':
		stop_request(&c->stop, STOP_USER);
		break;
	case 'h':
		print_help();
		break;
	case CTRL_A:
		put(c, CTRL_A);
		break;
	default:
		put(c, CTRL_A);
		put(c, byte);
		break;
	}
}

static void take_input(struct console *c, const uint8_t *in, size_t n)
{
	memmove(c->buf, c->buf + c->head, c->len);
	c->head = 0;
	for (size_t i = 0; i < n; i++) {
		if (c->escape) {
			c->escape = false;
			escape_command(c, in[i]);
		} else if (c->raw && in[i] == CTRL_A) {
			c->escape = true;
		} else {
			put(c, in[i]);
		}
	}
}

static void feed_guest(struct console *c)
{
	size_t n = serial_receive(c->serial, c->buf + c->head, c->len);

	c->head += n;
	c->len -= n;
}

static gboolean input_ready(gint fd, GIOCondition cond, gpointer data);

static void watch_input(struct console *c, bool on)
{
	if (on && !c->input) {
		c->input = g_unix_fd_source_new(c->in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
		g_source_set_callback(c->input, G_SOURCE_FUNC(input_ready), c, NULL);
		g_source_attach(c->input, c->ctx);
	} else if (!on && c->input) {
		g_source_destroy(c->input);
		g_source_unref(c->input);
		c->input = NULL;
	}
}

/* Two bytes of room: a Ctrl-A held over from the last read may expand to two. */
static void update_watch(struct console *c)
{
	watch_input(c, !c->in_done && CONSOLE_BUF - c->len >= 2);
}

static gboolean input_ready(gint fd, GIOCondition cond, gpointer data)
{
	struct console *c = data;
	uint8_t in[CONSOLE_BUF];
	ssize_t n;

	/* One read per wakeup: in_fd stays blocking, as it may share its open file with stdout. */
	n = read(fd, in, CONSOLE_BUF - c->len - 1);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return G_SOURCE_CONTINUE;
	if (n > 0)
		take_input(c, in, n);
	else
		c->in_done = true; /* EOF, or an error such as EIO after a hangup */
	feed_guest(c);
	update_watch(c);
	return G_SOURCE_CONTINUE;
}

static gboolean guest_drained(gpointer data)
{
	struct console *c = data;

	feed_guest(c);
	update_watch(c);
	return G_SOURCE_CONTINUE;
}

static gboolean wakeup_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
	g_source_set_ready_time(source, -1);
	return callback(data);
}

static GSourceFuncs wakeup_funcs = {.dispatch = wakeup_dispatch};

/*
 * Runs on a vCPU thread with the UART locked. g_source_set_ready_time()
 * takes the context's lock and wakes its poll, so it is safe from here.
 */
static void rx_space(void *data)
{
	struct console *c = data;

	g_source_set_ready_time(c->wakeup, 0);
}

struct console *console_open(int in_fd, GMainContext *ctx, struct serial *serial,
                             struct stop_hook stop)
{
	struct console *c = g_new0(struct console, 1);
	struct stat st;

	c->in_fd = in_fd;
	c->ctx = ctx;
	c->serial = serial;
	c->stop = stop;
	c->wakeup = g_source_new(&wakeup_funcs, sizeof(GSource));
	g_source_set_callback(c->wakeup, guest_drained, c, NULL);
	g_source_attach(c->wakeup, ctx);
	serial_set_rx_space_cb(serial, rx_space, c);

	c->in_done = fstat(in_fd, &st) < 0;
	c->raw = !c->in_done && isatty(in_fd) && console_make_raw(in_fd);
	update_watch(c);
	return c;
}

void console_close(struct console *c)
{
	if (!c)
		return;
	/* After this returns no vCPU thread can be inside rx_space(). */
	serial_set_rx_space_cb(c->serial, NULL, NULL);
	watch_input(c, false);
	g_source_destroy(c->wakeup);
	g_source_unref(c->wakeup);
	if (c->raw)
		console_restore_terminal();
	g_free(c);
}
