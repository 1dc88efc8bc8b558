// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "devices/fs/fuse_server.h"
#include "devices/test_rss.h"

struct fixture {
	char *top;   /* holds share/ and outside */
	char *share; /* what the server serves */
	struct fuse_server *s;
	uint8_t in[8192];
	uint8_t out[65536];
	size_t out_cap;
};

static struct fuse_out_header *oh(struct fixture *f)
{
	return (struct fuse_out_header *)f->out;
}

static void *payload(struct fixture *f)
{
	return f->out + sizeof(struct fuse_out_header);
}

/* A request: header, fixed arguments, then up to two NUL-terminated names. */
static size_t build(struct fixture *f, uint32_t opcode, uint64_t nodeid, const void *arg,
                    size_t arglen, const char *n1, const char *n2)
{
	struct fuse_in_header h = {.opcode = opcode, .unique = 77, .nodeid = nodeid};
	size_t len = sizeof(h);

	if (arglen)
		memcpy(f->in + len, arg, arglen);
	len += arglen;
	if (n1) {
		memcpy(f->in + len, n1, strlen(n1) + 1);
		len += strlen(n1) + 1;
	}
	if (n2) {
		memcpy(f->in + len, n2, strlen(n2) + 1);
		len += strlen(n2) + 1;
	}
	h.len = (uint32_t)len;
	memcpy(f->in, &h, sizeof(h));
	return len;
}

static size_t send_req(struct fixture *f, size_t len)
{
	struct iovec in = {f->in, len}, out = {f->out, f->out_cap};

	memset(f->out, 0xa5, sizeof(f->out));
	return fuse_server_handle(f->s, &in, 1, &out, 1);
}

/* Sends a request and returns its error (0 or a negative errno). */
static int call(struct fixture *f, uint32_t opcode, uint64_t nodeid, const void *arg, size_t arglen,
                const char *n1, const char *n2)
{
	size_t n = send_req(f, build(f, opcode, nodeid, arg, arglen, n1, n2));

	g_assert_cmpuint(n, >=, sizeof(struct fuse_out_header));
	g_assert_cmpuint(oh(f)->len, ==, n);
	g_assert_cmpuint(oh(f)->unique, ==, 77);
	return oh(f)->error;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_free(path);
}

static const struct fuse_server_options read_only_share = {.read_only = true};
static const struct fuse_server_options no_xattr_share = {.no_xattr = true};
static struct fuse_server_options id_map_share; /* uid=OURS:4321,gid=OURS:4322, from main() */

/* 'opt': how the share is served (NULL: as --share DIR:TAG serves it). */
static void setup(struct fixture *f, gconstpointer opt)
{
	f->top = g_dir_make_tmp("husk-fuse-XXXXXX", NULL);
	g_assert_nonnull(f->top);
	f->share = g_build_filename(f->top, "share", NULL);
	g_assert_cmpint(g_mkdir(f->share, 0755), ==, 0);
	write_file(f->top, "outside", "secret");
	write_file(f->share, "hello", "hello, guest\n");
	f->s = fuse_server_new(f->share, opt ? opt : &(struct fuse_server_options){0}, NULL);
	g_assert_nonnull(f->s);
	f->out_cap = sizeof(f->out);
	struct fuse_init_in init = {.major = 7,
	                            .minor = 38,
	                            .max_readahead = 65536,
	                            .flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS |
	                                     FUSE_MAX_PAGES | FUSE_HANDLE_KILLPRIV_V2};
	g_assert_cmpint(call(f, FUSE_INIT, 0, &init, sizeof(init), NULL, NULL), ==, 0);
	struct fuse_init_out *out = payload(f);
	g_assert_cmpuint(out->major, ==, 7);
	g_assert_cmpuint(out->minor, ==, 38);
	g_assert_cmpuint(out->max_write, ==, FUSE_SERVER_MAX_WRITE);
	g_assert_true(out->flags & FUSE_DO_READDIRPLUS);
	g_assert_true(out->flags & FUSE_HANDLE_KILLPRIV_V2);
}

static void teardown(struct fixture *f, gconstpointer data)
{
	char *cmd;

	fuse_server_free(f->s);
	cmd = g_strdup_printf("rm -rf '%s'", f->top);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(cmd);
	g_free(f->share);
	g_free(f->top);
}

static uint64_t lookup(struct fixture *f, uint64_t dir, const char *name, int *err)
{
	*err = call(f, FUSE_LOOKUP, dir, NULL, 0, name, NULL);
	if (*err)
		return 0;
	struct fuse_entry_out *e = payload(f);
	if (e->nodeid == 0) {
		/* A missing name: the guest may remember that, for as long as a found one. */
		g_assert_cmpuint(e->entry_valid, >, 0);
		*err = -ENOENT;
	}
	return e->nodeid;
}

static uint64_t open_file(struct fixture *f, uint64_t node, uint32_t flags, int *err)
{
	struct fuse_open_in in = {.flags = flags};

	*err = call(f, FUSE_OPEN, node, &in, sizeof(in), NULL, NULL);
	if (*err)
		return 0;
	/* FLUSH would do nothing: the guest is told not to send it. */
	g_assert_true(((struct fuse_open_out *)payload(f))->open_flags & FOPEN_NOFLUSH);
	return ((struct fuse_open_out *)payload(f))->fh;
}

/* ---- the decoder ----------------------------------------------------------------- */

static void test_truncated_header(struct fixture *f, gconstpointer data)
{
	struct iovec in = {f->in, 20}, out = {f->out, f->out_cap};

	build(f, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, NULL, NULL);
	g_assert_cmpuint(fuse_server_handle(f->s, &in, 1, &out, 1), ==, 0);
}

static void test_length_that_lies(struct fixture *f, gconstpointer data)
{
	size_t len = build(f, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "hello", NULL);
	struct fuse_in_header *h = (struct fuse_in_header *)f->in;

	h->len = 4096; /* more than was sent */
	g_assert_cmpuint(send_req(f, len), ==, sizeof(struct fuse_out_header));
	g_assert_cmpint(oh(f)->error, ==, -EINVAL);
	h->len = 10; /* less than a header */
	send_req(f, len);
	g_assert_cmpint(oh(f)->error, ==, -EINVAL);
}

static void test_no_room_for_reply(struct fixture *f, gconstpointer data)
{
	f->out_cap = 8; /* not even an out header fits */
	g_assert_cmpuint(send_req(f, build(f, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, NULL, NULL)), ==,
	                 0);
}

