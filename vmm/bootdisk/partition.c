// SPDX-License-Identifier: MIT
/*
 * GPT (UEFI 2.10, 5.3) and MBR partition tables. Every number read here
 * comes from the image, so every offset is checked against the disk's size
 * with overflow-checked arithmetic before it is used.
 */
#include "vmm/bootdisk/partition.h"

#include <string.h>

#include "vmm/error.h"

#define SECTOR 512

#define MBR_SIGNATURE_OFFSET 510
#define MBR_TABLE_OFFSET     446
#define MBR_GPT_PROTECTIVE   0xee

/* A damaged or looping EBR chain ends here. */
#define MBR_LOGICAL_MAX 64

#define GPT_ENTRIES_MAX_BYTES (1u << 20)

bool reader_read(const struct bootdisk_reader *r, void *buf, size_t len, uint64_t off)
{
	if (off > r->size || len > r->size - off)
		return false;
	return r->read(r->opaque, buf, len, off);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

uint32_t gpt_crc32(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffff;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int bit = 0; bit < 8; bit++)
			crc = crc >> 1 ^ (0xedb88320 & -(crc & 1));
	}
	return ~crc;
}

/* A partition is kept only when it lies within the disk. */
static bool add(struct partition *parts, int *n, unsigned number, enum partition_kind kind,
                uint64_t first_sector, uint64_t sectors, uint64_t disk_size)
{
	uint64_t offset, size;

	if (*n >= PARTITION_MAX || sectors == 0 ||
	    __builtin_mul_overflow(first_sector, SECTOR, &offset) ||
	    __builtin_mul_overflow(sectors, SECTOR, &size) || offset > disk_size ||
	    size > disk_size - offset)
		return false;
	parts[(*n)++] = (struct partition){number, kind, offset, size};
	return true;
}

/* GPT's type GUIDs, as text: the on-disk form mixes byte orders. */
static void guid_text(const uint8_t *g, char out[37])
{
	g_snprintf(out, 37, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", le32(g),
	           g[4] | g[5] << 8, g[6] | g[7] << 8, g[8], g[9], g[10], g[11], g[12], g[13],
	           g[14], g[15]);
}

static enum partition_kind gpt_kind(const uint8_t *type)
{
	static const struct {
		const char *guid;
		enum partition_kind kind;
	} known[] = {
	    {"BC13C2FF-59E6-4262-A352-48C31B1F8FD4", PARTITION_XBOOTLDR},
	    {"0FC63DAF-8483-4772-8E79-3D69D8477DE4", PARTITION_LINUX},     /* Linux filesystem */
	    {"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", PARTITION_LINUX},     /* root, x86-64 */
	    {"44479540-F297-41B2-9AF7-D131D5F0458A", PARTITION_LINUX},     /* root, x86 */
	    {"B921B045-1DF0-41C3-AF44-4C6F280D3FAE", PARTITION_LINUX},     /* root, arm64 */
	    {"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", PARTITION_NO_KERNEL}, /* ESP */
	    {"21686148-6449-6E6F-744E-656564454649", PARTITION_NO_KERNEL}, /* BIOS boot */
	    {"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", PARTITION_NO_KERNEL}, /* swap */
	    {"E6D6D379-F507-44C2-A23C-238F2A3DF928", PARTITION_NO_KERNEL}, /* LVM */
	    {"A19D880F-05FC-4D3B-A006-743F0F84911E", PARTITION_NO_KERNEL}, /* RAID */
	};
	char text[37];

	guid_text(type, text);
	for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
		if (strcmp(text, known[i].guid) == 0)
			return known[i].kind;
	return PARTITION_OTHER;
}

/*
 * The partition array of the GPT header at 'lba', both checked; NULL with
 * *err set when either is wrong.
 */
static uint8_t *gpt_entries(const struct bootdisk_reader *r, uint64_t lba, uint32_t *count,
                            uint32_t *entry_size, GError **err)
{
	uint8_t hdr[SECTOR];

	if (!reader_read(r, hdr, sizeof(hdr), lba * SECTOR) || memcmp(hdr, "EFI PART", 8) != 0 ||
	    le64(hdr + 24) != lba) {
		husk_fail(err, HUSK_EXIT_USAGE,
		          "the protective MBR announces a GPT, but sector %" G_GUINT64_FORMAT
		          " holds none",
		          lba);
		return NULL;
	}
	uint32_t hdr_size = le32(hdr + 12), hdr_crc = le32(hdr + 16);
	uint64_t entries_lba = le64(hdr + 72);
	uint32_t entries_crc = le32(hdr + 88);

	*count = le32(hdr + 80);
	*entry_size = le32(hdr + 84);
	if (hdr_size < 92 || hdr_size > SECTOR) {
		husk_fail(err, HUSK_EXIT_USAGE, "the GPT header's size (%u) is wrong", hdr_size);
		return NULL;
	}
	memset(hdr + 16, 0, 4);
	if (gpt_crc32(hdr, hdr_size) != hdr_crc) {
		husk_fail(err, HUSK_EXIT_USAGE, "the GPT header's checksum is wrong");
		return NULL;
	}
	if (*entry_size < 128 || *entry_size % 8 != 0 || *count == 0 ||
	    (uint64_t)*count * *entry_size > GPT_ENTRIES_MAX_BYTES ||
	    entries_lba > UINT64_MAX / SECTOR) {
		husk_fail(err, HUSK_EXIT_USAGE,
		          "the GPT's partition array (%u entries of %u bytes) is wrong", *count,
		          *entry_size);
		return NULL;
	}
	size_t len = (size_t)*count * *entry_size;
	uint8_t *entries = g_malloc(len);

	if (!reader_read(r, entries, len, entries_lba * SECTOR)) {
		husk_fail(err, HUSK_EXIT_USAGE,
		          "the GPT's partition array lies past the disk's end");
		g_free(entries);
		return NULL;
	}
	if (gpt_crc32(entries, len) != entries_crc) {
		husk_fail(err, HUSK_EXIT_USAGE, "the GPT's partition array checksum is wrong");
		g_free(entries);
		return NULL;
	}
	return entries;
}

