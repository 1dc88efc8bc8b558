// SPDX-License-Identifier: MIT
/*
 * The display tests' VNC client (static: nothing to stage in the test
 * host): RFB 3.8 with no authentication and raw pixels. It takes one
 * whole picture and prints its size and the colour at each point asked
 * for, as png-probe does, then sends the keys asked for (each pressed and
 * released), so that a test can compare what a VNC viewer sees with the
 * screenshot and check that its keys reach the guest.
 *   vnc-probe [-k KEYSYM]... HOST PORT X,Y...  ->  "WIDTHxHEIGHT", "X,Y RRGGBB"...
 * KEYSYM is a number (0x61 is 'a'). Exit status 1, with one line on
 * stderr, when the server cannot be reached or breaks the protocol.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_SIDE 8192
#define MAX_KEYS 64

static int fail(const char *what)
{
	fprintf(stderr, "vnc-probe: %s\n", what);
	exit(1);
}

static void read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n <= 0)
			fail(n == 0 ? "the server closed the connection"
			            : "reading from the server failed");
		p += n;
		len -= (size_t)n;
	}
}

static void write_all(int fd, const void *buf, size_t len)
{
	if (write(fd, buf, len) != (ssize_t)len)
		fail("writing to the server failed");
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void skip(int fd, uint32_t len)
{
	uint8_t buf[256];

	while (len) {
		uint32_t n = len < sizeof(buf) ? len : sizeof(buf);
		read_all(fd, buf, n);
		len -= n;
	}
}

static int connect_to(const char *host, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 20};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		fail("the host is not an IPv4 address");
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail("cannot connect to the server");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Version, security type None, ClientInit; returns the size from ServerInit. */
static void handshake(int fd, uint16_t *w, uint16_t *h)
{
	uint8_t buf[24], n, none = 1, shared = 1;

	read_all(fd, buf, 12);
	if (memcmp(buf, "RFB 003.", 8) != 0)
		fail("the server does not speak RFB");
	write_all(fd, "RFB 003.008\n", 12);
	read_all(fd, &n, 1);
	if (n == 0)
		fail("the server refused the connection");
	uint8_t types[255];
	read_all(fd, types, n);
	if (!memchr(types, 1, n))
		fail("the server wants authentication");
	write_all(fd, &none, 1);
	read_all(fd, buf, 4);
	if (get32(buf) != 0)
		fail("the server refused security type None");
	write_all(fd, &shared, 1);
	read_all(fd, buf, 24); /* size, pixel format, the name's length */
	*w = get16(buf);
	*h = get16(buf + 2);
	skip(fd, get32(buf + 20));
	if (!*w || !*h || *w > MAX_SIDE || *h > MAX_SIDE)
		fail("the server's display size is out of range");
}

/* 32 bits a pixel, little-endian: blue, green, red, unused; raw encoding only. */
static void choose_format(int fd)
{
	static const uint8_t set_format[20] = {0, 0,   0, 0,   32, 24, 0, 1, 0, 255,
	                                       0, 255, 0, 255, 16, 8,  0, 0, 0, 0};
	static const uint8_t set_encodings[8] = {2, 0, 0, 1, 0, 0, 0, 0};

	write_all(fd, set_format, sizeof(set_format));
	write_all(fd, set_encodings, sizeof(set_encodings));
}

/* Asks for the whole display and reads updates until every pixel came. */
static uint8_t *take_picture(int fd, uint16_t w, uint16_t h)
{
	uint8_t req[10] = {
	    3, 0, 0, 0, 0, 0, (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)(h >> 8), (uint8_t)h};
	uint8_t *fb = calloc((size_t)w * h, 4);
	uint64_t got = 0;

	if (!fb)
		fail("out of memory");
	write_all(fd, req, sizeof(req));
	while (got < (uint64_t)w * h) {
		uint8_t type, buf[16];
		read_all(fd, &type, 1);
		if (type == 2) /* Bell */
			continue;
		if (type == 3) { /* ServerCutText */
			read_all(fd, buf, 7);
			skip(fd, get32(buf + 3));
			continue;
		}
		if (type != 0)
			fail("the server sent a message this client does not know");
		read_all(fd, buf, 3);
		for (uint16_t r = get16(buf + 1); r; r--) {
			read_all(fd, buf, 12);
			uint16_t x = get16(buf), y = get16(buf + 2), rw = get16(buf + 4),
			         rh = get16(buf + 6);
			if (get32(buf + 8) != 0)
				fail("the server sent an encoding other than raw");
			if ((uint32_t)x + rw > w || (uint32_t)y + rh > h)
				fail("the server sent a rectangle outside its display");
			for (uint16_t row = 0; row < rh; row++)
				read_all(fd, fb + ((size_t)(y + row) * w + x) * 4, (size_t)rw * 4);
			got += (uint64_t)rw * rh;
		}
	}
	return fb;
}

static void send_key(int fd, uint32_t keysym)
{
	for (int down = 1; down >= 0; down--) {
		uint8_t ev[8] = {4,
		                 (uint8_t)down,
		                 0,
		                 0,
		                 (uint8_t)(keysym >> 24),
		                 (uint8_t)(keysym >> 16),
		                 (uint8_t)(keysym >> 8),
		                 (uint8_t)keysym};
		write_all(fd, ev, sizeof(ev));
	}
}

int main(int argc, char **argv)
{
	uint32_t keys[MAX_KEYS];
	int nkeys = 0, opt;
	uint16_t w, h;

	while ((opt = getopt(argc, argv, "k:")) != -1) {
		if (opt != 'k' || nkeys == MAX_KEYS)
			fail("usage: vnc-probe [-k KEYSYM]... HOST PORT [X,Y]...");
		keys[nkeys++] = (uint32_t)strtoul(optarg, NULL, 0);
	}
	if (argc - optind < 2)
		fail("usage: vnc-probe [-k KEYSYM]... HOST PORT [X,Y]...");
	int fd = connect_to(argv[optind], atoi(argv[optind + 1]));
	handshake(fd, &w, &h);
	choose_format(fd);
	uint8_t *fb = take_picture(fd, w, h);
	printf("%ux%u\n", w, h);
	for (int i = optind + 2; i < argc; i++) {
		unsigned int x, y;
		if (sscanf(argv[i], "%u,%u", &x, &y) != 2 || x >= w || y >= h)
			fail("a point is not inside the display");
		const uint8_t *p = fb + ((size_t)y * w + x) * 4;
		printf("%u,%u %02x%02x%02x\n", x, y, p[2], p[1], p[0]);
	}
	fflush(stdout);
	for (int i = 0; i < nkeys; i++)
		send_key(fd, keys[i]);
	/* Let the keys arrive before the connection goes. */
	shutdown(fd, SHUT_WR);
	free(fb);
	return 0;
}
