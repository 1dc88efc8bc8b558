// SPDX-License-Identifier: MIT
/*
 * virtio-vsock against a fake driver: real split rings in a fake guest
 * memory, real Unix sockets on the host side, the device's I/O loop
 * turned by hand. The driver keeps the rx ring full of 4 KiB buffers
 * unless a test says otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/virtio_vsock.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/virtio/vsock.h"
#include "vmm/layout.h"

#define QSIZE     64  /* the rings' size unless a test asks for more */
#define QSIZE_MAX 512 /* more than one kick's budget (VQ_BURST) */
#define RX_RING   0x10000
#define TX_RING   0x20000 /* each ring: table, avail at +0x2000, used at +0x3000 */
#define AVAIL     0x2000
#define USED      0x3000
#define RX_DATA   0x100000 /* QSIZE_MAX buffers of BUF bytes */
#define TX_DATA   0x400000
#define BUF       4096
#define TX_BUF    (VSOCK_MAX_PAYLOAD + 8192)
#define HDR       ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define CID       3
#define RX        0
#define TX        1
#define F_WRITE   2
#define F_NEXT    1
#define MAX_PKTS  4096
#define FAKE_T    ((struct virtio_pci *)&fake_transport)

/*
 * The transport, faked at link time for the tests that attach it: a
 * wake is counted, as the real one would schedule another kick.
 */
static int fake_transport;
static unsigned int wakes[2];

void virtio_pci_wake(struct virtio_pci *t, unsigned int q)
{
	g_assert_true(t == FAKE_T);
	g_assert_cmpuint(q, <, G_N_ELEMENTS(wakes));
	wakes[q]++;
}

void virtio_pci_used(struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
}

struct pkt {
	struct virtio_vsock_hdr h;
	uint8_t data[BUF];
};

struct drv {
	struct guest_memory gm;
	struct virtqueue rxq, txq;
	uint16_t rx_used_seen, tx_used_seen;
	uint16_t qsize;         /* both rings' */
	bool rx_out[QSIZE_MAX]; /* offered and not yet given back */
	bool rx_starved;        /* offer nothing */
	uint32_t rx_len;        /* the length of the rx buffers offered: BUF if 0 */
	unsigned int rx_empty;  /* rx buffers given back with nothing written */
	GMainContext *ctx;
	struct virtio_vsock *v;
	char *dir, *path;
	struct pkt *pkts; /* what the device sent, in order */
	unsigned int npkts;
	unsigned int ops[VIRTIO_VSOCK_OP_CREDIT_REQUEST + 1]; /* packets of each op, ever */
};

