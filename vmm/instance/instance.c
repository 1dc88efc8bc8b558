// SPDX-License-Identifier: MIT
#include "vmm/instance/instance.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/fdio.h"

#define STATE_DIR        "state"
#define TRUSTED_MAX      (1024 * 1024) /* config.json: a VM's whole description */
#define REMOVE_MAX_DEPTH 16            /* folders a guest's user may nest in state/ */

char *instance_home(void)
{
	const char *home = g_getenv("HUSK_HOME");

	/* Absolute: the serving process works from / (vmm/instance/serve.c). */
	if (home && *home)
		return g_canonicalize_filename(home, NULL);
	/* GLib's own answer falls back to ~/.local/share as the XDG spec says. */
	return g_build_filename(g_get_user_data_dir(), "husk", NULL);
}

char *instance_image_cache(void)
{
	char *home = instance_home();
	char *dir = g_build_filename(home, "images", NULL);

	g_free(home);
	return dir;
}

static char *instances_dir(void)
{
	char *home = instance_home();
	char *dir = g_build_filename(home, "instances", NULL);

	g_free(home);
	return dir;
}

bool instance_name_check(const char *name, GError **err)
{
	size_t len = strlen(name);

	if (len == 0 || len > INSTANCE_NAME_MAX)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "name \"%s\" must be 1 to %d characters long", name,
		                 INSTANCE_NAME_MAX);
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_islower(name[i]) && !g_ascii_isdigit(name[i]) && name[i] != '-')
			return husk_fail(err, HUSK_EXIT_USAGE,
			                 "name \"%s\" may only have a-z, 0-9 and -", name);
	if (name[0] == '-' || name[len - 1] == '-')
		return husk_fail(err, HUSK_EXIT_USAGE, "name \"%s\" may not begin or end with -",
		                 name);
	return true;
}

/* A folder itself, not a symlink there (state/ is its user's to change). */
static bool is_folder(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

struct instance *instance_get(const char *name, GError **err)
{
	if (!instance_name_check(name, err))
		return NULL;
	struct instance *inst = g_new0(struct instance, 1);
	char *dir = instances_dir();

	inst->name = g_strdup(name);
	inst->dir = g_build_filename(dir, name, NULL);
	inst->lock_fd = -1;
	g_free(dir);
	char *state = g_build_filename(inst->dir, STATE_DIR, NULL);
	if (is_folder(state))
		inst->state_dir = state;
	else
		inst->state_dir = (g_free(state), g_strdup(inst->dir));
	return inst;
}

bool instance_exists(const struct instance *inst)
{
	char *config = instance_path(inst, "config.json");
	bool there = g_file_test(config, G_FILE_TEST_EXISTS);

	g_free(config);
	return there;
}

void instance_free(struct instance *inst)
{
	if (!inst)
		return;
	if (inst->lock_fd >= 0)
		close(inst->lock_fd);
	g_free(inst->name);
	g_free(inst->dir);
	g_free(inst->state_dir);
	g_free(inst);
}

char *instance_path(const struct instance *inst, const char *file)
{
	return g_build_filename(inst->dir, file, NULL);
}

char *instance_state_path(const struct instance *inst, const char *file)
{
	return g_build_filename(inst->state_dir, file, NULL);
}

bool instance_make_state_dir(struct instance *inst, uid_t uid, gid_t gid, GError **err)
{
	char *state = g_build_filename(inst->dir, STATE_DIR, NULL);
	bool ok = (mkdir(state, 0700) == 0 || errno == EEXIST) &&
	          fchownat(AT_FDCWD, state, uid, gid, AT_SYMLINK_NOFOLLOW) == 0;

	if (ok && !is_folder(state))
		ok = (errno = ENOTDIR, false);
	if (!ok) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", state, g_strerror(errno));
		g_free(state);
		return false;
	}
	g_free(inst->state_dir);
	inst->state_dir = state;
	return true;
}

bool instance_read_state(const struct instance *inst, const char *file, size_t max, char **text,
                         size_t *len)
{
	char *path = instance_state_path(inst, file);
	bool ok = fdio_read_regular(path, max, text, len, NULL);
	int saved = errno;

	g_free(path);
	errno = saved;
	return ok;
}

/*
 * Root's or the caller's, and nobody else's to change. A group may write
 * where a user's own umask (002 with per-user groups) allows it, but not
 * to what root acts on.
 */
static bool trusted_owner(const char *path, const struct stat *st, GError **err)
{
	mode_t others = geteuid() == 0 ? S_IWGRP | S_IWOTH : S_IWOTH;

	if (st->st_uid != 0 && st->st_uid != geteuid())
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: owned by uid %u, not by root or you",
		                 path, (unsigned)st->st_uid);
	if (st->st_mode & others)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: others may write to it", path);
	return true;
}

