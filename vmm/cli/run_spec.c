// SPDX-License-Identifier: MIT
/* husk run --image's options to and from an instance's config.json. */
#include "vmm/cli/run_spec.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "vmm/error.h"
#include "vmm/instance/instance.h"

void run_spec_init(struct run_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->envs = g_ptr_array_new_with_free_func(g_free);
	s->volumes = g_ptr_array_new_with_free_func(g_free);
	s->publish = g_ptr_array_new_with_free_func(g_free);
	s->options = g_ptr_array_new_with_free_func(g_free);
}

void run_spec_clear(struct run_spec *s)
{
	g_free(s->image);
	g_free(s->entrypoint);
	g_free(s->user);
	g_free(s->workdir);
	g_free(s->cwd);
	g_strfreev(s->args);
	g_clear_pointer(&s->envs, g_ptr_array_unref);
	g_clear_pointer(&s->volumes, g_ptr_array_unref);
	g_clear_pointer(&s->publish, g_ptr_array_unref);
	g_clear_pointer(&s->options, g_ptr_array_unref);
}

static void set_string(JsonBuilder *b, const char *key, const char *value)
{
	if (!value)
		return;
	json_builder_set_member_name(b, key);
	json_builder_add_string_value(b, value);
}

static void set_list(JsonBuilder *b, const char *key, char *const *items, guint n)
{
	json_builder_set_member_name(b, key);
	json_builder_begin_array(b);
	for (guint i = 0; i < n; i++)
		json_builder_add_string_value(b, items[i]);
	json_builder_end_array(b);
}

char *run_spec_to_json(const struct run_spec *s)
{
	JsonBuilder *b = json_builder_new();

	json_builder_begin_object(b);
	set_string(b, "kind", RUN_SPEC_KIND);
	set_string(b, "image", s->image);
	if (s->entrypoint_set)
		set_string(b, "entrypoint", s->entrypoint ? s->entrypoint : "");
	set_string(b, "user", s->user);
	set_string(b, "workdir", s->workdir);
	set_string(b, "cwd", s->cwd);
	set_list(b, "env", (char **)s->envs->pdata, s->envs->len);
	set_list(b, "volumes", (char **)s->volumes->pdata, s->volumes->len);
	set_list(b, "publish", (char **)s->publish->pdata, s->publish->len);
	set_list(b, "options", (char **)s->options->pdata, s->options->len);
	if (s->args)
		set_list(b, "args", s->args, g_strv_length(s->args));
	json_builder_end_object(b);
	JsonNode *root = json_builder_get_root(b);
	char *text = json_to_string(root, TRUE);
	json_node_unref(root);
	g_object_unref(b);
	return text;
}

/* An optional string member: false if there but not a string. */
static bool get_string(JsonObject *o, const char *key, char **out, GError **err)
{
	JsonNode *n = json_object_get_member(o, key);

	if (!n)
		return true;
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return husk_fail(err, HUSK_EXIT_USAGE, "config.json: \"%s\" is not a string", key);
	*out = g_strdup(json_node_get_string(n));
	return true;
}

/* An optional array of strings, appended to 'out'. */
static bool get_list(JsonObject *o, const char *key, GPtrArray *out, GError **err)
{
	JsonNode *n = json_object_get_member(o, key);

	if (!n)
		return true;
	JsonArray *a = JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
	if (!a || json_array_get_length(a) > RUN_SPEC_MAX_ITEMS)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "config.json: \"%s\" is not a list of at most %d strings", key,
		                 RUN_SPEC_MAX_ITEMS);
	for (guint i = 0; i < json_array_get_length(a); i++) {
		JsonNode *e = json_array_get_element(a, i);
		if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
			return husk_fail(err, HUSK_EXIT_USAGE,
			                 "config.json: \"%s\" holds something not a string", key);
		g_ptr_array_add(out, g_strdup(json_node_get_string(e)));
	}
	return true;
}

static JsonObject *parse_object(JsonParser *p, const char *json, GError **err)
{
	GError *why = NULL;

	if (!json_parser_load_from_data(p, json, -1, &why)) {
		husk_fail(err, HUSK_EXIT_USAGE, "config.json: %s", why->message);
		g_error_free(why);
		return NULL;
	}
	JsonNode *root = json_parser_get_root(p);
	if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
		husk_fail(err, HUSK_EXIT_USAGE, "config.json: not a JSON object");
		return NULL;
	}
	return json_node_get_object(root);
}

static bool is_image_run(JsonObject *o)
{
	JsonNode *kind = json_object_get_member(o, "kind");

	return kind && JSON_NODE_HOLDS_VALUE(kind) &&
	       json_node_get_value_type(kind) == G_TYPE_STRING &&
	       strcmp(json_node_get_string(kind), RUN_SPEC_KIND) == 0;
}

bool run_spec_json_is_image_run(const char *json)
{
	JsonParser *p = json_parser_new();
	JsonObject *o = parse_object(p, json, NULL);
	bool yes = o && is_image_run(o);

	g_object_unref(p);
	return yes;
}

bool run_spec_from_json(const char *json, struct run_spec *s, GError **err)
{
	JsonParser *p = json_parser_new();
	JsonObject *o = parse_object(p, json, err);
	GPtrArray *args = g_ptr_array_new_with_free_func(g_free);
	bool ok = o != NULL;

	run_spec_init(s);
	if (ok && !is_image_run(o))
		ok = husk_fail(err, HUSK_EXIT_USAGE, "config.json: not an image run's");
	ok = ok && get_string(o, "image", &s->image, err) &&
	     get_string(o, "entrypoint", &s->entrypoint, err) &&
	     get_string(o, "user", &s->user, err) && get_string(o, "workdir", &s->workdir, err) &&
	     get_string(o, "cwd", &s->cwd, err) && get_list(o, "env", s->envs, err) &&
	     get_list(o, "volumes", s->volumes, err) && get_list(o, "publish", s->publish, err) &&
	     get_list(o, "options", s->options, err) && get_list(o, "args", args, err);
	if (ok && !s->image)
		ok = husk_fail(err, HUSK_EXIT_USAGE, "config.json: no \"image\"");
	if (ok) {
		s->entrypoint_set = s->entrypoint != NULL;
		if (json_object_has_member(o, "args")) {
			g_ptr_array_add(args, NULL);
			s->args = (char **)g_ptr_array_free(g_steal_pointer(&args), FALSE);
		}
	}
	if (args)
		g_ptr_array_unref(args);
	g_object_unref(p);
	return ok;
}

bool run_spec_is_image_run(const struct instance *inst)
{
	char *json = NULL;
	bool yes = instance_read_trusted(inst, "config.json", &json, NULL) &&
	           run_spec_json_is_image_run(json);

	g_free(json);
	return yes;
}

bool run_spec_check_terminal(bool tty, bool interactive, bool detach, bool stdin_is_tty,
                             GError **err)
{
	const char *which = tty && interactive ? "-t and -i" : tty ? "-t" : "-i";

	if (!tty && !interactive)
		return true;
	if (detach)
		return husk_fail(
		    err, HUSK_EXIT_USAGE,
		    "run: --detach with %s: an image run has no attach to take them up "
		    "later; detach without them",
		    which);
	if (tty && interactive && !stdin_is_tty)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "run: -it: the input is not a terminal (-i alone passes it on as "
		                 "a stream)");
	return true;
}