static void set_desc(struct drv *d, uint64_t ring, uint16_t i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
	uint8_t *p = gm_ptr(&d->gm, ring + 16ULL * i, 16);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void publish(struct drv *d, uint64_t ring, uint16_t head)
{
	uint16_t *avail = gm_ptr(&d->gm, ring + AVAIL, 4 + 2 * d->qsize);

	avail[2 + avail[1] % d->qsize] = head;
	avail[1]++;
}

static uint16_t used_idx(struct drv *d, uint64_t ring)
{
	return *(uint16_t *)gm_ptr(&d->gm, ring + USED + 2, 2);
}

static void used_entry(struct drv *d, uint64_t ring, uint16_t slot, uint32_t *id, uint32_t *len)
{
	uint32_t *e = gm_ptr(&d->gm, ring + USED + 4 + 8ULL * (slot % d->qsize), 8);

	*id = e[0];
	*len = e[1];
}

static void offer_rx(struct drv *d)
{
	for (uint16_t i = 0; i < d->qsize && !d->rx_starved; i++) {
		if (d->rx_out[i])
			continue;
		set_desc(d, RX_RING, i, RX_DATA + (uint64_t)BUF * i, d->rx_len ? d->rx_len : BUF,
		         F_WRITE, 0);
		publish(d, RX_RING, i);
		d->rx_out[i] = true;
	}
}

/* Takes what the device gave back in rx: checks it is well formed, records it. */
static void collect_rx(struct drv *d)
{
	while (d->rx_used_seen != used_idx(d, RX_RING)) {
		uint32_t id, len;
		used_entry(d, RX_RING, d->rx_used_seen++, &id, &len);
		g_assert_cmpuint(id, <, d->qsize);
		g_assert_true(d->rx_out[id]);
		d->rx_out[id] = false;
		if (len == 0) {
			d->rx_empty++;
			continue;
		}
		g_assert_cmpuint(len, >=, HDR);
		g_assert_cmpuint(len, <=, BUF);
		g_assert_cmpuint(d->npkts, <, MAX_PKTS);
		struct pkt *p = &d->pkts[d->npkts++];
		memcpy(p, gm_ptr(&d->gm, RX_DATA + (uint64_t)BUF * id, len), len);
		g_assert_cmpuint(p->h.src_cid, ==, 2);
		g_assert_cmpuint(p->h.dst_cid, ==, CID);
		g_assert_cmpuint(p->h.type, ==, VIRTIO_VSOCK_TYPE_STREAM);
		g_assert_cmpuint(p->h.op, >=, VIRTIO_VSOCK_OP_REQUEST);
		g_assert_cmpuint(p->h.op, <=, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
		g_assert_cmpuint(HDR + p->h.len, ==, len);
		g_assert_true(p->h.op == VIRTIO_VSOCK_OP_RW || p->h.len == 0);
		d->ops[p->h.op]++;
	}
}

/* Turns the I/O loop and the rx queue until neither has more to do. */
static void settle(struct drv *d)
{
	for (int i = 0; i < 64; i++) {
		while (g_main_context_iteration(d->ctx, FALSE))
			;
		offer_rx(d);
		uint16_t before = used_idx(d, RX_RING);
		virtio_vsock_serve(d->v, &d->rxq, RX);
		collect_rx(d);
		if (before == used_idx(d, RX_RING) && !g_main_context_pending(d->ctx))
			return;
	}
}

/* Sends one packet in a single readable buffer, then lets the device answer. */
static void send_raw(struct drv *d, const void *bytes, uint32_t len)
{
	static uint16_t slot;
	uint16_t i = slot++ % d->qsize;
	uint64_t addr = TX_DATA + (uint64_t)TX_BUF * (i % 4);

	g_assert_cmpuint(len, <=, TX_BUF);
	memcpy(gm_ptr(&d->gm, addr, len), bytes, len);
	set_desc(d, TX_RING, i, addr, len, 0, 0);
	publish(d, TX_RING, i);
	virtio_vsock_serve(d->v, &d->txq, TX);
	d->tx_used_seen = used_idx(d, TX_RING);
	settle(d);
}

static struct virtio_vsock_hdr hdr(uint16_t op, uint32_t host_port, uint32_t guest_port)
{
	return (struct virtio_vsock_hdr){.src_cid = CID,
	                                 .dst_cid = 2,
	                                 .src_port = guest_port,
	                                 .dst_port = host_port,
	                                 .type = VIRTIO_VSOCK_TYPE_STREAM,
	                                 .op = op,
	                                 .buf_alloc = 256 * 1024};
}

static void send_pkt(struct drv *d, struct virtio_vsock_hdr h, const void *data, uint32_t len)
{
	uint8_t *b = g_malloc(HDR + len);

	h.len = len;
	memcpy(b, &h, HDR);
	if (len)
		memcpy(b + HDR, data, len);
	send_raw(d, b, HDR + len);
	g_free(b);
}

/* A driver with rings of 'qsize' entries (at most QSIZE_MAX). */
static void drv_setup_sized(struct drv *d, uint16_t qsize)
{
	memset(d, 0, sizeof(*d));
	g_assert_cmpuint(qsize, <=, QSIZE_MAX);
	d->qsize = qsize;
	g_assert_true(guest_memory_alloc(&d->gm, 8 * MiB));
	g_assert_true(vq_init(&d->rxq, &d->gm, qsize, RX_RING, RX_RING + AVAIL, RX_RING + USED));
	g_assert_true(vq_init(&d->txq, &d->gm, qsize, TX_RING, TX_RING + AVAIL, TX_RING + USED));
	d->pkts = g_new0(struct pkt, MAX_PKTS);
	d->ctx = g_main_context_new();
	d->dir = g_dir_make_tmp("vsock-XXXXXX", NULL);
	d->path = g_build_filename(d->dir, "v.sock", NULL);
	struct vsock_config cfg = {.path = d->path, .cid = CID};
	d->v = virtio_vsock_create(&cfg, d->ctx, NULL);
	g_assert_nonnull(d->v);
}

static void drv_setup(struct drv *d)
{
	drv_setup_sized(d, QSIZE);
}

static void drv_teardown(struct drv *d)
{
	virtio_vsock_destroy(d->v);
	g_assert_false(g_file_test(d->path, G_FILE_TEST_EXISTS));
	g_rmdir(d->dir);
	g_free(d->dir);
	g_free(d->path);
	g_free(d->pkts);
	g_main_context_unref(d->ctx);
	guest_memory_free(&d->gm);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	return fd;
}

static int unix_listen(const char *path, int backlog)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(listen(fd, backlog), ==, 0);
	return fd;
}

static void set_nonblock(int fd)
{
	g_assert_cmpint(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), ==, 0);
}

static struct pkt *last(struct drv *d)
{
	g_assert_cmpuint(d->npkts, >, 0);
	return &d->pkts[d->npkts - 1];
}

/* Reads exactly 'len' bytes from a blocking socket. */
static void read_all(int fd, void *buf, size_t len)
{
	g_assert_cmpint(recv(fd, buf, len, MSG_WAITALL), ==, (ssize_t)len);
}

/*
 * The host connects to guest port 52 through the device's socket: the
 * guest hears a REQUEST, accepts, and the host reads "OK <port>".
 */
static int host_connect(struct drv *d, uint32_t *host_port)
{
	int fd = unix_connect(d->path);
	char ok[32] = {0};

	g_assert_cmpint(write(fd, "CONNECT 52\n", 11), ==, 11);
	settle(d);
	struct pkt *p = last(d);
	g_assert_cmpuint(p->h.op, ==, VIRTIO_VSOCK_OP_REQUEST);
	g_assert_cmpuint(p->h.dst_port, ==, 52);
	*host_port = p->h.src_port;
	send_pkt(d, hdr(VIRTIO_VSOCK_OP_RESPONSE, *host_port, 52), NULL, 0);
	g_assert_cmpint(read(fd, ok, sizeof(ok) - 1), >, 0);
	g_autofree char *want = g_strdup_printf("OK %u\n", *host_port);
	g_assert_cmpstr(ok, ==, want);
	return fd;
}

