// SPDX-License-Identifier: MIT
/*
 * husk run --image --detach: an image's app as an instance.
 *
 * The instance's serving process (serve_spawn_body) forks once more: the
 * child runs the app exactly as the foreground husk run --image does
 * (run_spec_exec), its output through two pipes; the serving process
 * keeps those in stdout.log and stderr.log (APPLOG_MAX each, rotated),
 * answers the control socket (state, info, stop, force-stop) and records
 * the app's exit status. A signal to that child is Ctrl-C in the
 * foreground: SIGTERM to the app, the VM ended STOP_GRACE_S later; a
 * second signal ends the VM at once.
 *
 * Why a child rather than the VM in the serving process itself: exec's
 * machinery (the relay, the signal forwarding, the teardown) runs as it
 * is, and the app's output never mixes with husk's own messages, which
 * go to husk.log.
 */
#include "vmm/cli/run_detached.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/cli/instances.h"
#include "vmm/cli/run_image.h"
#include "vmm/error.h"
#include "vmm/instance/applog.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"
#include "vmm/instance/serve.h"
#include "vmm/oci/image.h"
#include "vmm/seccomp_threads.h"
#include "vmm/size.h"

#define START_POLL_US   (20 * 1000)
#define RUNNING_LOCK_FD 3                                  /* where serve_spawn_body keeps it */
#define END_WORDS       "husk: the app ended with status " /* husk.log's last line */

/* --- the folder -------------------------------------------------------------- */

static bool read_spec(const struct instance *inst, struct run_spec *spec, GError **err)
{
	char *json = NULL;
	bool ok = instance_read_trusted(inst, "config.json", &json, err) &&
	          run_spec_from_json(json, spec, err);

	if (!ok && !json)
		run_spec_init(spec);
	g_free(json);
	return ok;
}

/* The app's exit status as the serving process recorded it, or -1. */
static int app_status(const struct instance *inst)
{
	char *text = NULL, *end;
	size_t len;
	int status = -1;

	if (instance_read_state(inst, "exit-status", EXIT_STATUS_MAX, &text, &len)) {
		long n = strtol(text, &end, 10);
		if (end != text && n >= 0 && n < 256)
			status = (int)n;
	}
	g_free(text);
	return status;
}

static void set_status(const struct instance *inst, int status)
{
	char *path = instance_state_path(inst, "exit-status");
	char *text = g_strdup_printf("%d\n", status);

	if (status < 0)
		unlink(path);
	else
		g_file_set_contents(path, text, -1, NULL);
	g_free(text);
	g_free(path);
}

/* exec's --memory and --cpus as the spec has them, else exec's defaults. */
static void spec_resources(const struct run_spec *spec, gint64 *cpus, gint64 *memory)
{
	uint64_t bytes;

	*cpus = 1;
	*memory = 1024 * 1024 * 1024;
	for (guint i = 0; i < spec->options->len; i++) {
		const char *o = spec->options->pdata[i];
		if (g_str_has_prefix(o, "--cpus="))
			*cpus = g_ascii_strtoll(o + 7, NULL, 10);
		else if (g_str_has_prefix(o, "--memory=") && size_parse(o + 9, &bytes))
			*memory = (gint64)bytes;
	}
}

static void describe_spec(const struct run_spec *spec, JsonObject *d)
{
	JsonArray *ports = json_array_new();
	gint64 cpus, memory;

	spec_resources(spec, &cpus, &memory);
	json_object_set_string_member(d, "image", spec->image);
	json_object_set_int_member(d, "cpus", cpus);
	json_object_set_int_member(d, "memory", memory);
	for (guint i = 0; i < spec->publish->len; i++)
		json_array_add_string_element(ports, spec->publish->pdata[i]);
	json_object_set_array_member(d, "ports", ports);
}

void run_detached_describe(const struct instance *inst, JsonObject *d)
{
	struct run_spec spec;
	int status = app_status(inst);

	if (read_spec(inst, &spec, NULL))
		describe_spec(&spec, d);
	run_spec_clear(&spec);
	json_object_set_string_member(d, "kind", RUN_SPEC_KIND);
	if (status >= 0) {
		char *state = g_strdup_printf("exited (%d)", status);
		json_object_set_string_member(d, "state", state);
		json_object_set_int_member(d, "exit_status", status);
		g_free(state);
	}
}

/* --- the serving process ------------------------------------------------------ */

enum app_state { APP_STARTING, APP_RUNNING, APP_STOPPING };

struct app_pipe {
	int fd; /* the read end */
	struct applog *log;
};

