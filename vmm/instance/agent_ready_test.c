// SPDX-License-Identifier: MIT
/*
 * The HELLO listener against good and hostile connections: a HELLO counts
 * once, anything else (cut short, another version, random bytes, a flood
 * of silent connections) counts never and leaves the listener working.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "firmware/husk-agent.h"
#include "vmm/instance/agent_ready.h"

struct seen {
	unsigned int hellos;
	uint32_t version;
};

static void on_hello(void *opaque, uint32_t version)
{
	struct seen *s = opaque;

	s->hellos++;
	s->version = version;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_strlcpy(a.sun_path, path, sizeof(a.sun_path));
	g_assert_cmpint(connect(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
	return fd;
}

/* Runs the loop for a while: long enough for the listener to take what was sent. */
static void spin(GMainContext *ctx, int ms)
{
	gint64 end = g_get_monotonic_time() + ms * 1000;

	while (g_get_monotonic_time() < end)
		g_main_context_iteration(ctx, FALSE), g_usleep(1000);
}

static void send_and_close(GMainContext *ctx, const char *path, const void *p, size_t len)
{
	int fd = connect_to(path);

	g_assert_cmpint(write(fd, p, len), ==, (ssize_t)len);
	close(fd);
	spin(ctx, 30);
}

static void hello_bytes(uint8_t out[9], uint32_t version)
{
	agent_frame_header(out, AGENT_HELLO, 4);
	for (int i = 0; i < 4; i++)
		out[5 + i] = (uint8_t)(version >> (8 * i));
}

static void test_listener(void)
{
	GMainContext *ctx = g_main_context_new();
	char *dir = g_dir_make_tmp("husk-ready-XXXXXX", NULL);
	char *path = g_build_filename(dir, "vsock.sock_1024", NULL);
	struct seen s = {0};
	uint8_t hello[9];
	struct agent_ready *r = agent_ready_start(path, ctx, on_hello, &s, NULL);

	g_assert_nonnull(r);
	hello_bytes(hello, AGENT_VERSION);
	send_and_close(ctx, path, hello, sizeof(hello));
	g_assert_cmpuint(s.hellos, ==, 1);
	g_assert_cmpuint(s.version, ==, AGENT_VERSION);
	/* Cut short, another version, another frame type: nothing. */
	send_and_close(ctx, path, hello, 8);
	hello_bytes(hello, AGENT_VERSION + 1);
	send_and_close(ctx, path, hello, sizeof(hello));
	hello_bytes(hello, 1);
	hello[4] = AGENT_EXIT;
	send_and_close(ctx, path, hello, sizeof(hello));
	g_assert_cmpuint(s.hellos, ==, 1);
	/* Silent connections past the limit are hung up on; a HELLO still counts. */
	int silent[AGENT_READY_MAX_CONNS + 4];
	for (size_t i = 0; i < G_N_ELEMENTS(silent); i++) {
		silent[i] = connect_to(path);
		spin(ctx, 5); /* taken one by one: a full backlog would block connect() */
	}
	spin(ctx, 50);
	char byte;
	unsigned int hung_up = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(silent); i++) {
		struct timeval tv = {.tv_usec = 1000};
		setsockopt(silent[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		hung_up += read(silent[i], &byte, 1) == 0;
	}
	g_assert_cmpuint(hung_up, ==, 4);
	for (size_t i = 0; i < G_N_ELEMENTS(silent); i++)
		close(silent[i]);
	spin(ctx, 50);
	hello_bytes(hello, 1);
	send_and_close(ctx, path, hello, sizeof(hello));
	g_assert_cmpuint(s.hellos, ==, 2);
	g_assert_cmpuint(s.version, ==, 1);
	/* Random bytes, the same each run: a HELLO only when they happen to be one. */
	GRand *g = g_rand_new_with_seed(0x68656c6c);
	for (int n = 0; n < 200; n++) {
		uint8_t junk[16];
		size_t len = (size_t)g_rand_int_range(g, 0, sizeof(junk));
		for (size_t i = 0; i < len; i++)
			junk[i] = (uint8_t)g_rand_int_range(g, 0, 4)
			              ? (uint8_t)g_rand_int_range(g, 0, 10)
			              : (uint8_t)g_rand_int(g);
		int fd = connect_to(path);
		if (len)
			g_assert_cmpint(write(fd, junk, len), ==, (ssize_t)len);
		close(fd);
		spin(ctx, 2);
	}
	spin(ctx, 50);
	g_assert_cmpuint(s.hellos, ==, 2);
	g_rand_free(g);
	agent_ready_stop(r);
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	g_rmdir(dir);
	g_free(path);
	g_free(dir);
	g_main_context_unref(ctx);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/agent-ready/listener", test_listener);
	return g_test_run();
}
