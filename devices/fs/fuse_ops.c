// SPDX-License-Identifier: MIT
#include "devices/fs/fuse_internal.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

static size_t do_init(struct fuse_server *s, struct req *r)
{
	const struct fuse_init_in *in = fuse_arg(r, 16); /* the fields before FUSE_INIT_EXT */
	struct fuse_init_out out = {0};

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (in->major != FUSE_KERNEL_VERSION || in->minor < MIN_MINOR)
		return fuse_reply_err(r, EPROTO);
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
	return fuse_reply(r, 0, &out, sizeof(out));
}

static size_t do_lookup(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const char *name;
	struct inode *ino;
	struct stat st;
	int e = fuse_take_name(r, 0, &name, NULL);

	if (!e)
		e = fuse_lookup(s, dir, name, &ino, &st);
	if (e == ENOENT) {
		/*
		 * Node id 0 is "no such name" that the guest may remember as long
		 * as a name it found: `tar` asks for each new file twice (unlink,
		 * then open with O_CREAT), and an error would be asked again.
		 */
		struct fuse_entry_out neg = {.entry_valid = TIMEOUT_S};
		return fuse_reply(r, 0, &neg, sizeof(neg));
	}
	return e ? fuse_reply_err(r, e) : fuse_reply_entry(s, r, ino, &st);
}

static size_t do_getattr(struct fuse_server *s, struct req *r, struct inode *ino)
{
	struct stat st;
	int e = fuse_stat_fd(ino->fd, &st);

	return e ? fuse_reply_err(r, e) : fuse_reply_attr(s, r, ino, &st);
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
	fuse_fd_name(ino->fd, name, sizeof(name));
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

/*
 * With a handle, that of a file opened from this very node: else a guest
 * could truncate another open file, one it may not open for writing.
 */
static int truncate_to(struct fuse_server *s, struct inode *ino, const struct fuse_setattr_in *in)
{
	struct handle *h = (in->valid & FATTR_FH) ? fuse_find_handle(s, in->fh) : NULL;

	if ((in->valid & FATTR_FH) && (!h || h->dir || h->nodeid != ino->nodeid))
		return EBADF;
	int fd = h ? h->fd : fuse_reopen(s, ino, O_WRONLY);
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
	const struct fuse_setattr_in *in = fuse_arg(r, sizeof(*in));
	char name[16];
	int e = 0;

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (s->read_only)
		return fuse_reply_err(r, EROFS);
	fuse_fd_name(ino->fd, name, sizeof(name));
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
	return e ? fuse_reply_err(r, e) : do_getattr(s, r, ino);
}

static size_t do_readlink(struct fuse_server *s, struct req *r, struct inode *ino)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(ino->fd, "", target, sizeof(target));

	return n < 0 ? fuse_reply_err(r, errno) : fuse_reply(r, 0, target, (size_t)n);
}

/* After MKDIR, MKNOD, SYMLINK: the new entry, looked up like any other. */
static size_t reply_new(struct fuse_server *s, struct req *r, struct inode *dir, const char *name)
{
	struct inode *ino;
	struct stat st;
	int e = fuse_lookup(s, dir, name, &ino, &st);

	return e ? fuse_reply_err(r, e) : fuse_reply_entry(s, r, ino, &st);
}

static size_t do_mkdir(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const struct fuse_mkdir_in *in = fuse_arg(r, sizeof(*in));
	const char *name;
	int e = in ? fuse_take_name(r, sizeof(*in), &name, NULL) : EINVAL;

	if (!e && s->read_only)
		e = EROFS;
	if (!e && mkdirat(dir->fd, name, guest_mode(s, in->mode, true)))
		e = errno;
	return e ? fuse_reply_err(r, e) : reply_new(s, r, dir, name);
}

