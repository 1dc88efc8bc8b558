// SPDX-License-Identifier: MIT
#include "devices/fs/fuse_internal.h"

#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

/*
 * Each inode the guest holds and each file it has open keeps one of our
 * descriptors. A guest could ask for more than the process may have, and
 * then husk itself could open nothing more (no disk, no socket); past
 * this budget, shared by every share, the guest gets ENFILE instead.
 */
#define FD_RESERVE 1024 /* for the rest of husk */
static atomic_long files_held;
static long file_budget = LONG_MAX;

bool fuse_room_for(long files)
{
	return atomic_load(&files_held) + files <= file_budget;
}

/*
 * Each share's own budget too: one guest cannot take all of husk's, and
 * what a share holds is bounded whatever the descriptor limit.
 */
bool fuse_room_for_inode(const struct fuse_server *s)
{
	return fuse_room_for(1) && g_hash_table_size(s->inodes) < s->max_inodes;
}

bool fuse_room_for_handle(const struct fuse_server *s)
{
	return fuse_room_for(1) && g_hash_table_size(s->handles) < s->max_handles;
}

guint fuse_file_id_hash(gconstpointer key)
{
	const struct file_id *id = key;

	return (guint)(id->ino ^ (id->ino >> 32) ^ id->dev * 0x9e3779b1u);
}

gboolean fuse_file_id_equal(gconstpointer a, gconstpointer b)
{
	const struct file_id *x = a, *y = b;

	return x->dev == y->dev && x->ino == y->ino;
}

static struct inode *find_file(struct fuse_server *s, const struct stat *st)
{
	struct file_id id = {st->st_dev, st->st_ino};

	return g_hash_table_lookup(s->by_file, &id);
}

struct inode *fuse_find_inode(struct fuse_server *s, uint64_t nodeid)
{
	return g_hash_table_lookup(s->inodes, &nodeid);
}

static void drop_inode(struct fuse_server *s, struct inode *ino)
{
	g_hash_table_remove(s->by_file, &ino->id);
	close(ino->fd);
	atomic_fetch_sub(&files_held, 1);
	g_hash_table_remove(s->inodes, &ino->nodeid); /* frees it */
}

void fuse_forget(struct fuse_server *s, uint64_t nodeid, uint64_t nlookup)
{
	struct inode *ino = fuse_find_inode(s, nodeid);

	if (!ino || ino == s->root)
		return;
	ino->nlookup -= MIN(nlookup, ino->nlookup);
	if (ino->nlookup == 0)
		drop_inode(s, ino);
}

/* One component under 'dir', never following a symlink, never leaving 'dir'. */
static int open_beneath(int dir, const char *name)
{
	struct open_how how = {
	    .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dir, name, &how, sizeof(how));

	/* Kernels before 5.6: a checked single component with O_NOFOLLOW is as safe. */
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

int fuse_stat_fd(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? errno : 0;
}

/*
 * Which mount 'fd' is on: its mount id (Linux 5.8), else its device,
 * which tells apart mounts of different file systems but not bind mounts.
 */
uint64_t fuse_mount_of(int fd, const struct stat *st)
{
	struct statx x;

	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &x) == 0 &&
	    (x.stx_mask & STATX_MNT_ID))
		return x.stx_mnt_id;
	return st->st_dev;
}

/*
 * File systems that are the host's kernel, its processes and its devices
 * (procfs: /proc/<pid>/mem of husk itself), never a share's, wherever and
 * however often they are mounted: known by type, not by path.
 */
#define CONFIGFS_MAGIC 0x62656570 /* these three are not in linux/magic.h */
#define FUSECTL_MAGIC  0x65735543
#define MQUEUE_MAGIC   0x19800202

