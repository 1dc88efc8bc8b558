/* SPDX-License-Identifier: MIT */
/*
 * Inside the FUSE server (fuse_server.h), shared by its parts:
 *   fuse_server.c   the server's life, a request's way in, the statistics
 *   fuse_request.c  reading a request's arguments, writing its reply
 *   fuse_inodes.c   the inodes and handles the guest holds, and what a
 *                   share may show of the host (admission, mounts, budgets)
 *   fuse_ops.c      the operations, and the dispatch of opcodes to them
 *   fuse_xattr.c    extended attributes, with trusted.* mapped
 */
#ifndef HUSK_FUSE_INTERNAL_H
#define HUSK_FUSE_INTERNAL_H

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/fs/fuse_server.h"

#define MIN_MINOR   31 /* Linux 5.4, the first with virtio-fs */
#define TIMEOUT_S   1  /* how long the guest may trust names and attributes */
#define MAX_REQUEST (FUSE_SERVER_MAX_WRITE + 4096)
#define MAX_PAGES   (FUSE_SERVER_MAX_WRITE / 4096)
/*
 * The request buffer's first size: every request but a rare long SETXATTR
 * or WRITE-sized oddity fits, so a share (and each fuzzed input's server)
 * does not start by taking a megabyte.
 */
#define BUF_START  (16 * 1024)
#define XATTR_MAX  65536
#define DIRENT_BUF 32768 /* host directory entries read at once, for one READDIR */

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
	size_t buf_size;  /* BUF_START, or MAX_REQUEST + 1 once one needed more */
	struct fuse_server_stats stats;
};

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

/* fuse_request.c */
size_t fuse_iov_len(const struct iovec *iov, int n);
size_t fuse_iov_copy_from(const struct iovec *iov, int n, size_t off, void *dst, size_t len);
size_t fuse_iov_copy_to(const struct iovec *iov, int n, size_t off, const void *src, size_t len);
int fuse_iov_slice(const struct iovec *iov, int n, size_t off, size_t len, struct iovec *dst,
                   int max);
size_t fuse_reply(struct req *r, int error, const void *data, size_t len);
size_t fuse_reply_err(struct req *r, int error);
const void *fuse_arg(struct req *r, size_t len);
int fuse_take_name(struct req *r, size_t off, const char **name, size_t *next);
void fuse_fill_entry(const struct fuse_server *s, struct fuse_entry_out *e, const struct inode *ino,
                     const struct stat *st);
size_t fuse_reply_entry(const struct fuse_server *s, struct req *r, const struct inode *ino,
                        const struct stat *st);
size_t fuse_reply_attr(const struct fuse_server *s, struct req *r, const struct inode *ino,
                       const struct stat *st);

/* fuse_inodes.c */
bool fuse_room_for(long files);
bool fuse_room_for_inode(const struct fuse_server *s);
bool fuse_room_for_handle(const struct fuse_server *s);
guint fuse_file_id_hash(gconstpointer key);
gboolean fuse_file_id_equal(gconstpointer a, gconstpointer b);
struct inode *fuse_find_inode(struct fuse_server *s, uint64_t nodeid);
void fuse_forget(struct fuse_server *s, uint64_t nodeid, uint64_t nlookup);
int fuse_stat_fd(int fd, struct stat *st);
uint64_t fuse_mount_of(int fd, const struct stat *st);
bool fuse_kernel_fs(int fd);
int fuse_lookup(struct fuse_server *s, struct inode *dir, const char *name, struct inode **out,
                struct stat *st);
struct handle *fuse_find_handle(struct fuse_server *s, uint64_t fh);
uint64_t fuse_add_handle(struct fuse_server *s, const struct inode *ino, int fd, bool dir);
void fuse_unref_handle(gpointer data);
void fuse_fd_name(int fd, char *buf, size_t len);
int fuse_reopen_path(struct fuse_server *s, int path_fd, mode_t type, int flags);
int fuse_reopen(struct fuse_server *s, struct inode *ino, int flags);
void fuse_proc_path(const struct inode *ino, char *buf, size_t len);
struct handle *fuse_file_handle(struct fuse_server *s, uint64_t fh);
void fuse_forget_all(struct fuse_server *s);
void fuse_file_budget_from_rlimit(void);
GArray *fuse_hidden_files(int root, const char *const *paths);

/* fuse_ops.c */
size_t fuse_dispatch(struct fuse_server *s, struct req *r);

/* fuse_xattr.c */
size_t fuse_do_setxattr(struct fuse_server *s, struct req *r, struct inode *ino);
size_t fuse_do_getxattr(struct fuse_server *s, struct req *r, struct inode *ino, bool list);
size_t fuse_do_removexattr(struct fuse_server *s, struct req *r, struct inode *ino);

#endif
