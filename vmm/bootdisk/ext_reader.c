// SPDX-License-Identifier: MIT
/*
 * libext2fs reads the filesystem (e2fsck's own code: journals, extents,
 * inline data, 64-bit block numbers, checksums) through an I/O manager of
 * ours that turns its block reads into reads of the image, within the
 * partition. It never writes: every write entry point fails.
 */
#include "vmm/bootdisk/ext_reader.h"

#include <com_err.h>
#include <errno.h>
#include <ext2fs/ext2fs.h>
#include <stdio.h>
#include <string.h>

#include "vmm/bootdisk/partition.h"
#include "vmm/error.h"

#define LIST_MAX  4096
#define CHUNK_MAX (1u << 20)

struct partition_window {
	const struct bootdisk_reader *r;
	uint64_t offset, size;
};

struct ext_fs {
	ext2_filsys fs;
	struct partition_window window;
	char uuid[37];
};

static struct struct_io_manager window_manager;

static const char *probe_at(const struct bootdisk_reader *r, uint64_t offset, uint64_t size,
                            uint64_t at, const char *magic, size_t len, const char *name)
{
	char buf[16];

	if (at + len > size || !reader_read(r, buf, len, offset + at))
		return NULL;
	return memcmp(buf, magic, len) == 0 ? name : NULL;
}

const char *fs_probe(const struct bootdisk_reader *r, uint64_t offset, uint64_t size)
{
	static const struct {
		uint64_t at;
		const char *magic;
		size_t len;
		const char *name;
	} known[] = {
	    {0x438, "\x53\xef", 2, "ext"},
	    {0x10040, "_BHRfS_M", 8, "btrfs"},
	    {0, "XFSB", 4, "xfs"},
	    {0x400, "\x10\x20\xf5\xf2", 4, "f2fs"},
	    {0x400, "\xe2\xe1\xf5\xe0", 4, "erofs"},
	    {0, "hsqs", 4, "squashfs"},
	    {0, "LUKS\xba\xbe", 6, "LUKS (encrypted)"},
	    {0x218, "LVM2 001", 8, "an LVM physical volume"},
	    {0x52, "FAT32   ", 8, "vfat"},
	    {0x36, "FAT1", 4, "vfat"},
	    {3, "NTFS    ", 8, "ntfs"},
	    {0x8001, "CD001", 5, "iso9660"},
	    {0xff6, "SWAPSPACE2", 10, "swap"},
	    {0x10000 + 52, "ReIsEr", 6, "reiserfs"},
	    {0x20000, "\x0c\xb1\xba\x00", 4, "zfs"}, /* the first uberblock */
	};

	for (size_t i = 0; i < G_N_ELEMENTS(known); i++) {
		const char *name = probe_at(r, offset, size, known[i].at, known[i].magic,
		                            known[i].len, known[i].name);

		if (name)
			return name;
	}
	return NULL;
}

static errcode_t window_open(const char *name, int flags, io_channel *channel)
{
	struct partition_window *w;
	io_channel io;

	if (sscanf(name, "bootdisk:%p", (void **)&w) != 1)
		return EXT2_ET_BAD_DEVICE_NAME;
	if (flags & IO_FLAG_RW)
		return EROFS;
	errcode_t e = ext2fs_get_memzero(sizeof(*io), &io);

	if (e)
		return e;
	io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	io->manager = &window_manager;
	io->block_size = 1024;
	io->refcount = 1;
	io->private_data = w;
	e = ext2fs_get_mem(strlen(name) + 1, &io->name);
	if (e) {
		ext2fs_free_mem(&io);
		return e;
	}
	strcpy(io->name, name);
	*channel = io;
	return 0;
}

static errcode_t window_close(io_channel io)
{
	if (--io->refcount > 0)
		return 0;
	ext2fs_free_mem(&io->name);
	ext2fs_free_mem(&io);
	return 0;
}

static errcode_t window_set_blksize(io_channel io, int blksize)
{
	io->block_size = blksize;
	return 0;
}

