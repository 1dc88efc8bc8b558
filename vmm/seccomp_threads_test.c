// SPDX-License-Identifier: MIT
/*
 * Each check runs in a subprocess, as the thread of one kind: the list is
 * installed, an allowed call must work, and a refused one must end the
 * process with status 1 and the line that names the thread and the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <linux/capability.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/seccomp_threads.h"

struct check {
	const char *name;
	enum seccomp_thread kind;
	unsigned int io;
	bool log_only;
	void (*allowed)(void);
	void (*refused)(void);    /* must not return */
	const char *refused_line; /* a glob for stderr */
};

static void enter(const struct check *c)
{
	struct seccomp_policy p = {.io = c->io, .log_only = c->log_only};
	GError *err = NULL;

	seccomp_arm(&p);
	g_assert_true(seccomp_thread_enter(c->kind, &err));
	g_assert_no_error(err);
	/* A second call on the same thread changes nothing. */
	g_assert_true(seccomp_thread_enter(c->kind, &err));
}

/* --- what each kind may do ------------------------------------------------- */

static void *thread_main(void *arg)
{
	*(int *)arg = 42;
	return NULL;
}

static void common_allowed(void)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	void *mem = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	g_assert_true(mem != MAP_FAILED);
	memset(mem, 1, 65536);
	g_assert_cmpint(munmap(mem, 65536), ==, 0);
	g_free(g_malloc(1 << 20));
	pthread_mutex_lock(&lock);
	pthread_mutex_unlock(&lock);
	g_assert_cmpint(write(STDOUT_FILENO, "", 0), ==, 0);
	g_assert_cmpint(kill(getpid(), 0), ==, 0);
}

static void vcpu_allowed(void)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	common_allowed();
	/* The request goes through to the kernel, which finds no vCPU behind the fd. */
	g_assert_cmpint(ioctl(-1, KVM_RUN, 0), ==, -1);
	g_assert_cmpint(errno, ==, EBADF);
	g_assert_cmpint(eventfd_write(efd, 1), ==, 0);
	close(efd);
}

static void io_allowed(void)
{
	pthread_t t;
	int seen = 0;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	common_allowed();
	g_assert_cmpint(s, >=, 0);
	close(s);
	g_assert_cmpint(pthread_create(&t, NULL, thread_main, &seen), ==, 0);
	g_assert_cmpint(pthread_join(t, NULL), ==, 0);
	g_assert_cmpint(seen, ==, 42);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	close(fd);
}

/* husk run --image -t: the terminal's size, read again on SIGWINCH. */
static void io_terminal_allowed(void)
{
	struct winsize w;

	io_allowed();
	/* Through the filter to the kernel, which finds no terminal behind the fd. */
	g_assert_cmpint(ioctl(-1, TIOCGWINSZ, &w), ==, -1);
	g_assert_cmpint(errno, ==, EBADF);
}

static char *share_dir; /* made before the list goes on: g_dir_make_tmp calls mkdir */

static void share_allowed(void)
{
	int d = open(share_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	common_allowed();
	g_assert_cmpint(d, >=, 0);
	g_assert_cmpint(mkdirat(d, "sub", 0755), ==, 0);
	int fd = openat(d, "file", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pwrite(fd, "x", 1, 0), ==, 1);
	g_assert_cmpint(unlinkat(d, "file", 0), ==, 0);
	g_assert_cmpint(unlinkat(d, "sub", AT_REMOVEDIR), ==, 0);
	close(fd);
	close(d);
}

static int pool_fd = -1;

/* husk-plug: what a share does (its threads start from there), and a slot's interrupt. */
static void plug_allowed(void)
{
	struct rlimit rl;

	share_allowed();
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &rl), ==, 0);
	rl.rlim_cur = rl.rlim_max;
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &rl), ==, 0);
	g_assert_cmpint(ioctl(-1, KVM_IRQ_LINE, 0), ==, -1);
	g_assert_cmpint(errno, ==, EBADF);
}

static void *thread_main(void *arg);

/* glib's worker, and the thread that starts it. */
static void glib_allowed(void)
{
	pthread_t t;
	int seen = 0;
	int efd = eventfd(0, EFD_CLOEXEC);

	common_allowed();
	g_assert_cmpint(efd, >=, 0);
	g_assert_cmpint(eventfd_write(efd, 1), ==, 0);
	close(efd);
	g_assert_cmpint(pthread_create(&t, NULL, thread_main, &seen), ==, 0);
	g_assert_cmpint(pthread_join(t, NULL), ==, 0);
	g_assert_cmpint(seen, ==, 42);
}

