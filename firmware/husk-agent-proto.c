// SPDX-License-Identifier: MIT
/*
 * husk-agent's frames and EXEC fields (firmware/husk-agent.h): plain C,
 * for the static agent and for husk alike. Every length is the peer's
 * and checked against what the buffer holds.
 */
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
static bool count_fields(const uint8_t *p, uint32_t len, unsigned int count[5], const char **why)
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
		if (tag < AGENT_ARG || tag > AGENT_USER) {
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

static bool check_counts(const unsigned int count[5], const char **why)
{
	if (!count[AGENT_ARG])
		*why = "no program to run";
	else if (count[AGENT_ARG] > AGENT_MAX_ARGS || count[AGENT_ENV] > AGENT_MAX_ARGS)
		*why = "too many arguments or variables";
	else if (count[AGENT_CWD] > 1 || count[AGENT_USER] > 1)
		*why = "more than one directory or user";
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
		else
			e->user = s;
		s += flen + 1;
		off += 5 + flen;
	}
}

bool agent_exec_decode(const uint8_t *p, uint32_t len, struct agent_exec *e, const char **why)
{
	unsigned int count[5] = {0};

	memset(e, 0, sizeof(*e));
	if (!count_fields(p, len, count, why) || !check_counts(count, why))
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
	return true;
}

void agent_exec_free(struct agent_exec *e)
{
	free(e->storage);
	free(e->argv);
	free(e->env);
	memset(e, 0, sizeof(*e));
}
