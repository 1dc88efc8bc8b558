// SPDX-License-Identifier: MIT
/*
 * husk exec NAME and husk shell NAME: husk's side of husk-agent's protocol
 * (firmware/husk-agent.h), over the instance's vsock socket (vsock.sock in
 * its folder: "CONNECT 1024", then frames). A TARGET with a '/' in it is
 * such a socket itself, as `husk run --vsock PATH` makes one, for a guest
 * that runs husk-agent on its own.
 *
 * One poll loop moves the bytes: what arrives from the agent is written
 * out at once, what goes to it waits in 'out' and is written as the socket
 * takes it, and standard input is read only while 'out' is short. So the
 * two directions never wait on each other, however much flows.
 */
#include "vmm/cli/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "firmware/husk-agent.h"
#include "vmm/cli/instances.h"
#include "vmm/cli/run_spec.h"
#include "vmm/error.h"
#include "vmm/fdio.h"
#include "vmm/instance/agent_call.h"
#include "vmm/instance/agent_client.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"

#define HANDSHAKE_MS 10000        /* CONNECT's answer and HELLO */
#define OUT_HIGH     (256 * 1024) /* standard input waits while this much is queued */
#define IN_CHUNK     (AGENT_MAX_BODY - 1)
#define FAILED       HUSK_EXIT_EXEC_FAILED

struct cli_call {
	const char *cmd; /* "exec" or "shell", for messages */
	const char *target;
	int fd;
	struct agent_call call;
	bool stdin_open, pty;
	int sigfd;
};

static void cli_call_init(struct cli_call *c, const char *cmd, bool pty)
{
	*c = (struct cli_call){.cmd = cmd, .fd = -1, .pty = pty, .sigfd = -1};
	agent_call_init(&c->call, STDOUT_FILENO, STDERR_FILENO);
}

/* ---- reaching the agent ------------------------------------------------------- */

/* The socket for TARGET: a path as given, else the running instance's. */
static char *target_socket(const char *cmd, const char *target, GError **err)
{
	if (strchr(target, '/'))
		return g_strdup(target);
	struct instance *inst = instance_get(target, err);
	char *path = NULL;

	if (!inst) {
		g_prefix_error(err, "%s: ", cmd);
	} else if (!instance_exists(inst)) {
		husk_fail(err, FAILED, "%s: no instance called %s", cmd, target);
	} else if (run_spec_is_image_run(inst)) {
		/* husk-init runs the app alone: no agent is there to ask, running or not. */
		husk_fail(err, FAILED, "%s: %s: an image run has no agent; use husk logs %s", cmd,
		          target, target);
	} else if (!instance_running_pid(inst)) {
		husk_fail(err, FAILED, "%s: %s is not running (husk start %s)", cmd, target,
		          target);
	} else {
		path = instance_state_path(inst, "vsock.sock");
	}
	instance_free(inst);
	return path;
}

/* "CONNECT 1024" and its "OK"; then the agent's HELLO. */
static bool handshake(struct cli_call *c, GError **err)
{
	int64_t deadline = g_get_monotonic_time() + HANDSHAKE_MS * 1000;

	if (agent_client_hello(c->fd, deadline, FAILED, &c->call.version, err))
		return true;
	g_prefix_error(err, "%s: %s: ", c->cmd, c->target);
	return false;
}

static bool agent_connect(struct cli_call *c, GError **err)
{
	char *path = target_socket(c->cmd, c->target, err);

	if (!path)
		return false;
	c->fd = fdio_unix_connect(path);
	if (c->fd < 0) {
		husk_fail(err, FAILED, "%s: %s: %s: %s", c->cmd, c->target, path,
		          g_strerror(errno));
		g_free(path);
		return false;
	}
	g_free(path);
	return handshake(c, err);
}

/* ---- frames ----------------------------------------------------------------------- */

/* What the agent sent: false once the call is over (EXIT, an error, the end). */
static bool read_agent(struct cli_call *c)
{
	size_t room;
	uint8_t *at = agent_call_room(&c->call, &room);
	ssize_t n = read(c->fd, at, room);

	if (n < 0 && errno == EINTR)
		return true;
	if (agent_call_received(&c->call, n > 0 ? (size_t)n : 0))
		return true;
	if (c->call.why)
		g_printerr("husk: %s: %s: %s\n", c->cmd, c->target, c->call.why);
	return false;
}

/* ---- the host's side: input, signals, the terminal ----------------------------- */

static void read_stdin(struct cli_call *c)
{
	static uint8_t buf[IN_CHUNK];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	agent_call_queue(&c->call, AGENT_STDIN, buf, n > 0 ? (uint32_t)n : 0);
	if (n <= 0)
		c->stdin_open = false;
}

static bool window_size(struct agent_winsize *ws)
{
	struct winsize w;

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &w) < 0 || !w.ws_row || !w.ws_col)
		return false;
	ws->rows = (uint16_t)MIN(w.ws_row, AGENT_MAX_PTY);
	ws->cols = (uint16_t)MIN(w.ws_col, AGENT_MAX_PTY);
	return true;
}

