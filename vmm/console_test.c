// SPDX-License-Identifier: MIT
#include "vmm/console.h"

#include "vmm/stop_recorder.h"
#include <fcntl.h>
#include <glib.h>
#include <pty.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define RBR 0
#define FCR 2
#define IER 1
#define LSR 5

static void no_irq(void *ctx, uint32_t gsi, bool level)
{
}

static uint8_t rd(struct serial *s, unsigned int reg)
{
	uint8_t v = 0;

	serial_access(s, reg, &v, 1, false);
	return v;
}

static void wr(struct serial *s, unsigned int reg, uint8_t v)
{
	serial_access(s, reg, &v, 1, true);
}

struct guest {
	struct serial *s;
	GString *got;
	size_t want;
	GMainContext *ctx;
	gint done;
};

/* A "vCPU" thread that drains the UART slowly. */
static gpointer guest_thread(gpointer data)
{
	struct guest *g = data;

	while (g->got->len < g->want) {
		if (rd(g->s, LSR) & 1)
			g_string_append_c(g->got, rd(g->s, RBR));
		else
			g_usleep(100);
	}
	g_atomic_int_set(&g->done, 1);
	g_main_context_wakeup(g->ctx);
	return NULL;
}

static struct serial *new_serial(int out_fd)
{
	struct serial *s = serial_create((struct irq_line){no_irq, NULL, 4}, out_fd);

	wr(s, FCR, 0x07);
	return s;
}

static void test_pipe(void)
{
	GMainContext *ctx = g_main_context_new();
	int p[2];
	struct stop_recorder st = {0};
	GString *expect = g_string_new(NULL);
	struct serial *s = new_serial(-1);
	struct guest g = {s, g_string_new(NULL), 0, ctx, 0};

	g_assert_cmpint(pipe(p), ==, 0);
	for (int i = 0; i < 10000; i++)
		g_string_append_c(expect, (char)(i * 7 + (i == 5 ? 1 : 0)));
	g_string_append_c(expect, 0x01); /* Ctrl-A forwarded verbatim in a pipe */
	g_string_append_c(expect, 'x');
	g.want = expect->len;

	struct console *c = console_open(p[0], ctx, s, stop_recorder_hook(&st));
	GThread *t = g_thread_new("guest", guest_thread, &g);
	size_t off = 0;
	while (off < expect->len) {
		ssize_t n = write(p[1], expect->str + off, MIN(1000, expect->len - off));
		g_assert_cmpint(n, >, 0);
		off += n;
		while (g_main_context_iteration(ctx, FALSE))
			;
	}
	close(p[1]);
	while (!g_atomic_int_get(&g.done))
		g_main_context_iteration(ctx, TRUE);
	g_thread_join(t);
	g_assert_cmpuint(g.got->len, ==, expect->len);
	g_assert_true(memcmp(g.got->str, expect->str, expect->len) == 0);
	g_assert_cmpuint(st.count, ==, 0);
	/* EOF seen: the loop goes idle. */
	while (g_main_context_iteration(ctx, FALSE))
		;
	console_close(c);
	serial_destroy(s);
	close(p[0]);
	g_main_context_unref(ctx);
}

static void test_pty(void)
{
	GMainContext *ctx = g_main_context_new();
	int master, slave;
	struct termios before, during, after;
	struct stop_recorder st = {0};
	struct serial *s = new_serial(-1);

	g_assert_cmpint(openpty(&master, &slave, NULL, NULL, NULL), ==, 0);
	tcgetattr(slave, &before);
	struct console *c = console_open(slave, ctx, s, stop_recorder_hook(&st));
	tcgetattr(slave, &during);
	g_assert_false(during.c_lflag & (ICANON | ECHO | ISIG));
	g_assert_false(during.c_oflag & OPOST);

	const char in[] = "a\x01\x01"
	                  "b\x01q"
	                  "c\x01x";
	g_assert_cmpint(write(master, in, sizeof(in) - 1), ==, sizeof(in) - 1);
	for (int i = 0; i < 50 && st.count == 0; i++)
		g_main_context_iteration(ctx, TRUE);
	char got[16] = {0};
	int n = 0;
	while (rd(s, LSR) & 1)
		got[n++] = rd(s, RBR);
	g_assert_cmpint(n, ==, 6);
	g_assert_true(memcmp(got,
	                     "a\x01"
	                     "b\x01qc",
	                     6) == 0);
	g_assert_cmpuint(st.count, ==, 1);
	g_assert_cmpint(st.reasons[0], ==, STOP_USER);

	/* Escape split across reads. */
	g_assert_cmpint(write(master, "\x01", 1), ==, 1);
	g_main_context_iteration(ctx, TRUE);
	g_assert_cmpint(write(master, "\x01", 1), ==, 1);
	g_main_context_iteration(ctx, TRUE);
	g_assert_cmpint(rd(s, RBR), ==, 1);
	g_assert_false(rd(s, LSR) & 1);

	console_close(c);
	console_restore_terminal();
	tcgetattr(slave, &after);
	g_assert_cmphex(before.c_iflag, ==, after.c_iflag);
	g_assert_cmphex(before.c_oflag, ==, after.c_oflag);
	g_assert_cmphex(before.c_cflag, ==, after.c_cflag);
	g_assert_cmphex(before.c_lflag, ==, after.c_lflag);
	g_assert_true(memcmp(before.c_cc, after.c_cc, sizeof(before.c_cc)) == 0);
	serial_destroy(s);
	close(master);
	close(slave);
	g_main_context_unref(ctx);
}

static void test_bad_fd(void)
{
	GMainContext *ctx = g_main_context_new();
	struct stop_recorder st = {0};
	struct serial *s = new_serial(-1);
	struct console *c = console_open(999, ctx, s, stop_recorder_hook(&st));

	g_assert_false(g_main_context_iteration(ctx, FALSE));
	console_close(c);
	int null = open("/dev/null", O_RDONLY);
	c = console_open(null, ctx, s, stop_recorder_hook(&st));
	while (g_main_context_iteration(ctx, FALSE))
		;
	console_close(c);
	console_restore_terminal();
	close(null);
	serial_destroy(s);
	g_main_context_unref(ctx);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/console/pipe", test_pipe);
	g_test_add_func("/console/pty", test_pty);
	g_test_add_func("/console/bad-fd", test_bad_fd);
	return g_test_run();
}
