// SPDX-License-Identifier: MIT
/* --user: what it accepts, and a switch that reaches every thread and cannot be undone. */
#include <glib.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/privdrop.h"

#define NOBODY 65534

static void expect_user(const char *text, uid_t uid, gid_t gid)
{
	struct run_as r;
	GError *err = NULL;

	g_assert_true(run_as_parse("--user", text, &r, &err));
	g_assert_no_error(err);
	g_assert_true(r.set);
	g_assert_cmpuint(r.uid, ==, uid);
	g_assert_cmpuint(r.gid, ==, gid);
}

static void expect_refused(const char *text, const char *word)
{
	struct run_as r;
	GError *err = NULL;

	g_assert_false(run_as_parse("--user", text, &r, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_true(g_str_has_prefix(err->message, "--user: "));
	g_assert_nonnull(strstr(err->message, word));
	g_assert_false(r.set);
	g_error_free(err);
}

static void test_parse(void)
{
	struct passwd *pw = getpwnam("nobody");

	if (pw)
		expect_user("nobody", pw->pw_uid, pw->pw_gid);
	/* A number with no passwd entry: its own group. */
	if (!getpwuid(4000123))
		expect_user("4000123", 4000123, 4000123);
	expect_user("4000123:4000124", 4000123, 4000124);
	expect_user("4000123:1", 4000123, 1);
	expect_refused("", "USER[:GROUP]");
	expect_refused(":5", "USER[:GROUP]");
	expect_refused("5:", "USER[:GROUP]");
	expect_refused("root", "is root");
	expect_refused("0", "is root");
	expect_refused("5:0", "root's group");
	expect_refused("no-such-user-here", "no user");
	expect_refused("5:no-such-group-here", "no group");
	expect_refused("4294967295", "no user"); /* (uid_t)-1: "unchanged" to the kernel */
}

/* A thread that waits until the test is done with it. */
static void *wait_on_pipe(void *fd)
{
	char c;

	return (void *)(intptr_t)read((int)(intptr_t)fd, &c, 1);
}

/* Every thread of this process: its ids, groups and effective capabilities as wanted. */
static bool every_thread_is_nobody(void)
{
	GDir *d = g_dir_open("/proc/self/task", 0, NULL);
	const char *tid;
	unsigned int threads = 0, right = 0;

	while (d && (tid = g_dir_read_name(d))) {
		g_autofree char *path = g_strdup_printf("/proc/self/task/%s/status", tid);
		g_autofree char *text = NULL;
		threads++;
		if (g_file_get_contents(path, &text, NULL, NULL) &&
		    strstr(text, "\nUid:\t65534\t65534\t65534\t65534\n") &&
		    strstr(text, "\nGid:\t65534\t65534\t65534\t65534\n") &&
		    strstr(text, "\nGroups:\t65534 \n") &&
		    strstr(text, "\nCapEff:\t0000000000000000\n") &&
		    strstr(text, "\nCapPrm:\t0000000000000000\n"))
			right++;
	}
	if (d)
		g_dir_close(d);
	return threads >= 3 && right == threads;
}

/* In a child (the switch is for good): two threads started as root, then the switch. */
static int switch_in_child(void)
{
	int fds[2];
	pthread_t t[2];
	GError *err = NULL;

	if (pipe(fds))
		return 10;
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, wait_on_pipe, (void *)(intptr_t)fds[0]))
			return 11;
	if (!run_as_apply(&(struct run_as){.set = true, .uid = NOBODY, .gid = NOBODY}, &err))
		return 12;
	if (!every_thread_is_nobody())
		return 13;
	if (setuid(0) == 0 || setgid(0) == 0)
		return 14;
	/* Once switched, there is nothing left to switch from. */
	if (run_as_apply(&(struct run_as){.set = true, .uid = NOBODY, .gid = NOBODY}, &err) ||
	    !g_error_matches(err, HUSK_ERROR, HUSK_EXIT_HOST))
		return 15;
	close(fds[1]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return 0;
}

static void test_apply_reaches_every_thread(void)
{
	int status;

	if (geteuid() != 0) {
		g_test_skip("switching users needs root");
		return;
	}
	pid_t pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0)
		_exit(switch_in_child());
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/privdrop/parse", test_parse);
	g_test_add_func("/privdrop/apply_reaches_every_thread", test_apply_reaches_every_thread);
	return g_test_run();
}
