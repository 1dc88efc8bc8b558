// SPDX-License-Identifier: MIT
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"
#include "vmm/instance/protocol.h"
#include "vmm/instance/serve.h"

static char *home;

static void expect_bad_name(const char *name, const char *message)
{
	GError *err = NULL;

	g_assert_false(instance_name_check(name, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_cmpstr(err->message, ==, message);
	g_error_free(err);
}

static void test_names(void)
{
	g_assert_true(instance_name_check("web", NULL));
	g_assert_true(instance_name_check("ci-2", NULL));
	g_assert_true(instance_name_check("0", NULL));
	expect_bad_name("Web", "name \"Web\" may only have a-z, 0-9 and -");
	expect_bad_name("a_b", "name \"a_b\" may only have a-z, 0-9 and -");
	expect_bad_name("../x", "name \"../x\" may only have a-z, 0-9 and -");
	expect_bad_name("-x", "name \"-x\" may not begin or end with -");
	expect_bad_name("", "name \"\" must be 1 to 63 characters long");
	char *long_name = g_strnfill(64, 'a');
	g_assert_false(instance_name_check(long_name, NULL));
	g_free(long_name);
}

static struct instance *make(const char *name)
{
	struct instance *inst = instance_get(name, NULL);
	char *config = instance_path(inst, "config.json");

	g_assert_cmpint(g_mkdir_with_parents(inst->dir, 0700), ==, 0);
	g_assert_true(g_file_set_contents(config, "{}", -1, NULL));
	g_free(config);
	return inst;
}

static void test_home_and_list(void)
{
	char *h = instance_home();
	g_assert_cmpstr(h, ==, home);
	g_free(h);
	instance_free(make("b"));
	instance_free(make("a"));
	GPtrArray *names = instance_list();
	g_assert_cmpuint(names->len, ==, 2);
	g_assert_cmpstr(names->pdata[0], ==, "a");
	g_assert_cmpstr(names->pdata[1], ==, "b");
	g_ptr_array_unref(names);

	struct instance *b = instance_get("b", NULL);
	g_assert_true(instance_exists(b));
	g_assert_true(instance_remove(b, NULL));
	g_assert_false(instance_exists(b));
	instance_free(b);
}

/* Commands take turns; the second is told so at once. */
static void test_lock(void)
{
	struct instance *one = make("locked"), *two = instance_get("locked", NULL);
	GError *err = NULL;

	g_assert_true(instance_lock(one, NULL));
	g_assert_false(instance_lock(two, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_BUSY);
	g_assert_cmpstr(err->message, ==, "another husk command is working on locked");
	g_clear_error(&err);
	instance_free(one);
	g_assert_true(instance_lock(two, NULL));
	instance_free(two);
}

/* A serving process that dies, even by SIGKILL, leaves the instance stopped. */
static void test_running_after_kill(void)
{
	struct instance *inst = make("killed");
	int pipefd[2];

	g_assert_cmpint(pipe(pipefd), ==, 0);
	pid_t child = fork();
	if (child == 0) {
		int fd;
		char ok = instance_claim_running(inst, &fd, NULL) ? 'y' : 'n';
		g_assert_cmpint(write(pipefd[1], &ok, 1), ==, 1);
		pause();
		_exit(0);
	}
	char ok;
	g_assert_cmpint(read(pipefd[0], &ok, 1), ==, 1);
	g_assert_cmpint(ok, ==, 'y');
	g_assert_cmpint(instance_running_pid(inst), ==, child);
	int fd;
	GError *err = NULL;
	g_assert_false(instance_claim_running(inst, &fd, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_BUSY);
	g_clear_error(&err);

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	g_assert_cmpint(instance_running_pid(inst), ==, 0);
	g_assert_true(instance_claim_running(inst, &fd, NULL));
	close(fd);
	close(pipefd[0]);
	close(pipefd[1]);
	instance_free(inst);
}

static void test_protocol(void)
{
	GError *err = NULL;
	char *req = protocol_request("state");

	g_assert_cmpstr(req, ==, "{\"husk\":1,\"op\":\"state\"}\n");
	char *op = protocol_parse_request(req, &err);
	g_assert_cmpstr(op, ==, "state");
	g_free(op);
	g_free(req);

	g_assert_null(protocol_parse_request("{\"husk\":2,\"op\":\"state\"}", &err));
	g_assert_cmpstr(err->message, ==, "the request is not of control protocol version 1");
	g_clear_error(&err);
	g_assert_null(protocol_parse_request("{\"husk\":1}", &err));
	g_assert_cmpstr(err->message, ==, "the request has no op");
	g_clear_error(&err);
	g_assert_null(protocol_parse_request("state", &err));
	g_assert_cmpstr(err->message, ==, "the request is not a JSON object");
	g_clear_error(&err);
	/* An empty line parses to no root node at all: refused, not a GLib critical. */
	g_assert_null(protocol_parse_request("", &err));
	g_assert_cmpstr(err->message, ==, "the request is not a JSON object");
	g_clear_error(&err);
	g_assert_null(protocol_parse_request("\n", &err));
	g_assert_cmpstr(err->message, ==, "the request is not a JSON object");
	g_clear_error(&err);

	JsonObject *fields = json_object_new();
	json_object_set_string_member(fields, "state", "running");
	char *reply = protocol_reply(fields);
	JsonObject *back = protocol_parse_reply(reply, &err);
	g_assert_no_error(err);
	g_assert_cmpstr(json_object_get_string_member(back, "state"), ==, "running");
	json_object_unref(back);
	g_free(reply);

	reply = protocol_reply_error("unknown op \"x\"");
	g_assert_null(protocol_parse_reply(reply, &err));
	g_assert_cmpstr(err->message, ==, "unknown op \"x\"");
	g_clear_error(&err);
	g_free(reply);
}

static bool answer(void *opaque, const char *op, JsonObject *request, JsonObject *reply, int fd,
                   bool *take_fd, GError **err)
{
	if (g_strcmp0(op, "echo") == 0) {
		const char *v = protocol_string(request, "guest");
		json_object_set_string_member(reply, "guest", v ? v : "(none)");
		return true;
	}
	if (g_strcmp0(op, "state") != 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "unknown op \"%s\"", op);
	json_object_set_string_member(reply, "state", "running");
	return true;
}

static gpointer serve(gpointer ctx)
{
	for (;;)
		g_main_context_iteration(ctx, TRUE);
	return NULL;
}

static void test_socket(void)
{
	char *path = g_build_filename(home, "t.sock", NULL);
	GMainContext *ctx = g_main_context_new();
	GError *err = NULL;
	struct control_server *s = control_server_start(path, ctx, answer, NULL, &err);

	g_assert_no_error(err);
	GThread *t = g_thread_new("serve", serve, ctx);
	JsonObject *reply = control_call(path, "state", &err);
	g_assert_no_error(err);
	g_assert_cmpstr(json_object_get_string_member(reply, "state"), ==, "running");
	json_object_unref(reply);
	/* A request's arguments reach the handler beside its op. */
	JsonObject *args = json_object_new();
	json_object_set_string_member(args, "guest", "/home/debian/src");
	reply = control_call_with(path, "echo", args, &err);
	g_assert_no_error(err);
	g_assert_cmpstr(json_object_get_string_member(reply, "guest"), ==, "/home/debian/src");
	json_object_unref(reply);
	json_object_unref(args);
	reply = control_call(path, "echo", &err);
	g_assert_cmpstr(json_object_get_string_member(reply, "guest"), ==, "(none)");
	json_object_unref(reply);
	g_assert_null(control_call(path, "reboot", &err));
	g_assert_cmpstr(err->message, ==, "unknown op \"reboot\"");
	g_clear_error(&err);
	/* The thread is left serving: the process ends with the test. */
	g_thread_unref(t);
	g_assert_nonnull(s);
	g_free(path);
}

/* cloud-init's final message, as Debian 12's cloud-init 22.4 prints it on the console. */
static void test_ready_line(void)
{
	g_assert_true(serve_line_is_ready(
	    "[   41.234567] cloud-init[612]: Cloud-init v. 22.4.2 finished at Sun, 06 Dec 2026 "
	    "21:00:00 +0000. Datasource DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 41.20 "
	    "seconds"));
	g_assert_true(serve_line_is_ready("Cloud-init v. 24.1 finished at Mon, 1 Jan 2024"));
	g_assert_false(serve_line_is_ready(
	    "Cloud-init v. 22.4.2 running 'modules:final' at Sun, 06 Dec 2026 21:00:00 +0000."));
	g_assert_false(serve_line_is_ready("finished at noon"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	home = g_dir_make_tmp("husk-instance-XXXXXX", NULL);
	g_setenv("HUSK_HOME", home, TRUE);
	g_test_add_func("/instance/names", test_names);
	g_test_add_func("/instance/home-and-list", test_home_and_list);
	g_test_add_func("/instance/lock", test_lock);
	g_test_add_func("/instance/running-after-kill", test_running_after_kill);
	g_test_add_func("/instance/protocol", test_protocol);
	g_test_add_func("/instance/socket", test_socket);
	g_test_add_func("/instance/ready-line", test_ready_line);
	int status = g_test_run();
	char *cmd = g_strdup_printf("rm -rf '%s'", home);
	g_assert_cmpint(system(cmd), !=, -1);
	g_free(cmd);
	return status;
}
