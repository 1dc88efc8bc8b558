// SPDX-License-Identifier: MIT
/*
 * A FAT12 volume: a boot sector with the BIOS parameter block, two copies
 * of the FAT, a root directory, then each file's clusters one after the
 * other (Microsoft's "FAT: General Overview of On-Disk Format" 1.03).
 */
#include "vmm/instance/seed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "vmm/error.h"

#define SECTOR        512
#define ROOT_ENTRIES  64   /* 4 sectors; each file takes two (its long name, its short) */
#define FAT12_MAX     4084 /* clusters: more, and it is FAT16 whatever the BPB says */
#define DIRENT        32
#define ATTR_LABEL    0x08
#define ATTR_ARCHIVE  0x20
#define ATTR_LONGNAME 0x0f
#define LFN_CHARS     13
#define FAT_DATE      ((46 << 9) | (1 << 5) | 1) /* 2026-01-01: a fixed date, a stable image */

struct geometry {
	unsigned int cluster_sectors;
	unsigned int clusters;
	unsigned int fat_sectors;
	unsigned int total_sectors;
	unsigned int data_start; /* sector */
};

static unsigned int clusters_for(size_t len, unsigned int cluster_bytes)
{
	return (unsigned int)((len + cluster_bytes - 1) / cluster_bytes);
}

/* The smallest cluster size whose count fits FAT12, with room to spare for the guest. */
static bool plan(const struct seed_file *files, size_t n, struct geometry *g)
{
	for (g->cluster_sectors = 1; g->cluster_sectors <= 128; g->cluster_sectors *= 2) {
		unsigned int need = 0, bytes = g->cluster_sectors * SECTOR;

		for (size_t i = 0; i < n; i++)
			need += clusters_for(files[i].len, bytes);
		g->clusters = need + 64;
		if (g->clusters > FAT12_MAX)
			continue;
		g->fat_sectors = ((g->clusters + 2) * 3 / 2 + SECTOR) / SECTOR;
		g->data_start = 1 + 2 * g->fat_sectors + ROOT_ENTRIES * DIRENT / SECTOR;
		g->total_sectors = g->data_start + g->clusters * g->cluster_sectors;
		return true;
	}
	return false;
}

static void put16(uint8_t *p, unsigned int v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v & 0xffff), put16(p + 2, v >> 16);
}

static void boot_sector(uint8_t *b, const struct geometry *g)
{
	memcpy(b,
	       "\xeb\x3c\x90"
	       "HUSK    ",
	       11);
	put16(b + 11, SECTOR);
	b[13] = (uint8_t)g->cluster_sectors;
	put16(b + 14, 1); /* reserved sectors: this one */
	b[16] = 2;        /* FATs */
	put16(b + 17, ROOT_ENTRIES);
	put16(b + 19, g->total_sectors); /* fits: FAT12's clusters are few */
	b[21] = 0xf8;                    /* media: a fixed disk */
	put16(b + 22, g->fat_sectors);
	put16(b + 24, 32); /* sectors per track, heads: unused, but checked by some */
	put16(b + 26, 64);
	b[36] = 0x80;
	b[38] = 0x29; /* the extended boot signature: the next three fields are there */
	put32(b + 39, 0x48534b31);
	memcpy(b + 43, SEED_LABEL "     ", 11);
	memcpy(b + 54, "FAT12   ", 8);
	b[510] = 0x55, b[511] = 0xaa;
}

static void set_fat(uint8_t *fat, unsigned int n, unsigned int v)
{
	uint8_t *p = fat + n * 3 / 2;

	if (n & 1) {
		p[0] = (uint8_t)((p[0] & 0x0f) | ((v & 0x0f) << 4));
		p[1] = (uint8_t)(v >> 4);
	} else {
		p[0] = (uint8_t)v;
		p[1] = (uint8_t)((p[1] & 0xf0) | ((v >> 8) & 0x0f));
	}
}

/* "META-D~1": unique by its index, and only characters a short name may have. */
static void short_name(const char *name, size_t index, uint8_t out[11])
{
	size_t k = 0;

	memset(out, ' ', 11);
	for (const char *c = name; *c && k < 6; c++)
		if (g_ascii_isalnum(*c) || *c == '-' || *c == '_')
			out[k++] = (uint8_t)g_ascii_toupper(*c);
	out[k++] = '~';
	out[k] = (uint8_t)('1' + index);
}