static void test_unknown_opcode(struct fixture *f, gconstpointer data)
{
	g_assert_cmpint(call(f, 9999, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, -ENOSYS);
	g_assert_cmpint(call(f, FUSE_IOCTL, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, -ENOSYS);
	/* Not a node operation: ENOSYS whatever the node id says. */
	g_assert_cmpint(call(f, 9999, 123456, NULL, 0, NULL, NULL), ==, -ENOSYS);
	g_assert_cmpint(call(f, FUSE_GETATTR, 123456, NULL, 0, NULL, NULL), ==, -ESTALE);
}

/* Requests are counted by opcode once answered; malformed ones apart, by no opcode. */
static void test_counts(struct fixture *f, gconstpointer data)
{
	struct fuse_server_stats before, after;

	fuse_server_get_stats(f->s, &before);
	g_assert_cmpint(call(f, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, 0);
	g_assert_cmpint(call(f, FUSE_IOCTL, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, -ENOSYS);
	g_assert_cmpint(call(f, 9999, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, -ENOSYS);
	size_t len = build(f, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "hello", NULL);
	((struct fuse_in_header *)f->in)->len = 4096; /* a length that lies */
	send_req(f, len);
	fuse_server_get_stats(f->s, &after);
	g_assert_cmpuint(after.requests - before.requests, ==, 4);
	g_assert_cmpuint(after.errors - before.errors, ==, 3);
	g_assert_cmpuint(after.bad_requests - before.bad_requests, ==, 1);
	g_assert_cmpuint(after.by_opcode[FUSE_GETATTR] - before.by_opcode[FUSE_GETATTR], ==, 1);
	g_assert_cmpuint(after.by_opcode[FUSE_IOCTL] - before.by_opcode[FUSE_IOCTL], ==, 1);
	g_assert_cmpuint(after.by_opcode[FUSE_LOOKUP], ==, before.by_opcode[FUSE_LOOKUP]);
	g_assert_cmpstr(fuse_opcode_name(FUSE_LOOKUP), ==, "LOOKUP");
	g_assert_cmpstr(fuse_opcode_name(FUSE_TMPFILE), ==, "TMPFILE");
	g_assert_null(fuse_opcode_name(7)); /* no opcode 7 */
	g_assert_null(fuse_opcode_name(9999));
}

/* Before INIT and after DESTROY the server answers nothing but INIT. */
static void test_requests_need_init(struct fixture *f, gconstpointer data)
{
	g_assert_cmpint(call(f, FUSE_DESTROY, 0, NULL, 0, NULL, NULL), ==, 0);
	g_assert_cmpint(call(f, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, -EIO);
	g_assert_cmpint(call(f, FUSE_STATFS, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, -EIO);
	struct fuse_init_in init = {.major = 7, .minor = 38};
	g_assert_cmpint(call(f, FUSE_INIT, 0, &init, sizeof(init), NULL, NULL), ==, 0);
	g_assert_cmpint(call(f, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, 0);
}

static void test_bad_names(struct fixture *f, gconstpointer data)
{
	int err;

	lookup(f, FUSE_ROOT_ID, "a/b", &err);
	g_assert_cmpint(err, ==, -EINVAL);
	lookup(f, FUSE_ROOT_ID, "", &err);
	g_assert_cmpint(err, ==, -EINVAL);
	lookup(f, FUSE_ROOT_ID, ".", &err);
	g_assert_cmpint(err, ==, -EINVAL);
	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	lookup(f, FUSE_ROOT_ID, longname, &err);
	g_assert_cmpint(err, ==, -ENAMETOOLONG);
	/* A name without its NUL inside the request. */
	size_t len = build(f, FUSE_LOOKUP, FUSE_ROOT_ID, "hello", 5, NULL, NULL);
	send_req(f, len);
	g_assert_cmpint(oh(f)->error, ==, -EINVAL);
	/* A name that stops early at a NUL is just that name: "hel" does not exist. */
	len = build(f, FUSE_LOOKUP, FUSE_ROOT_ID, "hel\0lo", 7, NULL, NULL);
	send_req(f, len);
	g_assert_cmpint(oh(f)->error, ==, 0);
	g_assert_cmpuint(((struct fuse_entry_out *)payload(f))->nodeid, ==, 0);
}

static void test_made_up_nodes_and_handles(struct fixture *f, gconstpointer data)
{
	struct fuse_read_in rd = {.fh = 12345, .size = 10};
	struct fuse_rename_in rn = {.newdir = 999};

	g_assert_cmpint(call(f, FUSE_GETATTR, 424242, NULL, 0, NULL, NULL), ==, -ESTALE);
	g_assert_cmpint(call(f, FUSE_READ, FUSE_ROOT_ID, &rd, sizeof(rd), NULL, NULL), ==, -EBADF);
	g_assert_cmpint(call(f, FUSE_RENAME, FUSE_ROOT_ID, &rn, sizeof(rn), "hello", "moved"), ==,
	                -ESTALE);
	/* BATCH_FORGET with a count far beyond what it carries: no crash, no reply. */
	struct {
		struct fuse_batch_forget_in in;
		struct fuse_forget_one one;
	} bf = {{.count = 1000000}, {.nodeid = FUSE_ROOT_ID, .nlookup = 5}};
	g_assert_cmpuint(send_req(f, build(f, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, NULL)),
	                 ==, 0);
	/* The root is never forgotten. */
	g_assert_cmpint(call(f, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, 0);
}

/* ---- the file system ------------------------------------------------------------------ */

#define READERS    4
#define READS_EACH 300

struct reader {
	struct fuse_server *s;
	uint64_t node, fh;
	int bad; /* replies that were not the file's 13 bytes */
};

/* One READ, with buffers of its own: what a pool thread does. */
static gpointer read_many(gpointer data)
{
	struct reader *rd = data;

	for (int i = 0; i < READS_EACH; i++) {
		struct {
			struct fuse_in_header h;
			struct fuse_read_in r;
		} req = {.h = {.len = sizeof(req),
		               .opcode = FUSE_READ,
		               .unique = (uint64_t)i,
		               .nodeid = rd->node},
		         .r = {.fh = rd->fh, .size = 100}};
		uint8_t out[256];
		struct iovec in = {&req, sizeof(req)}, o = {out, sizeof(out)};
		size_t n = fuse_server_handle(rd->s, &in, 1, &o, 1);
		if (n != sizeof(struct fuse_out_header) + 13 ||
		    memcmp(out + sizeof(struct fuse_out_header), "hello, guest\n", 13) != 0)
			rd->bad++;
	}
	return NULL;
}

/*
 * Data requests run on several threads at once, beside other requests on
 * the queue's thread: every answer is still right.
 */
static void test_concurrent_reads(struct fixture *f, gconstpointer data)
{
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);
	uint64_t fh = open_file(f, node, O_RDONLY, &err);
	struct reader rd[READERS];
	GThread *th[READERS];

	g_assert_cmpint(err, ==, 0);
	for (int i = 0; i < READERS; i++) {
		rd[i] = (struct reader){.s = f->s, .node = node, .fh = fh};
		th[i] = g_thread_new("reader", read_many, &rd[i]);
	}
	for (int i = 0; i < READS_EACH; i++)
		g_assert_cmpint(call(f, FUSE_GETATTR, node, NULL, 0, NULL, NULL), ==, 0);
	for (int i = 0; i < READERS; i++) {
		g_thread_join(th[i]);
		g_assert_cmpint(rd[i].bad, ==, 0);
	}
}

/* A READ of cached data is answered at once; so is everything else. */
static void test_try_handle(struct fixture *f, gconstpointer data)
{
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);
	uint64_t fh = open_file(f, node, O_RDONLY, &err);
	struct fuse_read_in rd = {.fh = fh, .size = 100};
	size_t len = build(f, FUSE_READ, node, &rd, sizeof(rd), NULL, NULL), n;
	struct iovec in = {f->in, len}, out = {f->out, f->out_cap};

	g_assert_cmpint(err, ==, 0);
	g_assert_true(fuse_server_try_handle(f->s, &in, 1, &out, 1, &n));
	g_assert_cmpuint(n, ==, sizeof(struct fuse_out_header) + 13);
	g_assert_true(memcmp(payload(f), "hello, guest\n", 13) == 0);
	in.iov_len = build(f, FUSE_GETATTR, node, NULL, 0, NULL, NULL);
	g_assert_true(fuse_server_try_handle(f->s, &in, 1, &out, 1, &n));
	g_assert_cmpint(oh(f)->error, ==, 0);
}

static void test_read_write(struct fixture *f, gconstpointer data)
{
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);
	g_assert_cmpint(err, ==, 0);
	uint64_t fh = open_file(f, node, O_RDWR, &err);
	g_assert_cmpint(err, ==, 0);

	struct fuse_read_in rd = {.fh = fh, .size = 100};
	g_assert_cmpint(call(f, FUSE_READ, node, &rd, sizeof(rd), NULL, NULL), ==, 0);
	g_assert_cmpuint(oh(f)->len - sizeof(struct fuse_out_header), ==, 13);
	g_assert_true(memcmp(payload(f), "hello, guest\n", 13) == 0);

	/* WRITE: header, arguments, then the data, split over two buffers. */
	struct fuse_write_in wr = {.fh = fh, .offset = 13, .size = 6};
	size_t len = build(f, FUSE_WRITE, node, &wr, sizeof(wr), NULL, NULL);
	memcpy(f->in + len, "again\n", 6);
	((struct fuse_in_header *)f->in)->len = (uint32_t)(len + 6);
	struct iovec in[2] = {{f->in, len + 2}, {f->in + len + 2, 4}}, out = {f->out, f->out_cap};
	fuse_server_handle(f->s, in, 2, &out, 1);
	g_assert_cmpint(oh(f)->error, ==, 0);
	g_assert_cmpuint(((struct fuse_write_out *)payload(f))->size, ==, 6);
	/* A write whose size is not the data that came with it. */
	wr.size = 600;
	len = build(f, FUSE_WRITE, node, &wr, sizeof(wr), NULL, NULL);
	memcpy(f->in + len, "again\n", 6);
	((struct fuse_in_header *)f->in)->len = (uint32_t)(len + 6);
	send_req(f, len + 6);
	g_assert_cmpint(oh(f)->error, ==, -EINVAL);

	char *path = g_build_filename(f->share, "hello", NULL), *text;
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "hello, guest\nagain\n");
	g_free(text);
	g_free(path);
	struct fuse_release_in rel = {.fh = fh};
	g_assert_cmpint(call(f, FUSE_RELEASE, node, &rel, sizeof(rel), NULL, NULL), ==, 0);
	g_assert_cmpint(call(f, FUSE_RELEASE, node, &rel, sizeof(rel), NULL, NULL), ==, -EBADF);
}

static void test_create_mkdir_rename_unlink(struct fixture *f, gconstpointer data)
{
	struct fuse_create_in cr = {.flags = O_WRONLY, .mode = 0640};
	struct fuse_mkdir_in mk = {.mode = 0755};
	struct fuse_rename_in rn;
	int err;

	g_assert_cmpint(call(f, FUSE_MKDIR, FUSE_ROOT_ID, &mk, sizeof(mk), "dir", NULL), ==, 0);
	uint64_t dir = ((struct fuse_entry_out *)payload(f))->nodeid;
	g_assert_cmpint(call(f, FUSE_CREATE, dir, &cr, sizeof(cr), "new", NULL), ==, 0);
	rn.newdir = FUSE_ROOT_ID;
	g_assert_cmpint(call(f, FUSE_RENAME, dir, &rn, sizeof(rn), "new", "renamed"), ==, 0);
	lookup(f, FUSE_ROOT_ID, "renamed", &err);
	g_assert_cmpint(err, ==, 0);
	g_assert_cmpint(call(f, FUSE_RMDIR, FUSE_ROOT_ID, NULL, 0, "dir", NULL), ==, 0);
	g_assert_cmpint(call(f, FUSE_UNLINK, FUSE_ROOT_ID, NULL, 0, "renamed", NULL), ==, 0);
	lookup(f, FUSE_ROOT_ID, "renamed", &err);
	g_assert_cmpint(err, ==, -ENOENT);
}

/*
 * A FIFO on the share: OPEN would block the server forever; it fails at
 * once. So does a CREATE of its name, which opens a file that is there.
 */
static void test_special_files_not_opened(struct fixture *f, gconstpointer data)
{
	struct fuse_create_in cr = {.flags = O_WRONLY | O_CREAT, .mode = S_IFREG | 0644};
	char *fifo = g_build_filename(f->share, "fifo", NULL);
	int err;

	g_assert_cmpint(mkfifo(fifo, 0644), ==, 0);
	uint64_t node = lookup(f, FUSE_ROOT_ID, "fifo", &err);
	g_assert_cmpint(err, ==, 0);
	open_file(f, node, O_RDONLY, &err);
	g_assert_cmpint(err, ==, -EACCES);
	struct fuse_setattr_in sa = {.valid = FATTR_SIZE};
	g_assert_cmpint(call(f, FUSE_SETATTR, node, &sa, sizeof(sa), NULL, NULL), ==, -EACCES);
	g_assert_cmpint(call(f, FUSE_CREATE, FUSE_ROOT_ID, &cr, sizeof(cr), "fifo", NULL), ==,
	                -EACCES);
	g_free(fifo);
}

/* What the host says of 'name' in the share. */
static GStatBuf host_stat(struct fixture *f, const char *name)
{
	char *path = g_build_filename(f->share, name, NULL);
	GStatBuf st;

	g_assert_cmpint(g_lstat(path, &st), ==, 0);
	g_free(path);
	return st;
}

static mode_t host_mode(struct fixture *f, const char *name)
{
	return host_stat(f, name).st_mode;
}

/*
 * When husk runs as root, the files the guest makes are root's: no setuid
 * or setgid bit and no device node may reach the host.
 */
static void test_no_privileges_as_root(struct fixture *f, gconstpointer data)
{
	if (geteuid() != 0) {
		g_test_skip("husk keeps setuid bits when it does not run as root");
		return;
	}
	struct fuse_create_in cr = {.flags = O_WRONLY, .mode = 04755};
	g_assert_cmpint(call(f, FUSE_CREATE, FUSE_ROOT_ID, &cr, sizeof(cr), "suid", NULL), ==, 0);
	g_assert_cmpint(host_mode(f, "suid") & 07777, ==, 0755);
	uint64_t node = ((struct fuse_entry_out *)payload(f))->nodeid;
	struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = 06755};
	g_assert_cmpint(call(f, FUSE_SETATTR, node, &sa, sizeof(sa), NULL, NULL), ==, 0);
	g_assert_cmpint(host_mode(f, "suid") & 07777, ==, 0755);
	/* setgid on a directory only picks the group of what is made in it */
	struct fuse_mkdir_in mk = {.mode = 0775};
	g_assert_cmpint(call(f, FUSE_MKDIR, FUSE_ROOT_ID, &mk, sizeof(mk), "sgid-dir", NULL), ==,
	                0);
	node = ((struct fuse_entry_out *)payload(f))->nodeid;
	sa.mode = 02775;
	g_assert_cmpint(call(f, FUSE_SETATTR, node, &sa, sizeof(sa), NULL, NULL), ==, 0);
	g_assert_cmpint(host_mode(f, "sgid-dir") & 07777, ==, 02775);
	struct fuse_mknod_in mn = {.mode = S_IFCHR | 0666, .rdev = makedev(1, 3)};
	g_assert_cmpint(call(f, FUSE_MKNOD, FUSE_ROOT_ID, &mn, sizeof(mn), "null", NULL), ==,
	                -EPERM);
	mn.mode = S_IFIFO | 0644;
	g_assert_cmpint(call(f, FUSE_MKNOD, FUSE_ROOT_ID, &mn, sizeof(mn), "fifo", NULL), ==, 0);
	g_assert_true(S_ISFIFO(host_mode(f, "fifo")));
}

static void set_host_mode(struct fixture *f, const char *name, mode_t mode)
{
	char *path = g_build_filename(f->share, name, NULL);

	g_assert_cmpint(chmod(path, mode), ==, 0);
	g_free(path);
}

/* WRITEs two bytes; returns the reply's error. */
static int write_data(struct fixture *f, uint64_t node, uint64_t fh, uint32_t write_flags)
{
	struct fuse_write_in wr = {.fh = fh, .size = 2, .write_flags = write_flags};
	size_t len = build(f, FUSE_WRITE, node, &wr, sizeof(wr), NULL, NULL);

	memcpy(f->in + len, "x\n", 2);
	((struct fuse_in_header *)f->in)->len = (uint32_t)(len + 2);
	send_req(f, len + 2);
	return oh(f)->error;
}

/*
 * A write or truncation drops setuid (and setgid, where the group may
 * execute), whatever the guest says (FUSE_HANDLE_KILLPRIV_V2 lets it say
 * that the writer had CAP_FSETID): a hostile guest must not rewrite a
 * setuid-root file in a share and keep the bit. As root husk drops them
 * itself; otherwise the host's kernel does.
 */
static void test_killpriv(struct fixture *f, gconstpointer data)
{
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);
	uint64_t fh = open_file(f, node, O_RDWR, &err);

	g_assert_cmpint(err, ==, 0);
	set_host_mode(f, "hello", 06755);
	g_assert_cmpint(write_data(f, node, fh, 0), ==, 0); /* the guest asks to keep them */
	g_assert_cmpint(host_mode(f, "hello") & 07777, ==, 0755);
	set_host_mode(f, "hello", 06755);
	g_assert_cmpint(write_data(f, node, fh, FUSE_WRITE_KILL_SUIDGID), ==, 0);
	g_assert_cmpint(host_mode(f, "hello") & 07777, ==, 0755);
	/* setgid without group execute marks locking, not privilege: kept */
	set_host_mode(f, "hello", 06745);
	g_assert_cmpint(write_data(f, node, fh, FUSE_WRITE_KILL_SUIDGID), ==, 0);
	g_assert_cmpint(host_mode(f, "hello") & 07777, ==, 02745);
	/* truncation */
	set_host_mode(f, "hello", 04755);
	struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 1};
	g_assert_cmpint(call(f, FUSE_SETATTR, node, &sa, sizeof(sa), NULL, NULL), ==, 0);
	g_assert_cmpint(host_mode(f, "hello") & 07777, ==, 0755);
	set_host_mode(f, "hello", 04755);
	sa.valid |= FATTR_KILL_SUIDGID;
	g_assert_cmpint(call(f, FUSE_SETATTR, node, &sa, sizeof(sa), NULL, NULL), ==, 0);
	g_assert_cmpint(host_mode(f, "hello") & 07777, ==, 0755);
	/* an open that truncates */
	set_host_mode(f, "hello", 04755);
	struct fuse_open_in op = {.flags = O_WRONLY | O_TRUNC};
	g_assert_cmpint(call(f, FUSE_OPEN, node, &op, sizeof(op), NULL, NULL), ==, 0);
	g_assert_cmpint(host_mode(f, "hello") & 07777, ==, 0755);
	/* and one that does not */
	set_host_mode(f, "hello", 04755);
	op.flags = O_WRONLY;
	g_assert_cmpint(call(f, FUSE_OPEN, node, &op, sizeof(op), NULL, NULL), ==, 0);
	g_assert_cmpint(host_mode(f, "hello") & 07777, ==, 04755);
	/* A write on a file open only for reading fails and drops nothing. */
	op.flags = O_RDONLY;
	g_assert_cmpint(call(f, FUSE_OPEN, node, &op, sizeof(op), NULL, NULL), ==, 0);
	uint64_t ro_fh = ((struct fuse_open_out *)payload(f))->fh;
	g_assert_cmpint(write_data(f, node, ro_fh, FUSE_WRITE_KILL_SUIDGID), ==, -EBADF);
	g_assert_cmpint(write_data(f, node, ro_fh, 0), ==, -EBADF);
	g_assert_cmpint(host_mode(f, "hello") & 07777, ==, 04755);
	/* CREATE with O_TRUNC over a file that was there drops them, */
	struct fuse_create_in cr = {
	    .flags = O_WRONLY | O_TRUNC, .mode = 0755, .open_flags = FUSE_OPEN_KILL_SUIDGID};
	g_assert_cmpint(call(f, FUSE_CREATE, FUSE_ROOT_ID, &cr, sizeof(cr), "hello", NULL), ==, 0);
	g_assert_cmpint(host_mode(f, "hello") & 07777, ==, 0755);
	/* but a file it makes keeps the mode asked for (as root husk drops them anyway). */
	if (geteuid() != 0) {
		cr.mode = 04755;
		g_assert_cmpint(call(f, FUSE_CREATE, FUSE_ROOT_ID, &cr, sizeof(cr), "new", NULL),
		                ==, 0);
		g_assert_cmpint(host_mode(f, "new") & 07777, ==, 04755);
	}
}

/* A guest cannot make us hold more descriptors than the budget: ENFILE, then room again. */
static void test_file_budget(struct fixture *f, gconstpointer data)
{
	int err;

	write_file(f->share, "a", "a");
	write_file(f->share, "b", "b");
	fuse_server_set_file_budget(2);
	uint64_t hello = lookup(f, FUSE_ROOT_ID, "hello", &err);
	g_assert_cmpint(err, ==, 0);
	uint64_t fh = open_file(f, hello, O_RDONLY, &err);
	g_assert_cmpint(err, ==, 0);
	lookup(f, FUSE_ROOT_ID, "a", &err);
	g_assert_cmpint(err, ==, -ENFILE);
	open_file(f, hello, O_RDONLY, &err);
	g_assert_cmpint(err, ==, -ENFILE);
	struct fuse_create_in cr = {.flags = O_WRONLY, .mode = 0644};
	g_assert_cmpint(call(f, FUSE_CREATE, FUSE_ROOT_ID, &cr, sizeof(cr), "new", NULL), ==,
	                -ENFILE);
	/* A name we hold already costs nothing more. */
	g_assert_cmpuint(lookup(f, FUSE_ROOT_ID, "hello", &err), ==, hello);
	g_assert_cmpint(err, ==, 0);
	/* Closing a file makes room. */
	struct fuse_release_in rel = {.fh = fh};
	g_assert_cmpint(call(f, FUSE_RELEASE, hello, &rel, sizeof(rel), NULL, NULL), ==, 0);
	lookup(f, FUSE_ROOT_ID, "a", &err);
	g_assert_cmpint(err, ==, 0);
	lookup(f, FUSE_ROOT_ID, "b", &err);
	g_assert_cmpint(err, ==, -ENFILE);
	/* And so does forgetting an inode. */
	struct fuse_forget_in fg = {.nlookup = 2};
	g_assert_cmpuint(send_req(f, build(f, FUSE_FORGET, hello, &fg, sizeof(fg), NULL, NULL)), ==,
	                 0); /* no reply */
	lookup(f, FUSE_ROOT_ID, "b", &err);
	g_assert_cmpint(err, ==, 0);
}

/* SETATTR's handle must be one opened from the node it names: no truncating another file. */
static void test_setattr_foreign_handle(struct fixture *f, gconstpointer data)
{
	int err;

	write_file(f->share, "other", "keep me");
	uint64_t hello = lookup(f, FUSE_ROOT_ID, "hello", &err);
	uint64_t other = lookup(f, FUSE_ROOT_ID, "other", &err);
	g_assert_cmpint(err, ==, 0);
	uint64_t fh = open_file(f, hello, O_RDWR, &err);
	g_assert_cmpint(err, ==, 0);
	struct fuse_setattr_in sa = {.valid = FATTR_SIZE | FATTR_FH, .fh = fh, .size = 0};
	g_assert_cmpint(call(f, FUSE_SETATTR, other, &sa, sizeof(sa), NULL, NULL), ==, -EBADF);
	g_assert_cmpint(call(f, FUSE_SETATTR, hello, &sa, sizeof(sa), NULL, NULL), ==, 0);
	char *path = g_build_filename(f->share, "other", NULL), *text;
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "keep me");
	g_free(text);
	g_free(path);
}

static void reopen_share(struct fixture *f, const struct fuse_server_options *opt)
{
	fuse_server_free(f->s);
	f->s = fuse_server_new(f->share, opt, NULL);
	g_assert_nonnull(f->s);
	struct fuse_init_in init = {.major = 7, .minor = 38, .flags = FUSE_SUBMOUNTS};
	g_assert_cmpint(call(f, FUSE_INIT, 0, &init, sizeof(init), NULL, NULL), ==, 0);
}

#define OPENDIRS      6000
#define HANDLE_BUDGET 1000
#define INODE_BUDGET  10
#define RSS_BOUND_KIB (8 * 1024)

/*
 * A guest opening directories without end: each handle used to hold a
 * 32 KiB directory buffer, with no bound but the descriptor limit. Now a
 * share's budget of handles (and of inodes) ends it with ENFILE, and a
 * handle costs a descriptor and a few bytes.
 */
static void test_share_budget(struct fixture *f, gconstpointer data)
{
	struct fuse_server_options opt = {.max_handles = HANDLE_BUDGET, .max_inodes = INODE_BUDGET};
	struct fuse_open_in op = {0};
	int opened = 0, err;

	reopen_share(f, &opt);
	long before = test_rss_kib();
	for (int i = 0; i < OPENDIRS; i++) {
		int e = call(f, FUSE_OPENDIR, FUSE_ROOT_ID, &op, sizeof(op), NULL, NULL);
		g_assert_true(e == 0 || e == -ENFILE);
		opened += e == 0;
	}
	long grown = test_rss_kib() - before;
	g_test_message("%d directories open, RSS grew by %ld KiB", opened, grown);
	g_assert_cmpint(grown, <, RSS_BOUND_KIB);
	g_assert_cmpint(opened, ==, HANDLE_BUDGET);
	/* the root is one inode of the budget */
	for (int i = 0; i < INODE_BUDGET + 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		write_file(f->share, name, "x");
		lookup(f, FUSE_ROOT_ID, name, &err);
		g_assert_cmpint(err, ==, i < INODE_BUDGET - 1 ? 0 : -ENFILE);
	}
}

static uint32_t entry_flags(struct fixture *f, const char *name)
{
	int err;

	lookup(f, FUSE_ROOT_ID, name, &err);
	g_assert_cmpint(err, ==, 0);
	return ((struct fuse_entry_out *)payload(f))->attr.flags;
}

/*
 * With the submounts option, a directory where another host file system
 * is mounted is a submount to the guest (its own st_dev there); a plain
 * directory is not, and without the option neither is.
 */
static void test_submount(struct fixture *f, gconstpointer data)
{
	char *mnt = g_build_filename(f->share, "mnt", NULL);
	char *plain = g_build_filename(f->share, "plain", NULL);

	g_assert_cmpint(g_mkdir(mnt, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(plain, 0755), ==, 0);
	if (mount("husk-test", mnt, "tmpfs", 0, "size=1m") != 0) {
		g_test_skip("cannot mount a tmpfs here (needs root)");
		goto out;
	}
	g_assert_cmpuint(entry_flags(f, "mnt"), ==, 0); /* the default */
	fuse_server_free(f->s);
	f->s = fuse_server_new(f->share, &(struct fuse_server_options){.submounts = true}, NULL);
	struct fuse_init_in init = {.major = 7, .minor = 38, .flags = FUSE_SUBMOUNTS};
	g_assert_cmpint(call(f, FUSE_INIT, 0, &init, sizeof(init), NULL, NULL), ==, 0);
	g_assert_true(((struct fuse_init_out *)payload(f))->flags & FUSE_SUBMOUNTS);
	g_assert_cmpuint(entry_flags(f, "mnt"), ==, FUSE_ATTR_SUBMOUNT);
	g_assert_cmpuint(entry_flags(f, "plain"), ==, 0);
	g_assert_cmpint(umount2(mnt, MNT_DETACH), ==, 0);
out:
	g_free(plain);
	g_free(mnt);
}

/* A directory the guest may list: how many entries, READDIR says. */
static int count_entries(struct fixture *f, uint64_t node)
{
	struct fuse_open_in op = {0};
	int n = 0;

	g_assert_cmpint(call(f, FUSE_OPENDIR, node, &op, sizeof(op), NULL, NULL), ==, 0);
	uint64_t fh = ((struct fuse_open_out *)payload(f))->fh;
	struct fuse_read_in rd = {.fh = fh, .size = 65536};
	g_assert_cmpint(call(f, FUSE_READDIR, node, &rd, sizeof(rd), NULL, NULL), ==, 0);
	size_t len = oh(f)->len - sizeof(struct fuse_out_header);
	for (size_t off = 0; off < len; n++)
		off += FUSE_DIRENT_SIZE((struct fuse_dirent *)((uint8_t *)payload(f) + off));
	struct fuse_release_in rel = {.fh = fh};
	g_assert_cmpint(call(f, FUSE_RELEASEDIR, node, &rel, sizeof(rel), NULL, NULL), ==, 0);
	return n;
}

/* 'name' in the share's top is there and sealed: empty, nothing under it, nothing opens. */
static void assert_sealed(struct fixture *f, const char *name, const char *inside)
{
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, name, &err);

	g_assert_cmpint(err, ==, 0);
	g_assert_cmpint(count_entries(f, node), ==, 0);
	lookup(f, node, inside, &err);
	g_assert_cmpint(err, ==, -ENOENT);
	struct fuse_mkdir_in mk = {.mode = 0755};
	g_assert_cmpint(call(f, FUSE_MKDIR, node, &mk, sizeof(mk), "x", NULL), ==, -EACCES);
}

/*
 * A procfs mounted inside the share (/proc/<husk>/mem is husk's memory),
 * and a bind mount of what is outside it: without submounts a share
 * crosses into no other mount, and procfs stays sealed whatever is asked.
 * A share of /proc itself is refused.
 */
static void test_other_mounts_sealed(struct fixture *f, gconstpointer data)
{
	char *proc = g_build_filename(f->share, "proc", NULL);
	char *bind = g_build_filename(f->share, "bind", NULL);

	g_assert_cmpint(g_mkdir(proc, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(bind, 0755), ==, 0);
	if (mount("proc", proc, "proc", 0, NULL) != 0 ||
	    mount(f->top, bind, NULL, MS_BIND, NULL) != 0) {
		g_test_skip("cannot mount here (needs root)");
		goto out;
	}
	assert_sealed(f, "proc", "self");
	assert_sealed(f, "bind", "outside");
	reopen_share(f, &(struct fuse_server_options){.submounts = true});
	assert_sealed(f, "proc", "self");
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "bind", &err);
	lookup(f, node, "outside", &err);
	g_assert_cmpint(err, ==, 0); /* asked for: a bind mount is crossed */
	reopen_share(f, &(struct fuse_server_options){.cross_mounts = true});
	assert_sealed(f, "proc", "self");
	GError *e = NULL;
	g_assert_null(fuse_server_new(proc, &(struct fuse_server_options){0}, &e));
	g_assert_nonnull(strstr(e->message, "kernel file system"));
	g_clear_error(&e);
	g_assert_cmpint(umount2(proc, MNT_DETACH), ==, 0);
	g_assert_cmpint(umount2(bind, MNT_DETACH), ==, 0);
out:
	g_free(bind);
	g_free(proc);
}

/* Hidden paths: a file is missing (a hard link to it too), a directory is empty. */
static void test_hidden(struct fixture *f, gconstpointer data)
{
	static const char *const hidden[] = {"secrets/key", "home", NULL};
	char *secrets = g_build_filename(f->share, "secrets", NULL);
	char *home = g_build_filename(f->share, "home", NULL);
	char *key = g_build_filename(secrets, "key", NULL);
	char *hard = g_build_filename(f->share, "link", NULL);
	int err;

	g_assert_cmpint(g_mkdir(secrets, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(home, 0755), ==, 0);
	write_file(secrets, "key", "private");
	write_file(home, "token", "private");
	g_assert_cmpint(link(key, hard), ==, 0);
	reopen_share(f, &(struct fuse_server_options){.hidden = hidden});
	uint64_t dir = lookup(f, FUSE_ROOT_ID, "secrets", &err);
	g_assert_cmpint(err, ==, 0);
	lookup(f, dir, "key", &err);
	g_assert_cmpint(err, ==, -ENOENT);
	lookup(f, FUSE_ROOT_ID, "link", &err);
	g_assert_cmpint(err, ==, -ENOENT);
	assert_sealed(f, "home", "token");
	g_free(hard);
	g_free(key);
	g_free(home);
	g_free(secrets);
}

static void test_readdir(struct fixture *f, gconstpointer data)
{
	struct fuse_open_in op = {0};

	g_assert_cmpint(call(f, FUSE_OPENDIR, FUSE_ROOT_ID, &op, sizeof(op), NULL, NULL), ==, 0);
	uint64_t fh = ((struct fuse_open_out *)payload(f))->fh;
	struct fuse_read_in rd = {.fh = fh, .size = 4096};
	g_assert_cmpint(call(f, FUSE_READDIRPLUS, FUSE_ROOT_ID, &rd, sizeof(rd), NULL, NULL), ==,
	                0);
	size_t len = oh(f)->len - sizeof(struct fuse_out_header), off = 0;
	bool seen = false;
	while (off < len) {
		struct fuse_direntplus *d = (void *)((uint8_t *)payload(f) + off);
		if (d->dirent.namelen == 5 && memcmp(d->dirent.name, "hello", 5) == 0) {
			seen = true;
			g_assert_cmpuint(d->entry_out.nodeid, !=, 0);
		}
		off += FUSE_DIRENTPLUS_SIZE(d);
	}
	g_assert_true(seen);
	/* Go on from where the last entry said: nothing more. */
	struct fuse_direntplus *last = NULL;
	for (off = 0; off < len; off += FUSE_DIRENTPLUS_SIZE(last))
		last = (void *)((uint8_t *)payload(f) + off);
	rd.offset = last->dirent.off;
	g_assert_cmpint(call(f, FUSE_READDIRPLUS, FUSE_ROOT_ID, &rd, sizeof(rd), NULL, NULL), ==,
	                0);
	g_assert_cmpuint(oh(f)->len, ==, sizeof(struct fuse_out_header));
	struct fuse_release_in rel = {.fh = fh};
	g_assert_cmpint(call(f, FUSE_RELEASEDIR, FUSE_ROOT_ID, &rel, sizeof(rel), NULL, NULL), ==,
	                0);
}

/* noxattr: every xattr request answers ENOSYS, which tells the guest to stop asking. */
static void test_no_xattr(struct fixture *f, gconstpointer data)
{
	struct fuse_getxattr_in gx = {.size = 64};
	struct fuse_setxattr_in sx = {.size = 1};
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);

	g_assert_cmpint(call(f, FUSE_GETXATTR, node, &gx, sizeof(gx), "security.capability", NULL),
	                ==, -ENOSYS);
	g_assert_cmpint(call(f, FUSE_LISTXATTR, node, &gx, sizeof(gx), NULL, NULL), ==, -ENOSYS);
	g_assert_cmpint(call(f, FUSE_SETXATTR, node, &sx, 8, "user.husk", NULL), ==, -ENOSYS);
	g_assert_cmpint(call(f, FUSE_REMOVEXATTR, node, NULL, 0, "user.husk", NULL), ==, -ENOSYS);
}

/* user.*, where the file system has user xattrs (tmpfs since Linux 6.6). */
static void test_xattrs(struct fixture *f, gconstpointer data)
{
	const char *name = "user.husk";
	struct fuse_setxattr_in sx = {.size = 5};
	struct fuse_getxattr_in gx = {.size = 64};
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);

	/* SETXATTR: size and flags, the name, then the value. */
	size_t len = build(f, FUSE_SETXATTR, node, &sx, 8, name, NULL);
	memcpy(f->in + len, "value", 5);
	((struct fuse_in_header *)f->in)->len = (uint32_t)(len + 5);
	send_req(f, len + 5);
	if (oh(f)->error == -ENOTSUP || oh(f)->error == -EOPNOTSUPP) {
		g_test_skip("the file system under the test directory has no such xattrs");
		return;
	}
	g_assert_cmpint(oh(f)->error, ==, 0);
	g_assert_cmpint(call(f, FUSE_GETXATTR, node, &gx, sizeof(gx), name, NULL), ==, 0);
	g_assert_cmpuint(oh(f)->len - sizeof(struct fuse_out_header), ==, 5);
	g_assert_true(memcmp(payload(f), "value", 5) == 0);
	gx.size = 0; /* how big is it? */
	g_assert_cmpint(call(f, FUSE_GETXATTR, node, &gx, sizeof(gx), name, NULL), ==, 0);
	g_assert_cmpuint(((struct fuse_getxattr_out *)payload(f))->size, ==, 5);
	gx.size = 2; /* too small */
	g_assert_cmpint(call(f, FUSE_GETXATTR, node, &gx, sizeof(gx), name, NULL), ==, -ERANGE);
	gx.size = 256;
	g_assert_cmpint(call(f, FUSE_LISTXATTR, node, &gx, sizeof(gx), NULL, NULL), ==, 0);
	g_assert_nonnull(
	    memmem(payload(f), oh(f)->len - sizeof(struct fuse_out_header), name, strlen(name)));
	g_assert_cmpint(call(f, FUSE_REMOVEXATTR, node, NULL, 0, name, NULL), ==, 0);
	g_assert_cmpint(call(f, FUSE_GETXATTR, node, &gx, sizeof(gx), name, NULL), ==, -ENODATA);
	/* A value longer than the request carries. */
	sx.size = 500;
	len = build(f, FUSE_SETXATTR, node, &sx, 8, name, NULL);
	send_req(f, len);
	g_assert_cmpint(oh(f)->error, ==, -EINVAL);
}

