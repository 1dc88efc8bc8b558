// SPDX-License-Identifier: MIT
/*
 * One connection of husk-agent: requests read as frames, a command run
 * per EXEC with its three streams relayed, its end reported. A request
 * that fails is answered with ERROR; the stream goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "firmware/husk-agent.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define OUT_CHUNK    (AGENT_MAX_BODY - 1)
/*
 * agent_serve_app: how long the streams of a command that exited may
 * still bring what it wrote (a terminal hands its output on from a kernel
 * worker, after the writer may be gone) before they close anyway.
 */
#define DRAIN_MS 500

extern char **environ;

struct session {
	int fd;
	uint8_t in[4 + AGENT_MAX_BODY]; /* what the host sent, not yet a whole frame */
	size_t in_len;
	pid_t pid; /* the command's, or 0 */
	int pidfd;
	int child_in, child_out, child_err; /* our ends of its pipes; -1 once closed */
	int pty;                            /* the terminal's master, with PTY; else -1 */
	uint8_t pending[AGENT_MAX_BODY];    /* STDIN the command has not taken yet */
	size_t pending_len, pending_off;
	bool close_stdin; /* the host's empty STDIN: close once pending is out */
	bool exited;
	int status;
	bool end_with_command; /* agent_serve_app: streams closed DRAIN_MS after its exit */
	long drain_until;      /* then, on the monotonic clock in ms */
};

static bool write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool send_frame(struct session *s, uint8_t type, const void *payload, uint32_t len)
{
	uint8_t hdr[5];

	agent_frame_header(hdr, type, len);
	return write_all(s->fd, hdr, sizeof(hdr)) && write_all(s->fd, payload, len);
}

