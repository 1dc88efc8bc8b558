// SPDX-License-Identifier: MIT
/*
 * A host TAP device as the guest's network: frames carry a virtio-net
 * header both ways (IFF_VNET_HDR), so checksum and segmentation offloads
 * pass through the host kernel untouched. The device must exist already
 * (`ip tuntap add dev tap0 mode tap user $USER`): creating one needs
 * privileges husk should not have.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/net/net.h"
#include "vmm/error.h"

#define VNET_HDR_BYTES 12 /* struct virtio_net_hdr_v1 */
#define BIT(f)         (1ULL << (f))

struct net_tap {
	struct net_backend be;
	int fd;
	GSource *source;
	gpointer tag;        /* the fd in 'source' */
	bool watching;       /* 'tag' polls for G_IO_IN */
	bool drained;        /* the last read found nothing (EAGAIN) */
	bool guest_offloads; /* the host kernel can hand the guest TSO frames */
	unsigned int ifindex;
	char ifname[IFNAMSIZ];
	int link_fd; /* rtnetlink, told of link changes; -1 if we could not listen */
	gpointer link_tag;
	bool link_up; /* the interface is up and has carrier: read from any thread */
};

static bool tap_send(struct net_backend *be, const struct iovec *iov, int iovcnt, size_t len)
{
	struct net_tap *tap = (struct net_tap *)be;
	ssize_t n;

	do
		n = writev(tap->fd, iov, iovcnt);
	while (n < 0 && errno == EINTR);
	/* EAGAIN: the host's queue is full; EIO: the interface is down. Dropped. */
	return n == (ssize_t)len;
}

static size_t tap_recv(struct net_backend *be, uint8_t *buf, size_t cap)
{
	struct net_tap *tap = (struct net_tap *)be;
	ssize_t n;

	do
		n = read(tap->fd, buf, cap);
	while (n < 0 && errno == EINTR);
	tap->drained = n < 0 && errno == EAGAIN;
	return n > 0 ? (size_t)n : 0;
}

static void watch(struct net_tap *tap, bool on)
{
	if (!tap->tag)
		return; /* the device is gone */
	if (tap->watching != on)
		g_source_modify_unix_fd(tap->source, tap->tag, on ? G_IO_IN : 0);
	tap->watching = on;
}

static void tap_want_rx(struct net_backend *be)
{
	watch((struct net_tap *)be, true);
}

/*
 * While the guest keeps up, the device reads until EAGAIN and the fd stays
 * watched: no epoll_ctl per wake. A device that stopped short (a full
 * guest, a used-up burst) has frames left: the fd is dropped from the poll
 * until its want_rx, so a full guest stops the reads.
 */
static void tap_readable(struct net_tap *tap)
{
	tap->drained = false;
	tap->be.port.rx_ready(tap->be.port.dev);
	if (!tap->drained)
		watch(tap, false);
}

static bool tap_link_up(struct net_backend *be)
{
	return __atomic_load_n(&((struct net_tap *)be)->link_up, __ATOMIC_RELAXED);
}

static bool flags_up(unsigned int flags)
{
	return (flags & IFF_UP) && (flags & IFF_RUNNING);
}

/* Asks the kernel; true when it cannot say. */
static bool query_link(struct net_tap *tap)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool up = true;

	g_strlcpy(ifr.ifr_name, tap->ifname, sizeof(ifr.ifr_name));
	if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0)
		up = flags_up((uint16_t)ifr.ifr_flags);
	if (s >= 0)
		close(s);
	return up;
}

static void set_link(struct net_tap *tap, bool up)
{
	if (up == tap_link_up(&tap->be))
		return;
	__atomic_store_n(&tap->link_up, up, __ATOMIC_RELAXED);
	tap->be.port.link_changed(tap->be.port.dev);
}

