// SPDX-License-Identifier: MIT
#include "devices/net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/error.h"

#define USAGE_USER                                                                                 \
	"user[,hostfwd=tcp|udp:[HOSTADDR]:PORT-[GUESTADDR]:PORT][,restrict=on]"                    \
	"[,net=ADDR/PREFIX][,host=ADDR][,dns=ADDR][,dhcpstart=ADDR][,mac=MAC][,mtu=N]"
#define USAGE_TAP "tap=IFNAME[,vhost=on|off][,mac=MAC][,mtu=N]"

static bool bad(GError **err, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool bad(GError **err, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	husk_fail(err, HUSK_EXIT_USAGE, "--net: %s", msg);
	g_free(msg);
	return false;
}

static bool parse_number(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	if (!g_ascii_isdigit(*s))
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !errno && !*end && *out >= min && *out <= max;
}

static bool parse_addr(const char *s, struct in_addr *out)
{
	return inet_pton(AF_INET, s, out) == 1;
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char tail;

	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
	                              &b[4], &b[5], &tail) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	/* A NIC needs a unicast address, and not all zeroes. */
	return !(mac[0] & 1) && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]);
}

/* "[ADDR]:PORT"; an empty ADDR leaves *addr as it is. */
static bool parse_endpoint(const char *s, struct in_addr *addr, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	unsigned long n;
	bool ok;

	if (!colon || !parse_number(colon + 1, 1, 65535, &n))
		return false;
	*port = (uint16_t)n;
	if (colon == s)
		return true;
	char *a = g_strndup(s, (gsize)(colon - s));
	ok = parse_addr(a, addr);
	g_free(a);
	return ok;
}

static bool parse_hostfwd(const char *s, struct net_config *cfg, GError **err)
{
	struct net_hostfwd fwd = {.host_addr.s_addr = htonl(INADDR_ANY)};
	const char *rest = s;
	bool ok;

	if (g_str_has_prefix(s, "tcp:")) {
		rest = s + 4;
	} else if (g_str_has_prefix(s, "udp:")) {
		fwd.udp = true;
		rest = s + 4;
	} else if (*s == ':') {
		rest = s + 1; /* QEMU's form with the protocol left out: TCP */
	}
	const char *dash = strchr(rest, '-');
	if (!dash)
		return bad(err, "hostfwd \"%s\" has no '-' between host and guest (%s)", s,
		           "tcp:[HOSTADDR]:PORT-[GUESTADDR]:PORT");
	char *host = g_strndup(rest, (gsize)(dash - rest));
	/* guest_addr stays 0 here: check_user() makes it the DHCP address. */
	ok = parse_endpoint(host, &fwd.host_addr, &fwd.host_port) &&
	     parse_endpoint(dash + 1, &fwd.guest_addr, &fwd.guest_port);
	g_free(host);
	if (!ok)
		return bad(err, "hostfwd \"%s\" is not tcp|udp:[HOSTADDR]:PORT-[GUESTADDR]:PORT",
		           s);
	g_array_append_val(cfg->hostfwd, fwd);
	return true;
}

static uint32_t host_order(struct in_addr a)
{
	return ntohl(a.s_addr);
}

static struct in_addr in_net(const struct net_config *cfg, uint32_t host_part)
{
	return (struct in_addr){htonl((host_order(cfg->net) & host_order(cfg->mask)) | host_part)};
}

static bool parse_net(const char *s, struct net_config *cfg, GError **err)
{
	const char *slash = strchr(s, '/');
	unsigned long prefix = 24;
	bool ok = true;

	if (slash)
		ok = parse_number(slash + 1, 1, 29, &prefix);
	char *a = slash ? g_strndup(s, (gsize)(slash - s)) : g_strdup(s);
	ok = ok && parse_addr(a, &cfg->net);
	g_free(a);
	if (!ok)
		return bad(err, "net \"%s\" is not ADDR/PREFIX with PREFIX from 1 to 29", s);
	cfg->mask.s_addr = htonl(~0u << (32 - prefix));
	return true;
}

/* An address for the host side must be inside the guest's network, not its ends. */
static bool check_inside(const struct net_config *cfg, const char *what, struct in_addr a,
                         GError **err)
{
	uint32_t mask = host_order(cfg->mask), x = host_order(a);

	if ((x & mask) == (host_order(cfg->net) & mask) && (x & ~mask) != 0 && (x & ~mask) != ~mask)
		return true;
	char addr[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, addr, sizeof(addr));
	return bad(err, "%s %s is not a host address of the guest network", what, addr);
}

static bool parse_user_option(const char *p, struct net_config *cfg, bool *set, GError **err)
{
	const char *eq = strchr(p, '=');
	const char *v = eq ? eq + 1 : "";
	size_t klen = eq ? (size_t)(eq - p) : strlen(p);

#define KEY(k) (klen == strlen(k) && strncmp(p, k, klen) == 0)
	if (KEY("hostfwd"))
		return parse_hostfwd(v, cfg, err);
	if (KEY("restrict")) {
		if (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0)
			cfg->restrict_guest = true;
		else if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0)
			cfg->restrict_guest = false;
		else
			return bad(err, "restrict \"%s\" is not on or off", v);
		return true;
	}
	if (KEY("net"))
		return parse_net(v, cfg, err);
	struct in_addr *slot = KEY("host")        ? &cfg->host
	                       : KEY("dns")       ? &cfg->dns
	                       : KEY("dhcpstart") ? &cfg->dhcp_start
	                                          : NULL;
	if (slot) {
		if (!parse_addr(v, slot))
			return bad(err, "%.*s \"%s\" is not an IPv4 address", (int)klen, p, v);
		set[slot == &cfg->host ? 0 : slot == &cfg->dns ? 1 : 2] = true;
		return true;
	}
