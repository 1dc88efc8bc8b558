// SPDX-License-Identifier: MIT
#include "devices/virtio/vsock.h"

#include <errno.h>
#include <glib-unix.h>
#include <linux/virtio_vsock.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/error.h"

#define VIRTIO_ID_VSOCK  19
#define CLASS_OTHER      0xff0000
#define VSOCK_QUEUE_SIZE 256
#define RXQ              0
#define TXQ              1
#define HOST_CID         2
#define HDR              ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define CONNECT_LINE_MAX 32
#define RST_QUEUE_MAX    (2 * VSOCK_MAX_CONNS)
#define FIRST_LOCAL_PORT (1U << 30) /* ports husk picks for host connections */
#define SHUT_BOTH        (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)
/* A host connection's CONNECT line and the guest's answer, together. */
#define HANDSHAKE_US (5 * G_USEC_PER_SEC)

/* What a connection still owes the guest, besides data. */
enum { OWE_REQUEST = 1, OWE_RESPONSE = 2, OWE_CREDIT = 4 };

enum conn_state {
	AWAIT_CONNECT,  /* a host socket that has not yet written its CONNECT line */
	AWAIT_RESPONSE, /* our REQUEST is with the guest */
	OPEN,
};

struct conn {
	struct virtio_vsock *v;
	GList link;       /* in v->all */
	GList ready_link; /* in v->ready while queued: unlinked in O(1), as a reset frees all */
	GSource *source;
	gpointer tag; /* NULL once the host hung up: reads and writes no longer block */
	int fd;
	enum conn_state state;
	uint32_t host_port, guest_port;
	unsigned int owe;
	bool registered; /* in v->conns: the guest knows of it */
	bool queued;     /* in v->ready, by ready_link */
	bool readable;   /* the host socket has data (or its end) for the guest */
	bool host_eof;   /* the host will send no more: SHUTDOWN sent */
	bool closing;    /* the guest shut both ways: flush, then RST */
	uint32_t shut;   /* SHUTDOWN flags the guest sent */
	char line[CONNECT_LINE_MAX];
	unsigned int line_len;
	/* Towards the guest (5.10.6.3): its buffer, what it has consumed, what we sent. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	/* From the guest: bytes received, and forwarded to the host socket. */
	uint32_t rx_cnt, fwd_cnt;
	uint8_t *buf; /* VSOCK_BUF_ALLOC bytes while any are held */
	uint32_t buf_start, buf_len;
};

/* A connection's watch on its host socket, and on its handshake's deadline. */
struct conn_source {
	GSource base;
	struct virtio_vsock *v;
	struct conn *c; /* valid while the source is not destroyed */
};

struct virtio_vsock {
	pthread_mutex_t lock; /* the queues run under the transport's lock; host sockets not */
	uint32_t cid;
	char *path;
	int listen_fd;
	GSource *listener;
	GMainContext *ctx;
	struct virtio_pci *t;
	GQueue all;             /* every connection, CONNECT lines awaited too */
	unsigned int max_conns; /* VSOCK_MAX_CONNS, or fewer (virtio_vsock_set_max_conns) */
	GHashTable *conns;      /* by key(): connections known to the guest */
	GQueue ready;           /* connections with something for the guest */
	struct virtio_vsock_hdr rst[RST_QUEUE_MAX];
	unsigned int rst_head, rst_count;
	uint32_t next_port;
	struct vq_chain chain; /* the chain serve_rx or serve_tx is on, under 'lock' */
};

static uint64_t key(uint32_t host_port, uint32_t guest_port)
{
	return (uint64_t)host_port << 32 | guest_port;
}

static void wake(struct virtio_vsock *v, unsigned int q)
{
	if (v->t)
		virtio_pci_wake(v->t, q);
}

/* ---- chains ----------------------------------------------------------------- */

