// SPDX-License-Identifier: MIT
/*
 * /init of a `husk exec` guest: a static program in the initramfs husk
 * builds. It loads the modules husk packed, mounts the control share
 * (virtio-fs tag "husk-ctl") and reads what to do from its "exec" file:
 * which root to use, what to mount where, the environment, the working
 * directory and the command. It runs the command with its stdout and stderr
 * on files in the control share, which husk copies to its own as they grow,
 * writes how the command ended to "status", and powers off.
 *
 * The exec file is a list of NUL-terminated KEY=VALUE records:
 *   root=overlay:TAG   a read-only share under a throwaway tmpfs layer
 *   root=share:TAG     a writable share as it is
 *   root=dev:PATH      a block device (ext4, xfs, btrfs...)
 *   mount=TAG:ro|rw:GUESTPATH   (repeatable)
 *   net=ADDR/PREFIX,GATEWAY,DNS  eth0's address (user networking)
 *   env=K=V (repeatable), cwd=PATH, arg=WORD (repeatable, in order)
 *   cwd-make=1         make cwd first if it is missing (a container's WorkingDir)
 *   user=UID:GID[:GID,...]  the command's user, group and supplementary groups
 *   sysctl=NAME=VALUE  written to /proc/sys/NAME (dots for slashes), in order
 *   forward-signals=1  when husk writes "signal" in the control share, the
 *                      command gets SIGTERM (husk run --image: Ctrl-C, stop)
 *   session=PORT       husk run --image -t/-i: no command of our own; instead
 *                      one husk-agent session (firmware/husk-agent.h) on a
 *                      vsock connection to the host's PORT, as the user, in
 *                      the new root and cwd: husk asks it for the command,
 *                      on a terminal or not, and relays its streams, window
 *                      size and signals; its EXIT is the command's status
 * The status file says "exit N", "signal N" or "error MESSAGE" (with a
 * session: only how the session failed, if it did).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <net/route.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* linux/vm_sockets.h uses struct sockaddr without including its header. */
#include <linux/vm_sockets.h>

#include "exec_file.h"
#include "firmware/husk-agent.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4 /* linux/module.h, Linux 6.2 */
#endif

#define CTL      "/ctl"
#define NEWROOT  "/newroot"
#define MAX_RECS EXEC_FILE_MAX_RECORDS

#define SESSION_WAIT_MS 10000 /* for the vsock transport to take a connection */

static int ctl_fd = -1;
static char resolver[32]; /* the DNS server user networking offers, if any */

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void write_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1;
	int fd = ctl_fd >= 0 ? openat(ctl_fd, "status", O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
	if (fd >= 0) {
		if (write(fd, buf, (size_t)n) != n)
			perror("husk-init: status");
		fsync(fd);
		close(fd);
	}
}

/* Something went wrong before the command ran: say so to husk and stop. */
static void die(const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "husk-init: %s\n", msg);
	write_status("error %s\n", msg);
	power_off();
}

static void mount_or_die(const char *src, const char *dst, const char *type, unsigned long flags,
                         const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data))
		die("cannot mount %s (%s) on %s: %s", src, type, dst, strerror(errno));
}

static void load_modules(void)
{
	FILE *f = fopen("/modules/order", "r");
	char line[256], path[300];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!*line)
			continue;
		snprintf(path, sizeof(path), "/modules/%s", line);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		/* Distributions that compress modules build kernels that unpack them (Linux 6.2+).
		 */
		int flags = strstr(line, ".ko.") ? MODULE_INIT_COMPRESSED_FILE : 0;
		if (fd < 0 || (syscall(SYS_finit_module, fd, "", flags) && errno != EEXIST))
			fprintf(stderr, "husk-init: module %s: %s\n", line, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	fclose(f);
}

/* The exec file, read whole; records point into it. */
static char *recs[MAX_RECS];
static int nrecs;

static void read_exec(void)
{
	static char buf[EXEC_FILE_MAX_BYTES + 1];
	int fd = openat(ctl_fd, "exec", O_RDONLY);
	ssize_t len = 0, n;

	if (fd < 0)
		die("no exec file in the control share: %s", strerror(errno));
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	close(fd);
	for (char *p = buf; p < buf + len && nrecs < MAX_RECS; p += strlen(p) + 1)
		recs[nrecs++] = p;
}

