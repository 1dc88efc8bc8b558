// SPDX-License-Identifier: MIT
/*
 * husk list and husk info: what each instance is, from its folder, and
 * what it is doing, from its serving process when one answers.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "devices/block/block.h"
#include "devices/net/net.h"
#include "devices/virtio/blk.h"
#include "vmm/cli/instances.h"
#include "vmm/cli/run_detached.h"
#include "vmm/config.h"
#include "vmm/error.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"
#include "vmm/instance/mounts.h"
#include "vmm/size.h"

/* The disk's size as the guest sees it: a qcow2 header's big-endian field at 24. */
static uint64_t qcow2_virtual_size(const char *path)
{
	uint8_t h[32];
	uint64_t size = 0;
	FILE *f = fopen(path, "rb");

	if (f && fread(h, 1, sizeof(h), f) == sizeof(h) && memcmp(h, "QFI\xfb", 4) == 0)
		for (int i = 24; i < 32; i++)
			size = size << 8 | h[i];
	if (f)
		fclose(f);
	return size;
}

static void add_disk(const struct instance *inst, JsonObject *d)
{
	char *path = instance_path(inst, "disk.qcow2");
	struct stat st;

	json_object_set_int_member(d, "disk_size", (gint64)qcow2_virtual_size(path));
	if (stat(path, &st) == 0)
		json_object_set_int_member(d, "disk_used", (gint64)st.st_blocks * 512);
	g_free(path);
}

/* What the saved configuration says: vCPUs, memory, address, published ports. */
static void add_config(const struct instance *inst, JsonObject *d)
{
	char *path = instance_path(inst, "config.json"), *text = NULL;
	struct vm_config cfg;
	GError *err = NULL;

	bool ok = instance_read_trusted(inst, "config.json", &text, &err);

	if (ok && !config_from_json(text, &cfg, &err))
		ok = (g_prefix_error(&err, "%s: ", path), false);
	if (!ok) {
		/* One line for the damage; the instance is listed, as broken. */
		fprintf(stderr, "husk: instance \"%s\": %s\n", inst->name, err->message);
		json_object_set_string_member(d, "state", "broken");
		g_error_free(err);
	} else {
		JsonArray *ports = json_array_new();
		json_object_set_int_member(d, "cpus", cfg.cpus);
		json_object_set_int_member(d, "memory", (gint64)cfg.memory);
		for (guint i = 0; i < cfg.nets->len; i++) {
			const struct net_config *n = cfg.nets->pdata[i];
			for (guint f = 0; n->kind == NET_USER && f < n->hostfwd->len; f++) {
				const struct net_hostfwd *h =
				    &g_array_index(n->hostfwd, struct net_hostfwd, f);
				char *port = g_strdup_printf("%s:%u->%u/%s",
				                             inet_ntoa(h->host_addr), h->host_port,
				                             h->guest_port, h->udp ? "udp" : "tcp");
				json_array_add_string_element(ports, port);
				g_free(port);
			}
		}
		json_object_set_array_member(d, "ports", ports);
		config_clear(&cfg);
	}
	g_free(text);
	g_free(path);
	add_disk(inst, d);
}

/* The kernel its last boot used, as husk.log's "husk: booting WHAT: CMDLINE" says. */
static void add_kernel(const struct instance *inst, JsonObject *d)
{
	char *path = instance_path(inst, "husk.log"), *text = NULL;
	static const char prefix[] = "husk: booting ";

	if (g_file_get_contents(path, &text, NULL, NULL)) {
		char *line = strstr(text, prefix);
		char *end = line ? strstr(line, ": ") : NULL;
		if (end && (end = strstr(end + 1, ": ")) != NULL) {
			char *what =
			    g_strndup(line + strlen(prefix), (size_t)(end - line) - strlen(prefix));
			json_object_set_string_member(d, "kernel", what);
			g_free(what);
		}
	}
	g_free(text);
	g_free(path);
}

/* The mounts kept for the next start; a running instance's own list replaces them. */
static void add_stored_mounts(const struct instance *inst, JsonObject *d)
{
	char *path = instance_state_path(inst, "mounts.json");
	GPtrArray *specs = mounts_load(path, NULL);
	JsonArray *a = json_array_new();

	for (guint i = 0; specs && i < specs->len; i++) {
		const struct mount_spec *m = specs->pdata[i];
		JsonObject *o = json_object_new();
		json_object_set_string_member(o, "host", m->host);
		json_object_set_string_member(o, "guest", m->guest);
		json_object_set_boolean_member(o, "ro", m->read_only);
		json_array_add_object_element(a, o);
	}
	json_object_set_array_member(d, "mounts", a);
	if (specs)
		g_ptr_array_unref(specs);
	g_free(path);
}