/* Copies 'len' bytes at 'off' of the chain's readable part; false if it is shorter. */
static bool chain_read(const struct vq_chain *ch, uint32_t off, void *dst, uint32_t len)
{
	uint8_t *out = dst;

	for (unsigned int i = 0; i < ch->nseg && len; i++) {
		const struct vq_seg *s = &ch->seg[i];
		if (s->device_writable)
			continue;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		uint32_t n = MIN(len, s->len - off);
		memcpy(out, (uint8_t *)s->addr + off, n);
		out += n;
		len -= n;
		off = 0;
	}
	return !len;
}

/*
 * The iovecs of the chain's part from 'off' on, readable or writable,
 * at most 'max' bytes of it; returns their count.
 */
static int chain_iov(const struct vq_chain *ch, bool writable, uint32_t off, uint32_t max,
                     struct iovec *iov)
{
	int n = 0;

	for (unsigned int i = 0; i < ch->nseg && max; i++) {
		const struct vq_seg *s = &ch->seg[i];
		if (s->device_writable != writable)
			continue;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		uint32_t len = MIN(max, s->len - off);
		iov[n++] = (struct iovec){(uint8_t *)s->addr + off, len};
		max -= len;
		off = 0;
	}
	return n;
}

static void chain_write(const struct vq_chain *ch, const void *src, uint32_t len)
{
	struct iovec iov[VQ_MAX_SEGS];
	int n = chain_iov(ch, true, 0, len, iov);
	const uint8_t *in = src;

	for (int i = 0; i < n; i++) {
		memcpy(iov[i].iov_base, in, iov[i].iov_len);
		in += iov[i].iov_len;
	}
}

/* ---- connections ------------------------------------------------------------ */

static struct virtio_vsock_hdr header(const struct conn *c, uint16_t op)
{
	return (struct virtio_vsock_hdr){
	    .src_cid = GUINT64_TO_LE(HOST_CID),
	    .dst_cid = GUINT64_TO_LE(c->v->cid),
	    .src_port = GUINT32_TO_LE(c->host_port),
	    .dst_port = GUINT32_TO_LE(c->guest_port),
	    .type = GUINT16_TO_LE(VIRTIO_VSOCK_TYPE_STREAM),
	    .op = GUINT16_TO_LE(op),
	    .buf_alloc = GUINT32_TO_LE(VSOCK_BUF_ALLOC),
	    .fwd_cnt = GUINT32_TO_LE(c->fwd_cnt),
	};
}

/* What the guest lets us send; 0 if its counters make no sense. */
static uint32_t credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool may_send_data(const struct conn *c)
{
	return c->state == OPEN && c->readable && !c->host_eof && !c->closing &&
	       !(c->shut & VIRTIO_VSOCK_SHUTDOWN_RCV) && credit(c);
}

static bool wants_rx(const struct conn *c)
{
	return c->owe || may_send_data(c);
}

static void queue_conn(struct conn *c)
{
	if (c->queued || !wants_rx(c))
		return;
	c->queued = true;
	g_queue_push_tail_link(&c->v->ready, &c->ready_link);
	wake(c->v, RXQ);
}

/* Host socket events worth waking for, given what the connection is doing. */
static void update_watch(struct conn *c)
{
	GIOCondition cond = 0;

	if (!c->tag)
		return;
	if (c->state == AWAIT_CONNECT ||
	    (c->state == OPEN && !c->readable && !c->host_eof && !c->closing))
		cond |= G_IO_IN;
	if (c->buf_len)
		cond |= G_IO_OUT;
	g_source_modify_unix_fd(c->source, c->tag, cond);
}

static void queue_rst(struct virtio_vsock *v, uint32_t host_port, uint32_t guest_port)
{
	if (v->rst_count == RST_QUEUE_MAX)
		return; /* a guest that floods without reading: it hears nothing */
	v->rst[(v->rst_head + v->rst_count++) % RST_QUEUE_MAX] = (struct virtio_vsock_hdr){
	    .src_cid = GUINT64_TO_LE(HOST_CID),
	    .dst_cid = GUINT64_TO_LE(v->cid),
	    .src_port = GUINT32_TO_LE(host_port),
	    .dst_port = GUINT32_TO_LE(guest_port),
	    .type = GUINT16_TO_LE(VIRTIO_VSOCK_TYPE_STREAM),
	    .op = GUINT16_TO_LE(VIRTIO_VSOCK_OP_RST),
	};
	wake(v, RXQ);
}