static void test_host_connects(void)
{
	struct drv d;
	uint32_t port;
	char buf[16] = {0};

	drv_setup(&d);
	int fd = host_connect(&d, &port);
	g_assert_cmpint(write(fd, "hello", 5), ==, 5);
	settle(&d);
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_RW);
	g_assert_cmpmem(last(&d)->data, last(&d)->h.len, "hello", 5);
	send_pkt(&d, hdr(VIRTIO_VSOCK_OP_RW, port, 52), "world", 5);
	read_all(fd, buf, 5);
	g_assert_cmpstr(buf, ==, "world");
	/* The host's end: SHUTDOWN(SEND); the guest's close: both ways, answered by RST. */
	close(fd);
	settle(&d);
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_SHUTDOWN);
	g_assert_cmpuint(last(&d)->h.flags, ==, VIRTIO_VSOCK_SHUTDOWN_SEND);
	struct virtio_vsock_hdr sh = hdr(VIRTIO_VSOCK_OP_SHUTDOWN, port, 52);
	sh.flags = 3;
	send_pkt(&d, sh, NULL, 0);
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_RST);
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 0);
	drv_teardown(&d);
}

static void test_host_connect_refused(void)
{
	struct drv d;
	char buf[8];

	drv_setup(&d);
	int fd = unix_connect(d.path);
	g_assert_cmpint(write(fd, "CONNECT 7\n", 10), ==, 10);
	settle(&d);
	send_pkt(&d, hdr(VIRTIO_VSOCK_OP_RST, last(&d)->h.src_port, 7), NULL, 0);
	g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, 0);
	close(fd);
	/* Not a CONNECT line: closed, and the guest hears nothing. */
	unsigned int before = d.npkts;
	const char *bad[] = {"HELLO 1\n", "CONNECT -1\n", "CONNECT 99999999999\n", "CONNECT 1 2\n",
	                     "CONNECT                              1\n"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		fd = unix_connect(d.path);
		g_assert_cmpint(write(fd, bad[i], strlen(bad[i])), ==, (ssize_t)strlen(bad[i]));
		settle(&d);
		/* Closed: at its end, or reset with the too long line's rest unread. */
		g_assert_cmpint(read(fd, buf, sizeof(buf)), <=, 0);
		close(fd);
	}
	g_assert_cmpuint(d.npkts, ==, before);
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 0);
	drv_teardown(&d);
}

/*
 * A host that never writes its CONNECT line, and one whose REQUEST the
 * guest never answers: both closed after the handshake's 5 s, the guest
 * told of the second.
 */
static void test_handshake_deadline(void)
{
	struct drv d;
	char c;

	drv_setup(&d);
	int silent = unix_connect(d.path);
	int unanswered = unix_connect(d.path);
	g_assert_cmpint(write(unanswered, "CONNECT 9\n", 10), ==, 10);
	settle(&d);
	uint32_t port = last(&d)->h.src_port;
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_REQUEST);
	gint64 t0 = g_get_monotonic_time();
	while (virtio_vsock_connections(d.v) && g_get_monotonic_time() - t0 < 10 * G_USEC_PER_SEC)
		g_main_context_iteration(d.ctx, TRUE);
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 4 * G_USEC_PER_SEC);
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 0);
	settle(&d);
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_RST);
	g_assert_cmpuint(last(&d)->h.src_port, ==, port);
	g_assert_cmpint(read(silent, &c, 1), ==, 0);
	g_assert_cmpint(read(unanswered, &c, 1), ==, 0);
	close(silent);
	close(unanswered);
	drv_teardown(&d);
}

static void test_guest_connects(void)
{
	struct drv d;
	char buf[16] = {0};

	drv_setup(&d);
	char *lpath = g_strdup_printf("%s_1234", d.path);
	int lfd = unix_listen(lpath, 8);
	send_pkt(&d, hdr(VIRTIO_VSOCK_OP_REQUEST, 1234, 5000), NULL, 0);
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_RESPONSE);
	g_assert_cmpuint(last(&d)->h.src_port, ==, 1234);
	g_assert_cmpuint(last(&d)->h.dst_port, ==, 5000);
	g_assert_cmpuint(last(&d)->h.buf_alloc, ==, VSOCK_BUF_ALLOC);
	int fd = accept(lfd, NULL, NULL);
	send_pkt(&d, hdr(VIRTIO_VSOCK_OP_RW, 1234, 5000), "ping", 4);
	read_all(fd, buf, 4);
	g_assert_cmpstr(buf, ==, "ping");
	g_assert_cmpint(write(fd, "pong", 4), ==, 4);
	settle(&d);
	g_assert_cmpmem(last(&d)->data, last(&d)->h.len, "pong", 4);
	/* Half closed: the host reads its end, and may still write. */
	struct virtio_vsock_hdr sh = hdr(VIRTIO_VSOCK_OP_SHUTDOWN, 1234, 5000);
	sh.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	send_pkt(&d, sh, NULL, 0);
	g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, 0);
	g_assert_cmpint(write(fd, "late", 4), ==, 4);
	settle(&d);
	g_assert_cmpmem(last(&d)->data, last(&d)->h.len, "late", 4);
	/* The guest's RST ends it, unanswered. */
	unsigned int before = d.npkts;
	send_pkt(&d, hdr(VIRTIO_VSOCK_OP_RST, 1234, 5000), NULL, 0);
	g_assert_cmpuint(d.npkts, ==, before);
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 0);
	g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, 0);
	/* Nobody listening on the port: refused. */
	send_pkt(&d, hdr(VIRTIO_VSOCK_OP_REQUEST, 4321, 5001), NULL, 0);
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_RST);
	g_assert_cmpuint(last(&d)->h.dst_port, ==, 5001);
	close(fd);
	close(lfd);
	g_unlink(lpath);
	g_free(lpath);
	drv_teardown(&d);
}

