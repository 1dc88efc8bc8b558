// SPDX-License-Identifier: MIT
/*
 * husk-agent's protocol: the frame and EXEC decoders against well-formed
 * and random input, and a session served in a child over a socketpair,
 * this test playing the host.
 */
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "firmware/husk-agent.h"

/* ---- decoders --------------------------------------------------------------- */

static void test_frame_parse(void)
{
	uint8_t buf[16] = {0};
	struct agent_frame f;

	agent_frame_header(buf, AGENT_STDIN, 3);
	memcpy(buf + 5, "abc", 3);
	for (size_t len = 0; len < 8; len++)
		g_assert_cmpint(agent_frame_parse(buf, len, &f), ==, 0);
	g_assert_cmpint(agent_frame_parse(buf, 8, &f), ==, 8);
	g_assert_cmpuint(f.type, ==, AGENT_STDIN);
	g_assert_cmpmem(f.payload, f.len, "abc", 3);
	memset(buf, 0, 4); /* a body of 0 bytes has no type */
	g_assert_cmpint(agent_frame_parse(buf, 8, &f), ==, -1);
	agent_frame_header(buf, AGENT_STDIN, AGENT_MAX_BODY); /* one byte too many */
	g_assert_cmpint(agent_frame_parse(buf, 8, &f), ==, -1);
}

static GByteArray *exec_request(const char *const *fields, const uint8_t *tags, size_t n)
{
	GByteArray *b = g_byte_array_new();

	for (size_t i = 0; i < n; i++) {
		guint at = b->len;
		g_byte_array_set_size(b, at + 5 + (guint)strlen(fields[i]));
		agent_field_put(b->data + at, tags[i], fields[i]);
	}
	return b;
}

static void test_exec_decode(void)
{
	const char *fields[] = {"sh", "FOO=bar", "-c", "/tmp", "nobody", "exit 3"};
	const uint8_t tags[] = {AGENT_ARG, AGENT_ENV, AGENT_ARG, AGENT_CWD, AGENT_USER, AGENT_ARG};
	GByteArray *b = exec_request(fields, tags, G_N_ELEMENTS(fields));
	struct agent_exec e;
	const char *why = NULL;

	g_assert_true(agent_exec_decode(b->data, b->len, &e, &why));
	g_assert_cmpstr(e.argv[0], ==, "sh");
	g_assert_cmpstr(e.argv[1], ==, "-c");
	g_assert_cmpstr(e.argv[2], ==, "exit 3");
	g_assert_null(e.argv[3]);
	g_assert_cmpstr(e.env[0], ==, "FOO=bar");
	g_assert_null(e.env[1]);
	g_assert_cmpstr(e.cwd, ==, "/tmp");
	g_assert_cmpstr(e.user, ==, "nobody");
	agent_exec_free(&e);
	/* Cut anywhere: a request only after a whole field (the first one is "sh"). */
	unsigned int whole = 0;
	for (guint len = 0; len < b->len; len++) {
		if (agent_exec_decode(b->data, len, &e, &why)) {
			agent_exec_free(&e);
			whole++;
		}
	}
	g_assert_cmpuint(whole, ==, 5);
	g_byte_array_unref(b);
}

static void expect_refused(const char *const *fields, const uint8_t *tags, size_t n,
                           const char *want)
{
	GByteArray *b = exec_request(fields, tags, n);
	struct agent_exec e;
	const char *why = NULL;

	g_assert_false(agent_exec_decode(b->data, b->len, &e, &why));
	g_assert_cmpstr(why, ==, want);
	g_byte_array_unref(b);
}