/* An answer to a guest packet no connection takes: RST, ports swapped (5.10.6.4). */
static void reply_rst(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
	queue_rst(v, GUINT32_FROM_LE(h->dst_port), GUINT32_FROM_LE(h->src_port));
}

static void conn_free(struct conn *c)
{
	struct virtio_vsock *v = c->v;

	if (c->registered)
		g_hash_table_remove(v->conns, &(uint64_t){key(c->host_port, c->guest_port)});
	g_queue_unlink(&v->all, &c->link);
	if (c->queued)
		g_queue_unlink(&v->ready, &c->ready_link);
	g_source_destroy(c->source);
	g_source_unref(c->source);
	close(c->fd);
	g_free(c->buf);
	g_free(c);
}

/* Ends a connection; the guest hears RST if it knows of it. */
static void conn_reset(struct conn *c)
{
	if (c->registered)
		queue_rst(c->v, c->host_port, c->guest_port);
	conn_free(c);
}

/* Writes what the guest sent to the host socket; false if the connection ended. */
static bool flush(struct conn *c)
{
	while (c->buf_len) {
		ssize_t n = send(c->fd, c->buf + c->buf_start, c->buf_len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_reset(c);
			return false;
		}
		c->buf_start += (uint32_t)n;
		c->buf_len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (c->buf_len) {
		update_watch(c);
		return true;
	}
	g_clear_pointer(&c->buf, g_free);
	c->buf_start = 0;
	/* The guest may wait for room: tell it (5.10.6.3). */
	c->owe |= OWE_CREDIT;
	queue_conn(c);
	if (c->closing) {
		conn_reset(c);
		return false;
	}
	if (c->shut & VIRTIO_VSOCK_SHUTDOWN_SEND)
		shutdown(c->fd, SHUT_WR);
	update_watch(c);
	return true;
}

static gboolean conn_dispatch(GSource *source, GSourceFunc cb, gpointer data);

static GSourceFuncs conn_funcs = {.dispatch = conn_dispatch};

static struct conn *conn_new(struct virtio_vsock *v, int fd, enum conn_state state)
{
	struct conn *c = g_new0(struct conn, 1);

	c->v = v;
	c->link.data = c;
	c->ready_link.data = c;
	g_queue_push_tail_link(&v->all, &c->link);
	c->fd = fd;
	c->state = state;
	c->source = g_source_new(&conn_funcs, sizeof(struct conn_source));
	((struct conn_source *)c->source)->v = v;
	((struct conn_source *)c->source)->c = c;
	c->tag = g_source_add_unix_fd(c->source, fd, 0);
	/* A host that never says where, a guest that never answers: not for ever. */
	if (state != OPEN)
		g_source_set_ready_time(c->source, g_get_monotonic_time() + HANDSHAKE_US);
	g_source_attach(c->source, v->ctx);
	return c;
}

static void conn_register(struct conn *c)
{
	uint64_t *k = g_new(uint64_t, 1);

	*k = key(c->host_port, c->guest_port);
	g_hash_table_insert(c->v->conns, k, c);
	c->registered = true;
}

/* ---- the host's side: CONNECT lines and socket events ------------------------ */

/* A free port of ours towards guest port 'guest_port'. */
static uint32_t pick_port(struct virtio_vsock *v, uint32_t guest_port)
{
	for (;;) {
		uint32_t port = v->next_port++;
		if (v->next_port == 0)
			v->next_port = FIRST_LOCAL_PORT;
		if (!g_hash_table_contains(v->conns, &(uint64_t){key(port, guest_port)}))
			return port;
	}
}

/* "CONNECT <port>" (the newline already taken off); false if it is not one. */
static bool parse_connect(const char *line, uint32_t *port)
{
	guint64 n;

	if (!g_str_has_prefix(line, "CONNECT "))
		return false;
	return g_ascii_string_to_unsigned(line + 8, 10, 0, UINT32_MAX, &n, NULL) &&
	       (*port = (uint32_t)n, true);
}

/*
 * Takes the CONNECT line, not a byte beyond it: what follows is the
 * stream's, for the guest once it accepts.
 */
static void read_connect_line(struct conn *c)
{
	char peek[CONNECT_LINE_MAX];
	size_t room = sizeof(c->line) - c->line_len;
	ssize_t n = recv(c->fd, peek, room, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c);
		return;
	}
	char *nl = memchr(peek, '\n', (size_t)n);
	size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
	if (recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT) != (ssize_t)take) {
		conn_free(c);
		return;
	}
	c->line_len += (unsigned int)take;
	if (!nl) {
		if (c->line_len == sizeof(c->line))
			conn_free(c); /* no line that long is a CONNECT */
		return;
	}
	c->line[c->line_len - 1] = '\0';
	if (!parse_connect(c->line, &c->guest_port)) {
		conn_free(c);
		return;
	}
	c->host_port = pick_port(c->v, c->guest_port);
	c->state = AWAIT_RESPONSE;
	conn_register(c);
	c->owe |= OWE_REQUEST;
	update_watch(c);
	queue_conn(c);
}