static void send_error(struct session *s, const char *why)
{
	send_frame(s, AGENT_ERROR, why, (uint32_t)strlen(why));
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- the command's side, after fork ----------------------------------------- */

/* A passwd entry: what the command needs of its user. */
struct account {
	uid_t uid;
	gid_t gid;
	char home[256], shell[256];
};

static void copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* The passwd entry whose name or number is 'user'. */
static bool find_user(const char *user, struct account *a)
{
	FILE *f = fopen("/etc/passwd", "re");
	char line[1024];
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		/* strsep, not strtok: an empty field (no password) is still a field. */
		char *rest = line, *name = strsep(&rest, ":"), *pw = strsep(&rest, ":");
		char *u = strsep(&rest, ":"), *g = strsep(&rest, ":");
		char *gecos = strsep(&rest, ":"), *home = strsep(&rest, ":");
		if (name && pw && u && g && (!strcmp(name, user) || !strcmp(u, user))) {
			a->uid = (uid_t)strtoul(u, NULL, 10);
			a->gid = (gid_t)strtoul(g, NULL, 10);
			copy_field(a->home, sizeof(a->home), gecos ? home : NULL);
			copy_field(a->shell, sizeof(a->shell), rest);
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* In the child: tells the agent why the command did not start, and ends. */
_Noreturn static void child_fail(int report, const char *what, const char *arg)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%s %s: %s", what, arg, strerror(errno));

	write_all(report, msg, n > 0 ? (size_t)n : 0);
	_exit(127);
}

/* In the child: the terminal 'tty' becomes its controlling one, and 0, 1 and 2. */
static void take_terminal(int tty, int report)
{
	if (setsid() < 0 || ioctl(tty, TIOCSCTTY, 0) < 0)
		child_fail(report, "terminal", "");
	if (dup2(tty, 0) < 0 || dup2(tty, 1) < 0 || dup2(tty, 2) < 0)
		child_fail(report, "dup2", "");
}

/* A login shell's environment beside what the host gave: the user's own. */
static void login_env(const struct account *a, const char *user)
{
	setenv("HOME", a->home[0] ? a->home : "/", 0);
	setenv("SHELL", a->shell, 0);
	setenv("USER", user, 0);
	setenv("LOGNAME", user, 0);
	if (!getenv("PATH"))
		putenv(DEFAULT_PATH);
}

/* The name of the passwd entry for 'a' (for USER and LOGNAME), else its number. */
static void account_name(const char *asked, const struct account *a, char *out, size_t size)
{
	FILE *f = fopen("/etc/passwd", "re");
	char line[1024];

	snprintf(out, size, "%s", asked);
	while (f && fgets(line, sizeof(line), f)) {
		char *rest = line, *name = strsep(&rest, ":");
		strsep(&rest, ":");
		char *u = strsep(&rest, ":");
		if (u && (uid_t)strtoul(u, NULL, 10) == a->uid) {
			snprintf(out, size, "%s", name);
			break;
		}
	}
	if (f)
		fclose(f);
}

/* A PTY with no ARG: the user's shell, as a login shell ("-bash") in their home. */
_Noreturn static void run_login_shell(const struct account *a, const char *user, const char *cwd,
                                      int report)
{
	const char *shell = a->shell[0] ? a->shell : "/bin/sh";
	const char *base = strrchr(shell, '/') ? strrchr(shell, '/') + 1 : shell;
	char arg0[260], name[64];

	account_name(user, a, name, sizeof(name));
	login_env(a, name);
	snprintf(arg0, sizeof(arg0), "-%s", base);
	if (cwd && chdir(cwd) < 0)
		child_fail(report, "chdir", cwd);
	if (!cwd && chdir(a->home[0] ? a->home : "/") < 0 && chdir("/") < 0)
		child_fail(report, "chdir", a->home);
	execl(shell, arg0, (char *)NULL);
	child_fail(report, "exec", shell);
}

/*
 * A command starts with every signal at its default and none blocked,
 * whatever the agent inherited: started in the background by a shell, the
 * agent ignores SIGINT and SIGQUIT, and so would its commands, and the
 * Ctrl-C that husk exec passes on would do nothing.
 */
static void reset_signals(void)
{
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL); /* SIGKILL and SIGSTOP say EINVAL: they are default anyway */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

_Noreturn static void run_command(const struct agent_exec *e, const int in[2], const int out[2],
                                  const int err[2], int tty, int report)
{
	static char *default_env[] = {DEFAULT_PATH, NULL};
	struct account a = {0};
	char self[16];

	reset_signals();
	if (tty >= 0) {
		take_terminal(tty, report);
	} else {
		setpgid(0, 0); /* SIGNAL goes to the command and what it starts */
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			child_fail(report, "dup2", "");
	}
	snprintf(self, sizeof(self), "%u", (unsigned int)getuid());
	const char *user = e->user ? e->user : self;
	errno = ENOENT;
	bool known = find_user(user, &a);
	if (e->user && !known)
		child_fail(report, "user", e->user);
	if (e->user && (setgroups(1, &a.gid) < 0 || setgid(a.gid) < 0 || setuid(a.uid) < 0))
		child_fail(report, "user", e->user);
	environ = e->env ? e->env : default_env;
	if (!getenv("PATH")) /* --env A=1 alone still finds its programs */
		putenv(DEFAULT_PATH);
	if (!e->argv[0]) {
		if (!known) /* no passwd entry for the agent's own user: a plain shell */
			snprintf(a.shell, sizeof(a.shell), "/bin/sh");
		run_login_shell(&a, user, e->cwd, report);
	}
	if (e->cwd && chdir(e->cwd) < 0)
		child_fail(report, "chdir", e->cwd);
	execvp(e->argv[0], e->argv);
	child_fail(report, "exec", e->argv[0]);
}

/* ---- the agent's side -------------------------------------------------------- */

static bool make_pipes(int p[4][2])
{
	for (int i = 0; i < 4; i++) {
		if (pipe2(p[i], O_CLOEXEC) < 0) {
			while (i--) {
				close(p[i][0]);
				close(p[i][1]);
			}
			return false;
		}
	}
	return true;
}

/* A new terminal of the asked size: its master in *master, its other end returned. */
static int open_terminal(const struct agent_exec *e, int *master)
{
	struct winsize ws = {.ws_row = e->rows, .ws_col = e->cols};
	int tty;

	if (openpty(master, &tty, NULL, NULL, &ws) < 0)
		return -1;
	fcntl(*master, F_SETFD, FD_CLOEXEC);
	fcntl(tty, F_SETFD, FD_CLOEXEC);
	return tty;
}

static void close_pipes(int p[4][2])
{
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 2; j++)
			close_fd(&p[i][j]);
}

/* The agent's ends: pipes, or all three on the terminal's master. */
static void take_ends(struct session *s, int p[4][2], int master)
{
	if (master < 0) {
		s->child_in = p[0][1];
		s->child_out = p[1][0];
		s->child_err = p[2][0];
		p[0][1] = p[1][0] = p[2][0] = -1;
	} else {
		s->pty = master;
		s->child_in = fcntl(master, F_DUPFD_CLOEXEC, 0);
		s->child_out = fcntl(master, F_DUPFD_CLOEXEC, 0);
		s->child_err = -1;
		send_frame(s, AGENT_STDERR, "", 0); /* all of it comes as STDOUT */
	}
	close_pipes(p);
	fcntl(s->child_in, F_SETFL, O_NONBLOCK);
}

/* Starts the command; NULL, or why it did not start. */
static const char *start(struct session *s, const struct agent_exec *e, char *why, size_t size)
{
	int p[4][2]; /* stdin, stdout, stderr, and the child's report */
	int master = -1, tty = -1;

	if (!make_pipes(p))
		return "pipe failed";
	if (e->pty && (tty = open_terminal(e, &master)) < 0) {
		close_pipes(p);
		return "no terminal (is devpts mounted?)";
	}
	pid_t pid = fork();
	if (pid == 0)
		run_command(e, p[0], p[1], p[2], tty, p[3][1]);
	close_fd(&tty);
	for (int i = 0; i < 4; i++)
		close_fd(&p[i][i == 0 ? 0 : 1]);
	ssize_t n = pid < 0 ? 0 : read(p[3][0], why, size - 1);
	if (pid < 0 || n > 0) {
		why[n > 0 ? n : 0] = '\0';
		if (pid > 0)
			waitpid(pid, NULL, 0);
		close_pipes(p);
		close_fd(&master);
		return pid < 0 ? "fork failed" : why;
	}
	s->pid = pid;
	s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	s->exited = false;
	take_ends(s, p, master);
	return NULL;
}

static void on_exec(struct session *s, const struct agent_frame *f)
{
	struct agent_exec e;
	const char *why;
	char buf[512];

	if (s->pid) {
		send_error(s, "a command is already running");
		return;
	}
	if (!agent_exec_decode(f->payload, f->len, &e, &why)) {
		send_error(s, why);
		return;
	}
	why = start(s, &e, buf, sizeof(buf));
	agent_exec_free(&e);
	if (why)
		send_error(s, why);
}

static void on_signal(struct session *s, const struct agent_frame *f)
{
	uint32_t sig;

	if (f->len != 4) {
		send_error(s, "SIGNAL wants a 4-byte number");
		return;
	}
	sig = (uint32_t)f->payload[0] | (uint32_t)f->payload[1] << 8 |
	      (uint32_t)f->payload[2] << 16 | (uint32_t)f->payload[3] << 24;
	if (!s->pid || s->exited)
		return; /* the command ended meanwhile: nothing to signal */
	if (sig == 0 || sig >= 65 || kill(-s->pid, (int)sig) < 0)
		send_error(s, "no such signal");
}

static void on_resize(struct session *s, const struct agent_frame *f)
{
	struct agent_winsize ws;
	const char *why;

	if (!agent_resize_decode(f->payload, f->len, &ws, &why)) {
		send_error(s, why);
		return;
	}
	struct winsize w = {.ws_row = ws.rows, .ws_col = ws.cols};
	if (s->pty >= 0)
		ioctl(s->pty, TIOCSWINSZ, &w); /* the terminal tells its foreground: SIGWINCH */
}

static void on_stdin(struct session *s, const struct agent_frame *f)
{
	if (s->child_in < 0)
		return; /* no command, or its input is closed: the bytes go nowhere */
	if (!f->len) {
		s->close_stdin = true;
	} else {
		memcpy(s->pending, f->payload, f->len);
		s->pending_len = f->len;
		s->pending_off = 0;
	}
}

/* --- MOUNT and UMOUNT ------------------------------------------------------ */

#define MOUNT_WAIT_MS 10000 /* for a device new to the guest to have its driver */

static bool write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write_all(fd, text, strlen(text));

	if (fd >= 0)
		close(fd);
	return ok;
}