/*
 * A request longer than the server's first buffer (a LOOKUP of a 40 KB
 * name): the buffer grows and takes all of it, up to the name's NUL, and
 * the next short request is read from the grown one.
 */
static void test_long_request(struct fixture *f, gconstpointer data)
{
	enum { NAME = 40000 };
	struct fuse_in_header h = {.len = (uint32_t)sizeof(h) + NAME + 1,
	                           .opcode = FUSE_LOOKUP,
	                           .unique = 77,
	                           .nodeid = FUSE_ROOT_ID};
	g_autofree uint8_t *req = g_malloc(h.len);
	int err;

	memcpy(req, &h, sizeof(h));
	memset(req + sizeof(h), 'x', NAME);
	req[h.len - 1] = '\0';
	struct iovec in = {req, h.len}, out = {f->out, f->out_cap};
	g_assert_cmpuint(fuse_server_handle(f->s, &in, 1, &out, 1), ==,
	                 sizeof(struct fuse_out_header));
	g_assert_cmpint(oh(f)->error, ==, -ENAMETOOLONG); /* not EINVAL: its NUL was seen */
	g_assert_cmpuint(lookup(f, FUSE_ROOT_ID, "hello", &err), !=, 0);
	g_assert_cmpint(err, ==, 0);
}

/* uid=HOST:GUEST and gid=: the guest sees the swap, and its chowns are swapped back. */
static void test_id_maps(struct fixture *f, gconstpointer data)
{
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);
	const struct fuse_attr *a = &((struct fuse_entry_out *)payload(f))->attr;

	g_assert_cmpuint(a->uid, ==, 4321); /* the file is ours on the host */
	g_assert_cmpuint(a->gid, ==, 4322);
	struct fuse_getattr_in ga = {0};
	g_assert_cmpint(call(f, FUSE_GETATTR, node, &ga, sizeof(ga), NULL, NULL), ==, 0);
	g_assert_cmpuint(((struct fuse_attr_out *)payload(f))->attr.uid, ==, 4321);
	/* A chown to the guest's side of the pair stores ours: no change, allowed to anyone. */
	struct fuse_setattr_in sa = {.valid = FATTR_UID | FATTR_GID, .uid = 4321, .gid = 4322};
	g_assert_cmpint(call(f, FUSE_SETATTR, node, &sa, sizeof(sa), NULL, NULL), ==, 0);
	g_assert_cmpuint(((struct fuse_attr_out *)payload(f))->attr.uid, ==, 4321);
	g_assert_cmpuint(host_stat(f, "hello").st_uid, ==, getuid());
	if (geteuid() != 0) {
		g_test_skip("a chown to another owner needs root");
		return;
	}
	/* The guest's "our id" is the host's 4321, and shows as ours again. */
	sa.uid = getuid();
	sa.gid = getgid();
	g_assert_cmpint(call(f, FUSE_SETATTR, node, &sa, sizeof(sa), NULL, NULL), ==, 0);
	g_assert_cmpuint(host_stat(f, "hello").st_uid, ==, 4321);
	g_assert_cmpuint(((struct fuse_attr_out *)payload(f))->attr.uid, ==, getuid());
	g_assert_cmpuint(((struct fuse_attr_out *)payload(f))->attr.gid, ==, getgid());
}

