// SPDX-License-Identifier: MIT
/*
 * Each check runs in a subprocess: the filter cannot be taken off, and the
 * test program itself must go on forking.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/seccomp.h"

static void lock_down(void)
{
	GError *err = NULL;

	g_assert_true(seccomp_lock_down(&err));
	g_assert_no_error(err);
}

/* Runs 'checks' under the filter in a subprocess, which must pass. */
static void under_filter(void (*checks)(void))
{
	if (g_test_subprocess()) {
		lock_down();
		checks();
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

static void *thread_main(void *arg)
{
	*(int *)arg = 42;
	return NULL;
}

/* What husk does while its guest runs goes on: threads, files, sockets. */
static void allowed_checks(void)
{
	pthread_t t;
	int seen = 0;

	g_assert_cmpint(pthread_create(&t, NULL, thread_main, &seen), ==, 0);
	g_assert_cmpint(pthread_join(t, NULL), ==, 0);
	g_assert_cmpint(seen, ==, 42);
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(write(fd, "x", 1), ==, 1);
	close(fd);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(s, >=, 0);
	close(s);
	lock_down(); /* a second time (a restarted VM): nothing more to do */
}

static void test_allowed(void)
{
	under_filter(allowed_checks);
}

static void assert_denied(long rc, int want)
{
	g_assert_cmpint(rc, ==, -1);
	g_assert_cmpint(errno, ==, want);
}

/*
 * A new program or process: what an attacker wants first. Should the
 * filter let them through, each goes wrong loudly: /bin/false exits 1,
 * and a forked child's parent fails its assertion.
 */
static void no_new_process_checks(void)
{
	char *const argv[] = {"/bin/false", NULL};

	assert_denied(execve("/bin/false", argv, environ), EPERM);
	assert_denied(syscall(SYS_execveat, AT_FDCWD, "/bin/false", argv, environ, 0), EPERM);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	assert_denied(pid, EPERM);
	assert_denied(syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0), EPERM);
	/* clone3's flags are out of the filter's sight: it is refused whole. */
	assert_denied(syscall(SYS_clone3, NULL, 0), ENOSYS);
}

static void test_no_new_process(void)
{
	under_filter(no_new_process_checks);
}

/*
 * The host's mounts, namespaces, kernel and credentials, and other
 * processes' memory, stay out of reach. Each call is one that, let
 * through, fails some other way or changes nothing outside the test.
 */
static void no_host_changes_checks(void)
{
	char byte = 1, into = 0;
	struct iovec local = {&into, 1}, remote = {&byte, 1};

	assert_denied(mount("none", "/nonexistent/husk-seccomp", "tmpfs", 0, NULL), EPERM);
	assert_denied(unshare(CLONE_NEWNS), EPERM);
	assert_denied(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), EPERM);
	assert_denied(syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0), EPERM);
	assert_denied(syscall(SYS_finit_module, -1, "", 0), EPERM);
	assert_denied(syscall(SYS_bpf, 0, NULL, 0), EPERM);
	assert_denied(syscall(SYS_setresuid, -1, -1, -1), EPERM);
}

static void test_no_host_changes(void)
{
	under_filter(no_host_changes_checks);
}

/*
 * Signals reach this process only, threads make no namespaces, and
 * io_uring (calls out of the filter's sight) is shut.
 */
static void no_reach_out_checks(void)
{
	assert_denied(kill(1, 0), EPERM);
	assert_denied(syscall(SYS_tgkill, 1, 1, 0), EPERM);
	assert_denied(syscall(SYS_tkill, 1, 0), EPERM);
	g_assert_cmpint(kill(getpid(), 0), ==, 0);
	g_assert_cmpint(syscall(SYS_tgkill, getpid(), gettid(), 0), ==, 0);
	assert_denied(syscall(SYS_clone, CLONE_THREAD | CLONE_VM | CLONE_SIGHAND | CLONE_NEWNET,
	                      NULL, NULL, NULL, 0),
	              EPERM);
	assert_denied(syscall(SYS_io_uring_setup, 1, NULL), EPERM);
}

static void test_no_reach_out(void)
{
	under_filter(no_reach_out_checks);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/seccomp/allowed", test_allowed);
	g_test_add_func("/seccomp/no-new-process", test_no_new_process);
	g_test_add_func("/seccomp/no-host-changes", test_no_host_changes);
	g_test_add_func("/seccomp/no-reach-out", test_no_reach_out);
	return g_test_run();
}
