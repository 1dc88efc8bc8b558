// SPDX-License-Identifier: MIT
/*
 * The VM configuration's defaults and its JSON form. A NIC is saved as the
 * --net text that makes it, so reading it back goes through the same
 * parser and checks as the command line; disks, whose paths may hold any
 * character, are saved field by field.
 */
#include "vmm/config.h"

#include <arpa/inet.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "devices/display/vnc.h"
#include "devices/net/net.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/fs.h"
#include "devices/virtio/vsock.h"
#include "vmm/error.h"

static void free_disk(gpointer disk)
{
	disk_config_clear(disk);
	g_free(disk);
}

static void free_net(gpointer net)
{
	net_config_clear(net);
	g_free(net);
}

static void free_share(gpointer share)
{
	share_config_clear(share);
	g_free(share);
}

void config_init(struct vm_config *cfg)
{
	*cfg = (struct vm_config){
	    .memory = VM_DEFAULT_MEMORY,
	    .cpus = 1,
	    .poll_us = VM_DEFAULT_POLL_US,
	    .halt_poll_us = -1,
	    .on_reboot = ON_REBOOT_EXIT,
	    .console_out = STDOUT_FILENO,
	    .console_in = STDIN_FILENO,
	    .disks = g_ptr_array_new_with_free_func(free_disk),
	    .nets = g_ptr_array_new_with_free_func(free_net),
	    .shares = g_ptr_array_new_with_free_func(free_share),
	};
}

void config_clear(struct vm_config *cfg)
{
	g_clear_pointer(&cfg->kernel, g_free);
	g_clear_pointer(&cfg->initrd, g_free);
	g_clear_pointer(&cfg->cmdline, g_free);
	g_clear_pointer(&cfg->screenshot_on_exit, g_free);
	g_clear_pointer(&cfg->dump_dtb, g_free);
	g_clear_pointer(&cfg->vnc, g_free);
	g_clear_pointer(&cfg->disks, g_ptr_array_unref);
	g_clear_pointer(&cfg->nets, g_ptr_array_unref);
	g_clear_pointer(&cfg->shares, g_ptr_array_unref);
	if (cfg->vsock)
		vsock_config_clear(cfg->vsock);
	g_clear_pointer(&cfg->vsock, g_free);
	g_clear_pointer(&cfg->control, g_free);
}

void config_add_disk(struct vm_config *cfg, struct disk_config *disk)
{
	g_ptr_array_add(cfg->disks, disk);
}

void config_add_net(struct vm_config *cfg, struct net_config *net)
{
	g_ptr_array_add(cfg->nets, net);
}

char *config_publish_text(const char *spec, GError **err)
{
	const char *slash = strchr(spec, '/');
	char *ports = slash ? g_strndup(spec, (size_t)(slash - spec)) : g_strdup(spec);
	char **parts = g_strsplit(ports, ":", -1);
	guint n = g_strv_length(parts);
	char *text = NULL;

	if (slash && strcmp(slash, "/udp") != 0 && strcmp(slash, "/tcp") != 0)
		husk_fail(err, HUSK_EXIT_USAGE, "-p: \"%s\": the protocol is tcp or udp", spec);
	else if (n != 2 && n != 3)
		husk_fail(err, HUSK_EXIT_USAGE, "-p: \"%s\" is not [ADDR:]HOSTPORT:GUESTPORT[/udp]",
		          spec);
	else
		text = g_strdup_printf("user,hostfwd=%s:%s:%s-:%s",
		                       slash && strcmp(slash, "/udp") == 0 ? "udp" : "tcp",
		                       n == 3 ? parts[0] : "127.0.0.1", parts[n - 2], parts[n - 1]);
	g_strfreev(parts);
	g_free(ports);
	return text;
}

bool config_publish(struct vm_config *cfg, const char *spec, GError **err)
{
	char *text = config_publish_text(spec, err);
	struct net_config *fwd = g_new0(struct net_config, 1);
	struct net_config *user = NULL;

	if (!text || !net_config_parse(text, cfg->nets->len, fwd, err)) {
		if (text)
			g_prefix_error(err, "-p: ");
		g_free(fwd);
		g_free(text);
		return false;
	}
	g_free(text);
	for (guint i = 0; !user && i < cfg->nets->len; i++)
		if (((struct net_config *)cfg->nets->pdata[i])->kind == NET_USER)
			user = cfg->nets->pdata[i];
	if (!user) {
		config_add_net(cfg, fwd);
		return true;
	}
	struct net_hostfwd f = g_array_index(fwd->hostfwd, struct net_hostfwd, 0);
	f.guest_addr = user->dhcp_start;
	g_array_append_val(user->hostfwd, f);
	free_net(fwd);
	return true;
}