/* A file capability: VFS_CAP_REVISION_2, CAP_SETUID permitted and effective (cap_setuid+ep). */
static const char caps[] = "security.capability";
static const uint32_t setuid_cap[5] = {0x02000001, 1u << 7, 0, 0, 0};

/* security.* (capabilities, MAC labels) is read-only to the guest, whoever husk runs as. */
static void test_security_xattrs_refused(struct fixture *f, gconstpointer data)
{
	struct fuse_setxattr_in sx = {.size = sizeof(setuid_cap)};
	struct fuse_getxattr_in gx = {.size = 64};
	char path[PATH_MAX];
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);

	size_t len = build(f, FUSE_SETXATTR, node, &sx, 8, caps, NULL);
	memcpy(f->in + len, setuid_cap, sizeof(setuid_cap));
	((struct fuse_in_header *)f->in)->len = (uint32_t)(len + sizeof(setuid_cap));
	send_req(f, len + sizeof(setuid_cap));
	g_assert_cmpint(oh(f)->error, ==, -EPERM);
	g_assert_cmpint(call(f, FUSE_REMOVEXATTR, node, NULL, 0, "security.selinux", NULL), ==,
	                -EPERM);
	snprintf(path, sizeof(path), "%s/hello", f->share);
	g_assert_cmpint(getxattr(path, caps, NULL, 0), <, 0);
	/* Reading goes on: the guest's kernel asks before each write. */
	int e = call(f, FUSE_GETXATTR, node, &gx, sizeof(gx), caps, NULL);
	g_assert_true(e == -ENODATA || e == -ENOTSUP || e == -EOPNOTSUPP);
}

