// SPDX-License-Identifier: MIT
#include <glib.h>
#include <string.h>

#include "devices/net/net.h"
#include "devices/virtio/blk.h"
#include "vmm/config.h"
#include "vmm/error.h"
#include "vmm/options.h"

static void parse_run(const char *line, struct vm_config *cfg)
{
	char **argv = g_strsplit(line, " ", -1);
	GError *err = NULL;

	g_assert_true(options_parse_run((int)g_strv_length(argv), argv, cfg, &err));
	g_assert_no_error(err);
	g_strfreev(argv);
}

/* What is saved comes back as it was, NICs through their --net text. */
static void test_round_trip(void)
{
	struct vm_config a, b;
	GError *err = NULL;

	parse_run("run --kernel /k --initrd /i --cmdline x=1 --memory 2G --cpus 3 "
	          "--on-reboot restart --disk /d.qcow2,ro,serial=S1,cache=none "
	          "--net user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::53-:53,restrict=on "
	          "--halt-poll 20 --gpu 2d --display vnc=127.0.0.1:5905",
	          &a);
	char *json = config_to_json(&a, &err);
	g_assert_no_error(err);
	g_assert_true(config_from_json(json, &b, &err));
	g_assert_no_error(err);
	g_assert_cmpstr(b.kernel, ==, "/k");
	g_assert_cmpstr(b.initrd, ==, "/i");
	g_assert_cmpstr(b.cmdline, ==, "x=1");
	g_assert_cmpuint(b.memory, ==, a.memory);
	g_assert_cmpuint(b.cpus, ==, 3);
	g_assert_cmpint(b.halt_poll_us, ==, 20);
	g_assert_cmpint(b.on_reboot, ==, ON_REBOOT_RESTART);
	g_assert_cmpint(b.gpu, ==, GPU_2D);
	g_assert_cmpstr(b.vnc, ==, "127.0.0.1:5905");
	g_assert_cmpuint(b.disks->len, ==, 1);
	const struct disk_config *d = b.disks->pdata[0];
	g_assert_cmpstr(d->path, ==, "/d.qcow2");
	g_assert_true(d->read_only);
	g_assert_cmpstr(d->serial, ==, "S1");
	g_assert_cmpint(d->cache, ==, DISK_CACHE_NONE);
	g_assert_cmpuint(b.nets->len, ==, 1);
	char *ta = config_net_text(a.nets->pdata[0]), *tb = config_net_text(b.nets->pdata[0]);
	g_assert_cmpstr(ta, ==, tb);
	const struct net_config *n = b.nets->pdata[0];
	g_assert_true(n->restrict_guest);
	g_assert_cmpuint(n->hostfwd->len, ==, 2);
	g_assert_cmpuint(g_array_index(n->hostfwd, struct net_hostfwd, 0).host_port, ==, 8080);
	g_assert_true(g_array_index(n->hostfwd, struct net_hostfwd, 1).udp);
	g_free(ta);
	g_free(tb);
	g_free(json);
	config_clear(&a);
	config_clear(&b);
}

/* An instance launched with --user keeps who it becomes; root is never read back. */
static void test_run_as(void)
{
	struct vm_config a, b;
	GError *err = NULL;

	config_init(&a);
	a.run_as = (struct run_as){.set = true, .uid = 4000123, .gid = 4000124};
	char *json = config_to_json(&a, &err);
	g_assert_no_error(err);
	g_assert_true(config_from_json(json, &b, &err));
	g_assert_true(b.run_as.set);
	g_assert_cmpuint(b.run_as.uid, ==, 4000123);
	g_assert_cmpuint(b.run_as.gid, ==, 4000124);
	config_clear(&b);
	g_free(json);
	a.run_as.set = false;
	json = config_to_json(&a, &err);
	g_assert_null(strstr(json, "run_as"));
	g_assert_true(config_from_json(json, &b, &err));
	g_assert_false(b.run_as.set);
	config_clear(&a);
	config_clear(&b);
	g_free(json);
}

