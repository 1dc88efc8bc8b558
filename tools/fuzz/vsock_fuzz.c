// SPDX-License-Identifier: MIT
/*
 * virtio-vsock's guest-facing side: the packets a driver puts on the tx
 * queue (any header, op, length, ports and credit, split over buffers
 * as it likes), the rx buffers it offers, and what host programs do on
 * the Unix sockets meanwhile. The rings and chains are well formed
 * (virtqueue_fuzz walks hostile rings); what they carry is not.
 *
 * The input is a program of steps, each a byte naming the step and the
 * bytes it takes. The packets the device gives back are checked as a
 * driver would read them, so a wrong length or op aborts as a crash.
 * Each input starts from a reset device and no host connections, and
 * leaves none behind: what it allocated is freed before it returns, so
 * libFuzzer's leak check has no mismatch to chase after each input.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio/vsock.h"
#include "vmm/guest_memory.h"

#define RAM        (1024 * 1024)
#define QSIZE      16          /* tx, and the rx buffers offered */
#define RX_QSIZE   (2 * QSIZE) /* room in the table for split buffers */
#define TX_RING    0x0000
#define RX_RING    0x3000
#define TX_DATA    0x10000 /* one packet of up to TX_MAX bytes */
#define TX_MAX     (VSOCK_MAX_PAYLOAD + 4096)
#define RX_DATA    0x40000 /* QSIZE buffers of up to RX_BUF bytes */
#define RX_BUF     (32 * 1024)
#define HDR        ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define CID        3
#define HOST_PORTS 4 /* guest connections to host ports 1..4 find a listener */
/*
 * The device's cap on connections, lowered from VSOCK_MAX_CONNS so that
 * an input reaches it (and goes past it) with a hundred sockets, not two
 * thousand: the same code refuses, at a tenth of the cost per input.
 */
#define MAX_CONNS 32
#define HOST_FDS  512 /* host-side sockets the harness keeps open */
#define FLOOD_MAX (MAX_CONNS + 64)
#define F_NEXT    1
#define F_WRITE   2

static struct guest_memory gm;
static GMainContext *ctx;
static struct virtio_vsock *v;
static char *dir, *path;
static int port_listener[HOST_PORTS];
static struct virtqueue txq, rxq;
static uint16_t tx_used_seen, rx_used_seen;
static uint32_t rx_len[QSIZE]; /* 0: the buffer is with us, else its size with the device */
static int host_fd[HOST_FDS];
static unsigned int nhost;

