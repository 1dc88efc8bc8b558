// SPDX-License-Identifier: MIT
/*
 * The allow lists, one per kind of thread, as Firecracker keeps them, and
 * built with libseccomp. Each list is what the code that runs on that
 * thread calls once the VM is set up (the set-up itself runs before, on
 * the main thread), found by reading those paths and by running the
 * whole-VM tests under the lists. Filters stack: a thread keeps the
 * process-wide deny list (vmm/seccomp.c) under its own list, and a thread
 * it starts inherits both.
 *
 * Arguments are checked where a call is only safe with some of them:
 * ioctl (the KVM, vhost, TAP and terminal requests husk makes), clone
 * (threads only, never a new namespace), kill and tgkill (this process
 * only), socket (Unix and IP only), mmap and mprotect (never executable),
 * openat (read-only where that is all a thread needs).
 */
#include "vmm/seccomp_threads.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vhost.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "devices/fs/landlock.h"
#include "vmm/console.h"
#include "vmm/error.h"

#define MAX_SYSCALL_NAMES 512 /* x86_64 and aarch64 numbers are below this */

static const char *const kind_names[SECCOMP_THREAD_KINDS] = {
    [SECCOMP_THREAD_VCPU] = "vCPU",
    [SECCOMP_THREAD_IO] = "I/O",
    [SECCOMP_THREAD_SHARE] = "virtio-fs share",
    [SECCOMP_THREAD_POOL] = "worker pool",
    [SECCOMP_THREAD_PLUG] = "hot-plug",
    [SECCOMP_THREAD_GLIB] = "glib worker",
    [SECCOMP_THREAD_MAIN] = "main",
    [SECCOMP_THREAD_APP_SERVER] = "image run's serving",
    [SECCOMP_THREAD_VNC] = "VNC",
    [SECCOMP_THREAD_WINDOW] = "window",
};

static struct seccomp_policy armed_policy;
static atomic_bool armed;
static _Thread_local int entered_kind = -1;
/* Named ahead, on the main thread: the SIGSYS handler may not allocate. */
static char *syscall_names[MAX_SYSCALL_NAMES];

const char *seccomp_thread_name(enum seccomp_thread kind)
{
	return kind < SECCOMP_THREAD_KINDS ? kind_names[kind]
	                                   : "unnamed (under its starter's list)";
}

void seccomp_policy_from_env(struct seccomp_policy *p)
{
	p->log_only = g_strcmp0(g_getenv("HUSK_SECCOMP"), "log") == 0;
}

/* --- a refused call: say which, and end ---------------------------------- */

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_uint(char *buf, size_t at, size_t cap, unsigned int n)
{
	char digits[12];
	size_t len = 0;

	do
		digits[len++] = (char)('0' + n % 10);
	while ((n /= 10) && len < sizeof(digits));
	while (len && at < cap)
		buf[at++] = digits[--len];
	return at;
}

/* Async-signal-safe: fixed buffers, write(2) and _exit(2), both on every list. */
static void on_sigsys(int signo, siginfo_t *info, void *uctx)
{
	char line[256];
	size_t n = 0;
	unsigned int nr = (unsigned int)info->si_syscall;
	const char *name = nr < MAX_SYSCALL_NAMES ? syscall_names[nr] : NULL;

	n = put_str(line, n, sizeof(line), "husk: seccomp: the ");
	n = put_str(line, n, sizeof(line),
	            seccomp_thread_name((enum seccomp_thread)(
	                entered_kind < 0 ? SECCOMP_THREAD_KINDS : entered_kind)));
	n = put_str(line, n, sizeof(line), " thread made system call ");
	n = put_str(line, n, sizeof(line), name ? name : "?");
	n = put_str(line, n, sizeof(line), " (");
	n = put_uint(line, n, sizeof(line), nr);
	n = put_str(
	    line, n, sizeof(line),
	    "), which its allow list refuses; stopping (HUSK_SECCOMP=log lets it through)\n");
	console_restore_terminal();
	if (write(STDERR_FILENO, line, n) < 0)
		_exit(HUSK_EXIT_RUNTIME);
	_exit(HUSK_EXIT_RUNTIME);
}

static void name_syscalls(void)
{
	for (int nr = 0; nr < MAX_SYSCALL_NAMES; nr++)
		if (!syscall_names[nr])
			syscall_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
}