/* What the host socket, or the handshake's deadline, has for the connection. */
static void conn_event(struct conn *c)
{
	GIOCondition rev = c->tag ? g_source_query_unix_fd(c->source, c->tag) : 0;

	if (c->state != OPEN && g_get_monotonic_time() >= g_source_get_ready_time(c->source)) {
		conn_reset(c);
	} else if (c->state == AWAIT_CONNECT) {
		read_connect_line(c);
	} else if ((rev & (G_IO_HUP | G_IO_ERR)) && c->state != OPEN) {
		conn_reset(c);
	} else {
		if (rev & (G_IO_HUP | G_IO_ERR)) {
			/* Polled or not, a hang-up stays raised: read and write find the end. */
			g_source_remove_unix_fd(c->source, c->tag);
			c->tag = NULL;
		}
		if (rev & (G_IO_IN | G_IO_HUP | G_IO_ERR)) {
			c->readable = true;
			queue_conn(c);
		}
		if (c->buf_len && (rev & (G_IO_OUT | G_IO_HUP | G_IO_ERR)))
			flush(c); /* which watches again, or ends the connection */
		else
			update_watch(c);
	}
}

static gboolean conn_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
	struct virtio_vsock *v = ((struct conn_source *)source)->v;

	pthread_mutex_lock(&v->lock);
	/* A device reset may have ended the connection while we waited for the lock. */
	if (!g_source_is_destroyed(source))
		conn_event(((struct conn_source *)source)->c);
	pthread_mutex_unlock(&v->lock);
	return G_SOURCE_CONTINUE;
}

static gboolean on_accept(gint fd, GIOCondition cond, gpointer data)
{
	struct virtio_vsock *v = data;
	int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (s < 0)
		return G_SOURCE_CONTINUE;
	pthread_mutex_lock(&v->lock);
	if (v->all.length >= v->max_conns)
		close(s);
	else
		update_watch(conn_new(v, s, AWAIT_CONNECT));
	pthread_mutex_unlock(&v->lock);
	return G_SOURCE_CONTINUE;
}

/* ---- the guest's packets (tx) ----------------------------------------------- */