static uint8_t short_name_sum(const uint8_t name[11])
{
	uint8_t sum = 0;

	for (int i = 0; i < 11; i++)
		sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + name[i]);
	return sum;
}

/* One VFAT long-name entry (names here fit one): UCS-2, 0-terminated, 0xffff-padded. */
static void long_name_entry(uint8_t *e, const char *name, uint8_t sum)
{
	static const int offsets[LFN_CHARS] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};
	size_t len = strlen(name);

	e[0] = 0x40 | 1; /* the last (and only) entry of the name */
	e[11] = ATTR_LONGNAME;
	e[13] = sum;
	for (size_t i = 0; i < LFN_CHARS; i++) {
		unsigned int ch = i < len ? (uint8_t)name[i] : i == len ? 0 : 0xffff;
		put16(e + offsets[i], ch);
	}
}

static void file_entry(uint8_t *e, const uint8_t name[11], unsigned int cluster, size_t len)
{
	memcpy(e, name, 11);
	e[11] = ATTR_ARCHIVE;
	put16(e + 16, FAT_DATE); /* created */
	put16(e + 18, FAT_DATE); /* accessed */
	put16(e + 24, FAT_DATE); /* written */
	put16(e + 26, cluster);
	put32(e + 28, (uint32_t)len);
}

static bool check_files(const struct seed_file *files, size_t n, GError **err)
{
	if (n > SEED_MAX_FILES)
		return husk_fail(err, HUSK_EXIT_USAGE, "cloud-init seed: too many files");
	for (size_t i = 0; i < n; i++)
		if (!*files[i].name || strlen(files[i].name) > LFN_CHARS)
			return husk_fail(err, HUSK_EXIT_USAGE,
			                 "cloud-init seed: \"%s\" is not 1 to 13 characters",
			                 files[i].name);
	return true;
}

/* The whole volume, in memory: a seed is a few KiB of text. */
static GBytes *build(const struct seed_file *files, size_t n, const struct geometry *g)
{
	size_t size = (size_t)g->total_sectors * SECTOR;
	uint8_t *img = g_malloc0(size);
	uint8_t *fat = img + SECTOR;
	uint8_t *root = img + (1 + 2 * g->fat_sectors) * SECTOR;
	unsigned int cluster_bytes = g->cluster_sectors * SECTOR, next = 2;

	boot_sector(img, g);
	set_fat(fat, 0, 0xff8);
	set_fat(fat, 1, 0xfff);
	memcpy(root, SEED_LABEL "     ", 11);
	root[11] = ATTR_LABEL;
	for (size_t i = 0; i < n; i++) {
		uint8_t name[11];
		unsigned int count = clusters_for(files[i].len, cluster_bytes);
		uint8_t *e = root + (1 + 2 * i) * DIRENT;

		short_name(files[i].name, i, name);
		long_name_entry(e, files[i].name, short_name_sum(name));
		file_entry(e + DIRENT, name, count ? next : 0, files[i].len);
		memcpy(img + ((size_t)g->data_start + (size_t)(next - 2) * g->cluster_sectors) *
		                 SECTOR,
		       files[i].data, files[i].len);
		for (unsigned int c = 0; c < count; c++, next++)
			set_fat(fat, next, c + 1 == count ? 0xfff : next + 1);
	}
	memcpy(fat + g->fat_sectors * SECTOR, fat, g->fat_sectors * SECTOR);
	return g_bytes_new_take(img, size);
}

bool seed_write(const char *path, const struct seed_file *files, size_t nfiles, GError **err)
{
	struct geometry g;

	if (!check_files(files, nfiles, err))
		return false;
	if (!plan(files, nfiles, &g))
		return husk_fail(err, HUSK_EXIT_USAGE, "cloud-init seed: the files are too large");
	GBytes *img = build(files, nfiles, &g);
	GError *why = NULL;
	bool ok = g_file_set_contents_full(path, g_bytes_get_data(img, NULL),
	                                   (gssize)g_bytes_get_size(img),
	                                   G_FILE_SET_CONTENTS_CONSISTENT, 0600, &why);
	g_bytes_unref(img);
	if (!ok) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "cloud-init seed: %s", why->message);
		g_error_free(why);
	}
	return ok;
}