/* RTM_NEWLINK messages: the host set our interface up or down. */
static void read_link_changes(struct net_tap *tap)
{
	uint8_t buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	ssize_t n;

	while ((n = recv(tap->link_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		int left = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			if ((h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
				continue;
			const struct ifinfomsg *ifi = NLMSG_DATA(h);
			if ((unsigned int)ifi->ifi_index == tap->ifindex)
				set_link(tap,
				         h->nlmsg_type == RTM_NEWLINK && flags_up(ifi->ifi_flags));
		}
	}
	/* Messages were lost (a busy host): ask instead. */
	if (n < 0 && errno == ENOBUFS)
		set_link(tap, tap->tag && query_link(tap));
}

/*
 * The host deleted the device: the fd reports an error for ever. It leaves
 * the poll (else we would spin), the link is down, and frames either way
 * are dropped from now on.
 */
static void lost_device(struct net_tap *tap)
{
	g_source_remove_unix_fd(tap->source, tap->tag);
	tap->tag = NULL;
	tap->watching = false;
	g_printerr("husk: net: tap=%s: the device is gone; the guest's link is down\n",
	           tap->ifname);
	set_link(tap, false);
}

static gboolean tap_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
	struct net_tap *tap = data;

	if (tap->link_tag && g_source_query_unix_fd(source, tap->link_tag))
		read_link_changes(tap);
	GIOCondition c = tap->tag ? g_source_query_unix_fd(source, tap->tag) : 0;
	if (c & (G_IO_ERR | G_IO_HUP | G_IO_NVAL))
		lost_device(tap);
	else if (c)
		tap_readable(tap);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs tap_source_funcs = {.dispatch = tap_dispatch};

static uint64_t tap_features(struct net_backend *be)
{
	struct net_tap *tap = (struct net_tap *)be;
	/* The host kernel checks and segments what the guest sends. */
	uint64_t f = BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4) |
	             BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_HOST_ECN);

	if (tap->guest_offloads)
		f |= BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_GUEST_TSO4) |
		     BIT(VIRTIO_NET_F_GUEST_TSO6) | BIT(VIRTIO_NET_F_GUEST_ECN);
	return f;
}

static unsigned int tun_offloads(uint64_t guest_features)
{
	unsigned int o = 0;

	if (guest_features & BIT(VIRTIO_NET_F_GUEST_CSUM)) {
		o |= TUN_F_CSUM;
		if (guest_features & BIT(VIRTIO_NET_F_GUEST_TSO4))
			o |= TUN_F_TSO4;
		if (guest_features & BIT(VIRTIO_NET_F_GUEST_TSO6))
			o |= TUN_F_TSO6;
		if (guest_features & BIT(VIRTIO_NET_F_GUEST_ECN))
			o |= TUN_F_TSO_ECN;
	}
	return o;
}

static void tap_set_offloads(struct net_backend *be, uint64_t guest_features)
{
	struct net_tap *tap = (struct net_tap *)be;

	/* Only what the guest accepted: frames it cannot parse would be lost. */
	if (tap->guest_offloads)
		ioctl(tap->fd, TUNSETOFFLOAD, tun_offloads(guest_features));
}

static void tap_close(struct net_backend *be)
{
	struct net_tap *tap = (struct net_tap *)be;

	if (tap->source) {
		g_source_destroy(tap->source);
		g_source_unref(tap->source);
	}
	if (tap->fd >= 0)
		close(tap->fd);
	if (tap->link_fd >= 0)
		close(tap->link_fd);
	g_free(tap);
}

static int tap_kernel_fd(struct net_backend *be)
{
	return ((struct net_tap *)be)->fd;
}

static const struct net_backend_ops tap_ops = {
    .name = "tap",
    .vnet_hdr = true,
    .features = tap_features,
    .send = tap_send,
    .recv = tap_recv,
    .want_rx = tap_want_rx,
    .link_up = tap_link_up,
    .set_offloads = tap_set_offloads,
    .close = tap_close,
    .kernel_fd = tap_kernel_fd,
};