void seccomp_arm(const struct seccomp_policy *p)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};

	name_syscalls();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);
	armed_policy = *p;
	atomic_store(&armed, true);
}

void seccomp_disarm(void)
{
	atomic_store(&armed, false);
}

bool seccomp_armed(void)
{
	return atomic_load(&armed);
}

/* --- capabilities ---------------------------------------------------------- */

#define CAP_BIT(cap) (UINT64_C(1) << (cap))

static uint64_t kept_caps(enum seccomp_thread kind, const struct seccomp_policy *p)
{
	/* As seccomp_lock_down() left it: tearing down (husk exec's clean-up) takes them. */
	if (kind == SECCOMP_THREAD_MAIN)
		return SECCOMP_FILE_CAPS;
	if (!p->keep_fs_caps)
		return 0;
	/* trusted.* extended attributes: CAP_SYS_ADMIN, whose other uses the deny list shuts. */
	/* (husk-plug starts the share threads: they take theirs from it.) */
	if (kind == SECCOMP_THREAD_SHARE || kind == SECCOMP_THREAD_PLUG)
		return SECCOMP_FILE_CAPS | CAP_BIT(CAP_SYS_ADMIN);
	if (kind == SECCOMP_THREAD_IO && (p->io & (SECCOMP_IO_READ_FILES | SECCOMP_IO_WRITE_FILES)))
		return SECCOMP_FILE_CAPS;
	return 0;
}

