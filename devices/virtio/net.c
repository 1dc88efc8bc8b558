// SPDX-License-Identifier: MIT
#include "devices/virtio/net.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/net/vhost.h"
#include "vmm/error.h"

#define VIRTIO_ID_NET  1
#define CLASS_ETHERNET 0x020000
#define NET_QUEUE_SIZE 256
#define RXQ            0
#define TXQ            1
#define NQUEUES        2 /* RXQ and TXQ: one pair, no control queue */
/* Frames handled per queue run before the loop gets a turn; the rest is deferred. */
#define NET_BURST 256

#define HDR         VIRTIO_NET_HDR_BYTES
#define NUM_BUFFERS 10 /* offset of num_buffers in the header */
#define BIT(f)      (1ULL << (f))

enum deliver_result { DELIVERED, NO_ROOM, DROPPED };

struct virtio_net {
	struct net_backend *be;
	struct virtio_pci *t;
	uint8_t mac[6];
	unsigned int mtu;  /* offered with VIRTIO_NET_F_MTU when not 0 */
	GSource *deferred; /* work that could not run at once */
	bool rx_deferred, tx_deferred;
	bool busy;         /* inside queue work, on the I/O thread */
	bool offloads_set; /* the backend knows what the guest accepted */
	/* A frame from the backend that waits for guest buffers. */
	uint8_t *rxbuf;
	size_t held_len;
	bool held;
	/* A frame a backend offers straight away (rx_offer), and what became of it. */
	const uint8_t *offer;
	size_t offer_len;
	enum net_rx_result offer_result;
	struct iovec iov[VQ_MAX_SEGS];
	struct vq_used used[NET_QUEUE_SIZE];
	struct vq_chain chain;
	struct virtio_net_stats stats;
	struct vhost_net *vhost; /* the kernel may carry the frames (TAP's vhost=) */
	bool vhost_warned;
	int ring_err_fd[NQUEUES]; /* vhost-net signals a malformed ring here */
	GSource *ring_error;      /* the I/O thread's watch on them */
};

/* --- transmit ------------------------------------------------------------- */

/* Copies 'len' bytes from 'off' in the chain's readable buffers. */
static bool gather(const struct vq_chain *c, size_t off, void *dst, size_t len)
{
	uint8_t *out = dst;

	for (unsigned int i = 0; i < c->nseg && len; i++) {
		const struct vq_seg *s = &c->seg[i];
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		size_t n = MIN(len, s->len - off);
		memcpy(out, (uint8_t *)s->addr + off, n);
		out += n, len -= n, off = 0;
	}
	return len == 0;
}

/* virtio 1.2, 5.1.6.2.1: what a driver may put in a transmit header. */
static bool tx_header_ok(const struct virtio_net_hdr_v1 *h, uint64_t f, size_t frame_len)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return false; /* DATA_VALID and RSC_INFO are for the device to set */
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!(f & BIT(VIRTIO_NET_F_CSUM)))
			return false;
		if ((size_t)le16toh(h->csum_start) + le16toh(h->csum_offset) + 2 > frame_len)
			return false;
	}
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    (gso == VIRTIO_NET_HDR_GSO_NONE || !(f & BIT(VIRTIO_NET_F_HOST_ECN))))
		return false;
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return true;
	uint64_t need = gso == VIRTIO_NET_HDR_GSO_TCPV4   ? BIT(VIRTIO_NET_F_HOST_TSO4)
	                : gso == VIRTIO_NET_HDR_GSO_TCPV6 ? BIT(VIRTIO_NET_F_HOST_TSO6)
	                                                  : 0;
	return need && (f & need) && (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	       le16toh(h->gso_size) != 0;
}

enum net_tx_verdict virtio_net_check_tx(const struct vq_chain *chain, uint64_t features,
                                        size_t *frame_len)
{
	struct virtio_net_hdr_v1 h;

	if (chain->in_len)
		return NET_TX_BAD_CHAIN;
	if (chain->out_len < HDR + NET_MIN_FRAME)
		return NET_TX_TRUNCATED;
	if (chain->out_len - HDR > NET_MAX_FRAME)
		return NET_TX_OVERSIZE;
	*frame_len = chain->out_len - HDR;
	gather(chain, 0, &h, sizeof(h));
	return tx_header_ok(&h, features, *frame_len) ? NET_TX_OK : NET_TX_BAD_HEADER;
}

