// SPDX-License-Identifier: MIT
/*
 * husk: boot a Linux kernel in a KVM virtual machine.
 * The entry point: subcommands, and the mapping from how the VM ended to
 * husk's exit status (tools/MANUAL.md, "Exit status").
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>
#include <zlib.h>
#include <zstd.h>

#include "devices/display/screenshot.h"
#include "devices/net/net.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/fs.h"
#include "devices/virtio/vsock.h"
#include "vmm/arch.h"
#include "vmm/cli/agent.h"
#include "vmm/cli/image.h"
#include "vmm/cli/instances.h"
#include "vmm/cli/run_image.h"
#include "vmm/disk_boot.h"
#include "vmm/error.h"
#include "vmm/exec.h"
#include "vmm/host_check.h"
#include "vmm/instance/control.h"
#include "vmm/instance/mounts.h"
#include "vmm/options.h"
#include "vmm/process.h"

/*
 * Every subcommand, in the order husk --help lists them. The "Commands:"
 * block of husk --help is made from this table, and the man pages and the
 * bash completion are made from that block: a new subcommand is one row here
 * (and its own --help text).
 */
struct command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv);
};

static int cmd_run(int argc, char **argv);
static int cmd_exec(int argc, char **argv);
static int cmd_check_host(int argc, char **argv);

static const struct command commands[] = {
    {"run", "boot a kernel, a disk image, or a container image's app (--image)", cmd_run},
    {"exec", "run a command in a throwaway VM, or in a running instance", cmd_exec},
    {"image", "create, describe and convert disk images (raw, qcow2)", husk_image_main},
    {"launch", "make a named instance from a cloud image; it runs in the background", launch_main},
    {"list", "list the instances", list_main},
    {"info", "describe an instance", info_main},
    {"start", "boot a stopped instance again", start_main},
    {"stop", "stop an instance", stop_main},
    {"restart", "stop an instance and boot it again", restart_main},
    {"delete", "stop an instance and remove everything it owned", delete_main},
    {"console", "attach to an instance's serial console", console_main},
    {"logs", "print an instance's output: its app's, or its console's", logs_main},
    {"shell", "a login shell on a terminal in a running instance", shell_main},
    {"transfer", "copy a file into or out of a running instance", transfer_main},
    {"screenshot", "write what a running instance's display shows as PNG", screenshot_main},
    {"mount", "mount a host folder in a running instance", mount_main},
    {"umount", "unmount a folder husk mount mounted", umount_main},
    {"check-host", "say whether this host can run husk's VMs", cmd_check_host},
};

/* What this build has, for husk --version (and bug reports). */
static const char features[] = "kvm virtio-blk raw qcow2 qcow2-zlib qcow2-zstd virtio-net "
                               "slirp tap vhost-net virtio-fs virtio-vsock virtio-rng "
                               "bootdisk-ext2/3/4 seccomp instances cloud-init image-download "
                               "agent oci-images virtio-gpu-2d screenshots";

static void print_usage(FILE *out)
{
	fputs("usage: husk COMMAND [OPTION...] [ARG...]\n"
	      "       husk --help | --version\n"
	      "\n"
	      "husk boots Linux kernels and disk images in KVM virtual machines.\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fputs("\n"
	      "'husk COMMAND --help' lists a command's options and its exit statuses;\n"
	      "'man husk-COMMAND' says the same.\n"
	      "\n"
	      "Exit status: 2 for an unknown command; otherwise the command's own.\n"
	      "\n"
	      "Environment: HUSK_HOME, the instances and their images (default\n"
	      "$XDG_DATA_HOME/husk, else ~/.local/share/husk); HUSK_CACHE, husk exec's\n"
	      "kernels and initramfs images (default $XDG_CACHE_HOME/husk, else\n"
	      "~/.cache/husk); HUSK_IMAGE_BASE, the base URL of husk launch's image aliases.\n",
	      out);
}

