// SPDX-License-Identifier: MIT
/*
 * User-mode networking on libslirp: a private network behind a NAT inside
 * husk (QEMU's 10.0.2.0/24 layout by default), DHCP and DNS from slirp,
 * forwarded host ports, no privileges needed. slirp runs on the I/O
 * thread's loop through a GSource that polls the sockets it asks for.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <linux/virtio_net.h>
#include <slirp/libslirp.h>
#include <string.h>
#include <sys/socket.h>

#include "devices/net/net.h"
#include "vmm/error.h"

/* Frames slirp made while the guest had no buffers; beyond this, TCP retransmits. */
#define RX_QUEUE_MAX 512

struct timer {
	int64_t expire_ms; /* -1: not armed */
	SlirpTimerId id;
	void *cb_opaque;
};

struct net_user {
	struct net_backend be;
	Slirp *slirp;
	GSource *source;
	GMainContext *ctx;
	GPtrArray *pollfds; /* GPollFD *, the first npoll in use this round */
	guint npoll;
	int64_t slirp_due_ms; /* when slirp's own TCP timers want a turn (-1: never) */
	bool guest_sent;      /* frames went in since slirp's last turn */
	GPtrArray *timers;    /* struct timer * */
	GQueue rxq;           /* GBytes *, frames waiting for the guest */
	bool want_rx;
};

struct user_source {
	GSource source;
	struct net_user *u;
};

static int64_t now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

/* --- the frames ------------------------------------------------------------ */

static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
	struct net_user *u = opaque;

	if (g_queue_is_empty(&u->rxq) &&
	    u->be.port.rx_offer(u->be.port.dev, buf, len) == NET_RX_TAKEN)
		return (ssize_t)len;
	if (u->rxq.length >= RX_QUEUE_MAX) {
		u->be.rx_dropped++; /* TCP retransmits, slower */
		return (ssize_t)len;
	}
	g_queue_push_tail(&u->rxq, g_bytes_new(buf, len));
	if (u->want_rx) {
		u->want_rx = false;
		u->be.port.rx_ready(u->be.port.dev);
	}
	return (ssize_t)len;
}

static bool user_send(struct net_backend *be, const struct iovec *iov, int iovcnt, size_t len)
{
	struct net_user *u = (struct net_user *)be;

	/* slirp takes one buffer; a frame is one buffer unless the guest split it. */
	u->guest_sent = true;
	if (iovcnt == 1) {
		slirp_input(u->slirp, iov[0].iov_base, (int)len);
		return true;
	}
	uint8_t *flat = g_malloc(len), *p = flat;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	slirp_input(u->slirp, flat, (int)len);
	g_free(flat);
	return true;
}

static size_t user_recv(struct net_backend *be, uint8_t *buf, size_t cap)
{
	struct net_user *u = (struct net_user *)be;
	GBytes *frame = g_queue_pop_head(&u->rxq);
	size_t len = 0;

	if (!frame)
		return 0;
	const void *data = g_bytes_get_data(frame, &len);
	len = MIN(len, cap);
	memcpy(buf, data, len);
	g_bytes_unref(frame);
	return len;
}

static void user_want_rx(struct net_backend *be)
{
	((struct net_user *)be)->want_rx = true;
}

/* slirp's checksums are right: the guest need not check them again. */
static uint64_t user_features(struct net_backend *be)
{
	return 1ULL << VIRTIO_NET_F_GUEST_CSUM;
}

/* --- slirp's sockets and timers on the glib loop ----------------------------- */

static int add_poll(int fd, int events, void *opaque)
{
	struct net_user *u = opaque;
	GPollFD *p;

	if (u->npoll == u->pollfds->len)
		g_ptr_array_add(u->pollfds, g_new0(GPollFD, 1));
	p = u->pollfds->pdata[u->npoll];
	p->fd = fd;
	p->events =
	    (events & SLIRP_POLL_IN ? G_IO_IN : 0) | (events & SLIRP_POLL_OUT ? G_IO_OUT : 0) |
	    (events & SLIRP_POLL_PRI ? G_IO_PRI : 0) | (events & SLIRP_POLL_ERR ? G_IO_ERR : 0) |
	    (events & SLIRP_POLL_HUP ? G_IO_HUP : 0);
	p->revents = 0;
	g_source_add_poll(u->source, p);
	return (int)u->npoll++;
}

static int get_revents(int idx, void *opaque)
{
	struct net_user *u = opaque;
	int r;

	if (idx < 0 || (guint)idx >= u->npoll)
		return 0;
	r = ((GPollFD *)u->pollfds->pdata[idx])->revents;
	return (r & G_IO_IN ? SLIRP_POLL_IN : 0) | (r & G_IO_OUT ? SLIRP_POLL_OUT : 0) |
	       (r & G_IO_PRI ? SLIRP_POLL_PRI : 0) | (r & G_IO_ERR ? SLIRP_POLL_ERR : 0) |
	       (r & G_IO_HUP ? SLIRP_POLL_HUP : 0);
}