/* husk's cloud-config: its default user, with sudo and the user's key. */
static void append_cloud_config(GString *v, const char *ssh_key)
{
	g_string_append(v, "#cloud-config\n"
	                   "# husk's defaults; the user's user-data takes precedence.\n"
	                   "users:\n"
	                   "  - default\n"
	                   "  - name: husk\n"
	                   "    gecos: husk\n"
	                   "    shell: /bin/bash\n"
	                   "    sudo: ALL=(ALL) NOPASSWD:ALL\n"
	                   "    groups: [sudo]\n");
	if (ssh_key)
		g_string_append_printf(v, "    ssh_authorized_keys:\n      - %s\n", ssh_key);
}

/*
 * A vendor script, not cloud-config keys: user-data that sets bootcmd,
 * runcmd or write_files replaces vendor-data's lists of the same name,
 * but leaves its scripts be. It runs once per instance (cloud-final);
 * from then on systemd starts the agent early in each boot.
 */
static const char agent_script[] =
    "#!/bin/sh\n"
    "# husk: husk-agent from the seed volume, as a service (husk exec, husk shell)\n"
    "set -e\n"
    "dev=$(blkid -L " SEED_LABEL " || blkid -L cidata)\n"
    "mnt=$(mktemp -d)\n"
    "mount -o ro \"$dev\" \"$mnt\"\n"
    "install -m 0755 \"$mnt/" SEED_AGENT_FILE "\" /usr/local/sbin/husk-agent\n"
    "umount \"$mnt\"\n"
    "rmdir \"$mnt\"\n"
    "cat >/etc/systemd/system/husk-agent.service <<'EOF'\n"
    "[Unit]\n"
    "Description=husk-agent: husk exec and husk shell over vsock\n"
    "[Service]\n"
    "ExecStartPre=-/sbin/modprobe vmw_vsock_virtio_transport\n"
    "ExecStart=/usr/local/sbin/husk-agent\n"
    "Restart=always\n"
    "RestartSec=1\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n"
    "EOF\n"
    "systemctl daemon-reload\n"
    "systemctl enable husk-agent.service\n"
    "systemctl start --no-block husk-agent.service\n";

#define BOUNDARY "==husk-vendor-data=="

static void append_part(GString *v, const char *type, const char *filename)
{
	g_string_append_printf(v,
	                       "--" BOUNDARY "\n"
	                       "Content-Type: %s; charset=\"us-ascii\"\n"
	                       "MIME-Version: 1.0\n"
	                       "Content-Transfer-Encoding: 7bit\n"
	                       "Content-Disposition: attachment; filename=\"%s\"\n\n",
	                       type, filename);
}

/* The cloud-config alone, or with the agent's script: a MIME multipart, as cloud-init reads. */
static char *vendor_data(const char *ssh_key, bool with_agent)
{
	GString *v = g_string_new(NULL);

	if (!with_agent) {
		append_cloud_config(v, ssh_key);
		return g_string_free(v, FALSE);
	}
	g_string_append(v, "Content-Type: multipart/mixed; boundary=\"" BOUNDARY "\"\n"
	                   "MIME-Version: 1.0\n\n");
	append_part(v, "text/cloud-config", "husk-cloud-config");
	append_cloud_config(v, ssh_key);
	append_part(v, "text/x-shellscript", "husk-agent-install");
	g_string_append(v, agent_script);
	g_string_append(v, "--" BOUNDARY "--\n");
	return g_string_free(v, FALSE);
}

bool seed_write_instance(const char *path, const struct seed_instance *si, GError **err)
{
	char *meta =
	    g_strdup_printf("instance-id: %s\nlocal-hostname: %s\n", si->instance_id, si->name);
	char *vendor = vendor_data(si->ssh_key, si->agent != NULL);
	const char *user = si->user_data ? si->user_data : "#cloud-config\n{}\n";
	struct seed_file files[] = {
	    {"meta-data", meta, strlen(meta)},
	    {"user-data", user, si->user_data ? si->user_len : strlen(user)},
	    {"vendor-data", vendor, strlen(vendor)},
	    {SEED_AGENT_FILE, si->agent, si->agent_len},
	};
	bool ok = seed_write(path, files, si->agent ? 4 : 3, err);

	g_free(meta);
	g_free(vendor);
	return ok;
}