/* The guest asks for host port 'h->dst_port': the Unix socket PATH_<port>. */
static void guest_connect(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
	uint32_t port = GUINT32_FROM_LE(h->dst_port);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->path, port);
	int fd = -1;

	if (v->all.length < v->max_conns && n > 0 && (size_t)n < sizeof(sa.sun_path))
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		reply_rst(v, h);
		return;
	}
	struct conn *c = conn_new(v, fd, OPEN);
	c->host_port = port;
	c->guest_port = GUINT32_FROM_LE(h->src_port);
	c->peer_buf_alloc = GUINT32_FROM_LE(h->buf_alloc);
	c->peer_fwd_cnt = GUINT32_FROM_LE(h->fwd_cnt);
	conn_register(c);
	c->owe |= OWE_RESPONSE;
	update_watch(c);
	queue_conn(c);
}

/* The guest accepted our REQUEST: the host program hears which port it has. */
static void accepted(struct conn *c)
{
	char ok[32];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);

	/* Nothing was written to the socket before: its buffer takes the line. */
	if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL) != n) {
		conn_reset(c);
		return;
	}
	c->state = OPEN;
	g_source_set_ready_time(c->source, -1);
	update_watch(c);
}

/* RW: the payload at HDR in the chain, within the credit we gave. */
static void guest_data(struct conn *c, const struct vq_chain *ch, uint32_t len)
{
	if ((c->shut & VIRTIO_VSOCK_SHUTDOWN_SEND) || c->closing ||
	    len > VSOCK_BUF_ALLOC - c->buf_len) {
		conn_reset(c); /* beyond what it may send (5.10.6.3.1) */
		return;
	}
	if (!c->buf)
		c->buf = g_malloc(VSOCK_BUF_ALLOC);
	if (c->buf_start + c->buf_len + len > VSOCK_BUF_ALLOC) {
		memmove(c->buf, c->buf + c->buf_start, c->buf_len);
		c->buf_start = 0;
	}
	chain_read(ch, HDR, c->buf + c->buf_start + c->buf_len, len);
	c->buf_len += len;
	c->rx_cnt += len;
	flush(c);
}

static void guest_shutdown(struct conn *c, uint32_t flags)
{
	c->shut |= flags & SHUT_BOTH;
	/* Both ways: the connection ends once its data is out, with our RST (5.10.6.6). */
	if (c->shut == SHUT_BOTH) {
		c->closing = true;
		flush(c);
	} else if (flags & VIRTIO_VSOCK_SHUTDOWN_SEND) {
		flush(c);
	}
}

/* A packet for a connection the guest knows of, its credit already taken in. */
static void conn_packet(struct conn *c, uint16_t op, const struct vq_chain *ch, uint32_t len,
                        uint32_t flags)
{
	if (op == VIRTIO_VSOCK_OP_RESPONSE && c->state == AWAIT_RESPONSE) {
		accepted(c);
		return;
	}
	if (c->state != OPEN) {
		conn_reset(c);
		return;
	}
	switch (op) {
	case VIRTIO_VSOCK_OP_RW:
		guest_data(c, ch, len);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		guest_shutdown(c, flags);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		queue_conn(c); /* more room: data may go on */
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->owe |= OWE_CREDIT;
		queue_conn(c);
		break;
	default: /* REQUEST on an open connection, a second RESPONSE, an unknown op */
		conn_reset(c);
	}
}

static bool well_formed(const struct virtio_vsock *v, const struct virtio_vsock_hdr *h,
                        uint32_t payload)
{
	uint32_t len = GUINT32_FROM_LE(h->len);

	return GUINT16_FROM_LE(h->type) == VIRTIO_VSOCK_TYPE_STREAM &&
	       GUINT64_FROM_LE(h->src_cid) == v->cid && GUINT64_FROM_LE(h->dst_cid) == HOST_CID &&
	       len <= payload && len <= VSOCK_MAX_PAYLOAD &&
	       (len == 0 || GUINT16_FROM_LE(h->op) == VIRTIO_VSOCK_OP_RW);
}

