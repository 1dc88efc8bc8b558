// SPDX-License-Identifier: MIT
/*
 * The host's end of husk run --image -t / -i (exec_session.h), on the
 * VM's I/O loop. The frames are agent_call.c's, as for husk exec NAME
 * and husk shell; what differs is who moves the bytes: glib sources for
 * the connection, husk's stdin and SIGWINCH, so that the loop that serves
 * the guest's devices serves its session too, with no thread of its own.
 *
 * What goes to the guest waits in the call's queue and is written as the
 * socket takes it; stdin is read only while that queue is short, so a big
 * input waits in its pipe, not in husk. The connection is the guest's:
 * one is taken, the frames it sends are checked by agent_call.c, and it
 * is closed once the app's EXIT (or anything else that ends the call)
 * arrives, which is husk-init's cue to power off.
 */
#include "vmm/exec_session.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/console.h"
#include "vmm/error.h"
#include "vmm/instance/agent_call.h"
#include "vmm/seccomp_threads.h"

#define OUT_HIGH (256 * 1024) /* stdin waits while this much is queued for the guest */
#define IN_CHUNK (AGENT_MAX_BODY - 1)

struct exec_session {
	char *path;
	int listen_fd, fd; /* fd: the guest's connection, once there; -1 before and after */
	int in_fd, size_fds[3];
	bool tty, stdin_open, began;
	bool want_raw, raw; /* -it: husk's terminal raw while the VM runs, and whether it is */
	bool send_failed;   /* the guest's end is gone: what it sent may still be read */
	GMainContext *ctx;
	GSource *accept_src, *conn_src, *send_src, *stdin_src, *winch_src;
	struct agent_call call;
	uint8_t *in_buf;
};

GByteArray *exec_session_request(const char *const *argv, const char *const *env,
                                 const struct agent_winsize *pty, GError **err)
{
	GByteArray *req = g_byte_array_new();
	char size[16];

	for (const char *const *a = argv; *a; a++)
		agent_call_field(req, AGENT_ARG, *a);
	for (const char *const *e = env; e && *e; e++)
		agent_call_field(req, AGENT_ENV, *e);
	if (pty) {
		agent_pty_format(size, *pty);
		agent_call_field(req, AGENT_PTY, size);
	}
	if (req->len <= AGENT_MAX_BODY - 1)
		return req;
	husk_fail(err, HUSK_EXIT_EXEC_FAILED,
	          "run: -t/-i: the command and its environment are %u bytes, over the %u a "
	          "terminal session takes",
	          req->len, AGENT_MAX_BODY - 1);
	g_byte_array_unref(req);
	return NULL;
}

struct agent_winsize exec_session_winsize(const int *fds, int n)
{
	struct winsize w;

	for (int i = 0; i < n; i++)
		if (ioctl(fds[i], TIOCGWINSZ, &w) == 0 && w.ws_row && w.ws_col)
			return (struct agent_winsize){MIN(w.ws_row, AGENT_MAX_PTY),
			                              MIN(w.ws_col, AGENT_MAX_PTY)};
	return (struct agent_winsize){24, 80};
}

static void drop(GSource **s)
{
	if (!*s)
		return;
	g_source_destroy(*s);
	g_source_unref(*s);
	*s = NULL;
}

static GSource *watch(struct exec_session *s, int fd, GIOCondition cond, GUnixFDSourceFunc fn)
{
	GSource *src = g_unix_fd_source_new(fd, cond);

	g_source_set_callback(src, G_SOURCE_FUNC(fn), s, NULL);
	g_source_attach(src, s->ctx);
	return src;
}

/* The call is over: the guest hears the hang-up and powers off. */
static void hang_up(struct exec_session *s)
{
	drop(&s->conn_src);
	drop(&s->send_src);
	drop(&s->stdin_src);
	if (s->fd >= 0) {
		shutdown(s->fd, SHUT_RDWR);
		close(s->fd);
		s->fd = -1;
	}
}

static void update(struct exec_session *s);

static gboolean on_send(gint fd, GIOCondition cond, gpointer data)
{
	struct exec_session *s = data;
	GByteArray *out = s->call.out;
	ssize_t n = send(fd, out->data, out->len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n > 0)
		agent_call_sent(&s->call, (size_t)n);
	/* The guest's end is gone; on_conn reads what it sent before, and its end. */
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		s->send_failed = true;
	update(s);
	return G_SOURCE_CONTINUE;
}

static gboolean on_stdin(gint fd, GIOCondition cond, gpointer data)
{
	struct exec_session *s = data;
	ssize_t n = read(fd, s->in_buf, IN_CHUNK);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return G_SOURCE_CONTINUE;
	/* Its end, or an error that will not pass (a terminal gone): the app's stdin ends. */
	agent_call_queue(&s->call, AGENT_STDIN, s->in_buf, n > 0 ? (uint32_t)n : 0);
	if (n <= 0)
		s->stdin_open = false;
	update(s);
	return G_SOURCE_CONTINUE;
}

/* The watches as the queue and the call's state want them. */
static void update(struct exec_session *s)
{
	if (s->fd < 0)
		return;
	bool queued = s->call.out->len > 0 && !s->send_failed;
	if (queued && !s->send_src)
		s->send_src = watch(s, s->fd, G_IO_OUT, on_send);
	else if (!queued)
		drop(&s->send_src);
	bool want_in = s->stdin_open && s->call.out->len < OUT_HIGH;
	if (want_in && !s->stdin_src)
		s->stdin_src = watch(s, s->in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin);
	else if (!want_in)
		drop(&s->stdin_src);
}