/*
 * trusted.* is what the host's overlayfs believes: the guest's are kept
 * as trusted.husk.* on the host, and the host's own stay unseen.
 */
static void test_trusted_xattrs_mapped(struct fixture *f, gconstpointer data)
{
	struct fuse_setxattr_in sx = {.size = 4};
	struct fuse_getxattr_in gx = {.size = 256};
	char path[PATH_MAX], value[16];
	int err;
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);

	snprintf(path, sizeof(path), "%s/hello", f->share);
	if (setxattr(path, "trusted.overlay.opaque", "y", 1, 0)) {
		g_test_skip("trusted.* xattrs need root and a file system that has them");
		return;
	}
	size_t len = build(f, FUSE_SETXATTR, node, &sx, 8, "trusted.overlay.redirect", NULL);
	memcpy(f->in + len, "/etc", 4);
	((struct fuse_in_header *)f->in)->len = (uint32_t)(len + 4);
	send_req(f, len + 4);
	g_assert_cmpint(oh(f)->error, ==, 0);
	g_assert_cmpint(getxattr(path, "trusted.overlay.redirect", value, sizeof(value)), <, 0);
	g_assert_cmpint(getxattr(path, "trusted.husk.overlay.redirect", value, sizeof(value)), ==,
	                4);
	g_assert_cmpint(
	    call(f, FUSE_GETXATTR, node, &gx, sizeof(gx), "trusted.overlay.redirect", NULL), ==, 0);
	g_assert_cmpint(memcmp(payload(f), "/etc", 4), ==, 0);
	g_assert_cmpint(
	    call(f, FUSE_GETXATTR, node, &gx, sizeof(gx), "trusted.overlay.opaque", NULL), ==,
	    -ENODATA);
	g_assert_cmpint(call(f, FUSE_LISTXATTR, node, &gx, sizeof(gx), NULL, NULL), ==, 0);
	size_t n = oh(f)->len - sizeof(struct fuse_out_header);
	g_assert_nonnull(memmem(payload(f), n, "trusted.overlay.redirect", 25));
	g_assert_null(memmem(payload(f), n, "opaque", 6));
	g_assert_null(memmem(payload(f), n, "husk", 4));
	g_assert_cmpint(call(f, FUSE_REMOVEXATTR, node, NULL, 0, "trusted.overlay.opaque", NULL),
	                ==, -ENODATA);
	g_assert_cmpint(getxattr(path, "trusted.overlay.opaque", value, sizeof(value)), ==, 1);
}

