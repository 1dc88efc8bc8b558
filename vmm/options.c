// SPDX-License-Identifier: MIT
#include "vmm/options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/display/vnc.h"
#include "devices/display/window.h"
#include "devices/net/net.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/fs.h"
#include "devices/virtio/vsock.h"
#include "vmm/error.h"
#include "vmm/size.h"

static gboolean parse_memory(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;
	uint64_t bytes;

	if (!size_parse(value, &bytes)) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_USAGE, "--memory: \"%s\" is not a size",
		            value);
		return FALSE;
	}
	if (bytes < VM_MIN_MEMORY || bytes > VM_MAX_MEMORY) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_USAGE,
		            "--memory: \"%s\" is out of range (16M to 1T)", value);
		return FALSE;
	}
	cfg->memory = bytes;
	return TRUE;
}

/* A decimal number from min to max, with nothing after it; strtoul would take "-1". */
static bool parse_number(const char *value, unsigned long min, unsigned long max,
                         unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(value, &end, 10);
	return !errno && end != value && !*end && value[0] != '-' && *out >= min && *out <= max;
}

static gboolean parse_cpus(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;
	unsigned long n;

	if (!parse_number(value, 1, VM_MAX_CPUS, &n)) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_USAGE,
		            "--cpus: \"%s\" is not a number from 1 to %d", value, VM_MAX_CPUS);
		return FALSE;
	}
	cfg->cpus = (unsigned int)n;
	return TRUE;
}

/* A time in microseconds, for --poll and --halt-poll. */
static bool parse_usec(const char *option, const char *value, unsigned long *us, GError **err)
{
	if (parse_number(value, 0, VM_MAX_POLL_US, us))
		return true;
	g_set_error(err, HUSK_ERROR, HUSK_EXIT_USAGE,
	            "%s: \"%s\" is not a number of microseconds from 0 to %d", option, value,
	            VM_MAX_POLL_US);
	return false;
}

static gboolean parse_poll(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;
	unsigned long n;

	if (!parse_usec("--poll", value, &n, err))
		return FALSE;
	cfg->poll_us = (unsigned int)n;
	return TRUE;
}

static gboolean parse_halt_poll(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;
	unsigned long n;

	if (!parse_usec("--halt-poll", value, &n, err))
		return FALSE;
	cfg->halt_poll_us = (int)n;
	return TRUE;
}

static gboolean parse_user(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;

	return run_as_parse("--user", value, &cfg->run_as, err);
}

static gboolean parse_on_reboot(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;

	if (strcmp(value, "exit") == 0) {
		cfg->on_reboot = ON_REBOOT_EXIT;
	} else if (strcmp(value, "restart") == 0) {
		cfg->on_reboot = ON_REBOOT_RESTART;
	} else {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_USAGE,
		            "--on-reboot: \"%s\" is not one of exit, restart", value);
		return FALSE;
	}
	return TRUE;
}

static gboolean parse_string(char **slot, const char *name, const char *value, GError **err)
{
	if (*value == '\0') {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_USAGE, "%s: empty value", name);
		return FALSE;
	}
	g_free(*slot);
	*slot = g_strdup(value);
	return TRUE;
}

static gboolean parse_kernel(const char *name, const char *value, gpointer data, GError **err)
{
	return parse_string(&((struct vm_config *)data)->kernel, name, value, err);
}

static gboolean parse_initrd(const char *name, const char *value, gpointer data, GError **err)
{
	return parse_string(&((struct vm_config *)data)->initrd, name, value, err);
}

static gboolean parse_disk(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;
	struct disk_config *disk = g_new0(struct disk_config, 1);

	if (!disk_config_parse(value, disk, err)) {
		g_free(disk);
		return FALSE;
	}
	config_add_disk(cfg, disk);
	return TRUE;
}

static gboolean parse_net(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;
	struct net_config *net = g_new0(struct net_config, 1);

	if (!net_config_parse(value, cfg->nets->len, net, err)) {
		g_free(net);
		return FALSE;
	}
	config_add_net(cfg, net);
	return TRUE;
}

static gboolean parse_share(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;
	struct share_config *share = g_new0(struct share_config, 1);

	if (!share_config_parse(value, share, err)) {
		g_free(share);
		return FALSE;
	}
	g_ptr_array_add(cfg->shares, share);
	return TRUE;
}

static gboolean parse_vsock(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;

	if (cfg->vsock)
		return husk_fail(err, HUSK_EXIT_USAGE, "--vsock: only one is supported");
	cfg->vsock = g_new0(struct vsock_config, 1);
	if (vsock_config_parse(value, cfg->vsock, err))
		return TRUE;
	g_clear_pointer(&cfg->vsock, g_free);
	return FALSE;
}

