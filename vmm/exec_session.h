/* SPDX-License-Identifier: MIT */
/*
 * husk run --image -t / -i: the app runs through one husk-agent session
 * (firmware/husk-agent.h) that husk-init opens over virtio-vsock to the
 * host's port EXEC_SESSION_PORT, and husk is that session's client on the
 * VM's I/O loop. It asks for the app (EXEC: its argv and environment, a
 * terminal of husk's size with -t), passes husk's stdin on (-i), the
 * window size on SIGWINCH and the signals husk forwards, and writes the
 * app's output to husk's own; the agent's EXIT is the app's status.
 */
#ifndef HUSK_EXEC_SESSION_H
#define HUSK_EXEC_SESSION_H

#include <glib.h>
#include <stdbool.h>

#include "firmware/husk-agent.h"

#define EXEC_SESSION_PORT HUSK_AGENT_PORT

struct exec_session_opts {
	const char *const *argv, *const *env;
	bool tty;         /* the app on a terminal: its output merged, husk's size */
	bool interactive; /* husk's stdin to the app's, then its end */
	int in_fd, out_fd, err_fd;
};

/*
 * The EXEC payload for the app: ARG and ENV fields, and PTY when 'pty' is
 * not NULL. NULL, with why in 'err' (HUSK_EXIT_EXEC_FAILED), when it is
 * over what one frame carries.
 */
GByteArray *exec_session_request(const char *const *argv, const char *const *env,
                                 const struct agent_winsize *pty, GError **err);

/*
 * The first terminal among 'fds' (n of them): its size, else 24x80. The
 * same for the PTY husk asks for and for each resize.
 */
struct agent_winsize exec_session_winsize(const int *fds, int n);

struct exec_session;

/*
 * Listens at 'path' (a Unix socket: the VM's vsock socket with
 * "_<EXEC_SESSION_PORT>" after it) and readies the request. Nothing is
 * served until exec_session_attach.
 */
struct exec_session *exec_session_new(const char *path, const struct exec_session_opts *o,
                                      GError **err);

/*
 * Served on 'ctx', the machine's I/O loop, from now on (SIGWINCH too, with
 * -t). With -t and -i on a terminal, that terminal is raw from now until
 * exec_session_status or exec_session_free.
 */
void exec_session_attach(struct exec_session *s, GMainContext *ctx);

/* On the I/O loop: 'signo' for the app (sent once the session is there). */
void exec_session_signal(struct exec_session *s, int signo);

/*
 * Once the loop has stopped: the app's status as husk exec gives it (its
 * EXIT; or 127 or 126, with the agent's line, when it could not start),
 * or -1 if the session ended without one; *why then says how (NULL: it
 * never began).
 */
int exec_session_status(struct exec_session *s, const char **why);

/* Stops serving, removes the socket, restores the terminal. */
void exec_session_free(struct exec_session *s);

#endif