/*
 * A capability the host put on a file, the guest may take off: its kernel
 * does, before it writes to the file or chowns it, and those must not fail.
 */
static void test_file_capability_removable(struct fixture *f, gconstpointer data)
{
	char path[PATH_MAX];
	int err;

	snprintf(path, sizeof(path), "%s/hello", f->share);
	if (setxattr(path, caps, setuid_cap, sizeof(setuid_cap), 0)) {
		g_test_skip("this host will not let us set a file capability (needs CAP_SETFCAP)");
		return;
	}
	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);
	g_assert_cmpint(call(f, FUSE_REMOVEXATTR, node, NULL, 0, caps, NULL), ==, 0);
	g_assert_cmpint(getxattr(path, caps, NULL, 0), <, 0);
	g_assert_cmpint(errno, ==, ENODATA);
}

/* ---- confinement ------------------------------------------------------------------ */

static void test_no_dotdot(struct fixture *f, gconstpointer data)
{
	int err;

	lookup(f, FUSE_ROOT_ID, "..", &err);
	g_assert_cmpint(err, ==, -EINVAL);
}

static void test_planted_symlink(struct fixture *f, gconstpointer data)
{
	char *link = g_build_filename(f->share, "escape", NULL);
	char *outside = g_build_filename(f->top, "outside", NULL);
	int err;

	g_assert_cmpint(symlink(outside, link), ==, 0);
	uint64_t node = lookup(f, FUSE_ROOT_ID, "escape", &err);
	g_assert_cmpint(err, ==, 0);
	g_assert_true(S_ISLNK(((struct fuse_entry_out *)payload(f))->attr.mode));
	/* Opening, truncating or creating through it never reaches the target. */
	open_file(f, node, O_RDWR, &err);
	g_assert_cmpint(err, ==, -ELOOP);
	struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 0};
	g_assert_cmpint(call(f, FUSE_SETATTR, node, &sa, sizeof(sa), NULL, NULL), ==, -ELOOP);
	struct fuse_create_in cr = {.flags = O_WRONLY | O_TRUNC, .mode = 0644};
	g_assert_cmpint(call(f, FUSE_CREATE, FUSE_ROOT_ID, &cr, sizeof(cr), "escape", NULL), ==,
	                -ELOOP);
	/* LOOKUP through a symlink to a directory outside: not a directory here. */
	g_assert_cmpint(unlink(link), ==, 0);
	g_assert_cmpint(symlink(f->top, link), ==, 0);
	node = lookup(f, FUSE_ROOT_ID, "escape", &err);
	g_assert_cmpint(err, ==, 0);
	lookup(f, node, "outside", &err);
	g_assert_cmpint(err, ==, -ENOTDIR);
	char *text;
	g_assert_true(g_file_get_contents(outside, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "secret");
	g_free(text);
	g_free(link);
	g_free(outside);
}

static void test_read_only(struct fixture *f, gconstpointer data)
{
	struct fuse_create_in cr = {.flags = O_WRONLY, .mode = 0644};
	struct fuse_mkdir_in mk = {.mode = 0755};
	struct fuse_setattr_in sa = {.valid = FATTR_SIZE};
	int err;

	uint64_t node = lookup(f, FUSE_ROOT_ID, "hello", &err);
	open_file(f, node, O_WRONLY, &err);
	g_assert_cmpint(err, ==, -EROFS);
	open_file(f, node, O_RDONLY | O_TRUNC, &err);
	g_assert_cmpint(err, ==, -EROFS);
	open_file(f, node, O_RDONLY, &err);
	g_assert_cmpint(err, ==, 0);
	g_assert_cmpint(call(f, FUSE_CREATE, FUSE_ROOT_ID, &cr, sizeof(cr), "x", NULL), ==, -EROFS);
	g_assert_cmpint(call(f, FUSE_MKDIR, FUSE_ROOT_ID, &mk, sizeof(mk), "d", NULL), ==, -EROFS);
	g_assert_cmpint(call(f, FUSE_UNLINK, FUSE_ROOT_ID, NULL, 0, "hello", NULL), ==, -EROFS);
	g_assert_cmpint(call(f, FUSE_SETATTR, node, &sa, sizeof(sa), NULL, NULL), ==, -EROFS);
}