/* --- writing ------------------------------------------------------------- */

static void add_string(JsonBuilder *b, const char *key, const char *value)
{
	if (!value)
		return;
	json_builder_set_member_name(b, key);
	json_builder_add_string_value(b, value);
}

static void add_int(JsonBuilder *b, const char *key, gint64 value)
{
	json_builder_set_member_name(b, key);
	json_builder_add_int_value(b, value);
}

static void add_bool(JsonBuilder *b, const char *key, bool value)
{
	json_builder_set_member_name(b, key);
	json_builder_add_boolean_value(b, value);
}

static void add_disk(JsonBuilder *b, const struct disk_config *d)
{
	json_builder_begin_object(b);
	add_string(b, "path", d->path);
	add_string(b, "format", d->format);
	add_bool(b, "read_only", d->read_only);
	add_bool(b, "snapshot", d->snapshot);
	add_string(b, "serial", d->serial);
	add_string(b, "cache", d->cache == DISK_CACHE_NONE ? "none" : "writeback");
	json_builder_end_object(b);
}

static void append_addr(GString *s, const char *key, struct in_addr a)
{
	char text[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, text, sizeof(text));
	g_string_append_printf(s, ",%s=%s", key, text);
}

/* The --net text that makes 'n' again. */
char *config_net_text(const struct net_config *n)
{
	GString *s = g_string_new(n->kind == NET_TAP ? "tap=" : "user");

	if (n->kind == NET_TAP) {
		g_string_append(s, n->ifname);
		if (n->vhost != NET_VHOST_AUTO)
			g_string_append(s, n->vhost == NET_VHOST_ON ? ",vhost=on" : ",vhost=off");
	} else {
		char net[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &n->net, net, sizeof(net));
		g_string_append_printf(s, ",net=%s/%d", net, __builtin_popcount(n->mask.s_addr));
		append_addr(s, "host", n->host);
		append_addr(s, "dns", n->dns);
		append_addr(s, "dhcpstart", n->dhcp_start);
		if (n->restrict_guest)
			g_string_append(s, ",restrict=on");
		for (guint i = 0; i < n->hostfwd->len; i++) {
			const struct net_hostfwd *f =
			    &g_array_index(n->hostfwd, struct net_hostfwd, i);
			char host[INET_ADDRSTRLEN], guest[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &f->host_addr, host, sizeof(host));
			inet_ntop(AF_INET, &f->guest_addr, guest, sizeof(guest));
			g_string_append_printf(s, ",hostfwd=%s:%s:%u-%s:%u", f->udp ? "udp" : "tcp",
			                       host, f->host_port, guest, f->guest_port);
		}
	}
	g_string_append_printf(s, ",mac=%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
	                       n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	if (n->mtu)
		g_string_append_printf(s, ",mtu=%u", n->mtu);
	return g_string_free(s, FALSE);
}

bool config_gpu_parse(const char *text, enum gpu_mode *out, GError **err)
{
	if (strcmp(text, "2d") == 0)
		*out = GPU_2D;
	else if (strcmp(text, "none") == 0)
		*out = GPU_NONE;
	else if (strcmp(text, "virgl") != 0)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--gpu: \"%s\" is not one of 2d, virgl, none", text);
#ifdef HAVE_VIRGLRENDERER
	else
		*out = GPU_VIRGL;
#else
	else
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--gpu virgl: husk was built without virglrenderer");
#endif
	return true;
}

bool config_display_parse(const char *text, char **vnc, bool *window, GError **err)
{
	char *host;
	int port;

	g_clear_pointer(vnc, g_free);
	*window = strcmp(text, "window") == 0;
	if (strcmp(text, "none") == 0 || *window)
		return true;
	if (!g_str_has_prefix(text, "vnc="))
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--display: \"%s\" is not none, window or vnc=ADDRESS:PORT", text);
	if (!vnc_parse_address(text + 4, &host, &port, err))
		return false;
	g_free(host);
	*vnc = g_strdup(text + 4);
	return true;
}

