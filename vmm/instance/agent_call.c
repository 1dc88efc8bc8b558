// SPDX-License-Identifier: MIT
/*
 * One command's frames, host side (agent_call.h). Everything that comes
 * in is the guest's: lengths are checked by agent_frame_parse, a frame
 * the host does not expect ends the call, and the agent's own words are
 * shown only as printable text on one line.
 */
#include "vmm/instance/agent_call.h"

#include <errno.h>
#include <string.h>

#include "vmm/error.h"
#include "vmm/fdio.h"

#define FAILED HUSK_EXIT_EXEC_FAILED

void agent_call_init(struct agent_call *c, int out_fd, int err_fd)
{
	memset(c, 0, sizeof(*c));
	c->out_fd = out_fd;
	c->err_fd = err_fd;
	c->out = g_byte_array_new();
	c->status = -1;
}

void agent_call_clear(struct agent_call *c)
{
	g_clear_pointer(&c->out, g_byte_array_unref);
	g_clear_pointer(&c->why, g_free);
	g_clear_pointer(&c->refused, g_free);
}

void agent_call_queue(struct agent_call *c, uint8_t type, const void *payload, uint32_t len)
{
	uint8_t hdr[5];

	agent_frame_header(hdr, type, len);
	g_byte_array_append(c->out, hdr, sizeof(hdr));
	if (len)
		g_byte_array_append(c->out, payload, len);
}

void agent_call_queue_signal(struct agent_call *c, int signo)
{
	uint8_t payload[4];

	for (int i = 0; i < 4; i++)
		payload[i] = (uint8_t)((unsigned int)signo >> (8 * i));
	agent_call_queue(c, AGENT_SIGNAL, payload, sizeof(payload));
}

void agent_call_queue_resize(struct agent_call *c, struct agent_winsize ws)
{
	uint8_t payload[4];

	agent_resize_encode(payload, ws);
	agent_call_queue(c, AGENT_RESIZE, payload, sizeof(payload));
}

void agent_call_field(GByteArray *req, uint8_t tag, const char *value)
{
	guint at = req->len;

	g_byte_array_set_size(req, at + 5 + (guint)strlen(value));
	agent_field_put(req->data + at, tag, value);
}

void agent_call_sent(struct agent_call *c, size_t n)
{
	g_byte_array_remove_range(c->out, 0, (guint)MIN(n, c->out->len));
}

uint8_t *agent_call_room(struct agent_call *c, size_t *len)
{
	*len = sizeof(c->in) - c->in_len;
	return c->in + c->in_len;
}

/* The guest's text on one line, with nothing a terminal would act on. */
static char *printable(const uint8_t *p, uint32_t len)
{
	char *text = g_strndup((const char *)p, MIN(len, 512));

	for (char *t = text; *t; t++)
		if (!g_ascii_isprint(*t))
			*t = '?';
	return text;
}

static bool end(struct agent_call *c, int status, char *why)
{
	c->status = status;
	g_free(c->why);
	c->why = why;
	return false;
}

/* The command's output goes on even if ours is closed: the command decides. */
static void output(int fd, const struct agent_frame *f)
{
	if (f->len && !fdio_write_all(fd, f->payload, f->len))
		g_debug("output: %s", g_strerror(errno));
}

static bool take_exit(struct agent_call *c, const struct agent_frame *f)
{
	const char *why;
	uint8_t how;
	uint32_t value;

	if (!agent_exit_decode(f->payload, f->len, &how, &value, &why))
		return end(c, FAILED, g_strdup_printf("the agent's EXIT: %s", why));
	c->exited = true;
	return end(c, how == AGENT_EXITED ? (int)value : HUSK_EXIT_SIGNAL + (int)value, NULL);
}

static bool take_hello(struct agent_call *c, const struct agent_frame *f)
{
	const char *why;

	if (f->type != AGENT_HELLO)
		return end(c, FAILED, g_strdup("the agent did not say HELLO"));
	if (!agent_hello_decode(f->payload, f->len, &c->version, &why))
		return end(c, FAILED, g_strdup_printf("the agent's HELLO: %s", why));
	c->hello_first = false;
	return true;
}

/* One frame from the agent; false once the call is over. */
static bool take_frame(struct agent_call *c, const struct agent_frame *f)
{
	if (c->hello_first)
		return take_hello(c, f);
	switch (f->type) {
	case AGENT_STDOUT:
		output(c->out_fd, f);
		return true;
	case AGENT_STDERR:
		output(c->err_fd, f);
		return true;
	case AGENT_EXIT:
		return take_exit(c, f);
	case AGENT_ERROR:
		c->refused = printable(f->payload, f->len);
		return end(c, FAILED, g_strdup_printf("the agent: %s", c->refused));
	default:
		return end(c, FAILED,
		           g_strdup_printf("the agent sent a frame of type %u", f->type));
	}
}

bool agent_call_received(struct agent_call *c, size_t n)
{
	struct agent_frame f;
	size_t off = 0;
	long used;

	if (c->status >= 0)
		return false;
	if (n == 0)
		return end(c, FAILED, g_strdup("the agent went away before the command ended"));
	c->in_len += MIN(n, sizeof(c->in) - c->in_len);
	while ((used = agent_frame_parse(c->in + off, c->in_len - off, &f)) > 0) {
		off += (size_t)used;
		if (!take_frame(c, &f))
			return false;
	}
	if (used < 0)
		return end(c, FAILED, g_strdup("the agent broke its framing"));
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return true;
}
