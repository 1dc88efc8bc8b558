// SPDX-License-Identifier: MIT
/*
 * husk launch: a new instance from a cloud image. Its folder gets a qcow2
 * overlay on the cached base image, grown to --disk-size (the guest's
 * cloud-init grows its root partition into it), a NoCloud seed and the VM
 * configuration; then its serving process boots it, and launch returns
 * once cloud-init has finished. A launch that fails before the boot
 * leaves no folder behind.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devices/block/block.h"
#include "devices/display/vnc.h"
#include "devices/net/net.h"
#include "devices/virtio/blk.h"
#include "vmm/cli/instances.h"
#include "vmm/config.h"
#include "vmm/error.h"
#include "vmm/instance/control.h"
#include "vmm/instance/images.h"
#include "vmm/instance/instance.h"
#include "vmm/instance/mounts.h"
#include "vmm/instance/seed.h"
#include "vmm/options.h"
#include "vmm/size.h"

#define DEFAULT_DISK_SIZE (10 * GiB)
#define DEFAULT_MEMORY    (1 * GiB)

struct launch_opts {
	char *name, *memory, *disk_size, *cloud_init, *sha256, *gpu, *display, *user;
	int cpus, timeout;
	char **publish, **nets, **mounts;
	GPtrArray *mount_specs; /* --mount's, checked */
	struct run_as run_as;   /* --user's, checked */
	gboolean timings;
	const char *image;
	GString *laps; /* --timings: " step ms" for each step so far */
	int64_t lap_us;
};

/* --timings: how long the step just done took. */
static void lap(struct launch_opts *o, const char *step)
{
	int64_t us = g_get_monotonic_time();

	g_string_append_printf(o->laps, " %s %.1f", step, (double)(us - o->lap_us) / 1000);
	o->lap_us = us;
}

static const char launch_description[] =
    "IMAGE is a qcow2 or raw cloud image: a file, an http(s):// URL, or an alias\n"
    "(below), downloaded once into $HUSK_HOME/images.\n"
    "-p publishes a guest port on the host, as docker run -p does: ADDR defaults to\n"
    "127.0.0.1. --cloud-init is the user-data cloud-init runs; husk's vendor-data\n"
    "adds a user \"husk\" with sudo and your ~/.ssh/id_*.pub key.\n"
    "\n" INSTANCE_EXIT_TEXT;

static bool parse(int argc, char **argv, struct launch_opts *o, GError **err)
{
	const GOptionEntry entries[] = {
	    {"name", 'n', 0, G_OPTION_ARG_STRING, &o->name,
	     "The instance's name: a-z, 0-9 and - (default: primary)", "NAME"},
	    {"cpus", 'c', 0, G_OPTION_ARG_INT, &o->cpus, "Number of vCPUs (default 1)", "N"},
	    {"memory", 'm', 0, G_OPTION_ARG_STRING, &o->memory, "Guest RAM (default 1G)", "SIZE"},
	    {"disk-size", 'd', 0, G_OPTION_ARG_STRING, &o->disk_size,
	     "The disk's size, at least the image's (default 10G)", "SIZE"},
	    {"cloud-init", 0, 0, G_OPTION_ARG_FILENAME, &o->cloud_init,
	     "cloud-init user-data (a #cloud-config file, a script, ...)", "FILE"},
	    {"publish", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &o->publish,
	     "Publish a guest port on the host (repeatable)", "[ADDR:]HOSTPORT:GUESTPORT[/udp]"},
	    {"net", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->nets,
	     "A NIC as husk run's --net (default: user)", "user[,...]|tap=IFNAME[,...]"},
	    {"gpu", 0, 0, G_OPTION_ARG_STRING, &o->gpu,
	     "A display, for husk screenshot: virtio-gpu in 2D, with 3D (virgl), or none (default)",
	     "2d|virgl|none"},
	    {"display", 0, 0, G_OPTION_ARG_STRING, &o->display,
	     "Show the display (--gpu 2d) to VNC clients at ADDRESS:PORT, as husk run's --display",
	     "none|vnc=ADDRESS:PORT"},
	    {"mount", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->mounts,
	     "A host folder in the guest, as husk mount does; kept (repeatable)", MOUNT_SYNTAX},
	    {"user", 'u', 0, G_OPTION_ARG_STRING, &o->user,
	     "Started as root, serve the instance as USER once its VM is set up (or HUSK_USER)",
	     "USER[:GROUP]"},
	    {"sha256", 0, 0, G_OPTION_ARG_STRING, &o->sha256,
	     "The SHA-256 a downloaded image must have", "HEX"},
	    {"timeout", 't', 0, G_OPTION_ARG_INT, &o->timeout,
	     "Seconds to wait for the guest to be ready (default 900)", "S"},
	    {"timings", 0, 0, G_OPTION_ARG_NONE, &o->timings,
	     "Print how long each step took (to stderr)", NULL},
	    {0}};
	GOptionContext *ctx = g_option_context_new("IMAGE - launch a new instance");
	bool ok;

	g_option_context_add_main_entries(ctx, entries, NULL);
	GString *text = g_string_new(launch_description);
	g_string_append(text, "\n\nAliases:");
	for (const struct image_alias *a = image_aliases; a->name; a++)
		g_string_append_printf(text, " %s", a->name);
	g_string_append(text, " (HUSK_IMAGE_BASE replaces their base URL).");
	g_option_context_set_description(ctx, text->str);
	ok = g_option_context_parse(ctx, &argc, &argv, err);
	if (!ok) {
		(*err)->domain = HUSK_ERROR;
		(*err)->code = HUSK_EXIT_USAGE;
		g_prefix_error(err, "launch: ");
	} else if (argc != 2) {
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "launch: give one IMAGE (try 'husk launch --help')");
	} else {
		o->image = argv[1];
	}
	g_option_context_free(ctx);
	g_string_free(text, TRUE);
	return ok;
}

