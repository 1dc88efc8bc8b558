// SPDX-License-Identifier: MIT
/* husk start, stop, restart, delete: an instance's serving process, begun and ended. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/cli/instances.h"
#include "vmm/cli/run_detached.h"
#include "vmm/error.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"
#include "vmm/instance/serve.h"

#define POLL_US        (200 * 1000)
#define STOP_DEFAULT_S 60
#define FORCE_GRACE_S  10 /* after force-stop, before SIGKILL */

int instance_cli_fail(GError *err)
{
	int status = err->domain == HUSK_ERROR ? err->code : HUSK_EXIT_USAGE;

	g_printerr("husk: %s\n", err->message);
	g_error_free(err);
	return status;
}

/* The named instance, which must exist, with its command lock held. */
static struct instance *take(const char *cmd, const char *name, GError **err)
{
	struct instance *inst = instance_get(name, err);

	if (inst && !instance_exists(inst)) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s: no instance is called \"%s\"", cmd, name);
		g_clear_pointer(&inst, instance_free);
	}
	if (inst && !instance_lock(inst, err))
		g_clear_pointer(&inst, instance_free);
	if (!inst)
		g_prefix_error(err, "%s: ", cmd);
	return inst;
}

/* The last line the serving process wrote: why it ended. */
static char *last_words(const struct instance *inst)
{
	char *path = instance_path(inst, "husk.log"), *text = NULL, *line = NULL;

	if (g_file_get_contents(path, &text, NULL, NULL)) {
		g_strchomp(text);
		char *nl = strrchr(text, '\n');
		const char *last = nl ? nl + 1 : text;
		line = g_strdup(g_str_has_prefix(last, "husk: ") ? last + 6 : last);
	}
	g_free(text);
	g_free(path);
	if (line && *line)
		return line;
	g_free(line);
	return g_strdup("no reason given");
}

/* The serving process's exit status, as it recorded it; 1 if it could not. */
static int last_status(const struct instance *inst)
{
	char *text = NULL;
	size_t len;
	int status = HUSK_EXIT_RUNTIME;

	if (instance_read_state(inst, "exit-status", EXIT_STATUS_MAX, &text, &len) &&
	    atoi(text) > 0)
		status = atoi(text);
	g_free(text);
	return status;
}

static void progress(const char *name, const char *state, int64_t t0)
{
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r\033[Khusk: %s: %s (%lds)", name, state,
	        (long)((g_get_monotonic_time() - t0) / G_USEC_PER_SEC));
}

static void progress_end(void)
{
	if (isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
}

/* What did not come up, in words, from the serving process's "stage". */
static const char *stage_words(const char *stage)
{
	if (g_strcmp0(stage, "boot") == 0)
		return "the guest did not boot as far as cloud-init";
	if (g_strcmp0(stage, "cloud-init") == 0)
		return "cloud-init did not finish";
	if (g_strcmp0(stage, "agent") == 0)
		return "cloud-init finished, but husk-agent did not say it was up";
	return "the guest did not come up";
}

/* Polls the instance until its guest is ready, its process ends, or time runs out. */
static bool wait_ready(struct instance *inst, unsigned int timeout_s, GError **err)
{
	char *sock = instance_state_path(inst, "control.sock");
	int64_t t0 = g_get_monotonic_time(), deadline = t0 + (int64_t)timeout_s * G_USEC_PER_SEC;
	bool ready = false;
	char *stage = NULL;

	while (!ready) {
		JsonObject *reply = control_call(sock, "state", NULL);
		const char *state =
		    reply ? json_object_get_string_member(reply, "state") : "starting";

		ready = g_strcmp0(state, "running") == 0;
		if (reply && json_object_has_member(reply, "stage")) {
			g_free(stage);
			stage = g_strdup(json_object_get_string_member(reply, "stage"));
		}
		if (!ready) {
			char *what =
			    stage ? g_strdup_printf("%s (%s)", state, stage) : g_strdup(state);
			progress(inst->name, what, t0);
			g_free(what);
		}
		if (reply)
			json_object_unref(reply);
		if (ready)
			break;
		if (!instance_running_pid(inst)) {
			char *why = last_words(inst);
			progress_end();
			husk_fail(err, last_status(inst), "%s stopped while booting: %s",
			          inst->name, why);
			g_free(why);
			break;
		}
		if (g_get_monotonic_time() > deadline) {
			progress_end();
			husk_fail(
			    err, HUSK_EXIT_TIMEOUT,
			    "%s: not ready after %u s: %s (it goes on booting; husk console %s)",
			    inst->name, timeout_s, stage_words(stage), inst->name);
			break;
		}
		g_usleep(POLL_US);
	}
	if (ready)
		progress_end();
	g_free(stage);
	g_free(sock);
	return ready;
}

bool instance_boot(const char *name, unsigned int timeout_s, GError **err)
{
	struct instance *inst = instance_get(name, err);
	bool ok;

	/* An image's app: started again as husk run --image --detach first ran it. */
	if (inst && run_spec_is_image_run(inst))
		ok = run_detached_boot(name, err);
	else
		ok = inst && serve_spawn(name, err) && wait_ready(inst, timeout_s, err);

	instance_free(inst);
	return ok;
}

/* Waits for the serving process to end; force-stops, then kills it, if it will not. */
static void wait_stopped(struct instance *inst, unsigned int timeout_s)
{
	char *sock = instance_state_path(inst, "control.sock");
	int64_t t0 = g_get_monotonic_time();
	bool forced = false;
	pid_t pid;

	while ((pid = instance_running_pid(inst))) {
		int64_t waited_s = (g_get_monotonic_time() - t0) / G_USEC_PER_SEC;

		progress(inst->name, "stopping", t0);
		if (!forced && waited_s >= timeout_s) {
			JsonObject *r = control_call(sock, "force-stop", NULL);
			if (r)
				json_object_unref(r);
			forced = true;
		} else if (forced && waited_s >= timeout_s + FORCE_GRACE_S) {
			kill(pid, SIGKILL);
		}
		g_usleep(POLL_US);
	}
	progress_end();
	g_free(sock);
}

/* Asks the serving process to stop, and waits for it. */
static void stop_instance(struct instance *inst, bool force, unsigned int timeout_s)
{
	if (!instance_running_pid(inst))
		return;
	char *sock = instance_state_path(inst, "control.sock");
	JsonObject *reply = control_call(sock, force ? "force-stop" : "stop", NULL);
	g_free(sock);
	if (reply)
		json_object_unref(reply);
	/* No answer: a process that hangs still holds the lock; wait_stopped ends it. */
	wait_stopped(inst, force ? 0 : timeout_s);
}

struct lifecycle_opts {
	gboolean force;
	int timeout;
	char *name;
};

/* Parses "CMD NAME [--force] [--timeout S]"; the entries given are those CMD takes. */
static bool parse(int argc, char **argv, const GOptionEntry *entries, const char *summary,
                  struct lifecycle_opts *o, GError **err)
{
	GOptionContext *ctx = g_option_context_new("NAME");
	bool ok;

	g_option_context_set_summary(ctx, summary);
	g_option_context_set_description(ctx, INSTANCE_EXIT_TEXT);
	if (entries)
		g_option_context_add_main_entries(ctx, entries, NULL);
	ok = g_option_context_parse(ctx, &argc, &argv, err);
	if (ok && argc != 2)
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "%s: give one instance name (try 'husk %s --help')", argv[0],
		               argv[0]);
	if (ok && o->timeout < 0)
		ok = husk_fail(err, HUSK_EXIT_USAGE, "%s: --timeout must be 0 or more", argv[0]);
	if (ok)
		o->name = argv[1];
	if (!ok && (*err)->domain != HUSK_ERROR) {
		(*err)->domain = HUSK_ERROR;
		(*err)->code = HUSK_EXIT_USAGE;
	}
	g_option_context_free(ctx);
	return ok;
}

