// SPDX-License-Identifier: MIT
/*
 * OCI image-spec and `docker save` documents, read with json-glib. The
 * input is untrusted: its size is capped before parsing and its nesting
 * depth counted first (json-glib's parser recurses), every member is
 * checked for its type, and a wrong one is an error, never a default.
 */
#include "vmm/oci/spec.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "vmm/error.h"
#include "vmm/oci/layer.h"

#define MAX_ITEMS 4096 /* manifests in an index, layers, Env entries, ... */

/* '[' and '{' outside strings, counted: json-glib recurses once per level. */
static bool depth_ok(const char *data, gsize len)
{
	int depth = 0;
	bool in_string = false;

	for (gsize i = 0; i < len; i++) {
		char c = data[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > OCI_JSON_MAX_DEPTH)
				return false;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return true;
}

/* The document's top-level object (or array, with want_array); the parser owns it. */
static JsonNode *parse(JsonParser *p, const char *what, const char *data, gsize len,
                       JsonNodeType want, GError **err)
{
	GError *local = NULL;

	if (len > OCI_JSON_MAX) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: bigger than %d bytes", what, OCI_JSON_MAX);
		return NULL;
	}
	if (!depth_ok(data, len)) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: nested deeper than %d levels", what,
		          OCI_JSON_MAX_DEPTH);
		return NULL;
	}
	if (!json_parser_load_from_data(p, data, (gssize)len, &local)) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: not JSON (%s)", what, local->message);
		g_error_free(local);
		return NULL;
	}
	JsonNode *root = json_parser_get_root(p);
	if (!root || JSON_NODE_TYPE(root) != want) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: not a JSON %s", what,
		          want == JSON_NODE_OBJECT ? "object" : "array");
		return NULL;
	}
	return root;
}

/* A member that must be a string if present; *out NULL when absent or null. */
static bool get_string(JsonObject *o, const char *what, const char *name, char **out, GError **err)
{
	JsonNode *n = json_object_get_member(o, name);

	*out = NULL;
	if (!n || JSON_NODE_HOLDS_NULL(n))
		return true;
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: \"%s\" is not a string", what, name);
	*out = g_strdup(json_node_get_string(n));
	return true;
}

static bool get_object(JsonObject *o, const char *what, const char *name, JsonObject **out,
                       GError **err)
{
	JsonNode *n = json_object_get_member(o, name);

	*out = NULL;
	if (!n || JSON_NODE_HOLDS_NULL(n))
		return true;
	if (!JSON_NODE_HOLDS_OBJECT(n))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: \"%s\" is not an object", what, name);
	*out = json_node_get_object(n);
	return true;
}

static bool get_array(JsonObject *o, const char *what, const char *name, JsonArray **out,
                      GError **err)
{
	JsonNode *n = json_object_get_member(o, name);

	*out = NULL;
	if (!n || JSON_NODE_HOLDS_NULL(n))
		return true;
	if (!JSON_NODE_HOLDS_ARRAY(n))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: \"%s\" is not a list", what, name);
	*out = json_node_get_array(n);
	if (json_array_get_length(*out) > MAX_ITEMS)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: \"%s\" has more than %d items", what,
		                 name, MAX_ITEMS);
	return true;
}

/* A list of strings; *out NULL when absent or null, an empty vector when []. */
static bool get_strv(JsonObject *o, const char *what, const char *name, char ***out, GError **err)
{
	JsonArray *a;

	*out = NULL;
	if (!get_array(o, what, name, &a, err))
		return false;
	if (!a)
		return true;
	guint n = json_array_get_length(a);
	char **v = g_new0(char *, n + 1);
	for (guint i = 0; i < n; i++) {
		JsonNode *e = json_array_get_element(a, i);
		if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING) {
			g_strfreev(v);
			return husk_fail(err, HUSK_EXIT_USAGE,
			                 "%s: \"%s\" holds something not a string", what, name);
		}
		v[i] = g_strdup(json_node_get_string(e));
	}
	*out = v;
	return true;
}

