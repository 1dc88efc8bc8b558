/* SPDX-License-Identifier: MIT */
#include "vmm/instance/agent_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "firmware/husk-agent.h"
#include "vmm/error.h"
#include "vmm/fdio.h"

/* The vsock socket's answer to CONNECT: one short line, "OK <port>" when an agent listens. */
static bool connect_answered(int fd, int64_t deadline_us)
{
	char line[32] = {0};
	size_t n = 0;

	while (n < sizeof(line) - 1 && fdio_read_until(fd, line + n, 1, deadline_us) &&
	       line[n] != '\n')
		n++;
	return g_str_has_prefix(line, "OK ");
}

bool agent_client_hello(int fd, int64_t deadline_us, int code, uint32_t *version, GError **err)
{
	char line[32];
	uint8_t hello[9];
	struct agent_frame f;
	const char *why;

	snprintf(line, sizeof(line), "CONNECT %u\n", HUSK_AGENT_PORT);
	if (!fdio_send_all(fd, line, strlen(line)))
		return husk_fail(err, code, "the vsock socket: %s", g_strerror(errno));
	if (!connect_answered(fd, deadline_us))
		return husk_fail(err, code,
		                 "no agent answers in the guest (is husk-agent running?)");
	if (!fdio_read_until(fd, hello, sizeof(hello), deadline_us) ||
	    agent_frame_parse(hello, sizeof(hello), &f) != sizeof(hello) || f.type != AGENT_HELLO)
		return husk_fail(err, code, "the agent did not say HELLO");
	if (!agent_hello_decode(f.payload, f.len, version, &why))
		return husk_fail(err, code, "the agent's HELLO: %s", why);
	return true;
}
