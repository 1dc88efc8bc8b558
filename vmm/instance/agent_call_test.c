// SPDX-License-Identifier: MIT
/*
 * agent_call.c: frames from the agent however they are cut, what each
 * ends the call with, and what goes the other way.
 */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/instance/agent_call.h"

struct sink {
	char *dir, *out_path, *err_path;
	int out, err;
};

static void sink_open(struct sink *s)
{
	s->dir = g_dir_make_tmp("husk-call-XXXXXX", NULL);
	s->out_path = g_build_filename(s->dir, "out", NULL);
	s->err_path = g_build_filename(s->dir, "err", NULL);
	s->out = open(s->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	s->err = open(s->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(s->out, >=, 0);
	g_assert_cmpint(s->err, >=, 0);
}

static char *sink_read(const char *path)
{
	char *text = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	return text;
}

static void sink_close(struct sink *s)
{
	close(s->out);
	close(s->err);
	g_unlink(s->out_path);
	g_unlink(s->err_path);
	g_rmdir(s->dir);
	g_free(s->out_path);
	g_free(s->err_path);
	g_free(s->dir);
}

static void frame(GByteArray *to, uint8_t type, const void *payload, uint32_t len)
{
	uint8_t hdr[5];

	agent_frame_header(hdr, type, len);
	g_byte_array_append(to, hdr, sizeof(hdr));
	g_byte_array_append(to, payload, len);
}

/* Feeds 'bytes' 'step' at a time; the result of the last feed. */
static bool feed(struct agent_call *c, const GByteArray *bytes, size_t step)
{
	bool going = true;

	for (size_t off = 0; going && off < bytes->len; off += step) {
		size_t room, n = MIN(step, bytes->len - off);
		uint8_t *at = agent_call_room(c, &room);
		g_assert_cmpuint(room, >=, n);
		memcpy(at, bytes->data + off, n);
		going = agent_call_received(c, n);
	}
	return going;
}

static const uint8_t hello[4] = {AGENT_VERSION, 0, 0, 0};

/* HELLO, output on both streams and EXIT, cut every way from 1 byte to all at once. */
static void test_cut_anywhere(void)
{
	static const uint8_t exit42[5] = {AGENT_EXITED, 42, 0, 0, 0};
	GByteArray *bytes = g_byte_array_new();

	frame(bytes, AGENT_HELLO, hello, sizeof(hello));
	frame(bytes, AGENT_STDOUT, "out-1 ", 6);
	frame(bytes, AGENT_STDERR, "err", 3);
	frame(bytes, AGENT_STDOUT, "out-2", 5);
	frame(bytes, AGENT_STDOUT, "", 0);
	frame(bytes, AGENT_EXIT, exit42, sizeof(exit42));
	for (size_t step = 1; step <= bytes->len; step++) {
		struct agent_call c;
		struct sink s;
		sink_open(&s);
		agent_call_init(&c, s.out, s.err);
		c.hello_first = true;
		g_assert_false(feed(&c, bytes, step));
		g_assert_true(c.exited);
		g_assert_cmpint(c.status, ==, 42);
		g_assert_cmpuint(c.version, ==, AGENT_VERSION);
		g_assert_null(c.why);
		char *out = sink_read(s.out_path), *err = sink_read(s.err_path);
		g_assert_cmpstr(out, ==, "out-1 out-2");
		g_assert_cmpstr(err, ==, "err");
		g_free(out);
		g_free(err);
		agent_call_clear(&c);
		sink_close(&s);
	}
	g_byte_array_unref(bytes);
}

/* Each way a call ends other than EXIT: its status and its one printable line. */
static void test_endings(void)
{
	static const uint8_t killed[5] = {AGENT_KILLED, SIGKILL, 0, 0, 0};
	static const uint8_t bad_exit[5] = {7, 1, 0, 0, 0};
	static const uint8_t zero_len[4] = {0, 0, 0, 0};
	static const uint8_t old_hello[4] = {AGENT_VERSION + 1, 0, 0, 0};
	static const struct {
		bool hello;
		uint8_t type;
		const void *payload;
		uint32_t len;
		int status;
		const char *why; /* NULL: EXIT */
	} cases[] = {
	    {false, AGENT_EXIT, killed, 5, 128 + SIGKILL, NULL},
	    {false, AGENT_EXIT, bad_exit, 5, 125, "the agent's EXIT: *"},
	    {false, AGENT_ERROR, "exec x: \033[2Jgone\n", 17, 125, "the agent: exec x: ?[2Jgone?"},
	    {false, AGENT_DONE, "", 0, 125, "the agent sent a frame of type 12"},
	    {true, AGENT_STDOUT, "early", 5, 125, "the agent did not say HELLO"},
	    {true, AGENT_HELLO, old_hello, 4, 125, "the agent's HELLO: *"},
	    {false, 0, zero_len, 0, 125, "the agent broke its framing"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct agent_call c;
		struct sink s;
		GByteArray *bytes = g_byte_array_new();
		sink_open(&s);
		agent_call_init(&c, s.out, s.err);
		c.hello_first = cases[i].hello;
		if (cases[i].type)
			frame(bytes, cases[i].type, cases[i].payload, cases[i].len);
		else
			g_byte_array_append(bytes, cases[i].payload, 4);
		g_assert_false(feed(&c, bytes, bytes->len));
		g_assert_cmpint(c.status, ==, cases[i].status);
		g_assert_cmpint(c.exited, ==, cases[i].why == NULL);
		if (cases[i].why) {
			g_assert_nonnull(c.why);
			g_assert_true(g_pattern_match_simple(cases[i].why, c.why));
		}
		/* Over is over: more bytes change nothing. */
		g_assert_false(feed(&c, bytes, bytes->len));
		g_assert_cmpint(c.status, ==, cases[i].status);
		agent_call_clear(&c);
		sink_close(&s);
		g_byte_array_unref(bytes);
	}
}

static void test_went_away(void)
{
	struct agent_call c;

	agent_call_init(&c, -1, -1);
	g_assert_false(agent_call_received(&c, 0));
	g_assert_cmpint(c.status, ==, HUSK_EXIT_EXEC_FAILED);
	g_assert_cmpstr(c.why, ==, "the agent went away before the command ended");
	agent_call_clear(&c);
}

/* What is queued for the agent: whole frames, in order, as the agent decodes them. */
static void test_queued_frames(void)
{
	struct agent_call c;
	struct agent_frame f;
	struct agent_winsize ws;
	const char *why;
	long used;
	size_t off = 0;

	agent_call_init(&c, -1, -1);
	agent_call_queue(&c, AGENT_STDIN, "abc", 3);
	agent_call_queue_signal(&c, SIGINT);
	agent_call_queue_resize(&c, (struct agent_winsize){40, 100});
	agent_call_queue(&c, AGENT_STDIN, NULL, 0);
	used = agent_frame_parse(c.out->data, c.out->len, &f);
	g_assert_cmpint(used, ==, 5 + 3);
	g_assert_cmpmem(f.payload, f.len, "abc", 3);
	off += (size_t)used;
	used = agent_frame_parse(c.out->data + off, c.out->len - off, &f);
	g_assert_cmpint(f.type, ==, AGENT_SIGNAL);
	g_assert_cmpint(f.payload[0] | f.payload[1] << 8, ==, SIGINT);
	off += (size_t)used;
	used = agent_frame_parse(c.out->data + off, c.out->len - off, &f);
	g_assert_cmpint(f.type, ==, AGENT_RESIZE);
	g_assert_true(agent_resize_decode(f.payload, f.len, &ws, &why));
	g_assert_cmpint(ws.rows, ==, 40);
	g_assert_cmpint(ws.cols, ==, 100);
	off += (size_t)used;
	used = agent_frame_parse(c.out->data + off, c.out->len - off, &f);
	g_assert_cmpint(f.type, ==, AGENT_STDIN);
	g_assert_cmpuint(f.len, ==, 0);
	off += (size_t)used;
	g_assert_cmpuint(off, ==, c.out->len);
	agent_call_sent(&c, 8);
	g_assert_cmpuint(c.out->len, ==, off - 8);
	agent_call_sent(&c, 1 << 20); /* more than queued: all of it */
	g_assert_cmpuint(c.out->len, ==, 0);
	agent_call_clear(&c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/agent-call/cut-anywhere", test_cut_anywhere);
	g_test_add_func("/agent-call/endings", test_endings);
	g_test_add_func("/agent-call/went-away", test_went_away);
	g_test_add_func("/agent-call/queued-frames", test_queued_frames);
	return g_test_run();
}
