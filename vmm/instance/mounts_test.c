// SPDX-License-Identifier: MIT
/* Mounts: --mount's text, mounts.json both ways, and what a hostile file gets. */
#include "vmm/instance/mounts.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "firmware/husk-agent.h"

#include "vmm/error.h"

static void test_spec_parse(void)
{
	struct mount_spec m;
	GError *err = NULL;

	g_assert_true(mount_spec_parse("/srv/src:/home/debian/src", &m, &err));
	g_assert_cmpstr(m.host, ==, "/srv/src");
	g_assert_cmpstr(m.guest, ==, "/home/debian/src");
	g_assert_false(m.read_only);
	mount_spec_clear(&m);
	g_assert_true(mount_spec_parse("/srv/a:b:/mnt/x:ro", &m, &err));
	g_assert_cmpstr(m.host, ==, "/srv/a:b");
	g_assert_cmpstr(m.guest, ==, "/mnt/x");
	g_assert_true(m.read_only);
	mount_spec_clear(&m);
	/* A relative host folder is made absolute, from the current one. */
	g_assert_true(mount_spec_parse("src/../lib:/mnt", &m, &err));
	char *want = g_canonicalize_filename("lib", NULL);
	g_assert_cmpstr(m.host, ==, want);
	g_free(want);
	mount_spec_clear(&m);
	const char *bad[] = {"/srv",         "/srv:relative", ":/mnt",
	                     "/srv:/a/../b", "/srv:/a/./b",   "/srv:"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_false(mount_spec_parse(bad[i], &m, &err));
		g_assert_cmpint(err->code, ==, HUSK_EXIT_USAGE);
		g_assert_null(strchr(err->message, '\n'));
		g_clear_error(&err);
	}
}

static void test_json_round_trip(void)
{
	GPtrArray *specs = mounts_new();
	struct mount_spec a = {g_strdup("/srv/x \"q\""), g_strdup("/mnt/x"), true};
	struct mount_spec b = {g_strdup("/home/u/p"), g_strdup("/home/debian/p"), false};
	GError *err = NULL;

	g_ptr_array_add(specs, g_memdup2(&a, sizeof(a)));
	g_ptr_array_add(specs, g_memdup2(&b, sizeof(b)));
	char *text = mounts_to_json(specs);
	GPtrArray *back = mounts_from_json(text, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(back->len, ==, 2);
	for (guint i = 0; i < 2; i++) {
		const struct mount_spec *x = specs->pdata[i], *y = back->pdata[i];
		g_assert_cmpstr(x->host, ==, y->host);
		g_assert_cmpstr(x->guest, ==, y->guest);
		g_assert_cmpint(x->read_only, ==, y->read_only);
	}
	g_free(text);
	g_ptr_array_unref(back);
	g_ptr_array_unref(specs);
}

static void test_json_refused(void)
{
	const char *bad[] = {
	    "",
	    "{}",
	    "[1]",
	    "[{\"host\": \"/a\"}]",
	    "[{\"host\": \"a\", \"guest\": \"/b\"}]",
	    "[{\"host\": \"/a\", \"guest\": \"b\"}]",
	    "[{\"host\": \"/a\", \"guest\": \"/b/..\"}]",
	    "[{\"host\": \"/a\", \"guest\": \"/b\", \"ro\": \"yes\"}]",
	    "[{\"host\": 1, \"guest\": \"/b\"}]",
	};
	GError *err = NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_null(mounts_from_json(bad[i], &err));
		g_assert_nonnull(err);
		g_assert_null(strchr(err->message, '\n'));
		g_clear_error(&err);
	}
	/* More than MOUNTS_MAX. */
	GString *many = g_string_new("[");
	for (int i = 0; i <= MOUNTS_MAX; i++)
		g_string_append_printf(many, "%s{\"host\": \"/a\", \"guest\": \"/m%d\"}",
		                       i ? "," : "", i);
	g_string_append(many, "]");
	g_assert_null(mounts_from_json(many->str, &err));
	g_clear_error(&err);
	g_string_free(many, TRUE);
	/* ro may be left out: read-write. */
	GPtrArray *ok = mounts_from_json("[{\"host\": \"/a\", \"guest\": \"/b\"}]", &err);
	g_assert_no_error(err);
	g_assert_false(((struct mount_spec *)ok->pdata[0])->read_only);
	g_ptr_array_unref(ok);
}

