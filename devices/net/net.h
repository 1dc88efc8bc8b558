/* SPDX-License-Identifier: MIT */
/*
 * Networking for virtio-net: what `--net` asks for, and the narrow interface
 * between the device and a backend that carries its frames (user-mode
 * networking on libslirp in user.c, a host TAP device in tap.c).
 */
#ifndef HUSK_NET_H
#define HUSK_NET_H

#include <glib.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The largest Ethernet frame either way: 64 KiB of GSO payload plus headers. */
#define NET_MAX_FRAME (65536 + 14 + 4)
#define NET_MIN_FRAME 14    /* an Ethernet header */
#define NET_USER_MTU  65520 /* slirp's largest; a big MTU is what makes it fast */
#define NET_MIN_MTU   68
#define NET_MAX_MTU   65535

enum net_kind { NET_USER, NET_TAP };

/* tap's vhost=: the host kernel's vhost-net carries the frames, if it can (auto). */
enum net_vhost { NET_VHOST_AUTO, NET_VHOST_ON, NET_VHOST_OFF };

/* hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
struct net_hostfwd {
	bool udp;
	struct in_addr host_addr; /* INADDR_ANY when left out, as QEMU does */
	uint16_t host_port;
	struct in_addr guest_addr; /* the DHCP address when left out */
	uint16_t guest_port;
};

struct net_config {
	enum net_kind kind;
	uint8_t mac[6];
	unsigned int mtu; /* 0: the backend's default */
	char *ifname;     /* tap */
	enum net_vhost vhost;
	/* user: the guest's network, QEMU's layout by default */
	struct in_addr net, mask, host, dns, dhcp_start;
	bool restrict_guest;
	GArray *hostfwd; /* struct net_hostfwd */
};

/*
 * Parses "user[,OPT=V...]" or "tap=IFNAME[,OPT=V...]" as given to --net.
 * 'index' (0 for the first --net) picks the default MAC address.
 */
bool net_config_parse(const char *text, unsigned int index, struct net_config *out, GError **err);
void net_config_clear(struct net_config *cfg);

/* How a backend reaches the device: it has frames for the guest. */
enum net_rx_result {
	NET_RX_TAKEN, /* delivered (or dropped for good reason) */
	NET_RX_LATER, /* no room now: keep it, recv() will be called */
};

struct net_port {
	void *dev;
	/*
	 * Offers one frame (no virtio header) to the guest at once, saving a
	 * copy when the guest has buffers ready. Only for backends that make
	 * frames as they go (slirp); only when they hold none back.
	 */
	enum net_rx_result (*rx_offer)(void *dev, const uint8_t *frame, size_t len);
	/* Frames are waiting in the backend: call recv() (after want_rx only). */
	void (*rx_ready)(void *dev);
	/* The backend's link went up or down (ops->link_up says which). */
	void (*link_changed)(void *dev);
};

struct net_backend;

struct net_backend_ops {
	const char *name;
	/* Frames both ways begin with a struct virtio_net_hdr_v1 (TAP's IFF_VNET_HDR). */
	bool vnet_hdr;
	/* Checksums on frames to the guest are known good (VIRTIO_NET_HDR_F_DATA_VALID). */
	bool csum_valid;
	/* virtio-net offload feature bits the backend can carry out. */
	uint64_t (*features)(struct net_backend *be);
	/* A frame from the guest, 'len' bytes in 'iov'; false if it was dropped. */
	bool (*send)(struct net_backend *be, const struct iovec *iov, int iovcnt, size_t len);
	/* The next frame for the guest into buf: its length, or 0 if there is none now. */
	size_t (*recv)(struct net_backend *be, uint8_t *buf, size_t cap);
	/* Call port.rx_ready once when the next frame arrives. */
	void (*want_rx)(struct net_backend *be);
	/* Whether frames can pass now; NULL: always. From any thread. */
	bool (*link_up)(struct net_backend *be);
	/* The guest accepted these features: offloads it can take on receive. */
	void (*set_offloads)(struct net_backend *be, uint64_t guest_features);
	void (*close)(struct net_backend *be);
	/*
	 * Optional: the fd vhost-net can serve the guest from (TAP). While it
	 * does, the device runs no queue work, so the backend reads nothing.
	 */
	int (*kernel_fd)(struct net_backend *be);
	/* The backend's MTU when the user sets none (0: leave the guest's default). */
	unsigned int default_mtu;
};

struct net_backend {
	const struct net_backend_ops *ops;
	struct net_port port;
	uint64_t rx_dropped; /* frames for the guest it had no room to keep */
};

/* Opens what 'cfg' names, its work on 'ctx'. Errors name the --net option. */
struct net_backend *net_backend_open(const struct net_config *cfg, GMainContext *ctx,
                                     struct net_port port, GError **err);

/* Opens and closes: the TAP device is there and ours, the forwarded ports are free. */
bool net_backend_check(const struct net_config *cfg, GError **err);

struct net_backend *net_user_open(const struct net_config *cfg, GMainContext *ctx,
                                  struct net_port port, GError **err);
struct net_backend *net_tap_open(const struct net_config *cfg, GMainContext *ctx,
                                 struct net_port port, GError **err);

#endif