static gboolean parse_gpu(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;

	return config_gpu_parse(value, &cfg->gpu, err);
}

static gboolean parse_dump_dtb(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;

	if (!*value)
		return husk_fail(err, HUSK_EXIT_USAGE, "--dump-dtb: the path is empty");
	g_free(cfg->dump_dtb);
	cfg->dump_dtb = g_strdup(value);
	return TRUE;
}

static gboolean parse_display(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;

	return config_display_parse(value, &cfg->vnc, &cfg->window, err);
}

static gboolean parse_screenshot_on_exit(const char *name, const char *value, gpointer data,
                                         GError **err)
{
	struct vm_config *cfg = data;

	if (!*value)
		return husk_fail(err, HUSK_EXIT_USAGE, "--screenshot-on-exit: the path is empty");
	g_free(cfg->screenshot_on_exit);
	cfg->screenshot_on_exit = g_strdup(value);
	return TRUE;
}

static gboolean parse_control(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;

	g_free(cfg->control);
	cfg->control = g_strdup(value);
	return TRUE;
}

static gboolean parse_cmdline(const char *name, const char *value, gpointer data, GError **err)
{
	struct vm_config *cfg = data;

	/* An empty command line is legitimate, unlike an empty path. */
	g_free(cfg->cmdline);
	cfg->cmdline = g_strdup(value);
	return TRUE;
}

#define CALLBACK(fn) G_OPTION_ARG_CALLBACK, (gpointer)(fn)

static const GOptionEntry run_entries[] = {
    {"kernel", 'k', 0, CALLBACK(parse_kernel),
     "Linux kernel to boot (a bzImage, e.g. vmlinuz; default: the first disk's own)", "PATH"},
    {"initrd", 'i', 0, CALLBACK(parse_initrd), "Initial ramdisk", "PATH"},
    {"cmdline", 'a', 0, CALLBACK(parse_cmdline),
     "Kernel command line (default \"" VM_DEFAULT_CMDLINE "\")", "TEXT"},
    {"disk", 'd', 0, CALLBACK(parse_disk),
     "A disk image (raw or qcow2) as a virtio-blk device (repeatable: vda, vdb, ...)",
     "PATH[,format=raw|qcow2][,ro][,snapshot][,serial=ID][,cache=writeback|none]"},
    {"net", 'n', 0, CALLBACK(parse_net),
     "A virtio-net NIC (repeatable): user networking through slirp, or an existing TAP device",
     "user[,hostfwd=tcp|udp:[ADDR]:PORT-[ADDR]:PORT][,restrict=on][,...]|tap=IFNAME"},
    {"share", 's', 0, CALLBACK(parse_share),
     "Share a host directory (repeatable); in the guest: mount -t virtiofs TAG /mnt", SHARE_SYNTAX},
    {"vsock", 0, 0, CALLBACK(parse_vsock),
     "A virtio-vsock device, the guest's cid N (default 3), served on the Unix socket PATH",
     "PATH[,cid=N]"},
    {"gpu", 0, 0, CALLBACK(parse_gpu),
     "A display: virtio-gpu in 2D (1024x768), virgl (2D and OpenGL through virglrenderer), or none "
     "(default)",
     "2d|none"},
    {"dump-dtb", 0, 0, CALLBACK(parse_dump_dtb),
     "Write the device tree the guest is given to FILE (arm64 hosts)", "FILE"},
    {"display", 0, 0, CALLBACK(parse_display),
     "Show the display (--gpu) to VNC clients at ADDRESS:PORT (127.0.0.1:5900 keeps it to this "
     "host) or in a window on this desktop, with a keyboard and a tablet for their input; or "
     "none (default)",
     "none|window|vnc=ADDRESS:PORT"},
    {"screenshot-on-exit", 0, 0, CALLBACK(parse_screenshot_on_exit),
     "Once the VM stopped, write what its display (--gpu) showed last to FILE as PNG", "FILE"},
    {"control", 0, 0, CALLBACK(parse_control),
     "Serve husk mount and husk umount on the Unix socket PATH (with --vsock: the guest "
     "runs husk-agent)",
     "PATH"},
    {"publish", 'p', 0, G_OPTION_ARG_STRING_ARRAY, NULL,
     "Publish a guest port on the host, as docker run -p (repeatable; ADDR 127.0.0.1 by default)",
     "[ADDR:]HOSTPORT:GUESTPORT[/udp]"},
    {"memory", 'm', 0, CALLBACK(parse_memory), "Guest RAM, e.g. 512M or 2G (default 512M)", "SIZE"},
    {"cpus", 'c', 0, CALLBACK(parse_cpus), "Number of vCPUs (default 1)", "N"},
    {"poll", 0, 0, CALLBACK(parse_poll),
     "The longest a shared folder's threads poll a busy queue (default " G_STRINGIFY(
         VM_DEFAULT_POLL_US) "; 0: off)",
     "USEC"},
    {"halt-poll", 0, 0, CALLBACK(parse_halt_poll),
     "The longest a halted vCPU waits in the host kernel for an interrupt before sleeping "
     "(default: the host's kvm.halt_poll_ns; 0: off)",
     "USEC"},
    {"on-reboot", 0, 0, CALLBACK(parse_on_reboot),
     "What a guest reboot does: exit (status 5, default) or restart", "exit|restart"},
    {"user", 0, 0, CALLBACK(parse_user),
     "Once the VM is set up, run as USER (and GROUP; default HUSK_USER) instead of root",
     "USER[:GROUP]"},
    {"allow-pvm", 0, 0, G_OPTION_ARG_NONE, NULL, "Run even on a PVM-backed /dev/kvm", NULL},
    {"timings", 0, 0, G_OPTION_ARG_NONE, NULL,
     "Print how long husk took to set up the VM, and at exit its shares' requests (to stderr)",
     NULL},
    {"no-seccomp", 0, 0, G_OPTION_ARG_NONE, NULL,
     "Run without husk's system-call filter (for debugging husk)", NULL},
    {0},
};

