// SPDX-License-Identifier: MIT
/*
 * husk-agent: the guest's side of husk's requests (firmware/husk-agent.h).
 *   husk-agent [PORT]
 * listens on vsock port PORT (default HUSK_AGENT_PORT) and serves each
 * connection in a child of its own, so that one request's failure, or
 * one session's crash, leaves the agent and the other sessions be. As
 * it starts it tells the host it is ready: a HELLO on a connection to the
 * host's port PORT (through husk: the Unix socket PATH_PORT), if anyone
 * listens there. A static program: it needs nothing from the guest.
 */
/* linux/vm_sockets.h uses struct sockaddr without including its header. */
#include <sys/socket.h>

#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "firmware/husk-agent.h"

static int vsock_socket(void)
{
	return socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

/* The guest is up: say so to whoever listens on the host's side. */
static void notify_ready(unsigned int port)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
	uint8_t hello[9] = {0};
	int fd = vsock_socket();

	agent_frame_header(hello, AGENT_HELLO, 4);
	hello[5] = AGENT_VERSION;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, hello, sizeof(hello)) != sizeof(hello))
		perror("husk-agent: hello");
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	unsigned int port = argc > 1 ? (unsigned int)strtoul(argv[1], NULL, 10) : HUSK_AGENT_PORT;
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int s = vsock_socket();

	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 16) < 0) {
		perror("husk-agent: vsock");
		return 1;
	}
	/* Sessions end on their own: nobody waits for them. */
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	notify_ready(port);
	for (;;) {
		int fd = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (fork() == 0) {
			close(s);
			signal(SIGCHLD, SIG_DFL); /* the session waits for its command */
			agent_serve(fd);
			_exit(0);
		}
		close(fd);
	}
}