/* Bytes of RW the device sent on host port 'port' since packet 'from'. */
static size_t data_sent(struct drv *d, unsigned int from, uint32_t port)
{
	size_t n = 0;

	for (unsigned int i = from; i < d->npkts; i++)
		if (d->pkts[i].h.op == VIRTIO_VSOCK_OP_RW && d->pkts[i].h.src_port == port)
			n += d->pkts[i].h.len;
	return n;
}

/* The device sends no more than the guest's credit, and goes on once it grows. */
static void test_credit_respected(void)
{
	struct drv d;
	uint32_t port;
	static uint8_t big[65536];

	drv_setup(&d);
	int fd = host_connect(&d, &port);
	struct virtio_vsock_hdr cu = hdr(VIRTIO_VSOCK_OP_CREDIT_UPDATE, port, 52);
	cu.buf_alloc = 10000;
	send_pkt(&d, cu, NULL, 0);
	unsigned int from = d.npkts;
	g_assert_cmpint(write(fd, big, sizeof(big)), ==, sizeof(big));
	settle(&d);
	g_assert_cmpuint(data_sent(&d, from, port), ==, 10000);
	cu.fwd_cnt = 4000;
	send_pkt(&d, cu, NULL, 0);
	g_assert_cmpuint(data_sent(&d, from, port), ==, 14000);
	/* A fwd_cnt beyond what was sent makes no credit, not a huge one. */
	cu.fwd_cnt = 100000;
	send_pkt(&d, cu, NULL, 0);
	g_assert_cmpuint(data_sent(&d, from, port), ==, 14000);
	/* CREDIT_REQUEST: the device tells its own. */
	cu.op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
	send_pkt(&d, cu, NULL, 0);
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	g_assert_cmpuint(last(&d)->h.buf_alloc, ==, VSOCK_BUF_ALLOC);
	close(fd);
	drv_teardown(&d);
}

/*
 * A guest whose rx buffers hold a header and nothing more: control packets
 * fit, data waits, and goes as soon as larger buffers come, with no
 * credit update or other packet from the guest first.
 */
static void test_header_only_buffers(void)
{
	struct drv d;
	uint32_t port;

	drv_setup(&d);
	d.rx_len = HDR;
	int fd = host_connect(&d, &port);
	unsigned int from = d.npkts;
	g_assert_cmpint(write(fd, "hello", 5), ==, 5);
	settle(&d);
	g_assert_cmpuint(data_sent(&d, from, port), ==, 0);
	d.rx_len = 0;
	settle(&d);
	g_assert_cmpuint(data_sent(&d, from, port), ==, 5);
	g_assert_cmpuint(d.rx_empty, >, 0); /* the small ones came back empty, not kept */
	g_assert_cmpmem(last(&d)->data, last(&d)->h.len, "hello", 5);
	close(fd);
	drv_teardown(&d);
}

/*
 * The host writes and the guest never reads (no rx buffers): husk holds
 * nothing, the host's writes stop at its socket's buffer. Then the guest
 * reads, within its credit.
 */
static void test_guest_never_reads(void)
{
	struct drv d;
	uint32_t port;
	static uint8_t chunk[65536];
	size_t written = 0;

	drv_setup(&d);
	int fd = host_connect(&d, &port);
	unsigned int from = d.npkts;
	set_nonblock(fd);
	d.rx_starved = true; /* the buffers already offered fill, and no more come */
	for (int i = 0; i < 1000; i++) {
		ssize_t n = write(fd, chunk, sizeof(chunk));
		settle(&d);
		g_assert_cmpuint(virtio_vsock_buffered(d.v), ==, 0);
		if (n < 0) {
			g_assert_cmpint(errno, ==, EAGAIN);
			break;
		}
		written += (size_t)n;
	}
	g_assert_cmpuint(written, <, 1000 * sizeof(chunk));
	g_test_message("host wrote %zu bytes to a guest that never read; husk held 0", written);
	d.rx_starved = false;
	settle(&d);
	g_assert_cmpuint(data_sent(&d, from, port), ==, MIN(written, 256 * 1024));
	close(fd);
	drv_teardown(&d);
}

/*
 * The guest writes within its credit and the host never reads: husk holds
 * at most VSOCK_BUF_ALLOC; a guest that writes past its credit is reset.
 */