/* The value of the i-th record with this key, or NULL. */
static const char *get(const char *key, int nth)
{
	size_t k = strlen(key);

	for (int i = 0; i < nrecs; i++)
		if (strncmp(recs[i], key, k) == 0 && recs[i][k] == '=' && nth-- == 0)
			return recs[i] + k + 1;
	return NULL;
}

static void mkdir_p(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

static void mount_block_root(const char *dev)
{
	static const char *const types[] = {"ext4", "xfs", "btrfs", "ext3", "ext2", "vfat"};

	mkdir(NEWROOT, 0755);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (mount(dev, NEWROOT, types[i], 0, NULL) == 0)
			return;
	die("cannot mount %s as the root filesystem: %s", dev, strerror(errno));
}

static void mount_root(void)
{
	const char *root = get("root", 0);

	if (!root)
		die("the exec file names no root");
	if (strncmp(root, "overlay:", 8) == 0) {
		/* The share stays read-only; writes land in memory and vanish with the VM. */
		mount_or_die(root + 8, "/lower", "virtiofs", MS_RDONLY, NULL);
		mount_or_die("rw", "/rw", "tmpfs", 0, "mode=0755");
		mkdir("/rw/upper", 0755);
		mkdir("/rw/work", 0755);
		mount_or_die("overlay", NEWROOT, "overlay", 0,
		             "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work");
	} else if (strncmp(root, "share:", 6) == 0) {
		mount_or_die(root + 6, NEWROOT, "virtiofs", 0, NULL);
	} else if (strncmp(root, "dev:", 4) == 0) {
		mount_block_root(root + 4);
	} else {
		die("unknown root \"%s\"", root);
	}
}

static void mount_shares(void)
{
	const char *m;

	for (int i = 0; (m = get("mount", i)); i++) {
		char tag[64], mode[4], where[4096];
		const char *c1 = strchr(m, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || (size_t)(c1 - m) >= sizeof(tag) || c2 - c1 - 1 != 2)
			die("bad mount record \"%s\"", m);
		snprintf(tag, sizeof(tag), "%.*s", (int)(c1 - m), m);
		snprintf(mode, sizeof(mode), "%.2s", c1 + 1);
		snprintf(where, sizeof(where), NEWROOT "%s", c2 + 1);
		mkdir_p(where);
		if (mount(tag, where, "virtiofs", strcmp(mode, "ro") == 0 ? MS_RDONLY : 0, NULL))
			die("cannot mount the share for %s: %s", c2 + 1, strerror(errno));
	}
}

static void set_addr(int sock, struct ifreq *ifr, unsigned long req, in_addr_t a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr->ifr_addr;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = a;
	if (ioctl(sock, req, ifr))
		fprintf(stderr, "husk-init: eth0 address: %s\n", strerror(errno));
}

static void link_up(int sock, const char *name)
{
	struct ifreq ifr = {0};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(sock, SIOCSIFFLAGS, &ifr);
	}
}