bool fuse_kernel_fs(int fd)
{
	static const long types[] = {
	    PROC_SUPER_MAGIC, SYSFS_MAGIC,        DEBUGFS_MAGIC,       SECURITYFS_MAGIC,
	    TRACEFS_MAGIC,    CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, BPF_FS_MAGIC,
	    EFIVARFS_MAGIC,   PSTOREFS_MAGIC,     BINFMTFS_MAGIC,      NSFS_MAGIC,
	    SELINUX_MAGIC,    SMACK_MAGIC,        CONFIGFS_MAGIC,      FUSECTL_MAGIC,
	    MQUEUE_MAGIC,
	};
	struct statfs fs;

	if (fstatfs(fd, &fs))
		return true; /* cannot tell: keep out */
	for (size_t i = 0; i < G_N_ELEMENTS(types); i++)
		if (fs.f_type == types[i])
			return true;
	return false;
}

static bool is_hidden(const struct fuse_server *s, const struct stat *st)
{
	for (guint i = 0; i < s->hidden->len; i++) {
		const struct file_id *id = &g_array_index(s->hidden, struct file_id, i);
		if (id->dev == st->st_dev && id->ino == st->st_ino)
			return true;
	}
	return false;
}

/*
 * May the guest see the new file 'fd' found in 'parent'? ENOENT for a file
 * the share hides (by identity: a hard link is hidden too); a hidden
 * directory, a kernel file system and a mount the share does not cross
 * are sealed: there, but empty.
 */
static int admit(const struct fuse_server *s, const struct inode *parent, int fd,
                 const struct stat *st, uint64_t *mnt, bool *sealed)
{
	*mnt = fuse_mount_of(fd, st);
	*sealed = false;
	if (is_hidden(s, st)) {
		*sealed = true;
		return S_ISDIR(st->st_mode) ? 0 : ENOENT;
	}
	if (*mnt != parent->mnt)
		*sealed = !(s->submounts || s->cross_mounts) || fuse_kernel_fs(fd);
	return 0;
}

/* A new inode for the file 'fd' (O_PATH) is, which 'st' describes, found in 'parent'. */
static struct inode *add_inode(struct fuse_server *s, int fd, const struct stat *st,
                               const struct inode *parent, uint64_t mnt, bool sealed)
{
	struct inode *ino = g_new0(struct inode, 1);

	*ino = (struct inode){.nodeid = s->next_nodeid++,
	                      .fd = fd,
	                      .id = {st->st_dev, st->st_ino},
	                      .type = st->st_mode & S_IFMT,
	                      .submount = s->submounts && !sealed && S_ISDIR(st->st_mode) &&
	                                  st->st_dev != parent->id.dev,
	                      .sealed = sealed,
	                      .mnt = mnt};
	g_hash_table_insert(s->by_file, &ino->id, ino);
	g_hash_table_insert(s->inodes, &ino->nodeid, ino);
	atomic_fetch_add(&files_held, 1);
	return ino;
}

/*
 * Looks 'name' up under 'dir' and takes a reference the guest must FORGET.
 * A file we hold already is found by a stat of the name alone: the guest
 * looks names up again every TIMEOUT_S, and two system calls fewer is
 * what makes that cheap. 'name' is one component (take_name), never "."
 * or "..", and the stat does not follow a symlink, so it cannot leave
 * 'dir'. Only a new file is opened, beneath 'dir'.
 */
