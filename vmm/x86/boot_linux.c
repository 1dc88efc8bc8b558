// SPDX-License-Identifier: MIT
#include "vmm/x86/boot_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/layout.h"
#include "vmm/x86/e820.h"

#define SETUP_HDR_OFFSET 0x1f1      /* struct setup_header within the file and the zero page */
#define HDR_MAGIC        0x53726448 /* "HdrS" */
#define BOOT_FLAG        0xaa55
#define SECTOR           512
#define TYPE_OF_LOADER   0xff  /* "undefined" loader: we have no assigned id */
#define ENTRY_64_OFFSET  0x200 /* startup_64 lies 512 bytes into the payload */
#define PAGE_SIZE_4K     4096ULL
#define OLD_CMDLINE_MAX  255           /* before protocol 2.06 there is no cmdline_size */
#define OLD_INITRD_MAX   0x37ffffffULL /* before 2.03 there is no initrd_addr_max */

#define usage_error(err, ...) husk_fail(err, HUSK_EXIT_USAGE, __VA_ARGS__)

static bool read_at(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* the file shrank under us */
			return false;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return true;
}

bool bzimage_parse(const uint8_t *head, size_t head_len, uint64_t file_size, const char *name,
                   struct bzimage *out, GError **err)
{
	memset(out, 0, sizeof(*out));
	if (head_len >= 4 && memcmp(head, "\177ELF", 4) == 0)
		return usage_error(
		    err, "%s: an ELF vmlinux, not a bzImage; use the distribution's vmlinuz", name);
	if (head_len < 0x202 + 6 || file_size < head_len)
		return usage_error(err, "%s: not a Linux bzImage (too short)", name);

	/* The setup header's own length is encoded in its jump instruction at 0x200. */
	size_t hdr_len = 0x202 + head[0x201] - SETUP_HDR_OFFSET;
	if (hdr_len > sizeof(out->hdr))
		hdr_len = sizeof(out->hdr);
	if (SETUP_HDR_OFFSET + hdr_len > head_len)
		return usage_error(err, "%s: not a Linux bzImage (truncated setup header)", name);
	memcpy(&out->hdr, head + SETUP_HDR_OFFSET, hdr_len);
	out->hdr_len = hdr_len;

	const struct setup_header *h = &out->hdr;
	if (h->boot_flag != BOOT_FLAG || h->header != HDR_MAGIC)
		return usage_error(err, "%s: not a Linux bzImage (no boot signature)", name);
	if (h->version < BZIMAGE_MIN_PROTOCOL)
		return usage_error(
		    err, "%s: boot protocol %u.%02u is too old (husk needs 2.12 or later)", name,
		    h->version >> 8, h->version & 0xff);
	if (!(h->xloadflags & XLF_KERNEL_64))
		return usage_error(err, "%s: a 32-bit kernel; husk boots 64-bit kernels only",
		                   name);
	if (!(h->loadflags & LOADED_HIGH))
		return usage_error(err, "%s: a zImage that loads below 1 MiB; husk needs a bzImage",
		                   name);

	unsigned int setup_sects = h->setup_sects ? h->setup_sects : 4;
	out->payload_offset = (uint64_t)(setup_sects + 1) * SECTOR;
	if (out->payload_offset + ENTRY_64_OFFSET >= file_size)
		return usage_error(err, "%s: truncated bzImage (no kernel after the setup code)",
		                   name);
	out->payload_size = file_size - out->payload_offset;
	return true;
}

static uint64_t kernel_footprint(const struct bzimage *bz)
{
	/* init_size covers the decompressor's whole working area. */
	return bz->payload_size > bz->hdr.init_size ? bz->payload_size : bz->hdr.init_size;
}

static bool open_regular(const char *path, const char *what, int *fd, uint64_t *size, GError **err)
{
	struct stat st;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return usage_error(err, "%s: %s: %s", what, path, g_strerror(errno));
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(*fd);
		return usage_error(err, "%s: %s: not a regular file", what, path);
	}
	*size = (uint64_t)st.st_size;
	return true;
}

/* Opens and checks a bzImage; returns its fd, or -1. */
static int open_bzimage(const char *path, struct bzimage *bz, GError **err)
{
	uint8_t head[64 * SECTOR]; /* setup_sects is at most 63 in practice */
	uint64_t size;
	int fd;

	if (!open_regular(path, "--kernel", &fd, &size, err))
		return -1;
	size_t head_len = size < sizeof(head) ? size : sizeof(head);
	bool ok = read_at(fd, head, head_len, 0);
	if (!ok) {
		usage_error(err, "--kernel: %s: %s", path, g_strerror(errno));
	} else {
		char *name = g_strdup_printf("--kernel: %s", path);
		ok = bzimage_parse(head, head_len, size, name, bz, err);
		g_free(name);
	}
	if (!ok) {
		close(fd);
		return -1;
	}
	return fd;
}

bool linux_check_files(const struct linux_boot_args *args, GError **err)
{
	struct bzimage bz;
	uint64_t size;
	int fd = open_bzimage(args->kernel_path, &bz, err);

	if (fd < 0)
		return false;
	close(fd);
	if (!args->initrd_path)
		return true;
	if (!open_regular(args->initrd_path, "--initrd", &fd, &size, err))
		return false;
	close(fd);
	return true;
}

