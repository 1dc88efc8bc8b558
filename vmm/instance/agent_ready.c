// SPDX-License-Identifier: MIT
/*
 * The HELLO listener (agent_ready.h). What arrives is the guest's: each
 * connection may send one frame of 9 bytes and is then closed, whatever
 * it held; a connection that says nothing is dropped after a while, and
 * only a few are kept at once.
 */
#include "vmm/instance/agent_ready.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "firmware/husk-agent.h"
#include "vmm/error.h"

#define HELLO_LEN 9 /* a frame's 5 bytes and the u32 version */

struct agent_ready {
	char *path;
	int fd;
	GSource *source;
	GMainContext *ctx;
	agent_ready_fn fn;
	void *opaque;
	GPtrArray *conns; /* struct hello_conn * */
};

struct hello_conn {
	struct agent_ready *r;
	int fd;
	uint8_t buf[HELLO_LEN];
	size_t len;
	GSource *source, *timer;
};

static void conn_free(gpointer data)
{
	struct hello_conn *c = data;

	g_source_destroy(c->source);
	g_source_unref(c->source);
	g_source_destroy(c->timer);
	g_source_unref(c->timer);
	close(c->fd);
	g_free(c);
}

static void drop(struct hello_conn *c)
{
	g_ptr_array_remove_fast(c->r->conns, c);
}

static void take_hello(struct hello_conn *c)
{
	struct agent_frame f;
	uint32_t version;
	const char *why = "not a HELLO";

	if (agent_frame_parse(c->buf, c->len, &f) == HELLO_LEN && f.type == AGENT_HELLO &&
	    agent_hello_decode(f.payload, f.len, &version, &why))
		c->r->fn(c->r->opaque, version);
	else
		g_printerr("husk: the guest's agent: %s\n", why);
}

static gboolean on_data(gint fd, GIOCondition cond, gpointer data)
{
	struct hello_conn *c = data;
	ssize_t n = read(fd, c->buf + c->len, sizeof(c->buf) - c->len);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return G_SOURCE_CONTINUE;
	if (n > 0)
		c->len += (size_t)n;
	if (c->len == sizeof(c->buf))
		take_hello(c);
	if (n <= 0 || c->len == sizeof(c->buf))
		drop(c);
	return G_SOURCE_CONTINUE;
}

static gboolean on_silence(gpointer data)
{
	drop(data);
	return G_SOURCE_CONTINUE;
}

static gboolean on_connect(gint fd, GIOCondition cond, gpointer data)
{
	struct agent_ready *r = data;
	int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (conn < 0)
		return G_SOURCE_CONTINUE;
	if (r->conns->len >= AGENT_READY_MAX_CONNS) {
		close(conn);
		return G_SOURCE_CONTINUE;
	}
	struct hello_conn *c = g_new0(struct hello_conn, 1);
	c->r = r;
	c->fd = conn;
	c->source = g_unix_fd_source_new(conn, G_IO_IN | G_IO_HUP | G_IO_ERR);
	g_source_set_callback(c->source, G_SOURCE_FUNC(on_data), c, NULL);
	g_source_attach(c->source, r->ctx);
	c->timer = g_timeout_source_new_seconds(AGENT_READY_WAIT_S);
	g_source_set_callback(c->timer, on_silence, c, NULL);
	g_source_attach(c->timer, r->ctx);
	g_ptr_array_add(r->conns, c);
	return G_SOURCE_CONTINUE;
}

struct agent_ready *agent_ready_start(const char *path, GMainContext *ctx, agent_ready_fn fn,
                                      void *opaque, GError **err)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(a.sun_path)) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: too long for a socket's path", path);
		return NULL;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(path);
	mode_t old = umask(0077);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 8) == 0;
	umask(old);
	if (!ok) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct agent_ready *r = g_new0(struct agent_ready, 1);
	*r = (struct agent_ready){
	    .path = g_strdup(path), .fd = fd, .ctx = ctx, .fn = fn, .opaque = opaque};
	r->conns = g_ptr_array_new_with_free_func(conn_free);
	r->source = g_unix_fd_source_new(fd, G_IO_IN);
	g_source_set_callback(r->source, G_SOURCE_FUNC(on_connect), r, NULL);
	g_source_attach(r->source, ctx);
	return r;
}

void agent_ready_stop(struct agent_ready *r)
{
	if (!r)
		return;
	g_ptr_array_unref(r->conns);
	g_source_destroy(r->source);
	g_source_unref(r->source);
	close(r->fd);
	unlink(r->path);
	g_free(r->path);
	g_free(r);
}
