// SPDX-License-Identifier: MIT
/*
 * pty-drive: runs a command on a new terminal and plays a user at it.
 *   pty-drive ROWS COLS STEP... -- COMMAND [ARG...]
 * The terminal starts ROWS x COLS. Each STEP, in order:
 *   send:TEXT     types TEXT ("\n" in it is a newline)
 *   wait:TEXT     waits (60 s at most) until the output so far holds TEXT
 *   resize:R,C    gives the terminal a new size (its foreground gets SIGWINCH)
 * then it reads until the command ends. Everything the command wrote goes
 * to stdout; the exit status is the command's (128+N for a signal), or
 * 124 if a wait ran out, with what was awaited on stderr.
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 60000

static char seen[1 << 20];
static size_t seen_len;

/* Reads what the terminal has within 'ms'; false at its end. */
static bool pump(int master, int ms)
{
	struct pollfd p = {.fd = master, .events = POLLIN};
	char buf[4096];

	if (poll(&p, 1, ms) <= 0)
		return true;
	ssize_t n = read(master, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 && errno == EINTR;
	fwrite(buf, 1, (size_t)n, stdout);
	size_t keep =
	    (size_t)n < sizeof(seen) - 1 - seen_len ? (size_t)n : sizeof(seen) - 1 - seen_len;
	memcpy(seen + seen_len, buf, keep);
	seen_len += keep;
	seen[seen_len] = '\0';
	return true;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool wait_for(int master, const char *text)
{
	long end = now_ms() + WAIT_MS;

	while (!strstr(seen, text)) {
		if (now_ms() > end || !pump(master, 100)) {
			fprintf(stderr, "pty-drive: never saw \"%s\"\n", text);
			return false;
		}
	}
	return true;
}

static void send_text(int master, const char *text)
{
	for (const char *p = text; *p; p++) {
		char c = *p;
		if (p[0] == '\\' && p[1] == 'n') {
			c = '\n';
			p++;
		}
		if (write(master, &c, 1) != 1)
			return;
	}
}

static bool step(int master, const char *s)
{
	if (!strncmp(s, "send:", 5)) {
		send_text(master, s + 5);
	} else if (!strncmp(s, "wait:", 5)) {
		return wait_for(master, s + 5);
	} else if (!strncmp(s, "resize:", 7)) {
		struct winsize ws = {0};
		if (sscanf(s + 7, "%hu,%hu", &ws.ws_row, &ws.ws_col) != 2)
			return false;
		ioctl(master, TIOCSWINSZ, &ws);
		pump(master, 300); /* time for the resize to reach the far end */
	} else {
		fprintf(stderr, "pty-drive: unknown step \"%s\"\n", s);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	int sep = 3;

	while (sep < argc && strcmp(argv[sep], "--"))
		sep++;
	if (argc < 4 || sep + 1 >= argc) {
		fprintf(stderr, "usage: pty-drive ROWS COLS STEP... -- COMMAND [ARG...]\n");
		return 2;
	}
	struct winsize ws = {.ws_row = (unsigned short)atoi(argv[1]),
	                     .ws_col = (unsigned short)atoi(argv[2])};
	int master;
	pid_t pid = forkpty(&master, NULL, NULL, &ws);
	if (pid < 0) {
		perror("pty-drive: forkpty");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[sep + 1], argv + sep + 1);
		perror("pty-drive: exec");
		_exit(127);
	}
	for (int i = 3; i < sep; i++) {
		if (!step(master, argv[i])) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return 124;
		}
	}
	long end = now_ms() + WAIT_MS;
	while (pump(master, 100) && now_ms() < end)
		;
	int status;
	if (waitpid(pid, &status, now_ms() < end ? 0 : WNOHANG) != pid) {
		fprintf(stderr, "pty-drive: the command did not end\n");
		kill(pid, SIGKILL);
		return 124;
	}
	fflush(stdout);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
