// SPDX-License-Identifier: MIT
/*
 * husk console NAME: the instance's serial console on this terminal,
 * through the control socket's "console" op. Ctrl-A d detaches; the
 * instance runs on.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "vmm/cli/instances.h"
#include "vmm/error.h"
#include "vmm/fdio.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"

#define CTRL_A 0x01

/*
 * What the user typed, escapes taken out: false once they asked to detach.
 * 'escape' carries a Ctrl-A across reads.
 */
static bool forward_input(int sock, const char *in, size_t n, bool *escape, bool raw)
{
	char out[2 * 1024];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		if (*escape) {
			*escape = false;
			if (in[i] == 'd')
				return false;
			if (in[i] != CTRL_A)
				out[len++] = CTRL_A;
			out[len++] = in[i];
		} else if (raw && in[i] == CTRL_A) {
			*escape = true;
		} else {
			out[len++] = in[i];
		}
	}
	return fdio_write_all(sock, out, len);
}

/* Copies both ways until the user detaches, or the instance's husk goes. */
static void relay(int sock, bool raw)
{
	struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
	                        {.fd = sock, .events = POLLIN}};
	bool escape = false;
	char buf[1024];

	for (;;) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			return;
		if (fds[1].revents) {
			ssize_t n = read(sock, buf, sizeof(buf));
			if (n <= 0 || !fdio_write_all(STDOUT_FILENO, buf, (size_t)n))
				return;
		}
		if (fds[0].revents) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0)
				fds[0].fd = -1; /* end of input: keep showing the console */
			else if (!forward_input(sock, buf, (size_t)n, &escape, raw))
				return;
		}
	}
}

int console_main(int argc, char **argv)
{
	GError *err = NULL;

	if (argc != 2 || argv[1][0] == '-') {
		printf("usage: husk console NAME\n\nThe instance's serial console. Ctrl-A d "
		       "detaches, Ctrl-A Ctrl-A sends Ctrl-A.\n\n" INSTANCE_EXIT_TEXT "\n");
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : HUSK_EXIT_USAGE;
	}
	struct instance *inst = instance_get(argv[1], &err);
	if (inst && (!instance_exists(inst) || !instance_running_pid(inst)))
		husk_fail(&err, HUSK_EXIT_USAGE, "%s \"%s\"",
		          instance_exists(inst) ? "not running:" : "no instance is called",
		          argv[1]);
	char *sock = inst ? instance_state_path(inst, "control.sock") : NULL;
	int fd = err ? -1 : control_open_stream(sock, "console", &err);
	g_free(sock);
	instance_free(inst);
	if (fd < 0) {
		g_prefix_error(&err, "console: ");
		return instance_cli_fail(err);
	}
	struct termios saved, raw;
	bool tty = tcgetattr(STDIN_FILENO, &saved) == 0;
	if (tty) {
		fprintf(stderr, "husk: console of %s; Ctrl-A d detaches\r\n", argv[1]);
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	relay(fd, tty);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		fputs("\nhusk: detached\n", stderr);
	}
	close(fd);
	return 0;
}
