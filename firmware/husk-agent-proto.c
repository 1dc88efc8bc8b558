// SPDX-License-Identifier: MIT
/*
 * husk-agent's frames and EXEC fields (firmware/husk-agent.h): plain C,
 * for the static agent and for husk alike. Every length is the peer's
 * and checked against what the buffer holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firmware/husk-agent.h"

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

long agent_frame_parse(const uint8_t *buf, size_t len, struct agent_frame *f)
{
	if (len < 4)
		return 0;
	uint32_t body = get_le32(buf);
	if (body == 0 || body > AGENT_MAX_BODY)
		return -1;
	if (len - 4 < body)
		return 0;
	f->type = buf[4];
	f->payload = buf + 5;
	f->len = body - 1;
	return 4 + (long)body;
}

void agent_frame_header(uint8_t out[5], uint8_t type, uint32_t len)
{
	put_le32(out, len + 1);
	out[4] = type;
}

size_t agent_field_put(uint8_t *buf, uint8_t tag, const char *value)
{
	size_t len = strlen(value);

	buf[0] = tag;
	put_le32(buf + 1, (uint32_t)len);
	memcpy(buf + 5, value, len);
	return 5 + len;
}

/* Counts the fields of each tag; false if one runs past the payload or holds a NUL. */
static bool count_fields(const uint8_t *p, uint32_t len, unsigned int *count, uint8_t last_tag,
                         const char **why)
{
	for (uint32_t off = 0; off < len;) {
		if (len - off < 5) {
			*why = "a field's header runs past the request";
			return false;
		}
		uint8_t tag = p[off];
		uint32_t flen = get_le32(p + off + 1);
		off += 5;
		if (flen > len - off) {
			*why = "a field runs past the request";
			return false;
		}
		if (tag < 1 || tag > last_tag) {
			*why = "unknown field";
			return false;
		}
		if (memchr(p + off, 0, flen)) {
			*why = "a field holds a NUL byte";
			return false;
		}
		count[tag]++;
		off += flen;
	}
	return true;
}

static bool check_counts(const unsigned int count[AGENT_FIELD_LAST + 1], const char **why)
{
	if (!count[AGENT_ARG] && !count[AGENT_PTY])
		*why = "no program to run";
	else if (count[AGENT_ARG] > AGENT_MAX_ARGS || count[AGENT_ENV] > AGENT_MAX_ARGS)
		*why = "too many arguments or variables";
	else if (count[AGENT_CWD] > 1 || count[AGENT_USER] > 1)
		*why = "more than one directory or user";
	else if (count[AGENT_PTY] > 1)
		*why = "more than one terminal";
	else
		return true;
	return false;
}

/* Copies the fields, each NUL-terminated, into e->storage and points at them. */
static void fill(const uint8_t *p, uint32_t len, struct agent_exec *e)
{
	char *s = e->storage;
	unsigned int nargs = 0, nenv = 0;

	for (uint32_t off = 0; off < len;) {
		uint8_t tag = p[off];
		uint32_t flen = get_le32(p + off + 1);
		memcpy(s, p + off + 5, flen);
		s[flen] = '\0';
		if (tag == AGENT_ARG)
			e->argv[nargs++] = s;
		else if (tag == AGENT_ENV)
			e->env[nenv++] = s;
		else if (tag == AGENT_CWD)
			e->cwd = s;
		else if (tag == AGENT_USER)
			e->user = s;
		else
			e->pty_text = s;
		s += flen + 1;
		off += 5 + flen;
	}
}

bool agent_exec_decode(const uint8_t *p, uint32_t len, struct agent_exec *e, const char **why)
{
	unsigned int count[AGENT_FIELD_LAST + 1] = {0};

	memset(e, 0, sizeof(*e));
	if (!count_fields(p, len, count, AGENT_FIELD_LAST, why) || !check_counts(count, why))
		return false;
	/* Each field's 5-byte header more than pays for its NUL. */
	e->storage = malloc(len + 1);
	e->argv = calloc(count[AGENT_ARG] + 1, sizeof(char *));
	if (count[AGENT_ENV])
		e->env = calloc(count[AGENT_ENV] + 1, sizeof(char *));
	if (!e->storage || !e->argv || (count[AGENT_ENV] && !e->env)) {
		agent_exec_free(e);
		*why = "out of memory";
		return false;
	}
	fill(p, len, e);
	struct agent_winsize ws = {0};
	if (e->pty_text && !agent_pty_parse(e->pty_text, &ws)) {
		agent_exec_free(e);
		*why = "a terminal size is not ROWS COLS (1 to 4096 each)";
		return false;
	}
	e->pty = e->pty_text != NULL;
	e->rows = ws.rows;
	e->cols = ws.cols;
	return true;
}

void agent_exec_free(struct agent_exec *e)
{
	free(e->storage);
	free(e->argv);
	free(e->env);
	memset(e, 0, sizeof(*e));
}

bool agent_hello_decode(const uint8_t *p, uint32_t len, uint32_t *version, const char **why)
{
	if (len != 4) {
		*why = "HELLO is not 4 bytes";
		return false;
	}
	*version = get_le32(p);
	if (*version < 1 || *version > AGENT_VERSION) {
		*why = "a protocol version this side does not speak";
		return false;
	}
	return true;
}

static bool size_ok(unsigned long v)
{
	return v >= 1 && v <= AGENT_MAX_PTY;
}