/* As firmware does, the backup header in the disk's last sector stands in for a bad primary. */
static bool gpt_read(const struct bootdisk_reader *r, struct partition *parts, int *count_out,
                     GError **err)
{
	static const uint8_t unused[16];
	g_autoptr(GError) primary_err = NULL;
	uint32_t count, entry_size;
	g_autofree uint8_t *entries = gpt_entries(r, 1, &count, &entry_size, &primary_err);
	int n = 0;

	if (!entries && r->size / SECTOR > 2)
		entries = gpt_entries(r, r->size / SECTOR - 1, &count, &entry_size, NULL);
	if (!entries) {
		g_propagate_error(err, g_steal_pointer(&primary_err));
		return false;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = entries + (size_t)i * entry_size;
		uint64_t first = le64(e + 32), last = le64(e + 40);

		if (memcmp(e, unused, 16) == 0 || last < first)
			continue;
		add(parts, &n, i + 1, gpt_kind(e), first, last - first + 1, r->size);
	}
	*count_out = n;
	return true;
}

static bool mbr_is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

static enum partition_kind mbr_kind(uint8_t type)
{
	switch (type) {
	case 0x83:
		return PARTITION_LINUX;
	case 0xea: /* the Boot Loader Specification's XBOOTLDR */
		return PARTITION_XBOOTLDR;
	case 0xef: /* ESP */
	case 0x82: /* swap */
	case 0x8e: /* LVM */
	case 0xfd: /* RAID */
		return PARTITION_NO_KERNEL;
	default:
		return PARTITION_OTHER;
	}
}

/* An MBR whose entries make sense: a boot sector of a filesystem seldom passes. */
static bool mbr_plausible(const uint8_t *mbr, uint64_t disk_sectors)
{
	int used = 0;

	if (mbr[MBR_SIGNATURE_OFFSET] != 0x55 || mbr[MBR_SIGNATURE_OFFSET + 1] != 0xaa)
		return false;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = mbr + MBR_TABLE_OFFSET + 16 * i;

		if (e[4] == 0)
			continue;
		if ((e[0] != 0 && e[0] != 0x80) || le32(e + 8) == 0 || le32(e + 8) >= disk_sectors)
			return false;
		used++;
	}
	return used > 0;
}

/* The logical partitions: a chain of EBRs, each giving one and the next's place. */
static void mbr_logical(const struct bootdisk_reader *r, uint64_t ext_start,
                        struct partition *parts, int *n)
{
	uint64_t ebr = ext_start;

	for (unsigned number = 5; number < 5 + MBR_LOGICAL_MAX; number++) {
		uint8_t sec[SECTOR];

		if (!reader_read(r, sec, sizeof(sec), ebr * SECTOR) ||
		    sec[MBR_SIGNATURE_OFFSET] != 0x55 || sec[MBR_SIGNATURE_OFFSET + 1] != 0xaa)
			return;
		const uint8_t *e = sec + MBR_TABLE_OFFSET, *next = e + 16;

		if (e[4] != 0)
			add(parts, n, number, mbr_kind(e[4]), ebr + le32(e + 8), le32(e + 12),
			    r->size);
		if (!mbr_is_extended(next[4]) || le32(next + 8) == 0)
			return;
		ebr = ext_start + le32(next + 8);
	}
}

static int mbr_read(const struct bootdisk_reader *r, const uint8_t *mbr, struct partition *parts)
{
	int n = 0;
	bool seen_extended = false;

	for (unsigned i = 0; i < 4; i++) {
		const uint8_t *e = mbr + MBR_TABLE_OFFSET + 16 * i;
		uint32_t start = le32(e + 8), sectors = le32(e + 12);

		if (e[4] == 0)
			continue;
		if (mbr_is_extended(e[4])) {
			if (!seen_extended)
				mbr_logical(r, start, parts, &n);
			seen_extended = true;
			continue;
		}
		add(parts, &n, i + 1, mbr_kind(e[4]), start, sectors, r->size);
	}
	return n;
}

static bool mbr_protects_gpt(const uint8_t *mbr)
{
	for (int i = 0; i < 4; i++)
		if (mbr[MBR_TABLE_OFFSET + 16 * i + 4] == MBR_GPT_PROTECTIVE)
			return true;
	return false;
}

bool partition_read(const struct bootdisk_reader *r, struct partition *parts, int *count,
                    GError **err)
{
	uint8_t mbr[SECTOR];

	if (!reader_read(r, mbr, sizeof(mbr), 0))
		return husk_fail(
		    err, HUSK_EXIT_USAGE,
		    "the disk is too small to hold a partition table (%" G_GUINT64_FORMAT " bytes)",
		    r->size);
	if (mbr_plausible(mbr, r->size / SECTOR)) {
		if (mbr_protects_gpt(mbr))
			return gpt_read(r, parts, count, err);
		*count = mbr_read(r, mbr, parts);
		if (*count > 0)
			return true;
	}
	parts[0] = (struct partition){0, PARTITION_WHOLE_DISK, 0, r->size};
	*count = 1;
	return true;
}