static bool parse_size(const char *option, const char *text, uint64_t dflt, uint64_t *out,
                       GError **err)
{
	*out = dflt;
	if (!text || size_parse(text, out))
		return true;
	return husk_fail(err, HUSK_EXIT_USAGE, "launch: %s: \"%s\" is not a size", option, text);
}

/*
 * --user: the serving process gives root up once the VM is set up, as
 * husk run --user does, and writes only in the instance's state/ after.
 */
static bool parse_user(struct launch_opts *o, GError **err)
{
	const char *env = g_getenv("HUSK_USER");
	const char *text = o->user ? o->user : env && *env ? env : NULL;
	const char *what = o->user ? "launch: --user" : "launch: HUSK_USER";

	if (!text)
		return true;
	if (!run_as_parse(what, text, &o->run_as, err))
		return false;
	if (geteuid() != 0)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: only husk started as root can become another user", what);
	return true;
}

/* The VM: the overlay and the seed, user networking with the published ports. */
static bool build_config(const struct launch_opts *o, const struct instance *inst,
                         struct vm_config *cfg, GError **err)
{
	struct disk_config *disk, *seed;
	uint64_t memory;

	if (o->cpus < 1 || o->cpus > VM_MAX_CPUS)
		return husk_fail(err, HUSK_EXIT_USAGE, "launch: --cpus: %d is not from 1 to %d",
		                 o->cpus, VM_MAX_CPUS);
	if (!parse_size("--memory", o->memory, DEFAULT_MEMORY, &memory, err))
		return false;
	if (memory < VM_MIN_MEMORY || memory > VM_MAX_MEMORY)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "launch: --memory: out of range (16M to 1T)");
	cfg->cpus = (unsigned int)o->cpus;
	cfg->memory = memory;
	cfg->run_as = o->run_as;
	if (o->gpu && !config_gpu_parse(o->gpu, &cfg->gpu, err)) {
		g_prefix_error(err, "launch: ");
		return false;
	}
	bool window = false;
	if (o->display && !config_display_parse(o->display, &cfg->vnc, &window, err)) {
		g_prefix_error(err, "launch: ");
		return false;
	}
	/* An instance outlives the terminal and desktop it was launched from. */
	if (window)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "launch: --display window is for husk run; an instance takes "
		                 "vnc=ADDRESS:PORT");
	if (cfg->vnc && cfg->gpu == GPU_NONE)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "launch: --display vnc needs --gpu 2d or virgl");
	if (cfg->vnc && !vnc_available())
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "launch: --display vnc: husk was built without libvncserver");
	disk = g_new0(struct disk_config, 1);
	disk->path = instance_path(inst, "disk.qcow2");
	disk->format = g_strdup("qcow2");
	config_add_disk(cfg, disk);
	seed = g_new0(struct disk_config, 1);
	seed->path = instance_path(inst, "seed.img");
	seed->format = g_strdup("raw");
	seed->read_only = true;
	config_add_disk(cfg, seed);
	for (char **n = o->nets; n && *n; n++) {
		struct net_config *net = g_new0(struct net_config, 1);
		if (!net_config_parse(*n, cfg->nets->len, net, err)) {
			g_free(net);
			return false;
		}
		config_add_net(cfg, net);
	}
	for (char **p = o->publish; p && *p; p++)
		if (!config_publish(cfg, *p, err))
			return false;
	if (cfg->nets->len)
		return true;
	struct net_config *user = g_new0(struct net_config, 1);
	net_config_parse("user", 0, user, NULL);
	config_add_net(cfg, user);
	return true;
}