/* The chain's bytes as an iovec, from 'skip' on: no copy on the way out. */
static int chain_iov(struct virtio_net *n, const struct vq_chain *c, size_t skip)
{
	int cnt = 0;

	for (unsigned int i = 0; i < c->nseg; i++) {
		const struct vq_seg *s = &c->seg[i];
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		n->iov[cnt++] = (struct iovec){(uint8_t *)s->addr + skip, s->len - skip};
		skip = 0;
	}
	return cnt;
}

static void schedule(struct virtio_net *n)
{
	g_source_set_ready_time(n->deferred, 0);
}

static void tx_work(struct virtio_net *n, struct virtio_pci *t, struct virtqueue *vq)
{
	uint64_t f = virtio_pci_features(t);
	unsigned int budget = NET_BURST;
	int got = 0;

	while (budget && (got = vq_pop(vq, &n->chain)) > 0) {
		size_t len = 0;
		enum net_tx_verdict v = virtio_net_check_tx(&n->chain, f, &len);
		if (v == NET_TX_OK) {
			size_t skip = n->be->ops->vnet_hdr ? 0 : HDR;
			int cnt = chain_iov(n, &n->chain, skip);
			if (!n->be->ops->send(n->be, n->iov, cnt, len + HDR - skip))
				v = NET_TX_BACKEND;
		}
		if (v == NET_TX_OK)
			n->stats.tx_frames++;
		else
			n->stats.tx_dropped[v]++;
		vq_push(vq, n->chain.head, 0);
		/*
		 * Each frame, not each burst: a guest that asked to hear of its
		 * next completion (used_event) frees its buffers while we send
		 * the rest, and its TCP stack, which holds back a socket with
		 * too much unfreed (TCP small queues), keeps sending.
		 */
		virtio_pci_used(t, vq, TXQ);
		budget--;
	}
	if (!budget) {
		n->tx_deferred = true; /* more may be waiting: after the loop's turn */
		schedule(n);
	}
	virtio_pci_used(t, vq, TXQ);
}

/* --- receive -------------------------------------------------------------- */

struct rx_stream {
	const uint8_t *hdr, *frame;
	size_t total, done;
	uint8_t *num_buffers[2]; /* where the header's num_buffers bytes landed */
};

/* Fills the chain's writable buffers from the stream; returns the bytes written. */
static uint32_t scatter(const struct vq_chain *c, struct rx_stream *st)
{
	uint32_t written = 0;

	for (unsigned int i = 0; i < c->nseg && st->done < st->total; i++) {
		const struct vq_seg *s = &c->seg[i];
		uint8_t *dst = s->addr;
		size_t room = s->device_writable ? s->len : 0;

		while (room && st->done < st->total) {
			size_t pos = st->done, n;
			if (pos < HDR) {
				n = MIN(room, HDR - pos);
				memcpy(dst, st->hdr + pos, n);
				for (size_t k = 0; k < n; k++)
					if (pos + k == NUM_BUFFERS || pos + k == NUM_BUFFERS + 1)
						st->num_buffers[pos + k - NUM_BUFFERS] = dst + k;
			} else {
				n = MIN(room, st->total - pos);
				memcpy(dst, st->frame + (pos - HDR), n);
			}
			st->done += n, dst += n, room -= n, written += (uint32_t)n;
		}
	}
	return written;
}

int virtio_net_rx_frame(struct virtqueue *vq, bool mergeable, const uint8_t *hdr,
                        const uint8_t *frame, size_t len, struct vq_chain *scratch,
                        struct vq_used *used, unsigned int max_used)
{
	struct rx_stream st = {.hdr = hdr, .frame = frame, .total = HDR + len};
	unsigned int max = mergeable ? MIN(vq->size, max_used) : 1;
	unsigned int nbuf = 0;

	while (st.done < st.total) {
		if (nbuf == max) {
			vq_unpop(vq, used, (uint16_t)nbuf);
			return -1;
		}
		int got = vq_pop(vq, scratch);
		if (got == 0) {
			/* The empty pop asked the driver for a kick at its next buffer. */
			vq_unpop(vq, used, (uint16_t)nbuf);
			return 0;
		}
		if (got < 0)
			return -1; /* the queue is broken; the driver must reset it */
		used[nbuf++] = (struct vq_used){scratch->head, scatter(scratch, &st)};
	}
	if (st.num_buffers[0])
		*st.num_buffers[0] = (uint8_t)nbuf;
	if (st.num_buffers[1])
		*st.num_buffers[1] = (uint8_t)(nbuf >> 8);
	vq_push_many(vq, used, nbuf);
	return 1;
}