static void device_dir(char *out, size_t size, int slot)
{
	snprintf(out, size, "/sys/bus/pci/devices/0000:00:%02x.0", (unsigned int)slot);
}

/* Like mkdir -p, 0755; the path was checked to be absolute with no . or .. */
static bool make_dirs(const char *path)
{
	char buf[AGENT_MAX_PATH];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *c = buf + 1;; c++) {
		if (*c != '/' && *c)
			continue;
		char was = *c;
		*c = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return false;
		if (!was)
			return true;
		*c = was;
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * A hot-plugged device is unknown to the guest until its PCI bus is
 * rescanned, and its tag unknown until the driver has probed it: mount
 * is tried until then (an unknown tag is EINVAL or ENOENT, by kernel).
 * Without a slot, the device is one the guest has had since boot: once.
 */
static int mount_share(const struct agent_mount *m)
{
	unsigned long flags = MS_NODEV | (m->read_only ? MS_RDONLY : 0);
	char dir[64];

	if (m->slot >= 0) {
		device_dir(dir, sizeof(dir), m->slot);
		if (access(dir, F_OK) < 0)
			write_text("/sys/bus/pci/rescan", "1");
	}
	for (long waited = 0;; waited += 50) {
		if (mount(m->tag, m->path, "virtiofs", flags, NULL) == 0)
			return 0;
		if ((errno != EINVAL && errno != ENOENT && errno != ENODEV) || m->slot < 0 ||
		    waited >= MOUNT_WAIT_MS)
			return errno;
		sleep_ms(50);
	}
}

static void on_mount(struct session *s, const struct agent_frame *f)
{
	struct agent_mount m;
	const char *why;
	char msg[128];
	int e;

	if (!agent_mount_decode(f->payload, f->len, false, &m, &why)) {
		send_error(s, why);
		return;
	}
	if (!make_dirs(m.path))
		snprintf(msg, sizeof(msg), "cannot make the mount point: %s", strerror(errno));
	else if ((e = mount_share(&m)) != 0)
		snprintf(msg, sizeof(msg), "mount of tag %s: %s", m.tag, strerror(e));
	else
		msg[0] = '\0';
	agent_mount_free(&m);
	if (msg[0])
		send_error(s, msg);
	else
		send_frame(s, AGENT_DONE, "", 0);
}

/* The guest lets the device go (its driver unbound, the device reset): husk may unplug it. */
static bool remove_device(int slot)
{
	char dir[64], path[80];

	device_dir(dir, sizeof(dir), slot);
	if (access(dir, F_OK) < 0)
		return true;
	snprintf(path, sizeof(path), "%s/remove", dir);
	return write_text(path, "1");
}

#define FUSE_SUPER_MAGIC 0x65735546

static bool is_fuse(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == FUSE_SUPER_MAGIC;
}

static void on_umount(struct session *s, const struct agent_frame *f)
{
	struct agent_mount m;
	const char *why;
	char msg[128] = "";

	if (!agent_mount_decode(f->payload, f->len, true, &m, &why)) {
		send_error(s, why);
		return;
	}
	/*
	 * Only a virtio-fs mount (FUSE's magic) is taken down: not one of the
	 * guest's own that a failed MOUNT's undoing would find there. Not
	 * mounted there (EINVAL) is fine: the guest may have unmounted it.
	 */
	if (is_fuse(m.path) && umount2(m.path, 0) < 0 && errno != EINVAL)
		snprintf(msg, sizeof(msg), "umount: %s", strerror(errno));
	else if (m.slot >= 0 && !remove_device(m.slot))
		snprintf(msg, sizeof(msg), "removing PCI device %d: %s", m.slot, strerror(errno));
	agent_mount_free(&m);
	if (msg[0])
		send_error(s, msg);
	else
		send_frame(s, AGENT_DONE, "", 0);
}

static void dispatch(struct session *s, const struct agent_frame *f)
{
	switch (f->type) {
	case AGENT_EXEC:
		on_exec(s, f);
		break;
	case AGENT_STDIN:
		on_stdin(s, f);
		break;
	case AGENT_SIGNAL:
		on_signal(s, f);
		break;
	case AGENT_RESIZE:
		on_resize(s, f);
		break;
	case AGENT_MOUNT:
		on_mount(s, f);
		break;
	case AGENT_UMOUNT:
		on_umount(s, f);
		break;
	default:
		send_error(s, "unexpected frame type");
	}
}

static bool feeding(const struct session *s)
{
	return s->pending_len || s->close_stdin;
}

/*
 * Serves the whole frames the host sent. STDIN waits, in order, while the
 * command has yet to take the last; the others go past it (Ctrl-C for a
 * command that reads no input). False if the host broke the framing.
 */
static bool take_frames(struct session *s)
{
	struct agent_frame f;
	size_t off = 0;
	long used;

	while ((used = agent_frame_parse(s->in + off, s->in_len - off, &f)) != 0) {
		if (used < 0) {
			send_error(s, "bad frame length");
			return false;
		}
		if (f.type == AGENT_STDIN && feeding(s)) {
			off += (size_t)used;
			continue;
		}
		dispatch(s, &f);
		s->in_len -= (size_t)used;
		memmove(s->in + off, s->in + off + used, s->in_len - off);
	}
	return true;
}

/* Takes what the host sent; false once it is gone. */
static bool read_host(struct session *s)
{
	ssize_t n = read(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len);

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	s->in_len += (size_t)n;
	return true;
}

/* Relays one read of the command's stdout or stderr; its end closes it. */
static void relay(struct session *s, int *fd, uint8_t type)
{
	static uint8_t buf[OUT_CHUNK];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	send_frame(s, type, buf, n > 0 ? (uint32_t)n : 0);
	if (n <= 0)
		close_fd(fd);
}

static void feed_stdin(struct session *s)
{
	if (s->pending_off < s->pending_len) {
		ssize_t n = write(s->child_in, s->pending + s->pending_off,
		                  s->pending_len - s->pending_off);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			s->pending_len = s->pending_off =
			    0; /* it closed its input: drop the rest */
		else if (n > 0)
			s->pending_off += (size_t)n;
	}
	if (s->pending_off == s->pending_len) {
		s->pending_len = s->pending_off = 0;
		if (s->close_stdin) {
			close_fd(&s->child_in);
			s->close_stdin = false;
		}
	}
}

/* The command has exited and its output is all sent: EXIT, and ready for the next. */
static void finish(struct session *s)
{
	uint8_t exit[5];
	bool killed = WIFSIGNALED(s->status);
	uint32_t v = (uint32_t)(killed ? WTERMSIG(s->status) : WEXITSTATUS(s->status));

	exit[0] = killed ? AGENT_KILLED : AGENT_EXITED;
	for (int i = 0; i < 4; i++)
		exit[1 + i] = (uint8_t)(v >> (8 * i));
	send_frame(s, AGENT_EXIT, exit, sizeof(exit));
	close_fd(&s->child_in);
	close_fd(&s->pidfd);
	close_fd(&s->pty);
	s->pid = 0;
	s->pending_len = s->pending_off = 0;
	s->close_stdin = false;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * agent_serve_app: poll's timeout while an exited command's streams drain;
 * once that is over, they close, whatever it left running holds them.
 */
static int drain_timeout(struct session *s)
{
	if (!s->end_with_command || !s->pid || !s->exited)
		return -1;
	long left = s->drain_until - now_ms();
	if (left > 0)
		return (int)left;
	close_fd(&s->child_out);
	close_fd(&s->child_err);
	return 0;
}

/* One turn of the loop; false once the host is gone. */
static bool turn(struct session *s)
{
	int timeout = drain_timeout(s);
	struct pollfd p[5] = {
	    {s->in_len < sizeof(s->in) ? s->fd : -1, POLLIN, 0},
	    {feeding(s) ? s->child_in : -1, POLLOUT, 0},
	    {s->child_out, POLLIN, 0},
	    {s->child_err, POLLIN, 0},
	    {s->pid && !s->exited ? s->pidfd : -1, POLLIN, 0},
	};

	if (poll(p, 5, timeout) < 0)
		return errno == EINTR;
	if (p[1].revents)
		feed_stdin(s);
	if (p[2].revents)
		relay(s, &s->child_out, AGENT_STDOUT);
	if (p[3].revents)
		relay(s, &s->child_err, AGENT_STDERR);
	if (p[4].revents && waitpid(s->pid, &s->status, WNOHANG) == s->pid) {
		s->exited = true;
		s->drain_until = now_ms() + DRAIN_MS;
	}
	if (s->pid && s->exited && s->child_out < 0 && s->child_err < 0)
		finish(s);
	if (p[0].revents && !read_host(s))
		return false;
	return take_frames(s);
}

static void serve(int fd, bool end_with_command)
{
	static struct session s;
	uint8_t version[4] = {AGENT_VERSION, 0, 0, 0};

	s = (struct session){.fd = fd,
	                     .pidfd = -1,
	                     .child_in = -1,
	                     .child_out = -1,
	                     .child_err = -1,
	                     .pty = -1,
	                     .end_with_command = end_with_command};
	if (!send_frame(&s, AGENT_HELLO, version, sizeof(version)))
		return;
	while (turn(&s))
		;
	/* The host went away: so does its command. */
	if (s.pid) {
		kill(-s.pid, SIGKILL);
		waitpid(s.pid, NULL, 0);
	}
	close_fd(&s.child_in);
	close_fd(&s.child_out);
	close_fd(&s.child_err);
	close_fd(&s.pidfd);
	close_fd(&s.pty);
}

void agent_serve(int fd)
{
	serve(fd, false);
}

void agent_serve_app(int fd)
{
	serve(fd, true);
}
