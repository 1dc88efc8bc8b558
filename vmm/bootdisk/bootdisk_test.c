// SPDX-License-Identifier: MIT
/*
 * Real-format disk images built here with mkfs.ext4 -d and sfdisk (GPT as
 * Debian's and Ubuntu's cloud images lay it out, MBR with a logical
 * partition, a bare filesystem), searched through the sandbox as
 * `husk run IMAGE` will; filesystems we do not read; seeded random damage
 * to partition tables and filesystems; and a sandboxed child that crashes,
 * hangs or lies.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/bootdisk/bootdisk.h"
#include "vmm/bootdisk/find.h"
#include "vmm/bootdisk/partition.h"
#include "vmm/bootdisk/sandbox.h"
#include "vmm/bootdisk/testdata_dir.h"
#include "vmm/error.h"

#define MiB (1024 * 1024)

/* GPT type GUIDs. */
#define BIOS_BOOT "21686148-6449-6E6F-744E-656564454649"
#define ESP       "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define LINUX_FS  "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
#define XBOOTLDR  "BC13C2FF-59E6-4262-A352-48C31B1F8FD4"

#define DEBIAN_ROOT_UUID "8d6f3c2a-5b1e-4f0a-9c7d-2e4b6a8c0d1f"
#define UBUNTU_BOOT_UUID "7a1c3e5f-9b2d-4f6a-8c0e-1d3f5a7b9c2e"
#define OTHER_UUID       "11111111-2222-4333-8444-555555555555"

/* A disk image in memory: fast to read, and to damage in place. */
struct image {
	GByteArray *bytes;
	struct bootdisk_reader reader;
};

static bool memory_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	GByteArray *bytes = opaque;

	g_assert_cmpuint(off + len, <=, bytes->len);
	memcpy(buf, bytes->data + off, len);
	return true;
}

static void image_load(struct image *img, const char *path)
{
	gchar *data;
	gsize len;
	GError *err = NULL;

	g_assert_true(g_file_get_contents(path, &data, &len, &err));
	g_assert_no_error(err);
	img->bytes = g_byte_array_new_take((guint8 *)data, len);
	img->reader = (struct bootdisk_reader){memory_read, len, img->bytes};
}

static void image_clear(struct image *img)
{
	g_byte_array_unref(img->bytes);
}

static char *tool(const char *name)
{
	static const char *const sbin[] = {"/usr/sbin", "/sbin"};
	char *path = g_find_program_in_path(name);

	for (size_t i = 0; !path && i < G_N_ELEMENTS(sbin); i++) {
		path = g_build_filename(sbin[i], name, NULL);
		if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE))
			g_clear_pointer(&path, g_free);
	}
	return path;
}

/* Tests that build images skip, saying why, where the tools are missing. */
static bool have_tools(void)
{
	g_autofree char *mkfs = tool("mkfs.ext4"), *sfdisk = tool("sfdisk");

	if (mkfs && sfdisk)
		return true;
	g_test_skip(mkfs ? "sfdisk not found (package fdisk)"
	                 : "mkfs.ext4 not found (package e2fsprogs)");
	return false;
}

/* Runs 'argv', its standard input from 'input_file' if not NULL (by the shell); it must succeed. */
static void run(const char *const *argv, const char *input_file)
{
	g_autoptr(GString) cmd = g_string_new(NULL);
	g_autofree char *out = NULL, *errout = NULL;
	int status;
	GError *err = NULL;

	for (const char *const *a = argv; *a; a++) {
		g_autofree char *quoted = g_shell_quote(*a);

		g_string_append_printf(cmd, "%s ", quoted);
	}
	if (input_file) {
		g_autofree char *quoted = g_shell_quote(input_file);

		g_string_append_printf(cmd, "< %s", quoted);
	}
	const char *sh[] = {"/bin/sh", "-c", cmd->str, NULL};

	g_assert_true(g_spawn_sync(NULL, (char **)sh, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
	                           &errout, &status, &err));
	g_assert_no_error(err);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("%s failed: %s%s", cmd->str, out, errout);
}

static void write_file(const char *root, const char *path, const void *data, size_t len)
{
	g_autofree char *full = g_build_filename(root, path, NULL);
	g_autofree char *dir = g_path_get_dirname(full);
	GError *err = NULL;

	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	g_assert_true(g_file_set_contents(full, data, (gssize)len, &err));
	g_assert_no_error(err);
}

static void write_text(const char *root, const char *path, const char *text)
{
	write_file(root, path, text, strlen(text));
}

/* A fake bzImage: the setup header's magic at 0x202, and its name to tell it by. */
static void write_kernel(const char *root, const char *path)
{
	size_t len = 96 * 1024;
	g_autofree uint8_t *k = g_malloc0(len);
	g_autofree char *name = g_path_get_basename(path);

	memcpy(k + 0x202, "HdrS", 4);
	memcpy(k + 0x400, name, strlen(name));
	write_file(root, path, k, len);
}

static void write_testdata(const char *root, const char *path, const char *name)
{
	g_autofree char *src = g_build_filename(BOOTDISK_TESTDATA, name, NULL);
	g_autofree char *text = NULL;
	gsize len;

	g_assert_true(g_file_get_contents(src, &text, &len, NULL));
	write_file(root, path, text, len);
}