static void test_exec_refused(void)
{
	const char *f[] = {"a", "b", "c"};

	expect_refused(f, (const uint8_t[]){AGENT_ENV, AGENT_CWD}, 2, "no program to run");
	expect_refused(f, (const uint8_t[]){AGENT_ARG, 9}, 2, "unknown field");
	expect_refused(f, (const uint8_t[]){AGENT_ARG, AGENT_CWD, AGENT_CWD}, 3,
	               "more than one directory or user");
	expect_refused(f, (const uint8_t[]){AGENT_ARG, AGENT_USER, AGENT_USER}, 3,
	               "more than one directory or user");
	/* A NUL inside a field; a length past the end. */
	uint8_t nul[] = {AGENT_ARG, 3, 0, 0, 0, 'a', 0, 'b'};
	uint8_t past[] = {AGENT_ARG, 9, 0, 0, 0, 'a'};
	struct agent_exec e;
	const char *why;
	g_assert_false(agent_exec_decode(nul, sizeof(nul), &e, &why));
	g_assert_false(agent_exec_decode(past, sizeof(past), &e, &why));
	g_assert_false(agent_exec_decode(past, 3, &e, &why));
}

/*
 * Fields of any tag, with lengths that mostly match their bytes, now and
 * then a NUL inside, cut anywhere or overwritten (the same every run).
 */
static size_t random_fields(GRand *g, uint8_t *buf, size_t size)
{
	size_t len = 0;

	for (int i = g_rand_int_range(g, 0, 6); i > 0; i--) {
		uint32_t flen = (uint32_t)g_rand_int_range(g, 0, 20);
		if (len + 5 + flen > size)
			break;
		uint32_t claim = g_rand_int_range(g, 0, 8) ? flen : g_rand_int(g);
		buf[len] = (uint8_t)g_rand_int_range(g, 0, 6);
		memcpy(buf + len + 1, &claim, 4);
		for (uint32_t j = 0; j < flen; j++)
			buf[len + 5 + j] = g_rand_int_range(g, 0, 64) ? 'a' + (uint8_t)(j % 26) : 0;
		len += 5 + flen;
	}
	if (!g_rand_int_range(g, 0, 8))
		len = (size_t)g_rand_int_range(g, 0, (gint32)len + 1);
	if (len && !g_rand_int_range(g, 0, 8))
		buf[g_rand_int_range(g, 0, (gint32)len)] = (uint8_t)g_rand_int(g);
	return len;
}

/* Random requests and frames: decoded or refused with a reason, never past the buffer. */
static void test_hostile_bytes(void)
{
	GRand *g = g_rand_new_with_seed(0x6167);
	uint8_t buf[512];
	unsigned int decoded = 0;

	for (int n = 0; n < 20000; n++) {
		size_t len = random_fields(g, buf, sizeof(buf));
		struct agent_frame f;
		long used = agent_frame_parse(buf, len, &f);
		g_assert_true(used <= (long)len);
		if (used > 0)
			g_assert_cmpuint(5 + f.len, ==, (size_t)used);
		struct agent_exec e;
		const char *why = NULL;
		if (agent_exec_decode(buf, (uint32_t)len, &e, &why)) {
			g_assert_nonnull(e.argv[0]);
			agent_exec_free(&e);
			decoded++;
		} else {
			g_assert_nonnull(why);
		}
	}
	g_assert_cmpuint(decoded, >, 0);
	g_rand_free(g);
}

