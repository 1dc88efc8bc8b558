// SPDX-License-Identifier: MIT
/*
 * The serving process. The guest's console goes through a pipe to the I/O
 * thread, which appends it to console.log (bounded: SERVE_LOG_MAX), looks
 * for cloud-init's messages, and copies it to attached consoles; what they
 * type goes to the guest through another pipe.
 *
 * The guest is ready once cloud-init has finished (its final message on
 * the console) and husk-agent has said HELLO through the instance's vsock
 * device (vsock.sock in its state folder; the HELLO comes to vsock.sock_1024).
 * While it is not, "state" names the stage it is at: boot (no word from
 * cloud-init yet), cloud-init (not finished) or agent (no HELLO).
 */
#include "vmm/instance/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/display/screenshot.h"
#include "devices/net/net.h"
#include "devices/virtio/vsock.h"
#include "vmm/config.h"
#include "vmm/disk_boot.h"
#include "vmm/error.h"
#include "vmm/fdio.h"
#include "vmm/instance/agent_ready.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"
#include "vmm/instance/mounts.h"
#include "vmm/process.h"

#define LINE_MAX_SCAN  1024    /* longer console lines are not looked at for readiness */
#define CONSOLE_REPLAY (16384) /* what a console that attaches sees of the past */

enum serve_state { SERVE_BOOTING, SERVE_RUNNING, SERVE_STOPPING };

struct server {
	struct instance *inst;
	struct vm_config cfg;
	struct machine *m;
	int out_pipe[2]; /* guest → log */
	int in_pipe[2];  /* consoles → guest */
	int log_fd;
	uint64_t log_size;
	GString *line; /* the console line being written, for the readiness check */
	enum serve_state state;
	bool cloud_init_seen, cloud_init_done, agent_ready;
	bool rebooted; /* the guest asked for a reboot: boot it again in this process */
	uint32_t agent_version;
	struct agent_ready *hello;
	int64_t started_us;
	GPtrArray *consoles; /* struct console_client * */
	struct mount_table *mounts;
	GSource *out_source;
};

struct console_client {
	struct server *s;
	int fd;
	GSource *source;
};

bool serve_line_is_ready(const char *line)
{
	/* "Cloud-init v. 22.4.2 finished at Sun, 06 Dec 2026 ... Up 41.2 seconds" */
	const char *v = strstr(line, "Cloud-init v. ");

	return v && strstr(v, " finished at ");
}

/* --- the console log ------------------------------------------------------ */

static int open_log(struct server *s, int flags)
{
	char *path = instance_state_path(s->inst, "console.log");
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | flags, 0600);
	struct stat st;

	g_free(path);
	s->log_size = fd >= 0 && fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return fd;
}

/* The log keeps its newest SERVE_LOG_MAX bytes and the half before them. */
static void rotate_log(struct server *s)
{
	char *path = instance_state_path(s->inst, "console.log");
	char *old = instance_state_path(s->inst, "console.log.1");

	rename(path, old);
	close(s->log_fd);
	s->log_fd = open_log(s, O_TRUNC);
	g_free(path);
	g_free(old);
}

static void maybe_running(struct server *s)
{
	if (s->state == SERVE_BOOTING && s->cloud_init_done && s->agent_ready)
		s->state = SERVE_RUNNING;
}

static void on_agent_hello(void *opaque, uint32_t version)
{
	struct server *s = opaque;

	if (!s->agent_ready) {
		g_printerr("husk: the guest's agent is up (protocol version %u)\n", version);
		mount_table_remount(s->mounts);
	}
	s->agent_ready = true;
	s->agent_version = version;
	maybe_running(s);
}

static void scan_line(struct server *s, const char *line)
{
	if (strstr(line, "Cloud-init v. "))
		s->cloud_init_seen = true;
	if (serve_line_is_ready(line))
		s->cloud_init_done = true;
	maybe_running(s);
}

static void scan_for_ready(struct server *s, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n' || buf[i] == '\r') {
			scan_line(s, s->line->str);
			g_string_truncate(s->line, 0);
		} else if (s->line->len < LINE_MAX_SCAN) {
			g_string_append_c(s->line, buf[i]);
		}
	}
}

