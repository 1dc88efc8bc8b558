// SPDX-License-Identifier: MIT
/*
 * husk exec TARGET and husk shell TARGET against a real husk-agent session
 * served on a Unix socket that answers "CONNECT 1024" as husk's vsock
 * device does: exit statuses, the streams apart, standard input, signals,
 * and the failures that are 125.
 */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "firmware/husk-agent.h"
#include "vmm/cli/agent.h"

struct fake {
	char *dir, *sock;
	pid_t pid;
};

/* One connection: the CONNECT line, "OK", then the agent (or, if 'refuse', a hang-up). */
static void serve_one(int fd, bool refuse)
{
	char c;

	do {
		if (read(fd, &c, 1) != 1)
			_exit(1);
	} while (c != '\n');
	if (refuse)
		_exit(0);
	if (write(fd, "OK 1024\n", 8) != 8)
		_exit(1);
	signal(SIGCHLD, SIG_DFL); /* the session waits for its command, as husk-agent's do */
	agent_serve(fd);
	_exit(0);
}

static void fake_start(struct fake *f, bool refuse)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	f->dir = g_dir_make_tmp("husk-agent-XXXXXX", NULL);
	f->sock = g_build_filename(f->dir, "vsock.sock", NULL);
	g_strlcpy(sa.sun_path, f->sock, sizeof(sa.sun_path));
	g_assert_cmpint(bind(s, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(listen(s, 8), ==, 0);
	f->pid = fork();
	if (f->pid == 0) {
		signal(SIGCHLD, SIG_IGN);
		for (;;) {
			int fd = accept(s, NULL, NULL);
			if (fd >= 0 && fork() == 0)
				serve_one(fd, refuse);
			if (fd >= 0)
				close(fd);
		}
	}
	close(s);
}

static void fake_stop(struct fake *f)
{
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
	g_unlink(f->sock);
	g_rmdir(f->dir);
	g_free(f->sock);
	g_free(f->dir);
}

struct result {
	int status;
	char *out, *err;
	gsize out_len;
};

static void result_free(struct result *r)
{
	g_free(r->out);
	g_free(r->err);
}

/*
 * Runs `husk exec|shell` in a child, its input from 'input', its output
 * kept; SIGINT sent to it after 'sig_after_ms' (0: none).
 */
static struct result run_cli(const struct fake *f, const char *input, gsize input_len,
                             int sig_after_ms, const char *const *args)
{
	char *in = g_build_filename(f->dir, "in", NULL),
	     *out = g_build_filename(f->dir, "out", NULL);
	char *err = g_build_filename(f->dir, "err", NULL);
	struct result r = {0};
	int status;

	GError *why = NULL;
	g_file_set_contents(in, input ? input : "", input ? (gssize)input_len : 0, &why);
	g_assert_no_error(why);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGINT,
		       SIG_IGN); /* as a shell starts one in the background: still passed on */
		int i = open(in, O_RDONLY), o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char *argv[32];
		int argc = 0;
		dup2(i, 0);
		dup2(o, 1);
		dup2(e, 2);
		for (; args[argc]; argc++)
			argv[argc] = g_strdup(args[argc]);
		argv[argc] = NULL;
		if (strcmp(argv[0], "transfer") == 0)
			_exit(transfer_main(argc, argv));
		_exit(strcmp(argv[0], "shell") == 0 ? shell_main(argc, argv)
		                                    : agent_exec_main(argc, argv));
	}
	if (sig_after_ms) {
		g_usleep(sig_after_ms * 1000);
		kill(pid, SIGINT);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	r.status = WEXITSTATUS(status);
	g_assert_true(g_file_get_contents(out, &r.out, &r.out_len, NULL));
	g_assert_true(g_file_get_contents(err, &r.err, NULL, NULL));
	g_unlink(in);
	g_unlink(out);
	g_unlink(err);
	g_free(in);
	g_free(out);
	g_free(err);
	return r;
}

#define EXEC(f, ...)                                                                               \
	run_cli(f, NULL, 0, 0, (const char *const[]){"exec", (f)->sock, __VA_ARGS__, NULL})

static void test_statuses(void)
{
	struct fake f;

	fake_start(&f, false);
	const char *codes[] = {"exit 0", "exit 1", "exit 42"};
	const int want[] = {0, 1, 42};
	for (size_t i = 0; i < G_N_ELEMENTS(codes); i++) {
		struct result r = EXEC(&f, "--", "sh", "-c", codes[i]);
		g_assert_cmpint(r.status, ==, want[i]);
		result_free(&r);
	}
	struct result r = EXEC(&f, "--", "sh", "-c", "kill -TERM $$");
	g_assert_cmpint(r.status, ==, 128 + SIGTERM);
	result_free(&r);
	/* Failures in the guest: one line, 125. */
	r = EXEC(&f, "--", "/no/such/program");
	g_assert_cmpint(r.status, ==, 125);
	g_assert_true(g_str_has_prefix(r.err, "husk: exec: "));
	g_assert_nonnull(strstr(r.err, "exec /no/such/program"));
	g_assert_cmpint(strchr(r.err, '\n') - r.err + 1, ==, (long)strlen(r.err));
	result_free(&r);
	fake_stop(&f);
}

static void test_streams_and_options(void)
{
	struct fake f;

	fake_start(&f, false);
	struct result r = EXEC(&f, "--workdir", "/tmp", "--env", "A=1", "--env", "B=two", "--",
	                       "sh", "-c", "printf out; printf err >&2; pwd; echo $A$B");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpstr(r.out, ==, "out/tmp\n1two\n");
	g_assert_cmpstr(r.err, ==, "err");
	result_free(&r);
	r = EXEC(&f, "--env", "NOEQUALS", "--", "true");
	g_assert_cmpint(r.status, ==, 2);
	result_free(&r);
	fake_stop(&f);
}