static size_t do_mknod(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const struct fuse_mknod_in *in = fuse_arg(r, sizeof(*in));
	const char *name;
	int e = in ? fuse_take_name(r, sizeof(*in), &name, NULL) : EINVAL;

	if (!e && s->read_only)
		e = EROFS;
	/* A device node made by root would open host hardware to the guest. */
	if (!e && s->as_root && (S_ISCHR(in->mode) || S_ISBLK(in->mode)))
		e = EPERM;
	if (!e &&
	    mknodat(dir->fd, name, (in->mode & S_IFMT) | guest_mode(s, in->mode, false), in->rdev))
		e = errno;
	return e ? fuse_reply_err(r, e) : reply_new(s, r, dir, name);
}

static size_t do_symlink(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const char *name, *target;
	size_t next;
	int e = fuse_take_name(r, 0, &name, &next);

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
	return e ? fuse_reply_err(r, e) : reply_new(s, r, dir, name);
}

static size_t do_remove(struct fuse_server *s, struct req *r, struct inode *dir, int flags)
{
	const char *name;
	int e = fuse_take_name(r, 0, &name, NULL);

	if (!e && s->read_only)
		e = EROFS;
	if (!e && unlinkat(dir->fd, name, flags))
		e = errno;
	return fuse_reply_err(r, e);
}

static size_t do_rename(struct fuse_server *s, struct req *r, struct inode *dir, bool v2)
{
	size_t argsz = v2 ? sizeof(struct fuse_rename2_in) : sizeof(struct fuse_rename_in);
	const struct fuse_rename2_in *in = fuse_arg(r, argsz);
	const char *old, *new;
	size_t next;
	int e = in ? fuse_take_name(r, argsz, &old, &next) : EINVAL;

	if (!e)
		e = fuse_take_name(r, next, &new, NULL);
	struct inode *to = in ? fuse_find_inode(s, in->newdir) : NULL;
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
	return fuse_reply_err(r, e);
}

static size_t do_link(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const struct fuse_link_in *in = fuse_arg(r, sizeof(*in));
	struct inode *target = in ? fuse_find_inode(s, in->oldnodeid) : NULL;
	const char *name;
	char fd[16];
	int e = in ? fuse_take_name(r, sizeof(*in), &name, NULL) : EINVAL;

	if (!e && !target)
		e = ESTALE;
	if (!e && target->sealed)
		e = EACCES;
	if (!e && s->read_only)
		e = EROFS;
	if (!e) {
		/* Through /proc: linking an O_PATH descriptor needs no privilege this way. */
		fuse_fd_name(target->fd, fd, sizeof(fd));
		if (linkat(s->proc_fd, fd, dir->fd, name, AT_SYMLINK_FOLLOW))
			e = errno;
	}
	return e ? fuse_reply_err(r, e) : reply_new(s, r, dir, name);
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
	const struct fuse_open_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_open_out out = {0};

	if (!in)
		return fuse_reply_err(r, EINVAL);
	int flags = dir ? O_RDONLY | O_DIRECTORY : open_flags(in->flags);
	if (s->read_only && writes(flags))
		return fuse_reply_err(r, EROFS);
	if (!fuse_room_for_handle(s))
		return fuse_reply_err(r, ENFILE);
	/* A sealed directory's listing is empty (do_readdir): its own is never opened. */
	int fd = fuse_reopen(s, ino->sealed ? s->root : ino, flags);
	if (fd < 0)
		return fuse_reply_err(r, -fd);
	int e =
	    (flags & O_TRUNC) ? before_change(s, fd, in->open_flags & FUSE_OPEN_KILL_SUIDGID) : 0;
	if (e) {
		close(fd);
		return fuse_reply_err(r, e);
	}
	out.fh = fuse_add_handle(s, ino, fd, dir);
	out.open_flags = dir ? 0 : FOPEN_NOFLUSH;
	return fuse_reply(r, 0, &out, sizeof(out));
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
	                               : fuse_reopen_path(s, path, st.st_mode & S_IFMT, flags);
	close(path);
	return fd;
}

