// SPDX-License-Identifier: MIT
/*
 * Which filesystem, which entry, which files: the filesystems in the order
 * a kernel is likeliest in (XBOOTLDR, then Linux ones, then unknown types;
 * never the ESP, BIOS boot or swap), and in each the default grub.cfg
 * entry, else the newest BLS entry, else the newest vmlinuz.
 */
#include "vmm/bootdisk/find.h"

#include <string.h>

#include "vmm/bootdisk/boot_entry.h"
#include "vmm/bootdisk/ext_reader.h"
#include "vmm/bootdisk/partition.h"
#include "vmm/error.h"

/* Filesystems opened at most: a disk with more is not a cloud image. */
#define FS_MAX 16

/* grubenv is one 1 KiB block; more is not GRUB's. */
#define GRUBENV_MAX (64 * 1024)

/* BLS entries read at most, and their size: a real one is a few hundred bytes. */
#define BLS_ENTRIES_MAX    256
#define BLS_ENTRY_SIZE_MAX (64 * 1024)

struct found_fs {
	const struct partition *part;
	struct ext_fs *fs;
};

struct search {
	struct partition parts[PARTITION_MAX];
	int nparts;
	struct found_fs fss[FS_MAX];
	int nfs;
	/* For the error message: "partition 2 is btrfs, partition 3 is xfs", */
	GString *unread;
	/* and ext filesystems libext2fs would not open, damaged or with features
	 * it lacks: "partition 1: Superblock checksum does not match superblock". */
	GString *unopened;
};

/* What will be booted. */
struct choice {
	struct found_fs *where;
	char *kernel;
	GPtrArray *initrds;
	char *options;
	char *how; /* "grub.cfg entry 'Debian GNU/Linux'" */
};

static const char *const grub_dirs[] = {"/boot/grub", "/grub", "/boot/grub2", "/grub2"};

static void choice_clear(struct choice *c)
{
	g_free(c->kernel);
	if (c->initrds)
		g_ptr_array_unref(c->initrds);
	g_free(c->options);
	g_free(c->how);
	memset(c, 0, sizeof(*c));
}

static int kind_rank(enum partition_kind kind)
{
	switch (kind) {
	case PARTITION_XBOOTLDR:
		return 0;
	case PARTITION_LINUX:
	case PARTITION_WHOLE_DISK:
		return 1;
	case PARTITION_OTHER:
		return 2;
	default:
		return 3;
	}
}

static void partition_name(const struct partition *p, char *buf, size_t len)
{
	if (p->kind == PARTITION_WHOLE_DISK)
		g_strlcpy(buf, "the whole disk", len);
	else
		g_snprintf(buf, len, "partition %u", p->number);
}

static void open_one(struct search *s, const struct bootdisk_reader *r, const struct partition *p)
{
	const char *type = fs_probe(r, p->offset, p->size);
	char name[32];

	partition_name(p, name, sizeof(name));
	if (!type || s->nfs >= FS_MAX)
		return;
	if (strcmp(type, "ext") != 0) {
		g_string_append_printf(s->unread, "%s%s is %s", s->unread->len ? ", " : "", name,
		                       type);
		return;
	}
	g_autoptr(GError) err = NULL;
	struct ext_fs *fs = ext_open(r, p->offset, p->size, &err);

	if (fs)
		s->fss[s->nfs++] = (struct found_fs){p, fs};
	else
		g_string_append_printf(s->unopened, "%s%s: %s", s->unopened->len ? ", " : "", name,
		                       err->message);
}

static void open_filesystems(struct search *s, const struct bootdisk_reader *r)
{
	for (int rank = 0; rank < 3; rank++)
		for (int i = 0; i < s->nparts; i++)
			if (kind_rank(s->parts[i].kind) == rank)
				open_one(s, r, &s->parts[i]);
}

static struct found_fs *fs_by_uuid(struct search *s, const char *uuid)
{
	for (int i = 0; uuid && i < s->nfs; i++)
		if (g_ascii_strcasecmp(ext_uuid(s->fss[i].fs), uuid) == 0)
			return &s->fss[i];
	return NULL;
}

/*
 * A path as a boot loader wrote it, relative to the filesystem it searched:
 * on that one if we know it, else on 'near'; under /boot too, for /boot in
 * the root filesystem.
 */