/* "ADDR/PREFIX,GATEWAY,DNS": eth0 up with a default route and a resolver. */
static void setup_network(void)
{
	const char *net = get("net", 0);
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char addr[32], gw[32], dns[32];
	int prefix;

	if (sock < 0)
		return;
	link_up(sock, "lo");
	if (net && sscanf(net, "%31[^/]/%d,%31[^,],%31s", addr, &prefix, gw, dns) == 4) {
		struct ifreq ifr = {0};
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
		set_addr(sock, &ifr, SIOCSIFADDR, inet_addr(addr));
		set_addr(sock, &ifr, SIOCSIFNETMASK, htonl(prefix ? ~0u << (32 - prefix) : 0));
		link_up(sock, "eth0");
		struct rtentry rt = {0};
		((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
		((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
		struct sockaddr_in *g = (struct sockaddr_in *)&rt.rt_gateway;
		g->sin_family = AF_INET;
		g->sin_addr.s_addr = inet_addr(gw);
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		if (ioctl(sock, SIOCADDRT, &rt))
			fprintf(stderr, "husk-init: default route: %s\n", strerror(errno));
		snprintf(resolver, sizeof(resolver), "%s", dns);
	}
	close(sock);
}

/* In the new root: the host's resolv.conf (often a link into /run) would not work here. */
static void write_resolv_conf(void)
{
	if (!*resolver)
		return;
	unlink("/etc/resolv.conf");
	FILE *f = fopen("/etc/resolv.conf", "w");
	if (f) {
		fprintf(f, "nameserver %s\n", resolver);
		fclose(f);
	}
}

/* "net.ipv4.ip_unprivileged_port_start=0" as /proc/sys/net/ipv4/...: what a
 * container runtime sets in a container's own kernel state. */
static void set_sysctls(void)
{
	const char *v;

	for (int i = 0; (v = get("sysctl", i)); i++) {
		char path[256];
		const char *eq = strchr(v, '=');
		int n = eq ? snprintf(path, sizeof(path), "/proc/sys/%.*s", (int)(eq - v), v) : -1;
		if (n < 0 || n >= (int)sizeof(path) || strstr(path, ".."))
			die("bad sysctl record \"%s\"", v);
		for (char *c = path + 10; *c; c++)
			if (*c == '.')
				*c = '/';
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, eq + 1, strlen(eq + 1)) < 0)
			fprintf(stderr, "husk-init: sysctl %s: %s\n", v, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
}

static void mount_basics(const char *root)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/proc", root);
	mount_or_die("proc", path, "proc", 0, NULL);
	snprintf(path, sizeof(path), "%s/sys", root);
	mount_or_die("sys", path, "sysfs", 0, NULL);
	snprintf(path, sizeof(path), "%s/dev", root);
	mount_or_die("dev", path, "devtmpfs", 0, NULL);
	snprintf(path, sizeof(path), "%s/tmp", root);
	mount_or_die("tmp", path, "tmpfs", 0, "mode=1777");
	snprintf(path, sizeof(path), "%s/run", root);
	mount_or_die("run", path, "tmpfs", 0, "mode=0755");
}

/* "UID:GID[:G1,G2...]": the groups first, while we still may set them. */
static int become_user(const char *spec)
{
	gid_t groups[64];
	unsigned long uid, gid;
	size_t ngroups = 0;
	char *end;

	uid = strtoul(spec, &end, 10);
	if (*end != ':')
		return -1;
	gid = strtoul(end + 1, &end, 10);
	while (*end && ngroups < sizeof(groups) / sizeof(groups[0])) {
		groups[ngroups++] = (gid_t)strtoul(end + 1, &end, 10);
		if (*end && *end != ',')
			return -1;
	}
	if (setgroups(ngroups, groups) || setgid((gid_t)gid) || setuid((uid_t)uid))
		return -1;
	return 0;
}

/*
 * Until the command ends, reaping what else ends (we are PID 1). With
 * forward-signals, a look for husk's "signal" file every tick: the control
 * share is how husk reaches the guest (a name it has not seen yet, the
 * guest's kernel asks about again after a second).
 */
static int wait_command(pid_t pid, bool forward)
{
	bool sent = false;
	sigset_t chld;
	int status = 0;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t got = waitpid(-1, &status, WNOHANG);
		if (got == pid)
			return status;
		if (got > 0)
			continue;
		if (got < 0 && errno != EINTR)
			die("wait: %s", strerror(errno));
		if (forward && !sent && faccessat(ctl_fd, "signal", F_OK, 0) == 0) {
			kill(pid, SIGTERM);
			sent = true;
		}
		struct timespec tick = {0, forward && !sent ? 200000000 : 999999999};
		sigtimedwait(&chld, NULL, &tick);
	}
}

/* In the command's child, when it cannot become the command: tells the parent. */
static void exec_failed_exit(int fd, int status)
{
	while (write(fd, "x", 1) < 0 && errno == EINTR)
		;
	_exit(status);
}

/*
 * "started" in the control share once the command's execvp succeeded (its
 * end of the pipe closed with nothing written): husk run --image --detach
 * waits for it.
 */
static void note_started(int fd)
{
	char c;
	ssize_t n;

	while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	close(fd);
	if (n != 0)
		return;
	int started = openat(ctl_fd, "started", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (started >= 0)
		close(started);
}

/* Into the new root and the command's working directory. */
static void enter_root(void)
{
	if (chroot(NEWROOT) || chdir("/"))
		die("cannot enter the new root: %s", strerror(errno));
	write_resolv_conf();
	const char *cwd = get("cwd", 0);
	if (cwd && get("cwd-make", 0) && access(cwd, F_OK))
		mkdir_p(cwd);
	if (cwd && chdir(cwd))
		die("working directory %s: %s", cwd, strerror(errno));
}

/* SIGCHLD waits, blocked, for sigtimedwait in wait_command. */
static void block_sigchld(sigset_t *chld)
{
	sigemptyset(chld);
	sigaddset(chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, chld, NULL);
}

static void run_command(void)
{
	char *argv[MAX_RECS + 1], *envp[MAX_RECS + 1];
	int argc = 0, envc = 0;
	const char *v;

	for (int i = 0; (v = get("arg", i)); i++)
		argv[argc++] = (char *)v;
	argv[argc] = NULL;
	for (int i = 0; (v = get("env", i)); i++)
		envp[envc++] = (char *)v;
	envp[envc] = NULL;
	if (argc == 0)
		die("no command to run");
	/* Opened before the root changes: the control share is not in the new root. */
	int out = openat(ctl_fd, "stdout", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int err = openat(ctl_fd, "stderr", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0 || err < 0)
		die("cannot create the output files: %s", strerror(errno));
	enter_root();

	sigset_t chld;
	block_sigchld(&chld);
	/* Closed by a successful execvp: how the parent knows the app runs. */
	int exec_failed[2];
	if (pipe2(exec_failed, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(exec_failed[0]);
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		int in = open("/dev/null", O_RDONLY);
		dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		setsid();
		environ = envp;
		const char *user = get("user", 0);
		if (user && become_user(user)) {
			dprintf(2, "husk: exec: user %s: %s\n", user, strerror(errno));
			exec_failed_exit(exec_failed[1], 126);
		}
		execvp(argv[0], argv);
		int e = errno;
		dprintf(2, "husk: exec: %s: %s\n", argv[0], strerror(e));
		exec_failed_exit(exec_failed[1], e == ENOENT ? 127 : 126);
	}
	close(exec_failed[1]);
	note_started(exec_failed[0]);
	int status = wait_command(pid, get("forward-signals", 0) != NULL);
	kill(-1, SIGKILL);
	fsync(out);
	fsync(err);
	if (WIFSIGNALED(status))
		write_status("signal %d\n", WTERMSIG(status));
	else
		write_status("exit %d\n", WEXITSTATUS(status));
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * husk listens before the VM starts; the only wait is for the guest's
 * vsock transport, whose driver may still be binding to its device.
 */
static int connect_host(unsigned int port)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};

	for (long waited = 0;; waited += 50) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (waited >= SESSION_WAIT_MS)
			die("cannot reach husk for the app's session (vsock port %u): %s", port,
			    strerror(e));
		sleep_ms(50);
	}
}

/* The session's process: the app's user, then husk-agent's loop until husk hangs up. */
_Noreturn static void serve_session(int fd, const sigset_t *chld)
{
	const char *user = get("user", 0);

	sigprocmask(SIG_UNBLOCK, chld, NULL);
	signal(SIGPIPE, SIG_IGN); /* a write to a connection husk closed fails instead */
	if (user && become_user(user)) {
		write_status("error user %s: %s\n", user, strerror(errno));
		_exit(0);
	}
	agent_serve_app(fd);
	_exit(0);
}

static void run_session(const char *port_text)
{
	char *end;
	unsigned long port = strtoul(port_text, &end, 10);

	if (*end || port == 0 || port > UINT32_MAX)
		die("bad session record \"%s\"", port_text);
	int fd = connect_host((unsigned int)port);
	enter_root();
	sigset_t chld;
	block_sigchld(&chld);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0)
		serve_session(fd, &chld);
	close(fd);
	/* The app's signals come through the session: none by the control share. */
	int status = wait_command(pid, false);
	kill(-1, SIGKILL);
	if (WIFSIGNALED(status))
		write_status("error the app's session ended by signal %d\n", WTERMSIG(status));
}

int main(void)
{
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sys", "/sys", "sysfs", 0, NULL);
	mount("dev", "/dev", "devtmpfs", 0, NULL);
	int console = open("/dev/console", O_RDWR);
	if (console >= 0) {
		dup2(console, 1);
		dup2(console, 2);
	}
	load_modules();
	mount_or_die("husk-ctl", CTL, "virtiofs", 0, NULL);
	ctl_fd = open(CTL, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctl_fd < 0)
		die("control share: %s", strerror(errno));
	read_exec();
	mount_root();
	mount_basics(NEWROOT);
	const char *session = get("session", 0);
	/* The terminals the session opens (-t), and what `tty` names them by. */
	if (session)
		mount_or_die("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		             "newinstance,ptmxmode=0666,mode=0620");
	mount_shares();
	setup_network();
	set_sysctls();
	if (session)
		run_session(session);
	else
		run_command();
	power_off();
	return 0;
}