static void test_host_never_reads(void)
{
	struct drv d;
	static uint8_t chunk[4096];
	size_t held = 0;

	drv_setup(&d);
	char *lpath = g_strdup_printf("%s_80", d.path);
	int lfd = unix_listen(lpath, 8);
	send_pkt(&d, hdr(VIRTIO_VSOCK_OP_REQUEST, 80, 6000), NULL, 0);
	uint32_t fwd = last(&d)->h.fwd_cnt, sent = 0;
	int fd = accept(lfd, NULL, NULL);
	for (int i = 0; i < 10000; i++) {
		for (unsigned int j = 0; j < d.npkts; j++)
			if (d.pkts[j].h.src_port == 80)
				fwd = d.pkts[j].h.fwd_cnt;
		if (sent + sizeof(chunk) - fwd > VSOCK_BUF_ALLOC)
			break;
		send_pkt(&d, hdr(VIRTIO_VSOCK_OP_RW, 80, 6000), chunk, sizeof(chunk));
		sent += sizeof(chunk);
		held = MAX(held, virtio_vsock_buffered(d.v));
		g_assert_cmpuint(virtio_vsock_buffered(d.v), <=, VSOCK_BUF_ALLOC);
	}
	g_assert_cmpuint(held, ==, VSOCK_BUF_ALLOC);
	g_test_message("guest wrote %u bytes to a host that never read; husk held at most %zu",
	               sent, held);
	/* Past the credit: reset, the buffer gone. */
	for (int i = 0; i < 20 && virtio_vsock_connections(d.v); i++)
		send_pkt(&d, hdr(VIRTIO_VSOCK_OP_RW, 80, 6000), chunk, sizeof(chunk));
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_RST);
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 0);
	g_assert_cmpuint(virtio_vsock_buffered(d.v), ==, 0);
	close(fd);
	close(lfd);
	g_unlink(lpath);
	g_free(lpath);
	drv_teardown(&d);
}

/* A flood of REQUESTs: VSOCK_MAX_CONNS accepted, the rest refused. */
static void test_request_flood(void)
{
	struct drv d;
	unsigned int accepted = 0, refused = 0;

	drv_setup(&d);
	char *lpath = g_strdup_printf("%s_9", d.path);
	int lfd = unix_listen(lpath, 4096);
	set_nonblock(lfd);
	for (uint32_t p = 0; p < VSOCK_MAX_CONNS + 200; p++) {
		send_pkt(&d, hdr(VIRTIO_VSOCK_OP_REQUEST, 9, 10000 + p), NULL, 0);
		int fd = accept(lfd, NULL, NULL);
		if (fd >= 0)
			close(fd); /* the host's side is gone: husk finds out as it writes */
		for (unsigned int i = 0; i < d.npkts; i++) {
			if (d.pkts[i].h.dst_port != 10000 + p)
				continue;
			accepted += d.pkts[i].h.op == VIRTIO_VSOCK_OP_RESPONSE;
			refused += d.pkts[i].h.op == VIRTIO_VSOCK_OP_RST;
		}
		d.npkts = 0;
	}
	/* The host hung up on each, but a connection lasts until the guest closes it. */
	g_assert_cmpuint(accepted, ==, VSOCK_MAX_CONNS);
	g_assert_cmpuint(refused, ==, 200);
	g_assert_cmpuint(virtio_vsock_connections(d.v), <=, VSOCK_MAX_CONNS);
	/* A reset of the device ends them all. */
	virtio_vsock_ops.reset(d.v);
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 0);
	close(lfd);
	g_unlink(lpath);
	g_free(lpath);
	drv_teardown(&d);
}

/*
 * With the cap lowered (as the fuzzer does, to reach it with fewer
 * sockets) it holds on both sides: guest REQUESTs beyond it are reset,
 * host connections beyond it closed unanswered.
 */
static void test_lowered_cap(void)
{
	struct drv d;
	unsigned int accepted = 0, refused = 0;
	char buf[8];

	drv_setup(&d);
	virtio_vsock_set_max_conns(d.v, 8);
	char *lpath = g_strdup_printf("%s_9", d.path);
	int lfd = unix_listen(lpath, 64);
	for (uint32_t p = 0; p < 12; p++)
		send_pkt(&d, hdr(VIRTIO_VSOCK_OP_REQUEST, 9, 10000 + p), NULL, 0);
	for (unsigned int i = 0; i < d.npkts; i++) {
		accepted += d.pkts[i].h.op == VIRTIO_VSOCK_OP_RESPONSE;
		refused += d.pkts[i].h.op == VIRTIO_VSOCK_OP_RST;
	}
	g_assert_cmpuint(accepted, ==, 8);
	g_assert_cmpuint(refused, ==, 4);
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 8);
	int fd = unix_connect(d.path);
	g_assert_cmpint(write(fd, "CONNECT 52\n", 11), ==, 11);
	settle(&d);
	g_assert_cmpint(read(fd, buf, sizeof(buf)), <=, 0);
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 8);
	close(fd);
	close(lfd);
	g_unlink(lpath);
	g_free(lpath);
	drv_teardown(&d);
}

/*
 * The device's searches of its queues, counted: this definition stands in
 * for glib's within this test program (the device is linked in statically).
 */
static unsigned long queue_steps;

gboolean g_queue_remove(GQueue *queue, gconstpointer data)
{
	for (GList *l = queue->head; l; l = l->next) {
		queue_steps++;
		if (l->data == data) {
			g_queue_delete_link(queue, l);
			return TRUE;
		}
	}
	return FALSE;
}

/*
 * A reset with VSOCK_MAX_CONNS connections queued for the guest, in the
 * opposite order to the one they were made in: it takes time linear in
 * their number, not a walk of the queue for each.
 */