bool seccomp_keep_caps(uint64_t keep, GError **err)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {0};

	if (syscall(SYS_capget, &hdr, data) < 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "capget: %s", g_strerror(errno));
	uint64_t permitted = data[0].permitted | (uint64_t)data[1].permitted << 32;
	if (!permitted)
		return true;
	keep &= permitted;
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which goes next. */
	for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (!(keep & CAP_BIT(cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			break; /* no CAP_SETPCAP: the capset below still empties the sets */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(data, 0, sizeof(data));
	data[0].permitted = data[0].effective = (uint32_t)keep;
	data[1].permitted = data[1].effective = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "capset: %s", g_strerror(errno));
	return true;
}

/* --- Landlock for the I/O thread ------------------------------------------- */

static int open_dir_path(const char *path)
{
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/*
 * No opens at all, or only reading beneath /etc and the folder that
 * /etc/resolv.conf resolves to (a file rule would miss a resolv.conf
 * replaced by a rename, which libslirp reads again), and the driver's folder.
 */
static void confine_io_files(const struct seccomp_policy *p)
{
	int fds[3] = {-1, -1, -1};
	bool writable[3] = {false, false, false};
	unsigned int n = 0;

	if (p->io_dir) {
		fds[n] = open_dir_path(p->io_dir);
		writable[n] = p->io_dir_writable;
		if (fds[n] < 0) {
			g_debug("io: %s: %s: no Landlock", p->io_dir, g_strerror(errno));
			return;
		}
		n++;
	}
	if (p->io_reads_resolv_conf) {
		char *real = realpath("/etc/resolv.conf", NULL);
		char *dir = real ? g_path_get_dirname(real) : NULL;
		fds[n] = open_dir_path("/etc");
		n += fds[n] >= 0;
		fds[n] = dir ? open_dir_path(dir) : -1;
		n += fds[n] >= 0;
		g_free(dir);
		free(real);
	}
	if (!landlock_confine_dirs(fds, writable, n))
		g_debug("io: Landlock cannot confine this thread (%s): its seccomp list only",
		        g_strerror(errno));
	for (unsigned int i = 0; i < n; i++)
		close(fds[i]);
}

/* --- the lists -------------------------------------------------------------- */

struct list {
	scmp_filter_ctx ctx;
	int rc; /* the first libseccomp error */
};

static void allow(struct list *l, int nr)
{
	if (l->rc == 0 && nr >= 0)
		l->rc = seccomp_rule_add(l->ctx, SCMP_ACT_ALLOW, nr, 0);
}

static void allow_if(struct list *l, int nr, struct scmp_arg_cmp cmp)
{
	if (l->rc == 0)
		l->rc = seccomp_rule_add_array(l->ctx, SCMP_ACT_ALLOW, nr, 1, &cmp);
}

static void allow_all(struct list *l, const int *nrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		allow(l, nrs[i]);
}

/* ioctl(fd, request, ...): the request's 32 bits, whatever the upper half holds. */
static void allow_ioctls(struct list *l, const unsigned long *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		allow_if(l, SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, reqs[i]));
}

/* What every husk thread does: memory, locks, time, its own signals, stderr. */
static void allow_common(struct list *l)
{
	static const int calls[] = {
	    SCMP_SYS(read),
	    SCMP_SYS(write),
	    SCMP_SYS(readv),
	    SCMP_SYS(writev),
	    SCMP_SYS(close),
	    SCMP_SYS(futex),
	    SCMP_SYS(set_robust_list),
	    SCMP_SYS(rseq),
	    SCMP_SYS(restart_syscall),
	    SCMP_SYS(rt_sigreturn),
	    SCMP_SYS(rt_sigprocmask),
	    SCMP_SYS(sigaltstack),
	    SCMP_SYS(rt_sigaction), /* glib and the C library set handlers as they need them */
	    SCMP_SYS(exit),
	    SCMP_SYS(exit_group),
	    SCMP_SYS(getpid),
	    SCMP_SYS(gettid),
	    SCMP_SYS(getuid),
	    SCMP_SYS(geteuid),
	    SCMP_SYS(getgid),
	    SCMP_SYS(getegid),
	    SCMP_SYS(clock_gettime),
	    SCMP_SYS(clock_getres),
	    SCMP_SYS(clock_nanosleep),
	    SCMP_SYS(nanosleep),
	    SCMP_SYS(gettimeofday),
	    SCMP_SYS(sched_yield),
	    SCMP_SYS(sched_getaffinity),
	    SCMP_SYS(getrandom),
	    SCMP_SYS(munmap),
	    SCMP_SYS(madvise),
	    SCMP_SYS(mremap),
	    SCMP_SYS(brk),
	    SCMP_SYS(lseek),
	    SCMP_SYS(fcntl),
	    SCMP_SYS(fstat),
	    SCMP_SYS(capget),
	    SCMP_SYS(capset),  /* it can only take capabilities away */
	    SCMP_SYS(seccomp), /* it can only add filters: a pool thread adds its own */
	};
	static const unsigned long terminal[] = {TCGETS, TCSETS, TCSETSW, TCSETSF};
	static const int prctls[] = {PR_SET_NAME,     PR_GET_NAME,     PR_SET_NO_NEW_PRIVS,
	                             PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_CAP_AMBIENT};
	pid_t self = getpid();

	allow_all(l, calls, G_N_ELEMENTS(calls));
	for (size_t i = 0; i < G_N_ELEMENTS(prctls); i++)
		allow_if(l, SCMP_SYS(prctl), SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctls[i]));
	/* Never new executable memory. */
	allow_if(l, SCMP_SYS(mmap), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	allow_if(l, SCMP_SYS(mprotect), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* fstat, as the C library makes it; a path is for the lists that need one. */
	allow_if(l, SCMP_SYS(newfstatat),
	         SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
	/* Signals to this process only: pthread_kill, raise, abort. */
	allow_if(l, SCMP_SYS(tgkill), SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
	allow_if(l, SCMP_SYS(kill), SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
	/* Restoring the terminal on the way out (console_restore_terminal). */
	allow_ioctls(l, terminal, G_N_ELEMENTS(terminal));
	/* clone3 hides its flags from a filter: the C library falls back to clone. */
	if (l->rc == 0)
		l->rc = seccomp_rule_add(l->ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
}

/* A thread of this process (a pool's), never a process or a namespace. */
static void allow_threads(struct list *l)
{
	/*
	 * glib gives a pool's new thread its starter's scheduling, each
	 * naming itself by thread id, which no list made beforehand knows.
	 */
	allow(l, SCMP_SYS(sched_getattr));
	allow(l, SCMP_SYS(sched_setattr));
	const scmp_datum_t mask = CLONE_THREAD | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
	                          CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;

	allow_if(l, SCMP_SYS(clone), SCMP_A0(SCMP_CMP_MASKED_EQ, mask, CLONE_THREAD));
}

/* The requests a device makes while the guest runs: interrupts, kicks, vhost, TAP offloads. */
static void allow_device_ioctls(struct list *l)
{
	static const unsigned long reqs[] = {
	    KVM_IRQ_LINE,
	    KVM_IOEVENTFD,
	    KVM_IRQFD,
	    KVM_SET_GSI_ROUTING,
	    KVM_SIGNAL_MSI,
	    VHOST_GET_FEATURES,
	    VHOST_SET_FEATURES,
	    VHOST_SET_OWNER,
	    VHOST_SET_MEM_TABLE,
	    VHOST_SET_VRING_NUM,
	    VHOST_SET_VRING_ADDR,
	    VHOST_SET_VRING_BASE,
	    VHOST_GET_VRING_BASE,
	    VHOST_SET_VRING_KICK,
	    VHOST_SET_VRING_CALL,
	    VHOST_SET_VRING_ERR,
	    VHOST_NET_SET_BACKEND,
	    TUNSETOFFLOAD,
	    TUNSETVNETHDRSZ,
	    TUNSETSNDBUF,
	    FIONREAD,
	    FIONBIO,
	};

	allow_ioctls(l, reqs, G_N_ELEMENTS(reqs));
	allow(l, SCMP_SYS(eventfd2));
}

/* Reads and writes on files already open: disk images, a share's open files. */
static void allow_file_io(struct list *l)
{
	static const int calls[] = {
	    SCMP_SYS(pread64),   SCMP_SYS(pwrite64),  SCMP_SYS(preadv),  SCMP_SYS(pwritev),
	    SCMP_SYS(preadv2),   SCMP_SYS(pwritev2),  SCMP_SYS(fsync),   SCMP_SYS(fdatasync),
	    SCMP_SYS(fallocate), SCMP_SYS(ftruncate), SCMP_SYS(fstatfs), SCMP_SYS(sync_file_range),
	};

	allow_all(l, calls, G_N_ELEMENTS(calls));
}

static void allow_waits(struct list *l)
{
	allow(l, SCMP_SYS(poll));
	allow(l, SCMP_SYS(ppoll));
}

/* Sending and receiving on sockets already open (a TAP's netlink socket, virtio-net's). */
static void allow_socket_io(struct list *l)
{
	static const int calls[] = {
	    SCMP_SYS(sendto),  SCMP_SYS(recvfrom), SCMP_SYS(sendmsg),
	    SCMP_SYS(recvmsg), SCMP_SYS(sendmmsg), SCMP_SYS(recvmmsg),
	};

	allow_all(l, calls, G_N_ELEMENTS(calls));
}

/* New sockets of these domains, and connections from and to them. */
static void allow_sockets_of(struct list *l, const int *domains, size_t n)
{
	static const int calls[] = {
	    SCMP_SYS(connect),     SCMP_SYS(bind),       SCMP_SYS(listen),
	    SCMP_SYS(accept),      SCMP_SYS(accept4),    SCMP_SYS(getsockname),
	    SCMP_SYS(getpeername), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
	    SCMP_SYS(shutdown),
	};

	allow_all(l, calls, G_N_ELEMENTS(calls));
	for (size_t i = 0; i < n; i++)
		allow_if(l, SCMP_SYS(socket), SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)domains[i]));
}

static void allow_sockets(struct list *l)
{
	static const int domains[] = {AF_UNIX, AF_INET, AF_INET6};

	allow_sockets_of(l, domains, G_N_ELEMENTS(domains));
}

static void allow_io_thread(struct list *l, unsigned int io)
{
	allow_waits(l);
	allow_device_ioctls(l);
	allow_file_io(l); /* virtio-blk requests the page cache answers at once */
	allow_socket_io(l);
	allow_threads(l);
	if (io & SECCOMP_IO_SOCKETS)
		allow_sockets(l);
	if (io & SECCOMP_IO_TERMINAL) {
		static const unsigned long winsize[] = {TIOCGWINSZ};
		allow_ioctls(l, winsize, G_N_ELEMENTS(winsize));
	}
	if (io & SECCOMP_IO_READ_FILES) {
		/* Read-only, never creating or truncating: O_RDONLY is 0. */
		allow_if(l, SCMP_SYS(openat),
		         SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND, 0));
		allow(l, SCMP_SYS(newfstatat));
	}
	if (io & SECCOMP_IO_WRITE_FILES) {
		allow(l, SCMP_SYS(openat));
		allow(l, SCMP_SYS(rename));
		allow(l, SCMP_SYS(renameat));
		allow(l, SCMP_SYS(renameat2));
	}
}

/* The FUSE server: everything it does to the files under its share. */
static void allow_share_thread(struct list *l)
{
	static const int calls[] = {
	    SCMP_SYS(openat),       SCMP_SYS(openat2),
	    SCMP_SYS(newfstatat),   SCMP_SYS(statx),
	    SCMP_SYS(statfs),       SCMP_SYS(getdents64),
	    SCMP_SYS(readlinkat),   SCMP_SYS(mkdirat),
	    SCMP_SYS(mknodat),      SCMP_SYS(unlinkat),
	    SCMP_SYS(renameat),     SCMP_SYS(renameat2),
	    SCMP_SYS(linkat),       SCMP_SYS(symlinkat),
	    SCMP_SYS(fchmodat),     SCMP_SYS(fchmod),
	    SCMP_SYS(fchown),       SCMP_SYS(fchownat),
	    SCMP_SYS(utimensat),    SCMP_SYS(copy_file_range),
	    SCMP_SYS(faccessat),    SCMP_SYS(faccessat2),
	    SCMP_SYS(getxattr),     SCMP_SYS(lgetxattr),
	    SCMP_SYS(fgetxattr),    SCMP_SYS(setxattr),
	    SCMP_SYS(lsetxattr),    SCMP_SYS(fsetxattr),
	    SCMP_SYS(listxattr),    SCMP_SYS(llistxattr),
	    SCMP_SYS(flistxattr),   SCMP_SYS(removexattr),
	    SCMP_SYS(lremovexattr), SCMP_SYS(fremovexattr),
	    SCMP_SYS(flock),        SCMP_SYS(umask),
	    SCMP_SYS(dup),          SCMP_SYS(dup2),
	    SCMP_SYS(dup3),
	};

	allow_all(l, calls, G_N_ELEMENTS(calls));
	allow(l, SCMP_SYS(syncfs)); /* FUSE_SYNCFS */
	allow_file_io(l);
	allow_waits(l);
	allow_threads(l);
	allow(l, SCMP_SYS(eventfd2));
	/* getrlimit, as the C library makes it: reading the limit, never setting it. */
	allow_if(l, SCMP_SYS(prlimit64), SCMP_A2(SCMP_CMP_EQ, 0));
}

static void allow_vcpu_thread(struct list *l)
{
	static const unsigned long reqs[] = {KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS};

	allow_ioctls(l, reqs, G_N_ELEMENTS(reqs));
	allow_device_ioctls(l);
	allow_waits(l);
}

/*
 * husk-plug: what husk mount's shares take to open (the share's folder,
 * its file system's type, the open-file limit), a PCI slot's interrupt,
 * and, since the share's queue threads start from here under this list
 * and their own, all that the share list allows and Landlock (with which
 * a share thread confines itself: it can only take access away).
 */
static void allow_plug_thread(struct list *l)
{
	allow_share_thread(l);
	allow_device_ioctls(l);
	/* A share's open-file budget: the soft limit raised to the hard one, this process's. */
	allow_if(l, SCMP_SYS(prlimit64), SCMP_A0(SCMP_CMP_EQ, 0));
	allow(l, SCMP_SYS(landlock_create_ruleset));
	allow(l, SCMP_SYS(landlock_add_rule));
	allow(l, SCMP_SYS(landlock_restrict_self));
}

/* glib's worker: it waits, and wakes the loops that watch a signal. */
static void allow_glib_thread(struct list *l)
{
	allow_waits(l);
	allow_threads(l); /* the thread that starts it is under this list too */
	allow(l, SCMP_SYS(eventfd2));
	/* A child watch's SIGCHLD is reaped there: this process's children only. */
	allow(l, SCMP_SYS(wait4));
	allow(l, SCMP_SYS(waitid));
}

/* Where the main thread works with files, by path: the driver's own, once the VM ends. */
static void allow_path_calls(struct list *l)
{
	static const int calls[] = {
	    SCMP_SYS(open),
	    SCMP_SYS(openat),
	    SCMP_SYS(stat),
	    SCMP_SYS(lstat),
	    SCMP_SYS(newfstatat),
	    SCMP_SYS(statx),
	    SCMP_SYS(statfs),
	    SCMP_SYS(access),
	    SCMP_SYS(faccessat),
	    SCMP_SYS(faccessat2),
	    SCMP_SYS(getdents64),
	    SCMP_SYS(readlink),
	    SCMP_SYS(readlinkat),
	    SCMP_SYS(mkdir),
	    SCMP_SYS(mkdirat),
	    SCMP_SYS(rmdir),
	    SCMP_SYS(unlink),
	    SCMP_SYS(unlinkat),
	    SCMP_SYS(rename),
	    SCMP_SYS(renameat),
	    SCMP_SYS(renameat2),
	    SCMP_SYS(chmod),
	    SCMP_SYS(fchmod),
	    SCMP_SYS(fchmodat),
	    SCMP_SYS(fchown),
	    SCMP_SYS(utimensat),
	    SCMP_SYS(umask),
	    SCMP_SYS(getcwd),
	    SCMP_SYS(dup),
	    SCMP_SYS(dup2),
	    SCMP_SYS(dup3),
	    SCMP_SYS(pipe2),
	    SCMP_SYS(flock),
	    SCMP_SYS(inotify_init1),
	    SCMP_SYS(inotify_add_watch),
	    SCMP_SYS(inotify_rm_watch),
	};

	allow_all(l, calls, G_N_ELEMENTS(calls));
}

/*
 * The main thread, from the VM's start: it starts the I/O and vCPU
 * threads, waits, and tears the machine down (the requests that take
 * devices off KVM), reports, and finishes the driver's work with files
 * (husk exec's output and clean-up, an instance's exit status, a
 * screenshot) and Unix sockets. What it never does: another socket
 * family, KVM or other device requests besides the devices', a
 * namespace, executable memory.
 */
static void allow_main_thread(struct list *l)
{
	static const unsigned long reqs[] = {TIOCGWINSZ, KVM_SET_USER_MEMORY_REGION};
	static const int calls[] = {
	    SCMP_SYS(getrusage),
	    SCMP_SYS(mincore),
	    /* --timings: guest RAM touched */ SCMP_SYS(uname),
	    SCMP_SYS(sysinfo),
	    SCMP_SYS(getppid),
	    SCMP_SYS(wait4),
	    SCMP_SYS(rt_sigtimedwait),
	    SCMP_SYS(timerfd_create),
	    SCMP_SYS(timerfd_settime),
	};

	allow_waits(l);
	allow_threads(l);
	allow_device_ioctls(l);
	allow_ioctls(l, reqs, G_N_ELEMENTS(reqs));
	allow_file_io(l);
	allow_socket_io(l);
	allow_all(l, calls, G_N_ELEMENTS(calls));
	allow_path_calls(l);
	/* Unix sockets only: a control socket, the agent's. */
	static const int unix_only[] = {AF_UNIX};
	allow_sockets_of(l, unix_only, G_N_ELEMENTS(unix_only));
	allow_if(l, SCMP_SYS(prlimit64), SCMP_A2(SCMP_CMP_EQ, 0));
}

/*
 * What the serving process does once the app's VM runs in its child: the
 * glib loop, the app's pipes into its logs (created, appended to, rotated
 * by rename), the control socket it already listens on, the status and
 * "started" files, the child signalled and reaped. The socket was bound
 * before, so no socket() or bind(); no file is opened but to write or read.
 */
static void allow_app_server(struct list *l, pid_t child)
{
	static const int calls[] = {
	    SCMP_SYS(openat),   SCMP_SYS(newfstatat), SCMP_SYS(statx),      SCMP_SYS(rename),
	    SCMP_SYS(renameat), SCMP_SYS(renameat2),  SCMP_SYS(unlink),     SCMP_SYS(unlinkat),
	    SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(fchmod),     SCMP_SYS(accept),
	    SCMP_SYS(accept4),  SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(shutdown),
	    SCMP_SYS(eventfd2), SCMP_SYS(pipe2),      SCMP_SYS(dup),        SCMP_SYS(dup2),
	    SCMP_SYS(dup3),
	};

	allow_all(l, calls, G_N_ELEMENTS(calls));
	allow_waits(l);
	allow_file_io(l);
	allow_socket_io(l);
	allow_threads(l);
	/* stop and force-stop: SIGTERM and SIGINT to the app's VM, and its reaping. */
	allow_if(l, SCMP_SYS(kill), SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)child));
	allow_if(l, SCMP_SYS(wait4), SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)child));
	allow_if(l, SCMP_SYS(waitid), SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)child));
	/* glib's wait through the child's pidfd, opened before (pidfd_open is off the list). */
	allow_if(l, SCMP_SYS(waitid), SCMP_A0(SCMP_CMP_EQ, P_PIDFD));
}

