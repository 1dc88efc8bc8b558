// SPDX-License-Identifier: MIT
/*
 * husk's end of run --image -t/-i against a real husk-agent session, as
 * husk-init serves it, over the Unix socket husk's vsock device would
 * hand the guest's connection to: input and output byte for byte, the
 * statuses, a terminal, signals, and a guest that misbehaves.
 */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "firmware/husk-agent.h"
#include "vmm/error.h"
#include "vmm/exec_session.h"

struct run {
	char *dir, *sock, *in, *out, *err;
	GMainContext *ctx;
	struct exec_session *s;
	pid_t guest;
	bool guest_done;
	char *why; /* exec_session_status's */
};

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	return fd;
}

/* The guest: husk-init's session process (agent_serve_app on the connection), or 'fake'. */
static void start_guest(struct run *r, void (*fake)(int fd))
{
	r->guest = fork();
	if (r->guest == 0) {
		int fd = connect_to(r->sock);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_IGN);
		if (fake)
			fake(fd);
		else
			agent_serve_app(fd);
		_exit(0);
	}
}

static void on_guest_end(GPid pid, gint status, gpointer data)
{
	((struct run *)data)->guest_done = true;
}

/*
 * Serves a session for 'argv' with 'input' on its stdin until the guest
 * ends; 'signal_at_start' is queued at once, as husk's forwarded SIGTERM.
 */