/* --- descriptors ------------------------------------------------------------------ */

static bool descriptor_parse(JsonNode *n, const char *what, struct oci_descriptor *d, GError **err)
{
	memset(d, 0, sizeof(*d));
	if (!JSON_NODE_HOLDS_OBJECT(n))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: a descriptor is not an object", what);
	JsonObject *o = json_node_get_object(n), *annotations, *platform;
	bool ok = get_string(o, what, "mediaType", &d->media_type, err) &&
	          get_string(o, what, "digest", &d->digest, err) &&
	          get_object(o, what, "annotations", &annotations, err) &&
	          get_object(o, what, "platform", &platform, err);
	if (ok && annotations)
		ok = get_string(annotations, what, "org.opencontainers.image.ref.name",
		                &d->ref_name, err);
	if (ok && platform)
		ok = get_string(platform, what, "os", &d->os, err) &&
		     get_string(platform, what, "architecture", &d->architecture, err);
	if (ok && !oci_digest_valid(d->digest))
		ok = husk_fail(err, HUSK_EXIT_USAGE, "%s: \"%s\" is not a sha256 or sha512 digest",
		               what, d->digest ? d->digest : "(none)");
	JsonNode *size = json_object_get_member(o, "size");
	if (ok && size && JSON_NODE_HOLDS_VALUE(size) &&
	    json_node_get_value_type(size) == G_TYPE_INT64)
		d->size = json_node_get_int(size);
	if (!ok)
		oci_descriptor_clear(d);
	return ok;
}

bool oci_is_index(const struct oci_descriptor *d)
{
	return d->media_type &&
	       (strcmp(d->media_type, "application/vnd.oci.image.index.v1+json") == 0 ||
	        strcmp(d->media_type,
	               "application/vnd.docker.distribution.manifest.list.v2+json") == 0);
}

static GPtrArray *descriptor_list(JsonObject *o, const char *what, const char *name, GError **err)
{
	JsonArray *a;

	if (!get_array(o, what, name, &a, err))
		return NULL;
	if (!a) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: no \"%s\"", what, name);
		return NULL;
	}
	GPtrArray *list = g_ptr_array_new_with_free_func(oci_descriptor_free);
	for (guint i = 0; i < json_array_get_length(a); i++) {
		struct oci_descriptor *d = g_new0(struct oci_descriptor, 1);
		if (!descriptor_parse(json_array_get_element(a, i), what, d, err)) {
			g_free(d);
			g_ptr_array_unref(list);
			return NULL;
		}
		g_ptr_array_add(list, d);
	}
	return list;
}

GPtrArray *oci_index_parse(const char *data, gsize len, GError **err)
{
	JsonParser *p = json_parser_new_immutable();
	JsonNode *root = parse(p, "index", data, len, JSON_NODE_OBJECT, err);
	GPtrArray *list =
	    root ? descriptor_list(json_node_get_object(root), "index", "manifests", err) : NULL;

	g_object_unref(p);
	return list;
}

bool oci_manifest_parse(const char *data, gsize len, struct oci_descriptor *config,
                        GPtrArray **layers, GError **err)
{
	JsonParser *p = json_parser_new_immutable();
	JsonNode *root = parse(p, "manifest", data, len, JSON_NODE_OBJECT, err);
	JsonObject *o = root ? json_node_get_object(root) : NULL;
	JsonNode *c = o ? json_object_get_member(o, "config") : NULL;
	bool ok = false;

	*layers = NULL;
	if (o && !c)
		husk_fail(err, HUSK_EXIT_USAGE, "manifest: no \"config\"");
	else if (c && descriptor_parse(c, "manifest", config, err)) {
		*layers = descriptor_list(o, "manifest", "layers", err);
		ok = *layers != NULL;
		if (!ok)
			oci_descriptor_clear(config);
	}
	g_object_unref(p);
	return ok;
}