/*
 * libvncserver: select on its listening socket and its clients', accepting
 * them and talking to them; events for the guest go out as eventfd writes.
 */
static void allow_vnc_thread(struct list *l)
{
	static const int calls[] = {
	    SCMP_SYS(select),     SCMP_SYS(pselect6),    SCMP_SYS(accept),
	    SCMP_SYS(accept4),    SCMP_SYS(getpeername), SCMP_SYS(getsockname),
	    SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),  SCMP_SYS(shutdown),
	};

	allow_all(l, calls, G_N_ELEMENTS(calls));
	allow_waits(l);
	allow_socket_io(l);
	/* getrlimit(RLIMIT_NOFILE), how many clients it may take: reading, never setting. */
	allow_if(l, SCMP_SYS(prlimit64), SCMP_A2(SCMP_CMP_EQ, 0));
}

/*
 * SDL on X11 or Wayland: its connection to the display server, opened
 * before the list, read and written; the window's pixels in memory shared
 * with the server (SysV for X11's MIT-SHM, a memfd for Wayland's wl_shm);
 * FIONREAD on the connection. It opens no file or socket.
 */
static void allow_window_thread(struct list *l)
{
	static const int calls[] = {
	    SCMP_SYS(shmget),      SCMP_SYS(shmat),     SCMP_SYS(shmdt),      SCMP_SYS(shmctl),
	    SCMP_SYS(ftruncate),   SCMP_SYS(fallocate), SCMP_SYS(getsockopt), SCMP_SYS(getpeername),
	    SCMP_SYS(getsockname), SCMP_SYS(shutdown),  SCMP_SYS(select),     SCMP_SYS(pselect6),
	};
	static const unsigned long ioctls[] = {FIONREAD};

	allow_all(l, calls, G_N_ELEMENTS(calls));
	allow_waits(l);
	allow_socket_io(l);
	allow_ioctls(l, ioctls, G_N_ELEMENTS(ioctls));
	allow_if(l, SCMP_SYS(memfd_create), SCMP_A1(SCMP_CMP_MASKED_EQ, MFD_HUGETLB, 0));
}