int start_main(int argc, char **argv)
{
	struct lifecycle_opts o = {.timeout = INSTANCE_DEFAULT_TIMEOUT_S};
	const GOptionEntry entries[] = {{"timeout", 't', 0, G_OPTION_ARG_INT, &o.timeout,
	                                 "Seconds to wait for the guest to be ready (default 900)",
	                                 "S"},
	                                {0}};
	GError *err = NULL;
	struct instance *inst = NULL;

	if (!parse(argc, argv, entries, "Boot a stopped instance again.", &o, &err) ||
	    !(inst = take("start", o.name, &err)))
		return instance_cli_fail(err);
	if (instance_running_pid(inst)) {
		printf("%s is already running\n", inst->name);
	} else if (!instance_boot(inst->name, (unsigned int)o.timeout, &err)) {
		instance_free(inst);
		return instance_cli_fail(err);
	} else {
		printf("%s is running\n", inst->name);
	}
	instance_free(inst);
	return 0;
}

static const char stop_summary[] =
    "Stop an instance: the guest is asked to power off, and ended after --timeout\n"
    "seconds if it has not (default 60). --force ends it at once; the disks are\n"
    "flushed either way.";

/* stop's and restart's options. */
static bool parse_stop(int argc, char **argv, const char *summary, struct lifecycle_opts *o,
                       GError **err)
{
	const GOptionEntry entries[] = {
	    {"force", 'f', 0, G_OPTION_ARG_NONE, &o->force, "End the VM at once", NULL},
	    {"timeout", 't', 0, G_OPTION_ARG_INT, &o->timeout,
	     "Seconds the guest has to power off (default 60)", "S"},
	    {0}};

	o->timeout = STOP_DEFAULT_S;
	return parse(argc, argv, entries, summary, o, err);
}

int stop_main(int argc, char **argv)
{
	struct lifecycle_opts o = {0};
	GError *err = NULL;
	struct instance *inst = NULL;

	if (!parse_stop(argc, argv, stop_summary, &o, &err) || !(inst = take("stop", o.name, &err)))
		return instance_cli_fail(err);
	bool was_running = instance_running_pid(inst) != 0;
	stop_instance(inst, o.force, (unsigned int)o.timeout);
	printf("%s %s\n", inst->name, was_running ? "stopped" : "was not running");
	instance_free(inst);
	return 0;
}

int restart_main(int argc, char **argv)
{
	struct lifecycle_opts o = {0};
	GError *err = NULL;
	struct instance *inst = NULL;

	if (!parse_stop(argc, argv, "Stop an instance and boot it again.", &o, &err) ||
	    !(inst = take("restart", o.name, &err)))
		return instance_cli_fail(err);
	stop_instance(inst, o.force, (unsigned int)o.timeout);
	bool ok = instance_boot(inst->name, INSTANCE_DEFAULT_TIMEOUT_S, &err);
	if (ok)
		printf("%s is running\n", inst->name);
	instance_free(inst);
	return ok ? 0 : instance_cli_fail(err);
}

int delete_main(int argc, char **argv)
{
	struct lifecycle_opts o = {0};
	GError *err = NULL;
	struct instance *inst = NULL;

	if (!parse(argc, argv, NULL, "Stop an instance and remove everything it owned.", &o,
	           &err) ||
	    !(inst = take("delete", o.name, &err)))
		return instance_cli_fail(err);
	stop_instance(inst, true, 0);
	bool ok = instance_remove(inst, &err);
	if (ok)
		printf("%s deleted\n", inst->name);
	instance_free(inst);
	return ok ? 0 : instance_cli_fail(err);
}
