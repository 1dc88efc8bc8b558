/* SPDX-License-Identifier: MIT */
/*
 * The control protocol an instance's husk process serves on control.sock
 * in the instance folder (a Unix stream socket, the user's own: 0600).
 * tools/MANUAL.md, "The control socket", is its documentation; in short:
 *
 * A client sends one request, a JSON object on one line:
 *     {"husk": 1, "op": "state"}
 * and reads one reply, a JSON object on one line:
 *     {"husk": 1, "ok": true, "state": "running", ...}
 *     {"husk": 1, "ok": false, "error": "unknown op \"reboot\""}
 * then the server closes the connection, except after "console", where
 * the connection goes on as the console's bytes both ways.
 *
 * "husk" is the protocol's version; a server answers a request of any
 * other version with an error. Ops in version 1:
 *   state       state: "booting" (cloud-init has not finished), "running",
 *               "stopping"
 *   info        state, pid, uptime_s, ipv4, cpus, memory, ports (--net texts)
 *   stop        asks the guest to power off; the reply comes at once
 *   force-stop  ends the VM now (disks flushed); the reply comes at once
 *   console     the console: the last part of its log, then what the guest
 *               writes; what the client writes is typed to the guest
 *   screenshot  png_bytes: what the display (--gpu) shows now, as PNG; the
 *               connection carries that many bytes after the reply, then
 *               closes
 *   mount       with "host" (an absolute folder), "guest" (an absolute
 *               path) and "ro" (a boolean): plugs a virtio-fs device for
 *               the folder and keeps the mount; replies tag, slot, vsock
 *               (the socket the agent is reached through). The guest's
 *               agent is then asked to mount it (MOUNT, husk-agent.h)
 *   umount      with "guest": unplugs the device (after the agent's UMOUNT)
 *               and forgets the mount
 *   mounts      mounts: [{host, guest, ro, tag, slot}]
 */
#ifndef HUSK_PROTOCOL_H
#define HUSK_PROTOCOL_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

#define PROTOCOL_VERSION  1
#define PROTOCOL_MAX_LINE 65536

/* A request line, newline included. */
char *protocol_request(const char *op);
/* The same with the members of 'args' (may be NULL; not consumed) beside op. */
char *protocol_request_with(const char *op, JsonObject *args);

/* The op of a request line; errors are one line to send back. */
char *protocol_parse_request(const char *line, GError **err);
/* The same, and the whole request in *request (the caller unrefs it). */
char *protocol_parse_request_object(const char *line, JsonObject **request, GError **err);

/* A string member of 'o', or NULL if there is none or it is not a string. */
const char *protocol_string(JsonObject *o, const char *key);

/* A reply line, newline included: 'fields' (may be NULL; consumed) plus ok. */
char *protocol_reply(JsonObject *fields);
char *protocol_reply_error(const char *message);

/*
 * The fields of a reply line that says ok. An error reply, or a line that
 * is not a reply of this version, is an error (HUSK_EXIT_RUNTIME).
 */
JsonObject *protocol_parse_reply(const char *line, GError **err);

#endif