static bool build(struct list *l, enum seccomp_thread kind, const struct seccomp_policy *p)
{
	allow_common(l);
	switch (kind) {
	case SECCOMP_THREAD_VCPU:
		allow_vcpu_thread(l);
		break;
	case SECCOMP_THREAD_IO:
		allow_io_thread(l, p->io);
		break;
	case SECCOMP_THREAD_SHARE:
		allow_share_thread(l);
		break;
	case SECCOMP_THREAD_POOL:
		allow_file_io(l);
		break;
	case SECCOMP_THREAD_PLUG:
		allow_plug_thread(l);
		break;
	case SECCOMP_THREAD_GLIB:
		allow_glib_thread(l);
		break;
	case SECCOMP_THREAD_MAIN:
		allow_main_thread(l);
		break;
	case SECCOMP_THREAD_APP_SERVER:
		allow_app_server(l, (pid_t)p->app_child);
		break;
	case SECCOMP_THREAD_VNC:
		allow_vnc_thread(l);
		break;
	case SECCOMP_THREAD_WINDOW:
		allow_window_thread(l);
		break;
	case SECCOMP_THREAD_KINDS:
		return false;
	}
	return l->rc == 0;
}

/*
 * Where a refused call fails with EPERM (as under the process-wide list)
 * and the kernel logs it, rather than stopping husk: the main thread,
 * whose teardown runs through more library code than any other thread's
 * work, and glib's worker, which blocks every signal (a SIGSYS there
 * would end husk without a word) and, like any thread, may have the C
 * library's malloc read /sys/devices/system/cpu/online as it first
 * allocates, which then falls back to another way of counting CPUs.
 */
