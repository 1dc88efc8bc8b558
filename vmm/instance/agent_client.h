/* SPDX-License-Identifier: MIT */
/*
 * The host's side of the agent's greeting, shared by husk exec/shell and
 * the mounts: over an instance's vsock socket, "CONNECT 1024" and its
 * "OK", then the agent's HELLO frame.
 */
#ifndef HUSK_INSTANCE_AGENT_CLIENT_H
#define HUSK_INSTANCE_AGENT_CLIENT_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Greets the agent on 'fd' (a connected vsock.sock) before 'deadline_us'
 * (g_get_monotonic_time's clock) and stores the version its HELLO names.
 * Failures carry 'code' as their exit status.
 */
bool agent_client_hello(int fd, int64_t deadline_us, int code, uint32_t *version, GError **err);

#endif