struct build {
	char *dir;        /* scratch folder */
	unsigned n;       /* filesystems made so far */
	GString *script;  /* for sfdisk */
	GPtrArray *parts; /* partition image paths (or "") */
	GArray *starts;   /* their first sectors */
	uint64_t next_sector;
};

/* False, the test skipped, without mkfs.ext4 and sfdisk. */
static bool build_start(struct build *b, const char *label)
{
	GError *err = NULL;

	if (!have_tools())
		return false;

	b->dir = g_dir_make_tmp("husk-bootdisk-XXXXXX", &err);
	g_assert_no_error(err);
	b->n = 0;
	b->script = g_string_new(NULL);
	if (label)
		g_string_printf(b->script, "label: %s\n", label);
	b->parts = g_ptr_array_new_with_free_func(g_free);
	b->starts = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	b->next_sector = 2048;
	return true;
}

static void build_clear(struct build *b)
{
	const char *argv[] = {"rm", "-rf", b->dir, NULL};

	run(argv, NULL);
	g_free(b->dir);
	g_string_free(b->script, TRUE);
	g_ptr_array_unref(b->parts);
	g_array_unref(b->starts);
}

/* A staging folder for one filesystem's files. */
static char *build_tree(struct build *b)
{
	char *tree = g_strdup_printf("%s/tree%u", b->dir, b->n);

	g_assert_cmpint(g_mkdir(tree, 0755), ==, 0);
	return tree;
}

/* Filesystem features for mkfs.ext4 -O: "^metadata_csum" lets damage past the checksums. */
static const char *ext4_features = "has_journal";

/* An ext4 filesystem of 'tree'. */
static char *make_ext4(struct build *b, const char *tree, const char *uuid, const char *label,
                       const char *size)
{
	char *img = g_strdup_printf("%s/part%u.img", b->dir, b->n++);
	g_autofree char *mkfs = tool("mkfs.ext4");
	const char *argv[] = {mkfs, "-q", "-F", "-O",  ext4_features, "-d", tree,
	                      "-U", uuid, "-L", label, img,           size, NULL};

	run(argv, NULL);
	return img;
}

/* A partition at 'start' of 'sectors' holding 'img' (NULL: zeros). */
static void add_partition_at(struct build *b, uint64_t start, uint64_t sectors, const char *type,
                             char *img)
{
	g_string_append_printf(b->script,
	                       "start=%" G_GUINT64_FORMAT ", size=%" G_GUINT64_FORMAT ", type=%s\n",
	                       start, sectors, type);
	g_ptr_array_add(b->parts, img ? img : g_strdup(""));
	g_array_append_val(b->starts, start);
	b->next_sector = MAX(b->next_sector, start + sectors);
}

static void add_partition(struct build *b, const char *type, unsigned mib, char *img)
{
	add_partition_at(b, b->next_sector, (uint64_t)mib * 2048, type, img);
}

/* A partition of 'mib' MiB, and an ext4 filesystem of 'tree' filling it. */
static void add_ext4(struct build *b, const char *type, const char *tree, const char *uuid,
                     const char *label, unsigned mib)
{
	g_autofree char *size = g_strdup_printf("%uM", mib);

	add_partition(b, type, mib, make_ext4(b, tree, uuid, label, size));
}

/* Copies a partition's image into the disk at its place, as dd conv=notrunc does. */
static void place(const char *disk, const char *part, uint64_t offset)
{
	g_autofree char *data = NULL;
	gsize len;
	int fd = open(disk, O_WRONLY);

	g_assert_true(g_file_get_contents(part, &data, &len, NULL));
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pwrite(fd, data, len, (off_t)offset), ==, (ssize_t)len);
	close(fd);
}

/* Writes the table with sfdisk (none for a NULL label) and the filesystems into it. */
static void build_disk(struct build *b, struct image *img)
{
	g_autofree char *disk = g_strdup_printf("%s/disk.img", b->dir);
	g_autofree char *script = g_strdup_printf("%s/table", b->dir);
	g_autofree char *sfdisk = tool("sfdisk");
	const char *argv[] = {sfdisk, "--quiet", "--no-reread", "--no-tell-kernel", disk, NULL};
	int fd = open(disk, O_CREAT | O_WRONLY | O_TRUNC, 0644);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(ftruncate(fd, (off_t)(b->next_sector + 2048) * 512), ==, 0);
	close(fd);
	if (b->script->len) {
		g_assert_true(g_file_set_contents(script, b->script->str, -1, NULL));
		run(argv, script);
	}
	for (unsigned i = 0; i < b->parts->len; i++) {
		const char *part = b->parts->pdata[i];

		if (*part)
			place(disk, part, g_array_index(b->starts, uint64_t, i) * 512);
	}
	image_load(img, disk);
}

static void find_ok(struct image *img, struct boot_choice *c)
{
	GError *err = NULL;
	gint64 start = g_get_monotonic_time();

	g_assert_true(bootdisk_find(&img->reader, c, &err));
	g_assert_no_error(err);
	g_test_message("found in %.1f ms: %s", (g_get_monotonic_time() - start) / 1000.0,
	               c->description);
}

static void build_and_find(struct build *b, struct image *img, struct boot_choice *c)
{
	build_disk(b, img);
	build_clear(b);
	find_ok(img, c);
}

static void release(struct image *img, struct boot_choice *c)
{
	boot_choice_clear(c);
	image_clear(img);
}