static void guest_packet(struct virtio_vsock *v, const struct vq_chain *ch)
{
	struct virtio_vsock_hdr h;

	if (ch->in_len || !chain_read(ch, 0, &h, HDR))
		return; /* no header to answer */
	uint16_t op = GUINT16_FROM_LE(h.op);
	struct conn *c = g_hash_table_lookup(
	    v->conns, &(uint64_t){key(GUINT32_FROM_LE(h.dst_port), GUINT32_FROM_LE(h.src_port))});

	if (op == VIRTIO_VSOCK_OP_RST) { /* never answered (5.10.6.4) */
		if (c && GUINT64_FROM_LE(h.src_cid) == v->cid)
			conn_free(c);
		return;
	}
	if (!well_formed(v, &h, ch->out_len - HDR)) {
		if (c)
			conn_reset(c);
		else
			reply_rst(v, &h);
		return;
	}
	if (op == VIRTIO_VSOCK_OP_REQUEST && !c) {
		guest_connect(v, &h);
		return;
	}
	if (!c) {
		reply_rst(v, &h);
		return;
	}
	c->peer_buf_alloc = GUINT32_FROM_LE(h.buf_alloc);
	c->peer_fwd_cnt = GUINT32_FROM_LE(h.fwd_cnt);
	conn_packet(c, op, ch, GUINT32_FROM_LE(h.len), GUINT32_FROM_LE(h.flags));
}

/* ---- packets for the guest (rx) --------------------------------------------- */

/*
 * Reads the host socket into the chain after the header, up to the
 * guest's credit: the bytes read, 0 at the end, -1 if none wait.
 */
static ssize_t read_host(struct conn *c, const struct vq_chain *ch)
{
	struct iovec iov[VQ_MAX_SEGS];
	uint32_t max = MIN(credit(c), ch->in_len - HDR);
	int n = chain_iov(ch, true, HDR, MIN(max, VSOCK_MAX_PAYLOAD), iov);
	ssize_t got;

	do
		got = readv(c->fd, iov, n);
	while (got < 0 && errno == EINTR);
	if (got < 0 && errno == EAGAIN)
		return -1;
	return got < 0 ? 0 : got; /* a broken socket ends like a closed one */
}

