// SPDX-License-Identifier: MIT
/*
 * User networking's glue between libslirp and the GLib loop, driven by a
 * small guest written here: it answers ARP and plays the server side of
 * one TCP connection, while a host socket visits a forwarded port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/net/net.h"

#define ETH_LEN  14
#define IP_LEN   20
#define TCP_LEN  20
#define ETH_ARP  0x0806
#define ETH_IP   0x0800
#define TCP_FIN  0x01
#define TCP_SYN  0x02
#define TCP_PSH  0x08
#define TCP_ACK  0x10
#define GUEST_IP "10.0.2.15"
#define PAGE     "husk-guest-page"

struct guest {
	GMainContext *ctx; /* the loop slirp runs on */
	struct net_config cfg;
	uint16_t port; /* forwarded from 127.0.0.1 to the guest's port 80 */
	struct net_backend *be;
	uint8_t mac[6];
	GPtrArray *frames; /* GBytes *: what slirp sent, oldest first */
};

static enum net_rx_result take_frame(void *dev, const uint8_t *frame, size_t len)
{
	struct guest *g = dev;

	g_ptr_array_add(g->frames, g_bytes_new(frame, len));
	return NET_RX_TAKEN;
}

static void no_op(void *dev)
{
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* The Internet checksum (RFC 1071) of a pseudo-header sum and 'len' bytes. */
static uint16_t csum(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The oldest frame slirp sent of this ethertype (and, for TCP, these flags); NULL if none. */
static GBytes *next_frame(struct guest *g, uint16_t type, uint8_t tcp_flags)
{
	for (guint i = 0; i < g->frames->len; i++) {
		size_t len;
		const uint8_t *f = g_bytes_get_data(g->frames->pdata[i], &len);
		bool match = len >= ETH_LEN && get16(f + 12) == type;
		if (match && type == ETH_IP)
			match = len >= ETH_LEN + IP_LEN + TCP_LEN &&
			        f[ETH_LEN + 9] == IPPROTO_TCP &&
			        (f[ETH_LEN + IP_LEN + 13] & tcp_flags) == tcp_flags;
		if (match)
			return g_ptr_array_steal_index(g->frames, i);
	}
	return NULL;
}

static void send_frame(struct guest *g, uint8_t *f, size_t len)
{
	struct iovec iov = {f, len};

	g_assert_true(g->be->ops->send(g->be, &iov, 1, len));
}

/* The guest's answer to slirp's "who has GUEST_IP?". */
static void answer_arp(struct guest *g, const uint8_t *req)
{
	uint8_t f[ETH_LEN + 28];

	memcpy(f, req + 6, 6);
	memcpy(f + 6, g->mac, 6);
	put16(f + 12, ETH_ARP);
	memcpy(f + ETH_LEN, req + ETH_LEN, 6); /* hardware and protocol types, sizes */
	put16(f + ETH_LEN + 6, 2);             /* a reply */
	memcpy(f + ETH_LEN + 8, g->mac, 6);
	memcpy(f + ETH_LEN + 14, req + ETH_LEN + 24, 4); /* the address asked for */
	memcpy(f + ETH_LEN + 18, req + ETH_LEN + 8, 10); /* the asker's MAC and address */
	send_frame(g, f, sizeof(f));
}

/* A TCP segment from the guest's port 80, answering 'to' (a frame slirp sent). */
static void send_tcp(struct guest *g, const uint8_t *to, uint32_t seq, uint32_t ack, uint8_t flags,
                     const char *data)
{
	size_t dlen = data ? strlen(data) : 0, len = ETH_LEN + IP_LEN + TCP_LEN + dlen;
	uint8_t *f = g_malloc0(len), *ip = f + ETH_LEN, *tcp = ip + IP_LEN;
	const uint8_t *to_ip = to + ETH_LEN, *to_tcp = to_ip + IP_LEN;
	uint8_t pseudo[12];

	memcpy(f, to + 6, 6);
	memcpy(f + 6, g->mac, 6);
	put16(f + 12, ETH_IP);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(IP_LEN + TCP_LEN + dlen));
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, to_ip + 16, 4); /* from the address it was sent to */
	memcpy(ip + 16, to_ip + 12, 4);
	put16(ip + 10, csum(0, ip, IP_LEN));
	memcpy(tcp, to_tcp + 2, 2); /* ports swapped */
	memcpy(tcp + 2, to_tcp, 2);
	put32(tcp + 4, seq);
	put32(tcp + 8, ack);
	tcp[12] = (TCP_LEN / 4) << 4;
	tcp[13] = flags;
	put16(tcp + 14, 65535);
	memcpy(tcp + TCP_LEN, data ? data : "", dlen);
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	put16(pseudo + 10, (uint16_t)(TCP_LEN + dlen));
	put16(tcp + 16, csum(~csum(0, pseudo, sizeof(pseudo)) & 0xffff, tcp, TCP_LEN + dlen));
	send_frame(g, f, len);
	g_free(f);
}

