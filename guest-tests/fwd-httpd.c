// SPDX-License-Identifier: MIT
/*
 * The forwarded-port tests' web server, in the network guest:
 *   fwd-httpd PORT FILE
 * answers every request on PORT with FILE, each connection in a child.
 *
 * busybox httpd listens with a backlog of 9: twenty visitors at once
 * overflow the guest kernel's listen queue, which then drops or resets
 * connections whatever the VMM does. This one listens as most servers do,
 * with a backlog of 128, so the tests measure the forwarding.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char page[4096];
static size_t page_len;

static void write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n <= 0)
			return;
		p += n, len -= (size_t)n;
	}
}

/* Reads the request up to its blank line (or the client's end), then answers. */
static void serve(int fd)
{
	char req[4096], head[128];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(req) - 1 && (n = read(fd, req + got, sizeof(req) - 1 - got)) > 0) {
		got += (size_t)n;
		req[got] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	int len = snprintf(head, sizeof(head),
	                   "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
	                   page_len);
	write_all(fd, head, (size_t)len);
	write_all(fd, page, page_len);
}

static int listen_on(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0) {
		perror("fwd-httpd");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	FILE *f = argc == 3 ? fopen(argv[2], "r") : NULL;

	if (!f) {
		fprintf(stderr, "usage: fwd-httpd PORT FILE (a readable file)\n");
		return 2;
	}
	page_len = fread(page, 1, sizeof(page), f);
	fclose(f);
	int fd = listen_on(atoi(argv[1]));
	signal(SIGCHLD, SIG_IGN); /* no zombies */
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0)
			continue;
		if (fork() == 0) {
			close(fd);
			serve(c);
			_exit(0);
		}
		close(c);
	}
}