static int64_t next_timer_ms(struct net_user *u)
{
	int64_t next = -1;

	for (guint i = 0; i < u->timers->len; i++) {
		struct timer *t = u->timers->pdata[i];
		if (t->expire_ms >= 0 && (next < 0 || t->expire_ms < next))
			next = t->expire_ms;
	}
	return next;
}

/*
 * Before the loop sleeps: slirp says which sockets to watch, and how soon
 * its own timers want a turn. The loop may turn many times before then
 * (other devices' work): the first deadline stands until slirp gets its
 * turn, or a busy loop would push it back for ever and slirp's
 * retransmits would never come.
 */
static gboolean source_prepare(GSource *source, gint *timeout)
{
	struct net_user *u = ((struct user_source *)source)->u;
	uint32_t slirp_ms = UINT32_MAX;
	int64_t now = now_ms(), due = next_timer_ms(u);

	for (guint i = 0; i < u->npoll; i++)
		g_source_remove_poll(source, u->pollfds->pdata[i]);
	u->npoll = 0;
	slirp_pollfds_fill(u->slirp, &slirp_ms, add_poll, u);
	if (slirp_ms != UINT32_MAX && (u->slirp_due_ms < 0 || now + slirp_ms < u->slirp_due_ms))
		u->slirp_due_ms = now + slirp_ms;
	if (u->slirp_due_ms >= 0 && (due < 0 || u->slirp_due_ms < due))
		due = u->slirp_due_ms;
	/*
	 * What the guest sent may have released frames slirp holds back (an
	 * ARP answer for a connection waiting on it), and those go out only
	 * in slirp's turn: take it at once, as QEMU polls slirp after every
	 * wake-up.
	 */
	if (u->guest_sent)
		due = now;
	*timeout = due < 0 ? -1 : (gint)MIN(MAX(due - now, 0), G_MAXINT);
	return *timeout == 0;
}

/*
 * After the loop woke: a socket is ready, or a timer is due. slirp keeps
 * two kinds: the ones it arms through timer_mod, and its own TCP timers
 * (delayed ACKs, retransmits, frames waiting for the guest's ARP answer),
 * which run only inside slirp_pollfds_poll and which it announces through
 * the timeout slirp_pollfds_fill gave. Without a turn for the second kind,
 * a connection waits for an unrelated socket to wake the loop.
 */
static gboolean source_check(GSource *source)
{
	struct net_user *u = ((struct user_source *)source)->u;
	int64_t next = next_timer_ms(u), now = now_ms();

	for (guint i = 0; i < u->npoll; i++)
		if (((GPollFD *)u->pollfds->pdata[i])->revents)
			return TRUE;
	return (next >= 0 && next <= now) || (u->slirp_due_ms >= 0 && u->slirp_due_ms <= now);
}

static gboolean source_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
	struct net_user *u = ((struct user_source *)source)->u;
	int64_t now = now_ms();

	/* Also after a timeout: slirp runs its TCP timers from here. */
	u->guest_sent = false;
	u->slirp_due_ms = -1;
	slirp_pollfds_poll(u->slirp, 0, get_revents, u);
	for (guint i = 0; i < u->timers->len; i++) {
		struct timer *t = u->timers->pdata[i];
		if (t->expire_ms >= 0 && t->expire_ms <= now) {
			t->expire_ms = -1;
			slirp_handle_timer(u->slirp, t->id, t->cb_opaque);
		}
	}
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs source_funcs = {
    .prepare = source_prepare,
    .check = source_check,
    .dispatch = source_dispatch,
};

static int64_t clock_get_ns(void *opaque)
{
	return g_get_monotonic_time() * 1000;
}

static void *timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct net_user *u = opaque;
	struct timer *t = g_new(struct timer, 1);

	*t = (struct timer){.expire_ms = -1, .id = id, .cb_opaque = cb_opaque};
	g_ptr_array_add(u->timers, t);
	return t;
}

static void timer_free(void *timer, void *opaque)
{
	g_ptr_array_remove(((struct net_user *)opaque)->timers, timer);
}

static void timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct timer *)timer)->expire_ms = expire_ms;
}

static void guest_error(const char *msg, void *opaque)
{
	/* A hostile guest could fill the terminal; slirp has already coped. */
}

static void register_poll_fd(int fd, void *opaque)
{
}

static void unregister_poll_fd(int fd, void *opaque)
{
}

/* A socket can take more: let the loop run prepare again. */
static void notify(void *opaque)
{
	g_main_context_wakeup(((struct net_user *)opaque)->ctx);
}

