// SPDX-License-Identifier: MIT
#include "vmm/instance/control.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/fdio.h"
#include "vmm/instance/protocol.h"

/* A client has this long to send its request or read its reply. */
#define CONTROL_IO_TIMEOUT_S 2

struct control_server {
	int fd;
	GSource *source;
	control_handler handler;
	void *opaque;
};

static bool make_address(const char *path, struct sockaddr_un *a, GError **err)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: too long for a socket's path (set HUSK_HOME shorter)", path);
	strcpy(a->sun_path, path);
	return true;
}

static void set_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = CONTROL_IO_TIMEOUT_S};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * One line, read a byte at a time so that nothing after it is taken from
 * a stream that goes on (the console).
 */
static char *read_line(int fd)
{
	GString *line = g_string_new(NULL);
	char c;

	while (line->len < PROTOCOL_MAX_LINE) {
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (c == '\n')
			return g_string_free(line, FALSE);
		g_string_append_c(line, c);
	}
	g_string_free(line, TRUE);
	return NULL;
}

/*
 * The request is read with a timeout on the I/O thread: the socket is
 * the user's own (0600), so only their own clients can be slow there.
 */
static void serve_client(struct control_server *s, int fd)
{
	GError *err = NULL;
	char *line = read_line(fd);
	JsonObject *request = NULL;
	char *op = line ? protocol_parse_request_object(line, &request, &err) : NULL;
	JsonObject *fields = json_object_new();
	bool take_fd = false;
	char *reply;

	if (!line)
		husk_fail(&err, HUSK_EXIT_RUNTIME, "no request line");
	if (op && s->handler(s->opaque, op, request, fields, fd, &take_fd, &err)) {
		reply = protocol_reply(fields);
	} else {
		reply = protocol_reply_error(err->message);
		json_object_unref(fields);
		take_fd = false;
	}
	fdio_write_all(fd, reply, strlen(reply));
	if (!take_fd)
		close(fd);
	g_clear_error(&err);
	g_free(reply);
	g_free(op);
	g_free(line);
	if (request)
		json_object_unref(request);
}

static gboolean on_connect(gint fd, GIOCondition cond, gpointer data)
{
	int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

	if (client >= 0) {
		set_timeouts(client);
		serve_client(data, client);
	}
	return G_SOURCE_CONTINUE;
}

struct control_server *control_server_start(const char *path, GMainContext *ctx,
                                            control_handler handler, void *opaque, GError **err)
{
	struct sockaddr_un a;

	if (!make_address(path, &a, err))
		return NULL;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	/* A socket left by a husk that was killed: whoever calls this holds the instance. */
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
	struct control_server *s = g_new0(struct control_server, 1);
	*s = (struct control_server){.fd = fd, .handler = handler, .opaque = opaque};
	s->source = g_unix_fd_source_new(fd, G_IO_IN);
	g_source_set_callback(s->source, G_SOURCE_FUNC(on_connect), s, NULL);
	g_source_attach(s->source, ctx);
	return s;
}

void control_server_stop(struct control_server *s)
{
	if (!s)
		return;
	g_source_destroy(s->source);
	g_source_unref(s->source);
	close(s->fd);
	g_free(s);
}

/* Connects and sends the request: the fd, or -1. */
static int send_request(const char *path, const char *op, JsonObject *args, GError **err)
{
	struct sockaddr_un a;

	if (!make_address(path, &a, err))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "cannot reach the instance's husk: %s",
		          g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	set_timeouts(fd);
	char *line = protocol_request_with(op, args);
	bool ok = fdio_write_all(fd, line, strlen(line));
	g_free(line);
	if (!ok) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "cannot send to the instance's husk: %s",
		          g_strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static JsonObject *read_reply(int fd, GError **err)
{
	char *line = read_line(fd);
	JsonObject *reply = NULL;

	if (!line)
		husk_fail(err, HUSK_EXIT_RUNTIME, "the instance's husk did not answer");
	else
		reply = protocol_parse_reply(line, err);
	g_free(line);
	return reply;
}

JsonObject *control_call(const char *path, const char *op, GError **err)
{
	return control_call_with(path, op, NULL, err);
}

JsonObject *control_call_with(const char *path, const char *op, JsonObject *args, GError **err)
{
	int fd = send_request(path, op, args, err);

	if (fd < 0)
		return NULL;
	JsonObject *reply = read_reply(fd, err);
	close(fd);
	return reply;
}

int control_open_stream(const char *path, const char *op, GError **err)
{
	int fd = send_request(path, op, NULL, err);

	if (fd < 0)
		return -1;
	JsonObject *reply = read_reply(fd, err);
	if (!reply) {
		close(fd);
		return -1;
	}
	json_object_unref(reply);
	/* The stream has no deadline: the user may sit at the console all day. */
	struct timeval none = {0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
	return fd;
}