static void pool_allowed(void)
{
	char byte = 0;

	common_allowed();
	g_assert_cmpint(pwrite(pool_fd, "y", 1, 0), ==, 1);
	g_assert_cmpint(fdatasync(pool_fd), ==, 0);
	g_assert_cmpint(pread(pool_fd, &byte, 1, 0), ==, 1);
	g_assert_cmpint(byte, ==, 'y');
}

/* --- what each must not ------------------------------------------------------ */

static void open_file(void)
{
	open("/etc/hostname", O_RDONLY | O_CLOEXEC);
}

static void open_for_writing(void)
{
	open("/dev/null", O_WRONLY | O_CLOEXEC);
}

static void new_socket(void)
{
	socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static void netlink_socket(void)
{
	socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
}

static void signal_init(void)
{
	kill(1, 0);
}

static void new_namespace_thread(void)
{
	/* Refused on the flags, before the kernel would look at the rest. */
	syscall(SYS_clone, CLONE_THREAD | CLONE_VM | CLONE_SIGHAND | CLONE_NEWNET, NULL, NULL, NULL,
	        0);
}

static void executable_memory(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void create_vm(void)
{
	ioctl(-1, KVM_CREATE_VM, 0);
}

static void window_size(void)
{
	struct winsize w;

	ioctl(-1, TIOCGWINSZ, &w);
}

static void inet_socket(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)s;
}

static const struct check checks[] = {
    {"vcpu/open", SECCOMP_THREAD_VCPU, 0, false, vcpu_allowed, open_file,
     "*the vCPU thread made system call openat (*"},
    {"vcpu/create-vm", SECCOMP_THREAD_VCPU, 0, false, vcpu_allowed, create_vm,
     "*the vCPU thread made system call ioctl (*"},
    {"vcpu/socket", SECCOMP_THREAD_VCPU, 0, false, vcpu_allowed, new_socket,
     "*the vCPU thread made system call socket (*"},
    {"io/netlink", SECCOMP_THREAD_IO, SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES, false, io_allowed,
     netlink_socket, "*the I/O thread made system call socket (*"},
    {"io/write-file", SECCOMP_THREAD_IO, SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES, false,
     io_allowed, open_for_writing, "*the I/O thread made system call openat (*"},
    {"io/namespace", SECCOMP_THREAD_IO, SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES, false,
     io_allowed, new_namespace_thread, "*the I/O thread made system call clone (*"},
    {"io/kill", SECCOMP_THREAD_IO, SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES, false, io_allowed,
     signal_init, "*the I/O thread made system call kill (*"},
    {"io/winsize", SECCOMP_THREAD_IO, SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES, false, io_allowed,
     window_size, "*the I/O thread made system call ioctl (*"},
    {"io/terminal", SECCOMP_THREAD_IO,
     SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES | SECCOMP_IO_TERMINAL, false, io_terminal_allowed,
     netlink_socket, "*the I/O thread made system call socket (*"},
    {"share/socket", SECCOMP_THREAD_SHARE, 0, false, share_allowed, new_socket,
     "*the virtio-fs share thread made system call socket (*"},
    {"share/exec-memory", SECCOMP_THREAD_SHARE, 0, false, share_allowed, executable_memory,
     "*the virtio-fs share thread made system call mmap (*"},
    {"pool/open", SECCOMP_THREAD_POOL, 0, false, pool_allowed, open_file,
     "*the worker pool thread made system call openat (*"},
    {"pool/clone", SECCOMP_THREAD_POOL, 0, false, pool_allowed, new_namespace_thread,
     "*the worker pool thread made system call clone (*"},
    {"plug/socket", SECCOMP_THREAD_PLUG, 0, false, plug_allowed, inet_socket,
     "*the hot-plug thread made system call socket (*"},
    {"plug/create-vm", SECCOMP_THREAD_PLUG, 0, false, plug_allowed, create_vm,
     "*the hot-plug thread made system call ioctl (*"},
    {"plug/kill", SECCOMP_THREAD_PLUG, 0, false, plug_allowed, signal_init,
     "*the hot-plug thread made system call kill (*"},
};

/* The allowed calls work and the refused one ends the process, loudly. */
static void test_check(gconstpointer data)
{
	const struct check *c = data;

	if (g_test_subprocess()) {
		enter(c);
		c->allowed();
		c->refused();
		g_printerr("the refused call returned\n");
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_failed();
	g_test_trap_assert_stderr(c->refused_line);
	g_test_trap_assert_stderr_unmatched("*the refused call returned*");
}

static void pool_job(gpointer data, gpointer user)
{
	GError *err = NULL;

	g_assert_true(seccomp_thread_enter(SECCOMP_THREAD_POOL, &err));
	pool_allowed();
	g_atomic_int_inc((gint *)user);
}

/*
 * What virtio-blk and virtio-fs do: the I/O or share thread hands work to
 * a glib pool, whose threads start under their starter's list (glib gives
 * them its scheduling) and then take the pool's.
 */
static void test_pool_from(gconstpointer data)
{
	if (g_test_subprocess()) {
		struct check c = {.kind = GPOINTER_TO_INT(data)};
		gint done = 0;

		enter(&c);
		GThreadPool *pool = g_thread_pool_new(pool_job, &done, 4, FALSE, NULL);
		for (int i = 0; i < 8; i++)
			g_thread_pool_push(pool, GINT_TO_POINTER(i + 1), NULL);
		g_thread_pool_free(pool, FALSE, TRUE);
		g_assert_cmpint(done, ==, 8);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

/* Without a list (none armed), the thread is left as it was. */
static void test_not_armed(void)
{
	if (g_test_subprocess()) {
		GError *err = NULL;

		g_assert_true(seccomp_thread_enter(SECCOMP_THREAD_VCPU, &err));
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		g_assert_cmpint(fd, >=, 0);
		close(fd);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

/* HUSK_SECCOMP=log: a call off the list goes through (the kernel logs it). */
static void test_log_only(void)
{
	if (g_test_subprocess()) {
		struct check c = {.kind = SECCOMP_THREAD_VCPU, .log_only = true};

		g_setenv("HUSK_SECCOMP", "log", TRUE);
		struct seccomp_policy p = {0};
		seccomp_policy_from_env(&p);
		g_assert_true(p.log_only);
		enter(&c);
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		g_assert_cmpint(fd, >=, 0);
		close(fd);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

/* As root, a vCPU thread keeps no capability; a share thread only the file ones. */
static void test_capabilities(gconstpointer data)
{
	enum seccomp_thread kind = GPOINTER_TO_INT(data);

	if (geteuid() != 0) {
		g_test_skip("needs root: there are no capabilities to drop");
		return;
	}
	if (g_test_subprocess()) {
		struct seccomp_policy p = {.keep_fs_caps = true};
		struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
		struct __user_cap_data_struct caps[2] = {0};
		GError *err = NULL;

		seccomp_arm(&p);
		g_assert_true(seccomp_thread_enter(kind, &err));
		g_assert_cmpint(syscall(SYS_capget, &hdr, caps), ==, 0);
		if (kind == SECCOMP_THREAD_VCPU) {
			g_assert_cmphex(caps[0].permitted | caps[1].permitted, ==, 0);
		} else {
			g_assert_true(caps[0].effective & CAP_TO_MASK(CAP_CHOWN));
			g_assert_false(caps[0].permitted & CAP_TO_MASK(CAP_NET_ADMIN));
			g_assert_false(caps[0].permitted & CAP_TO_MASK(CAP_SYS_PTRACE));
		}
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

/* --- the image run's serving process ------------------------------------------- */

static void on_app_exit(GPid pid, gint status, gpointer loop)
{
	g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	g_main_loop_quit(loop);
}

/* Refused on a thread that was already running when the list went on (its go: a byte). */
static gpointer socket_on_thread(gpointer go_fd)
{
	char byte;

	g_assert_cmpint(read(GPOINTER_TO_INT(go_fd), &byte, 1), ==, 1);
	new_socket();
	return NULL;
}

/*
 * As run_detached.c's serving process: a child (the app's VM) watched by
 * glib, the list put on, then what serving does (the status file written
 * and renamed into place, the child stopped and reaped), then a call off
 * the list, which ends the process with the line naming it.
 */
static void test_app_server(gconstpointer data)
{
	if (g_test_subprocess()) {
		GMainLoop *loop = g_main_loop_new(NULL, FALSE);
		GError *err = NULL;
		pid_t child = fork();

		if (child == 0) {
			pause();
			_exit(0);
		}
		g_child_watch_add(child, on_app_exit, loop);
		int go[2];
		g_assert_cmpint(pipe(go), ==, 0);
		GThread *early = g_thread_new("early", socket_on_thread, GINT_TO_POINTER(go[0]));
		g_assert_true(seccomp_app_server_lock_down(child, &err));
		g_assert_no_error(err);
		char *status = g_build_filename(share_dir, "exit-status", NULL);
		g_assert_true(g_file_set_contents(status, "0\n", -1, NULL));
		g_assert_cmpint(unlink(status), ==, 0);
		g_free(status);
		g_assert_cmpint(kill(child, SIGTERM), ==, 0);
		g_main_loop_run(loop);
		if (data == socket_on_thread) {
			g_assert_cmpint(write(go[1], "g", 1), ==, 1);
			g_thread_join(early);
		} else {
			((void (*)(void))data)();
		}
		g_printerr("the refused call returned\n");
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_failed();
	g_test_trap_assert_stderr(data == signal_init ? "*made system call kill (*"
	                                              : "*made system call socket (*");
	g_test_trap_assert_stderr("*which its allow list refuses*");
	g_test_trap_assert_stderr_unmatched("*the refused call returned*");
}

static bool landlock_usable(void)
{
	/* ABI 2 or later, as devices/fs/landlock.c asks. */
	return syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* VERSION */) >= 2;
}

static int open_errno(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno;
}

/*
 * The I/O thread under Landlock: with user networking it reads beneath
 * /etc (and where resolv.conf leads) and nothing else; without, nothing.
 */
static void test_io_landlock(gconstpointer data)
{
	bool resolv = GPOINTER_TO_INT(data);

	if (!landlock_usable()) {
		g_test_skip("the kernel has no Landlock ABI 2 or later");
		return;
	}
	if (g_test_subprocess()) {
		struct seccomp_policy p = {.io = SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES,
		                           .io_landlock = true,
		                           .io_reads_resolv_conf = resolv};
		GError *err = NULL;

		bool has_resolv = open_errno("/etc/resolv.conf") == 0;

		g_assert_cmpint(open_errno("/proc/self/status"), ==, 0);
		seccomp_arm(&p);
		g_assert_true(seccomp_thread_enter(SECCOMP_THREAD_IO, &err));
		g_assert_cmpint(open_errno("/etc/passwd"), ==, resolv ? 0 : EACCES);
		if (resolv && has_resolv)
			g_assert_cmpint(open_errno("/etc/resolv.conf"), ==, 0);
		g_assert_cmpint(open_errno("/proc/self/status"), ==, EACCES);
		g_assert_cmpint(open_errno("/dev/null"), ==, EACCES);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

struct dir_check {
	bool writable;
	char *file, *made;
};

/* On a thread of its own, so that the test's main thread can clean up after. */
static void *dir_check_thread(void *data)
{
	struct dir_check *c = data;
	unsigned int io = SECCOMP_IO_READ_FILES | (c->writable ? SECCOMP_IO_WRITE_FILES : 0);
	struct seccomp_policy p = {
	    .io = io, .io_landlock = true, .io_dir = share_dir, .io_dir_writable = c->writable};
	GError *err = NULL;

	seccomp_arm(&p);
	g_assert_true(seccomp_thread_enter(SECCOMP_THREAD_IO, &err));
	g_assert_cmpint(open_errno(c->file), ==, 0);
	g_assert_cmpint(open_errno("/etc/passwd"), ==, EACCES);
	/* (Read-only, a write open is the seccomp list's to refuse, and it ends the process.) */
	if (c->writable) {
		int fd = open(c->made, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		g_assert_cmpint(fd, >=, 0);
		close(fd);
		g_assert_cmpint(rename(c->made, c->file), ==, 0);
	}
	return NULL;
}

/* husk exec's I/O thread: its control folder, to read or also to write, and nothing else. */
static void test_io_landlock_dir(gconstpointer data)
{
	if (!landlock_usable()) {
		g_test_skip("the kernel has no Landlock ABI 2 or later");
		return;
	}
	if (g_test_subprocess()) {
		struct dir_check c = {.writable = GPOINTER_TO_INT(data),
		                      .file = g_build_filename(share_dir, "out", NULL),
		                      .made = g_build_filename(share_dir, "made", NULL)};
		pthread_t t;

		g_assert_true(g_file_set_contents(c.file, "x", 1, NULL));
		g_assert_cmpint(pthread_create(&t, NULL, dir_check_thread, &c), ==, 0);
		g_assert_cmpint(pthread_join(t, NULL), ==, 0);
		g_assert_cmpint(unlink(c.file), ==, 0);
		g_assert_cmpint(rmdir(share_dir), ==, 0);
		g_free(c.file);
		g_free(c.made);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

/*
 * The main thread: what tearing down and the driver's files take works;
 * the rest fails with EPERM (it does not end husk, as the process-wide
 * list does not), the kernel logging it.
 */
static void test_main_thread(void)
{
	if (g_test_subprocess()) {
		struct check c = {.kind = SECCOMP_THREAD_MAIN};
		char *file = g_build_filename(share_dir, "status", NULL);
		pthread_t t;
		int seen = 0;

		enter(&c);
		common_allowed();
		g_assert_true(g_file_set_contents(file, "0\n", -1, NULL));
		g_assert_cmpint(unlink(file), ==, 0);
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		g_assert_cmpint(s, >=, 0);
		close(s);
		g_assert_cmpint(pthread_create(&t, NULL, thread_main, &seen), ==, 0);
		g_assert_cmpint(pthread_join(t, NULL), ==, 0);
		g_assert_cmpint(ioctl(-1, KVM_IOEVENTFD, 0), ==, -1);
		g_assert_cmpint(errno, ==, EBADF); /* through to the kernel */

		errno = 0;
		g_assert_cmpint(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0), ==, -1);
		g_assert_cmpint(errno, ==, EPERM);
		g_assert_cmpint(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ==, -1);
		g_assert_cmpint(errno, ==, EPERM);
		g_assert_cmpint(ioctl(-1, KVM_CREATE_VM, 0), ==, -1);
		g_assert_cmpint(errno, ==, EPERM);
		g_assert_cmpint(kill(1, 0), ==, -1);
		g_assert_cmpint(errno, ==, EPERM);
		g_assert_true(mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		                   -1, 0) == MAP_FAILED);
		g_assert_cmpint(errno, ==, EPERM);
		g_assert_cmpint(syscall(SYS_clone,
		                        CLONE_THREAD | CLONE_VM | CLONE_SIGHAND | CLONE_NEWNET,
		                        NULL, NULL, NULL, 0),
		                ==, -1);
		g_assert_cmpint(errno, ==, EPERM);
		g_free(file);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

/*
 * glib's worker blocks every signal, so its refusals fail with EPERM too
 * (a SIGSYS would end husk without a word).
 */
static void test_glib_thread(void)
{
	if (g_test_subprocess()) {
		struct check c = {.kind = SECCOMP_THREAD_GLIB};

		enter(&c);
		glib_allowed();
		g_assert_cmpint(open("/etc/hostname", O_RDONLY | O_CLOEXEC), ==, -1);
		g_assert_cmpint(errno, ==, EPERM);
		g_assert_cmpint(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ==, -1);
		g_assert_cmpint(errno, ==, EPERM);
		g_assert_cmpint(ioctl(-1, KVM_CREATE_VM, 0), ==, -1);
		g_assert_cmpint(errno, ==, EPERM);
		g_assert_cmpint(syscall(SYS_clone,
		                        CLONE_THREAD | CLONE_VM | CLONE_SIGHAND | CLONE_NEWNET,
		                        NULL, NULL, NULL, 0),
		                ==, -1);
		g_assert_cmpint(errno, ==, EPERM);
		/* What the C library's malloc falls back to, counting CPUs. */
		cpu_set_t cpus;
		g_assert_cmpint(sched_getaffinity(0, sizeof(cpus), &cpus), ==, 0);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

/* The named thread's "Seccomp:" mode in /proc/self/task, or -1 if there is none by that name. */
static int thread_seccomp_mode(const char *name)
{
	GDir *d = g_dir_open("/proc/self/task", 0, NULL);
	const char *tid;
	int mode = -1;

	while (d && mode < 0 && (tid = g_dir_read_name(d))) {
		char *path = g_strdup_printf("/proc/self/task/%s/status", tid);
		char *text = NULL, *n, *m;

		if (g_file_get_contents(path, &text, NULL, NULL) && (n = strstr(text, "Name:\t")) &&
		    g_str_has_prefix(n + 6, name) && n[6 + strlen(name)] == '\n' &&
		    (m = strstr(text, "\nSeccomp:\t")))
			mode = atoi(m + 10);
		g_free(text);
		g_free(path);
	}
	if (d)
		g_dir_close(d);
	return mode;
}

static int own_seccomp_mode(void)
{
	char *text = NULL, *m;
	int mode = -1;

	if (g_file_get_contents("/proc/thread-self/status", &text, NULL, NULL) &&
	    (m = strstr(text, "\nSeccomp:\t")))
		mode = atoi(m + 10);
	g_free(text);
	return mode;
}

static gboolean count_hit(gpointer data)
{
	(*(int *)data)++;
	return G_SOURCE_CONTINUE;
}

/*
 * glib's worker thread ("gmain") starts with the first signal source: made
 * through seccomp_new_signal_sources(), it starts under the glib list,
 * while the thread that asked stays without.
 */
static void test_glib_worker(void)
{
	if (g_test_subprocess()) {
		struct seccomp_policy p = {0};
		static const int signals[] = {SIGUSR1, SIGUSR2};
		GSource *sources[2];

		g_assert_cmpint(thread_seccomp_mode("gmain"), ==, -1);
		seccomp_arm(&p);
		seccomp_new_signal_sources(signals, 2, sources);
		g_assert_nonnull(sources[0]);
		g_assert_nonnull(sources[1]);
		/* The worker names itself once it runs. */
		for (int i = 0; i < 200 && thread_seccomp_mode("gmain") < 0; i++)
			g_usleep(10000);
		g_assert_cmpint(thread_seccomp_mode("gmain"), ==, 2);
		g_assert_cmpint(own_seccomp_mode(), ==, 0);
		/* The signal still reaches a loop that watches it. */
		GMainContext *ctx = g_main_context_new();
		int hits = 0;
		g_source_set_callback(sources[0], count_hit, &hits, NULL);
		g_source_attach(sources[0], ctx);
		g_assert_cmpint(kill(getpid(), SIGUSR1), ==, 0);
		for (int i = 0; i < 100 && !hits; i++)
			g_main_context_iteration(ctx, TRUE);
		g_assert_cmpint(hits, ==, 1);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	char *tmp = g_strdup_printf("%s/husk-pool-XXXXXX", g_get_tmp_dir());
	pool_fd = g_mkstemp(tmp);
	g_assert_cmpint(pool_fd, >=, 0);
	unlink(tmp);
	g_free(tmp);
	share_dir = g_dir_make_tmp("husk-seccomp-XXXXXX", NULL);
	g_assert_nonnull(share_dir);
	for (size_t i = 0; i < G_N_ELEMENTS(checks); i++) {
		char *path = g_strdup_printf("/seccomp-threads/%s", checks[i].name);
		g_test_add_data_func(path, &checks[i], test_check);
		g_free(path);
	}
	g_test_add_data_func("/seccomp-threads/io-landlock/user-net", GINT_TO_POINTER(1),
	                     test_io_landlock);
	g_test_add_data_func("/seccomp-threads/io-landlock/no-files", GINT_TO_POINTER(0),
	                     test_io_landlock);
	g_test_add_data_func("/seccomp-threads/io-landlock/dir-read", GINT_TO_POINTER(0),
	                     test_io_landlock_dir);
	g_test_add_data_func("/seccomp-threads/io-landlock/dir-write", GINT_TO_POINTER(1),
	                     test_io_landlock_dir);
	g_test_add_data_func("/seccomp-threads/pool-from/io", GINT_TO_POINTER(SECCOMP_THREAD_IO),
	                     test_pool_from);
	g_test_add_data_func("/seccomp-threads/pool-from/share",
	                     GINT_TO_POINTER(SECCOMP_THREAD_SHARE), test_pool_from);
	g_test_add_data_func("/seccomp-threads/app-server/socket", new_socket, test_app_server);
	g_test_add_data_func("/seccomp-threads/app-server/kill-init", signal_init, test_app_server);
	g_test_add_data_func("/seccomp-threads/app-server/socket-on-thread", socket_on_thread,
	                     test_app_server);
	g_test_add_func("/seccomp-threads/not-armed", test_not_armed);
	g_test_add_func("/seccomp-threads/main-thread", test_main_thread);
	g_test_add_func("/seccomp-threads/glib-worker", test_glib_worker);
	g_test_add_func("/seccomp-threads/glib-thread", test_glib_thread);
	g_test_add_func("/seccomp-threads/log-only", test_log_only);
	g_test_add_data_func("/seccomp-threads/capabilities/vcpu",
	                     GINT_TO_POINTER(SECCOMP_THREAD_VCPU), test_capabilities);
	g_test_add_data_func("/seccomp-threads/capabilities/share",
	                     GINT_TO_POINTER(SECCOMP_THREAD_SHARE), test_capabilities);
	int status = g_test_run();
	if (g_test_subprocess())
		return status; /* under a list: it cleans nothing up */
	rmdir(share_dir);
	g_free(share_dir);
	close(pool_fd);
	return status;
}