/* A signal to us: Ctrl-C and its kin go to the command; SIGWINCH is a RESIZE. */
static void take_signal(struct cli_call *c)
{
	struct signalfd_siginfo si;
	struct agent_winsize ws;

	if (read(c->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo != SIGWINCH)
		agent_call_queue_signal(&c->call, (int)si.ssi_signo);
	else if (c->pty && window_size(&ws))
		agent_call_queue_resize(&c->call, ws);
}

static void write_agent(struct cli_call *c)
{
	GByteArray *out = c->call.out;
	ssize_t n = send(c->fd, out->data, out->len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n > 0)
		agent_call_sent(&c->call, (size_t)n);
}

/* Moves bytes until the call is over; the command's status, or FAILED. */
static int relay(struct cli_call *c)
{
	while (c->call.status < 0) {
		guint queued = c->call.out->len;
		bool want_in = c->stdin_open && queued < OUT_HIGH;
		struct pollfd p[3] = {
		    {c->fd, (short)(POLLIN | (queued ? POLLOUT : 0)), 0},
		    {want_in ? STDIN_FILENO : -1, POLLIN, 0},
		    {c->sigfd, POLLIN, 0},
		};
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			return FAILED;
		if (p[2].revents)
			take_signal(c);
		if (p[1].revents)
			read_stdin(c);
		if (p[0].revents & POLLOUT)
			write_agent(c);
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !read_agent(c))
			break;
	}
	return c->call.status;
}

/*
 * The signals the call takes over, read from a signalfd rather than acted
 * on. Blocked, a signal is queued even if ignored (as a shell starts
 * background commands with SIGINT ignored), so a script's kill -INT
 * still reaches the command.
 */
static int take_signals(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, old);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Sends the request and relays until it is answered; husk's exit status. */
static int call(struct cli_call *c, GByteArray *req)
{
	sigset_t old;
	int status;

	signal(SIGPIPE, SIG_IGN);
	c->sigfd = take_signals(&old);
	agent_call_queue(&c->call, AGENT_EXEC, req->data, req->len);
	c->stdin_open = true;
	status = c->sigfd < 0 ? FAILED : relay(c);
	if (c->sigfd >= 0)
		close(c->sigfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return status;
}

bool agent_exec_wanted(const char *target)
{
	struct stat st;

	if (strchr(target, '/'))
		return stat(target, &st) == 0 && S_ISSOCK(st.st_mode);
	if (!instance_name_check(target, NULL))
		return false;
	struct instance *inst = instance_get(target, NULL);
	bool found = inst && instance_exists(inst);
	instance_free(inst);
	return found;
}

/* ---- the subcommands --------------------------------------------------------------- */

struct call_opts {
	char *workdir, *user;
	char **envs;
};

/* Splits argv at "--": what comes before it is for GOption, what follows is the command. */
static char **split_command(int *argc, char **argv)
{
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			argv[i] = NULL;
			char **command = argv + i + 1;
			*argc = i;
			return command;
		}
	}
	return NULL;
}

static bool parse(const char *cmd, const char *usage, const char *summary, int *argc, char ***argv,
                  struct call_opts *o, GError **err)
{
	GOptionEntry entries[] = {
	    {"workdir", 'w', 0, G_OPTION_ARG_STRING, &o->workdir,
	     "Where the command starts in the guest (default: the user's home, or /)", "DIR"},
	    {"env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &o->envs,
	     "Set a variable for the command (repeatable)", "NAME=VALUE"},
	    {"user", 'u', 0, G_OPTION_ARG_STRING, &o->user,
	     "Run as this guest user, a name or a number (default: root for exec, husk for "
	     "shell)",
	     "USER"},
	    {0},
	};
	GOptionContext *ctx = g_option_context_new(usage);
	bool ok;

	g_option_context_set_summary(ctx, summary);
	g_option_context_set_description(ctx, AGENT_EXIT_TEXT);
	g_option_context_add_main_entries(ctx, entries, NULL);
	ok = g_option_context_parse(ctx, argc, argv, err);
	g_option_context_free(ctx);
	if (!ok) {
		(*err)->domain = HUSK_ERROR;
		(*err)->code = HUSK_EXIT_USAGE;
		g_prefix_error(err, "%s: ", cmd);
		return false;
	}
	for (char **e = o->envs; e && *e; e++)
		if (!strchr(*e, '=') || **e == '=')
			return husk_fail(err, HUSK_EXIT_USAGE,
			                 "%s: --env: \"%s\" is not NAME=VALUE", cmd, *e);
	return true;
}

static void add_common(GByteArray *req, const struct call_opts *o)
{
	for (char **e = o->envs; e && *e; e++)
		agent_call_field(req, AGENT_ENV, *e);
	if (o->workdir)
		agent_call_field(req, AGENT_CWD, o->workdir);
	if (o->user)
		agent_call_field(req, AGENT_USER, o->user);
}

