// SPDX-License-Identifier: MIT
/*
 * husk mount HOSTDIR NAME:GUESTPATH and husk umount NAME:GUESTPATH: a host
 * folder into a running instance and out again (how: vmm/instance/mounts.h).
 * The instance's husk plugs the folder's device and keeps the mount (the
 * control socket's "mount"); then this command asks the guest's agent to
 * mount it, and undoes the plug if the agent cannot. Unmounting goes the
 * other way: the agent first (the guest lets the device go), then husk.
 *
 * NAME may instead be the path of a `husk run --control` socket.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/cli/agent.h"
#include "vmm/cli/instances.h"
#include "vmm/error.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"
#include "vmm/instance/mounts.h"
#include "vmm/instance/protocol.h"

#define AGENT_FAILED HUSK_EXIT_EXEC_FAILED

static const char mount_exit_text[] =
    "Exit status: 0 done; 2 bad usage (a host folder that does not exist, a guest\n"
    "path that is not absolute or has . or .., something already mounted there, for\n"
    "umount nothing mounted there); 1 no such instance, it is not running, or husk\n"
    "could not plug the folder; 125 the guest's agent could not be reached or could\n"
    "not do it (its message is shown; a mount is then undone, an umount kept).";

/* "NAME:/PATH": split at the first ":/" (a control socket's path may hold ':'). */
static bool split_target(const char *cmd, const char *text, char **target, char **guest,
                         GError **err)
{
	const char *sep = strstr(text, ":/");

	if (!sep || sep == text)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: \"%s\" is not NAME:GUESTPATH (GUESTPATH absolute)", cmd,
		                 text);
	*target = g_strndup(text, (gsize)(sep - text));
	*guest = g_strdup(sep + 1);
	return true;
}

/* The control socket of TARGET: a path as given, else the running instance's. */
static char *control_socket(const char *cmd, const char *target, GError **err)
{
	if (strchr(target, '/'))
		return g_strdup(target);
	struct instance *inst = instance_get(target, err);
	char *path = NULL;

	if (!inst)
		g_prefix_error(err, "%s: ", cmd);
	else if (!instance_exists(inst))
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: no instance called %s", cmd, target);
	else if (!instance_running_pid(inst))
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s is not running (husk start %s)", cmd,
		          target, target);
	else
		path = instance_state_path(inst, "control.sock");
	instance_free(inst);
	return path;
}

/*
 * A control call. The usage errors (a missing folder, a path taken or
 * free) are found here first, so what the server refuses is its own failure.
 */
static JsonObject *call(const char *cmd, const char *sock, const char *op, JsonObject *args,
                        GError **err)
{
	JsonObject *reply = control_call_with(sock, op, args, err);

	if (!reply && !g_str_has_prefix((*err)->message, cmd))
		g_prefix_error(err, "%s: ", cmd);
	return reply;
}

static int fail(GError *err)
{
	int status = err->code ? err->code : HUSK_EXIT_RUNTIME;

	g_printerr("husk: %s\n", err->message);
	g_error_free(err);
	return status;
}

static JsonObject *find_mount(JsonObject *reply, const char *guest);

static bool do_mount(const char *host, const char *target, const char *guest, bool ro, GError **err)
{
	char *sock = control_socket("mount", target, err);
	JsonObject *args = json_object_new(), *r = NULL;
	JsonObject *list = sock ? call("mount", sock, "mounts", NULL, err) : NULL;

	json_object_set_string_member(args, "host", host);
	json_object_set_string_member(args, "guest", guest);
	json_object_set_boolean_member(args, "ro", ro);
	if (list && find_mount(list, guest))
		husk_fail(err, HUSK_EXIT_USAGE, "mount: something is already mounted at %s", guest);
	else if (list)
		r = call("mount", sock, "mount", args, err);
	if (list)
		json_object_unref(list);
	bool ok = r != NULL;
	if (ok && !mount_agent_call(protocol_string(r, "vsock"), false, protocol_string(r, "tag"),
	                            guest, (int)json_object_get_int_member(r, "slot"), ro, err)) {
		(*err)->code = AGENT_FAILED;
		/* Undone: the guest lets go of the device if it found it, then husk unplugs it. */
		mount_agent_call(protocol_string(r, "vsock"), true, NULL, guest,
		                 (int)json_object_get_int_member(r, "slot"), false, NULL);
		JsonObject *u = control_call_with(sock, "umount", args, NULL);
		if (u)
			json_object_unref(u);
		ok = false;
	}
	if (r)
		json_object_unref(r);
	json_object_unref(args);
	g_free(sock);
	return ok;
}