/* The search fails with one line that says 'what'. */
static void find_fails(struct image *img, const char *what)
{
	struct boot_choice c;
	GError *err = NULL;

	g_assert_false(bootdisk_find(&img->reader, &c, &err));
	g_assert_nonnull(err);
	g_test_message("refused: %s", err->message);
	g_assert_nonnull(strstr(err->message, what));
	g_assert_null(strchr(err->message, '\n'));
	g_assert_cmpint(err->code, ==, HUSK_EXIT_USAGE);
	g_clear_error(&err);
}

/* The name write_kernel put in the kernel. */
static const char *kernel_name(const struct boot_choice *c)
{
	gsize len;
	const char *k = g_bytes_get_data(c->kernel, &len);

	g_assert_cmpuint(len, >, 0x480);
	return k + 0x400;
}

static const char *initrd_text(const struct boot_choice *c)
{
	gsize len;
	const char *data = g_bytes_get_data(c->initrd, &len);

	g_assert_nonnull(c->initrd);
	g_assert_cmpuint(len, >, 0);
	g_assert_cmpint(data[len - 1], ==, '\0');
	return data;
}

static void write_initrd(const char *root, const char *path)
{
	write_file(root, path, path, strlen(path) + 1);
}

/* After 1 MiB of table, 1 of BIOS boot and 2 of ESP. */
#define DEBIAN_ROOT_OFFSET (4 * MiB)

/* Debian 12's genericcloud layout: BIOS boot and ESP first here, /boot inside the root. */
static bool build_debian(struct image *img)
{
	struct build b;

	if (!build_start(&b, "gpt"))
		return false;
	add_partition(&b, BIOS_BOOT, 1, NULL);
	add_partition(&b, ESP, 2, NULL);
	g_autofree char *tree = build_tree(&b);

	write_testdata(tree, "boot/grub/grub.cfg", "debian12-grub.cfg");
	write_kernel(tree, "boot/vmlinuz-6.1.0-28-cloud-amd64");
	write_kernel(tree, "boot/vmlinuz-6.1.0-27-cloud-amd64");
	write_initrd(tree, "boot/initrd.img-6.1.0-28-cloud-amd64");
	write_initrd(tree, "boot/initrd.img-6.1.0-27-cloud-amd64");
	write_text(tree, "etc/fstab",
	           "PARTUUID=5c6f1a2b-0d3e-4f5a-8b7c-9d0e1f2a3b4c / ext4 rw 0 1\n");
	add_ext4(&b, LINUX_FS, tree, DEBIAN_ROOT_UUID, "root", 12);
	build_disk(&b, img);
	build_clear(&b);
	return true;
}

static void test_debian_gpt(void)
{
	struct image img;
	struct boot_choice c;

	if (!build_debian(&img))
		return;
	find_ok(&img, &c);
	g_assert_cmpstr(kernel_name(&c), ==, "vmlinuz-6.1.0-28-cloud-amd64");
	g_assert_cmpstr(initrd_text(&c), ==, "boot/initrd.img-6.1.0-28-cloud-amd64");
	/* Its own serial console is kept, and no second one added. */
	g_assert_cmpstr(c.cmdline, ==,
	                "root=PARTUUID=5c6f1a2b-0d3e-4f5a-8b7c-9d0e1f2a3b4c ro console=tty0 "
	                "console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0");
	g_assert_cmpstr(c.description, ==,
	                "vmlinuz-6.1.0-28-cloud-amd64 from partition 3 (ext4), grub.cfg entry "
	                "'Debian GNU/Linux'");
	release(&img, &c);
}

/* Ubuntu 24.04's layout: root first, then BIOS boot, ESP, and a separate /boot. */
static void test_ubuntu_gpt(void)
{
	struct image img;
	struct boot_choice c;
	struct build b;

	if (!build_start(&b, "gpt"))
		return;
	g_autofree char *root = build_tree(&b);

	write_text(root, "etc/fstab", "LABEL=cloudimg-rootfs / ext4 defaults 0 1\n");
	write_text(root, "boot/.keep", "");
	add_ext4(&b, LINUX_FS, root, OTHER_UUID, "cloudimg-rootfs", 8);
	add_partition(&b, BIOS_BOOT, 1, NULL);
	add_partition(&b, ESP, 2, NULL);
	g_autofree char *boot = build_tree(&b);

	write_testdata(boot, "grub/grub.cfg", "ubuntu2404-grub.cfg");
	write_kernel(boot, "vmlinuz-6.8.0-49-generic");
	write_initrd(boot, "initrd.img-6.8.0-49-generic");
	add_ext4(&b, LINUX_FS, boot, UBUNTU_BOOT_UUID, "BOOT", 8);
	build_and_find(&b, &img, &c);
	g_assert_cmpstr(kernel_name(&c), ==, "vmlinuz-6.8.0-49-generic");
	g_assert_cmpstr(initrd_text(&c), ==, "initrd.img-6.8.0-49-generic");
	g_assert_cmpstr(c.cmdline, ==, "root=LABEL=cloudimg-rootfs ro console=tty1 console=ttyS0");
	g_assert_cmpstr(
	    c.description, ==,
	    "vmlinuz-6.8.0-49-generic from partition 4 (ext4), grub.cfg entry 'Ubuntu'");
	release(&img, &c);
}