static void print_version(void)
{
	printf("husk %s\n", HUSK_VERSION);
	printf("features: %s\n", features);
	printf("libraries: glib %u.%u.%u, libslirp %s, zlib %s, zstd %s\n", glib_major_version,
	       glib_minor_version, glib_micro_version, slirp_version_string(), zlibVersion(),
	       ZSTD_versionString());
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int fail(GError *err)
{
	int status = err->domain == HUSK_ERROR ? err->code : HUSK_EXIT_USAGE;

	g_printerr("husk: %s\n", err->message);
	g_error_free(err);
	return status;
}

/* Returns the exit status, or -1 to boot the VM again. */
static int exit_status(const struct vm_config *cfg, enum stop_reason reason, int signo)
{
	switch (reason) {
	case STOP_POWEROFF:
		return HUSK_EXIT_POWEROFF;
	case STOP_REBOOT:
	case STOP_TRIPLE_FAULT:
		if (cfg->on_reboot == ON_REBOOT_RESTART)
			return -1;
		/* A guest that crashes past its panic handler resets the PC: say which. */
		g_printerr("husk: the guest %s\n", stop_reboot_words(reason));
		return HUSK_EXIT_REBOOT;
	case STOP_PANIC:
		g_printerr("husk: the guest kernel panicked\n");
		return HUSK_EXIT_PANIC;
	case STOP_USER:
		g_printerr("husk: stopped from the console\n");
		return HUSK_EXIT_SIGNAL + SIGINT;
	case STOP_SIGNAL:
		g_printerr("husk: stopped by signal %d (%s)\n", signo, strsignal(signo));
		return HUSK_EXIT_SIGNAL + signo;
	case STOP_NONE:
	case STOP_ERROR:
	case STOP_TIMEOUT: /* only husk exec sets a timeout */
		break;
	}
	return HUSK_EXIT_RUNTIME;
}

/* Bad files are usage errors, reported before the host is even looked at. */
static bool check_files(const struct vm_config *cfg, GError **err)
{
	if (!arch_check_files(cfg->kernel, cfg->initrd, err))
		return false;
	for (guint i = 0; i < cfg->disks->len; i++) {
		struct virtio_blk *blk = virtio_blk_open(cfg->disks->pdata[i], 1, err);

		if (!blk)
			return false;
		virtio_blk_close(blk);
	}
	for (guint i = 0; i < cfg->shares->len; i++) {
		struct virtio_fs *fs = virtio_fs_open(cfg->shares->pdata[i], err);

		if (!fs)
			return false;
		virtio_fs_close(fs);
	}
	for (guint i = 0; i < cfg->nets->len; i++)
		if (!net_backend_check(cfg->nets->pdata[i], err))
			return false;
	return true;
}

/* --control: the mount ops alone (no state to keep: a throwaway VM's mounts end with it). */
static bool answer_control(void *opaque, const char *op, JsonObject *request, JsonObject *reply,
                           int fd, bool *take_fd, GError **err)
{
	bool handled;
	bool ok = mount_table_answer(opaque, op, request, reply, &handled, err);

	return handled ? ok : husk_fail(err, HUSK_EXIT_RUNTIME, "unknown op \"%s\"", op);
}

/* The VM, and with --control its socket, until the VM ends. */
static enum stop_reason run_machine(struct machine *m, const struct vm_config *cfg, int *signo,
                                    GError **err)
{
	struct fuse_id_map none = {0};
	struct mount_table *mounts =
	    cfg->control ? mount_table_new(m, NULL, cfg->vsock->path, none, none) : NULL;
	struct control_server *ctl = mounts ? control_server_start(cfg->control, machine_context(m),
	                                                           answer_control, mounts, err)
	                                    : NULL;

	if (mounts && !ctl) {
		mount_table_free(mounts);
		return STOP_ERROR;
	}
	enum stop_reason reason = process_run_machine(m, cfg, signo);
	if (ctl) {
		control_server_stop(ctl);
		unlink(cfg->control);
	}
	mount_table_free(mounts);
	return reason;
}

/* When husk started, for --timings: set first thing in main(). */
static int64_t start_ns;

/* --screenshot-on-exit: a failure is reported, and the VM's own exit status kept. */
static void write_exit_screenshot(struct machine *m, const struct vm_config *cfg)
{
	GError *err = NULL;

	if (cfg->screenshot_on_exit &&
	    !screenshot_take(machine_gpu(m), cfg->screenshot_on_exit, &err)) {
		g_printerr("husk: %s\n", err->message);
		g_error_free(err);
	}
}

static int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	GError *err = NULL;
	int status = -1;

	if (run_image_wanted(argc, argv))
		return run_image_main(argc, argv, start_ns);
	if (!options_parse_run(argc, argv, &cfg, &err))
		return fail(err);
	cfg.start_ns = start_ns;
	if ((!cfg.kernel && !disk_boot_resolve(&cfg, &err)) || !check_files(&cfg, &err)) {
		config_clear(&cfg);
		return fail(err);
	}
	while (status < 0) {
		unsigned int io = cfg.control ? SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES : 0;
		struct machine *m = process_create_machine(&cfg, io, &err);
		int signo = 0;

		if (!m) {
			status = fail(err);
			break;
		}
		enum stop_reason reason = run_machine(m, &cfg, &signo, &err);
		write_exit_screenshot(m, &cfg);
		machine_destroy(m);
		status = err ? fail(err) : exit_status(&cfg, reason, signo);
	}
	config_clear(&cfg);
	return status;
}

static int cmd_exec(int argc, char **argv)
{
	/* "husk exec NAME -- ..." is for an instance; the throwaway VM's options come first. */
	if (argc > 1 && argv[1][0] != '-' &&
	    (agent_exec_wanted(argv[1]) || (argc > 2 && strcmp(argv[2], "--") == 0)))
		return agent_exec_main(argc, argv);
	return exec_main(argc, argv, start_ns);
}

static const char check_host_help[] =
    "usage: husk check-host\n"
    "\n"
    "Say whether this host can run husk's VMs: /dev/kvm opens read-write, its\n"
    "KVM API is the one husk needs, and it is not PVM-backed (a PVM /dev/kvm in a\n"
    "cloud VM cannot boot Linux kernels). Prints one line saying so, or what is\n"
    "missing and how to fix it.\n"
    "\n"
    "Exit status: 0 this host can run VMs, 2 bad usage, 3 it cannot.\n"
    "\n"
    "Files: /dev/kvm (opened read-write; the kvm group usually grants it).\n";

static int cmd_check_host(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(check_host_help, stdout);
		return 0;
	}
	if (argc != 1) {
		fputs(check_host_help, stderr);
		return HUSK_EXIT_USAGE;
	}
	GError *err = NULL;
	int fd = host_open_kvm(false, &err);

	if (fd < 0)
		return fail(err);
	close(fd);
	printf("husk: this host can run VMs\n");
	return 0;
}

int main(int argc, char **argv)
{
	start_ns = now_ns();

	/* A closed stdout (husk ... | head) must not kill the VM: writes fail with EPIPE. */
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		print_usage(stderr);
		return HUSK_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].main(argc - 1, argv + 1);
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		print_usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		print_version();
		return 0;
	}
	g_printerr("husk: unknown command \"%s\" (try 'husk --help')\n", cmd);
	return HUSK_EXIT_USAGE;
}