#undef KEY
	return bad(err, "unknown option \"%s\" for user networking (%s)", p, USAGE_USER);
}

/* A stable address per NIC: QEMU's prefix, the rest from what the NIC is. */
static void default_mac(const char *what, unsigned int index, uint8_t mac[6])
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *c = what; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	h = (h ^ index) * 16777619u;
	mac[0] = 0x52, mac[1] = 0x54, mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16), mac[4] = (uint8_t)(h >> 8), mac[5] = (uint8_t)h;
}

static bool parse_common(const char *p, struct net_config *cfg, bool *mac_set, GError **err)
{
	unsigned long n;

	if (g_str_has_prefix(p, "mac=")) {
		if (!parse_mac(p + 4, cfg->mac))
			return bad(err,
			           "mac \"%s\" is not a unicast address like 52:54:00:12:34:56",
			           p + 4);
		*mac_set = true;
		return true;
	}
	if (!parse_number(p + 4, NET_MIN_MTU, cfg->kind == NET_USER ? NET_USER_MTU : NET_MAX_MTU,
	                  &n))
		return bad(err, "mtu \"%s\" is not a number from %d to %d", p + 4, NET_MIN_MTU,
		           cfg->kind == NET_USER ? NET_USER_MTU : NET_MAX_MTU);
	cfg->mtu = (unsigned int)n;
	return true;
}

static bool parse_tap_option(const char *p, struct net_config *cfg, GError **err)
{
	if (!g_str_has_prefix(p, "vhost="))
		return bad(err, "unknown option \"%s\" for a TAP device (%s)", p, USAGE_TAP);
	const char *v = p + strlen("vhost=");
	if (strcmp(v, "on") == 0)
		cfg->vhost = NET_VHOST_ON;
	else if (strcmp(v, "off") == 0)
		cfg->vhost = NET_VHOST_OFF;
	else
		return bad(err, "vhost \"%s\" is not on or off", v);
	return true;
}

static bool check_user(struct net_config *cfg, const bool *set, GError **err)
{
	if (!set[0])
		cfg->host = in_net(cfg, 2);
	if (!set[1])
		cfg->dns = in_net(cfg, 3);
	if (!set[2])
		cfg->dhcp_start = in_net(cfg, 15);
	if (!check_inside(cfg, "host", cfg->host, err) ||
	    !check_inside(cfg, "dns", cfg->dns, err) ||
	    !check_inside(cfg, "dhcpstart", cfg->dhcp_start, err))
		return false;
	for (guint i = 0; i < cfg->hostfwd->len; i++) {
		struct net_hostfwd *f = &g_array_index(cfg->hostfwd, struct net_hostfwd, i);
		if (f->guest_addr.s_addr == 0)
			f->guest_addr = cfg->dhcp_start;
	}
	return true;
}

bool net_config_parse(const char *text, unsigned int index, struct net_config *out, GError **err)
{
	char **parts = g_strsplit(text, ",", -1);
	bool ok = true, mac_set = false, set[3] = {false, false, false};

	memset(out, 0, sizeof(*out));
	out->hostfwd = g_array_new(FALSE, TRUE, sizeof(struct net_hostfwd));
	out->net.s_addr = htonl(0x0a000200); /* 10.0.2.0/24 */
	out->mask.s_addr = htonl(0xffffff00);
	if (parts[0] && strcmp(parts[0], "user") == 0) {
		out->kind = NET_USER;
	} else if (parts[0] && g_str_has_prefix(parts[0], "tap=")) {
		out->kind = NET_TAP;
		out->ifname = g_strdup(parts[0] + 4);
		if (!*out->ifname || strlen(out->ifname) >= IFNAMSIZ || strchr(out->ifname, '/'))
			ok = bad(err, "\"%s\" is not a network interface name", out->ifname);
	} else {
		ok = bad(err, "\"%s\" is not user[,...] or tap=IFNAME[,...]", text);
	}
	for (int i = 1; ok && parts[i]; i++) {
		const char *p = parts[i];
		if (g_str_has_prefix(p, "mac=") || g_str_has_prefix(p, "mtu="))
			ok = parse_common(p, out, &mac_set, err);
		else if (out->kind == NET_USER)
			ok = parse_user_option(p, out, set, err);
		else
			ok = parse_tap_option(p, out, err);
	}
	if (ok && out->kind == NET_USER)
		ok = check_user(out, set, err);
	if (ok && !mac_set)
		default_mac(out->kind == NET_TAP ? out->ifname : "user", index, out->mac);
	if (!ok)
		net_config_clear(out);
	g_strfreev(parts);
	return ok;
}

void net_config_clear(struct net_config *cfg)
{
	g_free(cfg->ifname);
	if (cfg->hostfwd)
		g_array_unref(cfg->hostfwd);
	memset(cfg, 0, sizeof(*cfg));
}

struct net_backend *net_backend_open(const struct net_config *cfg, GMainContext *ctx,
                                     struct net_port port, GError **err)
{
	return cfg->kind == NET_USER ? net_user_open(cfg, ctx, port, err)
	                             : net_tap_open(cfg, ctx, port, err);
}

static enum net_rx_result drop_frame(void *dev, const uint8_t *frame, size_t len)
{
	return NET_RX_TAKEN;
}

static void ignore_ready(void *dev)
{
}

bool net_backend_check(const struct net_config *cfg, GError **err)
{
	GMainContext *ctx = g_main_context_new();
	struct net_port nowhere = {.rx_offer = drop_frame, .rx_ready = ignore_ready};
	struct net_backend *be = net_backend_open(cfg, ctx, nowhere, err);

	if (be)
		be->ops->close(be);
	g_main_context_unref(ctx);
	return be != NULL;
}
