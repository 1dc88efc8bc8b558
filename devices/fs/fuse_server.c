// SPDX-License-Identifier: MIT
#include "devices/fs/fuse_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "devices/fs/landlock.h"
#include "vmm/error.h"

#define MIN_MINOR   31 /* Linux 5.4, the first with virtio-fs */
#define TIMEOUT_S   1  /* how long the guest may trust names and attributes */
#define MAX_REQUEST (FUSE_SERVER_MAX_WRITE + 4096)
#define MAX_PAGES   (FUSE_SERVER_MAX_WRITE / 4096)
#define XATTR_MAX   65536
#define DIRENT_BUF  32768 /* host directory entries read at once, for one READDIR */

/* Which host file an inode is: the key of by_file. */
struct file_id {
	dev_t dev;
	ino_t ino;
};

struct inode {
	uint64_t nodeid;
	int fd; /* O_PATH, never following a symlink */
	struct file_id id;
	mode_t type;
	bool submount; /* a directory on another host file system than its parent */
	/*
	 * A stand-in for what the guest may not see (sealed_opcode): a hidden
	 * directory, a kernel file system, a mount the share does not cross.
	 */
	bool sealed;
	uint64_t mnt; /* the host mount it is on (mount_of) */
	uint64_t nlookup;
};

struct handle {
	int fd;
	bool dir;              /* read with getdents64: no buffer held between READDIRs */
	uint64_t nodeid;       /* the inode it was opened from */
	unsigned int refs;     /* the table's, and one per READ or WRITE under way */
	atomic_bool no_nowait; /* its file system cannot do RWF_NOWAIT */
};

struct fuse_server {
	pthread_mutex_t lock;
	bool read_only;
	bool submounts; /* FUSE_SUBMOUNTS offered */
	bool cross_mounts;
	GArray *hidden; /* struct file_id: the files of opt->hidden */
	bool no_xattr;  /* xattr requests answer ENOSYS */
	bool as_root;   /* husk runs as root: no setuid files or device nodes from the guest */
	struct fuse_id_map uid_map, gid_map; /* owners as the guest sees them */
	int proc_fd; /* /proc/self/fd: our O_PATH descriptors, reopened for real I/O */
	struct inode *root;
	GHashTable *inodes;                   /* nodeid -> struct inode */
	GHashTable *by_file;                  /* struct file_id -> struct inode */
	GHashTable *handles;                  /* fh -> struct handle */
	unsigned int max_inodes, max_handles; /* this share's budget (room_for) */
	uint64_t next_nodeid, next_fh;
	bool initialized; /* INIT answered, DESTROY not yet seen */
	uint8_t *buf;     /* a request's header and arguments */
	struct fuse_server_stats stats;
};

/*
 * Each inode the guest holds and each file it has open keeps one of our
 * descriptors. A guest could ask for more than the process may have, and
 * then husk itself could open nothing more (no disk, no socket); past
 * this budget, shared by every share, the guest gets ENFILE instead.
 */
#define FD_RESERVE 1024 /* for the rest of husk */
static atomic_long files_held;
static long file_budget = LONG_MAX;

static bool room_for(long files)
{
	return atomic_load(&files_held) + files <= file_budget;
}

/*
 * Each share's own budget too: one guest cannot take all of husk's, and
 * what a share holds is bounded whatever the descriptor limit.
 */
static bool room_for_inode(const struct fuse_server *s)
{
	return room_for(1) && g_hash_table_size(s->inodes) < s->max_inodes;
}

static bool room_for_handle(const struct fuse_server *s)
{
	return room_for(1) && g_hash_table_size(s->handles) < s->max_handles;
}

/* One request being answered. */
struct req {
	struct fuse_in_header h;
	const uint8_t *arg; /* after the header */
	size_t arglen;
	const struct iovec *in; /* the whole request, for WRITE's data */
	int nin;
	const struct iovec *out;
	int nout;
	size_t out_cap;
	bool nowait; /* must not wait for a disk: answer WOULD_BLOCK instead */
};

#define WOULD_BLOCK SIZE_MAX /* no reply yet: ask again where waiting is fine */

/* ---- scatter lists ------------------------------------------------------- */

static size_t iov_len(const struct iovec *iov, int n)
{
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	return len;
}