const char *config_gpu_name(enum gpu_mode mode)
{
	return mode == GPU_2D ? "2d" : mode == GPU_VIRGL ? "virgl" : "none";
}

char *config_to_json(const struct vm_config *cfg, GError **err)
{
	if (cfg->shares->len) {
		husk_fail(err, HUSK_EXIT_USAGE, "shared folders cannot be saved with a VM yet");
		return NULL;
	}
	JsonBuilder *b = json_builder_new();

	json_builder_begin_object(b);
	add_string(b, "kernel", cfg->kernel);
	add_string(b, "initrd", cfg->initrd);
	add_string(b, "cmdline", cfg->cmdline);
	add_int(b, "memory", (gint64)cfg->memory);
	add_int(b, "cpus", cfg->cpus);
	add_int(b, "poll_us", cfg->poll_us);
	add_int(b, "halt_poll_us", cfg->halt_poll_us);
	add_string(b, "on_reboot", cfg->on_reboot == ON_REBOOT_RESTART ? "restart" : "exit");
	if (cfg->gpu != GPU_NONE)
		add_string(b, "gpu", config_gpu_name(cfg->gpu));
	if (cfg->vnc)
		add_string(b, "vnc", cfg->vnc);
	if (cfg->run_as.set) {
		add_int(b, "run_as_uid", cfg->run_as.uid);
		add_int(b, "run_as_gid", cfg->run_as.gid);
	}
	json_builder_set_member_name(b, "disks");
	json_builder_begin_array(b);
	for (guint i = 0; i < cfg->disks->len; i++)
		add_disk(b, cfg->disks->pdata[i]);
	json_builder_end_array(b);
	json_builder_set_member_name(b, "nets");
	json_builder_begin_array(b);
	for (guint i = 0; i < cfg->nets->len; i++) {
		char *text = config_net_text(cfg->nets->pdata[i]);
		json_builder_add_string_value(b, text);
		g_free(text);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);

	JsonNode *root = json_builder_get_root(b);
	char *json = json_to_string(root, TRUE);
	json_node_unref(root);
	g_object_unref(b);
	return json;
}

/* --- reading ------------------------------------------------------------- */

static bool bad(GError **err, const char *what)
{
	return husk_fail(err, HUSK_EXIT_USAGE, "VM configuration: %s", what);
}

static char *get_string(JsonObject *o, const char *key)
{
	JsonNode *n = json_object_get_member(o, key);

	return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
	           ? g_strdup(json_node_get_string(n))
	           : NULL;
}

/* A whole number from min to max; *out keeps its default when 'key' is absent. */
static bool get_number(JsonObject *o, const char *key, gint64 min, gint64 max, gint64 *out)
{
	JsonNode *n = json_object_get_member(o, key);

	if (!n)
		return true;
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
		return false;
	*out = json_node_get_int(n);
	return *out >= min && *out <= max;
}

static bool get_bool(JsonObject *o, const char *key)
{
	JsonNode *n = json_object_get_member(o, key);

	return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN &&
	       json_node_get_boolean(n);
}

static bool read_disk(JsonNode *node, struct vm_config *cfg, GError **err)
{
	if (!JSON_NODE_HOLDS_OBJECT(node))
		return bad(err, "a disk is not an object");
	JsonObject *o = json_node_get_object(node);
	struct disk_config *d = g_new0(struct disk_config, 1);
	char *cache = get_string(o, "cache");

	d->path = get_string(o, "path");
	d->format = get_string(o, "format");
	d->serial = get_string(o, "serial");
	d->read_only = get_bool(o, "read_only");
	d->snapshot = get_bool(o, "snapshot");
	d->cache = g_strcmp0(cache, "none") == 0 ? DISK_CACHE_NONE : DISK_CACHE_WRITEBACK;
	g_free(cache);
	config_add_disk(cfg, d);
	return d->path ? true : bad(err, "a disk has no path");
}

static bool read_net(JsonNode *node, struct vm_config *cfg, GError **err)
{
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
		return bad(err, "a NIC is not a --net text");
	struct net_config *n = g_new0(struct net_config, 1);
	if (!net_config_parse(json_node_get_string(node), cfg->nets->len, n, err)) {
		g_free(n);
		g_prefix_error(err, "VM configuration: ");
		return false;
	}
	config_add_net(cfg, n);
	return true;
}

