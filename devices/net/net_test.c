// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

#include "devices/net/net.h"
#include "vmm/error.h"

static char *addr(struct in_addr a)
{
	static char buf[4][INET_ADDRSTRLEN];
	static int n;

	return (char *)inet_ntop(AF_INET, &a, buf[n++ % 4], INET_ADDRSTRLEN);
}

static struct net_hostfwd *fwd(struct net_config *c, guint i)
{
	g_assert_cmpuint(i, <, c->hostfwd->len);
	return &g_array_index(c->hostfwd, struct net_hostfwd, i);
}

static void test_user_defaults(void)
{
	struct net_config c;

	g_assert_true(net_config_parse("user", 0, &c, NULL));
	g_assert_cmpint(c.kind, ==, NET_USER);
	g_assert_cmpstr(addr(c.net), ==, "10.0.2.0");
	g_assert_cmpstr(addr(c.mask), ==, "255.255.255.0");
	g_assert_cmpstr(addr(c.host), ==, "10.0.2.2");
	g_assert_cmpstr(addr(c.dns), ==, "10.0.2.3");
	g_assert_cmpstr(addr(c.dhcp_start), ==, "10.0.2.15");
	g_assert_false(c.restrict_guest);
	g_assert_cmpuint(c.mtu, ==, 0);
	g_assert_cmpuint(c.hostfwd->len, ==, 0);
	/* A unicast, locally administered address with QEMU's prefix. */
	g_assert_cmphex(c.mac[0], ==, 0x52);
	g_assert_cmphex(c.mac[1], ==, 0x54);
	g_assert_cmphex(c.mac[2], ==, 0x00);
	net_config_clear(&c);
}

static void test_default_mac_is_stable_and_distinct(void)
{
	struct net_config a, b, a2, t;

	g_assert_true(net_config_parse("user", 0, &a, NULL));
	g_assert_true(net_config_parse("user", 1, &b, NULL));
	g_assert_true(net_config_parse("user,restrict=on", 0, &a2, NULL));
	g_assert_true(net_config_parse("tap=tap0", 0, &t, NULL));
	g_assert_true(memcmp(a.mac, a2.mac, 6) == 0);
	g_assert_false(memcmp(a.mac, b.mac, 6) == 0);
	g_assert_false(memcmp(a.mac, t.mac, 6) == 0);
	net_config_clear(&a);
	net_config_clear(&b);
	net_config_clear(&a2);
	net_config_clear(&t);
}

static void test_hostfwd(void)
{
	struct net_config c;

	g_assert_true(net_config_parse("user,hostfwd=tcp:127.0.0.1:8080-:80,"
	                               "hostfwd=udp::5353-10.0.2.20:53,hostfwd=::2222-:22",
	                               0, &c, NULL));
	g_assert_cmpuint(c.hostfwd->len, ==, 3);
	g_assert_false(fwd(&c, 0)->udp);
	g_assert_cmpstr(addr(fwd(&c, 0)->host_addr), ==, "127.0.0.1");
	g_assert_cmpuint(fwd(&c, 0)->host_port, ==, 8080);
	g_assert_cmpstr(addr(fwd(&c, 0)->guest_addr), ==, "10.0.2.15");
	g_assert_cmpuint(fwd(&c, 0)->guest_port, ==, 80);
	g_assert_true(fwd(&c, 1)->udp);
	g_assert_cmpstr(addr(fwd(&c, 1)->host_addr), ==, "0.0.0.0");
	g_assert_cmpstr(addr(fwd(&c, 1)->guest_addr), ==, "10.0.2.20");
	g_assert_cmpuint(fwd(&c, 1)->guest_port, ==, 53);
	g_assert_false(fwd(&c, 2)->udp);
	g_assert_cmpuint(fwd(&c, 2)->host_port, ==, 2222);
	net_config_clear(&c);
}

static void test_other_network(void)
{
	struct net_config c;

	/* hostfwd before net=: its guest address still follows the network. */
	g_assert_true(net_config_parse(
	    "user,hostfwd=tcp::8080-:80,net=192.168.76.0/24,dns=192.168.76.53", 0, &c, NULL));
	g_assert_cmpstr(addr(c.host), ==, "192.168.76.2");
	g_assert_cmpstr(addr(c.dns), ==, "192.168.76.53");
	g_assert_cmpstr(addr(c.dhcp_start), ==, "192.168.76.15");
	g_assert_cmpstr(addr(fwd(&c, 0)->guest_addr), ==, "192.168.76.15");
	net_config_clear(&c);
}

