// SPDX-License-Identifier: MIT
/*
 * husk: boot a Linux kernel in a KVM virtual machine.
 * The entry point: subcommands, and the mapping from how the VM ended to
 * husk's exit status (README, "Exit status").
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/net.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_fs.h"
#include "vmm/boot_linux.h"
#include "vmm/cli/image.h"
#include "vmm/cli/instances.h"
#include "vmm/disk_boot.h"
#include "vmm/error.h"
#include "vmm/exec.h"
#include "vmm/host_check.h"
#include "vmm/options.h"
#include "vmm/process.h"

static const char usage[] =
    "usage: husk run [--kernel PATH] [--initrd PATH] [--cmdline TEXT] [--memory SIZE]\n"
    "                [--cpus N] [--disk PATH[,OPT...]] [--net ...] [IMAGE]\n"
    "       husk exec [--kernel PATH] [--mount DIR[:PATH][,ro]] [--timeout S] ... -- COMMAND\n"
    "       husk image create|info|convert ...\n"
    "       husk launch IMAGE [--name NAME] [--cpus N] [--memory SIZE] [--disk-size SIZE]\n"
    "                   [--cloud-init FILE] [-p [ADDR:]HOSTPORT:GUESTPORT[/udp]] ...\n"
    "       husk list|info|start|stop|restart|delete|console ...\n"
    "       husk check-host\n"
    "       husk --version\n"
    "\n"
    "  run         boot a Linux kernel, or a disk image's own, with its console here\n"
    "  exec        run one command in a throwaway VM: its output and exit status\n"
    "  image       create, describe and convert disk images (raw, qcow2)\n"
    "  launch      a new named instance from a cloud image, with cloud-init; it runs\n"
    "              in the background until stopped\n"
    "  list, info  the instances, and one in detail (--format json)\n"
    "  start, stop, restart, delete, console   what their names say\n"
    "  check-host  say whether this host can run husk's VMs (exit 0 or 3)\n"
    "\n"
    "'husk run --help' and 'husk exec --help' list every option and the exit statuses.\n";

static const struct {
	const char *name;
	int (*main)(int argc, char **argv);
} instance_commands[] = {
    {"launch", launch_main}, {"list", list_main},       {"info", info_main},
    {"start", start_main},   {"stop", stop_main},       {"restart", restart_main},
    {"delete", delete_main}, {"console", console_main},
};

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
	struct linux_boot_args files = {.kernel_path = cfg->kernel, .initrd_path = cfg->initrd};

	if (!linux_check_files(&files, err))
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

static int cmd_run(int argc, char **argv, int64_t start_ns)
{
	struct vm_config cfg;
	GError *err = NULL;
	int status = -1;

	if (!options_parse_run(argc, argv, &cfg, &err))
		return fail(err);
	cfg.start_ns = start_ns;
	if ((!cfg.kernel && !disk_boot_resolve(&cfg, &err)) || !check_files(&cfg, &err)) {
		config_clear(&cfg);
		return fail(err);
	}
	while (status < 0) {
		struct machine *m = process_create_machine(&cfg, 0, &err);
		int signo = 0;

		if (!m) {
			status = fail(err);
			break;
		}
		enum stop_reason reason = process_run_machine(m, &cfg, &signo);
		machine_destroy(m);
		status = exit_status(&cfg, reason, signo);
	}
	config_clear(&cfg);
	return status;
}

static int cmd_check_host(void)
{
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
	int64_t start_ns = now_ns();

	/* A closed stdout (husk ... | head) must not kill the VM: writes fail with EPIPE. */
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		fputs(usage, stderr);
		return HUSK_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc - 1, argv + 1, start_ns);
	if (strcmp(cmd, "exec") == 0)
		return exec_main(argc - 1, argv + 1, start_ns);
	if (strcmp(cmd, "image") == 0)
		return husk_image_main(argc - 1, argv + 1);
	for (size_t i = 0; i < G_N_ELEMENTS(instance_commands); i++)
		if (strcmp(cmd, instance_commands[i].name) == 0)
			return instance_commands[i].main(argc - 1, argv + 1);
	if (strcmp(cmd, "check-host") == 0 && argc == 2)
		return cmd_check_host();
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("husk %s\n", HUSK_VERSION);
		return 0;
	}
	g_printerr("husk: unknown command \"%s\" (try 'husk --help')\n", cmd);
	return HUSK_EXIT_USAGE;
}