struct app_server {
	struct instance *inst;
	struct run_spec spec;
	pid_t child;
	enum app_state state;
	int status;
	struct app_pipe pipes[2]; /* the app's stdout, stderr */
	int started_fd;
	int64_t started_us;
	GMainLoop *loop;
};

/* Into the log, what the pipe holds now; false at its end (or an error). */
static bool copy_out(struct app_pipe *p)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(p->fd, buf, sizeof(buf))) < 0 && errno == EINTR)
		;
	if (n > 0 && !applog_write(p->log, buf, (size_t)n))
		g_printerr("husk: the app's log: %s\n", g_strerror(errno));
	return n > 0;
}

static gboolean on_app_output(gint fd, GIOCondition cond, gpointer data)
{
	return copy_out(data) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* "started" in the folder: the app ran, even if it ended before anyone asked. */
static void mark_started(const struct instance *inst, bool started)
{
	char *path = instance_state_path(inst, "started");

	if (started)
		g_file_set_contents(path, "", 0, NULL);
	else
		unlink(path);
	g_free(path);
}

/* The byte exec sends once the app runs (the pipe is non-blocking). */
static void check_started(struct app_server *s)
{
	char byte;

	if (read(s->started_fd, &byte, 1) == 1) {
		mark_started(s->inst, true);
		if (s->state == APP_STARTING)
			s->state = APP_RUNNING;
	}
}

static gboolean on_started(gint fd, GIOCondition cond, gpointer data)
{
	check_started(data);
	return G_SOURCE_REMOVE;
}

static void on_child_exit(GPid pid, gint wait_status, gpointer data)
{
	struct app_server *s = data;

	s->status = WIFEXITED(wait_status)     ? WEXITSTATUS(wait_status)
	            : WIFSIGNALED(wait_status) ? HUSK_EXIT_SIGNAL + WTERMSIG(wait_status)
	                                       : HUSK_EXIT_EXEC_FAILED;
	g_spawn_close_pid(pid);
	/* Its start may be news yet, in the same turn of the loop. */
	check_started(s);
	/*
	 * All the child wrote is in the pipes now: read to their end, or, if
	 * something it left behind holds them open, to what is there.
	 */
	for (int i = 0; i < 2; i++) {
		fcntl(s->pipes[i].fd, F_SETFL, O_NONBLOCK);
		while (copy_out(&s->pipes[i]))
			;
	}
	g_main_loop_quit(s->loop);
}

static const char *app_state_name(enum app_state st)
{
	return st == APP_STARTING ? "starting" : st == APP_RUNNING ? "running" : "stopping";
}

/* stop: as Ctrl-C in the foreground. force-stop: a second signal, which ends the VM. */
static bool answer(void *opaque, const char *op, JsonObject *request, JsonObject *reply, int fd,
                   bool *take_fd, GError **err)
{
	struct app_server *s = opaque;

	if (strcmp(op, "stop") == 0 || strcmp(op, "force-stop") == 0) {
		s->state = APP_STOPPING;
		kill(s->child, SIGTERM);
		if (strcmp(op, "force-stop") == 0)
			kill(s->child, SIGINT);
	} else if (strcmp(op, "info") == 0) {
		describe_spec(&s->spec, reply);
		json_object_set_int_member(reply, "pid", getpid());
		json_object_set_int_member(
		    reply, "uptime_s", (g_get_monotonic_time() - s->started_us) / G_USEC_PER_SEC);
	} else if (strcmp(op, "console") == 0) {
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s runs an image's app, which has no console: husk logs %s",
		                 s->inst->name, s->inst->name);
	} else if (strcmp(op, "state") != 0) {
		return husk_fail(err, HUSK_EXIT_RUNTIME, "unknown op \"%s\"", op);
	}
	json_object_set_string_member(reply, "state", app_state_name(s->state));
	return true;
}

/* In the child: the app's VM, as husk run --image runs it in the foreground. */
static void run_app(struct app_server *s, int out, int err, int started)
{
	const struct exec_io io = {.app_stdout = out, .app_stderr = err, .started_fd = started};

	/* Not the serving process's lock: the instance runs while that process does. */
	close(RUNNING_LOCK_FD);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (s->spec.cwd && chdir(s->spec.cwd) < 0)
		g_printerr("husk: %s: %s; relative paths start at /\n", s->spec.cwd,
		           g_strerror(errno));
	_exit(run_spec_exec(&s->spec, g_get_monotonic_time() * 1000, &io));
}

static void watch_pipe(struct app_pipe *p, int fd, struct applog *log)
{
	GSource *src = g_unix_fd_source_new(fd, G_IO_IN | G_IO_HUP | G_IO_ERR);

	p->fd = fd;
	p->log = log;
	g_source_set_callback(src, G_SOURCE_FUNC(on_app_output), p, NULL);
	g_source_attach(src, NULL);
	g_source_unref(src);
}

