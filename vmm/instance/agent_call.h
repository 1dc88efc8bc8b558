/* SPDX-License-Identifier: MIT */
/*
 * The host's side of one command run by a husk-agent session
 * (firmware/husk-agent.h), as frames: what goes to the agent waits in
 * 'out', what comes from it is parsed as it arrives, the command's output
 * written to two descriptors, its end noted. No I/O on the connection of
 * its own, so a poll loop (husk exec NAME, husk shell) and a glib loop
 * (husk run --image -t/-i, vmm/exec_session.c) drive the same code.
 */
#ifndef HUSK_INSTANCE_AGENT_CALL_H
#define HUSK_INSTANCE_AGENT_CALL_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "firmware/husk-agent.h"

struct agent_call {
	int out_fd, err_fd; /* where STDOUT and STDERR go */
	bool hello_first;   /* the agent's HELLO comes first on this stream (else taken before) */
	uint32_t version;   /* HELLO's, once taken */
	uint8_t in[4 + AGENT_MAX_BODY]; /* from the agent, not yet a whole frame */
	size_t in_len;
	GByteArray *out; /* for the agent, not yet sent */
	int status;      /* -1 until the call is over; then husk exec's status for it */
	bool exited;     /* EXIT ended the call: 'status' is the command's */
	char *why;       /* otherwise, what ended it: one line, printable */
	char *refused;   /* the agent's ERROR text (printable), when that ended it */
};

void agent_call_init(struct agent_call *c, int out_fd, int err_fd);
void agent_call_clear(struct agent_call *c);

/* Frames for the agent, queued in order. */
void agent_call_queue(struct agent_call *c, uint8_t type, const void *payload, uint32_t len);
void agent_call_queue_signal(struct agent_call *c, int signo);
void agent_call_queue_resize(struct agent_call *c, struct agent_winsize ws);

/* Appends one EXEC field to 'req'. */
void agent_call_field(GByteArray *req, uint8_t tag, const char *value);

/* The first 'n' bytes of 'out' went to the agent. */
void agent_call_sent(struct agent_call *c, size_t n);

/* Where the next bytes from the agent go, and how many fit. */
uint8_t *agent_call_room(struct agent_call *c, size_t *len);

/*
 * 'n' bytes arrived there (0: the agent closed the stream). Takes the
 * whole frames among them; false once the call is over (status set).
 */
bool agent_call_received(struct agent_call *c, size_t n);

#endif