static char *resolve(struct search *s, struct found_fs *near, const char *uuid, const char *path,
                     struct found_fs **where)
{
	struct found_fs *order[] = {fs_by_uuid(s, uuid), near};

	for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
		if (!order[i])
			continue;
		if (ext_is_file(order[i]->fs, path)) {
			*where = order[i];
			return g_strdup(path);
		}
		g_autofree char *in_boot =
		    g_strconcat("/boot", path[0] == '/' ? "" : "/", path, NULL);

		if (ext_is_file(order[i]->fs, in_boot)) {
			*where = order[i];
			return g_steal_pointer(&in_boot);
		}
	}
	return NULL;
}

/* The entry's kernel and initrds, found; false with a note when one is missing. */
static bool choose_entry(struct search *s, struct found_fs *near, const char *source,
                         struct boot_entry *e, struct choice *c, GString *notes)
{
	struct found_fs *where = NULL, *initrd_where;

	c->kernel = resolve(s, near, e->search_uuid, e->kernel, &where);
	if (!c->kernel) {
		g_string_append_printf(notes, "%s%s '%s' names %s, which is not there",
		                       notes->len ? "; " : "", source, e->title ? e->title : "",
		                       e->kernel);
		return false;
	}
	c->where = where;
	c->initrds = g_ptr_array_new_with_free_func(g_free);
	for (unsigned i = 0; i < e->initrds->len; i++) {
		char *path = resolve(s, where, NULL, e->initrds->pdata[i], &initrd_where);

		if (!path || initrd_where != where) {
			g_string_append_printf(
			    notes, "%s%s '%s' names %s, which is not there", notes->len ? "; " : "",
			    source, e->title ? e->title : "", (char *)e->initrds->pdata[i]);
			g_free(path);
			return false;
		}
		g_ptr_array_add(c->initrds, path);
	}
	c->options = g_strdup(e->options ? e->options : "");
	return true;
}

/* GRUB's environment block (saved_entry, kernelopts) beside its grub.cfg in 'dir'. */
static char *grubenv_in(struct ext_fs *fs, const char *dir)
{
	g_autofree char *path = g_strconcat(dir, "/grubenv", NULL);
	size_t len;

	return ext_read_text(fs, path, GRUBENV_MAX, &len);
}

static bool try_grub(struct search *s, struct found_fs *f, struct choice *c, GString *notes)
{
	for (size_t i = 0; i < G_N_ELEMENTS(grub_dirs); i++) {
		g_autofree char *cfg_path = g_strconcat(grub_dirs[i], "/grub.cfg", NULL);
		size_t len;
		g_autofree char *cfg = ext_read_text(f->fs, cfg_path, BOOT_CONFIG_MAX, &len);
		g_autoptr(GError) err = NULL;
		struct boot_entry e;

		if (!cfg)
			continue;
		g_autofree char *env = grubenv_in(f->fs, grub_dirs[i]);

		if (!grub_cfg_default_entry(cfg, len, env, &e, &err)) {
			/* Fedora's has no entries: its blscfg reads the BLS ones, tried next. */
			if (!strstr(cfg, "blscfg"))
				g_string_append_printf(notes, "%s%s: %s", notes->len ? "; " : "",
				                       cfg_path, err->message);
			return false;
		}
		bool ok = choose_entry(s, f, "grub.cfg entry", &e, c, notes);

		if (ok)
			c->how = g_strdup_printf("grub.cfg entry '%s'", e.title);
		boot_entry_clear(&e);
		return ok;
	}
	return false;
}

struct bls_candidate {
	char *file, *version;
	struct boot_entry entry;
};

static void bls_candidate_free(void *p)
{
	struct bls_candidate *b = p;

	g_free(b->file);
	g_free(b->version);
	boot_entry_clear(&b->entry);
	g_free(b);
}

/* Newest first: by version, else by file name (the BLS's own order). */
static int bls_newest_first(const void *a, const void *b)
{
	const struct bls_candidate *x = *(void *const *)a, *y = *(void *const *)b;
	int by_version = strverscmp(y->version ? y->version : "", x->version ? x->version : "");

	return by_version ? by_version : strverscmp(y->file, x->file);
}

/* The first grubenv beside a grub.cfg, for the variables in BLS options. */
static char *any_grubenv(struct ext_fs *fs)
{
	char *env = NULL;

	for (size_t i = 0; !env && i < G_N_ELEMENTS(grub_dirs); i++)
		env = grubenv_in(fs, grub_dirs[i]);
	return env;
}