/* The mount at 'guest' in a "mounts" reply, or NULL. */
static JsonObject *find_mount(JsonObject *reply, const char *guest)
{
	JsonNode *n = json_object_get_member(reply, "mounts");
	JsonArray *a = n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;

	for (guint i = 0; a && i < json_array_get_length(a); i++) {
		JsonNode *e = json_array_get_element(a, i);
		if (!JSON_NODE_HOLDS_OBJECT(e))
			continue;
		const char *g = protocol_string(json_node_get_object(e), "guest");
		if (g && strcmp(g, guest) == 0)
			return json_node_get_object(e);
	}
	return NULL;
}

static bool do_umount(const char *target, const char *guest, GError **err)
{
	char *sock = control_socket("umount", target, err);
	JsonObject *list = sock ? call("umount", sock, "mounts", NULL, err) : NULL;
	JsonObject *m = list ? find_mount(list, guest) : NULL;
	bool ok = m != NULL;

	if (list && !m)
		husk_fail(err, HUSK_EXIT_USAGE, "umount: nothing is mounted at %s", guest);
	/* A mount whose folder was missing at the start has no device: husk forgets it. */
	if (ok && json_object_get_int_member(m, "slot") >= 0 &&
	    !mount_agent_call(protocol_string(list, "vsock"), true, NULL, guest,
	                      (int)json_object_get_int_member(m, "slot"), false, err)) {
		(*err)->code = AGENT_FAILED;
		ok = false;
	}
	if (ok) {
		JsonObject *args = json_object_new();
		json_object_set_string_member(args, "guest", guest);
		JsonObject *r = call("umount", sock, "umount", args, err);
		ok = r != NULL;
		if (r)
			json_object_unref(r);
		json_object_unref(args);
	}
	if (list)
		json_object_unref(list);
	g_free(sock);
	return ok;
}

static GOptionContext *context(const char *params, const char *summary)
{
	GOptionContext *ctx = g_option_context_new(params);

	g_option_context_set_summary(ctx, summary);
	g_option_context_set_description(ctx, mount_exit_text);
	return ctx;
}

int mount_main(int argc, char **argv)
{
	gboolean ro = FALSE;
	const GOptionEntry entries[] = {{"ro", 0, 0, G_OPTION_ARG_NONE, &ro,
	                                 "Mount read-only (the host refuses writes too)", NULL},
	                                {0}};
	GOptionContext *ctx = context(
	    "HOSTDIR NAME:GUESTPATH - mount a host folder in a running instance",
	    "The folder is a new virtio-fs device, hot-plugged, with --share's guarantees\n"
	    "(confined to the folder, no procfs or sysfs, other host mounts inside sealed,\n"
	    "setuid bits dropped). Kept across stop and start. The host user's files belong\n"
	    "to the guest's first user (uid and gid 1000). NAME may be the path of a husk run\n"
	    "--control socket.");
	GError *err = NULL;
	char *target = NULL, *guest = NULL, *host = NULL;

	g_option_context_add_main_entries(ctx, entries, NULL);
	bool ok = g_option_context_parse(ctx, &argc, &argv, &err);
	g_option_context_free(ctx);
	if (!ok || argc != 3) {
		g_printerr("husk: mount: %s\nusage: husk mount [--ro] HOSTDIR NAME:GUESTPATH\n",
		           err ? err->message : "a host folder and NAME:GUESTPATH, please");
		g_clear_error(&err);
		return HUSK_EXIT_USAGE;
	}
	host = g_canonicalize_filename(argv[1], NULL);
	ok =
	    mount_host_check(host, &err) && split_target("mount", argv[2], &target, &guest, &err) &&
	    mount_guest_path_check("mount", guest, &err) && do_mount(host, target, guest, ro, &err);
	g_free(host);
	g_free(target);
	g_free(guest);
	return ok ? 0 : fail(err);
}

int umount_main(int argc, char **argv)
{
	GOptionContext *ctx = context("NAME:GUESTPATH - unmount a folder husk mount mounted",
	                              "The guest unmounts it (it fails while a file there is in "
	                              "use), then its device\nis unplugged and the mount "
	                              "forgotten.");
	GError *err = NULL;
	char *target = NULL, *guest = NULL;

	bool ok = g_option_context_parse(ctx, &argc, &argv, &err);
	g_option_context_free(ctx);
	if (!ok || argc != 2) {
		g_printerr("husk: umount: %s\nusage: husk umount NAME:GUESTPATH\n",
		           err ? err->message : "one NAME:GUESTPATH, please");
		g_clear_error(&err);
		return HUSK_EXIT_USAGE;
	}
	ok = split_target("umount", argv[1], &target, &guest, &err) &&
	     mount_guest_path_check("umount", guest, &err) && do_umount(target, guest, &err);
	g_free(target);
	g_free(guest);
	return ok ? 0 : fail(err);
}