/* ---- hostile requests ------------------------------------------------------------- */

#define HOSTILE_REQUESTS 50000
#define HOSTILE_POOL     64

/* A guest that sends what it likes, reusing the node ids and handles it was given. */
struct hostile {
	GRand *rand;
	uint64_t nodes[HOSTILE_POOL], handles[HOSTILE_POOL];
	unsigned int n_nodes, n_handles;
	char long_name[300];
};

static uint32_t below(struct hostile *h, uint32_t n)
{
	return (uint32_t)g_rand_int_range(h->rand, 0, (gint32)n);
}

static uint64_t random_u64(struct hostile *h)
{
	return (uint64_t)g_rand_int(h->rand) << 32 | g_rand_int(h->rand);
}

/* A value from 'pool' mostly; sometimes 1 (the root's node id), 0, a small number or one made up.
 */
static uint64_t pick(struct hostile *h, const uint64_t *pool, unsigned int n)
{
	switch (below(h, 8)) {
	case 0:
		return 0;
	case 1:
		return random_u64(h);
	case 2:
		return below(h, 64);
	case 3:
		return FUSE_ROOT_ID;
	default:
		return n ? pool[below(h, n)] : FUSE_ROOT_ID;
	}
}

static void remember(struct hostile *h, uint64_t *pool, unsigned int *n, uint64_t v)
{
	if (*n < HOSTILE_POOL)
		pool[(*n)++] = v;
	else
		pool[below(h, HOSTILE_POOL)] = v;
}

static const char *pick_name(struct hostile *h)
{
	static const char *const names[] = {
	    "a",
	    "b",
	    "sub",
	    "hello",
	    ".",
	    "..",
	    "",
	    "a/b",
	    "/etc/passwd",
	    "../outside",
	    "security.capability",
	    "user.x",
	    "user.y",
	    "trusted.x",
	    "outside",
	};
	uint32_t i = below(h, G_N_ELEMENTS(names) + 1);

	return i < G_N_ELEMENTS(names) ? names[i] : h->long_name;
}

/* How a well-formed request of each kind looks: its fixed arguments, and names after them. */
static const struct {
	uint32_t opcode;
	uint8_t size, names;
} shapes[] = {
    {FUSE_LOOKUP, 0, 1},
    {FUSE_GETATTR, sizeof(struct fuse_getattr_in), 0},
    {FUSE_SETATTR, sizeof(struct fuse_setattr_in), 0},
    {FUSE_READLINK, 0, 0},
    {FUSE_SYMLINK, 0, 2},
    {FUSE_MKNOD, sizeof(struct fuse_mknod_in), 1},
    {FUSE_MKDIR, sizeof(struct fuse_mkdir_in), 1},
    {FUSE_UNLINK, 0, 1},
    {FUSE_RMDIR, 0, 1},
    {FUSE_RENAME, sizeof(struct fuse_rename_in), 2},
    {FUSE_RENAME2, sizeof(struct fuse_rename2_in), 2},
    {FUSE_LINK, sizeof(struct fuse_link_in), 1},
    {FUSE_OPEN, sizeof(struct fuse_open_in), 0},
    {FUSE_OPENDIR, sizeof(struct fuse_open_in), 0},
    {FUSE_CREATE, sizeof(struct fuse_create_in), 1},
    {FUSE_READ, sizeof(struct fuse_read_in), 0},
    {FUSE_READDIR, sizeof(struct fuse_read_in), 0},
    {FUSE_READDIRPLUS, sizeof(struct fuse_read_in), 0},
    {FUSE_WRITE, sizeof(struct fuse_write_in), 0},
    {FUSE_RELEASE, sizeof(struct fuse_release_in), 0},
    {FUSE_RELEASEDIR, sizeof(struct fuse_release_in), 0},
    {FUSE_FSYNC, sizeof(struct fuse_fsync_in), 0},
    {FUSE_FLUSH, sizeof(struct fuse_flush_in), 0},
    {FUSE_SETXATTR, FUSE_COMPAT_SETXATTR_IN_SIZE, 2}, /* no FUSE_SETXATTR_EXT */
    {FUSE_GETXATTR, sizeof(struct fuse_getxattr_in), 1},
    {FUSE_LISTXATTR, sizeof(struct fuse_getxattr_in), 0},
    {FUSE_REMOVEXATTR, 0, 1},
    {FUSE_ACCESS, sizeof(struct fuse_access_in), 0},
    {FUSE_STATFS, 0, 0},
    {FUSE_FALLOCATE, sizeof(struct fuse_fallocate_in), 0},
    {FUSE_LSEEK, sizeof(struct fuse_lseek_in), 0},
    {FUSE_COPY_FILE_RANGE, sizeof(struct fuse_copy_file_range_in), 0},
    {FUSE_FORGET, sizeof(struct fuse_forget_in), 0},
    {FUSE_BATCH_FORGET, sizeof(struct fuse_batch_forget_in) + sizeof(struct fuse_forget_one), 0},
};

/*
 * Fills 'len' bytes of arguments at 'p' 8 bytes at a time: a handle the
 * guest holds (or one made up), a small number, or random bits. FALLOCATE's
 * offset and length stay small: a made-up length that fits the host's disk
 * would really be allocated there.
 */
static void hostile_fields(struct hostile *h, uint32_t opcode, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)g_rand_int(h->rand);
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = below(h, 5) < 2 ? pick(h, h->handles, h->n_handles) : below(h, 4096);
		if (below(h, 5))
			memcpy(p + i, &v, 8);
	}
	if (opcode == FUSE_FALLOCATE)
		for (size_t i = 8; i < 24 && i + 8 <= len; i += 8)
			*(uint64_t *)(p + i) %= 1 << 20;
}

/*
 * Appends 'count' names, and sometimes leaves the last without its NUL;
 * 'last' is the last one's length.
 */
static size_t hostile_names(struct hostile *h, uint8_t *p, unsigned int count, size_t *last)
{
	size_t len = 0;

	*last = 0;
	for (unsigned int k = 0; k < count; k++) {
		const char *name = pick_name(h);
		*last = strlen(name);
		memcpy(p + len, name, *last + 1);
		len += *last + 1;
	}
	return len && !below(h, 16) ? len - 1 : len;
}

/*
 * A request's body, after its header: mostly the shape its opcode asks
 * for, filled by hostile_fields; otherwise any opcode with any length.
 * WRITE carries up to 4 KiB of data.
 */
static size_t hostile_body(struct hostile *h, uint32_t *opcode, uint8_t *p)
{
	size_t len, last;

	if (below(h, 4)) {
		unsigned int i = below(h, G_N_ELEMENTS(shapes));
		*opcode = shapes[i].opcode;
		hostile_fields(h, *opcode, p, shapes[i].size);
		len = shapes[i].size + hostile_names(h, p + shapes[i].size, shapes[i].names, &last);
		if (*opcode == FUSE_SETXATTR && below(h, 2)) /* the value is the second name */
			((struct fuse_setxattr_in *)p)->size = (uint32_t)last;
		if (*opcode == FUSE_WRITE) {
			size_t data = below(h, 4097);
			memset(p + len, 'w', data);
			if (below(h, 2))
				((struct fuse_write_in *)p)->size = (uint32_t)data;
			len += data;
		}
		return len;
	}
	do /* seldom INIT or DESTROY, which start the session over */
		*opcode = below(h, 200) ? 1 + below(h, FUSE_SYNCFS) : g_rand_int(h->rand);
	while ((*opcode == FUSE_INIT || *opcode == FUSE_DESTROY) && below(h, 10));
	len = below(h, 200);
	hostile_fields(h, *opcode, p, len);
	return len + hostile_names(h, p + len, below(h, 3), &last);
}

/* Splits 'len' bytes at 'buf' into 1 to 3 buffers, as a descriptor chain may. */
static int split(struct hostile *h, uint8_t *buf, size_t len, struct iovec *iov)
{
	int n = 1 + (int)below(h, 3);
	size_t at = 0;

	for (int i = 0; i < n; i++) {
		size_t part = i == n - 1 ? len - at : below(h, (uint32_t)(len - at + 1));
		iov[i] = (struct iovec){buf + at, part};
		at += part;
	}
	return n;
}

/* Starts the session over, as a guest that unmounts and mounts again does. */
static void hostile_remount(struct fixture *f, struct hostile *h)
{
	struct fuse_init_in init = {.major = 7, .minor = 38, .flags = FUSE_DO_READDIRPLUS};

	/* INIT first: the guest's request may have ended the session already. */
	g_assert_cmpint(call(f, FUSE_INIT, 0, &init, sizeof(init), NULL, NULL), ==, 0);
	g_assert_cmpint(call(f, FUSE_DESTROY, 0, NULL, 0, NULL, NULL), ==, 0);
	g_assert_cmpint(call(f, FUSE_INIT, 0, &init, sizeof(init), NULL, NULL), ==, 0);
	h->n_nodes = h->n_handles = 0;
}

/*
 * Opens "hello" again (making it again if the guest removed it), so the
 * pools always hold a file that is open: most requests on open files need
 * one.
 */