static size_t do_create(struct fuse_server *s, struct req *r, struct inode *dir)
{
	const struct fuse_create_in *in = fuse_arg(r, sizeof(*in));
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = {0};
	const char *name;
	int e = in ? fuse_take_name(r, sizeof(*in), &name, NULL) : EINVAL;

	if (!e && s->read_only)
		e = EROFS;
	/* the handle, and the inode if it is new */
	if (!e && (!fuse_room_for(2) || !fuse_room_for_inode(s) || !fuse_room_for_handle(s)))
		e = ENFILE;
	if (e)
		return fuse_reply_err(r, e);
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
		return fuse_reply_err(r, -fd);
	/* Only a file that was there is truncated; one this open makes keeps its bits. */
	if (existed && (flags & O_TRUNC))
		e = before_change(s, fd, in->open_flags & FUSE_OPEN_KILL_SUIDGID);
	struct inode *ino;
	struct stat st;
	if (!e)
		e = fuse_lookup(s, dir, name, &ino, &st);
	if (e) {
		close(fd);
		return fuse_reply_err(r, e);
	}
	fuse_fill_entry(s, &out.e, ino, &st);
	out.o.fh = fuse_add_handle(s, ino, fd, false);
	out.o.open_flags = FOPEN_NOFLUSH;
	return fuse_reply(r, 0, &out, sizeof(out));
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
	fuse_unref_handle(h);
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
		cnt = fuse_iov_slice(r->out, r->nout, sizeof(struct fuse_out_header) + (size_t)n,
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
	const struct fuse_read_in *in = fuse_arg(r, sizeof(*in));
	struct handle *h = in ? fuse_file_handle(s, in->fh) : NULL;
	struct iovec iov[FUSE_SERVER_MAX_SEGS];
	struct fuse_out_header oh = {.unique = r->h.unique};

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (!h)
		return fuse_reply_err(r, EBADF);
	if (r->out_cap < sizeof(oh))
		return 0;
	/* Straight into the guest's buffers: no copy on the way. */
	size_t want = MIN(MIN(in->size, (uint32_t)FUSE_SERVER_MAX_WRITE), r->out_cap - sizeof(oh));
	uint64_t offset = in->offset; /* 'in' is the shared buffer's: gone once we unlock */
	int cnt = fuse_iov_slice(r->out, r->nout, sizeof(oh), want, iov, G_N_ELEMENTS(iov));
	ssize_t n = r->nowait ? read_nowait(s, r, h, iov, cnt, offset, want)
	                      : unlocked_io(s, h, iov, cnt, offset, false);
	if (n == -EAGAIN)
		return WOULD_BLOCK;
	if (n < 0)
		return fuse_reply_err(r, errno);
	oh.len = (uint32_t)(sizeof(oh) + (size_t)n);
	fuse_iov_copy_to(r->out, r->nout, 0, &oh, sizeof(oh));
	return oh.len;
}

static size_t do_write(struct fuse_server *s, struct req *r)
{
	const struct fuse_write_in *in = fuse_arg(r, sizeof(*in));
	struct handle *h = in ? fuse_file_handle(s, in->fh) : NULL;
	struct fuse_write_out out = {0};
	struct iovec iov[FUSE_SERVER_MAX_SEGS];
	size_t data_off = sizeof(struct fuse_in_header) + sizeof(*in);

	if (!in)
		return fuse_reply_err(r, EINVAL);
	/* The data must be exactly what the header says: lengths that lie are refused. */
	if (in->size > FUSE_SERVER_MAX_WRITE || data_off + in->size != r->h.len)
		return fuse_reply_err(r, EINVAL);
	if (!h)
		return fuse_reply_err(r, EBADF);
	if (s->read_only)
		return fuse_reply_err(r, EROFS);
	int cnt = fuse_iov_slice(r->in, r->nin, data_off, in->size, iov, G_N_ELEMENTS(iov));
	if (fuse_iov_len(iov, cnt) != in->size)
		return fuse_reply_err(r, EINVAL); /* more pieces than we take at once */
	/* Before the data, as Linux does, but only on a file open for writing. */
	int e = before_handle_change(s, h->fd, in->write_flags & FUSE_WRITE_KILL_SUIDGID);
	if (e)
		return fuse_reply_err(r, e);
	ssize_t n = unlocked_io(s, h, iov, cnt, in->offset, true);
	if (n < 0)
		return fuse_reply_err(r, errno);
	out.size = (uint32_t)n;
	return fuse_reply(r, 0, &out, sizeof(out));
}

static size_t do_statfs(struct fuse_server *s, struct req *r, struct inode *ino)
{
	struct fuse_statfs_out out = {0};
	struct statfs st;

	if (fstatfs(ino->sealed ? s->root->fd : ino->fd, &st))
		return fuse_reply_err(r, errno);
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
	return fuse_reply(r, 0, &out, sizeof(out));
}

static size_t do_release(struct fuse_server *s, struct req *r)
{
	const struct fuse_release_in *in = fuse_arg(r, sizeof(*in));

	if (!in)
		return fuse_reply_err(r, EINVAL);
	return fuse_reply_err(r, g_hash_table_remove(s->handles, &in->fh) ? 0 : EBADF);
}

static size_t do_fsync(struct fuse_server *s, struct req *r)
{
	const struct fuse_fsync_in *in = fuse_arg(r, sizeof(*in));
	struct handle *h = in ? fuse_find_handle(s, in->fh) : NULL;

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (!h)
		return fuse_reply_err(r, EBADF);
	int rc = (in->fsync_flags & FUSE_FSYNC_FDATASYNC) ? fdatasync(h->fd) : fsync(h->fd);
	return fuse_reply_err(r, rc ? errno : 0);
}

/*
 * Nothing to do: husk holds no POSIX locks for the guest (its kernel keeps
 * them) and writes are not buffered here. OPEN and CREATE say FOPEN_NOFLUSH,
 * so a guest close costs no round trip; older guests still send FLUSH.
 */
static size_t do_flush(struct fuse_server *s, struct req *r)
{
	const struct fuse_flush_in *in = fuse_arg(r, sizeof(*in));

	if (!in)
		return fuse_reply_err(r, EINVAL);
	return fuse_reply_err(r, fuse_file_handle(s, in->fh) ? 0 : EBADF);
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
 * One entry of a listing, with its attributes for READDIRPLUS (fuse_lookup()
 * refuses "." and "..": they go without). False when it does not fit.
 */
static bool add_entry(struct fuse_server *s, struct inode *dir, const struct dirent64 *d,
                      uint8_t *buf, size_t *used, size_t size, bool plus)
{
	struct fuse_entry_out e = {0};
	struct inode *ino = NULL;
	struct stat st;

	if (plus && fuse_lookup(s, dir, d->d_name, &ino, &st) == 0)
		fuse_fill_entry(s, &e, ino, &st);
	if (add_dirent(buf, used, size, d, plus ? &e : NULL))
		return true;
	if (ino)
		fuse_forget(s, ino->nodeid, 1); /* the guest never saw it */
	return false;
}

static size_t do_readdir(struct fuse_server *s, struct req *r, struct inode *dir, bool plus)
{
	const struct fuse_read_in *in = fuse_arg(r, sizeof(*in));
	struct handle *h = in ? fuse_find_handle(s, in->fh) : NULL;
	size_t used = 0, size;

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (!h || !h->dir)
		return fuse_reply_err(r, EBADF);
	if (dir->sealed)
		return fuse_reply(r, 0, NULL, 0);
	size = MIN(MIN((size_t)in->size, (size_t)MAX_REQUEST), r->out_cap - MIN(r->out_cap, 16));
	if (lseek(h->fd, (off_t)in->offset, SEEK_SET) < 0)
		return fuse_reply_err(r, errno);
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
	size_t n = fuse_reply(r, 0, buf, used);
	g_free(buf);
	return n;
}

static size_t do_fsyncdir(struct fuse_server *s, struct req *r)
{
	const struct fuse_fsync_in *in = fuse_arg(r, sizeof(*in));
	struct handle *h = in ? fuse_find_handle(s, in->fh) : NULL;

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (!h || !h->dir)
		return fuse_reply_err(r, EBADF);
	return fuse_reply_err(r, fsync(h->fd) ? errno : 0);
}

static size_t do_releasedir(struct fuse_server *s, struct req *r)
{
	return do_release(s, r);
}

static size_t do_access(struct fuse_server *s, struct req *r, struct inode *ino)
{
	const struct fuse_access_in *in = fuse_arg(r, sizeof(*in));
	char name[16];

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (s->read_only && (in->mask & W_OK))
		return fuse_reply_err(r, EROFS);
	if (ino->type == S_IFLNK)
		return fuse_reply_err(r, 0);
	fuse_fd_name(ino->fd, name, sizeof(name));
	return fuse_reply_err(r, faccessat(s->proc_fd, name, (int)in->mask, 0) ? errno : 0);
}

static size_t do_fallocate(struct fuse_server *s, struct req *r)
{
	const struct fuse_fallocate_in *in = fuse_arg(r, sizeof(*in));
	struct handle *h = in ? fuse_file_handle(s, in->fh) : NULL;

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (!h)
		return fuse_reply_err(r, EBADF);
	if (s->read_only)
		return fuse_reply_err(r, EROFS);
	int e = before_handle_change(s, h->fd, false);
	if (!e && fallocate(h->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length))
		e = errno;
	return fuse_reply_err(r, e);
}

static size_t do_lseek(struct fuse_server *s, struct req *r)
{
	const struct fuse_lseek_in *in = fuse_arg(r, sizeof(*in));
	struct handle *h = in ? fuse_file_handle(s, in->fh) : NULL;
	struct fuse_lseek_out out;

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (!h)
		return fuse_reply_err(r, EBADF);
	off_t off = lseek(h->fd, (off_t)in->offset, (int)in->whence);
	if (off < 0)
		return fuse_reply_err(r, errno);
	out.offset = (uint64_t)off;
	return fuse_reply(r, 0, &out, sizeof(out));
}

static size_t do_copy_file_range(struct fuse_server *s, struct req *r)
{
	const struct fuse_copy_file_range_in *in = fuse_arg(r, sizeof(*in));
	struct handle *from = in ? fuse_file_handle(s, in->fh_in) : NULL;
	struct handle *to = in ? fuse_file_handle(s, in->fh_out) : NULL;
	struct fuse_write_out out = {0};

	if (!in)
		return fuse_reply_err(r, EINVAL);
	if (!from || !to)
		return fuse_reply_err(r, EBADF);
	if (s->read_only)
		return fuse_reply_err(r, EROFS);
	int e = before_handle_change(s, to->fd, false);
	if (e)
		return fuse_reply_err(r, e);
	loff_t off_in = (loff_t)in->off_in, off_out = (loff_t)in->off_out;
	ssize_t n = copy_file_range(from->fd, &off_in, to->fd, &off_out, in->len, 0);
	if (n < 0)
		return fuse_reply_err(r, errno);
	out.size = (uint32_t)n;
	return fuse_reply(r, 0, &out, sizeof(out));
}

static size_t do_batch_forget(struct fuse_server *s, struct req *r)
{
	const struct fuse_batch_forget_in *in = fuse_arg(r, sizeof(*in));

	if (!in)
		return 0;
	/* No more entries than the request holds, whatever 'count' says. */
	size_t max = (r->arglen - sizeof(*in)) / sizeof(struct fuse_forget_one);
	const struct fuse_forget_one *one = (const void *)(r->arg + sizeof(*in));
	for (size_t i = 0; i < MIN((size_t)in->count, max); i++)
		fuse_forget(s, one[i].nodeid, one[i].nlookup);
	return 0;
}

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

/* Operations on a node: the node must be one we gave the guest. */
static size_t dispatch_node(struct fuse_server *s, struct req *r, struct inode *ino)
{
	bool dir = ino->type == S_IFDIR;
	int sealed = ino->sealed ? sealed_error(r->h.opcode) : 0;

	if (sealed)
		return fuse_reply_err(r, sealed);
	switch (r->h.opcode) {
	case FUSE_LOOKUP:
		return dir ? do_lookup(s, r, ino) : fuse_reply_err(r, ENOTDIR);
	case FUSE_GETATTR:
		return do_getattr(s, r, ino);
	case FUSE_SETATTR:
		return do_setattr(s, r, ino);
	case FUSE_READLINK:
		return ino->type == S_IFLNK ? do_readlink(s, r, ino) : fuse_reply_err(r, EINVAL);
	case FUSE_SYMLINK:
		return dir ? do_symlink(s, r, ino) : fuse_reply_err(r, ENOTDIR);
	case FUSE_MKNOD:
		return dir ? do_mknod(s, r, ino) : fuse_reply_err(r, ENOTDIR);
	case FUSE_MKDIR:
		return dir ? do_mkdir(s, r, ino) : fuse_reply_err(r, ENOTDIR);
	case FUSE_UNLINK:
		return dir ? do_remove(s, r, ino, 0) : fuse_reply_err(r, ENOTDIR);
	case FUSE_RMDIR:
		return dir ? do_remove(s, r, ino, AT_REMOVEDIR) : fuse_reply_err(r, ENOTDIR);
	case FUSE_RENAME:
	case FUSE_RENAME2:
		return dir ? do_rename(s, r, ino, r->h.opcode == FUSE_RENAME2)
		           : fuse_reply_err(r, ENOTDIR);
	case FUSE_LINK:
		return dir ? do_link(s, r, ino) : fuse_reply_err(r, ENOTDIR);
	case FUSE_OPEN:
		return dir ? fuse_reply_err(r, EISDIR) : do_open(s, r, ino, false);
	case FUSE_OPENDIR:
		return dir ? do_open(s, r, ino, true) : fuse_reply_err(r, ENOTDIR);
	case FUSE_CREATE:
		return dir ? do_create(s, r, ino) : fuse_reply_err(r, ENOTDIR);
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		return dir ? do_readdir(s, r, ino, r->h.opcode == FUSE_READDIRPLUS)
		           : fuse_reply_err(r, ENOTDIR);
	case FUSE_STATFS:
		return do_statfs(s, r, ino);
	case FUSE_ACCESS:
		return do_access(s, r, ino);
	case FUSE_SETXATTR:
		return s->no_xattr ? fuse_reply_err(r, ENOSYS) : fuse_do_setxattr(s, r, ino);
	case FUSE_GETXATTR:
		return s->no_xattr ? fuse_reply_err(r, ENOSYS) : fuse_do_getxattr(s, r, ino, false);
	case FUSE_LISTXATTR:
		return s->no_xattr ? fuse_reply_err(r, ENOSYS) : fuse_do_getxattr(s, r, ino, true);
	case FUSE_REMOVEXATTR:
		return s->no_xattr ? fuse_reply_err(r, ENOSYS) : fuse_do_removexattr(s, r, ino);
	default:
		return fuse_reply_err(r, ENOSYS);
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

size_t fuse_dispatch(struct fuse_server *s, struct req *r)
{
	if (r->h.opcode == FUSE_INIT)
		return do_init(s, r);
	/* Like libfuse: nothing is served before INIT (FORGET has no reply to carry EIO). */
	if (!s->initialized)
		return r->h.opcode == FUSE_FORGET || r->h.opcode == FUSE_BATCH_FORGET
		           ? 0
		           : fuse_reply_err(r, EIO);
	switch (r->h.opcode) {
	case FUSE_DESTROY:
		fuse_forget_all(s);
		s->initialized = false;
		return fuse_reply_err(r, 0);
	case FUSE_FORGET: {
		const struct fuse_forget_in *in = fuse_arg(r, sizeof(*in));
		if (in)
			fuse_forget(s, r->h.nodeid, in->nlookup);
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
		return fuse_reply_err(r, syncfs(s->root->fd) ? errno : 0);
	}
	if (!node_opcode(r->h.opcode))
		return fuse_reply_err(r, ENOSYS);
	struct inode *ino = fuse_find_inode(s, r->h.nodeid);
	if (!ino)
		return fuse_reply_err(r, ESTALE); /* a node id we never gave out */
	return dispatch_node(s, r, ino);
}