static int run_session(struct run *r, const char *const *argv, bool tty, bool interactive,
                       const char *input, gsize input_len, int signal_at_start,
                       void (*fake)(int fd))
{
	static const char *const env[] = {"PATH=/usr/bin:/bin", "GREETING=hi", NULL};
	GError *err = NULL;
	const char *why;

	r->dir = g_dir_make_tmp("husk-session-XXXXXX", NULL);
	r->sock = g_build_filename(r->dir, "vsock_1024", NULL);
	r->in = g_build_filename(r->dir, "in", NULL);
	r->out = g_build_filename(r->dir, "out", NULL);
	r->err = g_build_filename(r->dir, "err", NULL);
	g_assert_true(g_file_set_contents(r->in, input ? input : "", (gssize)input_len, NULL));
	int in = open(r->in, O_RDONLY | O_CLOEXEC);
	int out = open(r->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int errfd = open(r->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const struct exec_session_opts o = {.argv = argv,
	                                    .env = env,
	                                    .tty = tty,
	                                    .interactive = interactive,
	                                    .in_fd = in,
	                                    .out_fd = out,
	                                    .err_fd = errfd};
	r->ctx = g_main_context_new();
	r->s = exec_session_new(r->sock, &o, &err);
	g_assert_no_error(err);
	exec_session_attach(r->s, r->ctx);
	if (signal_at_start)
		exec_session_signal(r->s, signal_at_start);
	start_guest(r, fake);
	GSource *child = g_child_watch_source_new(r->guest);
	g_source_set_callback(child, G_SOURCE_FUNC(on_guest_end), r, NULL);
	g_source_attach(child, r->ctx);
	while (!r->guest_done)
		g_main_context_iteration(r->ctx, TRUE);
	/* What the guest sent before it ended (its hang-up too) is still to be read. */
	while (g_main_context_iteration(r->ctx, FALSE))
		;
	g_source_destroy(child);
	g_source_unref(child);
	int status = exec_session_status(r->s, &why);
	r->why = g_strdup(why);
	exec_session_free(r->s);
	g_assert_false(g_file_test(r->sock, G_FILE_TEST_EXISTS));
	close(in);
	close(out);
	close(errfd);
	return status;
}

static char *contents(const char *path, gsize *len)
{
	char *text;

	g_assert_true(g_file_get_contents(path, &text, len, NULL));
	return text;
}

static void run_free(struct run *r)
{
	g_unlink(r->in);
	g_unlink(r->out);
	g_unlink(r->err);
	g_rmdir(r->dir);
	g_free(r->in);
	g_free(r->out);
	g_free(r->err);
	g_free(r->sock);
	g_free(r->dir);
	g_free(r->why);
	g_main_context_unref(r->ctx);
}

/* -i: 2 MiB through cat and back, stderr apart, the app's exit status. */
static void test_interactive(void)
{
	const char *const argv[] = {"sh", "-c", "cat; echo \"err $GREETING\" >&2; exit 3", NULL};
	gsize len = 2 * 1024 * 1024 + 5, out_len;
	char *data = g_malloc(len);
	GRand *g = g_rand_new_with_seed(11);
	struct run r = {0};

	for (gsize i = 0; i < len; i++)
		data[i] = (char)g_rand_int(g);
	g_assert_cmpint(run_session(&r, argv, false, true, data, len, 0, NULL), ==, 3);
	char *out = contents(r.out, &out_len), *err = contents(r.err, NULL);
	g_assert_cmpmem(out, out_len, data, len);
	g_assert_cmpstr(err, ==, "err hi\n");
	g_free(out);
	g_free(err);
	run_free(&r);
	g_free(data);
	g_rand_free(g);
}

/*
 * The run ends with the app, as a container with its main process: what it
 * left in the background holding its output or terminal does not keep it.
 */
static void test_ends_with_app(gconstpointer data)
{
	const bool tty = GPOINTER_TO_INT(data);
	char *pid_file = g_strdup_printf("%s/husk-session-bg-%d", g_get_tmp_dir(), (int)getpid());
	char *script = g_strdup_printf("sleep 30 & echo $! >%s; echo bye; exit 5", pid_file);
	const char *const argv[] = {"sh", "-c", script, NULL};
	struct run r = {0};

	if (tty && access("/dev/ptmx", R_OK | W_OK) != 0) {
		g_test_skip("no /dev/ptmx here");
		return;
	}
	int64_t t0 = g_get_monotonic_time();
	g_assert_cmpint(run_session(&r, argv, tty, !tty, NULL, 0, 0, NULL), ==, 5);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
	char *out = contents(r.out, NULL);
	g_assert_cmpstr(out, ==, tty ? "bye\r\n" : "bye\n");
	g_free(out);
	run_free(&r);
	/* husk-init would end it with the VM; here it is ours to end. */
	char *pid = contents(pid_file, NULL);
	kill((pid_t)atoi(pid), SIGKILL);
	g_unlink(pid_file);
	g_free(pid);
	g_free(pid_file);
	g_free(script);
}

/* -t without -i: husk's stdin is not read, the app's terminal has nothing typed. */
static void test_tty_no_stdin(void)
{
	const char *const argv[] = {"sh", "-c", "timeout 1 cat; echo done", NULL};
	struct run r = {0};

	if (access("/dev/ptmx", R_OK | W_OK) != 0) {
		g_test_skip("no /dev/ptmx here");
		return;
	}
	run_session(&r, argv, true, false, "never read\n", 11, 0, NULL);
	char *out = contents(r.out, NULL);
	g_assert_cmpstr(out, ==, "done\r\n");
	g_free(out);
	run_free(&r);
}

static void test_statuses(void)
{
	static const struct {
		const char *const argv[4];
		int signo, status;
	} cases[] = {
	    {{"sh", "-c", "exit 42"}, 0, 42},
	    {{"sh", "-c", "kill -KILL $$"}, 0, 128 + SIGKILL},
	    /* husk's forwarded SIGTERM, queued before the guest is even there. */
	    {{"sleep", "30"}, SIGTERM, 128 + SIGTERM},
	    /* The app that cannot start: as husk-init says it without a session. */
	    {{"/no/such/program"}, 0, 127},
	    {{"/dev/null"}, 0, 126},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct run r = {0};
		int status =
		    run_session(&r, cases[i].argv, false, false, NULL, 0, cases[i].signo, NULL);
		g_assert_cmpint(status, ==, cases[i].status);
		run_free(&r);
	}
}

/* -t: the app's 0, 1 and 2 are a terminal of the size asked for, its output CR LF. */
static void test_tty(void)
{
	const char *const argv[] = {
	    "sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo tty; stty size; echo e >&2",
	    NULL};
	struct run r = {0};

	if (access("/dev/ptmx", R_OK | W_OK) != 0) {
		g_test_skip("no /dev/ptmx here");
		return;
	}
	g_assert_cmpint(run_session(&r, argv, true, false, NULL, 0, 0, NULL), ==, 0);
	char *out = contents(r.out, NULL), *err = contents(r.err, NULL);
	/* husk's streams are no terminal: the default size, as docker's. */
	g_assert_cmpstr(out, ==, "tty\r\n24 80\r\ne\r\n");
	g_assert_cmpstr(err, ==, "");
	g_free(out);
	g_free(err);
	run_free(&r);
}

/* The size husk asks for is its terminal's: the first of its streams that is one. */
static void test_winsize(void)
{
	struct winsize w = {.ws_row = 33, .ws_col = 111};
	int master, tty, null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	struct agent_winsize ws = exec_session_winsize(&null, 1);
	g_assert_cmpint(ws.rows, ==, 24);
	g_assert_cmpint(ws.cols, ==, 80);
	if (openpty(&master, &tty, NULL, NULL, &w) < 0) {
		close(null);
		g_test_skip("no terminal to be had here");
		return;
	}
	const int fds[] = {null, tty};
	ws = exec_session_winsize(fds, 2);
	g_assert_cmpint(ws.rows, ==, 33);
	g_assert_cmpint(ws.cols, ==, 111);
	close(master);
	close(tty);
	close(null);
}

/* -it on a terminal: raw while served (no echo, no line editing, no ^C), then as it was. */
static void test_raw_terminal(void)
{
	const char *const argv[] = {"true", NULL}, *const env[] = {NULL};
	char *dir = g_dir_make_tmp("husk-session-XXXXXX", NULL);
	char *sock = g_build_filename(dir, "vsock_1024", NULL);
	struct termios t;
	int master, tty;
	GError *err = NULL;
	const char *why;

	if (openpty(&master, &tty, NULL, NULL, NULL) < 0) {
		g_test_skip("no terminal to be had here");
		g_rmdir(dir);
		g_free(sock);
		g_free(dir);
		return;
	}
	const struct exec_session_opts o = {.argv = argv,
	                                    .env = env,
	                                    .tty = true,
	                                    .interactive = true,
	                                    .in_fd = tty,
	                                    .out_fd = tty,
	                                    .err_fd = tty};
	GMainContext *ctx = g_main_context_new();
	struct exec_session *s = exec_session_new(sock, &o, &err);
	g_assert_no_error(err);
	g_assert_cmpint(tcgetattr(tty, &t), ==, 0);
	g_assert_true(t.c_lflag & ICANON); /* not before the VM runs */
	exec_session_attach(s, ctx);
	g_assert_cmpint(tcgetattr(tty, &t), ==, 0);
	g_assert_false(t.c_lflag & (ICANON | ECHO | ISIG));
	g_assert_cmpint(exec_session_status(s, &why), ==, -1);
	g_assert_null(why); /* no guest came */
	g_assert_cmpint(tcgetattr(tty, &t), ==, 0);
	g_assert_true((t.c_lflag & (ICANON | ECHO | ISIG)) == (ICANON | ECHO | ISIG));
	exec_session_free(s);
	g_main_context_unref(ctx);
	close(master);
	close(tty);
	g_rmdir(dir);
	g_free(sock);
	g_free(dir);
}

/* The request: the agent's own decoder reads back what husk asks for. */
static void test_request(void)
{
	const char *const argv[] = {"ls", "-l", NULL}, *const env[] = {"A=1", NULL};
	const struct agent_winsize ws = {33, 111};
	struct agent_exec e;
	const char *why;
	GError *err = NULL;

	GByteArray *req = exec_session_request(argv, env, &ws, &err);
	g_assert_no_error(err);
	g_assert_true(agent_exec_decode(req->data, req->len, &e, &why));
	g_assert_cmpstr(e.argv[0], ==, "ls");
	g_assert_cmpstr(e.argv[1], ==, "-l");
	g_assert_null(e.argv[2]);
	g_assert_cmpstr(e.env[0], ==, "A=1");
	g_assert_true(e.pty);
	g_assert_cmpint(e.rows, ==, 33);
	g_assert_cmpint(e.cols, ==, 111);
	agent_exec_free(&e);
	g_byte_array_unref(req);
	/* Over one frame: refused with one line. */
	char *big = g_strnfill(AGENT_MAX_BODY, 'x');
	const char *const big_env[] = {big, NULL};
	g_assert_null(exec_session_request(argv, big_env, NULL, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_EXEC_FAILED);
	g_assert_null(strchr(err->message, '\n'));
	g_error_free(err);
	g_free(big);
}

/* A guest that says HELLO and hangs up, one that sends garbage. */
static void hello_then_gone(int fd)
{
	uint8_t hello[9] = {0};

	agent_frame_header(hello, AGENT_HELLO, 4);
	hello[5] = AGENT_VERSION;
	g_assert_cmpint(write(fd, hello, sizeof(hello)), ==, sizeof(hello));
}

static void garbage(int fd)
{
	g_assert_cmpint(write(fd, "\0\0\0\0junk", 8), ==, 8);
	/* Held until husk hangs up: it must not wait for more. */
	char c;
	while (read(fd, &c, 1) > 0)
		;
}

static void test_bad_guest(void)
{
	const char *const argv[] = {"true", NULL};
	static const struct {
		void (*fake)(int fd);
		const char *why;
	} cases[] = {
	    {hello_then_gone, "the agent went away before the command ended"},
	    {garbage, "the agent broke its framing"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct run r = {0};
		g_assert_cmpint(run_session(&r, argv, false, true, "x", 1, 0, cases[i].fake), ==,
		                -1);
		g_assert_cmpstr(r.why, ==, cases[i].why);
		run_free(&r);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	g_test_add_func("/exec-session/interactive", test_interactive);
	g_test_add_func("/exec-session/tty-no-stdin", test_tty_no_stdin);
	g_test_add_func("/exec-session/statuses", test_statuses);
	g_test_add_data_func("/exec-session/ends-with-app/pipes", GINT_TO_POINTER(0),
	                     test_ends_with_app);
	g_test_add_data_func("/exec-session/ends-with-app/tty", GINT_TO_POINTER(1),
	                     test_ends_with_app);
	g_test_add_func("/exec-session/tty", test_tty);
	g_test_add_func("/exec-session/winsize", test_winsize);
	g_test_add_func("/exec-session/request", test_request);
	g_test_add_func("/exec-session/raw-terminal", test_raw_terminal);
	g_test_add_func("/exec-session/bad-guest", test_bad_guest);
	return g_test_run();
}