/*
 * The serving process's own allow list, as its app's VM process has one:
 * once the control socket listens and glib's threads are up, for all of
 * them. --no-seccomp, given to the run, leaves both off.
 */
static bool lock_down(const struct app_server *s, GError **err)
{
	for (guint i = 0; i < s->spec.options->len; i++)
		if (strcmp(s->spec.options->pdata[i], "--no-seccomp") == 0)
			return true;
	return seccomp_app_server_lock_down(s->child, err);
}

/* Forks the app's child and serves until it ended and its output is all in the logs. */
static int serve_app(struct app_server *s, struct applog *out_log, struct applog *err_log)
{
	int out[2], errp[2], started[2];
	GError *err = NULL;

	if (pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(started, O_CLOEXEC)) {
		g_printerr("husk: pipe: %s\n", g_strerror(errno));
		return HUSK_EXIT_EXEC_FAILED;
	}
	fflush(NULL);
	s->child = fork();
	if (s->child == 0) {
		close(out[0]), close(errp[0]), close(started[0]);
		run_app(s, out[1], errp[1], started[1]);
	}
	close(out[1]), close(errp[1]), close(started[1]);
	if (s->child < 0) {
		g_printerr("husk: fork: %s\n", g_strerror(errno));
		return HUSK_EXIT_EXEC_FAILED;
	}
	s->started_fd = started[0];
	fcntl(started[0], F_SETFL, O_NONBLOCK);
	watch_pipe(&s->pipes[0], out[0], out_log);
	watch_pipe(&s->pipes[1], errp[0], err_log);
	g_unix_fd_add(started[0], G_IO_IN | G_IO_HUP, on_started, s);
	g_child_watch_add(s->child, on_child_exit, s);
	char *sock = instance_state_path(s->inst, "control.sock");
	struct control_server *ctl =
	    control_server_start(sock, g_main_context_default(), answer, s, &err);
	if (!ctl || !lock_down(s, &err)) {
		g_printerr("husk: %s\n", err->message);
		g_error_free(err);
		kill(s->child, SIGKILL);
	}
	g_main_loop_run(s->loop);
	control_server_stop(ctl);
	unlink(sock);
	g_free(sock);
	close(out[0]), close(errp[0]), close(started[0]);
	return s->status;
}

static int serve_image_run(struct instance *inst)
{
	struct app_server s = {.inst = inst, .started_us = g_get_monotonic_time()};
	GError *err = NULL;
	char *out_path = instance_state_path(inst, "stdout.log");
	char *err_path = instance_state_path(inst, "stderr.log");
	struct applog *out = NULL, *errl = NULL;
	int status = HUSK_EXIT_EXEC_FAILED;

	set_status(inst, -1);
	mark_started(inst, false);
	s.loop = g_main_loop_new(NULL, FALSE);
	if (read_spec(inst, &s.spec, &err) && (out = applog_open(out_path, APPLOG_MAX, &err)) &&
	    (errl = applog_open(err_path, APPLOG_MAX, &err)))
		status = serve_app(&s, out, errl);
	if (err) {
		g_printerr("husk: %s\n", err->message);
		g_error_free(err);
	}
	g_printerr("%s%d\n", END_WORDS, status);
	set_status(inst, status);
	applog_close(out);
	applog_close(errl);
	run_spec_clear(&s.spec);
	g_main_loop_unref(s.loop);
	g_free(out_path);
	g_free(err_path);
	return status;
}

/* --- starting it, and waiting until the app runs ---------------------------------- */

/*
 * The last line of a file that is not empty nor the serving process's
 * own END_WORDS (at most the file's last 4 KiB looked at), or NULL.
 */
static char *last_line(const struct instance *inst, const char *file)
{
	char *path = instance_path(inst, file);
	GBytes *text = applog_read(path, 4096, -1, NULL);
	gsize len;
	const char *data = g_bytes_get_data(text, &len);
	char *all = g_strndup(data ? data : "", len);
	char **lines = g_strsplit(all, "\n", -1);
	char *found = NULL;

	for (guint i = g_strv_length(lines); !found && i-- > 0;) {
		g_strstrip(lines[i]);
		if (*lines[i] && !g_str_has_prefix(lines[i], END_WORDS))
			found = g_strdup(lines[i]);
	}
	g_strfreev(lines);
	g_free(all);
	g_bytes_unref(text);
	g_free(path);
	return found;
}

/*
 * Why the app did not start: husk's last word in husk.log (begun afresh
 * at each start), else the last in stderr.log, where husk-init says why
 * the command could not be run (127, 126).
 */
