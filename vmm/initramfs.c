// SPDX-License-Identifier: MIT
#include "vmm/initramfs.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vmm/error.h"

/* --- cpio newc (the kernel's "initramfs buffer format") --------------------- */

static void pad4(GByteArray *b)
{
	static const uint8_t zeros[4];

	g_byte_array_append(b, zeros, (4 - b->len % 4) % 4);
}

/* major/minor are the device a special file stands for (rdevmajor, rdevminor). */
static void entry(struct cpio *c, const char *path, uint32_t mode, const void *data, size_t len,
                  unsigned int major, unsigned int minor)
{
	char hdr[111];
	size_t namesize = strlen(path) + 1;

	snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
	         c->ino++, mode, 0, 0, (mode & S_IFMT) == S_IFDIR ? 2 : 1, 0, (uint32_t)len, 0, 0,
	         major, minor, (uint32_t)namesize, 0);
	g_byte_array_append(c->buf, (const uint8_t *)hdr, 110);
	g_byte_array_append(c->buf, (const uint8_t *)path, (guint)namesize);
	pad4(c->buf);
	if (len)
		g_byte_array_append(c->buf, data, (guint)len);
	pad4(c->buf);
}

void cpio_init(struct cpio *c)
{
	c->buf = g_byte_array_new();
	c->ino = 1;
}

void cpio_add_dir(struct cpio *c, const char *path, mode_t mode)
{
	entry(c, path, S_IFDIR | (mode & 07777), NULL, 0, 0, 0);
}

void cpio_add_file(struct cpio *c, const char *path, mode_t mode, const void *data, size_t len)
{
	entry(c, path, S_IFREG | (mode & 07777), data, len, 0, 0);
}

void cpio_add_char_dev(struct cpio *c, const char *path, mode_t mode, unsigned int major,
                       unsigned int minor)
{
	entry(c, path, S_IFCHR | (mode & 07777), NULL, 0, major, minor);
}

GBytes *cpio_finish(struct cpio *c)
{
	entry(c, "TRAILER!!!", 0, NULL, 0, 0, 0);
	/* Archives are usually padded to 512 bytes; the kernel does not care. */
	static const uint8_t zeros[512];
	g_byte_array_append(c->buf, zeros, (512 - c->buf->len % 512) % 512);
	return g_byte_array_free_to_bytes(g_steal_pointer(&c->buf));
}

/* --- modules --------------------------------------------------------------------- */

/* "kernel/fs/fuse/virtio-fs.ko.xz" -> "virtio_fs": how modprobe compares names. */
static char *module_name(const char *path)
{
	const char *base = strrchr(path, '/');
	char *name = g_strdup(base ? base + 1 : path);
	char *dot = strstr(name, ".ko");

	if (dot)
		*dot = '\0';
	g_strdelimit(name, "-", '_');
	return name;
}

struct moddb {
	GHashTable *deps;    /* name -> char ** (path, then the paths it needs) */
	GHashTable *builtin; /* names built into the kernel */
};

static bool load_db(struct moddb *db, const char *moddir, GError **err)
{
	char *path = g_build_filename(moddir, "modules.dep", NULL), *text;
	bool ok = g_file_get_contents(path, &text, NULL, NULL);

	db->deps =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
	db->builtin = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (!ok) {
		husk_fail(err, HUSK_EXIT_USAGE,
		          "%s: cannot read it (are the kernel's modules there?)", path);
		g_free(path);
		return false;
	}
	char **lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		char *colon = strchr(*l, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *rest = g_strstrip(colon + 1);
		char *all = g_strconcat(*l, *rest ? " " : "", rest, NULL);
		g_hash_table_replace(db->deps, module_name(*l), g_strsplit(all, " ", -1));
		g_free(all);
	}
	g_strfreev(lines);
	g_free(text);
	g_free(path);
	path = g_build_filename(moddir, "modules.builtin", NULL);
	if (g_file_get_contents(path, &text, NULL, NULL)) {
		lines = g_strsplit(text, "\n", -1);
		for (char **l = lines; *l; l++)
			if (**l)
				g_hash_table_add(db->builtin, module_name(*l));
		g_strfreev(lines);
		g_free(text);
	}
	g_free(path);
	return true;
}

/* Dependencies before the module; modules.dep lists the deepest last. */
static void visit(struct moddb *db, const char *name, GHashTable *seen, GPtrArray *out)
{
	char **paths = g_hash_table_lookup(db->deps, name);

	if (!paths || g_hash_table_contains(seen, name))
		return;
	g_hash_table_add(seen, g_strdup(name));
	guint n = g_strv_length(paths);
	for (guint i = n; i-- > 1;) {
		char *dep = module_name(paths[i]);
		visit(db, dep, seen, out);
		g_free(dep);
	}
	g_ptr_array_add(out, g_strdup(paths[0]));
}

bool modules_resolve(const char *moddir, const char *const *names, bool required, GPtrArray *out,
                     GError **err)
{
	struct moddb db;
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	bool ok = load_db(&db, moddir, err);

	for (guint i = 0; i < out->len; i++) {
		char *name = module_name(out->pdata[i]);
		g_hash_table_add(seen, name);
	}
	for (const char *const *n = names; ok && *n; n++) {
		char *name = module_name(*n);
		if (g_hash_table_contains(db.deps, name))
			visit(&db, name, seen, out);
		else if (required && !g_hash_table_contains(db.builtin, name))
			ok = husk_fail(
			    err, HUSK_EXIT_USAGE,
			    "the kernel has no %s module (in %s/modules.dep or modules.builtin)",
			    *n, moddir);
		g_free(name);
	}
	g_hash_table_unref(seen);
	g_hash_table_unref(db.deps);
	g_hash_table_unref(db.builtin);
	return ok;
}