static bool read_array(JsonObject *o, const char *key, struct vm_config *cfg,
                       bool (*read)(JsonNode *, struct vm_config *, GError **), GError **err)
{
	JsonNode *n = json_object_get_member(o, key);

	if (!n)
		return true;
	if (!JSON_NODE_HOLDS_ARRAY(n))
		return bad(err, key);
	JsonArray *a = json_node_get_array(n);
	for (guint i = 0; i < json_array_get_length(a); i++)
		if (!read(json_array_get_element(a, i), cfg, err))
			return false;
	return true;
}

/* Who the VM's process becomes: both ids or neither, never root. */
static bool read_run_as(JsonObject *o, struct vm_config *cfg, GError **err)
{
	gint64 uid = -1, gid = -1;

	if (!get_number(o, "run_as_uid", 1, UINT32_MAX - 1, &uid) ||
	    !get_number(o, "run_as_gid", 1, UINT32_MAX - 1, &gid) || (uid < 0) != (gid < 0))
		return bad(err, "run_as_uid and run_as_gid are not two ids other than 0");
	if (uid > 0)
		cfg->run_as = (struct run_as){.set = true, .uid = (uid_t)uid, .gid = (gid_t)gid};
	return true;
}

static bool read_numbers(JsonObject *o, struct vm_config *cfg, GError **err)
{
	gint64 memory = (gint64)cfg->memory, cpus = cfg->cpus, poll = cfg->poll_us,
	       halt = cfg->halt_poll_us;

	if (!get_number(o, "memory", VM_MIN_MEMORY, VM_MAX_MEMORY, &memory))
		return bad(err, "memory is not a size from 16M to 1T");
	if (!get_number(o, "cpus", 1, VM_MAX_CPUS, &cpus))
		return bad(err, "cpus is not a number from 1 to " G_STRINGIFY(VM_MAX_CPUS));
	if (!get_number(o, "poll_us", 0, VM_MAX_POLL_US, &poll) ||
	    !get_number(o, "halt_poll_us", -1, VM_MAX_POLL_US, &halt))
		return bad(err, "a polling time is out of range");
	if (!read_run_as(o, cfg, err))
		return false;
	cfg->memory = (uint64_t)memory;
	cfg->cpus = (unsigned int)cpus;
	cfg->poll_us = (unsigned int)poll;
	cfg->halt_poll_us = (int)halt;
	return true;
}

static bool read_config(JsonObject *o, struct vm_config *cfg, GError **err)
{
	char *on_reboot = get_string(o, "on_reboot"), *gpu = get_string(o, "gpu");
	char *vnc = get_string(o, "vnc"), *host = NULL;
	int port;
	bool gpu_ok = !gpu || config_gpu_parse(gpu, &cfg->gpu, NULL);
	bool vnc_ok = !vnc || vnc_parse_address(vnc, &host, &port, NULL);

	cfg->kernel = get_string(o, "kernel");
	cfg->initrd = get_string(o, "initrd");
	cfg->cmdline = get_string(o, "cmdline");
	cfg->on_reboot = g_strcmp0(on_reboot, "restart") == 0 ? ON_REBOOT_RESTART : ON_REBOOT_EXIT;
	g_free(on_reboot);
	g_free(gpu);
	g_free(host);
	cfg->vnc = vnc;
	if (!gpu_ok)
		return bad(err, "gpu is not one of 2d, virgl, none");
	if (!vnc_ok)
		return bad(err, "vnc is not ADDRESS:PORT");
	return read_numbers(o, cfg, err) && read_array(o, "disks", cfg, read_disk, err) &&
	       read_array(o, "nets", cfg, read_net, err);
}

bool config_from_json(const char *json, struct vm_config *cfg, GError **err)
{
	JsonParser *p = json_parser_new();
	GError *why = NULL;
	bool ok;

	config_init(cfg);
	if (!json_parser_load_from_data(p, json, -1, &why)) {
		ok = husk_fail(err, HUSK_EXIT_USAGE, "VM configuration: %s", why->message);
		g_error_free(why);
	} else if (!json_parser_get_root(p)) { /* an empty text parses, to no node */
		ok = bad(err, "empty");
	} else if (!JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
		ok = bad(err, "not a JSON object");
	} else {
		ok = read_config(json_node_get_object(json_parser_get_root(p)), cfg, err);
	}
	g_object_unref(p);
	if (!ok)
		config_clear(cfg);
	return ok;
}