static size_t iov_copy_from(const struct iovec *iov, int n, size_t off, void *dst, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = MIN(len - done, iov[i].iov_len - off);
		memcpy((uint8_t *)dst + done, (uint8_t *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

static size_t iov_copy_to(const struct iovec *iov, int n, size_t off, const void *src, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = MIN(len - done, iov[i].iov_len - off);
		memcpy((uint8_t *)iov[i].iov_base + off, (const uint8_t *)src + done, c);
		done += c;
		off = 0;
	}
	return done;
}

/* The part of 'iov' from 'off' on, at most 'len' bytes, as a new list in 'dst'. */
static int iov_slice(const struct iovec *iov, int n, size_t off, size_t len, struct iovec *dst,
                     int max)
{
	int cnt = 0;

	for (int i = 0; i < n && len && cnt < max; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = MIN(len, iov[i].iov_len - off);
		dst[cnt++] = (struct iovec){(uint8_t *)iov[i].iov_base + off, c};
		len -= c;
		off = 0;
	}
	return cnt;
}

/* ---- replies ---------------------------------------------------------------- */

static size_t reply(struct req *r, int error, const void *data, size_t len)
{
	struct fuse_out_header oh = {.error = -error, .unique = r->h.unique};

	if (r->out_cap < sizeof(oh))
		return 0; /* the guest gave us nowhere to answer */
	if (error)
		len = 0;
	if (sizeof(oh) + len > r->out_cap) {
		oh.error = -ERANGE; /* an answer larger than the buffer for it */
		len = 0;
	}
	oh.len = (uint32_t)(sizeof(oh) + len);
	iov_copy_to(r->out, r->nout, 0, &oh, sizeof(oh));
	if (len)
		iov_copy_to(r->out, r->nout, sizeof(oh), data, len);
	return oh.len;
}

static size_t reply_err(struct req *r, int error)
{
	return reply(r, error, NULL, 0);
}

/* ---- arguments ------------------------------------------------------------- */

static const void *arg(struct req *r, size_t len)
{
	return r->arglen >= len ? r->arg : NULL;
}

/*
 * A name from the request, after 'off' bytes of arguments: NUL-terminated
 * inside the request, one path component, not "." or "..". *next is where
 * the following name starts.
 */
static int take_name(struct req *r, size_t off, const char **name, size_t *next)
{
	if (off >= r->arglen)
		return EINVAL;
	const char *p = (const char *)r->arg + off;
	const char *nul = memchr(p, '\0', r->arglen - off);

	if (!nul)
		return EINVAL;
	size_t len = (size_t)(nul - p);
	if (len == 0 || strchr(p, '/') || strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
		return EINVAL;
	if (len > NAME_MAX)
		return ENAMETOOLONG;
	*name = p;
	if (next)
		*next = off + len + 1;
	return 0;
}

/* ---- inodes and handles ------------------------------------------------------ */

static guint file_id_hash(gconstpointer key)
{
	const struct file_id *id = key;

	return (guint)(id->ino ^ (id->ino >> 32) ^ id->dev * 0x9e3779b1u);
}

static gboolean file_id_equal(gconstpointer a, gconstpointer b)
{
	const struct file_id *x = a, *y = b;

	return x->dev == y->dev && x->ino == y->ino;
}

static struct inode *find_file(struct fuse_server *s, const struct stat *st)
{
	struct file_id id = {st->st_dev, st->st_ino};

	return g_hash_table_lookup(s->by_file, &id);
}

static struct inode *find_inode(struct fuse_server *s, uint64_t nodeid)
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

static void forget(struct fuse_server *s, uint64_t nodeid, uint64_t nlookup)
{
	struct inode *ino = find_inode(s, nodeid);

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

static int stat_fd(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? errno : 0;
}

/*
 * Which mount 'fd' is on: its mount id (Linux 5.8), else its device,
 * which tells apart mounts of different file systems but not bind mounts.
 */
static uint64_t mount_of(int fd, const struct stat *st)
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

static bool kernel_fs(int fd)
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
	*mnt = mount_of(fd, st);
	*sealed = false;
	if (is_hidden(s, st)) {
		*sealed = true;
		return S_ISDIR(st->st_mode) ? 0 : ENOENT;
	}
	if (*mnt != parent->mnt)
		*sealed = !(s->submounts || s->cross_mounts) || kernel_fs(fd);
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
static int lookup(struct fuse_server *s, struct inode *dir, const char *name, struct inode **out,
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
		if (!room_for_inode(s))
			return ENFILE;
		fd = open_beneath(dir->fd, name);
		if (fd < 0)
			return errno;
		/* The name may have changed hands since the stat: describe what was opened. */
		uint64_t mnt;
		bool sealed;
		e = stat_fd(fd, st);
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

static struct handle *find_handle(struct fuse_server *s, uint64_t fh)
{
	return g_hash_table_lookup(s->handles, &fh);
}

static uint64_t add_handle(struct fuse_server *s, const struct inode *ino, int fd, bool dir)
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
static void unref_handle(gpointer data)
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
static void fd_name(int fd, char *buf, size_t len)
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
static int reopen_path(struct fuse_server *s, int path_fd, mode_t type, int flags)
{
	char name[16];

	if (type == S_IFLNK)
		return -ELOOP;
	if (type != S_IFREG && type != S_IFDIR)
		return -EACCES;
	fd_name(path_fd, name, sizeof(name));
	int fd = openat(s->proc_fd, name, (flags & ~(O_CREAT | O_NOFOLLOW | O_EXCL)) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int reopen(struct fuse_server *s, struct inode *ino, int flags)
{
	return reopen_path(s, ino->fd, ino->type, flags);
}

static void proc_path(const struct inode *ino, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", ino->fd);
}

/* ---- attributes ---------------------------------------------------------------- */

/*
 * A directory that is another host file system's mount point is marked
 * FUSE_ATTR_SUBMOUNT: the guest mounts it apart, with its own st_dev, so
 * inode numbers from the two file systems cannot collide in the guest.
 */
static void fill_attr(const struct fuse_server *s, struct fuse_attr *a, const struct stat *st,
                      const struct inode *ino)
{
	*a = (struct fuse_attr){
	    .ino = st->st_ino,
	    .size = (uint64_t)st->st_size,
	    .blocks = (uint64_t)st->st_blocks,
	    .atime = (uint64_t)st->st_atim.tv_sec,
	    .mtime = (uint64_t)st->st_mtim.tv_sec,
	    .ctime = (uint64_t)st->st_ctim.tv_sec,
	    .atimensec = (uint32_t)st->st_atim.tv_nsec,
	    .mtimensec = (uint32_t)st->st_mtim.tv_nsec,
	    .ctimensec = (uint32_t)st->st_ctim.tv_nsec,
	    .mode = st->st_mode,
	    .nlink = (uint32_t)st->st_nlink,
	    .uid = map_id(&s->uid_map, st->st_uid),
	    .gid = map_id(&s->gid_map, st->st_gid),
	    .rdev = (uint32_t)st->st_rdev,
	    .blksize = (uint32_t)st->st_blksize,
	    .flags = ino->submount ? FUSE_ATTR_SUBMOUNT : 0,
	};
	if (ino->sealed) { /* an empty directory: not procfs's count of processes */
		a->size = a->blocks = 0;
		a->nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	}
}

static void fill_entry(const struct fuse_server *s, struct fuse_entry_out *e,
                       const struct inode *ino, const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = ino->nodeid;
	e->entry_valid = e->attr_valid = TIMEOUT_S;
	fill_attr(s, &e->attr, st, ino);
}

static size_t reply_entry(const struct fuse_server *s, struct req *r, const struct inode *ino,
                          const struct stat *st)
{
	struct fuse_entry_out e;

	fill_entry(s, &e, ino, st);
	return reply(r, 0, &e, sizeof(e));
}

static size_t reply_attr(const struct fuse_server *s, struct req *r, const struct inode *ino,
                         const struct stat *st)
{
	struct fuse_attr_out a = {.attr_valid = TIMEOUT_S};

	fill_attr(s, &a.attr, st, ino);
	return reply(r, 0, &a, sizeof(a));
}

/* ---- the operations ------------------------------------------------------------- */

static size_t do_init(struct fuse_server *s, struct req *r)
{
	const struct fuse_init_in *in = arg(r, 16); /* the fields before FUSE_INIT_EXT */
	struct fuse_init_out out = {0};

	if (!in)
		return reply_err(r, EINVAL);
	if (in->major != FUSE_KERNEL_VERSION || in->minor < MIN_MINOR)
		return reply_err(r, EPROTO);
	out.major = FUSE_KERNEL_VERSION;
	out.minor = MIN(in->minor, FUSE_KERNEL_MINOR_VERSION);
	out.max_readahead = in->max_readahead;
	out.flags = in->flags & (FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC |
	                         FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |
	                         FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS |
	                         FUSE_HANDLE_KILLPRIV_V2 | (s->submounts ? FUSE_SUBMOUNTS : 0));
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = FUSE_SERVER_MAX_WRITE;
	out.time_gran = 1;
	out.max_pages = MAX_PAGES;
	s->initialized = true;
	return reply(r, 0, &out, sizeof(out));
}

static size_t do_lookup(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const char *name;
	struct inode *ino;
	struct stat st;
	int e = take_name(r, 0, &name, NULL);

	if (!e)
		e = lookup(s, dir, name, &ino, &st);
	if (e == ENOENT) {
		/*
		 * Node id 0 is "no such name" that the guest may remember as long
		 * as a name it found: `tar` asks for each new file twice (unlink,
		 * then open with O_CREAT), and an error would be asked again.
		 */
		struct fuse_entry_out neg = {.entry_valid = TIMEOUT_S};
		return reply(r, 0, &neg, sizeof(neg));
	}
	return e ? reply_err(r, e) : reply_entry(s, r, ino, &st);
}

static size_t do_getattr(struct fuse_server *s, struct req *r, struct inode *ino)
{
	struct stat st;
	int e = stat_fd(ino->fd, &st);

	return e ? reply_err(r, e) : reply_attr(s, r, ino, &st);
}

static int set_times(struct fuse_server *s, struct inode *ino, const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
	char name[16];

	if (in->valid & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_ATIME)
		ts[0] = (struct timespec){(time_t)in->atime, in->atimensec};
	if (in->valid & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_MTIME)
		ts[1] = (struct timespec){(time_t)in->mtime, in->mtimensec};
	if (ino->type == S_IFLNK)
		return EPERM;
	fd_name(ino->fd, name, sizeof(name));
	return utimensat(s->proc_fd, name, ts, 0) ? errno : 0;
}

/*
 * FUSE_HANDLE_KILLPRIV_V2: a write or truncation by a guest process
 * without CAP_FSETID drops setuid, and setgid where the group may execute,
 * as Linux does. The host kernel does it only when husk itself lacks
 * CAP_FSETID, so husk does it. (It drops security.capability on its own,
 * and clears the bits on chown whoever asks.) In exchange, the guest asks
 * for no attributes before a chown.
 */
static int kill_suidgid(int fd)
{
	struct stat st;
	mode_t kill = S_ISUID;

	if (fstat(fd, &st))
		return errno;
	if (st.st_mode & S_IXGRP)
		kill |= S_ISGID;
	if (!S_ISREG(st.st_mode) || !(st.st_mode & kill))
		return 0;
	if (fchmod(fd, st.st_mode & 07777 & ~kill) == 0)
		return 0;
	/* Not ours and no CAP_FOWNER: then no CAP_FSETID either, and the host drops them. */
	return errno == EPERM ? 0 : errno;
}

/*
 * With a handle, that of a file opened from this very node: else a guest
 * could truncate another open file, one it may not open for writing.
 */
/*
 * Before a file's data changes: as root, husk holds CAP_FSETID, and the
 * host keeps a setuid bit that a write by anyone else drops. So a hostile
 * guest, which need not ask for it (FUSE_WRITE_KILL_SUIDGID), would keep
 * the bit on a setuid-root file it rewrote. husk drops it itself, whatever
 * the guest says; without root, the host does.
 */
static int before_change(const struct fuse_server *s, int fd, bool guest_asked)
{
	return s->as_root || guest_asked ? kill_suidgid(fd) : 0;
}

/* The same through a handle, which must be open for writing: else no change is coming. */
static int before_handle_change(const struct fuse_server *s, int fd, bool guest_asked)
{
	if (!s->as_root && !guest_asked)
		return 0;
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? errno : (fl & O_ACCMODE) == O_RDONLY ? EBADF : kill_suidgid(fd);
}

static int truncate_to(struct fuse_server *s, struct inode *ino, const struct fuse_setattr_in *in)
{
	struct handle *h = (in->valid & FATTR_FH) ? find_handle(s, in->fh) : NULL;

	if ((in->valid & FATTR_FH) && (!h || h->dir || h->nodeid != ino->nodeid))
		return EBADF;
	int fd = h ? h->fd : reopen(s, ino, O_WRONLY);
	int e = 0;

	if (fd < 0)
		return -fd;
	e = h ? before_handle_change(s, fd, in->valid & FATTR_KILL_SUIDGID)
	      : before_change(s, fd, in->valid & FATTR_KILL_SUIDGID);
	if (!e && ftruncate(fd, (off_t)in->size))
		e = errno;
	if (!h)
		close(fd);
	return e;
}

/*
 * The permission bits a guest may give a host file. Files it makes belong
 * to the user running husk; when that is root, a setuid or setgid bit
 * would hand the guest root's powers on the host, so they are dropped
 * (setgid stays on directories, where it only picks the group).
 */
static mode_t guest_mode(const struct fuse_server *s, uint32_t mode, bool dir)
{
	mode_t m = mode & 07777;

	if (s->as_root)
		m &= dir ? (mode_t)~S_ISUID : (mode_t) ~(S_ISUID | S_ISGID);
	return m;
}

static size_t do_setattr(struct fuse_server *s, struct req *r, struct inode *ino)
{
	const struct fuse_setattr_in *in = arg(r, sizeof(*in));
	char name[16];
	int e = 0;

	if (!in)
		return reply_err(r, EINVAL);
	if (s->read_only)
		return reply_err(r, EROFS);
	fd_name(ino->fd, name, sizeof(name));
	if ((in->valid & FATTR_MODE) && ino->type != S_IFLNK &&
	    fchmodat(s->proc_fd, name, guest_mode(s, in->mode, ino->type == S_IFDIR), 0))
		e = errno;
	if (!e && (in->valid & (FATTR_UID | FATTR_GID)) &&
	    fchownat(ino->fd, "",
	             (in->valid & FATTR_UID) ? map_id(&s->uid_map, in->uid) : (uid_t)-1,
	             (in->valid & FATTR_GID) ? map_id(&s->gid_map, in->gid) : (gid_t)-1,
	             AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		e = errno;
	if (!e && (in->valid & FATTR_SIZE))
		e = truncate_to(s, ino, in);
	if (!e && (in->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)))
		e = set_times(s, ino, in);
	return e ? reply_err(r, e) : do_getattr(s, r, ino);
}

static size_t do_readlink(struct fuse_server *s, struct req *r, struct inode *ino)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(ino->fd, "", target, sizeof(target));

	return n < 0 ? reply_err(r, errno) : reply(r, 0, target, (size_t)n);
}

/* After MKDIR, MKNOD, SYMLINK: the new entry, looked up like any other. */
static size_t reply_new(struct fuse_server *s, struct req *r, struct inode *dir, const char *name)
{
	struct inode *ino;
	struct stat st;
	int e = lookup(s, dir, name, &ino, &st);

	return e ? reply_err(r, e) : reply_entry(s, r, ino, &st);
}

static size_t do_mkdir(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const struct fuse_mkdir_in *in = arg(r, sizeof(*in));
	const char *name;
	int e = in ? take_name(r, sizeof(*in), &name, NULL) : EINVAL;

	if (!e && s->read_only)
		e = EROFS;
	if (!e && mkdirat(dir->fd, name, guest_mode(s, in->mode, true)))
		e = errno;
	return e ? reply_err(r, e) : reply_new(s, r, dir, name);
}

static size_t do_mknod(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const struct fuse_mknod_in *in = arg(r, sizeof(*in));
	const char *name;
	int e = in ? take_name(r, sizeof(*in), &name, NULL) : EINVAL;

	if (!e && s->read_only)
		e = EROFS;
	/* A device node made by root would open host hardware to the guest. */
	if (!e && s->as_root && (S_ISCHR(in->mode) || S_ISBLK(in->mode)))
		e = EPERM;
	if (!e &&
	    mknodat(dir->fd, name, (in->mode & S_IFMT) | guest_mode(s, in->mode, false), in->rdev))
		e = errno;
	return e ? reply_err(r, e) : reply_new(s, r, dir, name);
}

static size_t do_symlink(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const char *name, *target;
	size_t next;
	int e = take_name(r, 0, &name, &next);

	/* The target is text the guest resolves itself; any text will do but empty. */
	if (!e) {
		target = (const char *)r->arg + next;
		if (next >= r->arglen || !memchr(target, '\0', r->arglen - next) || !*target)
			e = EINVAL;
	}
	if (!e && s->read_only)
		e = EROFS;
	if (!e && symlinkat(target, dir->fd, name))
		e = errno;
	return e ? reply_err(r, e) : reply_new(s, r, dir, name);
}

static size_t do_remove(struct fuse_server *s, struct req *r, struct inode *dir, int flags)
{
	const char *name;
	int e = take_name(r, 0, &name, NULL);

	if (!e && s->read_only)
		e = EROFS;
	if (!e && unlinkat(dir->fd, name, flags))
		e = errno;
	return reply_err(r, e);
}

static size_t do_rename(struct fuse_server *s, struct req *r, struct inode *dir, bool v2)
{
	size_t argsz = v2 ? sizeof(struct fuse_rename2_in) : sizeof(struct fuse_rename_in);
	const struct fuse_rename2_in *in = arg(r, argsz);
	const char *old, *new;
	size_t next;
	int e = in ? take_name(r, argsz, &old, &next) : EINVAL;

	if (!e)
		e = take_name(r, next, &new, NULL);
	struct inode *to = in ? find_inode(s, in->newdir) : NULL;
	if (!e && !to)
		e = ESTALE;
	if (!e && to->sealed)
		e = EACCES;
	unsigned int flags = v2 && in ? in->flags : 0;
	if (!e && (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)))
		e = EINVAL;
	if (!e && s->read_only)
		e = EROFS;
	if (!e && renameat2(dir->fd, old, to->fd, new, flags))
		e = errno;
	return reply_err(r, e);
}

static size_t do_link(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const struct fuse_link_in *in = arg(r, sizeof(*in));
	struct inode *target = in ? find_inode(s, in->oldnodeid) : NULL;
	const char *name;
	char fd[16];
	int e = in ? take_name(r, sizeof(*in), &name, NULL) : EINVAL;

	if (!e && !target)
		e = ESTALE;
	if (!e && target->sealed)
		e = EACCES;
	if (!e && s->read_only)
		e = EROFS;
	if (!e) {
		/* Through /proc: linking an O_PATH descriptor needs no privilege this way. */
		fd_name(target->fd, fd, sizeof(fd));
		if (linkat(s->proc_fd, fd, dir->fd, name, AT_SYMLINK_FOLLOW))
			e = errno;
	}
	return e ? reply_err(r, e) : reply_new(s, r, dir, name);
}

static bool writes(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* Flags a guest may ask for when opening: no O_NOFOLLOW games, no ours. */
static int open_flags(uint32_t flags)
{
	return (int)(flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC | O_PATH | O_DIRECT));
}

static size_t do_open(struct fuse_server *s, struct req *r, struct inode *ino, bool dir)
{
	const struct fuse_open_in *in = arg(r, sizeof(*in));
	struct fuse_open_out out = {0};

	if (!in)
		return reply_err(r, EINVAL);
	int flags = dir ? O_RDONLY | O_DIRECTORY : open_flags(in->flags);
	if (s->read_only && writes(flags))
		return reply_err(r, EROFS);
	if (!room_for_handle(s))
		return reply_err(r, ENFILE);
	/* A sealed directory's listing is empty (do_readdir): its own is never opened. */
	int fd = reopen(s, ino->sealed ? s->root : ino, flags);
	if (fd < 0)
		return reply_err(r, -fd);
	int e =
	    (flags & O_TRUNC) ? before_change(s, fd, in->open_flags & FUSE_OPEN_KILL_SUIDGID) : 0;
	if (e) {
		close(fd);
		return reply_err(r, e);
	}
	out.fh = add_handle(s, ino, fd, dir);
	out.open_flags = dir ? 0 : FOPEN_NOFLUSH;
	return reply(r, 0, &out, sizeof(out));
}

/*
 * CREATE of a name that is there: the guest's kernel asks only for a name
 * it believes missing, so the host made it meanwhile, or the guest is
 * hostile. It is opened as OPEN opens it: a regular file only, since a
 * FIFO would block this thread until a writer came and a device node would
 * reach host hardware.
 */
static int open_existing(struct fuse_server *s, int dir_fd, const char *name, int flags)
{
	int path = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (path < 0)
		return -errno;
	int fd = fstat(path, &st)      ? -errno
	         : S_ISDIR(st.st_mode) ? -EISDIR
	                               : reopen_path(s, path, st.st_mode & S_IFMT, flags);
	close(path);
	return fd;
}

static size_t do_create(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const struct fuse_create_in *in = arg(r, sizeof(*in));
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = {0};
	const char *name;
	int e = in ? take_name(r, sizeof(*in), &name, NULL) : EINVAL;

	if (!e && s->read_only)
		e = EROFS;
	/* the handle, and the inode if it is new */
	if (!e && (!room_for(2) || !room_for_inode(s) || !room_for_handle(s)))
		e = ENFILE;
	if (e)
		return reply_err(r, e);
	/* O_EXCL: never open what is there, not even through a planted symlink. */
	int flags = open_flags(in->flags);
	int fd = openat(dir->fd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	                guest_mode(s, in->mode, false));
	bool existed = fd < 0 && errno == EEXIST && !(in->flags & O_EXCL);
	if (existed)
		fd = open_existing(s, dir->fd, name, flags);
	else if (fd < 0)
		fd = -errno;
	if (fd < 0)
		return reply_err(r, -fd);
	/* Only a file that was there is truncated; one this open makes keeps its bits. */
	if (existed && (flags & O_TRUNC))
		e = before_change(s, fd, in->open_flags & FUSE_OPEN_KILL_SUIDGID);
	struct inode *ino;
	struct stat st;
	if (!e)
		e = lookup(s, dir, name, &ino, &st);
	if (e) {
		close(fd);
		return reply_err(r, e);
	}
	fill_entry(s, &out.e, ino, &st);
	out.o.fh = add_handle(s, ino, fd, false);
	out.o.open_flags = FOPEN_NOFLUSH;
	return reply(r, 0, &out, sizeof(out));
}

static struct handle *file_handle(struct fuse_server *s, uint64_t fh)
{
	struct handle *h = find_handle(s, fh);

	return h && !h->dir ? h : NULL;
}

/*
 * READ and WRITE copy without the lock, so a READ waiting for the disk on
 * a pool thread (fuse_server_try_handle) holds up no other request. The
 * handle stays open meanwhile; the arguments, in the shared request
 * buffer, are read before.
 */
static ssize_t unlocked_io(struct fuse_server *s, struct handle *h, const struct iovec *iov,
                           int cnt, uint64_t offset, bool is_write)
{
	ssize_t n;
	int e;

	h->refs++;
	pthread_mutex_unlock(&s->lock);
	n = is_write ? pwritev(h->fd, iov, cnt, (off_t)offset)
	             : preadv(h->fd, iov, cnt, (off_t)offset);
	e = errno;
	pthread_mutex_lock(&s->lock);
	unref_handle(h);
	errno = e;
	return n;
}

/*
 * On the queue's thread a READ tries the page cache alone (RWF_NOWAIT): a
 * miss goes to a thread that may wait. A short read means end of file to
 * FUSE, so one that stopped at an uncached page reads on the usual way.
 */
static ssize_t read_nowait(struct fuse_server *s, struct req *r, struct handle *h,
                           struct iovec *iov, int cnt, uint64_t offset, size_t want)
{
	ssize_t n = atomic_load_explicit(&h->no_nowait, memory_order_relaxed)
	                ? 0
	                : preadv2(h->fd, iov, cnt, (off_t)offset, RWF_NOWAIT);

	if (n < 0 && errno == EAGAIN)
		return -EAGAIN;
	if (n < 0 && errno != EOPNOTSUPP)
		return n;
	if (n < 0) { /* the file system cannot tell what is cached: read on the usual way */
		atomic_store_explicit(&h->no_nowait, true, memory_order_relaxed);
		n = 0;
	}
	if ((size_t)n < want) {
		cnt = iov_slice(r->out, r->nout, sizeof(struct fuse_out_header) + (size_t)n,
		                want - (size_t)n, iov, FUSE_SERVER_MAX_SEGS);
		ssize_t more = unlocked_io(s, h, iov, cnt, offset + (uint64_t)n, false);
		if (more < 0)
			return n ? n : more;
		n += more;
	}
	return n;
}

static size_t do_read(struct fuse_server *s, struct req *r)
{
	const struct fuse_read_in *in = arg(r, sizeof(*in));
	struct handle *h = in ? file_handle(s, in->fh) : NULL;
	struct iovec iov[FUSE_SERVER_MAX_SEGS];
	struct fuse_out_header oh = {.unique = r->h.unique};

	if (!in)
		return reply_err(r, EINVAL);
	if (!h)
		return reply_err(r, EBADF);
	if (r->out_cap < sizeof(oh))
		return 0;
	/* Straight into the guest's buffers: no copy on the way. */
	size_t want = MIN(MIN(in->size, (uint32_t)FUSE_SERVER_MAX_WRITE), r->out_cap - sizeof(oh));
	uint64_t offset = in->offset; /* 'in' is the shared buffer's: gone once we unlock */
	int cnt = iov_slice(r->out, r->nout, sizeof(oh), want, iov, G_N_ELEMENTS(iov));
	ssize_t n = r->nowait ? read_nowait(s, r, h, iov, cnt, offset, want)
	                      : unlocked_io(s, h, iov, cnt, offset, false);
	if (n == -EAGAIN)
		return WOULD_BLOCK;
	if (n < 0)
		return reply_err(r, errno);
	oh.len = (uint32_t)(sizeof(oh) + (size_t)n);
	iov_copy_to(r->out, r->nout, 0, &oh, sizeof(oh));
	return oh.len;
}

static size_t do_write(struct fuse_server *s, struct req *r)
{
	const struct fuse_write_in *in = arg(r, sizeof(*in));
	struct handle *h = in ? file_handle(s, in->fh) : NULL;
	struct fuse_write_out out = {0};
	struct iovec iov[FUSE_SERVER_MAX_SEGS];
	size_t data_off = sizeof(struct fuse_in_header) + sizeof(*in);

	if (!in)
		return reply_err(r, EINVAL);
	/* The data must be exactly what the header says: lengths that lie are refused. */
	if (in->size > FUSE_SERVER_MAX_WRITE || data_off + in->size != r->h.len)
		return reply_err(r, EINVAL);
	if (!h)
		return reply_err(r, EBADF);
	if (s->read_only)
		return reply_err(r, EROFS);
	int cnt = iov_slice(r->in, r->nin, data_off, in->size, iov, G_N_ELEMENTS(iov));
	if (iov_len(iov, cnt) != in->size)
		return reply_err(r, EINVAL); /* more pieces than we take at once */
	/* Before the data, as Linux does, but only on a file open for writing. */
	int e = before_handle_change(s, h->fd, in->write_flags & FUSE_WRITE_KILL_SUIDGID);
	if (e)
		return reply_err(r, e);
	ssize_t n = unlocked_io(s, h, iov, cnt, in->offset, true);
	if (n < 0)
		return reply_err(r, errno);
	out.size = (uint32_t)n;
	return reply(r, 0, &out, sizeof(out));
}

static size_t do_statfs(struct fuse_server *s, struct req *r, struct inode *ino)
{
	struct fuse_statfs_out out = {0};
	struct statfs st;

	if (fstatfs(ino->sealed ? s->root->fd : ino->fd, &st))
		return reply_err(r, errno);
	out.st = (struct fuse_kstatfs){
	    .blocks = st.f_blocks,
	    .bfree = st.f_bfree,
	    .bavail = st.f_bavail,
	    .files = st.f_files,
	    .ffree = st.f_ffree,
	    .bsize = (uint32_t)st.f_bsize,
	    .namelen = (uint32_t)st.f_namelen,
	    .frsize = (uint32_t)st.f_frsize,
	};
	return reply(r, 0, &out, sizeof(out));
}

static size_t do_release(struct fuse_server *s, struct req *r)
{
	const struct fuse_release_in *in = arg(r, sizeof(*in));

	if (!in)
		return reply_err(r, EINVAL);
	return reply_err(r, g_hash_table_remove(s->handles, &in->fh) ? 0 : EBADF);
}

static size_t do_fsync(struct fuse_server *s, struct req *r)
{
	const struct fuse_fsync_in *in = arg(r, sizeof(*in));
	struct handle *h = in ? find_handle(s, in->fh) : NULL;

	if (!in)
		return reply_err(r, EINVAL);
	if (!h)
		return reply_err(r, EBADF);
	int rc = (in->fsync_flags & FUSE_FSYNC_FDATASYNC) ? fdatasync(h->fd) : fsync(h->fd);
	return reply_err(r, rc ? errno : 0);
}

/*
 * Nothing to do: husk holds no POSIX locks for the guest (its kernel keeps
 * them) and writes are not buffered here. OPEN and CREATE say FOPEN_NOFLUSH,
 * so a guest close costs no round trip; older guests still send FLUSH.
 */
static size_t do_flush(struct fuse_server *s, struct req *r)
{
	const struct fuse_flush_in *in = arg(r, sizeof(*in));

	if (!in)
		return reply_err(r, EINVAL);
	return reply_err(r, file_handle(s, in->fh) ? 0 : EBADF);
}

static uint32_t dirent_type(unsigned char t)
{
	return t == DT_UNKNOWN ? 0 : t;
}

/* Appends one entry; false when it does not fit in the 'size' the guest asked for. */
static bool add_dirent(uint8_t *buf, size_t *used, size_t size, const struct dirent64 *d,
                       const struct fuse_entry_out *plus)
{
	size_t namelen = strlen(d->d_name);
	size_t head = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t rec = FUSE_DIRENT_ALIGN(head + namelen);

	if (*used + rec > size)
		return false;
	uint8_t *p = buf + *used;
	memset(p, 0, rec);
	struct fuse_dirent *fd = (struct fuse_dirent *)(plus ? p + sizeof(*plus) : p);
	if (plus)
		memcpy(p, plus, sizeof(*plus));
	fd->ino = d->d_ino;
	fd->off = (uint64_t)d->d_off;
	fd->namelen = (uint32_t)namelen;
	fd->type = dirent_type(d->d_type);
	memcpy(fd->name, d->d_name, namelen);
	*used += rec;
	return true;
}

/*
 * One entry of a listing, with its attributes for READDIRPLUS (lookup()
 * refuses "." and "..": they go without). False when it does not fit.
 */
static bool add_entry(struct fuse_server *s, struct inode *dir, const struct dirent64 *d,
                      uint8_t *buf, size_t *used, size_t size, bool plus)
{
	struct fuse_entry_out e = {0};
	struct inode *ino = NULL;
	struct stat st;

	if (plus && lookup(s, dir, d->d_name, &ino, &st) == 0)
		fill_entry(s, &e, ino, &st);
	if (add_dirent(buf, used, size, d, plus ? &e : NULL))
		return true;
	if (ino)
		forget(s, ino->nodeid, 1); /* the guest never saw it */
	return false;
}

static size_t do_readdir(struct fuse_server *s, struct req *r, struct inode *dir, bool plus)
{
	const struct fuse_read_in *in = arg(r, sizeof(*in));
	struct handle *h = in ? find_handle(s, in->fh) : NULL;
	size_t used = 0, size;

	if (!in)
		return reply_err(r, EINVAL);
	if (!h || !h->dir)
		return reply_err(r, EBADF);
	if (dir->sealed)
		return reply(r, 0, NULL, 0);
	size = MIN(MIN((size_t)in->size, (size_t)MAX_REQUEST), r->out_cap - MIN(r->out_cap, 16));
	if (lseek(h->fd, (off_t)in->offset, SEEK_SET) < 0)
		return reply_err(r, errno);
	uint8_t *buf = g_malloc(size + 1), *entries = g_malloc(DIRENT_BUF);
	bool full = false;
	ssize_t got;
	/* Each READDIR says where to go on from (an entry's d_off): nothing to seek back. */
	while (!full && (got = getdents64(h->fd, entries, DIRENT_BUF)) > 0) {
		for (ssize_t at = 0; !full && at < got;) {
			const struct dirent64 *d = (const struct dirent64 *)(entries + at);
			at += d->d_reclen;
			full = !add_entry(s, dir, d, buf, &used, size, plus);
		}
	}
	g_free(entries);
	size_t n = reply(r, 0, buf, used);
	g_free(buf);
	return n;
}

static size_t do_fsyncdir(struct fuse_server *s, struct req *r)
{
	const struct fuse_fsync_in *in = arg(r, sizeof(*in));
	struct handle *h = in ? find_handle(s, in->fh) : NULL;

	if (!in)
		return reply_err(r, EINVAL);
	if (!h || !h->dir)
		return reply_err(r, EBADF);
	return reply_err(r, fsync(h->fd) ? errno : 0);
}

static size_t do_releasedir(struct fuse_server *s, struct req *r)
{
	return do_release(s, r);
}

static size_t do_access(struct fuse_server *s, struct req *r, struct inode *ino)
{
	const struct fuse_access_in *in = arg(r, sizeof(*in));
	char name[16];

	if (!in)
		return reply_err(r, EINVAL);
	if (s->read_only && (in->mask & W_OK))
		return reply_err(r, EROFS);
	if (ino->type == S_IFLNK)
		return reply_err(r, 0);
	fd_name(ino->fd, name, sizeof(name));
	return reply_err(r, faccessat(s->proc_fd, name, (int)in->mask, 0) ? errno : 0);
}

/* Extended attributes, through /proc/self/fd: not on symlinks (Linux has none worth it). */
static int xattr_path(struct inode *ino, char *path, size_t len)
{
	if (ino->type == S_IFLNK)
		return ENOTSUP;
	proc_path(ino, path, len);
	return 0;
}

/*
 * security.* is what the host's kernel trusts about a file: capabilities
 * (security.capability), SELinux and SMACK labels, IMA and EVM hashes. A
 * guest that set one on a host file could give a host program powers when
 * it runs (a husk running as root would be allowed to), as a setuid bit
 * would (guest_mode). The guest reads them; it changes none, but for
 * removing security.capability: that only takes powers away, and the
 * guest's kernel does it before it writes to or chowns a file that has
 * one (as the host's would), so refusing it would fail those writes.
 */
static int xattr_change_refused(const char *name, bool removal)
{
	static const char security[] = "security.";

	if (removal && strcmp(name, "security.capability") == 0)
		return 0;
	return strncmp(name, security, sizeof(security) - 1) == 0 ? EPERM : 0;
}

/*
 * trusted.* is what the host's overlayfs believes (trusted.overlay.redirect,
 * .origin, .opaque) when a share is one of its layers. The guest's own are
 * kept under trusted.husk.* on the host, which nothing there reads: the
 * guest's overlayfs works on a share, and the host's ones stay unseen.
 */
#define TRUSTED      "trusted."
#define TRUSTED_HUSK "trusted.husk."

static bool has_prefix(const char *name, const char *prefix)
{
	return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* The host's name for the guest's 'name' (g_free it). */
static char *host_xattr_name(const char *name)
{
	if (has_prefix(name, TRUSTED))
		return g_strconcat(TRUSTED_HUSK, name + strlen(TRUSTED), NULL);
	return g_strdup(name);
}

/*
 * The guest's view of the host's name list 'host' (n bytes), into 'out'
 * (which may be 'host': no name grows, so it is written behind the read):
 * its length.
 */
static size_t guest_xattr_list(const char *host, size_t n, char *out)
{
	size_t len = 0;

	for (size_t at = 0; at < n;) {
		const char *p = host + at, *name = p;
		at += strnlen(p, n - at) + 1;
		/* trusted.husk.X: its last strlen("trusted.X") bytes, "trusted." written over */
		if (has_prefix(p, TRUSTED_HUSK))
			name = p + strlen(TRUSTED_HUSK) - strlen(TRUSTED);
		else if (has_prefix(p, TRUSTED))
			continue; /* the host's own: not the guest's to see */
		size_t l = strlen(name) + 1;
		memmove(out + len, name, l);
		if (name != p)
			memcpy(out + len, TRUSTED, strlen(TRUSTED));
		len += l;
	}
	return len;
}

static size_t do_setxattr(struct fuse_server *s, struct req *r, struct inode *ino)
{
	const struct fuse_setxattr_in *in = arg(r, 8); /* size, flags: without SETXATTR_EXT */
	const char *name = NULL;
	char path[32];
	size_t next = 0;
	int e = in ? 0 : EINVAL;

	if (!e) {
		const char *p = (const char *)r->arg + 8;
		const char *nul = r->arglen > 8 ? memchr(p, '\0', r->arglen - 8) : NULL;
		e = nul && nul != p ? 0 : EINVAL;
		name = p;
		next = nul ? (size_t)(nul - (const char *)r->arg) + 1 : 0;
	}
	if (!e && (in->size > XATTR_MAX || next + in->size > r->arglen))
		e = EINVAL;
	if (!e && s->read_only)
		e = EROFS;
	if (!e)
		e = xattr_change_refused(name, false);
	if (!e)
		e = xattr_path(ino, path, sizeof(path));
	char *host = e ? NULL : host_xattr_name(name);
	if (!e && setxattr(path, host, r->arg + next, in->size, (int)in->flags))
		e = errno;
	g_free(host);
	return reply_err(r, e);
}

/* GETXATTR and LISTXATTR: size 0 asks how big; otherwise the bytes, or ERANGE. */
static size_t reply_xattr(struct req *r, uint32_t size, ssize_t n, const void *value)
{
	if (n < 0)
		return reply_err(r, errno);
	if (size == 0) {
		struct fuse_getxattr_out out = {.size = (uint32_t)n};
		return reply(r, 0, &out, sizeof(out));
	}
	return reply(r, 0, value, (size_t)n);
}

/* LISTXATTR: the whole list is read, to be mapped, even when only its size is asked. */
static size_t reply_xattr_list(struct req *r, const char *path, uint32_t size)
{
	char *names = g_malloc(XATTR_MAX);
	ssize_t n = listxattr(path, names, XATTR_MAX);

	if (n >= 0)
		n = (ssize_t)guest_xattr_list(names, (size_t)n, names);
	if (n > 0 && size && (uint32_t)n > size) {
		n = -1;
		errno = ERANGE;
	}
	size_t rc = reply_xattr(r, size, n, names);
	g_free(names);
	return rc;
}

static size_t do_getxattr(struct fuse_server *s, struct req *r, struct inode *ino, bool list)
{
	const struct fuse_getxattr_in *in = arg(r, sizeof(*in));
	const char *name = NULL;
	char path[32];
	int e = in ? 0 : EINVAL;

	if (!e && !list) {
		const char *p = (const char *)r->arg + sizeof(*in);
		const char *nul =
		    r->arglen > sizeof(*in) ? memchr(p, '\0', r->arglen - sizeof(*in)) : NULL;
		e = nul && nul != p ? 0 : EINVAL;
		name = p;
	}
	if (!e)
		e = xattr_path(ino, path, sizeof(path));
	if (e)
		return reply_err(r, e);
	if (list)
		return reply_xattr_list(r, path, in->size);
	uint32_t size = MIN(in->size, (uint32_t)XATTR_MAX);
	void *value = size ? g_malloc(size) : NULL;
	char *host = host_xattr_name(name);
	ssize_t n = getxattr(path, host, value, size);
	size_t rc = reply_xattr(r, in->size, n, value);
	g_free(host);
	g_free(value);
	return rc;
}

static size_t do_removexattr(struct fuse_server *s, struct req *r, struct inode *ino)
{
	char path[32];
	const char *p = (const char *)r->arg;
	int e = r->arglen && memchr(p, '\0', r->arglen) && *p ? 0 : EINVAL;

	if (!e && s->read_only)
		e = EROFS;
	if (!e)
		e = xattr_change_refused(p, true);
	if (!e)
		e = xattr_path(ino, path, sizeof(path));
	char *host = e ? NULL : host_xattr_name(p);
	if (!e && removexattr(path, host))
		e = errno;
	g_free(host);
	return reply_err(r, e);
}

static size_t do_fallocate(struct fuse_server *s, struct req *r)
{
	const struct fuse_fallocate_in *in = arg(r, sizeof(*in));
	struct handle *h = in ? file_handle(s, in->fh) : NULL;

	if (!in)
		return reply_err(r, EINVAL);
	if (!h)
		return reply_err(r, EBADF);
	if (s->read_only)
		return reply_err(r, EROFS);
	int e = before_handle_change(s, h->fd, false);
	if (!e && fallocate(h->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length))
		e = errno;
	return reply_err(r, e);
}

static size_t do_lseek(struct fuse_server *s, struct req *r)
{
	const struct fuse_lseek_in *in = arg(r, sizeof(*in));
	struct handle *h = in ? file_handle(s, in->fh) : NULL;
	struct fuse_lseek_out out;

	if (!in)
		return reply_err(r, EINVAL);
	if (!h)
		return reply_err(r, EBADF);
	off_t off = lseek(h->fd, (off_t)in->offset, (int)in->whence);
	if (off < 0)
		return reply_err(r, errno);
	out.offset = (uint64_t)off;
	return reply(r, 0, &out, sizeof(out));
}

static size_t do_copy_file_range(struct fuse_server *s, struct req *r)
{
	const struct fuse_copy_file_range_in *in = arg(r, sizeof(*in));
	struct handle *from = in ? file_handle(s, in->fh_in) : NULL;
	struct handle *to = in ? file_handle(s, in->fh_out) : NULL;
	struct fuse_write_out out = {0};

	if (!in)
		return reply_err(r, EINVAL);
	if (!from || !to)
		return reply_err(r, EBADF);
	if (s->read_only)
		return reply_err(r, EROFS);
	int e = before_handle_change(s, to->fd, false);
	if (e)
		return reply_err(r, e);
	loff_t off_in = (loff_t)in->off_in, off_out = (loff_t)in->off_out;
	ssize_t n = copy_file_range(from->fd, &off_in, to->fd, &off_out, in->len, 0);
	if (n < 0)
		return reply_err(r, errno);
	out.size = (uint32_t)n;
	return reply(r, 0, &out, sizeof(out));
}

static size_t do_batch_forget(struct fuse_server *s, struct req *r)
{
	const struct fuse_batch_forget_in *in = arg(r, sizeof(*in));

	if (!in)
		return 0;
	/* No more entries than the request holds, whatever 'count' says. */
	size_t max = (r->arglen - sizeof(*in)) / sizeof(struct fuse_forget_one);
	const struct fuse_forget_one *one = (const void *)(r->arg + sizeof(*in));
	for (size_t i = 0; i < MIN((size_t)in->count, max); i++)
		forget(s, one[i].nodeid, one[i].nlookup);
	return 0;
}

static void forget_all(struct fuse_server *s)
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

/* Operations on a node: the node must be one we gave the guest. */
/*
 * What a sealed inode answers itself: it has attributes and extended
 * attributes (the guest's overlayfs copies them up, /root under the
 * command's HOME), an empty listing (its own is never read), names in it
 * are missing, and nothing in it opens or changes. 0: the usual
 * operation may go on.
 */
static int sealed_error(uint32_t opcode)
{
	switch (opcode) {
	case FUSE_GETATTR:
	case FUSE_ACCESS:
	case FUSE_OPENDIR:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_STATFS:
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
		return 0;
	case FUSE_LOOKUP:
		return ENOENT;
	default:
		return EACCES;
	}
}

static size_t dispatch_node(struct fuse_server *s, struct req *r, struct inode *ino)
{
	bool dir = ino->type == S_IFDIR;
	int sealed = ino->sealed ? sealed_error(r->h.opcode) : 0;

	if (sealed)
		return reply_err(r, sealed);
	switch (r->h.opcode) {
	case FUSE_LOOKUP:
		return dir ? do_lookup(s, r, ino) : reply_err(r, ENOTDIR);
	case FUSE_GETATTR:
		return do_getattr(s, r, ino);
	case FUSE_SETATTR:
		return do_setattr(s, r, ino);
	case FUSE_READLINK:
		return ino->type == S_IFLNK ? do_readlink(s, r, ino) : reply_err(r, EINVAL);
	case FUSE_SYMLINK:
		return dir ? do_symlink(s, r, ino) : reply_err(r, ENOTDIR);
	case FUSE_MKNOD:
		return dir ? do_mknod(s, r, ino) : reply_err(r, ENOTDIR);
	case FUSE_MKDIR:
		return dir ? do_mkdir(s, r, ino) : reply_err(r, ENOTDIR);
	case FUSE_UNLINK:
		return dir ? do_remove(s, r, ino, 0) : reply_err(r, ENOTDIR);
	case FUSE_RMDIR:
		return dir ? do_remove(s, r, ino, AT_REMOVEDIR) : reply_err(r, ENOTDIR);
	case FUSE_RENAME:
	case FUSE_RENAME2:
		return dir ? do_rename(s, r, ino, r->h.opcode == FUSE_RENAME2)
		           : reply_err(r, ENOTDIR);
	case FUSE_LINK:
		return dir ? do_link(s, r, ino) : reply_err(r, ENOTDIR);
	case FUSE_OPEN:
		return dir ? reply_err(r, EISDIR) : do_open(s, r, ino, false);
	case FUSE_OPENDIR:
		return dir ? do_open(s, r, ino, true) : reply_err(r, ENOTDIR);
	case FUSE_CREATE:
		return dir ? do_create(s, r, ino) : reply_err(r, ENOTDIR);
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		return dir ? do_readdir(s, r, ino, r->h.opcode == FUSE_READDIRPLUS)
		           : reply_err(r, ENOTDIR);
	case FUSE_STATFS:
		return do_statfs(s, r, ino);
	case FUSE_ACCESS:
		return do_access(s, r, ino);
	case FUSE_SETXATTR:
		return s->no_xattr ? reply_err(r, ENOSYS) : do_setxattr(s, r, ino);
	case FUSE_GETXATTR:
		return s->no_xattr ? reply_err(r, ENOSYS) : do_getxattr(s, r, ino, false);
	case FUSE_LISTXATTR:
		return s->no_xattr ? reply_err(r, ENOSYS) : do_getxattr(s, r, ino, true);
	case FUSE_REMOVEXATTR:
		return s->no_xattr ? reply_err(r, ENOSYS) : do_removexattr(s, r, ino);
	default:
		return reply_err(r, ENOSYS);
	}
}

/* The opcodes dispatch_node answers: for those, an unknown node is ESTALE, not ENOSYS. */
static bool node_opcode(uint32_t opcode)
{
	static const uint32_t ops[] = {
	    FUSE_LOOKUP,   FUSE_GETATTR,     FUSE_SETATTR,     FUSE_READLINK, FUSE_SYMLINK,
	    FUSE_MKNOD,    FUSE_MKDIR,       FUSE_UNLINK,      FUSE_RMDIR,    FUSE_RENAME,
	    FUSE_RENAME2,  FUSE_LINK,        FUSE_OPEN,        FUSE_OPENDIR,  FUSE_CREATE,
	    FUSE_READDIR,  FUSE_READDIRPLUS, FUSE_STATFS,      FUSE_ACCESS,   FUSE_SETXATTR,
	    FUSE_GETXATTR, FUSE_LISTXATTR,   FUSE_REMOVEXATTR,
	};

	for (size_t i = 0; i < G_N_ELEMENTS(ops); i++)
		if (ops[i] == opcode)
			return true;
	return false;
}

static size_t dispatch(struct fuse_server *s, struct req *r)
{
	if (r->h.opcode == FUSE_INIT)
		return do_init(s, r);
	/* Like libfuse: nothing is served before INIT (FORGET has no reply to carry EIO). */
	if (!s->initialized)
		return r->h.opcode == FUSE_FORGET || r->h.opcode == FUSE_BATCH_FORGET
		           ? 0
		           : reply_err(r, EIO);
	switch (r->h.opcode) {
	case FUSE_DESTROY:
		forget_all(s);
		s->initialized = false;
		return reply_err(r, 0);
	case FUSE_FORGET: {
		const struct fuse_forget_in *in = arg(r, sizeof(*in));
		if (in)
			forget(s, r->h.nodeid, in->nlookup);
		return 0; /* FORGET takes no reply */
	}
	case FUSE_BATCH_FORGET:
		return do_batch_forget(s, r);
	case FUSE_INTERRUPT:
		return 0; /* every request is answered before the next is read */
	case FUSE_READ:
		return do_read(s, r);
	case FUSE_WRITE:
		return do_write(s, r);
	case FUSE_RELEASE:
		return do_release(s, r);
	case FUSE_RELEASEDIR:
		return do_releasedir(s, r);
	case FUSE_FSYNC:
		return do_fsync(s, r);
	case FUSE_FSYNCDIR:
		return do_fsyncdir(s, r);
	case FUSE_FLUSH:
		return do_flush(s, r);
	case FUSE_FALLOCATE:
		return do_fallocate(s, r);
	case FUSE_LSEEK:
		return do_lseek(s, r);
	case FUSE_COPY_FILE_RANGE:
		return do_copy_file_range(s, r);
	case FUSE_SYNCFS:
		return reply_err(r, syncfs(s->root->fd) ? errno : 0);
	}
	if (!node_opcode(r->h.opcode))
		return reply_err(r, ENOSYS);
	struct inode *ino = find_inode(s, r->h.nodeid);
	if (!ino)
		return reply_err(r, ESTALE); /* a node id we never gave out */
	return dispatch_node(s, r, ino);
}

/*
 * A request answered with 'n' bytes (0: none, as FORGET takes). One
 * refused before it was read ('read' false) counts for no opcode.
 */
static void count_answer(struct fuse_server *s, const struct req *r, size_t n, bool read)
{
	struct fuse_out_header oh;

	if (read && r->h.opcode < FUSE_SERVER_OPCODES)
		s->stats.by_opcode[r->h.opcode]++;
	if (n >= sizeof(oh) && iov_copy_from(r->out, r->nout, 0, &oh, sizeof(oh)) == sizeof(oh) &&
	    oh.error)
		s->stats.errors++;
}

static size_t handle(struct fuse_server *s, const struct iovec *in, int nin,
                     const struct iovec *out, int nout, bool nowait)
{
	struct req r = {.in = in, .nin = nin, .out = out, .nout = nout, .nowait = nowait};
	size_t in_len = iov_len(in, nin), n;

	r.out_cap = iov_len(out, nout);
	pthread_mutex_lock(&s->lock);
	s->stats.requests++;
	if (iov_copy_from(in, nin, 0, &r.h, sizeof(r.h)) < sizeof(r.h)) {
		s->stats.bad_requests++;
		pthread_mutex_unlock(&s->lock);
		return 0; /* not even a header: nothing to answer */
	}
	/* The header's length must be the request's; WRITE's data stays where it is. */
	size_t body = r.h.opcode == FUSE_WRITE
	                  ? MIN(in_len, sizeof(r.h) + sizeof(struct fuse_write_in))
	                  : in_len;
	bool read = r.h.len == in_len && in_len <= MAX_REQUEST;
	if (!read) {
		s->stats.bad_requests++;
		n = reply_err(&r, EINVAL);
	} else {
		iov_copy_from(in, nin, 0, s->buf, body);
		s->buf[body] = '\0'; /* a name at the very end still ends */
		r.arg = s->buf + sizeof(r.h);
		r.arglen = body - sizeof(r.h);
		n = dispatch(s, &r);
	}
	if (n == WOULD_BLOCK)
		s->stats.requests--; /* counted when it is answered */
	else
		count_answer(s, &r, n, read);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, int nin,
                          const struct iovec *out, int nout)
{
	return handle(s, in, nin, out, nout, false);
}

bool fuse_server_try_handle(struct fuse_server *s, const struct iovec *in, int nin,
                            const struct iovec *out, int nout, size_t *n)
{
	*n = handle(s, in, nin, out, nout, true);
	return *n != WOULD_BLOCK;
}

/*
 * Every inode the guest holds is an open descriptor: a guest that caches a
 * tree of 10,000 files needs 10,000. Take all the soft limit allows, and as
 * root the kernel's ceiling.
 */
/*
 * Up to the hard limit the user set, not past it to nr_open (a million as
 * root): the shares' budgets bound what guests hold, not the limit.
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
static void file_budget_from_rlimit(void)
{
	struct rlimit rl;

	raise_fd_limit();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fuse_server_set_file_budget((long)(rl.rlim_cur > 2 * FD_RESERVE
		                                       ? rl.rlim_cur - FD_RESERVE
		                                       : rl.rlim_cur / 2));
}

/* The files 'paths' (under the share 'root') name now; those missing hide nothing. */
static GArray *hidden_files(int root, const char *const *paths)
{
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(struct file_id));
	struct stat st;

	for (; paths && *paths; paths++)
		if (fstatat(root, *paths, &st, AT_SYMLINK_NOFOLLOW) == 0)
			g_array_append_val(ids, ((struct file_id){st.st_dev, st.st_ino}));
	return ids;
}

struct fuse_server *fuse_server_new(const char *dir, const struct fuse_server_options *opt,
                                    GError **err)
{
	struct fuse_server *s = g_new0(struct fuse_server, 1);
	struct stat st;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		husk_fail(err, HUSK_EXIT_USAGE, "--share: %s: %s", dir, g_strerror(errno));
		g_free(s);
		return NULL;
	}
	const char *why = NULL;
	int e;
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->proc_fd < 0)
		why = "/proc is not mounted";
	else if ((e = stat_fd(fd, &st)))
		why = g_strerror(e);
	else if (kernel_fs(fd))
		why = "a kernel file system (procfs, sysfs, ...) is never shared";
	if (why) {
		husk_fail(err, HUSK_EXIT_USAGE, "--share: %s: %s", dir, why);
		close(fd);
		if (s->proc_fd >= 0)
			close(s->proc_fd);
		g_free(s);
		return NULL;
	}
	file_budget_from_rlimit();
	pthread_mutex_init(&s->lock, NULL);
	s->read_only = opt->read_only;
	s->submounts = opt->submounts;
	s->cross_mounts = opt->cross_mounts;
	s->max_inodes = opt->max_inodes ? opt->max_inodes : FUSE_SERVER_MAX_INODES;
	s->max_handles = opt->max_handles ? opt->max_handles : FUSE_SERVER_MAX_HANDLES;
	s->hidden = hidden_files(fd, opt->hidden);
	s->no_xattr = opt->no_xattr;
	s->uid_map = opt->uid_map;
	s->gid_map = opt->gid_map;
	s->as_root = geteuid() == 0;
	s->inodes = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	s->by_file = g_hash_table_new(file_id_hash, file_id_equal);
	s->handles = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, unref_handle);
	s->next_nodeid = FUSE_ROOT_ID;
	s->next_fh = 1;
	s->root = g_new0(struct inode, 1);
	*s->root = (struct inode){.nodeid = s->next_nodeid++,
	                          .fd = fd,
	                          .id = {st.st_dev, st.st_ino},
	                          .type = S_IFDIR,
	                          .mnt = mount_of(fd, &st),
	                          .nlookup = 1};
	g_hash_table_insert(s->inodes, &s->root->nodeid, s->root);
	g_hash_table_insert(s->by_file, &s->root->id, s->root);
	s->buf = g_malloc(MAX_REQUEST + 1);
	return s;
}

void fuse_server_free(struct fuse_server *s)
{
	if (!s)
		return;
	forget_all(s);
	close(s->root->fd);
	close(s->proc_fd);
	g_hash_table_unref(s->handles);
	g_hash_table_unref(s->by_file);
	g_hash_table_unref(s->inodes);
	g_array_free(s->hidden, TRUE);
	pthread_mutex_destroy(&s->lock);
	g_free(s->buf);
	g_free(s);
}

void fuse_server_get_stats(struct fuse_server *s, struct fuse_server_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

const char *fuse_opcode_name(uint32_t opcode)
{
	static const char *const names[] = {
	    [FUSE_LOOKUP] = "LOOKUP",
	    [FUSE_FORGET] = "FORGET",
	    [FUSE_GETATTR] = "GETATTR",
	    [FUSE_SETATTR] = "SETATTR",
	    [FUSE_READLINK] = "READLINK",
	    [FUSE_SYMLINK] = "SYMLINK",
	    [FUSE_MKNOD] = "MKNOD",
	    [FUSE_MKDIR] = "MKDIR",
	    [FUSE_UNLINK] = "UNLINK",
	    [FUSE_RMDIR] = "RMDIR",
	    [FUSE_RENAME] = "RENAME",
	    [FUSE_LINK] = "LINK",
	    [FUSE_OPEN] = "OPEN",
	    [FUSE_READ] = "READ",
	    [FUSE_WRITE] = "WRITE",
	    [FUSE_STATFS] = "STATFS",
	    [FUSE_RELEASE] = "RELEASE",
	    [FUSE_FSYNC] = "FSYNC",
	    [FUSE_SETXATTR] = "SETXATTR",
	    [FUSE_GETXATTR] = "GETXATTR",
	    [FUSE_LISTXATTR] = "LISTXATTR",
	    [FUSE_REMOVEXATTR] = "REMOVEXATTR",
	    [FUSE_FLUSH] = "FLUSH",
	    [FUSE_INIT] = "INIT",
	    [FUSE_OPENDIR] = "OPENDIR",
	    [FUSE_READDIR] = "READDIR",
	    [FUSE_RELEASEDIR] = "RELEASEDIR",
	    [FUSE_FSYNCDIR] = "FSYNCDIR",
	    [FUSE_GETLK] = "GETLK",
	    [FUSE_SETLK] = "SETLK",
	    [FUSE_SETLKW] = "SETLKW",
	    [FUSE_ACCESS] = "ACCESS",
	    [FUSE_CREATE] = "CREATE",
	    [FUSE_INTERRUPT] = "INTERRUPT",
	    [FUSE_BMAP] = "BMAP",
	    [FUSE_DESTROY] = "DESTROY",
	    [FUSE_IOCTL] = "IOCTL",
	    [FUSE_POLL] = "POLL",
	    [FUSE_NOTIFY_REPLY] = "NOTIFY_REPLY",
	    [FUSE_BATCH_FORGET] = "BATCH_FORGET",
	    [FUSE_FALLOCATE] = "FALLOCATE",
	    [FUSE_READDIRPLUS] = "READDIRPLUS",
	    [FUSE_RENAME2] = "RENAME2",
	    [FUSE_LSEEK] = "LSEEK",
	    [FUSE_COPY_FILE_RANGE] = "COPY_FILE_RANGE",
	    [FUSE_SETUPMAPPING] = "SETUPMAPPING",
	    [FUSE_REMOVEMAPPING] = "REMOVEMAPPING",
	    [FUSE_SYNCFS] = "SYNCFS",
	    [FUSE_TMPFILE] = "TMPFILE",
	};

	return opcode < G_N_ELEMENTS(names) ? names[opcode] : NULL;
}

void fuse_server_confine_thread(struct fuse_server *s)
{
	if (!landlock_confine_beneath(s->root->fd, s->read_only))
		g_debug("share: Landlock cannot confine this thread (%s): its seccomp list only",
		        g_strerror(errno));
}
