/* SPDX-License-Identifier: MIT */
/*
 * An in-process FUSE server for virtio-fs: it answers the guest's FUSE
 * requests on one shared host directory. Every host object is reached from
 * the directory through file descriptors, one name at a time, never
 * following a symlink, so the guest cannot reach outside it: not with "..",
 * a planted symlink, a rename or link, or a node id it makes up.
 */
#ifndef HUSK_FUSE_SERVER_H
#define HUSK_FUSE_SERVER_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define FUSE_SERVER_MAX_WRITE (1024 * 1024)
#define FUSE_SERVER_MAX_SEGS  1024 /* buffers in one request's data, as a virtqueue chain */

/*
 * A share's default budget: inodes the guest holds (each an O_PATH
 * descriptor, its host inode and dentry pinned: ~1 KiB of host kernel
 * memory) and files it has open. Past it the guest gets ENFILE.
 */
#define FUSE_SERVER_MAX_INODES  131072
#define FUSE_SERVER_MAX_HANDLES 16384

#define FUSE_SERVER_OPCODES 64 /* opcodes counted one by one; CUSE's and later ones are not */

struct fuse_server_stats {
	uint64_t requests, errors, bad_requests;
	uint64_t by_opcode[FUSE_SERVER_OPCODES]; /* requests answered, by opcode */
};

/*
 * uid=HOST:GUEST (or gid=): the guest sees host owner HOST as GUEST and
 * GUEST as HOST, and a chown to one stores the other. A swap, so that no
 * two host owners look alike in the guest and a chown back restores what
 * was there. Other ids pass as they are.
 */
struct fuse_id_map {
	bool on;
	uint32_t host, guest;
};

/* The id 'id' seen from the other side (the map is its own inverse). */
static inline uint32_t map_id(const struct fuse_id_map *m, uint32_t id)
{
	if (!m->on || m->host == m->guest)
		return id;
	return id == m->host ? m->guest : id == m->guest ? m->host : id;
}

struct fuse_server_options {
	bool read_only;
	/*
	 * A directory where another host file system is mounted is a
	 * submount in the guest (FUSE_SUBMOUNTS), with its own st_dev; off,
	 * the guest sees one file system, as virtiofsd does unless told
	 * announce_submounts (a guest cannot mount over a submount).
	 */
	bool submounts;
	/*
	 * Whether other host mounts under the share are served as part of it.
	 * Without this or submounts, each mount point is sealed: an empty
	 * directory, or a file that does not open. Kernel file systems
	 * (procfs, sysfs, debugfs, cgroupfs, ...) are sealed whatever is asked.
	 */
	bool cross_mounts;
	/*
	 * Paths under the share (NULL-terminated) the guest does not see, by
	 * identity, hard links included: a file is missing, a directory empty.
	 */
	const char *const *hidden;
	unsigned int max_inodes, max_handles; /* 0: the defaults above */
	/*
	 * Extended attribute requests answer ENOSYS, as virtiofsd's default
	 * no_xattr does: the guest stops sending them, and with them the
	 * security.capability queries before a file's first write and before
	 * a chown (two of the thirteen round trips per file busybox tar extracts).
	 */
	bool no_xattr;
	struct fuse_id_map uid_map, gid_map;
};

/* Serves 'dir'. */
struct fuse_server *fuse_server_new(const char *dir, const struct fuse_server_options *opt,
                                    GError **err);
void fuse_server_free(struct fuse_server *s);

/*
 * Answers one request: 'in' holds it (header, arguments, write data), the
 * reply goes to 'out'. Returns the bytes written to 'out' (0 when the
 * request takes no reply, such as FORGET). Malformed requests get an error
 * reply when they can be answered at all; nothing a guest sends crashes.
 */
size_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, int nin,
                          const struct iovec *out, int nout);

/*
 * Like fuse_server_handle, but false, with nothing done, for a request that
 * would wait for a disk (a READ of data the page cache lacks): hand that to
 * fuse_server_handle on a thread that may wait. Both may run on several
 * threads at once; file data is copied without the server's lock.
 */
bool fuse_server_try_handle(struct fuse_server *s, const struct iovec *in, int nin,
                            const struct iovec *out, int nout, size_t *n);

/* A copy of the counts so far; from any thread. */
/*
 * On a thread that serves the share, once: the kernel (Landlock) confines
 * its file opens to the share's directory, read-only for a read-only share.
 * Where the kernel cannot, it says so in a debug message and goes on.
 */
void fuse_server_confine_thread(struct fuse_server *s);

void fuse_server_get_stats(struct fuse_server *s, struct fuse_server_stats *out);
/* "LOOKUP", or NULL for an opcode husk does not know. */
const char *fuse_opcode_name(uint32_t opcode);

/*
 * How many host descriptors (inodes the guests hold, files they have open)
 * all shares together may keep; past it a guest gets ENFILE. Each new
 * server sets it from RLIMIT_NOFILE, keeping some for the rest of husk.
 */
void fuse_server_set_file_budget(long files);

#endif
