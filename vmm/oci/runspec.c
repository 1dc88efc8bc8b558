// SPDX-License-Identifier: MIT
#include "vmm/oci/runspec.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/error.h"

#define ID_MAX 0xfffffffeUL  /* (uid_t)-1 means "no change" to the kernel */
#define DB_MAX (1024 * 1024) /* a passwd or group file bigger than this is not read */

/* --- the command ---------------------------------------------------------------- */

char **oci_command(char **image_entrypoint, char **image_cmd, const char *entrypoint, char **args,
                   GError **err)
{
	GPtrArray *argv = g_ptr_array_new();

	if (entrypoint) {
		if (*entrypoint)
			g_ptr_array_add(argv, g_strdup(entrypoint));
	} else {
		for (char **a = image_entrypoint; a && *a; a++)
			g_ptr_array_add(argv, g_strdup(*a));
	}
	/* A new entrypoint would not know what to do with the image's Cmd. */
	char **cmd = args ? args : entrypoint ? NULL : image_cmd;
	for (char **a = cmd; a && *a; a++)
		g_ptr_array_add(argv, g_strdup(*a));
	g_ptr_array_add(argv, NULL);
	char **out = (char **)g_ptr_array_free(argv, FALSE);
	if (!out[0]) {
		husk_fail(err, HUSK_EXIT_USAGE,
		          "run: the image names no command (give one after --, or --entrypoint)");
		g_clear_pointer(&out, g_strfreev);
	}
	return out;
}

/* --- the user ------------------------------------------------------------------------ */

static bool parse_id(const char *text, unsigned long *out)
{
	char *end;

	if (!g_ascii_isdigit(*text))
		return false;
	errno = 0;
	*out = strtoul(text, &end, 10);
	return !errno && !*end && *out <= ID_MAX;
}

/* The fields of the line of a passwd/group file whose field 'key' (0: name, 2: id) is value. */
static char **find_line(const char *db, int key, const char *value)
{
	char **lines = db ? g_strsplit(db, "\n", -1) : NULL;
	char **found = NULL;

	for (char **l = lines; l && *l && !found; l++) {
		char **f = g_strsplit(*l, ":", -1);
		if (g_strv_length(f) >= 4 && strcmp(f[key], value) == 0)
			found = f;
		else
			g_strfreev(f);
	}
	g_strfreev(lines);
	return found;
}

static bool lookup_group(const char *group_db, const char *spec, gid_t *gid, GError **err)
{
	unsigned long id;

	if (parse_id(spec, &id)) {
		*gid = (gid_t)id;
		return true;
	}
	char **g = find_line(group_db, 0, spec);
	bool ok = g && parse_id(g[2], &id);
	if (ok)
		*gid = (gid_t)id;
	g_strfreev(g);
	return ok || husk_fail(err, HUSK_EXIT_USAGE, "run: no group \"%s\" in the image", spec);
}

/* The groups whose member lists name the user, as initgroups(3) finds them. */
static void add_groups(const char *group_db, const char *name, struct oci_user *u)
{
	char **lines = group_db && name ? g_strsplit(group_db, "\n", -1) : NULL;

	for (char **l = lines; l && *l && u->ngroups < OCI_MAX_GROUPS; l++) {
		char **f = g_strsplit(*l, ":", -1);
		unsigned long id;
		if (g_strv_length(f) >= 4 && parse_id(f[2], &id)) {
			char **members = g_strsplit(f[3], ",", -1);
			for (char **m = members; *m; m++)
				if (strcmp(*m, name) == 0 && (gid_t)id != u->gid)
					u->groups[u->ngroups++] = (gid_t)id;
			g_strfreev(members);
		}
		g_strfreev(f);
	}
	g_strfreev(lines);
}

bool oci_user_resolve(const char *spec, const char *passwd, const char *group, struct oci_user *out,
                      GError **err)
{
	char **parts = g_strsplit(spec ? spec : "", ":", 2);
	const char *user = parts[0] ? parts[0] : "", *grp = parts[0] ? parts[1] : NULL;
	unsigned long id;
	char **pw = NULL;
	bool ok = true;

	memset(out, 0, sizeof(*out));
	if (!*user) {
		pw = find_line(passwd, 2, "0");
	} else if (parse_id(user, &id)) {
		out->uid = (uid_t)id;
		pw = find_line(passwd, 2, user);
	} else if ((pw = find_line(passwd, 0, user)) && parse_id(pw[2], &id)) {
		out->uid = (uid_t)id;
	} else {
		ok = husk_fail(err, HUSK_EXIT_USAGE,
		               "run: no user \"%s\" in the image's /etc/passwd", user);
	}
	/* Docker's defaults: the passwd entry's group, else 0. */
	if (ok && pw && parse_id(pw[3], &id))
		out->gid = (gid_t)id;
	if (ok && pw && g_strv_length(pw) >= 6 && *pw[5])
		out->home = g_strdup(pw[5]);
	if (ok && grp && *grp)
		ok = lookup_group(group, grp, &out->gid, err);
	else if (ok && pw)
		add_groups(group, pw[0], out);
	g_strfreev(pw);
	g_strfreev(parts);
	if (!ok)
		oci_user_clear(out);
	return ok;
}

/* A file of the image, read without leaving its root (links resolve inside it). */
static char *read_in_root(int rootfd, const char *path)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
	                       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	struct stat st;
	char *text = NULL;

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= DB_MAX) {
		text = g_malloc0((gsize)st.st_size + 1);
		gsize got = 0;
		ssize_t n;
		while (got < (gsize)st.st_size &&
		       (n = read(fd, text + got, (gsize)st.st_size - got)) > 0)
			got += (gsize)n;
		text[got] = '\0';
	}
	if (fd >= 0)
		close(fd);
	return text;
}

bool oci_user_resolve_in(const char *root, const char *spec, struct oci_user *out, GError **err)
{
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *passwd = rootfd >= 0 ? read_in_root(rootfd, "etc/passwd") : NULL;
	char *group = rootfd >= 0 ? read_in_root(rootfd, "etc/group") : NULL;
	bool ok = oci_user_resolve(spec, passwd, group, out, err);

	if (rootfd >= 0)
		close(rootfd);
	g_free(passwd);
	g_free(group);
	return ok;
}

void oci_user_clear(struct oci_user *u)
{
	g_free(u->home);
	memset(u, 0, sizeof(*u));
}

char *oci_user_format(const struct oci_user *u)
{
	GString *s = g_string_new(NULL);

	g_string_append_printf(s, "%u:%u", (unsigned)u->uid, (unsigned)u->gid);
	for (int i = 0; i < u->ngroups; i++)
		g_string_append_printf(s, "%c%u", i ? ',' : ':', (unsigned)u->groups[i]);
	return g_string_free(s, FALSE);
}

/* --- the environment ------------------------------------------------------------------ */

char **oci_env_set(char **env, const char *assignment)
{
	size_t name = strcspn(assignment, "=");
	GPtrArray *out = g_ptr_array_new();
	bool replaced = false;

	for (char **e = env; e && *e; e++) {
		bool same = strncmp(*e, assignment, name) == 0 && (*e)[name] == '=';
		g_ptr_array_add(out, g_strdup(same ? assignment : *e));
		replaced |= same;
	}
	if (!replaced)
		g_ptr_array_add(out, g_strdup(assignment));
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}