/* MBR: swap, then an extended partition whose logical partition 5 is the root. */
static void test_mbr_logical(void)
{
	struct image img;
	struct boot_choice c;
	struct build b;

	if (!build_start(&b, "dos"))
		return;
	add_partition(&b, "82", 1, NULL);
	g_autofree char *root = build_tree(&b);

	write_kernel(root, "boot/vmlinuz-6.1.0-9-amd64");
	write_kernel(root, "boot/vmlinuz-6.1.0-10-amd64");
	write_initrd(root, "boot/initrd.img-6.1.0-10-amd64");
	write_initrd(root, "boot/initrd.img-6.1.0-9-amd64");
	write_text(root, "etc/hostname", "mbr\n");
	add_partition_at(&b, 4096, 24576, "5", NULL);
	add_partition_at(&b, 6144, 20480, "83", make_ext4(&b, root, OTHER_UUID, "root", "10M"));
	build_and_find(&b, &img, &c);
	/* No grub.cfg: the newest by version sort, 10 after 9. */
	g_assert_cmpstr(kernel_name(&c), ==, "vmlinuz-6.1.0-10-amd64");
	g_assert_cmpstr(initrd_text(&c), ==, "boot/initrd.img-6.1.0-10-amd64");
	g_assert_cmpstr(c.cmdline, ==, "root=UUID=" OTHER_UUID " ro console=ttyS0");
	g_assert_cmpstr(
	    c.description, ==,
	    "vmlinuz-6.1.0-10-amd64 from partition 5 (ext4), the newest vmlinuz in /boot/");
	release(&img, &c);
}

/* No partition table: the disk is the filesystem. */
static void test_bare_ext4(void)
{
	struct image img;
	struct boot_choice c;
	struct build b;

	if (!build_start(&b, NULL))
		return;
	g_autofree char *root = build_tree(&b);

	write_testdata(root, "boot/grub/grub.cfg", "debian12-grub.cfg");
	write_kernel(root, "boot/vmlinuz-6.1.0-28-cloud-amd64");
	write_initrd(root, "boot/initrd.img-6.1.0-28-cloud-amd64");
	g_autofree char *fs = make_ext4(&b, root, DEBIAN_ROOT_UUID, "root", "8M");

	image_load(&img, fs);
	build_clear(&b);
	find_ok(&img, &c);
	g_assert_cmpstr(kernel_name(&c), ==, "vmlinuz-6.1.0-28-cloud-amd64");
	g_assert_true(g_str_has_suffix(c.description, "from the whole disk (ext4), grub.cfg entry "
	                                              "'Debian GNU/Linux'"));
	release(&img, &c);
}

/* BLS entries on an XBOOTLDR partition: the newest by version. */
static void test_bls(void)
{
	struct image img;
	struct boot_choice c;
	struct build b;

	if (!build_start(&b, "gpt"))
		return;
	add_partition(&b, ESP, 2, NULL);
	g_autofree char *boot = build_tree(&b);

	/* As Fedora's: a grub.cfg of no entries but blscfg, the arguments in grubenv. */
	write_text(boot, "grub2/grub.cfg",
	           "set default=\"${saved_entry}\"\ninsmod blscfg\nblscfg\n");
	write_text(boot, "grub2/grubenv",
	           "# GRUB Environment Block\nkernelopts=root=UUID=" OTHER_UUID " ro rhgb\n");
	for (int v = 9; v <= 11; v++) {
		g_autofree char *conf = g_strdup_printf("loader/entries/abc-6.%d.0-1.fc41.conf", v);
		g_autofree char *text = g_strdup_printf(
		    "title Fedora Linux 6.%d\nversion 6.%d.0-1.fc41\nlinux /vmlinuz-6.%d.0-1.fc41\n"
		    "initrd /initramfs-6.%d.0-1.fc41.img\noptions $kernelopts\n",
		    v, v, v, v);
		g_autofree char *kernel = g_strdup_printf("vmlinuz-6.%d.0-1.fc41", v);
		g_autofree char *initrd = g_strdup_printf("initramfs-6.%d.0-1.fc41.img", v);

		write_text(boot, conf, text);
		write_kernel(boot, kernel);
		write_initrd(boot, initrd);
	}
	add_ext4(&b, XBOOTLDR, boot, UBUNTU_BOOT_UUID, "boot", 8);
	g_autofree char *root = build_tree(&b);

	write_text(root, "etc/fstab", "\n");
	add_ext4(&b, LINUX_FS, root, OTHER_UUID, "root", 8);
	build_and_find(&b, &img, &c);
	g_assert_cmpstr(kernel_name(&c), ==, "vmlinuz-6.11.0-1.fc41");
	g_assert_cmpstr(initrd_text(&c), ==, "initramfs-6.11.0-1.fc41.img");
	g_assert_cmpstr(c.cmdline, ==, "root=UUID=" OTHER_UUID " ro rhgb console=ttyS0");
	g_assert_cmpstr(c.description, ==,
	                "vmlinuz-6.11.0-1.fc41 from partition 2 (ext4), BLS entry "
	                "/loader/entries/abc-6.11.0-1.fc41.conf");
	release(&img, &c);
}