static const SlirpCb callbacks = {
    .send_packet = send_packet,
    .guest_error = guest_error,
    .clock_get_ns = clock_get_ns,
    .timer_free = timer_free,
    .timer_mod = timer_mod,
    .register_poll_fd = register_poll_fd,
    .unregister_poll_fd = unregister_poll_fd,
    .notify = notify,
    .timer_new_opaque = timer_new_opaque,
};

/* --- opening ---------------------------------------------------------------- */

static bool add_hostfwds(struct net_user *u, const struct net_config *cfg, GError **err)
{
	for (guint i = 0; i < cfg->hostfwd->len; i++) {
		const struct net_hostfwd *f = &g_array_index(cfg->hostfwd, struct net_hostfwd, i);
		char host[INET_ADDRSTRLEN];

		errno = 0;
		if (slirp_add_hostfwd(u->slirp, f->udp, f->host_addr, f->host_port, f->guest_addr,
		                      f->guest_port) == 0)
			continue;
		inet_ntop(AF_INET, &f->host_addr, host, sizeof(host));
		return husk_fail(err, HUSK_EXIT_USAGE, "--net: hostfwd %s:%s:%u: cannot listen%s%s",
		                 f->udp ? "udp" : "tcp", host, f->host_port, errno ? ": " : "",
		                 errno ? g_strerror(errno) : " (is the port taken?)");
	}
	return true;
}

/*
 * slirp listens on a forwarded TCP port with a backlog of one, so when
 * visitors come at once the kernel drops the SYNs of all but the first
 * two, and they try again 1, 3 and 7 s later. Listening again on a
 * listening socket only sets its backlog: give the ports SOMAXCONN, as
 * any server would. slirp shows its sockets only through the poll list.
 */
static int raise_backlog(int fd, int events, void *opaque)
{
	int listening = 0;
	socklen_t len = sizeof(listening);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
		listen(fd, SOMAXCONN);
	return -1; /* no poll index: the loop's first prepare lists the sockets again */
}

static void user_close(struct net_backend *be)
{
	struct net_user *u = (struct net_user *)be;

	if (u->source) {
		g_source_destroy(u->source);
		g_source_unref(u->source);
	}
	if (u->slirp)
		slirp_cleanup(u->slirp);
	g_queue_clear_full(&u->rxq, (GDestroyNotify)g_bytes_unref);
	g_ptr_array_unref(u->pollfds);
	g_ptr_array_unref(u->timers);
	g_free(u);
}

static const struct net_backend_ops user_ops = {
    .name = "user",
    .csum_valid = true,
    .features = user_features,
    .send = user_send,
    .recv = user_recv,
    .want_rx = user_want_rx,
    .close = user_close,
    .default_mtu = NET_USER_MTU,
};

static void ipv6(struct in6_addr *a, const char *text)
{
	inet_pton(AF_INET6, text, a);
}

struct net_backend *net_user_open(const struct net_config *cfg, GMainContext *ctx,
                                  struct net_port port, GError **err)
{
	struct net_user *u = g_new0(struct net_user, 1);
	size_t mtu = cfg->mtu ? cfg->mtu : NET_USER_MTU;
	SlirpConfig sc = {
	    .version = 4,
	    .restricted = cfg->restrict_guest,
	    .in_enabled = true,
	    .vnetwork = cfg->net,
	    .vnetmask = cfg->mask,
	    .vhost = cfg->host,
	    .in6_enabled = true, /* QEMU's IPv6 defaults: fec0::/64, host ::2, DNS ::3 */
	    .vprefix_len = 64,
	    .vdhcp_start = cfg->dhcp_start,
	    .vnameserver = cfg->dns,
	    .if_mtu = mtu,
	    .if_mru = mtu,
	};

	ipv6(&sc.vprefix_addr6, "fec0::");
	ipv6(&sc.vhost6, "fec0::2");
	ipv6(&sc.vnameserver6, "fec0::3");
	u->be = (struct net_backend){.ops = &user_ops, .port = port};
	u->slirp_due_ms = -1;
	u->ctx = ctx;
	u->pollfds = g_ptr_array_new_with_free_func(g_free);
	u->timers = g_ptr_array_new_with_free_func(g_free);
	g_queue_init(&u->rxq);
	u->slirp = slirp_new(&sc, &callbacks, u);
	if (!u->slirp) {
		user_close(&u->be);
		husk_fail(err, HUSK_EXIT_USAGE, "--net: slirp refused the network settings");
		return NULL;
	}
	if (!add_hostfwds(u, cfg, err)) {
		user_close(&u->be);
		return NULL;
	}
	uint32_t unused = UINT32_MAX;
	slirp_pollfds_fill(u->slirp, &unused, raise_backlog, NULL);
	u->source = g_source_new(&source_funcs, sizeof(struct user_source));
	((struct user_source *)u->source)->u = u;
	g_source_set_name(u->source, "slirp");
	g_source_attach(u->source, ctx);
	return &u->be;
}