bool instance_read_trusted(const struct instance *inst, const char *file, char **text, GError **err)
{
	char *path = instance_path(inst, file);
	struct stat st;
	size_t len;
	bool ok = lstat(inst->dir, &st) == 0
	              ? trusted_owner(inst->dir, &st, err)
	              : husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", inst->dir, g_strerror(errno));

	if (ok && !fdio_read_regular(path, TRUSTED_MAX, text, &len, &st))
		ok = husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path,
		               errno == EFBIG ? "too big" : g_strerror(errno));
	else if (ok && !trusted_owner(path, &st, err)) {
		g_clear_pointer(text, g_free);
		ok = false;
	}
	g_free(path);
	return ok;
}

static gint by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

GPtrArray *instance_list(void)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	char *dir = instances_dir();
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		struct instance *inst = instance_get(name, NULL);

		if (inst && instance_exists(inst))
			g_ptr_array_add(names, g_strdup(name));
		instance_free(inst);
	}
	if (d)
		g_dir_close(d);
	g_free(dir);
	g_ptr_array_sort(names, by_name);
	return names;
}

/* Opens (creating) a lock file of the instance's and tries to take it. */
static int try_lock(const struct instance *inst, const char *file, int how)
{
	char *path = instance_path(inst, file);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	g_free(path);
	if (fd < 0)
		return -errno;
	if (flock(fd, how | LOCK_NB) < 0) {
		int why = errno;
		close(fd);
		return -why;
	}
	return fd;
}

bool instance_lock(struct instance *inst, GError **err)
{
	if (g_mkdir_with_parents(inst->dir, 0700) < 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", inst->dir, g_strerror(errno));
	int fd = try_lock(inst, "lock", LOCK_EX);
	if (fd == -EWOULDBLOCK)
		return husk_fail(err, HUSK_EXIT_BUSY, "another husk command is working on %s",
		                 inst->name);
	if (fd < 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: cannot lock: %s", inst->name,
		                 g_strerror(-fd));
	inst->lock_fd = fd;
	return true;
}

bool instance_claim_running(const struct instance *inst, int *fd, GError **err)
{
	*fd = try_lock(inst, "running", LOCK_EX);
	if (*fd == -EWOULDBLOCK)
		return husk_fail(err, HUSK_EXIT_BUSY, "%s is already running", inst->name);
	if (*fd < 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: cannot lock: %s", inst->name,
		                 g_strerror(-*fd));
	/* Its pid, for info and stop --force: the lock says whether it is still true. */
	char pid[24];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(*fd, 0) < 0 || pwrite(*fd, pid, (size_t)n, 0) != n) {
		close(*fd);
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: cannot record the pid: %s",
		                 inst->name, g_strerror(errno));
	}
	return true;
}

pid_t instance_running_pid(const struct instance *inst)
{
	int fd = try_lock(inst, "running", LOCK_SH);
	char buf[24] = "";

	if (fd >= 0) {
		close(fd); /* nobody holds it: stopped, whatever the file says */
		return 0;
	}
	if (fd != -EWOULDBLOCK)
		return 0;
	char *path = instance_path(inst, "running");
	int rd = open(path, O_RDONLY | O_CLOEXEC);
	g_free(path);
	if (rd < 0)
		return 0;
	ssize_t n = read(rd, buf, sizeof(buf) - 1);
	close(rd);
	return n > 0 ? (pid_t)strtol(buf, NULL, 10) : 0;
}

/*
 * Removes what is in the folder at dirfd, then the folder (name, in
 * parent). state/ belongs to the guest's user, so nothing is followed:
 * every step is relative to a folder already open.
 */
static int remove_tree(int parent, const char *name, int depth)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	int error = 0;

	if (!d) {
		error = errno;
		if (fd >= 0)
			close(fd);
		return error;
	}
	while (!error && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, e->d_name, 0) == 0)
			continue;
		if (errno != EISDIR)
			error = errno;
		else if (depth >= REMOVE_MAX_DEPTH)
			error = ELOOP;
		else
			error = remove_tree(fd, e->d_name, depth + 1);
	}
	closedir(d);
	if (!error && unlinkat(parent, name, AT_REMOVEDIR) < 0)
		error = errno;
	return error;
}

bool instance_remove(struct instance *inst, GError **err)
{
	int error = remove_tree(AT_FDCWD, inst->dir, 0);

	if (error)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", inst->dir, g_strerror(error));
	return true;
}
