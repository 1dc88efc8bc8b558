// SPDX-License-Identifier: MIT
/*
 * Both ends of the vsock tests (vsock-tests.sh), one static program:
 *   vsock-echo serve PORT             (guest) echo one vsock connection on PORT
 *   vsock-echo send PORT BYTES        (guest) send BYTES to host port PORT, check the echo
 *   vsock-echo unix-echo PATH         (host)  echo one connection on the Unix socket PATH
 *   vsock-echo connect PATH PORT BYTES (host) reach guest PORT through husk's
 *                                     --vsock socket PATH, send BYTES, check the echo
 *   vsock-echo agent PATH ARG...      (host) run ARG... through the guest's
 *                                     husk-agent, its output on ours, its status ours
 * The guest's modes print "HUSK-FACT key=value" lines on the console; the
 * host's say what went wrong on stderr and exit 1.
 */
/* linux/vm_sockets.h uses struct sockaddr without including its header. */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <unistd.h>

#include "firmware/husk-agent.h"

#define IDLE_MS 30000 /* a stream that moves for this long neither way has stalled */

/* The byte at 'off' of the stream: no period a lost or doubled block could hide in. */
static uint8_t pattern(uint64_t off)
{
	return (uint8_t)((off * 2654435761u) >> 13 ^ off >> 12);
}

/* Echoes what arrives until its end; the count echoed, or -1. */
static long long echo(int fd)
{
	char buf[65536];
	long long total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w <= 0)
				return -1;
			off += w;
		}
		total += n;
	}
	return n < 0 ? -1 : total;
}

/*
 * Writes 'bytes' of the pattern and reads the echo back at once (the
 * echo's buffers are finite: writing all first could stall both), then
 * half-closes. NULL if all came back intact, else why not.
 */
static const char *exchange(int fd, uint64_t bytes)
{
	static char why[128];
	uint64_t sent = 0, got = 0;
	uint8_t out[65536], in[65536];

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (got < bytes) {
		struct pollfd p = {fd, POLLIN | (sent < bytes ? POLLOUT : 0), 0};
		if (poll(&p, 1, IDLE_MS) <= 0)
			return "stalled";
		if (sent < bytes && (p.revents & POLLOUT)) {
			size_t len =
			    bytes - sent < sizeof(out) ? (size_t)(bytes - sent) : sizeof(out);
			for (size_t i = 0; i < len; i++)
				out[i] = pattern(sent + i);
			ssize_t n = write(fd, out, len);
			if (n < 0 && errno != EAGAIN)
				return "write failed";
			sent += n > 0 ? (uint64_t)n : 0;
			if (sent == bytes)
				shutdown(fd, SHUT_WR);
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(fd, in, sizeof(in));
			if (n == 0)
				break;
			if (n < 0 && errno != EAGAIN)
				return "read failed";
			for (ssize_t i = 0; i < n; i++) {
				if (in[i] != pattern(got + (uint64_t)i)) {
					snprintf(why, sizeof(why), "byte %llu differs",
					         (unsigned long long)(got + (uint64_t)i));
					return why;
				}
			}
			got += n > 0 ? (uint64_t)n : 0;
		}
	}
	if (got != bytes) {
		snprintf(why, sizeof(why), "%llu of %llu bytes came back", (unsigned long long)got,
		         (unsigned long long)bytes);
		return why;
	}
	return NULL;
}

static int vsock_socket(void)
{
	return socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

/* The cid the guest's driver read from the device's configuration. */
static void print_cid(void)
{
	unsigned int cid = 0;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) == 0)
		printf("HUSK-FACT vsock_cid=%u\n", cid);
	else
		printf("HUSK-FACT vsock_cid=unknown: %s\n", strerror(errno));
}

static int serve(unsigned int port)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int s = vsock_socket();

	print_cid();
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0) {
		printf("HUSK-FACT vsock_echoed=cannot listen: %s\n", strerror(errno));
		return 1;
	}
	printf("HUSK-VSOCK-READY\n");
	fflush(stdout);
	int fd = accept(s, NULL, NULL);
	printf("HUSK-FACT vsock_echoed=%lld\n", fd < 0 ? -1 : echo(fd));
	return 0;
}

static int send_to_host(unsigned int port, uint64_t bytes)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
	int fd = vsock_socket();
	const char *why;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("HUSK-FACT vsock_reverse=cannot connect: %s\n", strerror(errno));
		return 1;
	}
	why = exchange(fd, bytes);
	printf("HUSK-FACT vsock_reverse=%s\n", why ? why : "ok");
	return why != NULL;
}

static int unix_socket(const char *path, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa->sun_path))
		return -1;
	strcpy(sa->sun_path, path);
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static int unix_echo(const char *path)
{
	struct sockaddr_un sa;
	int s = unix_socket(path, &sa);

	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0) {
		perror(path);
		return 1;
	}
	int fd = accept(s, NULL, NULL);
	return fd < 0 || echo(fd) < 0;
}