static enum deliver_result deliver(struct virtio_net *n, struct virtqueue *vq, uint64_t f,
                                   const uint8_t *hdr, const uint8_t *frame, size_t len)
{
	uint8_t synth[HDR] = {0};

	if (!hdr) {
		if (n->be->ops->csum_valid && (f & BIT(VIRTIO_NET_F_GUEST_CSUM)))
			synth[0] = VIRTIO_NET_HDR_F_DATA_VALID;
		hdr = synth;
	}
	int r = virtio_net_rx_frame(vq, f & BIT(VIRTIO_NET_F_MRG_RXBUF), hdr, frame, len, &n->chain,
	                            n->used, NET_QUEUE_SIZE);
	if (r == 0)
		return NO_ROOM;
	if (r < 0) {
		n->stats.rx_dropped++;
		return DROPPED;
	}
	n->stats.rx_frames++;
	return DELIVERED;
}

static enum deliver_result deliver_held(struct virtio_net *n, struct virtqueue *vq, uint64_t f)
{
	if (!n->be->ops->vnet_hdr)
		return deliver(n, vq, f, NULL, n->rxbuf, n->held_len);
	if (n->held_len < HDR + NET_MIN_FRAME) {
		n->stats.rx_dropped++;
		return DROPPED;
	}
	return deliver(n, vq, f, n->rxbuf, n->rxbuf + HDR, n->held_len - HDR);
}

static void rx_work(struct virtio_net *n, struct virtio_pci *t, struct virtqueue *vq)
{
	uint64_t f = virtio_pci_features(t);
	unsigned int budget = NET_BURST;

	if (!n->offloads_set) {
		if (n->be->ops->set_offloads)
			n->be->ops->set_offloads(n->be, f);
		n->offloads_set = true;
	}
	if (n->offer) {
		/* Behind a held frame, or without room, the backend keeps it. */
		enum deliver_result r =
		    n->held ? NO_ROOM : deliver(n, vq, f, NULL, n->offer, n->offer_len);
		n->offer_result = r == NO_ROOM ? NET_RX_LATER : NET_RX_TAKEN;
		n->offer = NULL;
		budget = 0;
	}
	while (budget) {
		if (!n->held) {
			n->held_len = n->be->ops->recv(n->be, n->rxbuf, HDR + NET_MAX_FRAME);
			if (!n->held_len) {
				n->be->ops->want_rx(n->be);
				break;
			}
			n->held = true;
		}
		if (deliver_held(n, vq, f) == NO_ROOM)
			break; /* the guest's next receive kick brings us back */
		n->held = false;
		if (vq->broken)
			break; /* the driver must reset the queue: no more frames now */
		/* Each frame, when the guest asks (used_event): an ACK waits for no burst. */
		virtio_pci_used(t, vq, RXQ);
		if (!--budget) {
			n->rx_deferred = true;
			schedule(n);
		}
	}
	virtio_pci_used(t, vq, RXQ);
}

static void net_notify(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	struct virtio_net *n = dev;

	n->busy = true;
	if (q == RXQ)
		rx_work(n, t, vq);
	else
		tx_work(n, t, vq);
	n->busy = false;
}

/* --- what the backend calls ------------------------------------------------ */

static enum net_rx_result rx_offer(void *dev, const uint8_t *frame, size_t len)
{
	struct virtio_net *n = dev;

	if (!n->t)
		return NET_RX_TAKEN;
	if (n->busy) {
		/* Called from our own transmit work (slirp answers at once): later. */
		n->rx_deferred = true;
		schedule(n);
		return NET_RX_LATER;
	}
	if (len < NET_MIN_FRAME || len > NET_MAX_FRAME) {
		n->stats.rx_dropped++; /* nothing a guest could take */
		return NET_RX_TAKEN;
	}
	n->offer = frame;
	n->offer_len = len;
	n->offer_result = NET_RX_TAKEN; /* a stopped device drops what it is sent */
	virtio_pci_notify_device(n->t, RXQ);
	n->offer = NULL;
	return n->offer_result;
}