/* TUNSETIFF creates a device that does not exist; husk only opens existing TAPs. */
static bool check_device(const char *name, GError **err)
{
	char *path = g_strdup_printf("/sys/class/net/%s/tun_flags", name);
	struct stat st;
	bool ok = true;

	if (if_nametoindex(name) == 0)
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "--net: tap=%s: no such network interface (create it with: "
		               "ip tuntap add dev %s mode tap user $USER)",
		               name, name);
	else if (stat(path, &st) != 0)
		ok = husk_fail(err, HUSK_EXIT_USAGE, "--net: tap=%s: not a TAP device", name);
	g_free(path);
	return ok;
}

static bool attach(struct net_tap *tap, const char *name, GError **err)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	int hdr = VNET_HDR_BYTES;

	tap->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tap->fd < 0)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--net: tap=%s: cannot open /dev/net/tun: %s", name,
		                 g_strerror(errno));
	g_strlcpy(ifr.ifr_name, name, sizeof(ifr.ifr_name));
	if (ioctl(tap->fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		return husk_fail(err, HUSK_EXIT_USAGE, "--net: tap=%s: %s", name,
		                 e == EPERM    ? "permission denied (the device must be yours: "
		                                 "ip tuntap add ... user $USER)"
		                 : e == EBUSY  ? "in use by another program"
		                 : e == EINVAL ? "it is not a TAP device, or has other flags"
		                               : g_strerror(e));
	}
	if (ioctl(tap->fd, TUNSETVNETHDRSZ, &hdr) < 0)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--net: tap=%s: no virtio-net header size: %s", name,
		                 g_strerror(errno));
	/*
	 * Frames stay charged to the socket's send buffer until the host is
	 * done with them (a bridge's NIC sent them). Its default, wmem_default
	 * (some 200 KiB), is three 64 KiB TSO frames: writes beyond would fail
	 * with EAGAIN and be lost, or hold vhost-net back. Unbounded, as QEMU's
	 * default sndbuf=0: the host's own queues limit a flooding guest.
	 */
	int sndbuf = INT_MAX;
	if (ioctl(tap->fd, TUNSETSNDBUF, &sndbuf) < 0)
		return husk_fail(err, HUSK_EXIT_USAGE, "--net: tap=%s: no send buffer size: %s",
		                 name, g_strerror(errno));
	/* Can the host hand the guest unsegmented frames? Off until the guest says yes. */
	tap->guest_offloads = ioctl(tap->fd, TUNSETOFFLOAD,
	                            TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) == 0;
	ioctl(tap->fd, TUNSETOFFLOAD, 0);
	return true;
}

/*
 * Follows the interface's state, as a NIC's link follows its cable: set
 * down on the host (`ip link set tap0 down`), the guest sees its link go
 * down. Without rtnetlink (a sandbox), the link stays as it was at start.
 */
static void listen_link(struct net_tap *tap, const char *name)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};

	g_strlcpy(tap->ifname, name, sizeof(tap->ifname));
	tap->ifindex = if_nametoindex(name);
	tap->link_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (tap->link_fd >= 0 && bind(tap->link_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(tap->link_fd);
		tap->link_fd = -1;
	}
	/* After listening: a change in between is not lost. */
	tap->link_up = query_link(tap);
}

struct net_backend *net_tap_open(const struct net_config *cfg, GMainContext *ctx,
                                 struct net_port port, GError **err)
{
	struct net_tap *tap = g_new0(struct net_tap, 1);

	tap->be = (struct net_backend){.ops = &tap_ops, .port = port};
	tap->fd = tap->link_fd = -1;
	if (!check_device(cfg->ifname, err) || !attach(tap, cfg->ifname, err)) {
		tap_close(&tap->be);
		return NULL;
	}
	tap->source = g_source_new(&tap_source_funcs, sizeof(GSource));
	g_source_set_callback(tap->source, NULL, tap, NULL);
	g_source_set_name(tap->source, "tap");
	tap->tag = g_source_add_unix_fd(tap->source, tap->fd, 0);
	listen_link(tap, cfg->ifname);
	if (tap->link_fd >= 0)
		tap->link_tag = g_source_add_unix_fd(tap->source, tap->link_fd, G_IO_IN);
	g_source_attach(tap->source, ctx);
	return &tap->be;
}
