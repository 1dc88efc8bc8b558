// SPDX-License-Identifier: MIT
#include "vmm/oci/runspec.h"

#include <string.h>

#include "vmm/error.h"

static char *joined(char **v)
{
	return v ? g_strjoinv(" ", v) : g_strdup("(error)");
}

/* Docker's table (docs.docker.com, "Understand how CMD and ENTRYPOINT interact"), and the
 * command line's overrides. */
static void test_command_rules(void)
{
	char *ep_exec[] = {"/bin/ep", "-x", NULL}, *cmd[] = {"/bin/cmd", "arg", NULL};
	char *args[] = {"/bin/mine", "1", NULL}, *empty[] = {NULL};
	struct {
		char **ep, **cmd;
		const char *entrypoint;
		char **args;
		const char *want;
	} cases[] = {
	    {NULL, cmd, NULL, NULL, "/bin/cmd arg"},
	    {ep_exec, NULL, NULL, NULL, "/bin/ep -x"},
	    {ep_exec, cmd, NULL, NULL, "/bin/ep -x /bin/cmd arg"},
	    /* Arguments replace Cmd, never the entrypoint. */
	    {ep_exec, cmd, NULL, args, "/bin/ep -x /bin/mine 1"},
	    {NULL, cmd, NULL, args, "/bin/mine 1"},
	    /* --entrypoint replaces Entrypoint and drops the image's Cmd... */
	    {ep_exec, cmd, "/bin/sh", NULL, "/bin/sh"},
	    /* ...but not the arguments given. */
	    {ep_exec, cmd, "/bin/sh", args, "/bin/sh /bin/mine 1"},
	    /* --entrypoint "" clears it: the arguments are the whole command. */
	    {ep_exec, cmd, "", args, "/bin/mine 1"},
	    {ep_exec, empty, NULL, NULL, "/bin/ep -x"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char **argv = oci_command(cases[i].ep, cases[i].cmd, cases[i].entrypoint,
		                          cases[i].args, NULL);
		char *got = joined(argv);
		g_assert_cmpstr(got, ==, cases[i].want);
		g_free(got);
		g_strfreev(argv);
	}
}

static void test_no_command(void)
{
	char *cmd[] = {"/bin/cmd", NULL};
	GError *err = NULL;

	g_assert_null(oci_command(NULL, NULL, NULL, NULL, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_clear_error(&err);
	/* An empty entrypoint and no arguments: the image's Cmd is dropped too. */
	g_assert_null(oci_command(NULL, cmd, "", NULL, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_clear_error(&err);
}

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                             "app:x:1000:1000:App:/home/app:/bin/sh\n"
                             "broken:x:notanumber:1\n";
static const char group[] = "root:x:0:\n"
                            "wheel:x:10:app,other\n"
                            "app:x:1000:\n"
                            "audio:x:29:app\n"
                            "staff:x:50:\n";

static void test_users(void)
{
	struct {
		const char *spec;
		unsigned uid, gid;
		const char *home, *formatted;
	} cases[] = {
	    {"", 0, 0, "/root", "0:0"},
	    {"root", 0, 0, "/root", "0:0"},
	    {"app", 1000, 1000, "/home/app", "1000:1000:10,29"},
	    {"1000", 1000, 1000, "/home/app", "1000:1000:10,29"},
	    /* A number the image does not know: group 0, no home, as Docker does. */
	    {"4242", 4242, 0, NULL, "4242:0"},
	    {"app:staff", 1000, 50, "/home/app", "1000:50"},
	    {"app:77", 1000, 77, "/home/app", "1000:77"},
	    {"4242:4343", 4242, 4343, NULL, "4242:4343"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct oci_user u;
		GError *err = NULL;
		g_assert_true(oci_user_resolve(cases[i].spec, passwd, group, &u, &err));
		g_assert_no_error(err);
		g_assert_cmpuint(u.uid, ==, cases[i].uid);
		g_assert_cmpuint(u.gid, ==, cases[i].gid);
		g_assert_cmpstr(u.home, ==, cases[i].home);
		char *f = oci_user_format(&u);
		g_assert_cmpstr(f, ==, cases[i].formatted);
		g_free(f);
		oci_user_clear(&u);
	}
}

static void test_unknown_users(void)
{
	const char *bad[] = {"nobody-here", "broken", "app:nogroup", "-1", "4294967295"};

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		struct oci_user u;
		GError *err = NULL;
		g_assert_false(oci_user_resolve(bad[i], passwd, group, &u, &err));
		g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
		g_assert_null(strchr(err->message, '\n'));
		g_clear_error(&err);
	}
	/* No passwd at all: numbers still work, names do not. */
	struct oci_user u;
	g_assert_true(oci_user_resolve("5:6", NULL, NULL, &u, NULL));
	g_assert_cmpuint(u.uid, ==, 5);
	g_assert_cmpuint(u.gid, ==, 6);
	oci_user_clear(&u);
	g_assert_false(oci_user_resolve("app", NULL, NULL, &u, NULL));
}

static void test_env_set(void)
{
	char *env[] = {"PATH=/bin", "A=1", NULL};
	char **e1 = oci_env_set(env, "A=2");
	char **e2 = oci_env_set(e1, "B=3");
	char *got = g_strjoinv(" ", e2);

	g_assert_cmpstr(got, ==, "PATH=/bin A=2 B=3");
	g_free(got);
	g_strfreev(e1);
	g_strfreev(e2);
	char **e3 = oci_env_set(NULL, "X=");
	g_assert_cmpstr(e3[0], ==, "X=");
	g_assert_null(e3[1]);
	g_strfreev(e3);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/oci/runspec/command-rules", test_command_rules);
	g_test_add_func("/oci/runspec/no-command", test_no_command);
	g_test_add_func("/oci/runspec/users", test_users);
	g_test_add_func("/oci/runspec/unknown-users", test_unknown_users);
	g_test_add_func("/oci/runspec/env-set", test_env_set);
	return g_test_run();
}