/* A negative count is a length in bytes (libext2fs's convention). */
static errcode_t window_read64(io_channel io, unsigned long long block, int count, void *data)
{
	const struct partition_window *w = io->private_data;
	uint64_t len = count < 0 ? (uint64_t) - (int64_t)count : (uint64_t)count * io->block_size;
	uint64_t at;

	if (__builtin_mul_overflow(block, (uint64_t)io->block_size, &at) || at > w->size ||
	    len > w->size - at) {
		memset(data, 0, len);
		return EXT2_ET_SHORT_READ;
	}
	if (!reader_read(w->r, data, len, w->offset + at))
		return EXT2_ET_SHORT_READ;
	return 0;
}

static errcode_t window_read(io_channel io, unsigned long block, int count, void *data)
{
	return window_read64(io, block, count, data);
}

static errcode_t window_write(io_channel io, unsigned long block, int count, const void *data)
{
	return EROFS;
}

static errcode_t window_write64(io_channel io, unsigned long long block, int count,
                                const void *data)
{
	return EROFS;
}

static errcode_t window_write_byte(io_channel io, unsigned long offset, int count, const void *data)
{
	return EROFS;
}

static errcode_t window_flush(io_channel io)
{
	return 0;
}

static errcode_t window_set_option(io_channel io, const char *option, const char *arg)
{
	return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager window_manager = {
    .magic = EXT2_ET_MAGIC_IO_MANAGER,
    .name = "husk bootdisk partition",
    .open = window_open,
    .close = window_close,
    .set_blksize = window_set_blksize,
    .read_blk = window_read,
    .write_blk = window_write,
    .flush = window_flush,
    .write_byte = window_write_byte,
    .set_option = window_set_option,
    .read_blk64 = window_read64,
    .write_blk64 = window_write64,
};

/* libext2fs's error messages, which com_err knows only once told. */
static void name_errors(void)
{
	static bool named;

	if (!named)
		initialize_ext2_error_table();
	named = true;
}

struct ext_fs *ext_open(const struct bootdisk_reader *r, uint64_t offset, uint64_t size,
                        GError **err)
{
	struct ext_fs *fs = g_new0(struct ext_fs, 1);
	char name[64];

	name_errors();
	fs->window = (struct partition_window){r, offset, size};
	g_snprintf(name, sizeof(name), "bootdisk:%p", (void *)&fs->window);
	errcode_t e = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS, 0, 0, &window_manager, &fs->fs);

	if (e) {
		husk_fail(err, HUSK_EXIT_USAGE, "%s", error_message(e));
		g_free(fs);
		return NULL;
	}
	const uint8_t *u = fs->fs->super->s_uuid;

	g_snprintf(fs->uuid, sizeof(fs->uuid),
	           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
	           u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
	           u[14], u[15]);
	return fs;
}

void ext_close(struct ext_fs *fs)
{
	if (!fs)
		return;
	ext2fs_free(fs->fs);
	g_free(fs);
}

const char *ext_kind(const struct ext_fs *fs)
{
	struct ext2_super_block *sb = fs->fs->super;

	if (ext2fs_has_feature_extents(sb) || ext2fs_has_feature_64bit(sb) ||
	    ext2fs_has_feature_flex_bg(sb))
		return "ext4";
	return ext2fs_has_feature_journal(sb) ? "ext3" : "ext2";
}

const char *ext_uuid(const struct ext_fs *fs)
{
	return fs->uuid;
}

/* The inode at 'path', symbolic links followed. */
static bool lookup(struct ext_fs *fs, const char *path, ext2_ino_t *ino, struct ext2_inode *inode)
{
	return ext2fs_namei_follow(fs->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, ino) == 0 &&
	       ext2fs_read_inode(fs->fs, *ino, inode) == 0;
}