static GPtrArray *bls_entries(struct ext_fs *fs, const char *dir)
{
	GPtrArray *found = g_ptr_array_new_with_free_func(bls_candidate_free);
	g_autoptr(GPtrArray) names = ext_list(fs, dir, "");
	g_autofree char *env = names->len ? any_grubenv(fs) : NULL;

	for (unsigned i = 0; i < names->len && found->len < BLS_ENTRIES_MAX; i++) {
		const char *name = names->pdata[i];
		g_autofree char *path = g_strconcat(dir, "/", name, NULL);
		size_t len;
		g_autofree char *text = NULL;
		struct bls_candidate *b;

		if (!g_str_has_suffix(name, ".conf"))
			continue;
		text = ext_read_text(fs, path, BLS_ENTRY_SIZE_MAX, &len);
		if (!text)
			continue;
		b = g_new0(struct bls_candidate, 1);
		if (!bls_entry_parse(text, len, env, &b->entry, &b->version)) {
			g_free(b);
			continue;
		}
		b->file = g_strdup(name);
		g_ptr_array_add(found, b);
	}
	g_ptr_array_sort(found, bls_newest_first);
	return found;
}

static bool try_bls(struct search *s, struct found_fs *f, struct choice *c, GString *notes)
{
	static const char *const dirs[] = {"/loader/entries", "/boot/loader/entries"};

	for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
		g_autoptr(GPtrArray) found = bls_entries(f->fs, dirs[i]);

		if (found->len == 0)
			continue;
		struct bls_candidate *b = found->pdata[0];

		if (!choose_entry(s, f, "BLS entry", &b->entry, c, notes))
			return false;
		c->how = g_strdup_printf("BLS entry %s/%s", dirs[i], b->file);
		return true;
	}
	return false;
}

/* The root filesystem, for root=UUID=: the first with /etc, as the table orders them. */
static struct found_fs *root_fs(struct search *s)
{
	struct found_fs *best = NULL;

	for (int i = 0; i < s->nfs; i++)
		if (ext_is_dir(s->fss[i].fs, "/etc") &&
		    (!best || s->fss[i].part->number < best->part->number))
			best = &s->fss[i];
	return best;
}

/* The newest "vmlinuz-VERSION" in 'dir', by version sort. */
static char *newest_kernel(struct ext_fs *fs, const char *dir)
{
	g_autoptr(GPtrArray) names = ext_list(fs, dir, "vmlinuz-");
	char *best = NULL;

	for (unsigned i = 0; i < names->len; i++) {
		const char *name = names->pdata[i];
		g_autofree char *path = g_strconcat(dir, "/", name, NULL);

		if ((!best || strverscmp(name, best) > 0) && ext_is_file(fs, path))
			best = names->pdata[i];
	}
	return best ? g_strconcat(dir, "/", best, NULL) : NULL;
}

/* Its initrd, by the names Debian, Fedora and SUSE give it. */
static char *initrd_for(struct ext_fs *fs, const char *dir, const char *version)
{
	const char *const patterns[] = {"%s/initrd.img-%s", "%s/initramfs-%s.img", "%s/initrd-%s"};

	for (size_t i = 0; i < G_N_ELEMENTS(patterns); i++) {
		char *path = g_strdup_printf(patterns[i], dir, version);

		if (ext_is_file(fs, path))
			return path;
		g_free(path);
	}
	return NULL;
}

static bool try_newest(struct search *s, struct found_fs *f, struct choice *c)
{
	static const char *const dirs[] = {"/boot", ""};

	for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
		char *kernel = newest_kernel(f->fs, dirs[i]);

		if (!kernel)
			continue;
		const char *version = strrchr(kernel, '/') + 1 + strlen("vmlinuz-");
		char *initrd = initrd_for(f->fs, dirs[i], version);
		struct found_fs *root = root_fs(s);

		c->where = f;
		c->kernel = kernel;
		c->initrds = g_ptr_array_new_with_free_func(g_free);
		if (initrd)
			g_ptr_array_add(c->initrds, initrd);
		c->options =
		    root ? g_strdup_printf("root=UUID=%s ro", ext_uuid(root->fs)) : g_strdup("ro");
		c->how = g_strdup_printf("the newest vmlinuz in %s/", dirs[i]);
		return true;
	}
	return false;
}