/* Fills 'h' with the connection's next packet for the guest; false if it has none. */
static bool conn_next(struct conn *c, const struct vq_chain *ch, struct virtio_vsock_hdr *h)
{
	if (c->owe & OWE_REQUEST) {
		*h = header(c, VIRTIO_VSOCK_OP_REQUEST);
	} else if (c->owe & OWE_RESPONSE) {
		*h = header(c, VIRTIO_VSOCK_OP_RESPONSE);
	} else if (c->owe & OWE_CREDIT) {
		*h = header(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	} else if (may_send_data(c) && ch->in_len > HDR) {
		ssize_t n = read_host(c, ch);
		if (n < 0) {
			c->readable = false;
			update_watch(c);
			return conn_next(c, ch, h);
		}
		*h = header(c, n ? VIRTIO_VSOCK_OP_RW : VIRTIO_VSOCK_OP_SHUTDOWN);
		if (n) {
			h->len = GUINT32_TO_LE((uint32_t)n);
			c->tx_cnt += (uint32_t)n;
		} else {
			h->flags = GUINT32_TO_LE(VIRTIO_VSOCK_SHUTDOWN_SEND);
			c->host_eof = true;
		}
	} else {
		return false;
	}
	if (h->op == GUINT16_TO_LE(VIRTIO_VSOCK_OP_REQUEST))
		c->owe &= ~OWE_REQUEST;
	else if (h->op == GUINT16_TO_LE(VIRTIO_VSOCK_OP_RESPONSE))
		c->owe &= ~OWE_RESPONSE;
	c->owe &= ~OWE_CREDIT; /* every packet tells the guest our fwd_cnt */
	return true;
}

/*
 * The next packet for the guest, written into 'ch': false if there is none.
 * A buffer with room for a header only carries no data (5.10.6.3): a
 * connection that has nothing else keeps its place, and the buffer goes
 * back empty (*len 0), so that a guest that offers such buffers stalls
 * no connection until it next speaks.
 */
static bool next_packet(struct virtio_vsock *v, const struct vq_chain *ch, uint32_t *len)
{
	struct virtio_vsock_hdr h;
	unsigned int left = v->ready.length;
	bool held = false;
	GList *l;

	if (v->rst_count) {
		h = v->rst[v->rst_head];
		v->rst_head = (v->rst_head + 1) % RST_QUEUE_MAX;
		v->rst_count--;
		chain_write(ch, &h, HDR);
		*len = HDR;
		return true;
	}
	/* Each connection once: one held back goes behind the others. */
	while (left-- && (l = g_queue_pop_head_link(&v->ready))) {
		struct conn *c = l->data;

		c->queued = false;
		if (conn_next(c, ch, &h)) {
			chain_write(ch, &h, HDR);
			queue_conn(c); /* behind the others, if it has more */
			*len = HDR + GUINT32_FROM_LE(h.len);
			return true;
		}
		if (wants_rx(c)) { /* data, and no room for it in this buffer */
			c->queued = true;
			g_queue_push_tail_link(&v->ready, &c->ready_link);
			held = true;
		}
	}
	*len = 0;
	return held;
}

static void serve_rx(struct virtio_vsock *v, struct virtqueue *vq)
{
	struct vq_chain *ch = &v->chain;
	unsigned int budget;
	uint32_t n;

	for (budget = VQ_BURST; budget && (v->rst_count || v->ready.length); budget--) {
		if (vq_pop(vq, ch) <= 0)
			break;
		if (ch->out_len || ch->in_len < HDR) {
			vq_push(vq, ch->head, 0); /* no room for a header: the guest's loss */
			continue;
		}
		if (!next_packet(v, ch, &n)) {
			vq_unpop(vq, &(struct vq_used){ch->head, 0}, 1);
			break;
		}
		vq_push(vq, ch->head, n);
	}
	if (!budget)
		wake(v, RXQ);
}

static void serve_tx(struct virtio_vsock *v, struct virtqueue *vq)
{
	struct vq_chain *ch = &v->chain;
	unsigned int budget;

	for (budget = VQ_BURST; budget && vq_pop(vq, ch) > 0; budget--) {
		guest_packet(v, ch);
		vq_push(vq, ch->head, 0);
	}
	if (!budget)
		wake(v, TXQ);
}

void virtio_vsock_serve(struct virtio_vsock *v, struct virtqueue *vq, unsigned int q)
{
	pthread_mutex_lock(&v->lock);
	if (q == TXQ)
		serve_tx(v, vq);
	else if (q == RXQ)
		serve_rx(v, vq);
	/* The event queue: husk never migrates a guest, so it has no events (5.10.6.7). */
	pthread_mutex_unlock(&v->lock);
}

static void vsock_notify(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	struct virtio_vsock *v = dev;

	virtio_vsock_serve(v, vq, q);
	virtio_pci_used(t, vq, q);
}

/* ---- the device ------------------------------------------------------------- */

static void close_all(struct virtio_vsock *v)
{
	while (v->all.head)
		conn_free(v->all.head->data);
	v->rst_count = 0;
}

/* The driver reset the device: its connections are gone (5.10.6.7's reset, without the event). */
static void vsock_reset(void *dev)
{
	struct virtio_vsock *v = dev;

	pthread_mutex_lock(&v->lock);
	close_all(v);
	pthread_mutex_unlock(&v->lock);
}

static void vsock_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_vsock *v = dev;
	uint64_t cid = GUINT64_TO_LE(v->cid); /* guest_cid; its upper 32 bits zero (5.10.4) */

	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < sizeof(cid) ? ((uint8_t *)&cid)[offset + i] : 0;
}

