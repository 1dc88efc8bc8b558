// SPDX-License-Identifier: MIT
#include "devices/fs/fuse_internal.h"

#include <stdio.h>

#include "devices/fs/landlock.h"
#include "vmm/error.h"

/*
 * A request answered with 'n' bytes (0: none, as FORGET takes). One
 * refused before it was read ('read' false) counts for no opcode.
 */
static void count_answer(struct fuse_server *s, const struct req *r, size_t n, bool read)
{
	struct fuse_out_header oh;

	if (read && r->h.opcode < FUSE_SERVER_OPCODES)
		s->stats.by_opcode[r->h.opcode]++;
	if (n >= sizeof(oh) &&
	    fuse_iov_copy_from(r->out, r->nout, 0, &oh, sizeof(oh)) == sizeof(oh) && oh.error)
		s->stats.errors++;
}

static size_t handle(struct fuse_server *s, const struct iovec *in, int nin,
                     const struct iovec *out, int nout, bool nowait)
{
	struct req r = {.in = in, .nin = nin, .out = out, .nout = nout, .nowait = nowait};
	size_t in_len = fuse_iov_len(in, nin), n;

	r.out_cap = fuse_iov_len(out, nout);
	pthread_mutex_lock(&s->lock);
	s->stats.requests++;
	if (fuse_iov_copy_from(in, nin, 0, &r.h, sizeof(r.h)) < sizeof(r.h)) {
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
		n = fuse_reply_err(&r, EINVAL);
	} else {
		/*
		 * Safe to move: a READ or WRITE on another thread, the lock
		 * dropped for its copy, has read its arguments already.
		 */
		if (body + 1 > s->buf_size) {
			s->buf_size = MAX_REQUEST + 1;
			s->buf = g_realloc(s->buf, s->buf_size);
		}
		fuse_iov_copy_from(in, nin, 0, s->buf, body);
		s->buf[body] = '\0'; /* a name at the very end still ends */
		r.arg = s->buf + sizeof(r.h);
		r.arglen = body - sizeof(r.h);
		n = fuse_dispatch(s, &r);
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
	else if ((e = fuse_stat_fd(fd, &st)))
		why = g_strerror(e);
	else if (fuse_kernel_fs(fd))
		why = "a kernel file system (procfs, sysfs, ...) is never shared";
	if (why) {
		husk_fail(err, HUSK_EXIT_USAGE, "--share: %s: %s", dir, why);
		close(fd);
		if (s->proc_fd >= 0)
			close(s->proc_fd);
		g_free(s);
		return NULL;
	}
	fuse_file_budget_from_rlimit();
	pthread_mutex_init(&s->lock, NULL);
	s->read_only = opt->read_only;
	s->submounts = opt->submounts;
	s->cross_mounts = opt->cross_mounts;
	s->max_inodes = opt->max_inodes ? opt->max_inodes : FUSE_SERVER_MAX_INODES;
	s->max_handles = opt->max_handles ? opt->max_handles : FUSE_SERVER_MAX_HANDLES;
	s->hidden = fuse_hidden_files(fd, opt->hidden);
	s->no_xattr = opt->no_xattr;
	s->uid_map = opt->uid_map;
	s->gid_map = opt->gid_map;
	s->as_root = geteuid() == 0;
	s->inodes = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	s->by_file = g_hash_table_new(fuse_file_id_hash, fuse_file_id_equal);
	s->handles = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, fuse_unref_handle);
	s->next_nodeid = FUSE_ROOT_ID;
	s->next_fh = 1;
	s->root = g_new0(struct inode, 1);
	*s->root = (struct inode){.nodeid = s->next_nodeid++,
	                          .fd = fd,
	                          .id = {st.st_dev, st.st_ino},
	                          .type = S_IFDIR,
	                          .mnt = fuse_mount_of(fd, &st),
	                          .nlookup = 1};
	g_hash_table_insert(s->inodes, &s->root->nodeid, s->root);
	g_hash_table_insert(s->by_file, &s->root->id, s->root);
	s->buf_size = BUF_START;
	s->buf = g_malloc(s->buf_size);
	return s;
}

void fuse_server_free(struct fuse_server *s)
{
	if (!s)
		return;
	fuse_forget_all(s);
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