static void rx_ready(void *dev)
{
	struct virtio_net *n = dev;

	if (!n->t)
		return;
	n->rx_deferred = true;
	if (n->busy) {
		schedule(n);
		return;
	}
	n->rx_deferred = false;
	virtio_pci_notify_device(n->t, RXQ);
}

static void link_changed(void *dev)
{
	struct virtio_net *n = dev;

	if (n->t)
		virtio_pci_config_changed(n->t);
}

static gboolean run_deferred(GSource *source, GSourceFunc callback, gpointer data)
{
	struct virtio_net *n = data;

	g_source_set_ready_time(source, -1);
	if (n->tx_deferred) {
		n->tx_deferred = false;
		virtio_pci_notify_device(n->t, TXQ);
	}
	if (n->rx_deferred) {
		n->rx_deferred = false;
		virtio_pci_notify_device(n->t, RXQ);
	}
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs deferred_funcs = {.dispatch = run_deferred};

/* --- device configuration (5.1.4) ------------------------------------------ */

static uint64_t net_features(void *dev)
{
	struct virtio_net *n = dev;
	uint64_t f = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_MRG_RXBUF);

	if (n->mtu)
		f |= BIT(VIRTIO_NET_F_MTU);
	return f | n->be->ops->features(n->be);
}

static void net_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = dev;
	bool up = !n->be->ops->link_up || n->be->ops->link_up(n->be);
	struct virtio_net_config c = {
	    .status = htole16(up ? VIRTIO_NET_S_LINK_UP : 0),
	    .max_virtqueue_pairs = htole16(1),
	    .mtu = htole16((uint16_t)n->mtu),
	};

	memcpy(c.mac, n->mac, sizeof(c.mac));
	if (offset <= sizeof(c) && len <= sizeof(c) - offset)
		memcpy(data, (uint8_t *)&c + offset, len);
}

/* --- vhost-net -------------------------------------------------------------- */

/*
 * DRIVER_OK: the kernel's vhost-net takes both queues if it can. If it
 * cannot, say so once and carry the frames here, as with vhost=off.
 */
static bool net_start(void *dev, struct virtio_pci *t)
{
	struct virtio_net *n = dev;
	uint64_t f = virtio_pci_features(t);
	struct vhost_ring rings[NQUEUES];
	GError *err = NULL;

	if (!n->vhost)
		return false;
	for (unsigned int q = 0; q < NQUEUES; q++) {
		struct virtio_queue_info qi;
		if (!virtio_pci_queue_info(t, q, &qi))
			return false; /* a queue the driver left off: ours to serve */
		rings[q] = (struct vhost_ring){
		    .size = qi.size,
		    .next_avail = qi.next_avail,
		    .desc = qi.desc,
		    .avail = qi.driver,
		    .used = qi.device,
		    .kick_fd = qi.kick_fd,
		    .call_fd = qi.call_fd,
		    .err_fd = n->ring_err_fd[q],
		};
	}
	/* Only what the guest accepted: frames it cannot parse would be lost. */
	if (n->be->ops->set_offloads)
		n->be->ops->set_offloads(n->be, f);
	n->offloads_set = true;
	if (vhost_net_start(n->vhost, virtio_pci_memory(t), f, rings, n->be->ops->kernel_fd(n->be),
	                    &err))
		return true;
	if (!n->vhost_warned)
		g_printerr("husk: net: %s; husk carries the frames instead\n", err->message);
	n->vhost_warned = true;
	g_error_free(err);
	return false;
}

static void net_call_fd_changed(void *dev, unsigned int q, int fd)
{
	struct virtio_net *n = dev;

	vhost_net_set_call(n->vhost, q, fd);
}

/* On a vCPU thread, under the transport's lock, like every queue run. */
static void net_reset(void *dev)
{
	struct virtio_net *n = dev;

	if (n->vhost)
		vhost_net_stop(n->vhost);
	n->held = false;
	n->offloads_set = false;
}

const struct virtio_device_ops virtio_net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .class_code = CLASS_ETHERNET,
    .num_queues = NQUEUES,
    .queue_size = NET_QUEUE_SIZE,
    .features = net_features,
    .config_size = 12, /* mac, status, max_virtqueue_pairs, mtu */
    .config_read = net_config_read,
    .queue_notify = net_notify,
    .reset = net_reset,
    .start = net_start,
    .call_fd_changed = net_call_fd_changed,
};