/* Each filesystem in turn: its grub.cfg, its BLS entries, its newest vmlinuz. */
static bool choose(struct search *s, struct choice *c, GString *notes)
{
	for (int i = 0; i < s->nfs; i++) {
		if (try_grub(s, &s->fss[i], c, notes))
			return true;
		choice_clear(c);
		if (try_bls(s, &s->fss[i], c, notes))
			return true;
		choice_clear(c);
		if (try_newest(s, &s->fss[i], c))
			return true;
	}
	return false;
}

static bool has_serial_console(const char *options)
{
	g_auto(GStrv) words = g_strsplit(options, " ", -1);

	for (char **w = words; *w; w++)
		if (g_str_has_prefix(*w, "console=ttyS"))
			return true;
	return false;
}

static char *make_cmdline(const char *options)
{
	if (has_serial_console(options))
		return g_strdup(options);
	return g_strdup_printf("%s%sconsole=ttyS0", options, *options ? " " : "");
}

static char *describe(const struct choice *c, const char *notes)
{
	char where[32];
	const char *name = strrchr(c->kernel, '/');

	partition_name(c->where->part, where, sizeof(where));
	return g_strdup_printf("%s from %s (%s), %s%s%s%s", name ? name + 1 : c->kernel, where,
	                       ext_kind(c->where->fs), c->how, *notes ? " (" : "", notes,
	                       *notes ? ")" : "");
}

/* Several initrds are one to Linux, concatenated: the receiver bounds their sum. */
static bool stream_files(const struct choice *c, const struct boot_sink *sink, GError **err)
{
	if (!ext_stream(c->where->fs, c->kernel, BOOTDISK_KERNEL_MAX, sink->kernel, sink->opaque,
	                err))
		return false;
	for (unsigned i = 0; i < c->initrds->len; i++)
		if (!ext_stream(c->where->fs, c->initrds->pdata[i], BOOTDISK_INITRD_MAX,
		                sink->initrd, sink->opaque, err))
			return false;
	return true;
}

static bool nothing_readable(struct search *s, GError **err)
{
	if (s->unopened->len)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "the disk image's ext2/3/4 filesystem cannot be read (%s)%s%s",
		                 s->unopened->str, s->unread->len ? "; " : "", s->unread->str);
	if (s->unread->len)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "no ext2/3/4 filesystem in the disk image (%s): husk reads the "
		                 "kernel out of ext2/3/4 only; give it with --kernel",
		                 s->unread->str);
	if (s->nparts == 1 && s->parts[0].kind == PARTITION_WHOLE_DISK)
		return husk_fail(
		    err, HUSK_EXIT_USAGE,
		    "the disk image has no partition table and no filesystem husk knows");
	return husk_fail(err, HUSK_EXIT_USAGE,
	                 "no partition of the disk image holds a filesystem husk knows");
}

static bool search_filesystems(struct search *s, const struct boot_sink *sink, char **cmdline,
                               char **description, GError **err)
{
	struct choice c = {0};
	g_autoptr(GString) notes = g_string_new(NULL);

	if (!choose(s, &c, notes)) {
		choice_clear(&c);
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "no kernel in the disk image: no grub.cfg entry, BLS entry or "
		                 "vmlinuz-* in /boot%s%s; give one with --kernel",
		                 notes->len ? "; " : "", notes->str);
	}
	bool ok = stream_files(&c, sink, err);

	if (ok) {
		*cmdline = make_cmdline(c.options);
		*description = describe(&c, notes->str);
	}
	choice_clear(&c);
	return ok;
}

bool bootdisk_search(const struct bootdisk_reader *r, const struct boot_sink *sink, char **cmdline,
                     char **description, GError **err)
{
	struct search *s = g_new0(struct search, 1);
	bool ok;

	s->unread = g_string_new(NULL);
	s->unopened = g_string_new(NULL);
	ok = partition_read(r, s->parts, &s->nparts, err);
	if (ok) {
		open_filesystems(s, r);
		if (s->nfs == 0)
			ok = nothing_readable(s, err);
		else
			ok = search_filesystems(s, sink, cmdline, description, err);
	}
	for (int i = 0; i < s->nfs; i++)
		ext_close(s->fss[i].fs);
	g_string_free(s->unread, TRUE);
	g_string_free(s->unopened, TRUE);
	g_free(s);
	return ok;
}