/* One instance's facts as a JSON object: the same for text and --format json. */
static JsonObject *describe(const struct instance *inst)
{
	JsonObject *d = json_object_new();
	char *sock = instance_state_path(inst, "control.sock");
	pid_t pid = instance_running_pid(inst);
	JsonObject *live = pid ? control_call(sock, "info", NULL) : NULL;
	char *path = instance_path(inst, "instance.json"), *text = NULL;
	JsonParser *p = json_parser_new();

	json_object_set_string_member(d, "name", inst->name);
	/*
	 * A serving process that does not answer yet is setting the VM up: at
	 * its start, or again after the guest rebooted. It is not stopped.
	 */
	const char *setting_up = run_spec_is_image_run(inst) ? "starting" : "booting";
	json_object_set_string_member(d, "state", pid && !live ? setting_up : "stopped");
	if (g_file_get_contents(path, &text, NULL, NULL) &&
	    json_parser_load_from_data(p, text, -1, NULL) && json_parser_get_root(p) &&
	    JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
		JsonObject *o = json_node_get_object(json_parser_get_root(p));
		if (json_object_has_member(o, "image"))
			json_object_set_string_member(d, "image",
			                              json_object_get_string_member(o, "image"));
	}
	g_object_unref(p);
	g_free(text);
	g_free(path);
	add_config(inst, d);
	add_kernel(inst, d);
	if (run_spec_is_image_run(inst))
		run_detached_describe(inst, d);
	add_stored_mounts(inst, d);
	if (live) {
		/* The serving process knows best: its state, uptime, address and ports. */
		GList *members = json_object_get_members(live);
		for (GList *m = members; m; m = m->next)
			if (strcmp(m->data, "husk") && strcmp(m->data, "ok"))
				json_object_set_member(
				    d, m->data,
				    json_node_copy(json_object_get_member(live, m->data)));
		g_list_free(members);
		json_object_unref(live);
	}
	g_free(sock);
	return d;
}

static const char *get(JsonObject *d, const char *key)
{
	return json_object_has_member(d, key) ? json_object_get_string_member(d, key) : "-";
}

static gint64 get_int(JsonObject *d, const char *key)
{
	return json_object_has_member(d, key) ? json_object_get_int_member(d, key) : 0;
}

static char *size_text(uint64_t bytes)
{
	if (bytes >= GiB)
		return g_strdup_printf("%.1fG", (double)bytes / GiB);
	return g_strdup_printf("%" G_GUINT64_FORMAT "M", bytes / MiB);
}

static void print_json(JsonNode *root)
{
	char *text = json_to_string(root, TRUE);

	printf("%s\n", text);
	g_free(text);
}

static bool parse_format(int *argc, char ***argv, const char *params, const char *summary,
                         bool *json, GError **err)
{
	char *format = NULL;
	const GOptionEntry entries[] = {
	    {"format", 'f', 0, G_OPTION_ARG_STRING, &format, "table (default) or json", "FORMAT"},
	    {0}};
	GOptionContext *ctx = g_option_context_new(params);
	bool ok;

	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_summary(ctx, summary);
	g_option_context_set_description(ctx, INSTANCE_EXIT_TEXT);
	ok = g_option_context_parse(ctx, argc, argv, err);
	if (!ok) {
		(*err)->domain = HUSK_ERROR;
		(*err)->code = HUSK_EXIT_USAGE;
	} else if (format && strcmp(format, "json") && strcmp(format, "table")) {
		ok = husk_fail(err, HUSK_EXIT_USAGE, "--format: \"%s\" is not table or json",
		               format);
	}
	*json = format && strcmp(format, "json") == 0;
	g_free(format);
	g_option_context_free(ctx);
	return ok;
}