bool oci_config_parse(const char *data, gsize len, struct oci_config *out, GError **err)
{
	JsonParser *p = json_parser_new_immutable();
	JsonNode *root = parse(p, "config", data, len, JSON_NODE_OBJECT, err);
	JsonObject *o = root ? json_node_get_object(root) : NULL, *cfg = NULL, *rootfs = NULL;
	const char *w = "config";

	memset(out, 0, sizeof(*out));
	bool ok = o && get_string(o, w, "os", &out->os, err) &&
	          get_string(o, w, "architecture", &out->architecture, err) &&
	          get_object(o, w, "config", &cfg, err) && get_object(o, w, "rootfs", &rootfs, err);
	if (ok && cfg)
		ok = get_strv(cfg, w, "Env", &out->env, err) &&
		     get_strv(cfg, w, "Entrypoint", &out->entrypoint, err) &&
		     get_strv(cfg, w, "Cmd", &out->cmd, err) &&
		     get_string(cfg, w, "WorkingDir", &out->working_dir, err) &&
		     get_string(cfg, w, "User", &out->user, err);
	if (ok && rootfs)
		ok = get_strv(rootfs, w, "diff_ids", &out->diff_ids, err);
	for (char **e = ok && out->env ? out->env : NULL; e && *e; e++)
		if (!strchr(*e, '=') || **e == '=')
			ok = husk_fail(err, HUSK_EXIT_USAGE, "config: Env \"%s\" is not NAME=VALUE",
			               *e);
	if (!ok)
		oci_config_clear(out);
	g_object_unref(p);
	return ok;
}

GPtrArray *docker_manifest_parse(const char *data, gsize len, GError **err)
{
	JsonParser *p = json_parser_new_immutable();
	JsonNode *root = parse(p, "manifest.json", data, len, JSON_NODE_ARRAY, err);
	JsonArray *a = root ? json_node_get_array(root) : NULL;
	GPtrArray *list = a ? g_ptr_array_new_with_free_func(docker_image_free) : NULL;
	const char *w = "manifest.json";

	for (guint i = 0; list && i < json_array_get_length(a) && i < MAX_ITEMS; i++) {
		JsonNode *n = json_array_get_element(a, i);
		struct docker_image *img = g_new0(struct docker_image, 1);
		g_ptr_array_add(list, img);
		JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
		bool ok = o && get_string(o, w, "Config", &img->config, err) &&
		          get_strv(o, w, "RepoTags", &img->repo_tags, err) &&
		          get_strv(o, w, "Layers", &img->layers, err);
		if (ok && (!img->config || !img->layers))
			ok = husk_fail(err, HUSK_EXIT_USAGE,
			               "%s: an image without Config or Layers", w);
		if (!ok && !o)
			husk_fail(err, HUSK_EXIT_USAGE, "%s: an image is not an object", w);
		if (!ok)
			g_clear_pointer(&list, g_ptr_array_unref);
	}
	g_object_unref(p);
	return list;
}

/* --- freeing ------------------------------------------------------------------------ */

void oci_descriptor_clear(struct oci_descriptor *d)
{
	g_free(d->media_type);
	g_free(d->digest);
	g_free(d->ref_name);
	g_free(d->os);
	g_free(d->architecture);
	memset(d, 0, sizeof(*d));
}

void oci_descriptor_free(gpointer d)
{
	oci_descriptor_clear(d);
	g_free(d);
}

void oci_config_clear(struct oci_config *c)
{
	g_strfreev(c->env);
	g_strfreev(c->entrypoint);
	g_strfreev(c->cmd);
	g_strfreev(c->diff_ids);
	g_free(c->working_dir);
	g_free(c->user);
	g_free(c->os);
	g_free(c->architecture);
	memset(c, 0, sizeof(*c));
}

void docker_image_free(gpointer p)
{
	struct docker_image *d = p;

	g_free(d->config);
	g_strfreev(d->repo_tags);
	g_strfreev(d->layers);
	g_free(d);
}
