// SPDX-License-Identifier: MIT
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static char *in_dir(const char *dir, const char *file)
{
	return g_build_filename(dir, file, NULL);
}

/* state/ once it is made; a symlink called state is not taken for it. */
static void test_state_dir(void)
{
	struct instance *inst = make("stateful");
	char *path = instance_state_path(inst, "console.log");
	char *want = in_dir(inst->dir, "console.log");

	g_assert_cmpstr(path, ==, want);
	g_free(path);
	g_free(want);
	g_assert_true(instance_make_state_dir(inst, getuid(), getgid(), NULL));
	path = instance_state_path(inst, "console.log");
	want = g_build_filename(inst->dir, "state", "console.log", NULL);
	g_assert_cmpstr(path, ==, want);
	struct instance *again = instance_get("stateful", NULL);
	g_free(path);
	path = instance_state_path(again, "console.log");
	g_assert_cmpstr(path, ==, want);
	g_free(path);
	g_free(want);
	instance_free(again);
	instance_free(inst);

	inst = make("linked");
	char *state = in_dir(inst->dir, "state");
	g_assert_cmpint(symlink(home, state), ==, 0);
	instance_free(inst);
	inst = instance_get("linked", NULL);
	g_assert_cmpstr(inst->state_dir, ==, inst->dir);
	GError *err = NULL;
	g_assert_false(instance_make_state_dir(inst, getuid(), getgid(), &err));
	g_assert_nonnull(strstr(err->message, "Not a directory"));
	g_clear_error(&err);
	g_free(state);
	instance_free(inst);
}

/* What the serving process's user may have put in state/: read within bounds, or not at all. */
static void test_read_state(void)
{
	struct instance *inst = make("reader");
	char *text = NULL;
	size_t len = 0;

	g_assert_true(instance_make_state_dir(inst, getuid(), getgid(), NULL));
	char *status = instance_state_path(inst, "exit-status");
	g_assert_true(g_file_set_contents(status, "42\n", -1, NULL));
	g_assert_true(instance_read_state(inst, "exit-status", EXIT_STATUS_MAX, &text, &len));
	g_assert_cmpstr(text, ==, "42\n");
	g_assert_cmpuint(len, ==, 3);
	g_free(text);

	char *big = g_strnfill(EXIT_STATUS_MAX + 1, '9');
	g_assert_true(g_file_set_contents(status, big, -1, NULL));
	g_assert_false(instance_read_state(inst, "exit-status", EXIT_STATUS_MAX, &text, &len));
	g_assert_cmpint(errno, ==, EFBIG);

	/* A FIFO would leave a reader waiting for a writer forever: refused at once. */
	g_assert_cmpint(unlink(status), ==, 0);
	g_assert_cmpint(mkfifo(status, 0600), ==, 0);
	g_assert_false(instance_read_state(inst, "exit-status", EXIT_STATUS_MAX, &text, &len));
	g_assert_cmpint(errno, ==, EINVAL);

	/* A link to a file of root's: not followed. */
	g_assert_cmpint(unlink(status), ==, 0);
	char *config = instance_path(inst, "config.json");
	g_assert_cmpint(symlink(config, status), ==, 0);
	g_assert_false(instance_read_state(inst, "exit-status", EXIT_STATUS_MAX, &text, &len));
	g_assert_cmpint(errno, ==, ELOOP);
	g_free(config);
	g_free(big);
	g_free(status);
	instance_free(inst);
}

static void expect_untrusted(struct instance *inst, const char *why)
{
	GError *err = NULL;
	char *text = NULL;

	g_assert_false(instance_read_trusted(inst, "config.json", &text, &err));
	g_assert_null(text);
	g_assert_nonnull(err);
	g_assert_nonnull(strstr(err->message, why));
	g_clear_error(&err);
}

/* config.json is what a start as root acts on: nobody else may have written it. */
static void test_read_trusted(void)
{
	struct instance *inst = make("trusted");
	char *config = instance_path(inst, "config.json");
	char *text = NULL;

	g_assert_cmpint(chmod(config, 0644), ==, 0);
	g_assert_true(instance_read_trusted(inst, "config.json", &text, NULL));
	g_assert_cmpstr(text, ==, "{}");
	g_free(text);
	g_assert_cmpint(chmod(config, 0646), ==, 0);
	expect_untrusted(inst, "config.json: others may write to it");
	g_assert_cmpint(chmod(config, 0644), ==, 0);
	g_assert_cmpint(chmod(inst->dir, 0757), ==, 0);
	expect_untrusted(inst, "trusted: others may write to it");
	g_assert_cmpint(chmod(inst->dir, 0700), ==, 0);
	char *link = instance_path(inst, "other.json");
	g_assert_cmpint(rename(config, link), ==, 0);
	g_assert_cmpint(symlink(link, config), ==, 0);
	expect_untrusted(inst, "config.json: Too many levels of symbolic links");
	g_assert_cmpint(unlink(config), ==, 0);
	g_assert_cmpint(rename(link, config), ==, 0);
	if (geteuid() == 0) {
		/* Root acts on it: a group may not write, and it must be root's. */
		g_assert_cmpint(chmod(config, 0664), ==, 0);
		expect_untrusted(inst, "config.json: others may write to it");
		g_assert_cmpint(chmod(config, 0644), ==, 0);
		g_assert_cmpint(chown(config, 65534, 65534), ==, 0);
		expect_untrusted(inst, "config.json: owned by uid 65534, not by root or you");
	}
	g_free(link);
	g_free(config);
	instance_free(inst);
}

/* delete takes state/ with it, whatever its user nested there, and follows no link out. */
static void test_remove_state(void)
{
	struct instance *inst = make("removed");
	char *outside = g_build_filename(home, "outside", NULL);
	char *kept = in_dir(outside, "kept");

	g_assert_true(instance_make_state_dir(inst, getuid(), getgid(), NULL));
	g_assert_cmpint(g_mkdir_with_parents(outside, 0700), ==, 0);
	g_assert_true(g_file_set_contents(kept, "x", -1, NULL));
	char *deep = g_build_filename(inst->state_dir, "a", "b", "c", NULL);
	g_assert_cmpint(g_mkdir_with_parents(deep, 0700), ==, 0);
	char *file = in_dir(deep, "f");
	g_assert_true(g_file_set_contents(file, "x", -1, NULL));
	char *link = in_dir(inst->state_dir, "out");
	g_assert_cmpint(symlink(outside, link), ==, 0);
	char *fifo = in_dir(inst->state_dir, "fifo");
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);

	g_assert_true(instance_remove(inst, NULL));
	g_assert_false(g_file_test(inst->dir, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(kept, G_FILE_TEST_IS_REGULAR));
	g_free(fifo);
	g_free(link);
	g_free(file);
	g_free(deep);
	g_free(kept);
	g_free(outside);
	instance_free(inst);
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
	g_test_add_func("/instance/state-dir", test_state_dir);
	g_test_add_func("/instance/read-state", test_read_state);
	g_test_add_func("/instance/read-trusted", test_read_trusted);
	g_test_add_func("/instance/remove-state", test_remove_state);
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