/*
 * vhost-net found a descriptor out of guest memory, a loop, a bad index:
 * it stops serving the ring, and husk counts it and tells the driver the
 * device needs a reset, as it does for the rings it serves itself.
 */
static gboolean on_ring_error(GSource *source, GSourceFunc callback, gpointer data)
{
	struct virtio_net *n = data;
	eventfd_t count;

	for (unsigned int q = 0; q < NQUEUES; q++) {
		if (eventfd_read(n->ring_err_fd[q], &count) == 0) {
			n->stats.ring_faults += count;
			if (n->t)
				virtio_pci_broken(n->t);
		}
	}
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs ring_error_funcs = {.dispatch = on_ring_error};

static bool watch_ring_errors(struct virtio_net *n, GMainContext *ctx, GError **err)
{
	n->ring_error = g_source_new(&ring_error_funcs, sizeof(GSource));
	g_source_set_callback(n->ring_error, NULL, n, NULL);
	for (unsigned int q = 0; q < NQUEUES; q++) {
		n->ring_err_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->ring_err_fd[q] < 0)
			return husk_fail(err, HUSK_EXIT_RUNTIME, "eventfd: %s", g_strerror(errno));
		g_source_add_unix_fd(n->ring_error, n->ring_err_fd[q], G_IO_IN);
	}
	g_source_attach(n->ring_error, ctx);
	return true;
}

/* TAP's vhost=: on needs /dev/vhost-net; by default it is used if it opens. */
static bool open_vhost(struct virtio_net *n, const struct net_config *cfg, GMainContext *ctx,
                       GError **err)
{
	GError *why = NULL;

	if (!n->be->ops->kernel_fd || cfg->vhost == NET_VHOST_OFF)
		return true;
	n->vhost = vhost_net_open(&why);
	if (n->vhost) {
		return watch_ring_errors(n, ctx, err);
	} else if (cfg->vhost == NET_VHOST_AUTO) {
		g_clear_error(&why);
		return true;
	}
	husk_fail(err, HUSK_EXIT_HOST, "--net: tap=%s,vhost=on: %s", cfg->ifname, why->message);
	g_error_free(why);
	return false;
}

static void close_vhost(struct virtio_net *n)
{
	vhost_net_close(n->vhost);
	if (n->ring_error) {
		g_source_destroy(n->ring_error);
		g_source_unref(n->ring_error);
	}
	for (unsigned int q = 0; q < NQUEUES; q++)
		if (n->ring_err_fd[q] >= 0)
			close(n->ring_err_fd[q]);
}

struct virtio_net *virtio_net_create(const struct net_config *cfg, GMainContext *ctx, GError **err)
{
	struct virtio_net *n = g_new0(struct virtio_net, 1);
	struct net_port port = {
	    .dev = n, .rx_offer = rx_offer, .rx_ready = rx_ready, .link_changed = link_changed};

	memcpy(n->mac, cfg->mac, sizeof(n->mac));
	n->be = net_backend_open(cfg, ctx, port, err);
	if (!n->be) {
		g_free(n);
		return NULL;
	}
	n->ring_err_fd[0] = n->ring_err_fd[1] = -1;
	if (!open_vhost(n, cfg, ctx, err)) {
		close_vhost(n);
		n->be->ops->close(n->be);
		g_free(n);
		return NULL;
	}
	n->mtu = cfg->mtu ? cfg->mtu : n->be->ops->default_mtu;
	n->rxbuf = g_malloc(HDR + NET_MAX_FRAME);
	n->deferred = g_source_new(&deferred_funcs, sizeof(GSource));
	g_source_set_callback(n->deferred, NULL, n, NULL);
	g_source_set_name(n->deferred, "virtio-net deferred");
	g_source_attach(n->deferred, ctx);
	return n;
}

void virtio_net_attach(struct virtio_net *n, struct virtio_pci *t)
{
	n->t = t;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	n->t = NULL; /* the transport may be gone; frames slirp makes while closing are dropped */
	g_source_destroy(n->deferred);
	g_source_unref(n->deferred);
	close_vhost(n);
	n->be->ops->close(n->be);
	g_free(n->rxbuf);
	g_free(n);
}

void virtio_net_get_stats(const struct virtio_net *n, struct virtio_net_stats *out)
{
	*out = n->stats;
	out->rx_queue_full = n->be->rx_dropped;
}