int list_main(int argc, char **argv)
{
	GError *err = NULL;
	bool json;

	if (!parse_format(&argc, &argv, "", "List the instances.", &json, &err))
		return instance_cli_fail(err);
	GPtrArray *names = instance_list();
	JsonArray *all = json_array_new();
	for (guint i = 0; i < names->len; i++) {
		struct instance *inst = instance_get(names->pdata[i], NULL);
		json_array_add_object_element(all, describe(inst));
		instance_free(inst);
	}
	if (json) {
		JsonNode *root = json_node_init_array(json_node_alloc(), all);
		print_json(root);
		json_node_unref(root);
	} else {
		printf("%-20s %-12s %-15s %-28s %4s %7s %7s\n", "NAME", "STATE", "IPV4", "IMAGE",
		       "CPUS", "MEMORY", "DISK");
		for (guint i = 0; i < json_array_get_length(all); i++) {
			JsonObject *d = json_array_get_object_element(all, i);
			char *mem = size_text((uint64_t)get_int(d, "memory"));
			char *disk = size_text((uint64_t)get_int(d, "disk_size"));
			/* A path or URL by its file name: the table stays one line. */
			char *image = g_path_get_basename(get(d, "image"));
			printf("%-20s %-12s %-15s %-28s %4" G_GINT64_FORMAT " %7s %7s\n",
			       get(d, "name"), get(d, "state"), get(d, "ipv4"), image,
			       get_int(d, "cpus"), mem, disk);
			g_free(image);
			g_free(mem);
			g_free(disk);
		}
	}
	json_array_unref(all);
	g_ptr_array_unref(names);
	return 0;
}

/* "Mounts:  HOST on GUEST (ro)", one a line; a stopped instance's from mounts.json. */
static void print_mounts(JsonObject *d)
{
	JsonNode *n = json_object_get_member(d, "mounts");
	JsonArray *a = n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
	guint count = a ? json_array_get_length(a) : 0;

	printf("Mounts: %s\n", count ? "" : " -");
	for (guint i = 0; i < count; i++) {
		JsonNode *e = json_array_get_element(a, i);
		JsonObject *m = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
		if (!m)
			continue;
		bool ro =
		    json_object_has_member(m, "ro") && json_object_get_boolean_member(m, "ro");
		bool unplugged =
		    json_object_has_member(m, "slot") && json_object_get_int_member(m, "slot") < 0;
		printf("  %s on %s%s%s\n", get(m, "host"), get(m, "guest"), ro ? " (ro)" : "",
		       unplugged ? " (not plugged: its folder was missing at the start)" : "");
	}
}

static void print_info(JsonObject *d)
{
	char *mem = size_text((uint64_t)get_int(d, "memory"));
	char *disk = size_text((uint64_t)get_int(d, "disk_size"));
	char *used = size_text((uint64_t)get_int(d, "disk_used"));
	JsonArray *ports =
	    json_object_has_member(d, "ports") ? json_object_get_array_member(d, "ports") : NULL;

	printf("Name:    %s\nState:   %s\nImage:   %s\nKernel:  %s\nIPv4:    %s\n", get(d, "name"),
	       get(d, "state"), get(d, "image"), get(d, "kernel"), get(d, "ipv4"));
	printf("CPUs:    %" G_GINT64_FORMAT "\nMemory:  %s\n", get_int(d, "cpus"), mem);
	/* An image run has no disk: its root is the image's, read-only. */
	if (!json_object_has_member(d, "kind"))
		printf("Disk:    %s used of %s\n", used, disk);
	printf("Ports:  ");
	for (guint i = 0; ports && i < json_array_get_length(ports); i++)
		printf(" %s", json_array_get_string_element(ports, i));
	printf("%s\n", ports && json_array_get_length(ports) ? "" : " -");
	print_mounts(d);
	if (json_object_has_member(d, "uptime_s"))
		printf("Uptime:  %" G_GINT64_FORMAT " s\n", get_int(d, "uptime_s"));
	if (json_object_has_member(d, "agent"))
		printf("Agent:   %s\n", get(d, "agent"));
	g_free(mem);
	g_free(disk);
	g_free(used);
}

int info_main(int argc, char **argv)
{
	GError *err = NULL;
	bool json;

	if (!parse_format(&argc, &argv, "NAME", "Describe an instance.", &json, &err))
		return instance_cli_fail(err);
	if (argc != 2)
		return instance_cli_fail(
		    g_error_new(HUSK_ERROR, HUSK_EXIT_USAGE, "info: give one instance name"));
	struct instance *inst = instance_get(argv[1], &err);
	if (inst && !instance_exists(inst))
		husk_fail(&err, HUSK_EXIT_USAGE, "no instance is called \"%s\"", argv[1]);
	if (err) {
		instance_free(inst);
		g_prefix_error(&err, "info: ");
		return instance_cli_fail(err);
	}
	JsonObject *d = describe(inst);
	if (json) {
		JsonNode *root = json_node_init_object(json_node_alloc(), d);
		print_json(root);
		json_node_unref(root);
	} else {
		print_info(d);
	}
	json_object_unref(d);
	instance_free(inst);
	return 0;
}