static void expect_bad(const char *json, const char *message)
{
	struct vm_config cfg;
	GError *err = NULL;

	g_assert_false(config_from_json(json, &cfg, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_cmpstr(err->message, ==, message);
	g_error_free(err);
}

static void test_bad_input(void)
{
	expect_bad("[]", "VM configuration: not a JSON object");
	expect_bad("", "VM configuration: empty");
	const char *ids =
	    "VM configuration: run_as_uid and run_as_gid are not two ids other than 0";
	expect_bad("{\"run_as_uid\": 0, \"run_as_gid\": 5}", ids);
	expect_bad("{\"run_as_uid\": 5, \"run_as_gid\": 0}", ids);
	expect_bad("{\"run_as_uid\": 5}", ids);
	expect_bad("{\"run_as_gid\": 5}", ids);
	expect_bad("{\"run_as_uid\": \"5\", \"run_as_gid\": 5}", ids);
	expect_bad("{\"run_as_uid\": 4294967296, \"run_as_gid\": 5}", ids);
	expect_bad("  \n", "VM configuration: empty");
	expect_bad("{\"gpu\": \"3d\"}", "VM configuration: gpu is not one of 2d, virgl, none");
	expect_bad("{\"vnc\": \"localhost:5900\"}", "VM configuration: vnc is not ADDRESS:PORT");
	expect_bad("{\"cpus\": 0}", "VM configuration: cpus is not a number from 1 to 254");
	expect_bad("{\"cpus\": \"2\"}", "VM configuration: cpus is not a number from 1 to 254");
	expect_bad("{\"memory\": 4096}", "VM configuration: memory is not a size from 16M to 1T");
	expect_bad("{\"disks\": [{}]}", "VM configuration: a disk has no path");
	expect_bad("{\"nets\": [\"bridge\"]}",
	           "VM configuration: --net: \"bridge\" is not user[,...] or tap=IFNAME[,...]");
}

static void test_shares_not_saved(void)
{
	struct vm_config cfg;
	GError *err = NULL;

	parse_run("run --kernel /k --share /tmp:t", &cfg);
	g_assert_null(config_to_json(&cfg, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_error_free(err);
	config_clear(&cfg);
}

/* -p goes to the first user NIC, which it adds when there is none, after every --net. */
static void test_publish(void)
{
	struct vm_config cfg;
	GError *err = NULL;

	parse_run("run --kernel /k -p 8080:80 -p 0.0.0.0:5353:53/udp --net user,restrict=on", &cfg);
	g_assert_cmpuint(cfg.nets->len, ==, 1);
	char *text = config_net_text(cfg.nets->pdata[0]);
	g_assert_nonnull(strstr(text, ",restrict=on,hostfwd=tcp:127.0.0.1:8080-10.0.2.15:80,"
	                              "hostfwd=udp:0.0.0.0:5353-10.0.2.15:53,"));
	g_free(text);
	config_clear(&cfg);

	parse_run("run --kernel /k -p 2222:22", &cfg);
	g_assert_cmpuint(cfg.nets->len, ==, 1);
	g_assert_false(config_publish(&cfg, "80", &err));
	g_assert_cmpstr(err->message, ==, "-p: \"80\" is not [ADDR:]HOSTPORT:GUESTPORT[/udp]");
	g_clear_error(&err);
	g_assert_false(config_publish(&cfg, "80:80/sctp", &err));
	g_assert_cmpstr(err->message, ==, "-p: \"80:80/sctp\": the protocol is tcp or udp");
	g_clear_error(&err);
	g_assert_false(config_publish(&cfg, "x:80", &err));
	g_assert_true(g_str_has_prefix(err->message, "-p: --net: "));
	g_clear_error(&err);
	config_clear(&cfg);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/config/round-trip", test_round_trip);
	g_test_add_func("/config/bad-input", test_bad_input);
	g_test_add_func("/config/run-as", test_run_as);
	g_test_add_func("/config/shares-not-saved", test_shares_not_saved);
	g_test_add_func("/config/publish", test_publish);
	return g_test_run();
}