/* "OK <port>\n", read a byte at a time: what follows is the guest's. */
static int read_ok(int fd)
{
	char line[32];
	size_t len = 0;

	while (len < sizeof(line) - 1 && read(fd, line + len, 1) == 1 && line[len] != '\n')
		len++;
	line[len] = '\0';
	if (strncmp(line, "OK ", 3) != 0) {
		fprintf(stderr, "vsock-echo: husk answered \"%s\", not OK <port>\n", line);
		return -1;
	}
	return 0;
}

/* A stream to guest port 'port' through husk's socket at 'path'; -1 if none. */
static int open_guest(const char *path, unsigned int port)
{
	struct sockaddr_un sa;
	int fd = unix_socket(path, &sa);
	char req[32];
	int len = snprintf(req, sizeof(req), "CONNECT %u\n", port);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror(path);
		return -1;
	}
	if (write(fd, req, (size_t)len) != len || read_ok(fd) < 0)
		return -1;
	return fd;
}

static int connect_guest(const char *path, unsigned int port, uint64_t bytes)
{
	int fd = open_guest(path, port);
	const char *why;

	if (fd < 0)
		return 1;
	why = exchange(fd, bytes);
	if (why)
		fprintf(stderr, "vsock-echo: %s\n", why);
	return why != NULL;
}

/* The next frame from the agent into buf (4 + AGENT_MAX_BODY bytes); false at the end. */
static bool read_frame(int fd, uint8_t *buf, struct agent_frame *f)
{
	size_t have = 0;
	long used;

	while ((used = agent_frame_parse(buf, have, f)) == 0) {
		/* Only as far as this frame: the next stays in the socket. */
		size_t body = (size_t)buf[0] | (size_t)buf[1] << 8 | (size_t)buf[2] << 16;
		ssize_t n = read(fd, buf + have, have < 4 ? 4 - have : 4 + body - have);
		if (n <= 0)
			return false;
		have += (size_t)n;
	}
	return used > 0;
}

static bool send_frame(int fd, uint8_t type, const uint8_t *payload, uint32_t len)
{
	uint8_t hdr[5];

	agent_frame_header(hdr, type, len);
	return write(fd, hdr, 5) == 5 && write(fd, payload, len) == (ssize_t)len;
}

/* An EXEC of argv[0..argc) with no input: its exit status, 128+N for signal N, 125 else. */
static int agent_exec(const char *path, int argc, char **argv)
{
	static uint8_t buf[4 + AGENT_MAX_BODY], req[AGENT_MAX_BODY];
	struct agent_frame f;
	size_t len = 0;
	int fd = open_guest(path, HUSK_AGENT_PORT);

	if (fd < 0 || !read_frame(fd, buf, &f) || f.type != AGENT_HELLO)
		return 125;
	for (int i = 0; i < argc; i++) {
		if (len + 5 + strlen(argv[i]) > sizeof(req) - 1)
			return 125;
		len += agent_field_put(req + len, AGENT_ARG, argv[i]);
	}
	if (!send_frame(fd, AGENT_EXEC, req, (uint32_t)len) || !send_frame(fd, AGENT_STDIN, req, 0))
		return 125;
	while (read_frame(fd, buf, &f)) {
		if (f.type == AGENT_STDOUT || f.type == AGENT_STDERR) {
			fwrite(f.payload, 1, f.len, f.type == AGENT_STDOUT ? stdout : stderr);
		} else if (f.type == AGENT_EXIT && f.len == 5) {
			return f.payload[0] == AGENT_KILLED ? 128 + f.payload[1] : f.payload[1];
		} else if (f.type == AGENT_ERROR) {
			fprintf(stderr, "vsock-echo: the agent: %.*s\n", (int)f.len,
			        (const char *)f.payload);
			return 125;
		}
	}
	return 125;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve((unsigned int)strtoul(argv[2], NULL, 10));
	if (argc == 4 && !strcmp(argv[1], "send"))
		return send_to_host((unsigned int)strtoul(argv[2], NULL, 10),
		                    strtoull(argv[3], NULL, 10));
	if (argc == 3 && !strcmp(argv[1], "unix-echo"))
		return unix_echo(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "connect"))
		return connect_guest(argv[2], (unsigned int)strtoul(argv[3], NULL, 10),
		                     strtoull(argv[4], NULL, 10));
	if (argc >= 4 && !strcmp(argv[1], "agent"))
		return agent_exec(argv[2], argc - 3, argv + 3);
	fprintf(stderr, "usage: vsock-echo serve PORT | send PORT BYTES | unix-echo PATH | "
	                "connect PATH PORT BYTES | agent PATH ARG...\n");
	return 2;
}