/* The default entry names a kernel that is not there: the newest one, and a note. */
static void test_grub_missing_kernel(void)
{
	struct image img;
	struct boot_choice c;
	struct build b;

	if (!build_start(&b, "gpt"))
		return;
	g_autofree char *root = build_tree(&b);

	write_text(
	    root, "boot/grub/grub.cfg",
	    "set default=\"0\"\nmenuentry 'Gone' {\n\tlinux /boot/vmlinuz-9.9 root=/dev/vda\n}\n");
	write_kernel(root, "boot/vmlinuz-6.1.0-10-amd64");
	write_text(root, "etc/fstab", "\n");
	add_ext4(&b, LINUX_FS, root, OTHER_UUID, "root", 8);
	build_and_find(&b, &img, &c);
	g_assert_cmpstr(kernel_name(&c), ==, "vmlinuz-6.1.0-10-amd64");
	g_assert_null(c.initrd);
	g_assert_cmpstr(c.cmdline, ==, "root=UUID=" OTHER_UUID " ro console=ttyS0");
	g_assert_cmpstr(
	    c.description, ==,
	    "vmlinuz-6.1.0-10-amd64 from partition 1 (ext4), the newest vmlinuz in "
	    "/boot/ (grub.cfg entry 'Gone' names /boot/vmlinuz-9.9, which is not there)");
	release(&img, &c);
}

/* A grub.cfg near the largest read (1 MiB): the child's buffers grow, as malloc does it. */
static void test_large_grub_cfg(void)
{
	struct image img;
	struct boot_choice c;
	struct build b;

	if (!build_start(&b, "gpt"))
		return;
	g_autofree char *root = build_tree(&b);
	g_autoptr(GString) cfg = g_string_new(NULL);

	while (cfg->len < 900 * 1024)
		g_string_append(cfg, "# a comment the parser reads through, line after line\n");
	g_string_append(cfg, "menuentry 'Big' {\n\tlinux /boot/vmlinuz-6.1.0-10-amd64 ro\n}\n");
	write_text(root, "boot/grub/grub.cfg", cfg->str);
	write_kernel(root, "boot/vmlinuz-6.1.0-10-amd64");
	add_ext4(&b, LINUX_FS, root, OTHER_UUID, "root", 8);
	build_and_find(&b, &img, &c);
	g_assert_cmpstr(c.cmdline, ==, "ro console=ttyS0");
	release(&img, &c);
}

/* A disk image all zeros, of 'mib' MiB. */
static void zero_image(struct image *img, unsigned mib)
{
	img->bytes = g_byte_array_new();
	g_byte_array_set_size(img->bytes, mib * MiB);
	if (mib)
		memset(img->bytes->data, 0, mib * MiB);
	img->reader = (struct bootdisk_reader){memory_read, img->bytes->len, img->bytes};
}

static void test_unsupported_filesystems(void)
{
	struct image img;

	/* Superblock magics only: enough to be named, and refused. */
	zero_image(&img, 1);
	memcpy(img.bytes->data, "XFSB", 4);
	find_fails(&img, "the whole disk is xfs");
	find_fails(&img, "--kernel");
	memset(img.bytes->data, 0, 4);
	memcpy(img.bytes->data + 0x10040, "_BHRfS_M", 8);
	find_fails(&img, "the whole disk is btrfs");
	image_clear(&img);
}

static void test_btrfs_partition(void)
{
	struct image img;
	struct build b;

	if (!build_start(&b, "gpt"))
		return;
	add_partition(&b, ESP, 1, NULL);
	add_partition(&b, LINUX_FS, 2, NULL);
	build_disk(&b, &img);
	build_clear(&b);
	memcpy(img.bytes->data + 2048 * 512 * 2 + 0x10040, "_BHRfS_M", 8);
	find_fails(&img, "no ext2/3/4 filesystem in the disk image (partition 2 is btrfs)");
	find_fails(&img, "give it with --kernel");
	image_clear(&img);
}

static void test_no_filesystem(void)
{
	struct image img;

	zero_image(&img, 1);
	find_fails(&img, "no partition table and no filesystem");
	image_clear(&img);
	zero_image(&img, 0);
	find_fails(&img, "too small");
	image_clear(&img);
}

/* A damaged primary GPT header: its backup in the last sector serves, as in firmware. */
static void test_gpt_backup(void)
{
	struct image img;
	struct boot_choice c;

	if (!build_debian(&img))
		return;
	img.bytes->data[512 + 16] ^= 0xff; /* the header's checksum */
	find_ok(&img, &c);
	g_assert_cmpstr(kernel_name(&c), ==, "vmlinuz-6.1.0-28-cloud-amd64");
	boot_choice_clear(&c);
	img.bytes->data[img.bytes->len - 512 + 16] ^= 0xff;
	find_fails(&img, "the GPT header's checksum is wrong");
	image_clear(&img);
}

/* A damaged superblock: the filesystem's own complaint, in one line. */
static void test_damaged_superblock(void)
{
	struct image img;

	if (!build_debian(&img))
		return;
	img.bytes->data[DEBIAN_ROOT_OFFSET + 1024 + 24] = 0x40; /* s_log_block_size */
	find_fails(&img, "the disk image's ext2/3/4 filesystem cannot be read (partition 3: "
	                 "Superblock checksum does not match superblock)");
	image_clear(&img);
}