void agent_resize_encode(uint8_t out[4], struct agent_winsize ws)
{
	out[0] = (uint8_t)ws.rows;
	out[1] = (uint8_t)(ws.rows >> 8);
	out[2] = (uint8_t)ws.cols;
	out[3] = (uint8_t)(ws.cols >> 8);
}

bool agent_resize_decode(const uint8_t *p, uint32_t len, struct agent_winsize *ws, const char **why)
{
	if (len != 4) {
		*why = "RESIZE is not 4 bytes";
		return false;
	}
	ws->rows = (uint16_t)(p[0] | p[1] << 8);
	ws->cols = (uint16_t)(p[2] | p[3] << 8);
	if (!size_ok(ws->rows) || !size_ok(ws->cols)) {
		*why = "a terminal size out of range";
		return false;
	}
	return true;
}

void agent_pty_format(char out[16], struct agent_winsize ws)
{
	snprintf(out, 16, "%u %u", (unsigned int)ws.rows, (unsigned int)ws.cols);
}

/* A decimal of 1 to 4 digits at *p, moved past. */
static bool take_number(const char **p, unsigned long *v)
{
	const char *s = *p;

	*v = 0;
	while (*s >= '0' && *s <= '9' && s - *p < 5)
		*v = *v * 10 + (unsigned long)(*s++ - '0');
	if (s == *p || s - *p > 4)
		return false;
	*p = s;
	return true;
}

bool agent_pty_parse(const char *text, struct agent_winsize *ws)
{
	unsigned long rows, cols;
	const char *p = text;

	if (!take_number(&p, &rows) || *p++ != ' ' || !take_number(&p, &cols) || *p)
		return false;
	if (!size_ok(rows) || !size_ok(cols))
		return false;
	ws->rows = (uint16_t)rows;
	ws->cols = (uint16_t)cols;
	return true;
}

bool agent_exit_decode(const uint8_t *p, uint32_t len, uint8_t *how, uint32_t *value,
                       const char **why)
{
	if (len != 5) {
		*why = "EXIT is not 5 bytes";
		return false;
	}
	*how = p[0];
	*value = get_le32(p + 1);
	if (*how == AGENT_EXITED && *value <= 255)
		return true;
	if (*how == AGENT_KILLED && *value >= 1 && *value <= 64)
		return true;
	*why = "EXIT holds no status or signal";
	return false;
}

bool agent_path_ok(const char *path)
{
	size_t len = strlen(path);

	if (path[0] != '/' || len >= AGENT_MAX_PATH)
		return false;
	for (const char *c = path; c; c = strchr(c + 1, '/')) {
		size_t n = strcspn(c + 1, "/");
		if ((n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
			return false;
	}
	return true;
}

/* "0" to "31", as SLOT carries it. */
static bool slot_parse(const char *text, int *slot)
{
	size_t len = strlen(text);
	int v = 0;

	if (len < 1 || len > 2 || (len == 2 && text[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		v = v * 10 + (text[i] - '0');
	}
	if (v > AGENT_MAX_SLOT)
		return false;
	*slot = v;
	return true;
}

static bool check_mount_counts(const unsigned int *count, bool umount, const char **why)
{
	if (count[AGENT_PATH] != 1)
		*why = "not one PATH";
	else if (umount ? count[AGENT_TAG] || count[AGENT_RO] : count[AGENT_TAG] != 1)
		*why = umount ? "UMOUNT takes no TAG or RO" : "not one TAG";
	else if (count[AGENT_SLOT] > 1 || count[AGENT_RO] > 1)
		*why = "more than one SLOT or RO";
	else
		return true;
	return false;
}

/* The fields, each NUL-terminated, into m->storage; then their values checked. */
static bool fill_mount(const uint8_t *p, uint32_t len, struct agent_mount *m, const char **why)
{
	char *s = m->storage;
	const char *slot = NULL;

	for (uint32_t off = 0; off < len;) {
		uint8_t tag = p[off];
		uint32_t flen = get_le32(p + off + 1);
		memcpy(s, p + off + 5, flen);
		s[flen] = '\0';
		if (tag == AGENT_TAG)
			m->tag = s;
		else if (tag == AGENT_PATH)
			m->path = s;
		else if (tag == AGENT_SLOT)
			slot = s;
		else
			m->read_only = true;
		s += flen + 1;
		off += 5 + flen;
	}
	if (m->tag && (!m->tag[0] || strlen(m->tag) > AGENT_MAX_TAG))
		*why = "a TAG is not 1 to 36 bytes";
	else if (!agent_path_ok(m->path))
		*why = "a PATH is not absolute, or has a . or .. component, or is too long";
	else if (slot && !slot_parse(slot, &m->slot))
		*why = "a SLOT is not 0 to 31";
	else
		return true;
	return false;
}

bool agent_mount_decode(const uint8_t *p, uint32_t len, bool umount, struct agent_mount *m,
                        const char **why)
{
	unsigned int count[AGENT_MOUNT_FIELD_LAST + 1] = {0};

	memset(m, 0, sizeof(*m));
	m->slot = -1;
	if (!count_fields(p, len, count, AGENT_MOUNT_FIELD_LAST, why) ||
	    !check_mount_counts(count, umount, why))
		return false;
	m->storage = malloc(len + 1);
	if (!m->storage) {
		*why = "out of memory";
		return false;
	}
	if (!fill_mount(p, len, m, why)) {
		agent_mount_free(m);
		return false;
	}
	return true;
}

void agent_mount_free(struct agent_mount *m)
{
	free(m->storage);
	memset(m, 0, sizeof(*m));
	m->slot = -1;
}