static char *why_not_started(const struct instance *inst)
{
	char *line = last_line(inst, "husk.log");

	if (!line)
		line = last_line(inst, "stderr.log");
	if (line && g_str_has_prefix(line, "husk: ")) {
		char *rest = g_strdup(line + 6);
		g_free(line);
		line = rest;
	}
	return line ? line : g_strdup("no reason given");
}

static bool wait_started(struct instance *inst, GError **err)
{
	char *sock = instance_state_path(inst, "control.sock");
	int64_t deadline = g_get_monotonic_time() + INSTANCE_DEFAULT_TIMEOUT_S * G_USEC_PER_SEC;
	bool started = false, ended = false;

	while (!started && !ended) {
		JsonObject *reply = control_call(sock, "state", NULL);
		started = reply &&
		          g_strcmp0(json_object_get_string_member(reply, "state"), "running") == 0;
		if (reply)
			json_object_unref(reply);
		ended = !started && !instance_running_pid(inst);
		if (ended) {
			/* It may have started and ended between two looks. */
			char *marker = instance_state_path(inst, "started");
			started = g_file_test(marker, G_FILE_TEST_EXISTS);
			ended = !started;
			g_free(marker);
		}
		if (!started && !ended && g_get_monotonic_time() > deadline) {
			husk_fail(err, HUSK_EXIT_TIMEOUT,
			          "%s: the app has not started after %d s (it goes on starting; "
			          "husk logs %s)",
			          inst->name, INSTANCE_DEFAULT_TIMEOUT_S, inst->name);
			break;
		}
		if (!started && !ended)
			g_usleep(START_POLL_US);
	}
	if (ended) {
		int status = app_status(inst);
		char *why = why_not_started(inst);
		husk_fail(err, status > 0 ? status : HUSK_EXIT_EXEC_FAILED,
		          "%s: the app did not start (exit status %d): %s", inst->name, status,
		          why);
		g_free(why);
	}
	g_free(sock);
	return started;
}

bool run_detached_boot(const char *name, GError **err)
{
	struct instance *inst = instance_get(name, err);
	bool ok = inst && serve_spawn_body(name, serve_image_run, err) && wait_started(inst, err);

	instance_free(inst);
	return ok;
}

static bool write_origin(const struct instance *inst, const struct run_spec *spec, GError **err)
{
	JsonObject *o = json_object_new();
	JsonNode *root = json_node_init_object(json_node_alloc(), o);
	GDateTime *now = g_date_time_new_now_utc();
	char *created = g_date_time_format_iso8601(now);
	char *path = instance_path(inst, "instance.json");

	json_object_set_string_member(o, "image", spec->image);
	json_object_set_string_member(o, "kind", RUN_SPEC_KIND);
	json_object_set_string_member(o, "created", created);
	char *text = json_to_string(root, TRUE);
	bool ok = g_file_set_contents(path, text, -1, err);
	g_free(path);
	g_free(text);
	g_free(created);
	g_date_time_unref(now);
	json_node_unref(root);
	return ok;
}

/* The folder: instance.json, then config.json, which makes the instance exist. */
static bool create(struct instance *inst, struct run_spec *spec, GError **err)
{
	if (!instance_lock(inst, err))
		return false;
	if (instance_exists(inst))
		return husk_fail(err, HUSK_EXIT_USAGE, "an instance called %s already exists",
		                 inst->name);
	/* The image is read (and unpacked into the cache) here, where an error is seen. */
	struct oci_image *img = oci_image_open(spec->image, err);
	if (!img) {
		instance_remove(inst, NULL);
		return false;
	}
	oci_image_free(img);
	char *json = run_spec_to_json(spec);
	char *path = instance_path(inst, "config.json");
	bool ok = write_origin(inst, spec, err) && g_file_set_contents(path, json, -1, err);
	if (!ok)
		instance_remove(inst, NULL);
	g_free(path);
	g_free(json);
	return ok;
}

int run_detached(const char *name, struct run_spec *spec)
{
	GError *err = NULL;
	struct instance *inst = instance_get(name, &err);

	g_free(spec->cwd);
	spec->cwd = g_get_current_dir();
	bool ok = inst && create(inst, spec, &err) && run_detached_boot(name, &err);
	instance_free(inst);
	if (!ok) {
		int status = err->domain == HUSK_ERROR && err->code > HUSK_EXIT_USAGE
		                 ? err->code
		                 : HUSK_EXIT_EXEC_FAILED;
		g_printerr("husk: run: %s\n", err->message);
		g_error_free(err);
		return status;
	}
	printf("%s\n", name);
	return 0;
}
