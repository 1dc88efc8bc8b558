// SPDX-License-Identifier: MIT
#include "devices/fs/fuse_internal.h"

/* ---- scatter lists ------------------------------------------------------- */

size_t fuse_iov_len(const struct iovec *iov, int n)
{
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	return len;
}

/* Copies between a flat buffer and the part of 'iov' from 'off' on, either way. */
static size_t iov_copy(const struct iovec *iov, int n, size_t off, uint8_t *buf, size_t len,
                       bool into_iov)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = MIN(len - done, iov[i].iov_len - off);
		uint8_t *at = (uint8_t *)iov[i].iov_base + off;
		if (into_iov)
			memcpy(at, buf + done, c);
		else
			memcpy(buf + done, at, c);
		done += c;
		off = 0;
	}
	return done;
}

size_t fuse_iov_copy_from(const struct iovec *iov, int n, size_t off, void *dst, size_t len)
{
	return iov_copy(iov, n, off, dst, len, false);
}

size_t fuse_iov_copy_to(const struct iovec *iov, int n, size_t off, const void *src, size_t len)
{
	/* Only read: the flag keeps memcpy's direction. */
	return iov_copy(iov, n, off, (uint8_t *)src, len, true);
}

/* The part of 'iov' from 'off' on, at most 'len' bytes, as a new list in 'dst'. */
int fuse_iov_slice(const struct iovec *iov, int n, size_t off, size_t len, struct iovec *dst,
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

size_t fuse_reply(struct req *r, int error, const void *data, size_t len)
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
	fuse_iov_copy_to(r->out, r->nout, 0, &oh, sizeof(oh));
	if (len)
		fuse_iov_copy_to(r->out, r->nout, sizeof(oh), data, len);
	return oh.len;
}

size_t fuse_reply_err(struct req *r, int error)
{
	return fuse_reply(r, error, NULL, 0);
}

/* ---- arguments ------------------------------------------------------------- */

const void *fuse_arg(struct req *r, size_t len)
{
	return r->arglen >= len ? r->arg : NULL;
}

/*
 * A name from the request, after 'off' bytes of arguments: NUL-terminated
 * inside the request, one path component, not "." or "..". *next is where
 * the following name starts.
 */
int fuse_take_name(struct req *r, size_t off, const char **name, size_t *next)
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

void fuse_fill_entry(const struct fuse_server *s, struct fuse_entry_out *e, const struct inode *ino,
                     const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = ino->nodeid;
	e->entry_valid = e->attr_valid = TIMEOUT_S;
	fill_attr(s, &e->attr, st, ino);
}

size_t fuse_reply_entry(const struct fuse_server *s, struct req *r, const struct inode *ino,
                        const struct stat *st)
{
	struct fuse_entry_out e;

	fuse_fill_entry(s, &e, ino, st);
	return fuse_reply(r, 0, &e, sizeof(e));
}

size_t fuse_reply_attr(const struct fuse_server *s, struct req *r, const struct inode *ino,
                       const struct stat *st)
{
	struct fuse_attr_out a = {.attr_valid = TIMEOUT_S};

	fill_attr(s, &a.attr, st, ino);
	return fuse_reply(r, 0, &a, sizeof(a));
}