static void test_file(void)
{
	char *dir = g_dir_make_tmp("husk-mounts-XXXXXX", NULL);
	char *path = g_build_filename(dir, "mounts.json", NULL);
	GError *err = NULL;
	GPtrArray *specs = mounts_load(path, &err); /* none yet: no mounts */

	g_assert_no_error(err);
	g_assert_cmpuint(specs->len, ==, 0);
	struct mount_spec a = {g_strdup(dir), g_strdup("/mnt"), false};
	g_ptr_array_add(specs, g_memdup2(&a, sizeof(a)));
	g_assert_true(mounts_save(path, specs, &err));
	g_ptr_array_unref(specs);
	specs = mounts_load(path, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(specs->len, ==, 1);
	g_assert_cmpstr(((struct mount_spec *)specs->pdata[0])->host, ==, dir);
	g_ptr_array_unref(specs);
	g_assert_true(g_file_set_contents(path, "[{]", -1, NULL));
	g_assert_null(mounts_load(path, &err));
	g_assert_true(g_str_has_prefix(err->message, path));
	g_clear_error(&err);
	/* The checks a request gets. */
	g_assert_true(mount_host_check(dir, &err));
	g_assert_false(mount_host_check(path, &err)); /* a file, not a folder */
	g_clear_error(&err);
	g_unlink(path);
	g_rmdir(dir);
	g_free(path);
	g_free(dir);
}

/* A fake agent behind a Unix socket: husk's vsock handshake, a HELLO, one answer. */
struct fake_agent {
	int listen_fd;
	uint32_t version;
	uint8_t answer_type;
	const char *answer;
	uint8_t request_type; /* what it was sent */
	char request[256];
	size_t request_len;
};

static void read_n(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		g_assert_cmpint(n, >, 0);
		p += n;
		len -= (size_t)n;
	}
}

static gpointer fake_agent_serve(gpointer data)
{
	struct fake_agent *a = data;
	int fd = accept(a->listen_fd, NULL, NULL);
	char c;
	uint8_t hello[9], hdr[5];

	do
		read_n(fd, &c, 1);
	while (c != '\n');
	g_assert_cmpint(write(fd, "OK 1\n", 5), ==, 5);
	agent_frame_header(hello, AGENT_HELLO, 4);
	memcpy(hello + 5, &a->version, 4);
	g_assert_cmpint(write(fd, hello, 9), ==, 9);
	if (a->version >= 3) { /* else husk hangs up */
		read_n(fd, hdr, 5);
		a->request_type = hdr[4];
		a->request_len = hdr[0] - 1u;
		read_n(fd, a->request, a->request_len);
		agent_frame_header(hdr, a->answer_type, (uint32_t)strlen(a->answer));
		g_assert_cmpint(write(fd, hdr, 5), ==, 5);
		/* Nothing for an empty payload: husk may have hung up once the header came. */
		if (*a->answer)
			g_assert_cmpint(write(fd, a->answer, strlen(a->answer)), ==,
			                (ssize_t)strlen(a->answer));
	}
	close(fd);
	return NULL;
}