static void test_reset_many_queued(void)
{
	struct drv d;

	drv_setup(&d);
	char *lpath = g_strdup_printf("%s_9", d.path);
	int lfd = unix_listen(lpath, 4096);
	set_nonblock(lfd);
	for (uint32_t p = 0; p < VSOCK_MAX_CONNS; p++) {
		send_pkt(&d, hdr(VIRTIO_VSOCK_OP_REQUEST, 9, 10000 + p), NULL, 0);
		int fd = accept(lfd, NULL, NULL);
		if (fd >= 0)
			close(fd); /* (husk tells the guest SHUTDOWN, and keeps the connection) */
		d.npkts = 0;
	}
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, VSOCK_MAX_CONNS);
	/* The guest stops reading and asks each for its credit, the last made first. */
	d.rx_starved = true;
	for (uint32_t p = VSOCK_MAX_CONNS; p-- > 0;) {
		send_pkt(&d, hdr(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 9, 10000 + p), NULL, 0);
		d.npkts = 0;
	}
	queue_steps = 0;
	virtio_vsock_ops.reset(d.v);
	g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 0);
	g_assert_cmpuint(queue_steps, <=, 4 * VSOCK_MAX_CONNS);
	close(lfd);
	g_unlink(lpath);
	g_free(lpath);
	drv_teardown(&d);
}

/* Packets that break the rules, each on a connection or none: RST, and the connection gone. */
static void test_bad_packets(void)
{
	struct drv d;
	uint32_t port;

	drv_setup(&d);
	struct virtio_vsock_hdr bad[7];
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		bad[i] = hdr(VIRTIO_VSOCK_OP_RW, 0, 52);
	bad[0].op = 99;                       /* unknown */
	bad[1].type = 2;                      /* SEQPACKET */
	bad[2].src_cid = 7;                   /* not the guest's */
	bad[3].dst_cid = 4;                   /* not the host */
	bad[4].op = VIRTIO_VSOCK_OP_REQUEST;  /* on an open connection */
	bad[5].op = VIRTIO_VSOCK_OP_RESPONSE; /* a second one */
	bad[6].len = 100;                     /* more than the chain holds */
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		int fd = host_connect(&d, &port);
		bad[i].dst_port = port;
		uint8_t raw[HDR];
		memcpy(raw, &bad[i], HDR);
		send_raw(&d, raw, HDR);
		g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_RST);
		g_assert_cmpuint(last(&d)->h.dst_port, ==, 52);
		g_assert_cmpuint(virtio_vsock_connections(d.v), ==, 0);
		char c;
		g_assert_cmpint(read(fd, &c, 1), ==, 0);
		close(fd);
	}
	/* RW for no connection: RST; an RST for none: nothing; a short header: nothing. */
	send_pkt(&d, hdr(VIRTIO_VSOCK_OP_RW, 77, 78), "x", 1);
	g_assert_cmpuint(last(&d)->h.op, ==, VIRTIO_VSOCK_OP_RST);
	unsigned int before = d.npkts;
	send_pkt(&d, hdr(VIRTIO_VSOCK_OP_RST, 77, 78), NULL, 0);
	send_raw(&d, "short", 5);
	g_assert_cmpuint(d.npkts, ==, before);
	drv_teardown(&d);
}

/* A header made at random: mostly plausible fields, now and then anything. */
static struct virtio_vsock_hdr random_hdr(GRand *g, const uint32_t *ports, unsigned int nports)
{
	struct virtio_vsock_hdr h = hdr((uint16_t)g_rand_int_range(g, 0, 9),
	                                ports[g_rand_int_range(g, 0, (gint32)nports)], 52);

	if (!g_rand_int_range(g, 0, 8))
		h.src_cid = g_rand_int_range(g, 0, 2) ? g_rand_int(g) : 2;
	if (!g_rand_int_range(g, 0, 8))
		h.dst_cid = g_rand_int(g);
	if (!g_rand_int_range(g, 0, 8))
		h.type = (uint16_t)g_rand_int(g);
	if (!g_rand_int_range(g, 0, 4))
		h.src_port = g_rand_int_range(g, 0, 2) ? g_rand_int(g) : 53;
	if (!g_rand_int_range(g, 0, 8))
		h.op = (uint16_t)g_rand_int(g);
	h.flags = g_rand_int_range(g, 0, 4) ? (uint32_t)g_rand_int_range(g, 0, 4) : g_rand_int(g);
	h.buf_alloc = g_rand_int_range(g, 0, 2) ? g_rand_int(g) : 4096;
	h.fwd_cnt = g_rand_int_range(g, 0, 2) ? g_rand_int(g) : 0;
	return h;
}

/*
 * Writes a packet of 'total' bytes as a chain of random shape at tx slot
 * 'head': up to eight buffers, a writable one now and then, a header's
 * len that may not match. Returns the number of descriptors.
 */
static unsigned int random_chain(struct drv *d, GRand *g, uint16_t head,
                                 const struct virtio_vsock_hdr *h, uint32_t total)
{
	unsigned int nd = (unsigned int)g_rand_int_range(g, 1, 9);
	uint64_t addr = TX_DATA;
	uint8_t *mem = gm_ptr(&d->gm, addr, TX_BUF);
	uint32_t off = 0;
	bool writable = false; /* once one is, the rest are (2.7.4.2) */

	for (uint32_t i = 0; i < total; i++)
		mem[i] = (uint8_t)g_rand_int(g);
	memcpy(mem, h, MIN(total, HDR));
	for (unsigned int i = 0; i < nd; i++) {
		uint32_t len =
		    i + 1 == nd ? total - off : (uint32_t)g_rand_int_range(g, 0, total - off + 1);
		writable = writable || !g_rand_int_range(g, 0, 16);
		uint16_t flags = (i + 1 < nd ? F_NEXT : 0) | (writable ? F_WRITE : 0);
		set_desc(d, TX_RING, (uint16_t)(head + i), addr + off, len, flags,
		         (uint16_t)(head + i + 1));
		off += len;
	}
	return nd;
}