static void test_no_kernel(void)
{
	struct image img;
	struct build b;

	if (!build_start(&b, "gpt"))
		return;
	g_autofree char *root = build_tree(&b);

	write_text(root, "etc/fstab", "\n");
	add_ext4(&b, LINUX_FS, root, OTHER_UUID, "root", 4);
	build_disk(&b, &img);
	build_clear(&b);
	find_fails(&img, "no kernel in the disk image");
	image_clear(&img);
}

/* Children that misbehave, each as a hostile image might make the real one. */

static void child_crashes(const struct bootdisk_reader *image, int fd)
{
	volatile int *nowhere = NULL;

	*nowhere = 1;
}

static void child_hangs(const struct bootdisk_reader *image, int fd)
{
	for (volatile unsigned spin = 0;; spin++)
		;
}

static void child_opens_a_file(const struct bootdisk_reader *image, int fd)
{
	open("/etc/passwd", O_RDONLY);
}

static void child_writes_stderr(const struct bootdisk_reader *image, int fd)
{
	write(2, "x", 1);
}

static void child_says_nothing(const struct bootdisk_reader *image, int fd)
{
}

static void child_sends_garbage(const struct bootdisk_reader *image, int fd)
{
	uint8_t junk[4096];
	GRand *rand = g_rand_new_with_seed((guint32)image->size);

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)g_rand_int(rand);
	for (;;)
		write(fd, junk, sizeof(junk));
}

static uint8_t piece[SANDBOX_PIECE_MAX];

/* 'pieces' pieces of kernel (a bzImage's magic in the first if 'magic'), then 'cmdline'. */
static void answer(int fd, unsigned pieces, bool magic, const char *cmdline)
{
	memcpy(piece + 0x202, magic ? "HdrS" : "None", 4);
	for (unsigned i = 0; i < pieces; i++)
		sandbox_send(fd, SANDBOX_KERNEL, 0, piece, sizeof(piece));
	sandbox_send(fd, SANDBOX_CMDLINE, 0, cmdline, strlen(cmdline));
	sandbox_send(fd, SANDBOX_DONE, 0, NULL, 0);
}

static void child_sends_a_huge_kernel(const struct bootdisk_reader *image, int fd)
{
	answer(fd, BOOTDISK_KERNEL_MAX / SANDBOX_PIECE_MAX + 1, true, "ro");
}

static void child_sends_no_bzimage(const struct bootdisk_reader *image, int fd)
{
	answer(fd, 1, false, "ro");
}

static void child_sends_a_bad_cmdline(const struct bootdisk_reader *image, int fd)
{
	answer(fd, 1, true, "ro \x1b[2J");
}

static void child_sends_two_cmdlines(const struct bootdisk_reader *image, int fd)
{
	sandbox_send(fd, SANDBOX_CMDLINE, 0, "ro", 2);
	sandbox_send(fd, SANDBOX_CMDLINE, 0, "ro", 2);
	sandbox_send(fd, SANDBOX_DONE, 0, NULL, 0);
}

/* Reads past the image's end are refused, not served; then it says so in two lines. */
static void child_reads_past_the_end(const struct bootdisk_reader *image, int fd)
{
	static const char why[] = "read past the end\nsecond line";
	struct sandbox_msg reply;

	sandbox_send(fd, SANDBOX_READ, image->size - 8, NULL, 0);
	if (read(fd, &reply, sizeof(reply)) != sizeof(reply) || reply.type != SANDBOX_DATA)
		return;
	struct sandbox_msg past = {SANDBOX_READ, 16, image->size - 8};

	write(fd, &past, sizeof(past));
	if (read(fd, &reply, sizeof(reply)) != sizeof(reply) || reply.type != SANDBOX_READ_FAILED)
		return;
	sandbox_send(fd, SANDBOX_ERROR, HUSK_EXIT_USAGE, why, sizeof(why) - 1);
}

static void child_sends_a_long_message(const struct bootdisk_reader *image, int fd)
{
	struct sandbox_msg m = {SANDBOX_DESCRIPTION, SANDBOX_PIECE_MAX, 0};

	write(fd, &m, sizeof(m));
}

/*
 * GLib sets some things up on first use, behind g_once_init_leave's futex
 * wake (g_ascii_strtoull's locale, for one): the child may do that.
 */
static void child_sets_up_once(const struct bootdisk_reader *image, int fd)
{
	static const char done[] = "set up";
	static gsize once;

	if (g_once_init_enter(&once))
		g_once_init_leave(&once, 1);
	sandbox_send(fd, SANDBOX_ERROR, HUSK_EXIT_USAGE, done, sizeof(done) - 1);
}

static void test_sandbox_glib_once(void)
{
	struct image img;
	struct boot_choice c;
	GError *err = NULL;

	zero_image(&img, 1);
	g_assert_false(sandbox_run(&img.reader, child_sets_up_once, 20000, &c, &err));
	g_assert_cmpstr(err->message, ==, "set up");
	g_clear_error(&err);
	image_clear(&img);
}