static const char run_description[] =
    "IMAGE, if given, is the first disk (--disk IMAGE). Without --kernel husk boots\n"
    "the kernel the first disk holds: its partition table (GPT, MBR), the ext2/3/4\n"
    "filesystem with /boot, and GRUB's grub.cfg default entry, Boot Loader\n"
    "Specification entries, or the newest /boot/vmlinuz-*. --initrd and --cmdline\n"
    "still replace those parts; console=ttyS0 is added when the entry has no serial\n"
    "console. Other filesystems (btrfs, xfs) are not read: give --kernel there.\n"
    "\n"
    "husk run --image PATH[:TAG] runs a container image's app in its own VM instead\n"
    "('husk run --image PATH --help' lists its options).\n"
    "\n"
    "Exit status: 0 guest powered off, 1 husk failed while running, 2 bad usage\n"
    "or input file, 3 this host cannot run VMs, 4 guest kernel panicked, 5 guest\n"
    "rebooted, 128+N stopped by signal N (130: also the console escape).\n"
    "\n"
    "Files: husk reads the kernel, initrd and disk images it is given, writes only\n"
    "to disks not marked ro or snapshot, and serves --share folders to the guest.\n"
    "\n"
    "Console: the guest's ttyS0 is on this terminal. Ctrl-A x quits, Ctrl-A h helps.\n"
    "\n"
    "--net user options: hostfwd=tcp|udp:[HOSTADDR]:PORT-[GUESTADDR]:PORT (repeatable;\n"
    "no HOSTADDR listens on every address), restrict=on (only forwarded ports),\n"
    "net=10.0.2.0/24, host=10.0.2.2, dns=10.0.2.3, dhcpstart=10.0.2.15, mac=MAC,\n"
    "mtu=N (default 65520). --net tap=IFNAME options: mac=MAC, mtu=N, vhost=on|off\n"
    "(the host kernel's vhost-net moves the frames; by default when /dev/vhost-net\n"
    "opens); the guest's link is down while IFNAME is (ip link set IFNAME down).\n"
    "\n"
    "--share options: ro, submounts (host mount points inside the share are\n"
    "submounts in the guest, with their own device numbers), noxattr (no extended\n"
    "attributes, as virtiofsd's default: fewer round trips per file written),\n"
    "uid=HOST:GUEST and gid=HOST:GUEST (the guest sees host owner HOST as GUEST,\n"
    "and GUEST as HOST; its chowns are mapped back).\n"
    "--share: what the guest creates belongs to the user running husk; a chown\n"
    "passes through where the host allows it. Run as root, husk lets no setuid or\n"
    "setgid file and no device node reach the host.\n"
    "\n"
    "--vsock: a host program connects to PATH and writes \"CONNECT <port>\\n\"; once the\n"
    "guest accepts, it reads \"OK <hostport>\\n\" and the socket is the stream (a guest\n"
    "that refuses closes it). A guest's connection to host (cid 2) port P reaches\n"
    "the Unix socket PATH_P, if something listens there.";

/*
 * GOption's own errors (unknown option, missing argument) become usage
 * errors like ours, and lose the capital letter Unix tools do not use.
 */