/* 3 MiB of input through cat and back, byte for byte. */
static void test_stdin(void)
{
	struct fake f;
	gsize len = 3 * 1024 * 1024;
	char *data = g_malloc(len);
	GRand *g = g_rand_new_with_seed(5);

	for (gsize i = 0; i < len; i++)
		data[i] = (char)g_rand_int(g);
	fake_start(&f, false);
	struct result r =
	    run_cli(&f, data, len, 0, (const char *const[]){"exec", f.sock, "--", "cat", NULL});
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpmem(r.out, r.out_len, data, len);
	result_free(&r);
	fake_stop(&f);
	g_free(data);
	g_rand_free(g);
}

/* Ctrl-C to husk reaches the command, which ends by it. */
static void test_interrupt(void)
{
	struct fake f;

	fake_start(&f, false);
	struct result r = run_cli(&f, NULL, 0, 500,
	                          (const char *const[]){"exec", f.sock, "--", "sleep", "30", NULL});
	g_assert_cmpint(r.status, ==, 128 + SIGINT);
	result_free(&r);
	fake_stop(&f);
}

static void test_no_agent(void)
{
	struct fake f;

	fake_start(&f, true);
	struct result r = EXEC(&f, "--", "true");
	g_assert_cmpint(r.status, ==, 125);
	g_assert_nonnull(strstr(r.err, "no agent answers"));
	result_free(&r);
	r = run_cli(&f, NULL, 0, 0,
	            (const char *const[]){"exec", "/no/such/socket", "--", "true", NULL});
	g_assert_cmpint(r.status, ==, 125);
	g_assert_nonnull(strstr(r.err, "/no/such/socket"));
	result_free(&r);
	fake_stop(&f);
}

/* A login shell on the agent's terminal: it runs what it reads and exits with it. */
static void test_shell(void)
{
	struct fake f;

	if (access("/dev/ptmx", R_OK | W_OK) != 0) {
		g_test_skip("no /dev/ptmx here");
		return;
	}
	fake_start(&f, false);
	const char *input = "echo shell$((6*7)) $0\nexit 3\n";
	struct result r = run_cli(&f, input, strlen(input), 0,
	                          (const char *const[]){"shell", f.sock, "--user", "0", NULL});
	g_assert_cmpint(r.status, ==, 3);
	g_assert_nonnull(strstr(r.out, "shell42 -")); /* a login shell's $0 starts with - */
	result_free(&r);
	fake_stop(&f);
}

/* A file into the guest's folder and back out to the host's, byte for byte; failures. */
static void test_transfer(void)
{
	struct fake f;
	gsize len = 2 * 1024 * 1024 + 7;
	char *data = g_malloc(len), *back = NULL;
	GRand *g = g_rand_new_with_seed(9);

	for (gsize i = 0; i < len; i++)
		data[i] = (char)g_rand_int(g);
	fake_start(&f, false);
	char *src = g_build_filename(f.dir, "notes.bin", NULL);
	char *guest_dir = g_build_filename(f.dir, "guest", NULL);
	char *host_dir = g_build_filename(f.dir, "host", NULL);
	g_assert_cmpint(g_mkdir(guest_dir, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(host_dir, 0700), ==, 0);
	g_assert_true(g_file_set_contents(src, data, (gssize)len, NULL));
	char *to = g_strdup_printf("%s:%s", f.sock, guest_dir);
	struct result r = run_cli(&f, NULL, 0, 0, (const char *const[]){"transfer", src, to, NULL});
	g_assert_cmpint(r.status, ==, 0);
	result_free(&r);
	char *from = g_strdup_printf("%s:%s/notes.bin", f.sock, guest_dir);
	r = run_cli(&f, NULL, 0, 0, (const char *const[]){"transfer", from, host_dir, NULL});
	g_assert_cmpint(r.status, ==, 0);
	result_free(&r);
	char *got = g_build_filename(host_dir, "notes.bin", NULL);
	gsize got_len;
	g_assert_true(g_file_get_contents(got, &back, &got_len, NULL));
	g_assert_cmpmem(back, got_len, data, len);
	/* A file the guest has not: its message, status 1, nothing left on the host. */
	char *missing = g_strdup_printf("%s:/no/such/file", f.sock);
	r = run_cli(&f, NULL, 0, 0, (const char *const[]){"transfer", missing, host_dir, NULL});
	g_assert_cmpint(r.status, ==, 1);
	char *none = g_build_filename(host_dir, "file", NULL);
	g_assert_false(g_file_test(none, G_FILE_TEST_EXISTS));
	g_free(none);
	result_free(&r);
	r = run_cli(&f, NULL, 0, 0, (const char *const[]){"transfer", src, host_dir, NULL});
	g_assert_cmpint(r.status, ==, 2);
	result_free(&r);
	const char *rm[] = {"rm", "-rf", guest_dir, host_dir, src, NULL};
	g_spawn_sync(NULL, (char **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
	             NULL);
	fake_stop(&f);
	g_free(missing);
	g_free(got);
	g_free(back);
	g_free(from);
	g_free(to);
	g_free(src);
	g_free(guest_dir);
	g_free(host_dir);
	g_free(data);
	g_rand_free(g);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	g_test_add_func("/agent-cli/statuses", test_statuses);
	g_test_add_func("/agent-cli/streams-and-options", test_streams_and_options);
	g_test_add_func("/agent-cli/stdin", test_stdin);
	g_test_add_func("/agent-cli/interrupt", test_interrupt);
	g_test_add_func("/agent-cli/no-agent", test_no_agent);
	g_test_add_func("/agent-cli/shell", test_shell);
	g_test_add_func("/agent-cli/transfer", test_transfer);
	return g_test_run();
}