static void test_tap(void)
{
	struct net_config c;

	g_assert_true(net_config_parse("tap=husktap0,mac=52:54:00:ab:cd:ef,mtu=9000", 0, &c, NULL));
	g_assert_cmpint(c.kind, ==, NET_TAP);
	g_assert_cmpstr(c.ifname, ==, "husktap0");
	g_assert_cmphex(c.mac[3], ==, 0xab);
	g_assert_cmphex(c.mac[5], ==, 0xef);
	g_assert_cmpuint(c.mtu, ==, 9000);
	g_assert_cmpint(c.vhost, ==, NET_VHOST_AUTO);
	net_config_clear(&c);
	g_assert_true(net_config_parse("tap=husktap0,vhost=off", 0, &c, NULL));
	g_assert_cmpint(c.vhost, ==, NET_VHOST_OFF);
	net_config_clear(&c);
	g_assert_true(net_config_parse("tap=husktap0,vhost=on", 0, &c, NULL));
	g_assert_cmpint(c.vhost, ==, NET_VHOST_ON);
	net_config_clear(&c);
}

static void test_restrict(void)
{
	struct net_config c;

	g_assert_true(net_config_parse("user,restrict=on", 0, &c, NULL));
	g_assert_true(c.restrict_guest);
	net_config_clear(&c);
	g_assert_true(net_config_parse("user,restrict=on,restrict=off", 0, &c, NULL));
	g_assert_false(c.restrict_guest);
	net_config_clear(&c);
}

static void test_errors(void)
{
	static const struct {
		const char *text, *says;
	} cases[] = {
	    {"", "is not user"},
	    {"slirp", "is not user"},
	    {"user,foo=1", "unknown option \"foo=1\""},
	    {"user,restrict=maybe", "restrict \"maybe\""},
	    {"user,hostfwd=tcp:8080:80", "no '-'"},
	    {"user,hostfwd=tcp::0-:80", "hostfwd \"tcp::0-:80\""},
	    {"user,hostfwd=tcp::70000-:80", "is not tcp|udp"},
	    {"user,hostfwd=tcp::8080-:", "is not tcp|udp"},
	    {"user,hostfwd=tcp:999.1.1.1:8080-:80", "is not tcp|udp"},
	    {"user,hostfwd=sctp::1-:1", "is not tcp|udp"},
	    {"user,mac=01:00:5e:00:00:01", "not a unicast"},
	    {"user,mac=00:00:00:00:00:00", "not a unicast"},
	    {"user,mac=52:54:00:12:34", "not a unicast"},
	    {"user,mac=52:54:00:12:34:567", "not a unicast"},
	    {"user,mtu=65521", "mtu \"65521\""},
	    {"user,mtu=67", "mtu \"67\""},
	    {"user,mtu=-1", "mtu \"-1\""},
	    {"user,net=10.0.2.0/30", "PREFIX from 1 to 29"},
	    {"user,net=banana", "is not ADDR/PREFIX"},
	    {"user,host=10.0.3.2", "host 10.0.3.2 is not a host address"},
	    {"user,dns=10.0.2.255", "dns 10.0.2.255"},
	    {"user,dhcpstart=10.0.2.0", "dhcpstart 10.0.2.0"},
	    {"user,host=example", "is not an IPv4 address"},
	    {"tap=", "not a network interface name"},
	    {"tap=a/b", "not a network interface name"},
	    {"tap=abcdefghijklmnop", "not a network interface name"},
	    {"tap=tap0,hostfwd=tcp::1-:1", "for a TAP device"},
	    {"tap=tap0,vhost=yes", "vhost \"yes\" is not on or off"},
	    {"user,vhost=on", "for user networking"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct net_config c;
		GError *err = NULL;

		g_test_message("--net %s", cases[i].text);
		g_assert_false(net_config_parse(cases[i].text, 0, &c, &err));
		g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
		g_assert_true(g_str_has_prefix(err->message, "--net: "));
		g_assert_nonnull(strstr(err->message, cases[i].says));
		g_assert_null(strchr(err->message, '\n'));
		g_error_free(err);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/net/user-defaults", test_user_defaults);
	g_test_add_func("/net/default-mac", test_default_mac_is_stable_and_distinct);
	g_test_add_func("/net/hostfwd", test_hostfwd);
	g_test_add_func("/net/other-network", test_other_network);
	g_test_add_func("/net/tap", test_tap);
	g_test_add_func("/net/restrict", test_restrict);
	g_test_add_func("/net/errors", test_errors);
	return g_test_run();
}
