/* SPDX-License-Identifier: MIT */
/*
 * husk-agent's protocol, version 3: how husk asks the agent in a guest to
 * run commands and shells and to mount shared folders, over one vsock stream per request (the agent
 * listens on guest port HUSK_AGENT_PORT; a host program reaches it through husk's
 * --vsock socket with "CONNECT 1024"). husk-init serves the same session
 * for husk run --image -t/-i, on a stream it opens to the host's port
 * HUSK_AGENT_PORT itself (agent_serve_app).
 *
 * A frame is a little-endian u32, the length of the body (1 to
 * AGENT_MAX_BODY bytes), then the body: a type byte and its payload.
 * The agent speaks first, with HELLO. Then, for each request:
 *
 *   host  EXEC     fields, each a tag byte, a little-endian u32 length and
 *                  that many bytes (no NUL inside): ARG (one or more, argv
 *                  in order), ENV ("NAME=value", any number; none: a
 *                  default PATH), CWD (at most one), USER (at most one, a
 *                  name or a number from the guest's /etc/passwd), PTY (at most one,
 *                  "ROWS COLS": the command runs on a new terminal, its
 *                  session's leader; with no ARG, the user's login shell)
 *   host  STDIN    bytes for the command's standard input; empty: its end
 *   host  SIGNAL   a little-endian u32 signal number, for the command's
 *                  process group (Ctrl-C is SIGINT)
 *   host  RESIZE   two little-endian u16, rows and columns: the PTY's new size
 *   agent STDOUT, STDERR   the command's output, as it comes; empty: its end
 *                  (on a PTY everything is STDOUT; STDERR only ends)
 *   agent EXIT     a byte (AGENT_EXITED or AGENT_KILLED) and a
 *                  little-endian u32: the exit status or the signal
 *   agent ERROR    text: the request failed (bad frame, no such program,
 *                  no such user); the stream is ready for the next one
 *
 *   host  MOUNT    fields as EXEC's, with their own tags: TAG (the virtio-fs
 *                  tag, 1 to 36 bytes), PATH (absolute, no "." or ".."
 *                  component, under AGENT_MAX_PATH bytes), SLOT (at most one,
 *                  the device's number on PCI bus 0, "0" to "31": the agent
 *                  rescans the bus if the device is new to the guest), RO
 *                  (at most one, empty: mount read-only)
 *   host  UMOUNT   PATH, and SLOT (at most one: the device the agent then
 *                  removes from the guest's PCI bus, so husk may unplug it)
 *   agent DONE     empty: the MOUNT or UMOUNT was done (else ERROR)
 *
 * Version 2 added PTY and RESIZE, version 3 MOUNT, UMOUNT and DONE; an older
 * agent answers what it does not know with ERROR.
 *
 * A frame the agent cannot take (a length of 0 or past AGENT_MAX_BODY)
 * ends the stream: nothing after it can be trusted to be a frame.
 */
#ifndef HUSK_AGENT_H
#define HUSK_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_VERSION   3
#define HUSK_AGENT_PORT 1024
#define AGENT_MAX_BODY  (64 * 1024 + 1)
#define AGENT_MAX_ARGS  1024 /* ARG and ENV fields each, per EXEC */

enum agent_type {
	AGENT_HELLO = 1, /* agent: a little-endian u32 version */
	AGENT_EXEC = 2,
	AGENT_STDIN = 3,
	AGENT_SIGNAL = 4,
	AGENT_STDOUT = 5,
	AGENT_STDERR = 6,
	AGENT_EXIT = 7,
	AGENT_ERROR = 8,
	AGENT_RESIZE = 9,  /* version 2 */
	AGENT_MOUNT = 10,  /* version 3 */
	AGENT_UMOUNT = 11, /* version 3 */
	AGENT_DONE = 12,   /* version 3 */
};

/* MOUNT's and UMOUNT's fields. */
enum agent_mount_field { AGENT_TAG = 1, AGENT_PATH = 2, AGENT_SLOT = 3, AGENT_RO = 4 };
#define AGENT_MOUNT_FIELD_LAST AGENT_RO
#define AGENT_MAX_PATH         4096
#define AGENT_MAX_TAG          36 /* virtio-fs's tag field */
#define AGENT_MAX_SLOT         31

