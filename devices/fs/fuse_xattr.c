// SPDX-License-Identifier: MIT
#include "devices/fs/fuse_internal.h"

#include <stdio.h>
#include <sys/xattr.h>

/* Extended attributes, through /proc/self/fd: not on symlinks (Linux has none worth it). */
static int xattr_path(struct inode *ino, char *path, size_t len)
{
	if (ino->type == S_IFLNK)
		return ENOTSUP;
	fuse_proc_path(ino, path, len);
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

size_t fuse_do_setxattr(struct fuse_server *s, struct req *r, struct inode *ino)
{
	const struct fuse_setxattr_in *in = fuse_arg(r, 8); /* size, flags: without SETXATTR_EXT */
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
	return fuse_reply_err(r, e);
}

/* GETXATTR and LISTXATTR: size 0 asks how big; otherwise the bytes, or ERANGE. */
static size_t reply_xattr(struct req *r, uint32_t size, ssize_t n, const void *value)
{
	if (n < 0)
		return fuse_reply_err(r, errno);
	if (size == 0) {
		struct fuse_getxattr_out out = {.size = (uint32_t)n};
		return fuse_reply(r, 0, &out, sizeof(out));
	}
	return fuse_reply(r, 0, value, (size_t)n);
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

size_t fuse_do_getxattr(struct fuse_server *s, struct req *r, struct inode *ino, bool list)
{
	const struct fuse_getxattr_in *in = fuse_arg(r, sizeof(*in));
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
		return fuse_reply_err(r, e);
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

size_t fuse_do_removexattr(struct fuse_server *s, struct req *r, struct inode *ino)
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
	return fuse_reply_err(r, e);
}