/*
 * A driver made at random (the same every run): thousands of packets with
 * any header, op, length and port, in chains of any shape, between real
 * connections. Every answer collect_rx sees is well formed; nothing crashes;
 * the connections stay bounded and husk's buffers with them.
 */
static void test_hostile_driver(void)
{
	GRand *g = g_rand_new_with_seed(0x76736f63);
	struct drv d;
	uint32_t ports[4] = {9, 0, 0, 0};
	int fds[3];
	uint16_t head = 0;

	drv_setup(&d);
	char *lpath = g_strdup_printf("%s_9", d.path);
	int lfd = unix_listen(lpath, 4096);
	set_nonblock(lfd);
	static const uint8_t chunk[8192];
	for (unsigned int round = 0; round < 12; round++) {
		for (int i = 0; i < 3; i++) {
			fds[i] = host_connect(&d, &ports[i + 1]);
			set_nonblock(fds[i]);
		}
		for (int n = 0; n < 1000; n++) {
			/* The host writes too, whatever happened to the connection. */
			g_assert_cmpint(send(fds[n % 3], chunk,
			                     (size_t)g_rand_int_range(g, 1, 8193),
			                     MSG_NOSIGNAL | MSG_DONTWAIT),
			                !=, 0);
			struct virtio_vsock_hdr h = random_hdr(g, ports, G_N_ELEMENTS(ports));
			uint32_t payload = g_rand_int_range(g, 0, 4)
			                       ? (uint32_t)g_rand_int_range(g, 0, 64)
			                       : (uint32_t)g_rand_int_range(g, 0, TX_BUF - HDR);
			uint32_t total = g_rand_int_range(g, 0, 16)
			                     ? HDR + payload
			                     : (uint32_t)g_rand_int_range(g, 0, HDR);
			h.len = g_rand_int_range(g, 0, 4) ? payload : g_rand_int(g);
			if (h.op != VIRTIO_VSOCK_OP_RW && g_rand_int_range(g, 0, 2))
				h.len = 0;
			head = (uint16_t)(head % (d.qsize - 8));
			unsigned int nd = random_chain(&d, g, head, &h, total);
			publish(&d, TX_RING, head);
			head = (uint16_t)(head + nd);
			virtio_vsock_serve(d.v, &d.txq, TX);
			g_assert_false(d.txq.broken);
			int fd = accept(lfd, NULL, NULL);
			if (fd >= 0)
				close(fd);
			d.rx_starved = !g_rand_int_range(g, 0, 4);
			settle(&d);
			d.npkts = 0;
			g_assert_cmpuint(virtio_vsock_connections(d.v), <=, VSOCK_MAX_CONNS);
			g_assert_cmpuint(virtio_vsock_buffered(d.v), <=,
			                 (size_t)VSOCK_BUF_ALLOC * virtio_vsock_connections(d.v));
		}
		for (int i = 0; i < 3; i++)
			close(fds[i]);
		d.rx_starved = false;
		settle(&d);
		d.npkts = 0;
	}
	g_test_message("answers: %u RESPONSE, %u RST, %u RW, %u SHUTDOWN, %u CREDIT_UPDATE",
	               d.ops[VIRTIO_VSOCK_OP_RESPONSE], d.ops[VIRTIO_VSOCK_OP_RST],
	               d.ops[VIRTIO_VSOCK_OP_RW], d.ops[VIRTIO_VSOCK_OP_SHUTDOWN],
	               d.ops[VIRTIO_VSOCK_OP_CREDIT_UPDATE]);
	g_assert_cmpuint(d.ops[VIRTIO_VSOCK_OP_RST], >, 1000);
	g_assert_cmpuint(d.ops[VIRTIO_VSOCK_OP_RW], >, 0);
	close(lfd);
	g_unlink(lpath);
	g_free(lpath);
	drv_teardown(&d);
	g_rand_free(g);
}

/* A head outside the ring breaks the queue; the transport then asks for a reset. */
static void test_broken_ring(void)
{
	struct drv d;

	drv_setup(&d);
	publish(&d, TX_RING, d.qsize + 3);
	virtio_vsock_serve(d.v, &d.txq, TX);
	g_assert_true(d.txq.broken);
	drv_teardown(&d);
}

#define NBURST 300 /* packets waiting at one kick: more than its budget */

/* Puts NBURST CREDIT_REQUESTs for no connection on tx, unserved: each is answered by an RST. */
static void queue_orphan_requests(struct drv *d)
{
	for (uint16_t i = 0; i < NBURST; i++) {
		struct virtio_vsock_hdr h = hdr(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 7, 1000 + i);
		uint64_t addr = TX_DATA + (uint64_t)HDR * i;

		memcpy(gm_ptr(&d->gm, addr, HDR), &h, HDR);
		set_desc(d, TX_RING, i, addr, HDR, 0, 0);
		publish(d, TX_RING, i);
	}
}