/* The input, taken from the front. */
struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take_u8(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static uint32_t take_u16(struct input *in)
{
	return take_u8(in) | (uint32_t)take_u8(in) << 8;
}

/* Up to 'max' bytes; fewer if the input ends. */
static size_t take_bytes(struct input *in, void *dst, size_t max)
{
	size_t n = MIN(max, in->left);

	memcpy(dst, in->p, n);
	in->p += n;
	in->left -= n;
	return n;
}

static void set_desc(uint64_t ring, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
	uint8_t *d = gm_ptr(&gm, ring + 16ULL * i, 16);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void publish(uint64_t ring, uint16_t qsize, uint16_t head)
{
	uint16_t *avail = gm_ptr(&gm, ring + 0x1000, 4 + 2u * qsize);

	avail[2 + avail[1] % qsize] = head;
	avail[1]++;
}

static uint16_t used_idx(uint64_t ring)
{
	return *(uint16_t *)gm_ptr(&gm, ring + 0x2002, 2);
}

static void keep_host_fd(int fd)
{
	if (fd < 0)
		return;
	if (nhost == HOST_FDS)
		close(fd);
	else
		host_fd[nhost++] = fd;
}

static bool pending(int listener)
{
	struct pollfd p = {.fd = listener, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

/*
 * Takes the connections guests made to the host ports, as host programs
 * would. Only from a listener poll() finds a connection waiting: an
 * accept() that finds none makes and drops a socket file all the same,
 * which cost the target most of its time.
 */
static void accept_all(void)
{
	struct pollfd p[HOST_PORTS];

	for (int i = 0; i < HOST_PORTS; i++)
		p[i] = (struct pollfd){.fd = port_listener[i], .events = POLLIN};
	if (poll(p, HOST_PORTS, 0) <= 0)
		return;
	for (int i = 0; i < HOST_PORTS; i++) {
		if (!(p[i].revents & POLLIN))
			continue;
		do {
			int fd =
			    accept4(port_listener[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				break;
			keep_host_fd(fd);
		} while (pending(port_listener[i]));
	}
}

static void turn_loop(void)
{
	for (int i = 0; i < 8 && g_main_context_iteration(ctx, FALSE); i++)
		;
}

/* ---- the guest's side --------------------------------------------------------- */

/* What the device gave back on rx, read as a driver reads it. */
static void collect_rx(void)
{
	while (rx_used_seen != used_idx(RX_RING)) {
		uint32_t *e = gm_ptr(&gm, RX_RING + 0x2004 + 8ULL * (rx_used_seen++ % RX_QSIZE), 8);
		uint32_t id = e[0], len = e[1];
		if (id >= QSIZE || !rx_len[id] || len > rx_len[id])
			abort(); /* a buffer not offered, or written past its end */
		rx_len[id] = 0;
		if (len == 0)
			continue; /* a buffer too short for a header, given back empty */
		struct virtio_vsock_hdr h;
		memcpy(&h, gm_ptr(&gm, RX_DATA + (uint64_t)RX_BUF * id, HDR), HDR);
		if (len < HDR || HDR + h.len != len || h.src_cid != 2 || h.dst_cid != CID ||
		    h.type != VIRTIO_VSOCK_TYPE_STREAM || h.op < VIRTIO_VSOCK_OP_REQUEST ||
		    h.op > VIRTIO_VSOCK_OP_CREDIT_REQUEST || (h.len && h.op != VIRTIO_VSOCK_OP_RW))
			abort(); /* a packet no driver could take */
	}
}

/*
 * Offers every free rx buffer, 'size' bytes each, in two descriptors if
 * asked (the second from the table's upper half); then serves rx.
 */
static void serve_rx(uint8_t how, uint32_t size)
{
	size = MAX(1u, MIN(size, (uint32_t)RX_BUF));
	for (uint16_t i = 0; i < QSIZE; i++) {
		if (rx_len[i])
			continue;
		uint64_t addr = RX_DATA + (uint64_t)RX_BUF * i;
		if ((how & 1) && size > 1) {
			set_desc(RX_RING, i, addr, size / 2, F_WRITE | F_NEXT,
			         (uint16_t)(QSIZE + i));
			set_desc(RX_RING, (uint16_t)(QSIZE + i), addr + size / 2, size - size / 2,
			         F_WRITE, 0);
		} else {
			set_desc(RX_RING, i, addr, size, F_WRITE, 0);
		}
		publish(RX_RING, RX_QSIZE, i);
		rx_len[i] = size;
	}
	virtio_vsock_serve(v, &rxq, 0);
	collect_rx();
}

/* One packet on tx: a header the input fills, a payload, in one to three buffers. */
static void send_packet(struct input *in)
{
	uint8_t how = take_u8(in);
	uint32_t payload = take_u16(in) % (TX_MAX - HDR + 1);
	uint8_t *data = gm_ptr(&gm, TX_DATA, TX_MAX);
	struct virtio_vsock_hdr h = {
	    .src_cid = CID,
	    .dst_cid = 2,
	    .type = VIRTIO_VSOCK_TYPE_STREAM,
	    .buf_alloc = 64 * 1024,
	};

	if (how & 1) /* a header as the input has it, every field */
		take_bytes(in, &h, HDR);
	else { /* the fields that steer the device, the rest right */
		h.op = (uint16_t)(take_u8(in) % 8);
		h.src_port = take_u8(in);
		h.dst_port = take_u8(in) % (HOST_PORTS + 2);
		h.flags = take_u8(in) % 4;
		h.len = (how & 2) ? payload : take_u16(in);
		h.buf_alloc = (how & 4) ? take_u16(in) : h.buf_alloc;
		h.fwd_cnt = (how & 8) ? take_u16(in) : 0;
	}
	/* The payload: up to 64 bytes of input, then the 'x's set up once (put back below). */
	memcpy(data, &h, HDR);
	take_bytes(in, data + HDR, MIN(payload, 64u));

	uint32_t total = HDR + payload;
	uint32_t cut = (how & 16) ? MIN(total, take_u8(in) % (HDR + 8)) : total;
	if (cut && cut < total) {
		set_desc(TX_RING, 0, TX_DATA, cut, F_NEXT, 1);
		set_desc(TX_RING, 1, TX_DATA + cut, total - cut, (how & 32) ? F_NEXT : 0, 2);
	} else {
		set_desc(TX_RING, 0, TX_DATA, total, (how & 32) ? F_NEXT : 0, 2);
	}
	/* A writable buffer after a tx packet: the device must not answer into it. */
	set_desc(TX_RING, 2, RX_DATA, 64, F_WRITE, 0);
	publish(TX_RING, QSIZE, 0);
	virtio_vsock_serve(v, &txq, 1);
	memset(data + HDR, 'x', 64);
	if (used_idx(TX_RING) != ++tx_used_seen)
		abort(); /* every tx buffer comes back, at once */
}

/* Connection requests from many guest ports to one host port, accepted as they come. */
static void flood(struct input *in)
{
	unsigned int n = take_u16(in) % (FLOOD_MAX + 1);
	struct virtio_vsock_hdr h = {
	    .src_cid = CID,
	    .dst_cid = 2,
	    .dst_port = 1 + take_u8(in) % HOST_PORTS,
	    .type = VIRTIO_VSOCK_TYPE_STREAM,
	    .op = VIRTIO_VSOCK_OP_REQUEST,
	    .buf_alloc = 64 * 1024,
	};
	uint8_t *data = gm_ptr(&gm, TX_DATA, HDR);

	for (unsigned int i = 0; i < n; i++) {
		h.src_port = 1000 + i;
		memcpy(data, &h, HDR);
		set_desc(TX_RING, 0, TX_DATA, HDR, 0, 0);
		publish(TX_RING, QSIZE, 0);
		virtio_vsock_serve(v, &txq, 1);
		tx_used_seen++;
		if (i % 16 == 15)
			accept_all();
	}
	if (virtio_vsock_connections(v) > MAX_CONNS)
		abort();
}

/* ---- the host's side ---------------------------------------------------------- */

/* A host program connects to husk's socket and writes a line, CONNECT or not. */
static void host_connect(struct input *in)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	uint8_t how = take_u8(in);
	char line[48];
	size_t n;

	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (how & 1)
		n = take_bytes(in, line, 1 + take_u8(in) % sizeof(line));
	else
		n = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", take_u8(in));
	if (send(fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		close(fd);
		return;
	}
	keep_host_fd(fd);
}

static int pick_host_fd(struct input *in)
{
	return nhost ? host_fd[take_u8(in) % nhost] : -1;
}

static void host_write(struct input *in)
{
	static char bytes[16 * 1024];
	int fd = pick_host_fd(in);
	size_t n = (size_t)(take_u8(in) + 1) * 64;

	if (fd >= 0)
		(void)!send(fd, bytes, MIN(n, sizeof(bytes)), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void host_read(struct input *in)
{
	static char bytes[64 * 1024];
	int fd = pick_host_fd(in);

	if (fd >= 0)
		(void)!recv(fd, bytes, sizeof(bytes), MSG_DONTWAIT);
}

/* The host program closes, or shuts one way. */
static void host_close(struct input *in)
{
	if (!nhost)
		return;
	unsigned int i = take_u8(in) % nhost;
	uint8_t how = take_u8(in) % 3;
	if (how < 2) {
		shutdown(host_fd[i], how == 0 ? SHUT_WR : SHUT_RD);
		return;
	}
	close(host_fd[i]);
	host_fd[i] = host_fd[--nhost];
}

/* ---- setup and one input ------------------------------------------------------ */

static int listen_at(const char *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	g_strlcpy(sa.sun_path, p, sizeof(sa.sun_path));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		abort();
	return fd;
}

static char *port_path(int i)
{
	return g_strdup_printf("%s_%d", path, i + 1);
}

/* The sockets and their folder, gone at a normal exit (a crash or a timeout leaves them). */
static void remove_dir(void)
{
	virtio_vsock_destroy(v); /* which removes husk's socket */
	for (int i = 0; i < HOST_PORTS; i++) {
		g_autofree char *p = port_path(i);
		close(port_listener[i]);
		g_unlink(p);
	}
	g_rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct rlimit nofile;

	/* A flood keeps two sockets per connection open, host connections too. */
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = MIN(nofile.rlim_max, (rlim_t)8192);
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	if (!guest_memory_alloc(&gm, RAM))
		abort();
	/* Payload bytes no input gives, set once: a packet of 64 KiB costs no 64 KiB memset. */
	memset(gm_ptr(&gm, TX_DATA + HDR, TX_MAX - HDR), 'x', TX_MAX - HDR);
	ctx = g_main_context_new();
	dir = g_dir_make_tmp("husk-vsock-fuzz-XXXXXX", NULL);
	if (!dir)
		abort();
	path = g_build_filename(dir, "v.sock", NULL);
	for (int i = 0; i < HOST_PORTS; i++) {
		g_autofree char *p = port_path(i);
		port_listener[i] = listen_at(p);
	}
	v = virtio_vsock_create(&(struct vsock_config){.path = path, .cid = CID}, ctx, NULL);
	if (!v)
		abort();
	atexit(remove_dir);
	virtio_vsock_set_max_conns(v, MAX_CONNS);
	return 0;
}

static void close_host_fds(void)
{
	for (unsigned int i = 0; i < nhost; i++)
		close(host_fd[i]);
	nhost = 0;
}

/*
 * The state an input leaves behind, gone before it returns: the device
 * reset, every host socket closed, connections husk's listener had not
 * taken yet taken (the loop turned) and reset too.
 */
static void clean_up(void)
{
	virtio_vsock_ops.reset(v);
	close_host_fds();
	accept_all();
	close_host_fds();
	turn_loop();
	virtio_vsock_ops.reset(v);
}

/* Fresh rings, nothing offered. */
static void start(void)
{
	memset(gm.mapping, 0, 0x6000); /* both rings */
	if (!vq_init(&txq, &gm, QSIZE, TX_RING, TX_RING + 0x1000, TX_RING + 0x2000) ||
	    !vq_init(&rxq, &gm, RX_QSIZE, RX_RING, RX_RING + 0x1000, RX_RING + 0x2000))
		abort();
	tx_used_seen = rx_used_seen = 0;
	memset(rx_len, 0, sizeof(rx_len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	unsigned int flooded = 0;

	start();
	for (unsigned int steps = 0; in.left && steps < 256; steps++) {
		uint8_t step = take_u8(&in);
		switch (step % 9) {
		case 0:
		case 1:
			send_packet(&in);
			break;
		case 2: {
			/* Sizes about a header's too: short of one, one exactly, one and a byte. */
			uint32_t units = take_u8(&in);
			serve_rx(step >> 4,
			         units ? units * 128 + (step >> 5) : HDR - 1 + (step >> 5));
			break;
		}
		case 3:
			turn_loop();
			accept_all();
			break;
		case 4:
			host_connect(&in);
			break;
		case 5:
			host_write(&in);
			break;
		case 6:
			host_read(&in);
			break;
		case 7:
			host_close(&in);
			break;
		case 8:
			if (step >> 4 == 0xf && !flooded++) /* each costs a hundred sockets */
				flood(&in);
			else
				serve_rx(0, RX_BUF);
			break;
		}
		if (virtio_vsock_buffered(v) >
		    (size_t)virtio_vsock_connections(v) * VSOCK_BUF_ALLOC)
			abort();
	}
	clean_up();
	return 0;
}
