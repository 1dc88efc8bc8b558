// SPDX-License-Identifier: MIT
/*
 * husk logs NAME [-f] [--tail N]: an instance's output. For an image run
 * (husk run --image --detach) the app's stdout to stdout and its stderr
 * to stderr, as docker logs; for a cloud image, its serial console (the
 * same console.log husk console replays). Each log keeps its newest
 * 1 MiB and the 1 MiB before (vmm/instance/applog.h, SERVE_LOG_MAX).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/cli/instances.h"
#include "vmm/cli/run_detached.h"
#include "vmm/error.h"
#include "vmm/fdio.h"
#include "vmm/instance/applog.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"
#include "vmm/instance/serve.h"

#define FOLLOW_POLL_US (100 * 1000)

/* One log followed: the file as it was opened, read on from 'offset'. */
struct followed {
	char *path;
	int out_fd;
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t offset;
};

static void print_bytes(int fd, GBytes *b)
{
	gsize len;
	const char *data = g_bytes_get_data(b, &len);

	fdio_write_all(fd, data, len);
}

/* What the file gained since; false if it has been replaced (rotated) meanwhile. */
static bool drain(struct followed *f)
{
	char buf[65536];
	ssize_t n;
	struct stat st;

	if (f->fd < 0) {
		f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (f->fd < 0 || fstat(f->fd, &st) < 0)
			return true;
		f->dev = st.st_dev, f->ino = st.st_ino;
	}
	while ((n = pread(f->fd, buf, sizeof(buf), (off_t)f->offset)) > 0) {
		fdio_write_all(f->out_fd, buf, (size_t)n);
		f->offset += (uint64_t)n;
	}
	return stat(f->path, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino;
}

/* The whole of what comes next: the rotated file's rest read, the new one from 0. */
static void follow_step(struct followed *f)
{
	if (!drain(f) && f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
		f->offset = 0;
		drain(f);
	}
}

static void follow(struct instance *inst, struct followed *logs, int n)
{
	for (int i = 0; i < n; i++) {
		/* The file printed so far: the one at the path, from where printing ended. */
		logs[i].fd = open(logs[i].path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		struct stat st;
		if (logs[i].fd >= 0 && fstat(logs[i].fd, &st) == 0)
			logs[i].dev = st.st_dev, logs[i].ino = st.st_ino;
	}
	bool running = true;
	while (running) {
		/* Its end seen before the last read: nothing written before it is missed. */
		running = instance_running_pid(inst) != 0;
		for (int i = 0; i < n; i++)
			follow_step(&logs[i]);
		if (running)
			g_usleep(FOLLOW_POLL_US);
	}
	for (int i = 0; i < n; i++)
		if (logs[i].fd >= 0)
			close(logs[i].fd);
}

struct logs_opts {
	gboolean follow;
	int tail;
};

static bool parse(int *argc, char ***argv, struct logs_opts *o, GError **err)
{
	const GOptionEntry entries[] = {
	    {"follow", 'f', 0, G_OPTION_ARG_NONE, &o->follow,
	     "Go on printing what comes, until the app (or the VM) ends", NULL},
	    {"tail", 'n', 0, G_OPTION_ARG_INT, &o->tail, "Only the last N lines of each stream",
	     "N"},
	    {0}};
	GOptionContext *ctx = g_option_context_new("NAME");
	bool ok;

	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_summary(
	    ctx, "Print an instance's output: an image run's app's stdout (to stdout) and\n"
	         "stderr (to stderr); a cloud image's serial console. Each log keeps its\n"
	         "newest 1 MiB and the 1 MiB before it; older output is dropped.");
	g_option_context_set_description(ctx, INSTANCE_EXIT_TEXT);
	ok = g_option_context_parse(ctx, argc, argv, err);
	if (!ok) {
		(*err)->domain = HUSK_ERROR;
		(*err)->code = HUSK_EXIT_USAGE;
	} else if (*argc != 2) {
		ok = husk_fail(err, HUSK_EXIT_USAGE, "logs: give one instance name");
	} else if (o->tail < -1) {
		ok = husk_fail(err, HUSK_EXIT_USAGE, "logs: --tail must be 0 or more");
	}
	g_option_context_free(ctx);
	return ok;
}

int logs_main(int argc, char **argv)
{
	struct logs_opts o = {.tail = -1};
	GError *err = NULL;

	if (!parse(&argc, &argv, &o, &err))
		return instance_cli_fail(err);
	struct instance *inst = instance_get(argv[1], &err);
	if (inst && !instance_exists(inst))
		husk_fail(&err, HUSK_EXIT_USAGE, "logs: no instance is called \"%s\"", argv[1]);
	if (err) {
		instance_free(inst);
		return instance_cli_fail(err);
	}
	bool image_run = run_spec_is_image_run(inst);
	struct followed logs[2] = {
	    {.path = instance_state_path(inst, image_run ? "stdout.log" : "console.log"),
	     .out_fd = STDOUT_FILENO,
	     .fd = -1},
	    {.path = image_run ? instance_state_path(inst, "stderr.log") : NULL,
	     .out_fd = STDERR_FILENO,
	     .fd = -1},
	};
	int n = image_run ? 2 : 1;
	uint64_t max = image_run ? APPLOG_MAX : SERVE_LOG_MAX;
	for (int i = 0; i < n; i++) {
		GBytes *text = applog_read(logs[i].path, max, o.tail, &logs[i].offset);
		print_bytes(logs[i].out_fd, text);
		g_bytes_unref(text);
	}
	if (o.follow)
		follow(inst, logs, n);
	for (int i = 0; i < n; i++)
		g_free(logs[i].path);
	instance_free(inst);
	return 0;
}