static void drop_console(struct console_client *c)
{
	g_ptr_array_remove(c->s->consoles, c);
}

static void free_console(gpointer data)
{
	struct console_client *c = data;

	if (c->source) {
		g_source_destroy(c->source);
		g_source_unref(c->source);
	}
	close(c->fd);
	g_free(c);
}

/* A console that cannot keep up is dropped rather than let it stall the guest. */
static void copy_to_consoles(struct server *s, const char *buf, size_t n)
{
	for (guint i = s->consoles->len; i-- > 0;) {
		struct console_client *c = s->consoles->pdata[i];

		if (send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n)
			drop_console(c);
	}
}

static gboolean on_guest_output(gint fd, GIOCondition cond, gpointer data)
{
	struct server *s = data;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n <= 0)
		return G_SOURCE_CONTINUE;
	if (s->log_fd >= 0 && write(s->log_fd, buf, (size_t)n) == n)
		s->log_size += (uint64_t)n;
	if (s->log_size >= SERVE_LOG_MAX)
		rotate_log(s);
	scan_for_ready(s, buf, (size_t)n);
	copy_to_consoles(s, buf, (size_t)n);
	return G_SOURCE_CONTINUE;
}

/* --- consoles ------------------------------------------------------------- */

static gboolean on_console_input(gint fd, GIOCondition cond, gpointer data)
{
	struct console_client *c = data;
	char buf[1024];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n <= 0 || write(c->s->in_pipe[1], buf, (size_t)n) != n) {
		drop_console(c);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

/* The end of the log, so a console that attaches shows the screen it missed. */
static void replay_log(struct server *s, int fd)
{
	char *path = instance_state_path(s->inst, "console.log");
	int rd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	char buf[CONSOLE_REPLAY];

	g_free(path);
	if (rd < 0)
		return;
	off_t end = lseek(rd, 0, SEEK_END);
	ssize_t n = pread(rd, buf, sizeof(buf), end > CONSOLE_REPLAY ? end - CONSOLE_REPLAY : 0);
	if (n > 0 && send(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0)
		g_debug("console replay: %s", g_strerror(errno));
	close(rd);
}

/* A console's input, watched on the running machine's I/O thread. */
static void watch_console(struct console_client *c)
{
	c->source = g_unix_fd_source_new(c->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
	g_source_set_callback(c->source, G_SOURCE_FUNC(on_console_input), c, NULL);
	g_source_attach(c->source, machine_context(c->s->m));
}

static void attach_console(struct server *s, int fd)
{
	struct console_client *c = g_new0(struct console_client, 1);

	c->s = s;
	c->fd = fd;
	watch_console(c);
	g_ptr_array_add(s->consoles, c);
}

struct console_attach {
	struct server *s;
	int fd;
};

static gboolean attach_console_now(gpointer data)
{
	struct console_attach *a = data;

	replay_log(a->s, a->fd);
	attach_console(a->s, a->fd);
	g_free(a);
	return G_SOURCE_REMOVE;
}

/*
 * The client reads the reply line first: the log's replay and the live
 * console may only follow it, so both start once this request is answered.
 */
static void attach_console_later(struct server *s, int fd)
{
	struct console_attach *a = g_new(struct console_attach, 1);
	GSource *later = g_idle_source_new();

	*a = (struct console_attach){s, fd};
	g_source_set_callback(later, attach_console_now, a, NULL);
	g_source_attach(later, machine_context(s->m));
	g_source_unref(later);
}

/* --- the control socket's ops --------------------------------------------- */

static const char *state_name(enum serve_state st)
{
	return st == SERVE_BOOTING ? "booting" : st == SERVE_RUNNING ? "running" : "stopping";
}

/* The guest's address: user networking's DHCP address, which only -p reaches. */
static void add_network(struct server *s, JsonObject *reply)
{
	JsonArray *ports = json_array_new();

	for (guint i = 0; i < s->cfg.nets->len; i++) {
		const struct net_config *n = s->cfg.nets->pdata[i];

		if (n->kind == NET_USER && !json_object_has_member(reply, "ipv4"))
			json_object_set_string_member(reply, "ipv4", inet_ntoa(n->dhcp_start));
		for (guint f = 0; n->kind == NET_USER && f < n->hostfwd->len; f++) {
			const struct net_hostfwd *h =
			    &g_array_index(n->hostfwd, struct net_hostfwd, f);
			char *text =
			    g_strdup_printf("%s:%u->%u/%s", inet_ntoa(h->host_addr), h->host_port,
			                    h->guest_port, h->udp ? "udp" : "tcp");
			json_array_add_string_element(ports, text);
			g_free(text);
		}
	}
	json_object_set_array_member(reply, "ports", ports);
}

/* What a booting guest waits for: the first of boot, cloud-init, agent not yet done. */
static const char *stage(const struct server *s)
{
	if (!s->cloud_init_seen && !s->cloud_init_done)
		return "boot";
	return !s->cloud_init_done ? "cloud-init" : "agent";
}

static void add_info(struct server *s, JsonObject *reply)
{
	json_object_set_string_member(reply, "agent", s->agent_ready ? "ready" : "not yet");
	json_object_set_int_member(reply, "pid", getpid());
	json_object_set_int_member(reply, "uptime_s",
	                           (g_get_monotonic_time() - s->started_us) / G_USEC_PER_SEC);
	json_object_set_int_member(reply, "cpus", s->cfg.cpus);
	json_object_set_int_member(reply, "memory", (gint64)s->cfg.memory);
	add_network(s, reply);
	bool handled;
	mount_table_answer(s->mounts, "mounts", NULL, reply, &handled, NULL);
}

/* A screenshot's bytes, sent once the reply line has gone out. */
struct screenshot_send {
	int fd;
	GBytes *png;
};

static gboolean send_screenshot_bytes(gpointer data)
{
	struct screenshot_send *ss = data;
	gsize len;
	const char *bytes = g_bytes_get_data(ss->png, &len);

	/* The socket has the control protocol's timeouts: a stalled client cannot hold us. */
	if (!fdio_write_all(ss->fd, bytes, len))
		g_debug("screenshot: %s", g_strerror(errno));
	close(ss->fd);
	g_bytes_unref(ss->png);
	g_free(ss);
	return G_SOURCE_REMOVE;
}

/*
 * "screenshot": the reply says how many bytes of PNG follow it, then the
 * connection carries them and closes. Encoded here, on the I/O thread.
 */
static bool answer_screenshot(struct server *s, JsonObject *reply, int fd, GError **err)
{
	struct virtio_gpu *gpu = machine_gpu(s->m);
	struct gpu_image img;

	if (!gpu)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "this instance has no display (launch it with --gpu 2d or virgl)");
	if (!virtio_gpu_snapshot(gpu, &img, err))
		return false;
	GBytes *png = screenshot_encode_png(&img, err);
	g_free(img.rgb);
	if (!png)
		return false;
	struct screenshot_send *ss = g_new(struct screenshot_send, 1);
	*ss = (struct screenshot_send){fd, png};
	json_object_set_int_member(reply, "png_bytes", (gint64)g_bytes_get_size(png));
	GSource *later = g_idle_source_new();
	g_source_set_callback(later, send_screenshot_bytes, ss, NULL);
	g_source_attach(later, machine_context(s->m));
	g_source_unref(later);
	return true;
}

static bool answer(void *opaque, const char *op, JsonObject *request, JsonObject *reply, int fd,
                   bool *take_fd, GError **err)
{
	struct server *s = opaque;
	bool handled;

	bool ok = mount_table_answer(s->mounts, op, request, reply, &handled, err);
	if (handled)
		return ok;
	if (strcmp(op, "stop") == 0) {
		s->state = SERVE_STOPPING;
		machine_press_power_button(s->m);
	} else if (strcmp(op, "force-stop") == 0) {
		s->state = SERVE_STOPPING;
		machine_request_stop(s->m, STOP_SIGNAL);
	} else if (strcmp(op, "console") == 0) {
		attach_console_later(s, fd);
		*take_fd = true;
	} else if (strcmp(op, "info") == 0) {
		add_info(s, reply);
	} else if (strcmp(op, "screenshot") == 0) {
		if (!answer_screenshot(s, reply, fd, err))
			return false;
		*take_fd = true;
	} else if (strcmp(op, "state") != 0) {
		return husk_fail(err, HUSK_EXIT_RUNTIME, "unknown op \"%s\"", op);
	}
	json_object_set_string_member(reply, "state", state_name(s->state));
	if (s->state == SERVE_BOOTING)
		json_object_set_string_member(reply, "stage", stage(s));
	return true;
}

/* --- running the VM ------------------------------------------------------- */

/*
 * Every instance has a vsock device for its agent: vsock.sock in its
 * folder (one a killed husk left is removed: this process holds the
 * instance), the guest's cid the default.
 */
static void add_vsock(struct server *s)
{
	if (s->cfg.vsock)
		vsock_config_clear(s->cfg.vsock);
	g_free(s->cfg.vsock);
	s->cfg.vsock = g_new0(struct vsock_config, 1);
	s->cfg.vsock->path = instance_state_path(s->inst, "vsock.sock");
	s->cfg.vsock->cid = VSOCK_DEFAULT_CID;
	unlink(s->cfg.vsock->path);
}

/*
 * An instance that gives root up works from state/, which its user owns:
 * after the drop it writes there by relative paths, since that user need
 * not be able to reach the folder by its path (root's home is 0700).
 * Everything else in the instance's folder stays out of its reach.
 */
static bool enter_state_dir(struct server *s, GError **err)
{
	const struct run_as *r = &s->cfg.run_as;

	if (!r->set)
		return true;
	if (!instance_make_state_dir(s->inst, r->uid, r->gid, err))
		return false;
	if (chdir(s->inst->state_dir) < 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", s->inst->state_dir,
		                 g_strerror(errno));
	g_free(s->inst->state_dir);
	s->inst->state_dir = g_strdup(".");
	return true;
}

static bool load_config(struct server *s, GError **err)
{
	char *json = NULL;
	bool ok = instance_read_trusted(s->inst, "config.json", &json, err) &&
	          config_from_json(json, &s->cfg, err);

	g_free(json);
	if (!ok || !enter_state_dir(s, err))
		return false;
	s->cfg.console_out = s->out_pipe[1];
	s->cfg.console_in = s->in_pipe[0];
	add_vsock(s);
	/* A guest's reboot boots it again (boot_again); not once root is dropped. */
	if (!s->cfg.run_as.set)
		s->cfg.on_reboot = ON_REBOOT_RESTART;
	/* Where the time goes, in husk.log: the kernel lookup, the set-up steps. */
	s->cfg.timings = true;
	s->cfg.start_ns = g_get_monotonic_time() * 1000;
	/* Read again at each start: the guest may have installed a new kernel. */
	return disk_boot_resolve(&s->cfg, err);
}

static bool open_pipes(struct server *s, GError **err)
{
	if (pipe2(s->out_pipe, O_CLOEXEC) < 0 || pipe2(s->in_pipe, O_CLOEXEC) < 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "pipe: %s", g_strerror(errno));
	/* Room for a burst of boot messages while the I/O thread is busy. */
	fcntl(s->out_pipe[1], F_SETPIPE_SZ, 1024 * 1024);
	return true;
}

/* The guest's output, and the consoles still attached from before a reboot. */
static void watch_output(struct server *s)
{
	s->out_source = g_unix_fd_source_new(s->out_pipe[0], G_IO_IN);
	g_source_set_callback(s->out_source, G_SOURCE_FUNC(on_guest_output), s, NULL);
	g_source_attach(s->out_source, machine_context(s->m));
	for (guint i = 0; i < s->consoles->len; i++)
		watch_console(s->consoles->pdata[i]);
}

/* The machine's loop is going: consoles stay connected only across a reboot. */
static void unwatch(struct server *s, bool keep_consoles)
{
	for (guint i = 0; keep_consoles && i < s->consoles->len; i++) {
		struct console_client *c = s->consoles->pdata[i];
		g_source_destroy(c->source);
		g_clear_pointer(&c->source, g_source_unref);
	}
	if (!keep_consoles)
		g_ptr_array_set_size(s->consoles, 0);
	g_source_destroy(s->out_source);
	g_clear_pointer(&s->out_source, g_source_unref);
}

/* Why the VM ended, for `husk info` and for whoever reads husk.log. */
static void report_end(enum stop_reason reason)
{
	static const char *const words[] = {
	    [STOP_NONE] = "ended",         [STOP_POWEROFF] = "powered off",
	    [STOP_REBOOT] = "rebooted",    [STOP_TRIPLE_FAULT] = "crashed (a triple fault)",
	    [STOP_PANIC] = "panicked",     [STOP_USER] = "was stopped",
	    [STOP_SIGNAL] = "was stopped", [STOP_ERROR] = "failed",
	    [STOP_TIMEOUT] = "timed out",
	};
	GDateTime *now = g_date_time_new_now_local();
	char *when = g_date_time_format_iso8601(now);

	g_printerr("husk: %s: the guest %s\n", when, words[reason]);
	g_free(when);
	g_date_time_unref(now);
}

/*
 * The instance's mounts, plugged before the guest boots. What the guest
 * creates in them belongs to the user running husk, who is the image's
 * first user there (uid and gid 1000, debian in Debian's cloud images).
 */
static void start_mounts(struct server *s)
{
	char *store = instance_state_path(s->inst, "mounts.json");
	struct fuse_id_map uid = {true, geteuid(), INSTANCE_GUEST_ID};
	struct fuse_id_map gid = {true, getegid(), INSTANCE_GUEST_ID};

	s->mounts = mount_table_new(s->m, store, s->cfg.vsock->path, uid, gid);
	mount_table_plug_stored(s->mounts);
	g_free(store);
}

static int run(struct server *s)
{
	GError *err = NULL;
	struct control_server *ctl = NULL;
	char *sock = instance_state_path(s->inst, "control.sock");
	enum stop_reason reason = STOP_ERROR;

	char *hello = instance_state_path(s->inst, "vsock.sock_1024");

	/* On the I/O thread: the control socket, the agent's HELLO, and the console log read,
	 * appended to and rotated, all in the instance's state folder, where Landlock keeps it. */
	s->m = process_create_machine_in(
	    &s->cfg, SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES | SECCOMP_IO_WRITE_FILES,
	    s->inst->state_dir, &err);
	if (s->m) {
		/* Opened once root is given up (--user): its user cannot plant a link to follow. */
		if (s->log_fd < 0)
			s->log_fd = open_log(s, 0);
		start_mounts(s);
		ctl = control_server_start(sock, machine_context(s->m), answer, s, &err);
	}
	if (ctl)
		s->hello = agent_ready_start(hello, machine_context(s->m), on_agent_hello, s, &err);
	if (s->hello) {
		int signo = 0;

		watch_output(s);
		reason = process_run_machine(s->m, &s->cfg, &signo);
		s->rebooted = reason == STOP_REBOOT && s->cfg.on_reboot == ON_REBOOT_RESTART &&
		              s->state != SERVE_STOPPING;
		unwatch(s, s->rebooted);
	}
	agent_ready_stop(s->hello);
	control_server_stop(ctl);
	unlink(sock);
	unlink(s->cfg.vsock->path);
	g_free(sock);
	g_free(hello);
	mount_table_free(s->mounts);
	machine_destroy(s->m);
	if (err) {
		int status = err->code ? err->code : HUSK_EXIT_RUNTIME;
		s->rebooted = false;
		g_printerr("husk: %s\n", err->message);
		g_error_free(err);
		return status;
	}
	report_end(reason);
	return reason == STOP_POWEROFF || reason == STOP_SIGNAL ? 0 : HUSK_EXIT_RUNTIME;
}

/*
 * A reboot from inside the guest (`sudo reboot`) keeps the instance: it
 * boots again, with its mounts plugged and made again once the agent says
 * HELLO. cloud-init has done its work, so the agent alone makes it ready.
 * The kernel is the one found at start: looking again means reading the
 * disk in a forked sandbox, which this process, now with threads, avoids.
 */
static void boot_again(struct server *s)
{
	g_printerr("husk: booting the guest again\n");
	s->state = SERVE_BOOTING;
	s->agent_ready = false;
	s->rebooted = false;
	s->cfg.start_ns = g_get_monotonic_time() * 1000;
}

/* exit-status: what the commands waiting on this process tell their user. */
static void record_status(const struct instance *inst, int status)
{
	char *path = instance_state_path(inst, "exit-status");
	char *text = g_strdup_printf("%d\n", status);

	g_file_set_contents(path, text, -1, NULL);
	g_free(text);
	g_free(path);
}

/* The instance as the starting command found it: its folder's path is absolute. */
static int serve(struct instance *inst)
{
	struct server s = {.inst = inst, .log_fd = -1, .started_us = g_get_monotonic_time()};
	GError *err = NULL;

	s.line = g_string_new(NULL);
	s.consoles = g_ptr_array_new_with_free_func(free_console);
	int status = HUSK_EXIT_RUNTIME;
	if (open_pipes(&s, &err) && load_config(&s, &err)) {
		status = run(&s);
		while (s.rebooted) {
			boot_again(&s);
			status = run(&s);
		}
	}
	if (err) {
		status = err->domain == HUSK_ERROR && err->code ? err->code : HUSK_EXIT_RUNTIME;
		g_printerr("husk: %s\n", err->message);
		g_error_free(err);
	}
	record_status(s.inst, status);
	return status;
}

/* --- starting it ---------------------------------------------------------- */

/*
 * In the grandchild: take the running lock, say so to the waiting parent,
 * and serve. No exec: the binary may run through a dynamic loader that
 * /proc/self/exe would name (as in the nested test host). So every file
 * the command had open is closed here, its instance lock above all.
 */
static void become_server(struct instance *inst, int ready_fd, serve_body body)
{
	char *log = instance_path(inst, "husk.log");
	int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	GError *err = NULL;
	int running;

	/* From /, so that it keeps no folder of the user's busy for weeks. */
	if (out < 0 || in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(out, STDERR_FILENO) < 0 || chdir("/") < 0)
		_exit(HUSK_EXIT_RUNTIME);
	if (!instance_claim_running(inst, &running, &err)) {
		g_printerr("husk: %s\n", err->message);
		_exit(err->code);
	}
	if (write(ready_fd, "y", 1) != 1)
		_exit(HUSK_EXIT_RUNTIME);
	/* The running lock lives at fd 3 for the process's life; nothing else stays open. */
	if (dup2(running, 3) < 0 || close_range(4, ~0U, 0) < 0)
		_exit(HUSK_EXIT_RUNTIME);
	_exit(body(inst));
}

/* The first child: a new session with no terminal, then the grandchild that stays. */
static void detach(struct instance *inst, int ready_fd, serve_body body)
{
	if (setsid() < 0)
		_exit(HUSK_EXIT_RUNTIME);
	pid_t pid = fork();
	if (pid < 0)
		_exit(HUSK_EXIT_RUNTIME);
	if (pid == 0)
		become_server(inst, ready_fd, body);
	_exit(0);
}

bool serve_spawn(const char *name, GError **err)
{
	return serve_spawn_body(name, serve, err);
}

bool serve_spawn_body(const char *name, serve_body body, GError **err)
{
	struct instance *inst = instance_get(name, err);
	int ready[2];
	char byte;

	if (!inst)
		return false;
	if (pipe2(ready, O_CLOEXEC) < 0) {
		instance_free(inst);
		return husk_fail(err, HUSK_EXIT_RUNTIME, "pipe: %s", g_strerror(errno));
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		detach(inst, ready[1], body);
	}
	close(ready[1]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	/* A byte once the grandchild holds the lock; nothing if it died first. */
	bool ok = pid > 0 && read(ready[0], &byte, 1) == 1;
	close(ready[0]);
	if (!ok) {
		char *log = instance_path(inst, "husk.log");
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: could not start (see %s)", name, log);
		g_free(log);
	}
	instance_free(inst);
	return ok;
}