static void call_free(struct cli_call *c, struct call_opts *o)
{
	if (c->fd >= 0)
		close(c->fd);
	agent_call_clear(&c->call);
	g_free(o->workdir);
	g_free(o->user);
	g_strfreev(o->envs);
}

static int fail_with(GError *err)
{
	int status = err->domain == HUSK_ERROR && err->code ? err->code : FAILED;

	g_printerr("husk: %s\n", err->message);
	g_error_free(err);
	return status;
}

/* COMMAND in TARGET with this process's stdin, stdout and stderr; husk's exit status. */
static int run_command(struct cli_call *c, const char *target, const char *const *command,
                       const struct call_opts *o)
{
	GByteArray *req = g_byte_array_new();
	GError *err = NULL;
	int status;

	c->target = target;
	for (const char *const *a = command; *a; a++)
		agent_call_field(req, AGENT_ARG, *a);
	add_common(req, o);
	if (req->len > AGENT_MAX_BODY - 1)
		husk_fail(&err, HUSK_EXIT_USAGE,
		          "%s: the command and its variables are over %u bytes", c->cmd,
		          AGENT_MAX_BODY - 1);
	status = err || !agent_connect(c, &err) ? fail_with(err) : call(c, req);
	g_byte_array_unref(req);
	return status;
}

int agent_exec_main(int argc, char **argv)
{
	struct cli_call c;
	struct call_opts o = {0};
	char **command = split_command(&argc, argv);
	GError *err = NULL;
	int status;

	cli_call_init(&c, "exec", false);
	if (!parse("exec", "NAME [--] COMMAND [ARG...] - run a command in a running instance",
	           "NAME is an instance, or the socket of a `husk run --vsock PATH`.", &argc, &argv,
	           &o, &err)) {
		call_free(&c, &o);
		return fail_with(err);
	}
	if (argc != 2 || !command || !command[0]) {
		call_free(&c, &o);
		g_printerr("husk: exec: usage: husk exec NAME [--workdir DIR] [--env K=V] [--user "
		           "U] -- COMMAND [ARG...]\n");
		return HUSK_EXIT_USAGE;
	}
	status = run_command(&c, argv[1], (const char *const *)command, &o);
	call_free(&c, &o);
	return status;
}

int agent_run(const char *cmd, const char *target, const char *const *command, const char *user)
{
	struct cli_call c;
	struct call_opts o = {.user = g_strdup(user)};
	int status;

	cli_call_init(&c, cmd, false);
	status = run_command(&c, target, command, &o);

	call_free(&c, &o);
	return status;
}

/* The host terminal raw while the shell runs, as the guest's terminal does the editing. */
static bool make_raw(struct termios *saved)
{
	struct termios raw;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) < 0)
		return false;
	raw = *saved;
	cfmakeraw(&raw);
	return tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0;
}

/* A login shell on a terminal of ours' size; TERM as ours. */
static GByteArray *shell_request(const struct call_opts *o)
{
	GByteArray *req = g_byte_array_new();
	struct agent_winsize ws = {24, 80};
	char size[16],
	    *term = g_strdup_printf("TERM=%s", g_getenv("TERM") ? g_getenv("TERM") : "vt220");

	window_size(&ws);
	agent_pty_format(size, ws);
	agent_call_field(req, AGENT_PTY, size);
	agent_call_field(req, AGENT_ENV, term);
	g_free(term);
	add_common(req, o);
	return req;
}

int shell_main(int argc, char **argv)
{
	struct cli_call c;
	struct call_opts o = {0};
	struct termios saved;
	GError *err = NULL;
	int status;

	cli_call_init(&c, "shell", true);
	if (!parse("shell", "NAME - a login shell in a running instance",
	           "NAME is an instance, or the socket of a `husk run --vsock PATH`.", &argc, &argv,
	           &o, &err)) {
		call_free(&c, &o);
		return fail_with(err);
	}
	if (argc != 2) {
		call_free(&c, &o);
		g_printerr("husk: shell: usage: husk shell NAME [--user U] [--workdir DIR]\n");
		return HUSK_EXIT_USAGE;
	}
	c.target = argv[1];
	/* An instance's default user is the one husk's vendor-data made. */
	if (!o.user && !strchr(c.target, '/'))
		o.user = g_strdup("husk");
	if (!agent_connect(&c, &err)) {
		call_free(&c, &o);
		return fail_with(err);
	}
	if (c.call.version < 2) {
		call_free(&c, &o);
		g_printerr("husk: shell: %s: the agent speaks version %u, a terminal needs 2\n",
		           c.target, c.call.version);
		return FAILED;
	}
	GByteArray *req = shell_request(&o);
	bool raw = make_raw(&saved);
	status = call(&c, req);
	if (raw)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
	g_byte_array_unref(req);
	call_free(&c, &o);
	return status;
}