static bool load_kernel(const struct guest_memory *gm, const char *path, struct bzimage *bz,
                        GError **err)
{
	int fd = open_bzimage(path, bz, err);
	bool ok = fd >= 0;

	if (ok && LAYOUT_KERNEL + kernel_footprint(bz) > gm_low_end(gm)) {
		ok = usage_error(err,
		                 "--memory: %" PRIu64 " MiB is too small for %s (needs %" PRIu64
		                 " MiB to decompress)",
		                 gm->ram_size / MiB, path,
		                 (LAYOUT_KERNEL + kernel_footprint(bz)) / MiB + 1);
	}
	if (ok) {
		void *dst = gm_ptr(gm, LAYOUT_KERNEL, bz->payload_size);
		ok = read_at(fd, dst, bz->payload_size, (off_t)bz->payload_offset);
		if (!ok)
			usage_error(err, "--kernel: %s: %s", path, g_strerror(errno));
	}
	close(fd);
	return ok;
}

/*
 * The initrd goes as high as the kernel allows (initrd_addr_max) and low
 * RAM reaches, page aligned, like other loaders: that keeps it clear of
 * where the kernel decompresses itself.
 */
static bool load_initrd(const struct guest_memory *gm, const struct bzimage *bz, const char *path,
                        struct linux_boot *out, GError **err)
{
	uint64_t size;
	int fd;

	if (!open_regular(path, "--initrd", &fd, &size, err))
		return false;
	uint64_t limit =
	    bz->hdr.initrd_addr_max ? (uint64_t)bz->hdr.initrd_addr_max + 1 : OLD_INITRD_MAX + 1;
	if (limit > gm_low_end(gm))
		limit = gm_low_end(gm);
	uint64_t lowest = LAYOUT_KERNEL + kernel_footprint(bz);
	uint64_t addr = size <= limit ? (limit - size) & ~(PAGE_SIZE_4K - 1) : 0;
	bool ok = true;

	if (size == 0 || addr < lowest) {
		ok = usage_error(err,
		                 "--initrd: %s (%" PRIu64 " MiB) does not fit below %" PRIu64
		                 " MiB next to the kernel; give the VM more --memory",
		                 path, size / MiB, limit / MiB);
	} else if (!read_at(fd, gm_ptr(gm, addr, size), size, 0)) {
		ok = usage_error(err, "--initrd: %s: %s", path, g_strerror(errno));
	}
	close(fd);
	out->initrd_addr = ok ? addr : 0;
	out->initrd_size = ok ? size : 0;
	return ok;
}

static bool write_cmdline(const struct guest_memory *gm, const struct bzimage *bz,
                          const char *cmdline, GError **err)
{
	size_t max = bz->hdr.version >= 0x0206 ? bz->hdr.cmdline_size : OLD_CMDLINE_MAX;
	size_t len = strlen(cmdline);

	if (max >= LAYOUT_CMDLINE_MAX)
		max = LAYOUT_CMDLINE_MAX - 1;
	if (len > max)
		return usage_error(
		    err, "--cmdline: %zu bytes is longer than this kernel accepts (%zu)", len, max);
	gm_write(gm, LAYOUT_CMDLINE, cmdline, len + 1);
	return true;
}

static bool write_zero_page(const struct guest_memory *gm, const struct bzimage *bz,
                            const struct linux_boot_args *args, const struct linux_boot *boot,
                            GError **err)
{
	struct boot_params *bp = gm_ptr(gm, LAYOUT_ZERO_PAGE, sizeof(*bp));

	memset(bp, 0, sizeof(*bp));
	memcpy(&bp->hdr, &bz->hdr, bz->hdr_len);
	bp->hdr.type_of_loader = TYPE_OF_LOADER;
	bp->hdr.loadflags |= CAN_USE_HEAP;
	bp->hdr.heap_end_ptr = 0xfe00;
	bp->hdr.vid_mode = 0xffff; /* "normal": no video mode switch */
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->hdr.ramdisk_image = (uint32_t)boot->initrd_addr;
	bp->hdr.ramdisk_size = (uint32_t)boot->initrd_size;
	bp->ext_ramdisk_image = (uint32_t)(boot->initrd_addr >> 32);
	bp->ext_ramdisk_size = (uint32_t)(boot->initrd_size >> 32);
	bp->acpi_rsdp_addr = args->rsdp;
	bp->e820_entries = (uint8_t)e820_build(gm, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);
	if (bp->e820_entries == 0) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_RUNTIME, "cannot build the e820 memory map");
		return false;
	}
	return true;
}

bool linux_load(const struct guest_memory *gm, const struct linux_boot_args *args,
                struct linux_boot *out, GError **err)
{
	struct bzimage bz;

	memset(out, 0, sizeof(*out));
	if (!load_kernel(gm, args->kernel_path, &bz, err))
		return false;
	if (args->initrd_path && !load_initrd(gm, &bz, args->initrd_path, out, err))
		return false;
	if (!write_cmdline(gm, &bz, args->cmdline ? args->cmdline : "", err))
		return false;
	if (!write_zero_page(gm, &bz, args, out, err))
		return false;
	out->entry = LAYOUT_KERNEL + ENTRY_64_OFFSET;
	out->zero_page = LAYOUT_ZERO_PAGE;
	return true;
}

bool linux_set_rsdp(const struct guest_memory *gm, uint64_t zero_page, uint64_t rsdp, GError **err)
{
	struct boot_params *bp = gm_ptr(gm, zero_page, sizeof(*bp));

	if (!bp)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "the zero page is outside guest RAM");
	bp->acpi_rsdp_addr = rsdp;
	return true;
}
