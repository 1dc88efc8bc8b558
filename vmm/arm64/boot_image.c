// SPDX-License-Identifier: MIT
#include "vmm/arm64/boot_image.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "vmm/error.h"

#define ALIGN_2M (UINT64_C(2) << 20)
#define PAGE     UINT64_C(4096)
#define FLAGS_BE (UINT64_C(1) << 0)
/* Without image_size (kernels before 3.17): what text_offset was, and room for .bss. */
#define OLD_TEXT_OFFSET UINT64_C(0x80000)

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

bool arm64_image_parse(const uint8_t *head, size_t len, const char *name, struct arm64_image *out,
                       GError **err)
{
	if (len < ARM64_IMAGE_HEADER_SIZE || (uint32_t)le64(head + 56) != ARM64_IMAGE_MAGIC)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: not an arm64 Linux Image (no ARM\\x64 magic in its header)",
		                 name);
	out->text_offset = le64(head + 8);
	out->image_size = le64(head + 16);
	if (le64(head + 24) & FLAGS_BE)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: a big-endian kernel; husk boots little-endian ones", name);
	if (out->image_size == 0) {
		out->text_offset = OLD_TEXT_OFFSET;
		out->image_size = len;
	}
	if (out->text_offset >= ALIGN_2M || out->image_size > ARM64_IMAGE_MAX ||
	    out->image_size < len)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: implausible header (text_offset 0x%" G_GINT64_MODIFIER
		                 "x, image_size %" G_GUINT64_FORMAT ")",
		                 name, out->text_offset, out->image_size);
	return true;
}

/* gzip into a buffer that grows up to ARM64_IMAGE_MAX. */
static bool gunzip(const uint8_t *in, size_t in_len, const char *name, uint8_t **data, size_t *len,
                   GError **err)
{
	z_stream zs = {.next_in = (Bytef *)in, .avail_in = (uInt)in_len};
	size_t cap = MAX(in_len * 4, (size_t)(16 << 20));
	uint8_t *out = g_malloc(cap);
	int rc = inflateInit2(&zs, 16 + MAX_WBITS);

	while (rc == Z_OK) {
		if (zs.total_out == cap) {
			if (cap >= ARM64_IMAGE_MAX)
				break;
			cap = MIN(cap * 2, (size_t)ARM64_IMAGE_MAX);
			out = g_realloc(out, cap);
		}
		zs.next_out = out + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out);
		rc = inflate(&zs, Z_NO_FLUSH);
		if (rc == Z_BUF_ERROR && zs.avail_out)
			break; /* truncated input */
		if (rc == Z_BUF_ERROR)
			rc = Z_OK;
	}
	inflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		g_free(out);
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: cannot decompress it (%s)", name,
		                 rc == Z_OK ? "larger than 256 MiB"
		                 : zs.msg   ? zs.msg
		                            : "corrupt or truncated gzip");
	}
	*data = out;
	*len = zs.total_out;
	return true;
}

bool arm64_image_read(const char *path, uint8_t **data, size_t *len, GError **err)
{
	gchar *raw;
	gsize raw_len;
	GError *e = NULL;

	if (!g_file_get_contents(path, &raw, &raw_len, &e)) {
		husk_fail(err, HUSK_EXIT_USAGE, "--kernel: %s", e->message);
		g_error_free(e);
		return false;
	}
	if (raw_len >= 2 && (uint8_t)raw[0] == 0x1f && (uint8_t)raw[1] == 0x8b) {
		bool ok = raw_len <= UINT32_MAX &&
		          gunzip((const uint8_t *)raw, raw_len, path, data, len, err);
		g_free(raw);
		return ok;
	}
	*data = (uint8_t *)raw;
	*len = raw_len;
	return true;
}

static bool load_initrd(const struct guest_memory *gm, const char *path, uint64_t lo, uint64_t hi,
                        struct arm64_boot *out, GError **err)
{
	gchar *data;
	gsize len;
	GError *e = NULL;

	if (!g_file_get_contents(path, &data, &len, &e)) {
		husk_fail(err, HUSK_EXIT_USAGE, "--initrd: %s", e->message);
		g_error_free(e);
		return false;
	}
	uint64_t addr = hi > len ? (hi - len) & ~(PAGE - 1) : 0;
	bool ok = addr >= lo && gm_write(gm, addr, data, len);
	g_free(data);
	if (!ok)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--initrd: %s (%zu MiB) does not fit in guest RAM with the kernel",
		                 path, (size_t)(len >> 20));
	out->initrd_addr = addr;
	out->initrd_size = len;
	return true;
}

bool arm64_load(const struct guest_memory *gm, uint64_t ram_start, const char *kernel_path,
                const char *initrd_path, struct arm64_boot *out, GError **err)
{
	uint64_t ram_end = ram_start + gm->ram_size;
	struct arm64_image img;
	uint8_t *data;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (!arm64_image_read(kernel_path, &data, &len, err))
		return false;
	bool ok = arm64_image_parse(data, len, kernel_path, &img, err);
	uint64_t kernel =
	    ((ram_start + ALIGN_2M - 1) & ~(ALIGN_2M - 1)) + (ok ? img.text_offset : 0);
	uint64_t kernel_end = ok ? kernel + img.image_size : 0;
	out->dtb_addr = ram_end - ARM64_DTB_MAX;
	if (ok && (gm->ram_size < ARM64_DTB_MAX || kernel_end > out->dtb_addr ||
	           !gm_write(gm, kernel, data, len)))
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "--kernel: %s (%" G_GUINT64_FORMAT
		               " MiB) does not fit in %" G_GUINT64_FORMAT " MiB of RAM",
		               kernel_path, img.image_size >> 20, gm->ram_size >> 20);
	g_free(data);
	if (!ok)
		return false;
	out->entry = kernel;
	return !initrd_path || load_initrd(gm, initrd_path, kernel_end, out->dtb_addr, out, err);
}