/* HELLO, RESIZE, the PTY field and EXIT: each its length, its range, its version. */
static void test_small_decoders(void)
{
	const char *why = NULL;
	uint32_t version, value;
	uint8_t how;
	struct agent_winsize ws;
	char text[16];

	g_assert_true(agent_hello_decode((const uint8_t *)"\1\0\0\0", 4, &version, &why));
	g_assert_cmpuint(version, ==, 1);
	g_assert_true(agent_hello_decode((const uint8_t *)"\2\0\0\0", 4, &version, &why));
	g_assert_true(agent_hello_decode((const uint8_t *)"\3\0\0\0", 4, &version, &why));
	g_assert_false(agent_hello_decode((const uint8_t *)"\4\0\0\0", 4, &version, &why));
	g_assert_false(agent_hello_decode((const uint8_t *)"\0\0\0\0", 4, &version, &why));
	g_assert_false(agent_hello_decode((const uint8_t *)"\2\0\0\0\0", 5, &version, &why));
	g_assert_false(agent_hello_decode((const uint8_t *)"\2\0\0", 3, &version, &why));
	g_assert_false(agent_hello_decode((const uint8_t *)"\1\0\0\1", 4, &version, &why));

	uint8_t r[4];
	agent_resize_encode(r, (struct agent_winsize){33, 111});
	g_assert_true(agent_resize_decode(r, 4, &ws, &why));
	g_assert_cmpuint(ws.rows, ==, 33);
	g_assert_cmpuint(ws.cols, ==, 111);
	g_assert_false(agent_resize_decode(r, 3, &ws, &why));
	g_assert_false(agent_resize_decode(r, 5, &ws, &why));
	agent_resize_encode(r, (struct agent_winsize){0, 80});
	g_assert_false(agent_resize_decode(r, 4, &ws, &why));
	agent_resize_encode(r, (struct agent_winsize){24, AGENT_MAX_PTY + 1});
	g_assert_false(agent_resize_decode(r, 4, &ws, &why));

	agent_pty_format(text, (struct agent_winsize){4096, 1});
	g_assert_cmpstr(text, ==, "4096 1");
	g_assert_true(agent_pty_parse(text, &ws));
	g_assert_cmpuint(ws.rows, ==, 4096);
	const char *bad[] = {"",        "24",       "24 ",   " 24 80", "24  80", "24 80 ",  "0 80",
	                     "24 4097", "99999 80", "24 8x", "-1 80",  "24 +80", "00024 80"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_false(agent_pty_parse(bad[i], &ws));

	uint8_t e[5] = {AGENT_EXITED, 42, 0, 0, 0};
	g_assert_true(agent_exit_decode(e, 5, &how, &value, &why));
	g_assert_cmpuint(value, ==, 42);
	g_assert_false(agent_exit_decode(e, 4, &how, &value, &why));
	e[2] = 1; /* 298: no exit status */
	g_assert_false(agent_exit_decode(e, 5, &how, &value, &why));
	uint8_t k[5] = {AGENT_KILLED, 65, 0, 0, 0};
	g_assert_false(agent_exit_decode(k, 5, &how, &value, &why));
	k[1] = 9;
	g_assert_true(agent_exit_decode(k, 5, &how, &value, &why));
	k[0] = 7;
	g_assert_false(agent_exit_decode(k, 5, &how, &value, &why));
}

/* The PTY field in an EXEC: one, well-formed, and it stands in for ARG. */
static void test_exec_pty(void)
{
	struct agent_exec e;
	const char *why = NULL;
	const char *f[] = {"33 111", "husk", "x"};
	GByteArray *b = exec_request(f, (const uint8_t[]){AGENT_PTY, AGENT_USER}, 2);

	g_assert_true(agent_exec_decode(b->data, b->len, &e, &why));
	g_assert_true(e.pty);
	g_assert_null(e.argv[0]); /* the login shell */
	g_assert_cmpuint(e.rows, ==, 33);
	g_assert_cmpuint(e.cols, ==, 111);
	agent_exec_free(&e);
	g_byte_array_unref(b);
	expect_refused(f, (const uint8_t[]){AGENT_PTY, AGENT_PTY}, 2, "more than one terminal");
	const char *bad[] = {"33x111", "x"};
	expect_refused(bad, (const uint8_t[]){AGENT_PTY, AGENT_ARG}, 2,
	               "a terminal size is not ROWS COLS (1 to 4096 each)");
}

/* Random bytes for the small decoders: an answer, never a read past the payload. */
static void test_hostile_small(void)
{
	GRand *g = g_rand_new_with_seed(0x7074);
	unsigned int ok = 0;

	for (int n = 0; n < 20000; n++) {
		uint32_t len = (uint32_t)g_rand_int_range(g, 0, 8);
		uint8_t *p = g_malloc(len ? len : 1); /* exactly len: ASan sees an overread */
		char text[10];
		const char *why = NULL;
		uint32_t v;
		uint8_t how;
		struct agent_winsize ws;

		for (uint32_t i = 0; i < len; i++)
			p[i] = g_rand_int_range(g, 0, 4) ? (uint8_t)g_rand_int_range(g, 0, 10)
			                                 : (uint8_t)g_rand_int(g);
		ok += agent_hello_decode(p, len, &v, &why);
		ok += agent_resize_decode(p, len, &ws, &why);
		ok += agent_exit_decode(p, len, &how, &v, &why);
		for (uint32_t i = 0; i < len && i < sizeof(text) - 1; i++)
			text[i] = (char)(g_rand_int_range(g, 0, 3) ? '0' + p[i] % 10 : ' ');
		text[MIN(len, sizeof(text) - 1)] = '\0';
		if (agent_pty_parse(text, &ws))
			g_assert_true(ws.rows >= 1 && ws.cols >= 1 && ws.rows <= AGENT_MAX_PTY &&
			              ws.cols <= AGENT_MAX_PTY);
		g_free(p);
	}
	g_assert_cmpuint(ok, >, 0);
	g_rand_free(g);
}

/* ---- a session --------------------------------------------------------------- */

struct host {
	int fd;
	pid_t agent;
	GString *out, *err;
	uint8_t exit_how;
	uint32_t exit_value;
	char *error;
};

static void read_exact(int fd, void *buf, size_t len)
{
	g_assert_cmpint(recv(fd, buf, len, MSG_WAITALL), ==, (ssize_t)len);
}

/* The next frame from the agent; its payload in a new buffer. */
static uint8_t next_frame(struct host *h, GByteArray *payload)
{
	uint8_t hdr[5];

	read_exact(h->fd, hdr, sizeof(hdr));
	uint32_t body = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	g_assert_cmpuint(body, >=, 1);
	g_assert_cmpuint(body, <=, AGENT_MAX_BODY);
	g_byte_array_set_size(payload, body - 1);
	if (body > 1) /* a read of nothing would wait for the next frame's bytes */
		read_exact(h->fd, payload->data, body - 1);
	return hdr[4];
}

static void send_frame(struct host *h, uint8_t type, const void *p, uint32_t len)
{
	uint8_t hdr[5];

	agent_frame_header(hdr, type, len);
	g_assert_cmpint(write(h->fd, hdr, 5), ==, 5);
	g_assert_cmpint(write(h->fd, p, len), ==, (ssize_t)len);
}

static void host_start(struct host *h)
{
	int sv[2];
	GByteArray *p = g_byte_array_new();

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	h->agent = fork();
	if (h->agent == 0) {
		close(sv[0]);
		agent_serve(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	h->fd = sv[0];
	g_assert_cmpuint(next_frame(h, p), ==, AGENT_HELLO);
	g_assert_cmpuint(p->len, ==, 4);
	g_assert_cmpuint(p->data[0], ==, AGENT_VERSION);
	g_byte_array_unref(p);
	h->out = g_string_new(NULL);
	h->err = g_string_new(NULL);
}

static void host_stop(struct host *h)
{
	int status;

	close(h->fd);
	g_assert_cmpint(waitpid(h->agent, &status, 0), ==, h->agent);
	g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	g_string_free(h->out, TRUE);
	g_string_free(h->err, TRUE);
	g_free(h->error);
}

/* Sends EXEC, then reads until EXIT or ERROR; true for EXIT. */
static bool run(struct host *h, const char *const *fields, const uint8_t *tags, size_t n,
                const char *input, int sig)
{
	GByteArray *req = exec_request(fields, tags, n), *p = g_byte_array_new();
	bool out_end = false, err_end = false;
	uint8_t type;

	g_string_truncate(h->out, 0);
	g_string_truncate(h->err, 0);
	g_clear_pointer(&h->error, g_free);
	send_frame(h, AGENT_EXEC, req->data, req->len);
	for (size_t off = 0, len = input ? strlen(input) : 0; off < len; off += AGENT_MAX_BODY - 1)
		send_frame(h, AGENT_STDIN, input + off,
		           (uint32_t)MIN(len - off, AGENT_MAX_BODY - 1));
	if (input)
		send_frame(h, AGENT_STDIN, "", 0);
	if (sig) {
		uint8_t s[4] = {(uint8_t)sig, 0, 0, 0};
		send_frame(h, AGENT_SIGNAL, s, 4);
	}
	while ((type = next_frame(h, p)) == AGENT_STDOUT || type == AGENT_STDERR) {
		bool *end = type == AGENT_STDOUT ? &out_end : &err_end;
		g_assert_false(*end);
		*end = p->len == 0;
		g_string_append_len(type == AGENT_STDOUT ? h->out : h->err, (char *)p->data,
		                    p->len);
	}
	if (type == AGENT_EXIT) {
		g_assert_true(out_end && err_end); /* all output comes before EXIT */
		g_assert_cmpuint(p->len, ==, 5);
		h->exit_how = p->data[0];
		h->exit_value =
		    p->data[1] | p->data[2] << 8 | p->data[3] << 16 | (uint32_t)p->data[4] << 24;
	} else {
		g_assert_cmpuint(type, ==, AGENT_ERROR);
		h->error = g_strndup((char *)p->data, p->len);
	}
	g_byte_array_unref(req);
	g_byte_array_unref(p);
	return type == AGENT_EXIT;
}

static void test_session_exec(void)
{
	struct host h = {0};
	const char *f[] = {"sh", "-c",
	                   "echo out; echo err >&2; pwd; echo $FOO; echo ${PATH:+path}; exit 3",
	                   "/tmp", "FOO=bar"};
	const uint8_t t[] = {AGENT_ARG, AGENT_ARG, AGENT_ARG, AGENT_CWD, AGENT_ENV};

	host_start(&h);
	g_assert_true(run(&h, f, t, G_N_ELEMENTS(f), NULL, 0));
	g_assert_cmpstr(h.out->str, ==, "out\n/tmp\nbar\npath\n");
	g_assert_cmpstr(h.err->str, ==, "err\n");
	g_assert_cmpuint(h.exit_how, ==, AGENT_EXITED);
	g_assert_cmpuint(h.exit_value, ==, 3);
	/* Failures are answered; the session goes on. */
	const char *missing[] = {"/no/such/program"};
	g_assert_false(run(&h, missing, (const uint8_t[]){AGENT_ARG}, 1, NULL, 0));
	g_assert_true(g_str_has_prefix(h.error, "exec /no/such/program: "));
	const char *nodir[] = {"true", "/no/such/dir"};
	g_assert_false(run(&h, nodir, (const uint8_t[]){AGENT_ARG, AGENT_CWD}, 2, NULL, 0));
	g_assert_true(g_str_has_prefix(h.error, "chdir /no/such/dir: "));
	const char *nouser[] = {"true", "no-such-user-here"};
	g_assert_false(run(&h, nouser, (const uint8_t[]){AGENT_ARG, AGENT_USER}, 2, NULL, 0));
	g_assert_true(g_str_has_prefix(h.error, "user no-such-user-here: "));
	/* Standard input, then its end. */
	const char *cat[] = {"cat"};
	g_assert_true(run(&h, cat, (const uint8_t[]){AGENT_ARG}, 1, "hello", 0));
	g_assert_cmpstr(h.out->str, ==, "hello");
	g_assert_cmpuint(h.exit_value, ==, 0);
	/* Ctrl-C: the command ends by the signal, and says so, input it never read or not. */
	const char *sleeper[] = {"sleep", "30"};
	g_assert_true(run(&h, sleeper, (const uint8_t[]){AGENT_ARG, AGENT_ARG}, 2, NULL, SIGINT));
	g_assert_cmpuint(h.exit_how, ==, AGENT_KILLED);
	g_assert_cmpuint(h.exit_value, ==, SIGINT);
	/* More than its pipe holds, less than the agent and the socket take meanwhile. */
	char *unread = g_strnfill(150 * 1024, 'x');
	g_assert_true(run(&h, sleeper, (const uint8_t[]){AGENT_ARG, AGENT_ARG}, 2, unread, SIGINT));
	g_assert_cmpuint(h.exit_how, ==, AGENT_KILLED);
	g_free(unread);
	host_stop(&h);
}

/* A command on a terminal: its size, a new size, one stream, its status. */
static void test_session_pty(void)
{
	struct host h = {0};
	const char *f[] = {"sh", "-c", "stty size; read x; stty size; exit 4", "33 111"};
	const uint8_t t[] = {AGENT_ARG, AGENT_ARG, AGENT_ARG, AGENT_PTY};
	GByteArray *req = exec_request(f, t, G_N_ELEMENTS(f)), *p = g_byte_array_new();
	uint8_t r[4], type;

	if (access("/dev/ptmx", R_OK | W_OK) != 0) {
		g_test_skip("no /dev/ptmx here");
		return;
	}
	host_start(&h);
	send_frame(&h, AGENT_EXEC, req->data, req->len);
	/* First its size, then the new one once it asks for a line. */
	while (!strstr(h.out->str, "33 111\r\n")) {
		type = next_frame(&h, p);
		g_assert_cmpuint(type, !=, AGENT_ERROR);
		if (type == AGENT_STDOUT)
			g_string_append_len(h.out, (char *)p->data, p->len);
	}
	agent_resize_encode(r, (struct agent_winsize){40, 100});
	send_frame(&h, AGENT_RESIZE, r, 4);
	send_frame(&h, AGENT_STDIN, "\n", 1);
	while ((type = next_frame(&h, p)) == AGENT_STDOUT || type == AGENT_STDERR) {
		if (type == AGENT_STDERR)
			g_assert_cmpuint(p->len, ==, 0); /* a terminal has one stream */
		g_string_append_len(h.out, (char *)p->data, p->len);
	}
	g_assert_cmpuint(type, ==, AGENT_EXIT);
	g_assert_nonnull(strstr(h.out->str, "40 100\r\n"));
	g_assert_cmpuint(p->data[1], ==, 4);
	/* A size out of range is answered; the session goes on. */
	agent_resize_encode(r, (struct agent_winsize){0, 100});
	send_frame(&h, AGENT_RESIZE, r, 4);
	g_assert_cmpuint(next_frame(&h, p), ==, AGENT_ERROR);
	g_byte_array_unref(req);
	g_byte_array_unref(p);
	host_stop(&h);
}

/* ---- MOUNT and UMOUNT ------------------------------------------------------- */

static void test_mount_decode(void)
{
	const char *f[] = {"husk-m3", "/home/debian/src", "7", ""};
	const uint8_t t[] = {AGENT_TAG, AGENT_PATH, AGENT_SLOT, AGENT_RO};
	GByteArray *b = exec_request(f, t, G_N_ELEMENTS(f));
	struct agent_mount m;
	const char *why = NULL;

	g_assert_true(agent_mount_decode(b->data, b->len, false, &m, &why));
	g_assert_cmpstr(m.tag, ==, "husk-m3");
	g_assert_cmpstr(m.path, ==, "/home/debian/src");
	g_assert_cmpint(m.slot, ==, 7);
	g_assert_true(m.read_only);
	agent_mount_free(&m);
	/* UMOUNT: PATH and SLOT only. */
	g_assert_false(agent_mount_decode(b->data, b->len, true, &m, &why));
	g_byte_array_unref(b);
	b = exec_request(f + 1, t + 1, 2);
	g_assert_true(agent_mount_decode(b->data, b->len, true, &m, &why));
	g_assert_null(m.tag);
	g_assert_false(m.read_only);
	g_assert_cmpint(m.slot, ==, 7);
	agent_mount_free(&m);
	/* MOUNT without SLOT: a device the guest has had since boot. */
	g_assert_false(agent_mount_decode(b->data, b->len, false, &m, &why));
	g_assert_cmpstr(why, ==, "not one TAG");
	g_byte_array_unref(b);
	b = exec_request(f, t, 2);
	g_assert_true(agent_mount_decode(b->data, b->len, false, &m, &why));
	g_assert_cmpint(m.slot, ==, -1);
	agent_mount_free(&m);
	g_byte_array_unref(b);
}

static bool mount_refused(const char *tag, const char *path, const char *slot)
{
	const char *f[3];
	uint8_t t[3];
	size_t n = 0;
	struct agent_mount m;
	const char *why = NULL;

	if (tag)
		f[n] = tag, t[n++] = AGENT_TAG;
	if (path)
		f[n] = path, t[n++] = AGENT_PATH;
	if (slot)
		f[n] = slot, t[n++] = AGENT_SLOT;
	GByteArray *b = exec_request(f, t, n);
	bool ok = agent_mount_decode(b->data, b->len, false, &m, &why);
	g_byte_array_unref(b);
	if (ok)
		agent_mount_free(&m);
	else
		g_assert_nonnull(why);
	return !ok;
}

static void test_mount_refused(void)
{
	char *long_path = g_strnfill(AGENT_MAX_PATH, 'a');
	long_path[0] = '/';

	g_assert_false(mount_refused("t", "/", "0"));
	g_assert_false(mount_refused("t", "/a/..b/.c", "31"));
	g_assert_true(mount_refused("t", "relative", NULL));
	g_assert_true(mount_refused("t", "", NULL));
	g_assert_true(mount_refused("t", "/a/../etc", NULL));
	g_assert_true(mount_refused("t", "/a/./b", NULL));
	g_assert_true(mount_refused("t", "/a/..", NULL));
	g_assert_true(mount_refused("t", long_path, NULL));
	g_assert_true(mount_refused("", "/a", NULL));
	g_assert_true(mount_refused("0123456789012345678901234567890123456", "/a", NULL));
	g_assert_true(mount_refused("t", "/a", "32"));
	g_assert_true(mount_refused("t", "/a", "07"));
	g_assert_true(mount_refused("t", "/a", "-1"));
	g_assert_true(mount_refused("t", "/a", ""));
	g_assert_true(mount_refused("t", NULL, NULL));
	g_assert_true(mount_refused(NULL, "/a", NULL));
	g_free(long_path);
}

/* Random fields as MOUNT and UMOUNT: decoded with sound values, or refused with a reason. */
static void test_mount_hostile(void)
{
	GRand *g = g_rand_new_with_seed(0x6d6e74);
	uint8_t buf[512];
	unsigned int decoded = 0;

	for (int n = 0; n < 20000; n++) {
		bool umount = n & 1;
		/* Half the time a sound start, so that some requests decode. */
		size_t len = n & 2 ? agent_field_put(buf, AGENT_PATH, "/m") : 0;
		if ((n & 2) && !umount)
			len += agent_field_put(buf + len, AGENT_TAG, "t");
		len += random_fields(g, buf + len, sizeof(buf) - len);
		struct agent_mount m;
		const char *why = NULL;
		if (agent_mount_decode(buf, (uint32_t)len, umount, &m, &why)) {
			g_assert_true(agent_path_ok(m.path));
			g_assert_true(umount ? !m.tag : m.tag && strlen(m.tag) <= AGENT_MAX_TAG);
			g_assert_cmpint(m.slot, <=, AGENT_MAX_SLOT);
			agent_mount_free(&m);
			decoded++;
		} else {
			g_assert_nonnull(why);
		}
	}
	g_assert_cmpuint(decoded, >, 0);
	g_rand_free(g);
}

/*
 * A MOUNT that fails (a tag no device has; as an ordinary user, not even
 * allowed) and a malformed UMOUNT are answered with ERROR; the session goes on.
 */
static void test_session_mount_errors(void)
{
	struct host h = {0};
	GByteArray *p = g_byte_array_new();
	char *dir = g_dir_make_tmp("husk-agent-mount-XXXXXX", NULL);
	char *point = g_build_filename(dir, "new", "point", NULL);
	const char *f[] = {"husk-no-such-tag-here", point};
	const uint8_t t[] = {AGENT_TAG, AGENT_PATH};
	GByteArray *req = exec_request(f, t, 2);

	host_start(&h);
	send_frame(&h, AGENT_MOUNT, req->data, req->len);
	g_assert_cmpuint(next_frame(&h, p), ==, AGENT_ERROR);
	g_assert_true(g_str_has_prefix((char *)p->data, "mount of tag husk-no-such-tag-here: "));
	g_assert_true(g_file_test(point, G_FILE_TEST_IS_DIR)); /* the mount point was made */
	send_frame(&h, AGENT_UMOUNT, req->data, req->len);     /* UMOUNT takes no TAG */
	g_assert_cmpuint(next_frame(&h, p), ==, AGENT_ERROR);
	/* A path with no virtio-fs mount: nothing to take down, and done. */
	GByteArray *um = exec_request((const char *[]){dir}, (const uint8_t[]){AGENT_PATH}, 1);
	send_frame(&h, AGENT_UMOUNT, um->data, um->len);
	g_assert_cmpuint(next_frame(&h, p), ==, AGENT_DONE);
	g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));
	g_byte_array_unref(um);
	const char *cmd[] = {"true"};
	g_assert_true(run(&h, cmd, (const uint8_t[]){AGENT_ARG}, 1, NULL, 0));
	host_stop(&h);
	g_byte_array_unref(req);
	g_byte_array_unref(p);
	rmdir(point);
	g_free(point);
	point = g_build_filename(dir, "new", NULL);
	rmdir(point);
	rmdir(dir);
	g_free(point);
	g_free(dir);
}

/* Frames out of place are answered; a broken length ends the stream. */
static void test_session_bad_frames(void)
{
	struct host h = {0};
	GByteArray *p = g_byte_array_new();
	uint8_t sig[4] = {9, 0, 0, 0};

	host_start(&h);
	send_frame(&h, AGENT_STDOUT, "x", 1);
	g_assert_cmpuint(next_frame(&h, p), ==, AGENT_ERROR);
	send_frame(&h, AGENT_SIGNAL, sig, 3);
	g_assert_cmpuint(next_frame(&h, p), ==, AGENT_ERROR);
	send_frame(&h, AGENT_EXEC, "", 0);
	g_assert_cmpuint(next_frame(&h, p), ==, AGENT_ERROR);
	send_frame(&h, AGENT_STDIN, "ignored", 7); /* no command: nowhere to go, no answer */
	const char *f[] = {"true"};
	g_assert_true(run(&h, f, (const uint8_t[]){AGENT_ARG}, 1, NULL, 0));
	g_assert_cmpint(write(h.fd, "\0\0\0\0", 4), ==, 4);
	g_assert_cmpuint(next_frame(&h, p), ==, AGENT_ERROR);
	g_assert_cmpint(read(h.fd, sig, 1), ==, 0); /* and the agent hung up */
	g_byte_array_unref(p);
	host_stop(&h);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	g_test_add_func("/husk-agent/frame-parse", test_frame_parse);
	g_test_add_func("/husk-agent/exec-decode", test_exec_decode);
	g_test_add_func("/husk-agent/exec-refused", test_exec_refused);
	g_test_add_func("/husk-agent/hostile-bytes", test_hostile_bytes);
	g_test_add_func("/husk-agent/small-decoders", test_small_decoders);
	g_test_add_func("/husk-agent/exec-pty", test_exec_pty);
	g_test_add_func("/husk-agent/hostile-small", test_hostile_small);
	g_test_add_func("/husk-agent/session-pty", test_session_pty);
	g_test_add_func("/husk-agent/mount-decode", test_mount_decode);
	g_test_add_func("/husk-agent/mount-refused", test_mount_refused);
	g_test_add_func("/husk-agent/mount-hostile", test_mount_hostile);
	g_test_add_func("/husk-agent/session-mount-errors", test_session_mount_errors);
	g_test_add_func("/husk-agent/session-exec", test_session_exec);
	g_test_add_func("/husk-agent/session-bad-frames", test_session_bad_frames);
	return g_test_run();
}