static void hostile_refresh(struct fixture *f, struct hostile *h)
{
	struct fuse_create_in cr = {.flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0644};
	size_t at = sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out);

	f->out_cap = sizeof(f->out);
	if (call(f, FUSE_CREATE, FUSE_ROOT_ID, &cr, sizeof(cr), "hello", NULL))
		return; /* it may be a directory now, say */
	remember(h, h->nodes, &h->n_nodes, ((struct fuse_entry_out *)payload(f))->nodeid);
	remember(h, h->handles, &h->n_handles, ((struct fuse_open_out *)(f->out + at))->fh);
}

/* Keeps what a successful reply gave the guest: a node id, a handle. */
static void hostile_learn(struct hostile *h, uint32_t opcode, const uint8_t *out, size_t n)
{
	const size_t at = sizeof(struct fuse_out_header);
	struct fuse_entry_out e;
	struct fuse_open_out o;

	switch (opcode) {
	case FUSE_LOOKUP:
	case FUSE_MKDIR:
	case FUSE_MKNOD:
	case FUSE_SYMLINK:
	case FUSE_LINK:
	case FUSE_CREATE:
		if (n < at + sizeof(e))
			return;
		memcpy(&e, out + at, sizeof(e));
		if (e.nodeid)
			remember(h, h->nodes, &h->n_nodes, e.nodeid);
		if (opcode != FUSE_CREATE || n < at + sizeof(e) + sizeof(o))
			return;
		memcpy(&o, out + at + sizeof(e), sizeof(o));
		remember(h, h->handles, &h->n_handles, o.fh);
		return;
	case FUSE_OPEN:
	case FUSE_OPENDIR:
		if (n < at + sizeof(o))
			return;
		memcpy(&o, out + at, sizeof(o));
		remember(h, h->handles, &h->n_handles, o.fh);
		return;
	}
}

/* One request from the hostile guest; checks its answer is one well-formed reply or none. */
static void hostile_request(struct fixture *f, struct hostile *h, uint64_t unique)
{
	uint32_t opcode;
	size_t len = sizeof(struct fuse_in_header) +
	             hostile_body(h, &opcode, f->in + sizeof(struct fuse_in_header));
	struct fuse_in_header hdr = {.opcode = opcode,
	                             .unique = unique,
	                             .nodeid = pick(h, h->nodes, h->n_nodes),
	                             .uid = below(h, 4) ? 0 : g_rand_int(h->rand),
	                             .gid = below(h, 4) ? 0 : g_rand_int(h->rand)};

	hdr.len = below(h, 10) ? (uint32_t)len : (uint32_t)(len + below(h, 33)) - 16;
	memcpy(f->in, &hdr, sizeof(hdr));
	if (!below(h, 20))
		len = below(h, sizeof(hdr)); /* cut inside the header */
	size_t cap = below(h, 8) ? sizeof(f->out) : below(h, 512);
	struct iovec in[3], out[3];
	int nin = split(h, f->in, len, in), nout = split(h, f->out, cap, out);

	memset(f->out, 0xa5, sizeof(f->out));
	size_t n = fuse_server_handle(f->s, in, nin, out, nout);
	if (n == 0) {
		g_assert_true(len < sizeof(hdr) || cap < sizeof(struct fuse_out_header) ||
		              opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET ||
		              opcode == FUSE_INTERRUPT);
	} else {
		struct fuse_out_header o;
		memcpy(&o, f->out, sizeof(o));
		g_assert_cmpuint(n, >=, sizeof(o));
		g_assert_cmpuint(n, <=, cap);
		g_assert_cmpuint(o.len, ==, n);
		g_assert_cmpuint(o.unique, ==, unique);
		g_assert_cmpint(o.error, <=, 0);
		g_assert_cmpint(o.error, >, -4096);
		if (o.error)
			g_assert_cmpuint(n, ==, sizeof(o));
		else
			hostile_learn(h, opcode, f->out, n);
	}
	if (len >= sizeof(hdr) && (opcode == FUSE_INIT || opcode == FUSE_DESTROY))
		hostile_remount(f, h);
}

/*
 * Requests a hostile guest might send, made at random (the same ones every
 * run): truncated and lying lengths, names with '/' or no NUL, made-up
 * node ids and handles, reused real ones, scattered buffers, replies with
 * no room. Each gets one well-formed reply or none, nothing outside the
 * share changes, and the server still serves at the end.
 */
static void test_hostile_requests(struct fixture *f, gconstpointer data)
{
	struct hostile h = {.rand = g_rand_new_with_seed(0x6875736b)};
	char *outside = g_build_filename(f->top, "outside", NULL), *text, *cmd;

	memset(h.long_name, 'n', sizeof(h.long_name) - 1);
	for (uint64_t i = 0; i < HOSTILE_REQUESTS; i++) {
		if (i % 64 == 0)
			hostile_refresh(f, &h);
		hostile_request(f, &h, 1000 + i);
	}

	g_assert_true(g_file_get_contents(outside, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "secret");
	GDir *top = g_dir_open(f->top, 0, NULL);
	unsigned int entries = 0;
	for (const char *name; (name = g_dir_read_name(top)); entries++)
		g_assert_true(!strcmp(name, "share") || !strcmp(name, "outside"));
	g_assert_cmpuint(entries, ==, 2);
	g_dir_close(top);
	f->out_cap = sizeof(f->out);
	hostile_remount(f, &h);
	g_assert_cmpint(call(f, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, NULL, NULL), ==, 0);
	/* The guest may have taken every permission away: give them back for teardown. */
	cmd = g_strdup_printf("chmod -R u+rwx '%s'", f->share);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(cmd);
	g_free(text);
	g_free(outside);
	g_rand_free(h.rand);
}

/*
 * A share takes the open-file limit's soft value up to the hard one the
 * user set, never past it (to nr_open, a million as root): the shares'
 * budgets bound what a guest holds, not the limit.
 */
static void test_fd_limit_kept(void)
{
	if (g_test_subprocess()) {
		struct rlimit before, after;
		char *dir = g_dir_make_tmp("husk-fdlimit-XXXXXX", NULL);

		g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &before), ==, 0);
		if (before.rlim_max == RLIM_INFINITY || before.rlim_max < 64)
			return;
		before.rlim_cur = 64;
		g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &before), ==, 0);
		struct fuse_server *s =
		    fuse_server_new(dir, &(struct fuse_server_options){0}, NULL);
		g_assert_nonnull(s);
		g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &after), ==, 0);
		g_assert_cmpuint(after.rlim_max, ==, before.rlim_max);
		g_assert_cmpuint(after.rlim_cur, ==, before.rlim_max);
		fuse_server_free(s);
		g_rmdir(dir);
		g_free(dir);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	id_map_share.uid_map = (struct fuse_id_map){true, getuid(), 4321};
	id_map_share.gid_map = (struct fuse_id_map){true, getgid(), 4322};
#define ADD(path, fn, opt) g_test_add("/fuse/" path, struct fixture, opt, setup, fn, teardown)
	ADD("decoder/truncated-header", test_truncated_header, NULL);
	g_test_add_func("/fuse/confine/fd-limit-kept", test_fd_limit_kept);
	ADD("decoder/length-that-lies", test_length_that_lies, NULL);
	ADD("decoder/no-room-for-reply", test_no_room_for_reply, NULL);
	ADD("decoder/unknown-opcode", test_unknown_opcode, NULL);
	ADD("decoder/requests-need-init", test_requests_need_init, NULL);
	ADD("decoder/counts", test_counts, NULL);
	ADD("fs/try-handle", test_try_handle, NULL);
	ADD("fs/concurrent-reads", test_concurrent_reads, NULL);
	ADD("decoder/bad-names", test_bad_names, NULL);
	ADD("decoder/made-up-nodes-and-handles", test_made_up_nodes_and_handles, NULL);
	ADD("decoder/hostile-requests", test_hostile_requests, NULL);
	ADD("fs/read-write", test_read_write, NULL);
	ADD("fs/create-mkdir-rename-unlink", test_create_mkdir_rename_unlink, NULL);
	ADD("fs/readdir", test_readdir, NULL);
	ADD("fs/xattrs", test_xattrs, NULL);
	ADD("fs/long-request", test_long_request, NULL);
	ADD("fs/no-xattr", test_no_xattr, &no_xattr_share);
	ADD("fs/security-xattrs-refused", test_security_xattrs_refused, NULL);
	ADD("fs/trusted-xattrs-mapped", test_trusted_xattrs_mapped, NULL);
	ADD("fs/file-capability-removable", test_file_capability_removable, NULL);
	ADD("fs/id-maps", test_id_maps, &id_map_share);
	ADD("fs/killpriv", test_killpriv, NULL);
	ADD("confine/file-budget", test_file_budget, NULL);
	ADD("confine/setattr-foreign-handle", test_setattr_foreign_handle, NULL);
	ADD("confine/share-budget", test_share_budget, NULL);
	ADD("fs/submount", test_submount, NULL);
	ADD("confine/other-mounts-sealed", test_other_mounts_sealed, NULL);
	ADD("confine/hidden", test_hidden, NULL);
	ADD("confine/no-dotdot", test_no_dotdot, NULL);
	ADD("confine/planted-symlink", test_planted_symlink, NULL);
	ADD("confine/read-only", test_read_only, &read_only_share);
	ADD("confine/special-files-not-opened", test_special_files_not_opened, NULL);
	ADD("confine/no-privileges-as-root", test_no_privileges_as_root, NULL);
	return g_test_run();
}
