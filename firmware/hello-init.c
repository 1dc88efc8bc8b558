// SPDX-License-Identifier: MIT
/*
 * hello-init: the /init of the demo's initramfs. It greets whoever ran
 * `tools/demo` with a few facts the guest kernel sees (release, CPUs,
 * memory, how long the boot took) and then powers the VM off, so the demo
 * ends by itself with husk's "guest powered off" status.
 *
 * It is linked statically and is the only file in the initramfs: no shell,
 * no /dev/console node (making one needs root at build time), so it mounts
 * devtmpfs itself before it opens the console.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Returns 0 or an errno; the console may not be open yet to report it. */
static int mount_fs(const char *type, const char *target)
{
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		return errno;
	if (mount(type, target, type, 0, NULL) < 0 && errno != EBUSY)
		return errno;
	return 0;
}

/*
 * The kernel gives init /dev/console as stdin/stdout/stderr only if the
 * initramfs has that node; otherwise the three are closed. Open it from
 * devtmpfs in either case so the greeting reaches the serial console.
 */
static void open_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);

	if (fd < 0)
		return;
	for (int i = 0; i <= 2; i++) {
		if (fd != i)
			dup2(fd, i);
	}
	if (fd > 2)
		close(fd);
}

/* Seconds since the kernel started, with the centiseconds it reports. */
static double boot_seconds(void)
{
	double up = -1;
	FILE *f = fopen("/proc/uptime", "r");

	if (f) {
		if (fscanf(f, "%lf", &up) != 1)
			up = -1;
		fclose(f);
	}
	return up;
}

static void greet(void)
{
	struct utsname uts;
	struct sysinfo si;
	double up = boot_seconds();

	if (uname(&uts) < 0)
		strcpy(uts.release, "(unknown)");
	if (sysinfo(&si) < 0)
		memset(&si, 0, sizeof(si));

	printf("\n"
	       "  Hello from inside a husk VM!\n"
	       "\n"
	       "  kernel   Linux %s (%s)\n"
	       "  CPUs     %ld\n"
	       "  memory   %llu MiB\n",
	       uts.release, uts.machine, sysconf(_SC_NPROCESSORS_ONLN),
	       (unsigned long long)si.totalram * si.mem_unit >> 20);
	if (up >= 0)
		printf("  booted   in %.2f s (kernel start to this line)\n", up);
	printf("\n  Powering off.\n\n");
	fflush(stdout);
}

int main(void)
{
	int dev_err = mount_fs("devtmpfs", "/dev");
	int proc_err = mount_fs("proc", "/proc");
	int sys_err = mount_fs("sysfs", "/sys"); /* CPU count comes from sysfs */

	open_console();
	if (dev_err || proc_err || sys_err)
		fprintf(stderr, "hello-init: mounting /dev, /proc, /sys: %s, %s, %s\n",
		        strerror(dev_err), strerror(proc_err), strerror(sys_err));

	greet();

	sync();
	reboot(RB_POWER_OFF);
	/* Only reached if the kernel refused; init must never exit. */
	fprintf(stderr, "hello-init: power off failed: %s\n", strerror(errno));
	for (;;)
		pause();
}