/* The overlay: the base image under it, as large as --disk-size. */
static bool make_disk(const struct instance *inst, const char *base, uint64_t want, GError **err)
{
	struct block_open_options ro = {.read_only = true};
	struct block_backend *b = block_open(base, &ro, err);

	if (!b) {
		g_prefix_error(err, "launch: ");
		return false;
	}
	uint64_t size = MAX(want, b->size);
	char *format = g_strdup(b->format);
	block_close(b);
	char *path = instance_path(inst, "disk.qcow2");
	bool ok = block_create(path, "qcow2", size, base, format, err);
	g_free(path);
	g_free(format);
	return ok;
}

/* The first of the user's SSH public keys, for the vendor-data's user. */
static char *ssh_key(void)
{
	static const char *const names[] = {"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"};

	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		char *path = g_build_filename(g_get_home_dir(), ".ssh", names[i], NULL);
		char *key = NULL;
		bool found = g_file_get_contents(path, &key, NULL, NULL);
		g_free(path);
		if (found)
			return g_strstrip(key);
	}
	return NULL;
}

/* husk-agent, built with husk and carried inside it (firmware/meson.build). */
extern const unsigned char husk_agent_blob[];
extern const unsigned long husk_agent_blob_size;

static bool make_seed(const struct launch_opts *o, const struct instance *inst, GError **err)
{
	char *user = NULL, *key = ssh_key(), *path = instance_path(inst, "seed.img");
	char *id = g_strdup_printf("husk-%s-%" G_GINT64_FORMAT, inst->name, g_get_real_time());
	gsize len = 0;
	GError *why = NULL;
	bool ok = true;

	if (o->cloud_init && !g_file_get_contents(o->cloud_init, &user, &len, &why)) {
		ok = husk_fail(err, HUSK_EXIT_USAGE, "launch: --cloud-init: %s", why->message);
		g_error_free(why);
	}
	struct seed_instance si = {.name = inst->name,
	                           .instance_id = id,
	                           .ssh_key = key,
	                           .user_data = user,
	                           .user_len = len,
	                           .agent = husk_agent_blob,
	                           .agent_len = husk_agent_blob_size};
	if (ok)
		ok = seed_write_instance(path, &si, err);
	g_free(user);
	g_free(key);
	g_free(path);
	g_free(id);
	return ok;
}

static bool write_file(const struct instance *inst, const char *name, const char *text,
                       GError **err)
{
	char *path = instance_path(inst, name);
	GError *why = NULL;
	bool ok = g_file_set_contents(path, text, -1, &why);

	if (!ok) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "launch: %s", why->message);
		g_error_free(why);
	}
	g_free(path);
	return ok;
}

/* instance.json: what the instance was made from, for list and info. */
static bool write_origin(const struct instance *inst, const char *image, const char *base,
                         GError **err)
{
	JsonObject *o = json_object_new();
	JsonNode *root = json_node_init_object(json_node_alloc(), o);
	GDateTime *now = g_date_time_new_now_utc();
	char *created = g_date_time_format_iso8601(now);

	json_object_set_string_member(o, "image", image);
	json_object_set_string_member(o, "base", base);
	json_object_set_string_member(o, "created", created);
	char *text = json_to_string(root, TRUE);
	bool ok = write_file(inst, "instance.json", text, err);
	g_free(text);
	g_free(created);
	g_date_time_unref(now);
	json_node_unref(root);
	json_object_unref(o);
	return ok;
}

/* Everything in the folder; config.json last, as it makes the instance exist. */
static bool create(struct launch_opts *o, struct instance *inst, const char *base, GError **err)
{
	struct vm_config cfg;
	uint64_t disk_size;

	config_init(&cfg);
	bool ok = parse_size("--disk-size", o->disk_size, DEFAULT_DISK_SIZE, &disk_size, err) &&
	          build_config(o, inst, &cfg, err) && make_disk(inst, base, disk_size, err);
	lap(o, "overlay");
	ok = ok && make_seed(o, inst, err);
	lap(o, "seed");
	ok = ok && write_origin(inst, o->image, base, err);
	if (ok && cfg.run_as.set)
		ok = instance_make_state_dir(inst, cfg.run_as.uid, cfg.run_as.gid, err);
	if (ok && o->mount_specs->len) {
		char *path = instance_state_path(inst, "mounts.json");
		ok = mounts_save(path, o->mount_specs, err);
		g_free(path);
	}
	char *json = ok ? config_to_json(&cfg, err) : NULL;
	ok = json && write_file(inst, "config.json", json, err);
	lap(o, "config");
	g_free(json);
	config_clear(&cfg);
	return ok;
}