static void test_sandbox_misbehaves(void)
{
	static const struct {
		sandbox_child_fn child;
		const char *says;
	} cases[] = {
	    /* Signal 11, and status 0; SIGSYS under ASan, whose own calls the filter stops. */
	    {child_crashes, "ended without an answer: it "},
	    {child_hangs, "took over 0.3 s"},
	    {child_opens_a_file, "a system call its filter forbids"},
	    {child_writes_stderr, "a system call its filter forbids"},
	    {child_says_nothing, "ended without an answer: it "},
	    {child_sends_garbage, "malformed"},
	    {child_sends_a_huge_kernel, "over 128 MiB"},
	    {child_sends_no_bzimage, "not a bzImage"},
	    {child_sends_a_bad_cmdline, "not printable"},
	    {child_sends_two_cmdlines, "twice"},
	    {child_reads_past_the_end, "read past the end?second line"},
	    {child_sends_a_long_message, "malformed"},
	};
	struct image img;

	zero_image(&img, 1);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct boot_choice c;
		GError *err = NULL;

		/* Long enough for the huge kernel under ASan; the hang is waited on less. */
		unsigned timeout_ms = cases[i].child == child_hangs ? 300 : 20000;

		g_assert_false(sandbox_run(&img.reader, cases[i].child, timeout_ms, &c, &err));
		g_assert_nonnull(err);
		g_test_message("%s", err->message);
		g_assert_nonnull(strstr(err->message, cases[i].says));
		g_assert_null(strchr(err->message, '\n'));
		g_assert_null(c.kernel);
		g_clear_error(&err);
	}
	image_clear(&img);
}

/* The bytes a clean search reads: where damage is likeliest to matter. */
struct read_log {
	struct bootdisk_reader inner;
	GArray *reads; /* of uint64_t pairs: offset, length */
};

static bool logged_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct read_log *log = opaque;
	uint64_t pair[2] = {off, len};

	if (off >= MiB) /* past the partition table */
		g_array_append_vals(log->reads, pair, 2);
	return log->inner.read(log->inner.opaque, buf, len, off);
}

static bool discard(void *opaque, const void *buf, size_t len)
{
	return true;
}

static GArray *reads_of_a_search(const struct image *img)
{
	struct read_log log = {img->reader, g_array_new(FALSE, FALSE, sizeof(uint64_t))};
	struct bootdisk_reader r = {logged_read, img->reader.size, &log};
	struct boot_sink sink = {discard, discard, NULL};
	g_autofree char *cmdline = NULL, *description = NULL;

	g_assert_true(bootdisk_search(&r, &sink, &cmdline, &description, NULL));
	return log.reads;
}

/* Damage in the partition table (if 'table') and in what a search reads ('reads', or the disk's
 * start). */
static void damage(GRand *rand, GByteArray *bytes, bool table, GArray *reads, GArray *undo)
{
	int edits = g_rand_int_range(rand, 1, reads ? 6 : 24);

	for (int i = 0; i < edits; i++) {
		uint64_t at;

		if (table || !reads) {
			at = (uint64_t)g_rand_int_range(rand, 0, 34 * 512);
		} else {
			guint pick = (guint)g_rand_int_range(rand, 0, (gint32)reads->len / 2) * 2;
			uint64_t off = g_array_index(reads, uint64_t, pick);
			uint64_t len = g_array_index(reads, uint64_t, pick + 1);

			at = off + (uint64_t)g_rand_double_range(rand, 0, (double)len);
		}
		uint64_t saved = at << 8 | bytes->data[at];

		g_array_append_val(undo, saved);
		bytes->data[at] =
		    g_rand_boolean(rand)
		        ? (uint8_t)g_rand_int(rand)
		        : bytes->data[at] ^ (uint8_t)(1u << g_rand_int_range(rand, 0, 8));
	}
}

static void repair(GByteArray *bytes, GArray *undo)
{
	for (guint i = undo->len; i-- > 0;) {
		uint64_t saved = g_array_index(undo, uint64_t, i);

		bytes->data[saved >> 8] = (uint8_t)saved;
	}
	g_array_set_size(undo, 0);
}

/* Reasons by their first words, for the log: how often the child died, for one. */
static void count_reason(GHashTable *reasons, const char *message)
{
	g_autofree char *key = g_strndup(message, 48);
	gpointer n = g_hash_table_lookup(reasons, key);

	g_hash_table_replace(reasons, g_steal_pointer(&key),
	                     GUINT_TO_POINTER(GPOINTER_TO_UINT(n) + 1));
}

static void print_reason(gpointer key, gpointer value, gpointer unused)
{
	g_test_message("%5u x %s...", GPOINTER_TO_UINT(value), (char *)key);
}

/* Each damaged image is answered or refused in one line, the parent unharmed. */
static void hostile_images(const char *features, guint32 seed)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
	g_autoptr(GArray) undo = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	g_autoptr(GHashTable) reasons =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	unsigned found = 0, refused = 0;
	struct image img;

	ext4_features = features;
	bool built = build_debian(&img);

	ext4_features = "has_journal";
	if (!built)
		return;
	g_autoptr(GArray) reads = reads_of_a_search(&img);

	for (int n = 0; n < 600; n++) {
		struct boot_choice c;
		GError *err = NULL;

		/* Mostly past the checksummed GPT, which refuses most damage to itself. */
		damage(rand, img.bytes, n % 8 == 0, reads, undo);
		if (bootdisk_find_within(&img.reader, 5000, &c, &err)) {
			g_assert_nonnull(c.kernel);
			boot_choice_clear(&c);
			found++;
		} else {
			g_assert_nonnull(err);
			g_assert_null(strchr(err->message, '\n'));
			/* The parser refuses; a child that dies or hangs is a bug merely contained.
			 */
			g_assert_null(strstr(err->message, "without an answer"));
			g_assert_null(strstr(err->message, "took over"));
			count_reason(reasons, err->message);
			g_clear_error(&err);
			refused++;
		}
		repair(img.bytes, undo);
	}
	g_test_message("%s: %u found, %u refused", features, found, refused);
	g_hash_table_foreach(reasons, print_reason, NULL);
	image_clear(&img);
}

