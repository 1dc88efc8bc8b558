// SPDX-License-Identifier: MIT
/*
 * `husk run IMAGE` with no --kernel: the kernel, initrd and command line
 * come out of the first disk's default boot entry (vmm/bootdisk/), read
 * through the same block backend the guest will use, so a qcow2 with a
 * backing chain boots as well as a raw file.
 */
#include "vmm/disk_boot.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/block/block.h"
#include "devices/virtio/blk.h"
#include "vmm/bootdisk/bootdisk.h"
#include "vmm/error.h"
#include "vmm/fdio.h"

static bool read_image(void *opaque, void *buf, size_t len, uint64_t off)
{
	return block_pread(opaque, buf, len, off) == 0;
}

/*
 * The boot loader takes paths: a memory file that lives as long as husk
 * (a restarted guest reads it again) has one in /proc/self/fd.
 */
static char *memory_file(GBytes *bytes, const char *name, GError **err)
{
	size_t len;
	const uint8_t *p = g_bytes_get_data(bytes, &len);
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "cannot hold the image's %s: %s", name,
		          g_strerror(errno));
		return NULL;
	}
	if (!fdio_write_all(fd, p, len)) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "cannot hold the image's %s: %s", name,
		          g_strerror(errno));
		close(fd);
		return NULL;
	}
	return g_strdup_printf("/proc/self/fd/%d", fd);
}

static bool find_in_disk(const struct disk_config *disk, struct boot_choice *choice, GError **err)
{
	struct block_open_options o = {.format = disk->format, .read_only = true};
	struct block_backend *b = block_open(disk->path, &o, err);

	if (!b)
		return false;
	struct bootdisk_reader r = {.read = read_image, .size = b->size, .opaque = b};
	bool ok = bootdisk_find(&r, choice, err);
	if (!ok)
		g_prefix_error(err, "%s: ", disk->path);
	/* Closed before the guest's disk opens it: image locks are per open file. */
	block_close(b);
	return ok;
}

bool disk_boot_resolve(struct vm_config *cfg, GError **err)
{
	struct boot_choice choice = {0};
	int64_t t0 = g_get_monotonic_time();

	if (!cfg->disks->len)
		return husk_fail(
		    err, HUSK_EXIT_USAGE,
		    "run: give --kernel, or a disk image to boot (try 'husk run --help')");
	if (!find_in_disk(cfg->disks->pdata[0], &choice, err))
		return false;
	bool ok = (cfg->kernel = memory_file(choice.kernel, "kernel", err)) != NULL;
	if (ok && !cfg->initrd && choice.initrd)
		ok = (cfg->initrd = memory_file(choice.initrd, "initrd", err)) != NULL;
	if (ok && !cfg->cmdline)
		cfg->cmdline = g_strdup(choice.cmdline);
	if (ok)
		g_printerr("husk: booting %s: %s\n", choice.description, cfg->cmdline);
	if (ok && cfg->timings)
		g_printerr("husk: found the kernel in %.1f ms\n",
		           (double)(g_get_monotonic_time() - t0) / 1000);
	boot_choice_clear(&choice);
	return ok;
}