static void normalize_error(GError *err)
{
	if (!err || err->domain == HUSK_ERROR)
		return;
	err->domain = HUSK_ERROR;
	err->code = HUSK_EXIT_USAGE;
	if (g_ascii_isupper(err->message[0]) && g_ascii_islower(err->message[1]))
		err->message[0] = g_ascii_tolower(err->message[0]);
}

/* `husk run IMAGE` is `husk run --disk IMAGE`, the first disk: the one booted from. */
static bool take_image(int argc, char **argv, struct vm_config *cfg, GError **err)
{
	if (argc > 2) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_USAGE,
		            "run: unexpected argument \"%s\" (try 'husk run --help')", argv[2]);
		return false;
	}
	if (argc < 2)
		return true;
	struct disk_config *disk = g_new0(struct disk_config, 1);
	if (!disk_config_parse(argv[1], disk, err)) {
		g_free(disk);
		return false;
	}
	g_ptr_array_insert(cfg->disks, 0, disk);
	return true;
}

/*
 * HUSK_USER when --user is not given; a restart on reboot sets the VM up
 * again, which the user husk became cannot.
 */
static bool user_from_env(struct vm_config *cfg, GError **err)
{
	const char *env = g_getenv("HUSK_USER");

	if (!cfg->run_as.set && env && *env && !run_as_parse("HUSK_USER", env, &cfg->run_as, err))
		return false;
	if (cfg->run_as.set && cfg->on_reboot == ON_REBOOT_RESTART)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--user: not with --on-reboot restart (setting the VM up again "
		                 "takes root)");
	return true;
}

bool options_parse_run(int argc, char **argv, struct vm_config *cfg, GError **err)
{
	GOptionEntry entries[G_N_ELEMENTS(run_entries)];
	gboolean allow_pvm = FALSE, timings = FALSE, no_seccomp = FALSE;
	char **publish = NULL;

	config_init(cfg);

	memcpy(entries, run_entries, sizeof(entries));
	for (size_t i = 0; entries[i].long_name; i++) {
		if (strcmp(entries[i].long_name, "allow-pvm") == 0)
			entries[i].arg_data = &allow_pvm;
		else if (strcmp(entries[i].long_name, "timings") == 0)
			entries[i].arg_data = &timings;
		else if (strcmp(entries[i].long_name, "no-seccomp") == 0)
			entries[i].arg_data = &no_seccomp;
		else if (strcmp(entries[i].long_name, "publish") == 0)
			entries[i].arg_data = &publish;
	}

	GOptionContext *ctx = g_option_context_new("[IMAGE] - boot a Linux kernel in a VM");
	GOptionGroup *group =
	    g_option_group_new("run", "husk run options", "Show run options", cfg, NULL);
	g_option_group_add_entries(group, entries);
	g_option_context_set_main_group(ctx, group);
	g_option_context_set_description(ctx, run_description);
	g_option_context_set_strict_posix(ctx, FALSE);

	char **args = g_new0(char *, argc + 1);
	memcpy(args, argv, sizeof(char *) * argc);
	int nargs = argc;
	bool ok = g_option_context_parse(ctx, &nargs, &args, err);
	normalize_error(err ? *err : NULL);
	if (ok)
		ok = take_image(nargs, args, cfg, err);
	/* After every --net: a port goes to the first user-networking NIC. */
	for (char **p = publish; ok && p && *p; p++)
		ok = config_publish(cfg, *p, err);
	if (ok)
		ok = user_from_env(cfg, err);
	g_strfreev(publish);
	g_free(args);
	g_option_context_free(ctx);

	cfg->allow_pvm = allow_pvm;
	cfg->timings = timings;
	cfg->no_seccomp = no_seccomp;
	/* Without --kernel, the disk's boot entry has a command line (vmm/disk_boot.c). */
	if (ok && cfg->screenshot_on_exit && cfg->gpu == GPU_NONE)
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "--screenshot-on-exit needs a display (--gpu 2d or virgl)");
	if (ok && cfg->vnc && cfg->gpu == GPU_NONE)
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "--display vnc needs a display (--gpu 2d or virgl)");
	if (ok && cfg->vnc && !vnc_available())
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "--display vnc: husk was built without libvncserver");
	if (ok && cfg->window && cfg->gpu == GPU_NONE)
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "--display window needs a display (--gpu 2d or virgl)");
	if (ok && cfg->window && !window_available())
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "--display window: husk was built without SDL2");
	if (ok && cfg->control && !cfg->vsock)
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "--control: needs --vsock (mounts go through "
		               "the guest's agent)");
	if (ok && cfg->kernel && !cfg->cmdline)
		cfg->cmdline = g_strdup(VM_DEFAULT_CMDLINE);
	if (!ok)
		config_clear(cfg);
	return ok;
}