static gboolean on_conn(gint fd, GIOCondition cond, gpointer data)
{
	struct exec_session *s = data;
	size_t room;
	uint8_t *at = agent_call_room(&s->call, &room);
	ssize_t n = read(fd, at, room);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return G_SOURCE_CONTINUE;
	if (agent_call_received(&s->call, n > 0 ? (size_t)n : 0))
		update(s);
	else
		hang_up(s);
	return G_SOURCE_CONTINUE;
}

/* The guest's connection: the first is the session; no other is taken. */
static gboolean on_accept(gint fd, GIOCondition cond, gpointer data)
{
	struct exec_session *s = data;
	int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (conn < 0)
		return G_SOURCE_CONTINUE;
	s->fd = conn;
	s->began = true;
	s->conn_src = watch(s, conn, G_IO_IN | G_IO_HUP | G_IO_ERR, on_conn);
	update(s);
	drop(&s->accept_src);
	close(s->listen_fd);
	s->listen_fd = -1;
	return G_SOURCE_CONTINUE;
}

static gboolean on_winch(gpointer data)
{
	struct exec_session *s = data;

	if (s->fd >= 0) {
		agent_call_queue_resize(&s->call, exec_session_winsize(s->size_fds, 3));
		update(s);
	}
	return G_SOURCE_CONTINUE;
}

static int listen_at(const char *path, GError **err)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(a.sun_path)) {
		husk_fail(err, HUSK_EXIT_EXEC_FAILED, "run: %s: too long for a socket's path",
		          path);
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0) {
		husk_fail(err, HUSK_EXIT_EXEC_FAILED, "run: %s: %s", path, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct exec_session *exec_session_new(const char *path, const struct exec_session_opts *o,
                                      GError **err)
{
	const int fds[3] = {o->in_fd, o->out_fd, o->err_fd};
	struct agent_winsize ws = exec_session_winsize(fds, 3);
	GByteArray *req = exec_session_request(o->argv, o->env, o->tty ? &ws : NULL, err);
	int fd = req ? listen_at(path, err) : -1;

	if (fd < 0) {
		if (req)
			g_byte_array_unref(req);
		return NULL;
	}
	struct exec_session *s = g_new0(struct exec_session, 1);
	s->path = g_strdup(path);
	s->listen_fd = fd;
	s->fd = -1;
	s->in_fd = o->in_fd;
	memcpy(s->size_fds, fds, sizeof(fds));
	s->tty = o->tty;
	s->stdin_open = o->interactive;
	s->in_buf = g_malloc(IN_CHUNK);
	agent_call_init(&s->call, o->out_fd, o->err_fd);
	s->call.hello_first = true; /* husk-init's session says HELLO as the agent does */
	/* Queued now: the agent reads it after its HELLO, whenever the guest connects. */
	agent_call_queue(&s->call, AGENT_EXEC, req->data, req->len);
	g_byte_array_unref(req);
	s->want_raw = o->tty && o->interactive;
	return s;
}

void exec_session_attach(struct exec_session *s, GMainContext *ctx)
{
	/* As docker: a terminal's keys go to the app's terminal, Ctrl-C included. */
	if (s->want_raw && isatty(s->in_fd))
		s->raw = console_make_raw(s->in_fd);
	s->ctx = ctx;
	s->accept_src = watch(s, s->listen_fd, G_IO_IN, on_accept);
	if (s->tty) {
		const int winch = SIGWINCH;
		seccomp_new_signal_sources(&winch, 1, &s->winch_src);
		g_source_set_callback(s->winch_src, on_winch, s, NULL);
		g_source_attach(s->winch_src, ctx);
	}
}

void exec_session_signal(struct exec_session *s, int signo)
{
	if (s->call.status >= 0)
		return;
	agent_call_queue_signal(&s->call, signo);
	update(s);
}

/* The agent could not start the app ("exec PROG: why"): as husk-init's own line and status. */
static int not_started(const char *refused)
{
	const char *what = refused + strlen("exec ");

	g_printerr("husk: exec: %s\n", what);
	return g_str_has_suffix(what, g_strerror(ENOENT)) ? 127 : 126;
}

int exec_session_status(struct exec_session *s, const char **why)
{
	/* Any line husk prints now starts at the left, on a terminal as it was. */
	if (s->raw)
		console_restore_terminal();
	*why = s->began ? s->call.why : NULL;
	if (s->call.exited)
		return s->call.status;
	if (s->call.refused && g_str_has_prefix(s->call.refused, "exec "))
		return not_started(s->call.refused);
	if (s->call.refused) {
		g_printerr("husk: run: the app's session: %s\n", s->call.why);
		return HUSK_EXIT_EXEC_FAILED;
	}
	return -1;
}

void exec_session_free(struct exec_session *s)
{
	if (!s)
		return;
	hang_up(s);
	drop(&s->accept_src);
	drop(&s->winch_src);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	unlink(s->path);
	if (s->raw)
		console_restore_terminal();
	agent_call_clear(&s->call);
	g_free(s->in_buf);
	g_free(s->path);
	g_free(s);
}