int fuse_lookup(struct fuse_server *s, struct inode *dir, const char *name, struct inode **out,
                struct stat *st)
{
	struct inode *ino = NULL;
	int fd, e;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return EINVAL;
	if (fstatat(dir->fd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno;
	ino = find_file(s, st);
	if (!ino) {
		if (!fuse_room_for_inode(s))
			return ENFILE;
		fd = open_beneath(dir->fd, name);
		if (fd < 0)
			return errno;
		/* The name may have changed hands since the stat: describe what was opened. */
		uint64_t mnt;
		bool sealed;
		e = fuse_stat_fd(fd, st);
		if (!e && !(ino = find_file(s, st)))
			e = admit(s, dir, fd, st, &mnt, &sealed);
		if (!e && !ino)
			ino = add_inode(s, fd, st, dir, mnt, sealed);
		else
			close(fd);
		if (e)
			return e;
	}
	ino->nlookup++;
	*out = ino;
	return 0;
}

struct handle *fuse_find_handle(struct fuse_server *s, uint64_t fh)
{
	return g_hash_table_lookup(s->handles, &fh);
}

uint64_t fuse_add_handle(struct fuse_server *s, const struct inode *ino, int fd, bool dir)
{
	struct handle *h = g_new0(struct handle, 1);
	uint64_t *key = g_new(uint64_t, 1);

	*h = (struct handle){.fd = fd, .dir = dir, .nodeid = ino->nodeid, .refs = 1};
	*key = s->next_fh++;
	g_hash_table_insert(s->handles, key, h);
	atomic_fetch_add(&files_held, 1);
	return *key;
}

/* Under the lock: the last reference closes the file. */
void fuse_unref_handle(gpointer data)
{
	struct handle *h = data;

	if (--h->refs)
		return;
	close(h->fd);
	atomic_fetch_sub(&files_held, 1);
	g_free(h);
}

/*
 * An O_PATH descriptor's name in /proc/self/fd (s->proc_fd), for the calls
 * that take none: one component to resolve, where the whole path
 * (proc_path, for the calls that take no directory) costs four.
 */
void fuse_fd_name(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "%d", fd);
}

/*
 * An O_PATH descriptor opened again for I/O, through /proc/self/fd. Only
 * regular files and directories: the guest follows symlinks itself, and its
 * kernel serves FIFOs, sockets and device nodes on its own side without
 * asking (FUSE sends no OPEN for them), so an OPEN of one comes from a
 * hostile guest, and opening a host FIFO or device would block or reach
 * host hardware.
 */
int fuse_reopen_path(struct fuse_server *s, int path_fd, mode_t type, int flags)
{
	char name[16];

	if (type == S_IFLNK)
		return -ELOOP;
	if (type != S_IFREG && type != S_IFDIR)
		return -EACCES;
	fuse_fd_name(path_fd, name, sizeof(name));
	int fd = openat(s->proc_fd, name, (flags & ~(O_CREAT | O_NOFOLLOW | O_EXCL)) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int fuse_reopen(struct fuse_server *s, struct inode *ino, int flags)
{
	return fuse_reopen_path(s, ino->fd, ino->type, flags);
}

void fuse_proc_path(const struct inode *ino, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", ino->fd);
}

struct handle *fuse_file_handle(struct fuse_server *s, uint64_t fh)
{
	struct handle *h = fuse_find_handle(s, fh);

	return h && !h->dir ? h : NULL;
}

void fuse_forget_all(struct fuse_server *s)
{
	GHashTableIter it;
	gpointer key, value;
	GPtrArray *all = g_ptr_array_new();

	g_hash_table_iter_init(&it, s->inodes);
	while (g_hash_table_iter_next(&it, &key, &value))
		if (value != s->root)
			g_ptr_array_add(all, value);
	for (guint i = 0; i < all->len; i++)
		drop_inode(s, all->pdata[i]);
	g_ptr_array_free(all, TRUE);
	g_hash_table_remove_all(s->handles);
}

/*
 * Every inode the guest holds is an open descriptor: a guest that caches a
 * tree of 10,000 files needs 10,000. Up to the hard limit the user set,
 * not past it to nr_open (a million as root): the shares' budgets bound
 * what guests hold, not the limit.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

void fuse_server_set_file_budget(long files)
{
	file_budget = files;
}

/* All the descriptors the system lets us have, less what husk keeps for itself. */
void fuse_file_budget_from_rlimit(void)
{
	struct rlimit rl;

	raise_fd_limit();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fuse_server_set_file_budget((long)(rl.rlim_cur > 2 * FD_RESERVE
		                                       ? rl.rlim_cur - FD_RESERVE
		                                       : rl.rlim_cur / 2));
}

/* The files 'paths' (under the share 'root') name now; those missing hide nothing. */
GArray *fuse_hidden_files(int root, const char *const *paths)
{
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(struct file_id));
	struct stat st;

	for (; paths && *paths; paths++)
		if (fstatat(root, *paths, &st, AT_SYMLINK_NOFOLLOW) == 0)
			g_array_append_val(ids, ((struct file_id){st.st_dev, st.st_ino}));
	return ids;
}