/*
 * A kick takes at most VQ_BURST packets from tx and asks the transport
 * for another kick; the rest wait in the ring for it, none lost: every
 * one of them is answered, in order.
 */
static void test_tx_budget(void)
{
	struct drv d;

	drv_setup_sized(&d, QSIZE_MAX);
	virtio_vsock_attach(d.v, FAKE_T);
	queue_orphan_requests(&d);
	memset(wakes, 0, sizeof(wakes));
	virtio_vsock_serve(d.v, &d.txq, TX);
	g_assert_cmpuint(used_idx(&d, TX_RING), ==, VQ_BURST);
	g_assert_cmpuint(wakes[TX], ==, 1);
	virtio_vsock_serve(d.v, &d.txq, TX);
	g_assert_cmpuint(used_idx(&d, TX_RING), ==, NBURST);
	g_assert_cmpuint(wakes[TX], ==, 1);
	settle(&d);
	g_assert_cmpuint(d.npkts, ==, NBURST);
	for (unsigned int i = 0; i < NBURST; i++) {
		g_assert_cmpuint(d.pkts[i].h.op, ==, VIRTIO_VSOCK_OP_RST);
		g_assert_cmpuint(d.pkts[i].h.dst_port, ==, 1000 + i);
	}
	drv_teardown(&d);
}

/*
 * The same on rx: with more answers waiting than one kick's budget and
 * room for all of them, a kick gives VQ_BURST, wakes the queue again,
 * and the next gives the rest.
 */
static void test_rx_budget(void)
{
	struct drv d;

	drv_setup_sized(&d, QSIZE_MAX);
	virtio_vsock_attach(d.v, FAKE_T);
	queue_orphan_requests(&d);
	virtio_vsock_serve(d.v, &d.txq, TX);
	virtio_vsock_serve(d.v, &d.txq, TX);
	g_assert_cmpuint(used_idx(&d, TX_RING), ==, NBURST);
	offer_rx(&d);
	memset(wakes, 0, sizeof(wakes));
	virtio_vsock_serve(d.v, &d.rxq, RX);
	g_assert_cmpuint(used_idx(&d, RX_RING), ==, VQ_BURST);
	g_assert_cmpuint(wakes[RX], ==, 1);
	virtio_vsock_serve(d.v, &d.rxq, RX);
	g_assert_cmpuint(used_idx(&d, RX_RING), ==, NBURST);
	g_assert_cmpuint(wakes[RX], ==, 1);
	collect_rx(&d);
	g_assert_cmpuint(d.npkts, ==, NBURST);
	for (unsigned int i = 0; i < NBURST; i++)
		g_assert_cmpuint(d.pkts[i].h.dst_port, ==, 1000 + i);
	drv_teardown(&d);
}

static void test_config_parse(void)
{
	struct vsock_config cfg = {0};
	GError *err = NULL;

	g_assert_true(vsock_config_parse("/tmp/v.sock", &cfg, NULL));
	g_assert_cmpstr(cfg.path, ==, "/tmp/v.sock");
	g_assert_cmpuint(cfg.cid, ==, VSOCK_DEFAULT_CID);
	vsock_config_clear(&cfg);
	g_assert_true(vsock_config_parse("/tmp/v.sock,cid=42", &cfg, NULL));
	g_assert_cmpuint(cfg.cid, ==, 42);
	vsock_config_clear(&cfg);
	const char *bad[] = {
	    "", ",cid=5", "/tmp/v,cid=2", "/tmp/v,cid=4294967295", "/tmp/v,cid=x", "/tmp/v,port=1"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_false(vsock_config_parse(bad[i], &cfg, &err));
		g_assert_nonnull(err);
		g_clear_error(&err);
	}
	char *lng = g_strnfill(120, 'a');
	g_assert_false(vsock_config_parse(lng, &cfg, NULL));
	g_free(lng);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-vsock/config-parse", test_config_parse);
	g_test_add_func("/virtio-vsock/host-connects", test_host_connects);
	g_test_add_func("/virtio-vsock/host-connect-refused", test_host_connect_refused);
	g_test_add_func("/virtio-vsock/handshake-deadline", test_handshake_deadline);
	g_test_add_func("/virtio-vsock/guest-connects", test_guest_connects);
	g_test_add_func("/virtio-vsock/credit-respected", test_credit_respected);
	g_test_add_func("/virtio-vsock/guest-never-reads", test_guest_never_reads);
	g_test_add_func("/virtio-vsock/host-never-reads", test_host_never_reads);
	g_test_add_func("/virtio-vsock/request-flood", test_request_flood);
	g_test_add_func("/virtio-vsock/header-only-buffers", test_header_only_buffers);
	g_test_add_func("/virtio-vsock/reset-many-queued", test_reset_many_queued);
	g_test_add_func("/virtio-vsock/bad-packets", test_bad_packets);
	g_test_add_func("/virtio-vsock/hostile-driver", test_hostile_driver);
	g_test_add_func("/virtio-vsock/broken-ring", test_broken_ring);
	g_test_add_func("/virtio-vsock/lowered-cap", test_lowered_cap);
	g_test_add_func("/virtio-vsock/tx-budget", test_tx_budget);
	g_test_add_func("/virtio-vsock/rx-budget", test_rx_budget);
	return g_test_run();
}
