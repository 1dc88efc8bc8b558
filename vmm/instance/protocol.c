// SPDX-License-Identifier: MIT
#include "vmm/instance/protocol.h"

#include "vmm/error.h"

/* A message: 'o' (a new one if NULL) stamped with the protocol's version. */
static JsonObject *message(JsonObject *o)
{
	if (!o)
		o = json_object_new();
	json_object_set_int_member(o, "husk", PROTOCOL_VERSION);
	return o;
}

/* The message as one line; consumes 'o'. */
static char *to_line(JsonObject *o)
{
	JsonNode *root = json_node_init_object(json_node_alloc(), o);
	char *text = json_to_string(root, FALSE);
	char *line = g_strconcat(text, "\n", NULL);

	g_free(text);
	json_node_unref(root);
	json_object_unref(o);
	return line;
}

char *protocol_request(const char *op)
{
	return protocol_request_with(op, NULL);
}

static void copy_member(JsonObject *from, const gchar *name, JsonNode *value, gpointer to)
{
	json_object_set_member(to, name, json_node_copy(value));
}

char *protocol_request_with(const char *op, JsonObject *args)
{
	JsonObject *o = message(NULL);

	if (args)
		json_object_foreach_member(args, copy_member, o);

	json_object_set_string_member(o, "op", op);
	return to_line(o);
}

/* The object a line holds, or NULL with 'what' named in the error. */
static JsonObject *parse_object(const char *line, const char *what, GError **err)
{
	JsonParser *p = json_parser_new();
	JsonObject *o = NULL;

	/* An empty or blank line loads fine and has no root node at all. */
	if (json_parser_load_from_data(p, line, -1, NULL)) {
		JsonNode *root = json_parser_get_root(p);

		if (root && JSON_NODE_HOLDS_OBJECT(root))
			o = json_object_ref(json_node_get_object(root));
	}
	g_object_unref(p);
	if (!o) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s is not a JSON object", what);
		return NULL;
	}
	JsonNode *v = json_object_get_member(o, "husk");
	if (!v || !JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_INT64 ||
	    json_node_get_int(v) != PROTOCOL_VERSION) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s is not of control protocol version %d", what,
		          PROTOCOL_VERSION);
		json_object_unref(o);
		return NULL;
	}
	return o;
}

const char *protocol_string(JsonObject *o, const char *key)
{
	JsonNode *v = json_object_get_member(o, key);

	return v && JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING
	           ? json_node_get_string(v)
	           : NULL;
}

char *protocol_parse_request_object(const char *line, JsonObject **request, GError **err)
{
	JsonObject *o = parse_object(line, "the request", err);

	*request = NULL;
	if (!o)
		return NULL;
	char *op = g_strdup(protocol_string(o, "op"));
	if (!op) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "the request has no op");
		json_object_unref(o);
		return NULL;
	}
	*request = o;
	return op;
}

char *protocol_parse_request(const char *line, GError **err)
{
	JsonObject *o;
	char *op = protocol_parse_request_object(line, &o, err);

	if (o)
		json_object_unref(o);
	return op;
}

char *protocol_reply(JsonObject *fields)
{
	JsonObject *o = message(fields);

	json_object_set_boolean_member(o, "ok", TRUE);
	return to_line(o);
}

char *protocol_reply_error(const char *why)
{
	JsonObject *o = message(NULL);

	json_object_set_boolean_member(o, "ok", FALSE);
	json_object_set_string_member(o, "error", why);
	return to_line(o);
}

JsonObject *protocol_parse_reply(const char *line, GError **err)
{
	JsonObject *o = parse_object(line, "the reply", err);

	if (!o)
		return NULL;
	JsonNode *ok = json_object_get_member(o, "ok");
	if (ok && JSON_NODE_HOLDS_VALUE(ok) && json_node_get_value_type(ok) == G_TYPE_BOOLEAN &&
	    json_node_get_boolean(ok))
		return o;
	const char *why = protocol_string(o, "error");
	husk_fail(err, HUSK_EXIT_RUNTIME, "%s", why ? why : "the reply says neither ok nor why");
	json_object_unref(o);
	return NULL;
}