static void print_launched(const struct instance *inst)
{
	char *sock = instance_state_path(inst, "control.sock");
	JsonObject *info = control_call(sock, "info", NULL);
	const char *ip = info && json_object_has_member(info, "ipv4")
	                     ? json_object_get_string_member(info, "ipv4")
	                     : "-";

	printf("Launched: %s\nIPv4: %s\n", inst->name, ip);
	if (info)
		json_object_unref(info);
	g_free(sock);
}

static void free_opts(struct launch_opts *o)
{
	g_free(o->name);
	g_free(o->memory);
	g_free(o->disk_size);
	g_free(o->cloud_init);
	g_free(o->sha256);
	g_free(o->gpu);
	g_free(o->display);
	g_free(o->user);
	g_strfreev(o->publish);
	g_strfreev(o->nets);
	g_strfreev(o->mounts);
	if (o->mount_specs)
		g_ptr_array_unref(o->mount_specs);
}

/* --mount: each HOSTDIR:GUESTPATH[:ro] sound, its folder there, no guest path twice. */
static bool check_mounts(struct launch_opts *o, GError **err)
{
	o->mount_specs = mounts_new();
	for (char **m = o->mounts; m && *m; m++) {
		struct mount_spec *spec = g_new0(struct mount_spec, 1);
		if (!mount_spec_parse(*m, spec, err)) {
			g_free(spec);
			break;
		}
		g_ptr_array_add(o->mount_specs, spec);
		if (!mount_host_check(spec->host, err))
			break;
		/* The serving process opens it after giving root up: as that user. */
		if (o->run_as.set && !mount_host_check_as(spec->host, spec->read_only,
		                                          o->run_as.uid, o->run_as.gid, err))
			break;
		for (guint i = 0; i + 1 < o->mount_specs->len; i++)
			if (!strcmp(((struct mount_spec *)o->mount_specs->pdata[i])->guest,
			            spec->guest))
				husk_fail(err, HUSK_EXIT_USAGE, "--mount: %s is given twice",
				          spec->guest);
		if (*err)
			break;
	}
	if (!*err && o->mount_specs->len > MOUNTS_MAX)
		husk_fail(err, HUSK_EXIT_USAGE, "--mount: %d mounts is the most a guest has",
		          MOUNTS_MAX);
	if (*err)
		g_prefix_error(err, "launch: ");
	return !*err;
}

/* The folder, made from nothing: on any failure it goes again. */
static bool make_instance(struct launch_opts *o, struct instance *inst, GError **err)
{
	/* Before the lock, which makes the folder: a refused --mount leaves nothing. */
	if (!check_mounts(o, err) || !instance_lock(inst, err))
		return false;
	if (instance_exists(inst))
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "launch: an instance called %s already exists", inst->name);
	char *base = images_fetch(o->image, o->sha256, err);
	lap(o, "image");
	bool ok = base && create(o, inst, base, err);
	if (!ok)
		instance_remove(inst, NULL);
	g_free(base);
	return ok;
}

int launch_main(int argc, char **argv)
{
	struct launch_opts o = {.cpus = 1,
	                        .timeout = INSTANCE_DEFAULT_TIMEOUT_S,
	                        .laps = g_string_new(NULL),
	                        .lap_us = g_get_monotonic_time()};
	GError *err = NULL;
	struct instance *inst = NULL;
	int status = 0;

	if (parse(argc, argv, &o, &err) && parse_user(&o, &err)) {
		if (!o.name)
			o.name = g_strdup("primary");
		if (!(inst = instance_get(o.name, &err)))
			g_prefix_error(&err, "launch: ");
	}
	bool ok = inst && make_instance(&o, inst, &err) &&
	          instance_boot(inst->name, (unsigned int)o.timeout, &err);
	lap(&o, "boot-to-ready");
	if (ok)
		print_launched(inst);
	else
		status = instance_cli_fail(err);
	if (o.timings)
		g_printerr("husk: launch steps (ms):%s\n", o.laps->str);
	g_string_free(o.laps, TRUE);
	instance_free(inst);
	free_opts(&o);
	return status;
}