enum agent_field { AGENT_ARG = 1, AGENT_ENV = 2, AGENT_CWD = 3, AGENT_USER = 4, AGENT_PTY = 5 };
#define AGENT_FIELD_LAST AGENT_PTY

#define AGENT_MAX_PTY 4096 /* rows or columns */

enum { AGENT_EXITED = 0, AGENT_KILLED = 1 };

/* A frame found in a buffer: its type and payload, pointing into the buffer. */
struct agent_frame {
	uint8_t type;
	const uint8_t *payload;
	uint32_t len;
};

/*
 * The first frame in buf[0..len): the bytes it takes (> 0), 0 if the
 * buffer holds only part of it, -1 if its length is not one.
 */
long agent_frame_parse(const uint8_t *buf, size_t len, struct agent_frame *f);

/* Writes a frame's header (5 bytes) for a payload of 'len' bytes. */
void agent_frame_header(uint8_t out[5], uint8_t type, uint32_t len);

/* An EXEC request, decoded: NULL-terminated argv and env, in 'storage'. */
struct agent_exec {
	char **argv; /* argv[0] NULL: a PTY's login shell */
	char **env;  /* NULL: none given */
	const char *cwd, *user, *pty_text;
	bool pty;
	uint16_t rows, cols; /* with pty */
	char *storage;
};

/* A terminal's size, as PTY and RESIZE carry it. */
struct agent_winsize {
	uint16_t rows, cols;
};

/* False, with the reason in *why, if the payload is not a well-formed EXEC. */
bool agent_exec_decode(const uint8_t *p, uint32_t len, struct agent_exec *e, const char **why);
void agent_exec_free(struct agent_exec *e);

/*
 * A HELLO's payload: false, with the reason, unless it is 4 bytes naming
 * a version this side speaks (1 to AGENT_VERSION); the version in *version.
 */
bool agent_hello_decode(const uint8_t *p, uint32_t len, uint32_t *version, const char **why);

/* RESIZE's payload (4 bytes) and its decoder: 1 to AGENT_MAX_PTY each. */
void agent_resize_encode(uint8_t out[4], struct agent_winsize ws);
bool agent_resize_decode(const uint8_t *p, uint32_t len, struct agent_winsize *ws,
                         const char **why);

/* "ROWS COLS", the PTY field's text, and back (same bounds). */
void agent_pty_format(char out[16], struct agent_winsize ws);
bool agent_pty_parse(const char *text, struct agent_winsize *ws);

/*
 * EXIT's payload: false, with the reason, unless it is 5 bytes with a
 * known kind (AGENT_EXITED 0-255, AGENT_KILLED 1-64).
 */
bool agent_exit_decode(const uint8_t *p, uint32_t len, uint8_t *how, uint32_t *value,
                       const char **why);

/* A MOUNT or UMOUNT request, decoded (its strings NUL-terminated, in 'storage'). */
struct agent_mount {
	const char *tag; /* MOUNT only */
	const char *path;
	int slot; /* -1: none given */
	bool read_only;
	char *storage;
};

/*
 * False, with the reason in *why, unless the payload is a well-formed
 * MOUNT ('umount' false) or UMOUNT ('umount' true).
 */
bool agent_mount_decode(const uint8_t *p, uint32_t len, bool umount, struct agent_mount *m,
                        const char **why);
void agent_mount_free(struct agent_mount *m);

/* Whether 'path' is absolute, under AGENT_MAX_PATH bytes, with no "." or ".." component. */
bool agent_path_ok(const char *path);

/* Appends one field to buf (which has room); returns the bytes written. */
size_t agent_field_put(uint8_t *buf, uint8_t tag, const char *value);

/*
 * Serves one connection (the agent's side of a stream) until the host
 * closes it; exits the process never. Used by husk-agent per connection.
 */
void agent_serve(int fd);

/*
 * As agent_serve, for husk-init's one app (husk run --image -t/-i): once
 * the command exits, its EXIT follows what it wrote within DRAIN_MS, as a
 * container ends with its main process, rather than once whatever it
 * left in the background has closed its output too.
 */
void agent_serve_app(int fd);

#endif