static bool call_fake(struct fake_agent *a, const char *path, bool umount, GError **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	unlink(path);
	a->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	g_assert_cmpint(bind(a->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(listen(a->listen_fd, 1), ==, 0);
	GThread *t = g_thread_new("agent", fake_agent_serve, a);
	bool ok = mount_agent_call(path, umount, "husk-mount-3", "/mnt/x", 5, !umount, err);
	g_thread_join(t);
	close(a->listen_fd);
	unlink(path);
	return ok;
}

/* husk's side of MOUNT and UMOUNT: the request it sends, DONE, ERROR, an old agent. */
/* launch --user's check: the folder as that user will find it, not as root. */
static void test_host_check_as(void)
{
	const uid_t nobody = 65534;
	/* In /tmp, not $TMPDIR: nobody must be able to reach the folder's parent. */
	char *dir = g_mkdtemp(g_strdup("/tmp/husk-mounts-as-XXXXXX"));
	GError *err = NULL;

	if (geteuid() != 0) {
		g_test_skip("needs root to take another user's ids");
		g_rmdir(dir);
		g_free(dir);
		return;
	}
	g_assert_cmpint(chmod(dir, 0700), ==, 0);
	g_assert_true(mount_host_check(dir, NULL)); /* root may */
	g_assert_false(mount_host_check_as(dir, true, nobody, nobody, &err));
	g_assert_nonnull(strstr(err->message, "uid 65534 may not open it: Permission denied"));
	g_clear_error(&err);
	g_assert_cmpint(chmod(dir, 0755), ==, 0);
	g_assert_true(mount_host_check_as(dir, true, nobody, nobody, &err));
	g_assert_no_error(err);
	g_assert_false(mount_host_check_as(dir, false, nobody, nobody, &err));
	g_assert_nonnull(strstr(err->message, "uid 65534 may not write in it"));
	g_clear_error(&err);
	g_assert_cmpint(chown(dir, nobody, nobody), ==, 0);
	g_assert_true(mount_host_check_as(dir, false, nobody, nobody, &err));
	g_assert_no_error(err);
	g_rmdir(dir);
	g_free(dir);
}

static void test_agent_call(void)
{
	char *dir = g_dir_make_tmp("husk-agent-XXXXXX", NULL);
	char *path = g_build_filename(dir, "vsock.sock", NULL);
	struct fake_agent a = {.version = 3, .answer_type = AGENT_DONE, .answer = ""};
	struct agent_mount m;
	const char *why;
	GError *err = NULL;

	g_assert_true(call_fake(&a, path, false, &err));
	g_assert_no_error(err);
	g_assert_cmpuint(a.request_type, ==, AGENT_MOUNT);
	g_assert_true(
	    agent_mount_decode((uint8_t *)a.request, (uint32_t)a.request_len, false, &m, &why));
	g_assert_cmpstr(m.tag, ==, "husk-mount-3");
	g_assert_cmpstr(m.path, ==, "/mnt/x");
	g_assert_cmpint(m.slot, ==, 5);
	g_assert_true(m.read_only);
	agent_mount_free(&m);
	g_assert_true(call_fake(&a, path, true, &err));
	g_assert_cmpuint(a.request_type, ==, AGENT_UMOUNT);
	g_assert_true(
	    agent_mount_decode((uint8_t *)a.request, (uint32_t)a.request_len, true, &m, &why));
	agent_mount_free(&m);
	/* The agent's words, one printable line. */
	a.answer_type = AGENT_ERROR;
	a.answer = "mount of tag husk-mount-3: No such device\n\033[2J";
	g_assert_false(call_fake(&a, path, false, &err));
	g_assert_cmpstr(err->message, ==,
	                "mount: the agent: mount of tag husk-mount-3: No such device??[2J");
	g_clear_error(&err);
	a.answer_type = AGENT_EXIT;
	a.answer = "";
	g_assert_false(call_fake(&a, path, true, &err));
	g_assert_cmpstr(err->message, ==, "umount: the agent sent a frame of type 7");
	g_clear_error(&err);
	a.version = 2;
	g_assert_false(call_fake(&a, path, false, &err));
	g_assert_true(g_str_has_prefix(err->message, "mount: the guest's agent speaks version 2"));
	g_clear_error(&err);
	g_assert_false(mount_agent_call(path, false, "t", "/m", -1, false, &err));
	g_assert_true(g_str_has_prefix(err->message, "mount: "));
	g_clear_error(&err);
	g_rmdir(dir);
	g_free(path);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mounts/spec-parse", test_spec_parse);
	g_test_add_func("/mounts/json-round-trip", test_json_round_trip);
	g_test_add_func("/mounts/json-refused", test_json_refused);
	g_test_add_func("/mounts/file", test_file);
	g_test_add_func("/mounts/agent-call", test_agent_call);
	g_test_add_func("/mounts/host-check-as", test_host_check_as);
	return g_test_run();
}