/*
 * Turns of the loop that never sleep, until a frame of this kind comes
 * out (returned), or 'turns' turns (NULL). No sleeping means no timer can
 * fire: what comes out is what the glue gave slirp a turn for at once.
 */
static GBytes *run_until(struct guest *g, uint16_t type, uint8_t flags, int turns)
{
	GBytes *f;

	while (!(f = next_frame(g, type, flags)) && turns-- > 0)
		g_main_context_iteration(g->ctx, FALSE);
	return f;
}

/* Like run_until, but the loop may sleep (slirp's timers), up to 'ms' in all. */
static GBytes *wait_for(struct guest *g, uint16_t type, uint8_t flags, int64_t ms)
{
	int64_t end = g_get_monotonic_time() + ms * 1000;
	GBytes *f;

	while (!(f = next_frame(g, type, flags)) && g_get_monotonic_time() < end) {
		g_main_context_iteration(g->ctx, FALSE);
		g_usleep(1000);
	}
	return f;
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	g_assert_cmpint(bind(s, (struct sockaddr *)&a, sizeof(a)), ==, 0);
	g_assert_cmpint(getsockname(s, (struct sockaddr *)&a, &len), ==, 0);
	close(s);
	return ntohs(a.sin_port);
}

static int visit(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	const char req[] = "GET / HTTP/1.0\r\n\r\n";

	g_assert_true(connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
	/* The kernel completes the handshake on slirp's listening socket at once. */
	for (int i = 0; i < 1000 && send(s, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0; i++)
		g_usleep(1000);
	shutdown(s, SHUT_WR); /* as nc does */
	return s;
}

/* User networking with a forwarded port, and a guest that has sent nothing yet. */
static void guest_open(struct guest *g)
{
	struct net_port np = {.dev = g, .rx_offer = take_frame, .rx_ready = no_op};
	char *spec;
	GError *err = NULL;

	g->port = free_port();
	spec = g_strdup_printf("user,hostfwd=tcp:127.0.0.1:%u-:80", g->port);
	g->ctx = g_main_context_new();
	g->frames = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_assert_true(net_config_parse(spec, 0, &g->cfg, NULL));
	memcpy(g->mac, g->cfg.mac, 6);
	g->be = net_user_open(&g->cfg, g->ctx, np, &err);
	g_assert_no_error(err);
	g_free(spec);
}

static void guest_close(struct guest *g)
{
	g->be->ops->close(g->be);
	g_ptr_array_unref(g->frames);
	net_config_clear(&g->cfg);
	g_main_context_unref(g->ctx);
}

/* slirp asks for the guest's MAC address before its first frame to it. */
static void answer_first_arp(struct guest *g)
{
	GBytes *f = wait_for(g, ETH_ARP, 0, 2000);

	g_assert_nonnull(f);
	answer_arp(g, g_bytes_get_data(f, NULL));
	g_bytes_unref(f);
}

/*
 * A guest whose address was set by hand has sent nothing: slirp knows no
 * MAC address for it, so a visit to a forwarded port first asks for one
 * and holds the SYN back. The ARP answer must release the SYN in slirp's
 * next turn, not whenever another socket wakes the loop (the visit then
 * waited for ever); the rest of the visit must flow without sleeping on
 * slirp's timers.
 */
static void test_hostfwd_to_silent_guest(void)
{
	struct guest g;
	GBytes *f;

	guest_open(&g);
	int s = visit(g.port);
	answer_first_arp(&g);
	f = run_until(&g, ETH_IP, TCP_SYN, 3);
	g_assert_nonnull(f); /* the SYN, released by the ARP answer */
	const uint8_t *syn = g_bytes_get_data(f, NULL);
	const uint8_t *tcp = syn + ETH_LEN + IP_LEN;
	g_assert_cmpuint(get16(tcp + 2), ==, 80);
	uint32_t host_seq = get32(tcp + 4) + 1, guest_seq = 1000;
	send_tcp(&g, syn, guest_seq++, host_seq, TCP_SYN | TCP_ACK, NULL);

	/* The request, and the host's FIN after it (it half-closed). */
	GString *req = g_string_new(NULL);
	bool fin = false;
	for (int64_t end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
	     !fin && g_get_monotonic_time() < end;) {
		GBytes *seg = run_until(&g, ETH_IP, TCP_ACK, 10);
		if (!seg)
			continue;
		size_t len;
		const uint8_t *p = g_bytes_get_data(seg, &len);
		size_t data = ETH_LEN + IP_LEN + (p[ETH_LEN + IP_LEN + 12] >> 4) * 4;
		g_string_append_len(req, (const char *)p + data, (gssize)(len - data));
		host_seq += (uint32_t)(len - data);
		fin = p[ETH_LEN + IP_LEN + 13] & TCP_FIN;
		if (fin)
			send_tcp(&g, p, guest_seq, ++host_seq, TCP_ACK | TCP_PSH | TCP_FIN,
			         "HTTP/1.0 200 OK\r\n\r\n" PAGE);
		g_bytes_unref(seg);
	}
	g_assert_true(fin);
	g_assert_true(g_str_has_prefix(req->str, "GET / HTTP/1.0"));

	/* The answer reaches the host socket, then its end. */
	GString *answer = g_string_new(NULL);
	for (int64_t end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
	     g_get_monotonic_time() < end;) {
		char buf[256];
		ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			g_string_append_len(answer, buf, n);
		g_main_context_iteration(g.ctx, FALSE);
		g_usleep(1000);
	}
	g_assert_true(g_str_has_suffix(answer->str, PAGE));

	close(s);
	g_string_free(answer, TRUE);
	g_string_free(req, TRUE);
	g_bytes_unref(f);
	guest_close(&g);
}

/*
 * A guest that lets a SYN go unanswered (its listen queue was full) gets
 * it again from slirp's retransmit timer, though no socket stirs in the
 * meantime: slirp's own timers get their turns.
 */
static void test_hostfwd_syn_retransmitted(void)
{
	struct guest g;
	GBytes *f;

	guest_open(&g);
	int s = visit(g.port);
	answer_first_arp(&g);
	f = wait_for(&g, ETH_IP, TCP_SYN, 2000);
	g_assert_nonnull(f); /* dropped, as a full listen queue drops it */
	g_bytes_unref(f);
	/* slirp's first retransmission comes after 6 s (its initial RTO). */
	f = wait_for(&g, ETH_IP, TCP_SYN, 10000);
	g_assert_nonnull(f);

	g_bytes_unref(f);
	close(s);
	guest_close(&g);
}

/*
 * Visitors that come at once all get connected by the host's kernel while
 * slirp works through them: none waits out a dropped SYN (slirp's own
 * backlog of one let two in).
 */
static void test_hostfwd_backlog(void)
{
	enum { VISITORS = 20 };
	struct pollfd pfd[VISITORS];
	struct guest g;

	guest_open(&g);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(g.port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	/* The loop does not run: nobody accepts, the kernel's queue holds them all. */
	for (int i = 0; i < VISITORS; i++) {
		pfd[i] =
		    (struct pollfd){socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), POLLOUT, 0};
		g_assert_true(connect(pfd[i].fd, (struct sockaddr *)&a, sizeof(a)) == 0 ||
		              errno == EINPROGRESS);
	}
	int connected = 0;
	for (int64_t end = g_get_monotonic_time() + 500 * 1000;
	     connected < VISITORS && g_get_monotonic_time() < end;) {
		poll(pfd, VISITORS, 10);
		connected = 0;
		for (int i = 0; i < VISITORS; i++) {
			int e = -1;
			socklen_t len = sizeof(e);
			getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &e, &len);
			connected += (pfd[i].revents & POLLOUT) && e == 0;
		}
	}
	g_assert_cmpint(connected, ==, VISITORS);

	for (int i = 0; i < VISITORS; i++)
		close(pfd[i].fd);
	guest_close(&g);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/net/user/hostfwd-to-silent-guest", test_hostfwd_to_silent_guest);
	g_test_add_func("/net/user/hostfwd-backlog", test_hostfwd_backlog);
	g_test_add_func("/net/user/hostfwd-syn-retransmitted", test_hostfwd_syn_retransmitted);
	return g_test_run();
}
