// SPDX-License-Identifier: MIT
/* In a subprocess: Landlock cannot be taken off a thread again. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "devices/fs/landlock.h"

static char *dir;

/* Asking the version restricts nothing. */
static bool have_landlock(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) >= 2;
}

static bool confine(bool read_only)
{
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	bool ok = landlock_confine_beneath(fd, read_only);
	close(fd);
	g_assert_cmpint(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), ==, ok ? 1 : 0);
	return ok;
}

static int open_in(const char *name, int flags)
{
	char *path = g_build_filename(dir, name, NULL);
	int fd = open(path, flags | O_CLOEXEC, 0600);

	g_free(path);
	return fd;
}

/*
 * A confined child that passed ends here, at once: what runs at a normal
 * exit may want files Landlock now hides (LeakSanitizer reads /proc).
 */
_Noreturn static void end_confined(void)
{
	_exit(0);
}

/* Beneath the directory: all; elsewhere: nothing, not even reading. */
static void test_beneath(void)
{
	if (g_test_subprocess()) {
		g_assert_true(confine(false));
		int fd = open_in("new", O_RDWR | O_CREAT);
		g_assert_cmpint(fd, >=, 0);
		close(fd);
		g_assert_cmpint(open("/etc/passwd", O_RDONLY | O_CLOEXEC), ==, -1);
		g_assert_cmpint(errno, ==, EACCES);
		end_confined();
	}
	if (!have_landlock()) {
		g_test_skip("this kernel has no Landlock (ABI 2 or later)");
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

/* A read-only share: reading beneath the directory, and no more. */
static void test_read_only(void)
{
	if (g_test_subprocess()) {
		g_assert_true(confine(true));
		int fd = open_in("there", O_RDONLY);
		g_assert_cmpint(fd, >=, 0);
		close(fd);
		g_assert_cmpint(open_in("there", O_WRONLY), ==, -1);
		g_assert_cmpint(errno, ==, EACCES);
		g_assert_cmpint(open_in("other", O_RDWR | O_CREAT), ==, -1);
		end_confined();
	}
	if (!have_landlock()) {
		g_test_skip("this kernel has no Landlock (ABI 2 or later)");
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	dir = g_dir_make_tmp("husk-landlock-XXXXXX", NULL);
	g_assert_nonnull(dir);
	char *there = g_build_filename(dir, "there", NULL);
	g_assert_true(g_file_set_contents(there, "x", 1, NULL));
	g_test_add_func("/landlock/beneath", test_beneath);
	g_test_add_func("/landlock/read-only", test_read_only);
	int status = g_test_run();
	if (!g_test_subprocess()) {
		g_unlink(there);
		char *made = g_build_filename(dir, "new", NULL);
		g_unlink(made);
		g_free(made);
		g_rmdir(dir);
	}
	g_free(there);
	g_free(dir);
	return status;
}