bool ext_is_dir(struct ext_fs *fs, const char *path)
{
	struct ext2_inode inode;
	ext2_ino_t ino;

	return lookup(fs, path, &ino, &inode) && LINUX_S_ISDIR(inode.i_mode);
}

bool ext_is_file(struct ext_fs *fs, const char *path)
{
	struct ext2_inode inode;
	ext2_ino_t ino;

	return lookup(fs, path, &ino, &inode) && LINUX_S_ISREG(inode.i_mode);
}

static bool append(void *opaque, const void *buf, size_t len)
{
	g_byte_array_append(opaque, buf, len);
	return true;
}

char *ext_read_text(struct ext_fs *fs, const char *path, size_t max, size_t *len)
{
	GByteArray *bytes = g_byte_array_new();

	if (!ext_stream(fs, path, max, append, bytes, NULL)) {
		g_byte_array_unref(bytes);
		return NULL;
	}
	*len = bytes->len;
	g_byte_array_append(bytes, (const uint8_t *)"", 1);
	return (char *)g_byte_array_free(bytes, FALSE);
}

struct listing {
	GPtrArray *names;
	const char *prefix;
};

static int list_one(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset, int blocksize,
                    char *buf, void *opaque)
{
	struct listing *l = opaque;
	int len = ext2fs_dirent_name_len(d);
	size_t plen = strlen(l->prefix);

	if ((size_t)len > plen && strncmp(d->name, l->prefix, plen) == 0 &&
	    !memchr(d->name, '\0', len))
		g_ptr_array_add(l->names, g_strndup(d->name, len));
	return l->names->len < LIST_MAX ? 0 : DIRENT_ABORT;
}

GPtrArray *ext_list(struct ext_fs *fs, const char *dir, const char *prefix)
{
	struct listing l = {g_ptr_array_new_with_free_func(g_free), prefix};
	struct ext2_inode inode;
	ext2_ino_t ino;

	if (lookup(fs, dir, &ino, &inode) && LINUX_S_ISDIR(inode.i_mode))
		ext2fs_dir_iterate2(fs->fs, ino, 0, NULL, list_one, &l);
	return l.names;
}

static bool stream_open(struct ext_fs *fs, const char *path, uint64_t max, ext2_file_t *file,
                        uint64_t *size, GError **err)
{
	struct ext2_inode inode;
	ext2_ino_t ino;

	if (!lookup(fs, path, &ino, &inode))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s is not there", path);
	if (!LINUX_S_ISREG(inode.i_mode))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s is not a regular file", path);
	errcode_t e = ext2fs_file_open(fs->fs, ino, 0, file);

	if (e)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: %s", path, error_message(e));
	__u64 lsize = 0;

	ext2fs_file_get_lsize(*file, &lsize);
	*size = lsize;
	if (*size > max) {
		ext2fs_file_close(*file);
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s is %" G_GUINT64_FORMAT
		                 " bytes, more than the %" G_GUINT64_FORMAT " allowed",
		                 path, *size, max);
	}
	return true;
}

bool ext_stream(struct ext_fs *fs, const char *path, uint64_t max,
                bool (*sink)(void *opaque, const void *buf, size_t len), void *opaque, GError **err)
{
	ext2_file_t file;
	uint64_t size = 0, done = 0;

	if (!stream_open(fs, path, max, &file, &size, err))
		return false;
	g_autofree uint8_t *buf = g_malloc(CHUNK_MAX);
	bool ok = true;

	while (ok && done < size) {
		unsigned int want = (unsigned int)MIN(size - done, CHUNK_MAX), got = 0;
		errcode_t e = ext2fs_file_read(file, buf, want, &got);

		if (e || got == 0)
			ok = husk_fail(err, HUSK_EXIT_USAGE, "%s: %s", path,
			               e ? error_message(e) : "ends early");
		else if (!sink(opaque, buf, got))
			ok = husk_fail(err, HUSK_EXIT_RUNTIME, "%s: cannot hand it over", path);
		done += got;
	}
	ext2fs_file_close(file);
	return ok;
}
