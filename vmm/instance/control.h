/* SPDX-License-Identifier: MIT */
/* The control socket's two ends (protocol: vmm/instance/protocol.h). */
#ifndef HUSK_CONTROL_H
#define HUSK_CONTROL_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

/*
 * Answers 'op' by adding fields to 'reply', or fails with a one-line
 * error. For a streaming op it sets *take_fd: it then owns 'fd', which
 * the server no longer closes once the reply is sent.
 */
typedef bool (*control_handler)(void *opaque, const char *op, JsonObject *request,
                                JsonObject *reply, int fd, bool *take_fd, GError **err);

struct control_server;

/* Listens on 'path' (replacing a stale socket there), serving from 'ctx'. */
struct control_server *control_server_start(const char *path, GMainContext *ctx,
                                            control_handler handler, void *opaque, GError **err);
void control_server_stop(struct control_server *s);

/* Sends a request: the reply's fields, or an error (HUSK_EXIT_RUNTIME). */
JsonObject *control_call(const char *path, const char *op, GError **err);
/* The same with arguments beside op ('args' not consumed). */
JsonObject *control_call_with(const char *path, const char *op, JsonObject *args, GError **err);

/* Sends a streaming request: the connected fd once the reply said ok, or -1. */
int control_open_stream(const char *path, const char *op, GError **err);

#endif