const struct virtio_device_ops virtio_vsock_ops = {
    .name = "virtio-vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .class_code = CLASS_OTHER,
    .num_queues = 3, /* rx, tx, event (5.10.2) */
    .queue_size = VSOCK_QUEUE_SIZE,
    .config_size = 8,
    .config_read = vsock_config_read,
    .queue_notify = vsock_notify,
    .reset = vsock_reset,
};

bool vsock_config_parse(const char *text, struct vsock_config *cfg, GError **err)
{
	g_auto(GStrv) parts = g_strsplit(text, ",", -1);
	guint64 cid = VSOCK_DEFAULT_CID;

	if (!parts[0] || !*parts[0])
		return husk_fail(err, HUSK_EXIT_USAGE, "--vsock: a socket path is needed");
	for (char **p = parts + 1; *p; p++) {
		if (!g_str_has_prefix(*p, "cid=") ||
		    !g_ascii_string_to_unsigned(*p + 4, 10, 3, UINT32_MAX - 1, &cid, NULL))
			return husk_fail(err, HUSK_EXIT_USAGE,
			                 "--vsock: \"%s\" is not cid=N (3 to 4294967294)", *p);
	}
	if (strlen(parts[0]) + sizeof("_4294967295") > sizeof(((struct sockaddr_un *)0)->sun_path))
		return husk_fail(err, HUSK_EXIT_USAGE, "--vsock: the path \"%s\" is too long",
		                 parts[0]);
	cfg->path = g_strdup(parts[0]);
	cfg->cid = (uint32_t)cid;
	return true;
}

void vsock_config_clear(struct vsock_config *cfg)
{
	g_clear_pointer(&cfg->path, g_free);
}

static int listen_on(const char *path, GError **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		husk_fail(err, HUSK_EXIT_USAGE, "--vsock: %s: %s", path, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct virtio_vsock *virtio_vsock_create(const struct vsock_config *cfg, GMainContext *ctx,
                                         GError **err)
{
	int fd = listen_on(cfg->path, err);

	if (fd < 0)
		return NULL;
	struct virtio_vsock *v = g_new0(struct virtio_vsock, 1);
	pthread_mutex_init(&v->lock, NULL);
	v->cid = cfg->cid;
	v->path = g_strdup(cfg->path);
	v->listen_fd = fd;
	v->ctx = g_main_context_ref(ctx);
	v->conns = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	v->next_port = FIRST_LOCAL_PORT;
	v->max_conns = VSOCK_MAX_CONNS;
	g_queue_init(&v->ready);
	v->listener = g_unix_fd_source_new(fd, G_IO_IN);
	g_source_set_callback(v->listener, G_SOURCE_FUNC(on_accept), v, NULL);
	g_source_attach(v->listener, ctx);
	return v;
}

void virtio_vsock_attach(struct virtio_vsock *v, struct virtio_pci *t)
{
	v->t = t;
}

void virtio_vsock_set_max_conns(struct virtio_vsock *v, unsigned int n)
{
	pthread_mutex_lock(&v->lock);
	v->max_conns = MIN(n, (unsigned int)VSOCK_MAX_CONNS);
	pthread_mutex_unlock(&v->lock);
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	close_all(v);
	g_source_destroy(v->listener);
	g_source_unref(v->listener);
	close(v->listen_fd);
	unlink(v->path);
	g_hash_table_unref(v->conns);
	g_main_context_unref(v->ctx);
	pthread_mutex_destroy(&v->lock);
	g_free(v->path);
	g_free(v);
}

unsigned int virtio_vsock_connections(struct virtio_vsock *v)
{
	pthread_mutex_lock(&v->lock);
	unsigned int n = v->all.length;
	pthread_mutex_unlock(&v->lock);
	return n;
}

size_t virtio_vsock_buffered(struct virtio_vsock *v)
{
	size_t bytes = 0;

	pthread_mutex_lock(&v->lock);
	for (GList *l = v->all.head; l; l = l->next)
		bytes += ((struct conn *)l->data)->buf ? VSOCK_BUF_ALLOC : 0;
	pthread_mutex_unlock(&v->lock);
	return bytes;
}