static void test_hostile_images(void)
{
	hostile_images("has_journal", 6122026);
	/* No checksums, as an attacker would make it: damage reaches libext2fs's parsing. */
	hostile_images("^metadata_csum,^has_journal", 7122026);
}

/* After damage, the GPT's checksums made right again: the damage then gets past them. */
static void fix_gpt_checksums(uint8_t *disk)
{
	uint8_t *hdr = disk + 512;
	uint32_t count, size, crc;

	memcpy(&count, hdr + 80, 4);
	memcpy(&size, hdr + 84, 4);
	if (count * (uint64_t)size <= 32 * 512) {
		crc = gpt_crc32(disk + 1024, (size_t)count * size);
		memcpy(hdr + 88, &crc, 4);
	}
	memset(hdr + 16, 0, 4);
	memcpy(&size, hdr + 12, 4);
	crc = gpt_crc32(hdr, MIN(size, 512));
	memcpy(hdr + 16, &crc, 4);
}

/* Partition tables alone, in this process: thousands of damaged GPTs and MBRs. */
static void test_hostile_partition_tables(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(20261206);
	g_autoptr(GArray) undo = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	static struct partition parts[PARTITION_MAX];
	unsigned read = 0, refused = 0;
	struct image img;

	zero_image(&img, 8);
	for (int n = 0; n < 20000; n++) {
		GError *err = NULL;
		int count;

		if (n % 2 == 0) { /* an MBR with an extended partition's chain */
			uint8_t *mbr = img.bytes->data;

			mbr[510] = 0x55, mbr[511] = 0xaa;
			mbr[446 + 4] = n % 4 ? 0x05 : 0xee;
			mbr[446 + 8] = 1;
			mbr[446 + 12] = 0x10;
		}
		damage(rand, img.bytes, true, NULL, undo);
		if (n % 4 == 3)
			fix_gpt_checksums(img.bytes->data);
		if (partition_read(&img.reader, parts, &count, &err)) {
			g_assert_cmpint(count, >=, 1);
			g_assert_cmpint(count, <=, PARTITION_MAX);
			for (int i = 0; i < count; i++)
				g_assert_cmpuint(parts[i].offset + parts[i].size, <=,
				                 img.reader.size);
			read++;
		} else {
			g_assert_nonnull(err);
			g_clear_error(&err);
			refused++;
		}
		repair(img.bytes, undo);
		memset(img.bytes->data, 0, 64 * 1024);
	}
	g_test_message("%u read, %u refused", read, refused);
	image_clear(&img);
}

/* The search alone, in this process, the kernel's bytes thrown away: well under 50 ms. */
static void test_speed(void)
{
	struct boot_sink sink = {discard, discard, NULL};
	double best = 1e9;
	struct image img;

	if (!build_debian(&img))
		return;
	for (int i = 0; i < 10; i++) {
		g_autofree char *cmdline = NULL, *description = NULL;
		gint64 start = g_get_monotonic_time();

		g_assert_true(bootdisk_search(&img.reader, &sink, &cmdline, &description, NULL));
		best = MIN(best, (g_get_monotonic_time() - start) / 1000.0);
	}
	g_test_message("search: %.2f ms at best", best);
	g_assert_cmpfloat(best, <, 50);
	image_clear(&img);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/bootdisk/gpt/debian", test_debian_gpt);
	g_test_add_func("/bootdisk/gpt/ubuntu-separate-boot", test_ubuntu_gpt);
	g_test_add_func("/bootdisk/gpt/bls", test_bls);
	g_test_add_func("/bootdisk/gpt/grub-names-missing-kernel", test_grub_missing_kernel);
	g_test_add_func("/bootdisk/gpt/no-kernel", test_no_kernel);
	g_test_add_func("/bootdisk/gpt/damaged-superblock", test_damaged_superblock);
	g_test_add_func("/bootdisk/gpt/backup-header", test_gpt_backup);
	g_test_add_func("/bootdisk/gpt/large-grub-cfg", test_large_grub_cfg);
	g_test_add_func("/bootdisk/gpt/btrfs", test_btrfs_partition);
	g_test_add_func("/bootdisk/mbr/logical", test_mbr_logical);
	g_test_add_func("/bootdisk/bare-ext4", test_bare_ext4);
	g_test_add_func("/bootdisk/unsupported", test_unsupported_filesystems);
	g_test_add_func("/bootdisk/no-filesystem", test_no_filesystem);
	g_test_add_func("/bootdisk/speed", test_speed);
	g_test_add_func("/bootdisk/sandbox/misbehaves", test_sandbox_misbehaves);
	g_test_add_func("/bootdisk/sandbox/glib-once", test_sandbox_glib_once);
	g_test_add_func("/bootdisk/hostile/partition-tables", test_hostile_partition_tables);
	g_test_add_func("/bootdisk/hostile/images", test_hostile_images);
	return g_test_run();
}
