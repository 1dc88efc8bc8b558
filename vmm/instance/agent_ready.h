/* SPDX-License-Identifier: MIT */
/*
 * The agent's word that the guest is up: husk-agent, as it starts,
 * connects to the host's vsock port HUSK_AGENT_PORT and sends HELLO
 * (firmware/husk-agent.h); husk's vsock device hands that connection to
 * the Unix socket "<vsock socket>_1024", where this listens.
 */
#ifndef HUSK_AGENT_READY_H
#define HUSK_AGENT_READY_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define AGENT_READY_MAX_CONNS 8  /* HELLOs awaited at once; more are hung up on */
#define AGENT_READY_WAIT_S    10 /* a connection that sends no HELLO this long is dropped */

struct agent_ready;

/* Called for each well-formed HELLO, with the agent's protocol version. */
typedef void (*agent_ready_fn)(void *opaque, uint32_t version);

/* Listens at 'path' (a stale socket there is replaced), served on 'ctx'. */
struct agent_ready *agent_ready_start(const char *path, GMainContext *ctx, agent_ready_fn fn,
                                      void *opaque, GError **err);
/* Stops listening, drops what is pending, and removes the socket. */
void agent_ready_stop(struct agent_ready *r);

#endif