static bool refuse_softly(enum seccomp_thread kind)
{
	/* The window's thread runs the desktop's libraries, whatever they are this time. */
	return kind == SECCOMP_THREAD_MAIN || kind == SECCOMP_THREAD_GLIB ||
	       kind == SECCOMP_THREAD_WINDOW;
}

bool seccomp_thread_apply(enum seccomp_thread kind, const struct seccomp_policy *p, GError **err)
{
	uint32_t refuse = p->log_only           ? SCMP_ACT_LOG
	                  : refuse_softly(kind) ? SCMP_ACT_ERRNO(EPERM)
	                                        : SCMP_ACT_TRAP;
	struct list l = {.ctx = seccomp_init(refuse)};
	bool ok;

	if (!l.ctx)
		return husk_fail(err, HUSK_EXIT_HOST, "seccomp_init failed");
	if (refuse_softly(kind))
		seccomp_attr_set(l.ctx, SCMP_FLTATR_CTL_LOG, 1);
	/* Another ABI's numbers mean other calls: refused the same loud way. */
	seccomp_attr_set(l.ctx, SCMP_FLTATR_ACT_BADARCH, refuse);
	if (!seccomp_keep_caps(kept_caps(kind, p), err)) {
		seccomp_release(l.ctx);
		return false;
	}
	if (kind == SECCOMP_THREAD_IO && p->io_landlock)
		confine_io_files(p);
	/*
	 * The thread's first allocation picks its malloc arena, which may
	 * count CPUs through /sys: before the list, not under it.
	 */
	g_free(g_malloc(64));
	/* A process's list goes on glib's threads too, as they are now. */
	if (kind == SECCOMP_THREAD_APP_SERVER)
		seccomp_attr_set(l.ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	ok = build(&l, kind, p);
	if (ok)
		l.rc = seccomp_load(l.ctx);
	seccomp_release(l.ctx);
	if (l.rc != 0)
		return husk_fail(err, HUSK_EXIT_HOST,
		                 "cannot install the %s thread's system-call filter: %s "
		                 "(--no-seccomp runs without)",
		                 seccomp_thread_name(kind), g_strerror(-l.rc));
	entered_kind = (int)kind;
	return true;
}

bool seccomp_thread_enter(enum seccomp_thread kind, GError **err)
{
	if (!atomic_load(&armed) || entered_kind >= 0)
		return true;
	return seccomp_thread_apply(kind, &armed_policy, err);
}

bool seccomp_thread_drop_caps(enum seccomp_thread kind, GError **err)
{
	/*
	 * A user switch to come changes every thread at once, which needs
	 * CAP_SETUID in each: it takes all their capabilities itself.
	 */
	if (!atomic_load(&armed) || armed_policy.switch_user)
		return true;
	return seccomp_keep_caps(kept_caps(kind, &armed_policy), err);
}

struct signal_sources {
	const int *signals;
	size_t n;
	GSource **sources;
};

static void make_signal_sources(const struct signal_sources *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->sources[i] = g_unix_signal_source_new(s->signals[i]);
}

static void *make_signal_sources_confined(void *data)
{
	seccomp_thread_enter_or_exit(SECCOMP_THREAD_GLIB);
	make_signal_sources(data);
	return NULL;
}

void seccomp_new_signal_sources(const int *signals, size_t n, GSource **sources)
{
	struct signal_sources s = {signals, n, sources};
	pthread_t t;

	if (atomic_load(&armed) && pthread_create(&t, NULL, make_signal_sources_confined, &s) == 0)
		pthread_join(t, NULL);
	else
		make_signal_sources(&s);
}

void seccomp_thread_enter_or_exit(enum seccomp_thread kind)
{
	GError *err = NULL;

	if (seccomp_thread_enter(kind, &err))
		return;
	console_restore_terminal();
	g_printerr("husk: %s\n", err->message);
	_exit(err->code);
}

bool seccomp_app_server_lock_down(int child, GError **err)
{
	struct seccomp_policy p = {.app_child = child};

	/* 0 or less would let it signal a process group, or every process. */
	if (child <= 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "the serving process has no app to watch");

	seccomp_policy_from_env(&p);
	seccomp_arm(&p);
	return seccomp_thread_apply(SECCOMP_THREAD_APP_SERVER, &p, err);
}
