// SPDX-License-Identifier: MIT
/*
 * The child holds no file of the image and no other descriptor it may use:
 * its filter lets it read and write only its socket, map memory that is
 * never executable, wake a futex, and exit. Everything else kills it (SIGSYS). Its
 * address space is bounded (RLIMIT_AS), it leaves no core dump, it dies
 * with its parent, and the parent kills it at the deadline.
 *
 * The parent believes nothing it sends: each message's type, length and
 * order are checked, the totals are bounded, the kernel must look like a
 * bzImage and the command line must be printable.
 */
#include "vmm/bootdisk/sandbox.h"

#include <errno.h>
#include <linux/futex.h>
#include <locale.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/bootdisk/partition.h"
#include "vmm/error.h"

/* The child's memory beyond what it inherits: libext2fs's tables and our buffers. */
#define CHILD_EXTRA_ADDRESS_SPACE (256ull << 20)

/* The child's cache of the image: libext2fs reads a block at a time. */
#define CACHE_SLOTS 8
#define CACHE_CHUNK (128u << 10)

struct remote_image {
	int fd;
	uint64_t size;
	struct {
		uint64_t off;
		uint8_t *data; /* NULL: empty */
	} slot[CACHE_SLOTS];
	unsigned next;
};

/* All 'len' bytes, read or written ('out'); false at the end or on an error. */
static bool transfer_all(int fd, uint8_t *p, size_t len, bool out)
{
	while (len > 0) {
		ssize_t n = out ? write(fd, p, len) : read(fd, p, len);

		if (n <= 0 && !(n < 0 && errno == EINTR))
			return false;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
	return true;
}

static bool read_full(int fd, void *buf, size_t len)
{
	return transfer_all(fd, buf, len, false);
}

static bool write_full(int fd, const void *buf, size_t len)
{
	return transfer_all(fd, (uint8_t *)buf, len, true);
}

bool sandbox_send(int fd, enum sandbox_msg_type type, uint64_t arg, const void *buf, size_t len)
{
	struct sandbox_msg m = {type, (uint32_t)len, arg};

	return len <= SANDBOX_PIECE_MAX && write_full(fd, &m, sizeof(m)) &&
	       write_full(fd, buf, len);
}

static bool remote_request(struct remote_image *ri, void *buf, size_t len, uint64_t off)
{
	struct sandbox_msg m = {SANDBOX_READ, (uint32_t)len, off}, reply;

	if (!write_full(ri->fd, &m, sizeof(m)) || !read_full(ri->fd, &reply, sizeof(reply)))
		return false;
	if (reply.type != SANDBOX_DATA || reply.len != len)
		return false;
	return read_full(ri->fd, buf, len);
}

static const uint8_t *cached_chunk(struct remote_image *ri, uint64_t off)
{
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (ri->slot[i].data && ri->slot[i].off == off)
			return ri->slot[i].data;
	unsigned i = ri->next++ % CACHE_SLOTS;
	size_t len = (size_t)MIN(CACHE_CHUNK, ri->size - off);

	if (!ri->slot[i].data)
		ri->slot[i].data = g_malloc(CACHE_CHUNK);
	ri->slot[i].off = off;
	if (!remote_request(ri, ri->slot[i].data, len, off)) {
		g_clear_pointer(&ri->slot[i].data, g_free);
		return NULL;
	}
	return ri->slot[i].data;
}

/* Small reads go through the cache; large ones (file contents) straight to the parent. */
static bool remote_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct remote_image *ri = opaque;
	uint8_t *p = buf;

	while (len > 0) {
		size_t n;

		if (len >= CACHE_CHUNK) {
			n = MIN(len, SANDBOX_PIECE_MAX);
			if (!remote_request(ri, p, n, off))
				return false;
		} else {
			uint64_t start = off / CACHE_CHUNK * CACHE_CHUNK;
			const uint8_t *chunk = cached_chunk(ri, start);

			if (!chunk)
				return false;
			n = MIN(len, CACHE_CHUNK - (size_t)(off - start));
			memcpy(p, chunk + (off - start), n);
		}
		p += n;
		off += n;
		len -= n;
	}
	return true;
}

/* Allows 'call' only on descriptor 'fd' (its first argument). */
static int allow_on_fd(scmp_filter_ctx ctx, int call, int fd)
{
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, call, 1,
	                        SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fd));
}

/* Allows 'call' only when its protection (argument 'arg') has no PROT_EXEC. */
static int allow_without_exec(scmp_filter_ctx ctx, int call, unsigned arg)
{
	struct scmp_arg_cmp no_exec = {arg, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0};

	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, call, 1, &no_exec);
}

static bool install_filter(int fd)
{
	/* malloc's: mremap grows a large block, madvise gives pages back. */
	static const int plain[] = {SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(brk),
	                            SCMP_SYS(madvise), SCMP_SYS(exit_group)};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc = ctx ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < G_N_ELEMENTS(plain); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, plain[i], 0);
	/* GLib's one-time set-ups wake waiters there could be (g_once_init_leave). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(futex), 1,
		                      SCMP_A1(SCMP_CMP_EQ, FUTEX_WAKE_PRIVATE));
	if (rc == 0)
		rc = allow_on_fd(ctx, SCMP_SYS(read), fd);
	if (rc == 0)
		rc = allow_on_fd(ctx, SCMP_SYS(write), fd);
	if (rc == 0)
		rc = allow_without_exec(ctx, SCMP_SYS(mmap), 2);
	if (rc == 0)
		rc = allow_without_exec(ctx, SCMP_SYS(mprotect), 2);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc == 0;
}

/* Everything but the filter first: the filter forbids it all afterwards. */
static bool confine(int fd, uint64_t address_space)
{
	struct rlimit no_core = {0, 0}, as;

	/* Lowered, never raised: a limit already below ours stays. */
	if (getrlimit(RLIMIT_AS, &as) != 0)
		return false;
	as.rlim_cur = MIN(as.rlim_cur, address_space);
	as.rlim_max = as.rlim_cur;
	/* Messages (strerror, com_err) never open a catalog in the C locale. */
	setlocale(LC_ALL, "C");
	/* No core dump: a pipe in core_pattern takes one whatever RLIMIT_CORE says. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || prctl(PR_SET_DUMPABLE, 0) != 0 ||
	    setrlimit(RLIMIT_CORE, &no_core) != 0 || setrlimit(RLIMIT_AS, &as) != 0)
		return false;
	/* The filter bars other descriptors anyway; closing them is belt and braces. */
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0u, 0);
	return install_filter(fd);
}

/* This process's address space now, which the child inherits. */
static uint64_t address_space_now(void)
{
	unsigned long pages = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void child_main(const struct bootdisk_reader *r, sandbox_child_fn child, int fd,
                       uint64_t address_space)
{
	static const char refused[] = "cannot set up the sandbox for reading the disk image";

	if (!confine(fd, address_space)) {
		sandbox_send(fd, SANDBOX_ERROR, HUSK_EXIT_HOST, refused, sizeof(refused) - 1);
		_exit(1);
	}
	struct remote_image ri = {.fd = fd, .size = r->size};
	struct bootdisk_reader image = {remote_read, r->size, &ri};

	child(&image, fd);
	_exit(0);
}

/* The parent's side of one run. */
struct serve {
	const struct bootdisk_reader *r;
	int fd;
	gint64 deadline; /* monotonic microseconds */
	uint8_t *buf;    /* SANDBOX_PIECE_MAX bytes */
	GByteArray *kernel, *initrd;
	char *cmdline, *description;
	char *failure; /* why the run failed, NULL if it has not */
	enum husk_exit status;
};

static bool serve_fail(struct serve *s, enum husk_exit status, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static bool serve_fail(struct serve *s, enum husk_exit status, const char *fmt, ...)
{
	va_list ap;

	if (s->failure)
		return false;
	va_start(ap, fmt);
	s->failure = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	s->status = status;
	return false;
}

/* Waits for 'events' on the socket until the deadline. */
static bool wait_for(struct serve *s, short events)
{
	for (;;) {
		gint64 left = s->deadline - g_get_monotonic_time();
		struct pollfd p = {s->fd, events, 0};

		if (left <= 0)
			return false;
		int n = poll(&p, 1, (int)MIN(left / 1000 + 1, 60000));

		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
}

/* 1: read; 0: the child closed the socket (it died); -1: deadline or error. */
static int receive(struct serve *s, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		if (!wait_for(s, POLLIN))
			return -1;
		ssize_t n = recv(s->fd, p, len, MSG_DONTWAIT);

		if (n == 0)
			return 0;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return p == buf ? 0 : -1;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
	return 1;
}

static bool transmit(struct serve *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		if (!wait_for(s, POLLOUT))
			return false;
		ssize_t n = send(s->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
	return true;
}

static bool answer_read(struct serve *s, const struct sandbox_msg *m)
{
	struct sandbox_msg reply = {SANDBOX_DATA, m->len, 0};

	if (!reader_read(s->r, s->buf, m->len, m->arg))
		reply = (struct sandbox_msg){SANDBOX_READ_FAILED, 0, 0};
	return transmit(s, &reply, sizeof(reply)) && transmit(s, s->buf, reply.len);
}

/* A piece of the kernel or the initrd, within the total allowed. */
static bool take_piece(struct serve *s, GByteArray **whole, size_t len, uint64_t max,
                       const char *what)
{
	if (!*whole)
		*whole = g_byte_array_new();
	if ((*whole)->len + (uint64_t)len > max)
		return serve_fail(s, HUSK_EXIT_USAGE,
		                  "the %s in the disk image is over %" G_GUINT64_FORMAT " MiB",
		                  what, max >> 20);
	g_byte_array_append(*whole, s->buf, (guint)len);
	return true;
}

/* The command line, description or error text: once each, bounded. */
static bool take_text(struct serve *s, char **text, size_t len)
{
	if (*text)
		return serve_fail(s, HUSK_EXIT_USAGE,
		                  "the disk image's sandboxed parser sent the same answer twice");
	*text = g_strndup((const char *)s->buf, len);
	if (strlen(*text) != len)
		return serve_fail(s, HUSK_EXIT_USAGE,
		                  "the disk image's sandboxed parser sent text with a NUL byte");
	return true;
}

static bool printable(const char *text)
{
	for (const char *p = text; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

/* Non-printable bytes in a description become '?': it may quote the image. */
static void make_printable(char *text)
{
	for (char *p = text; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
}

static size_t piece_limit(uint32_t type)
{
	switch (type) {
	case SANDBOX_READ:
		return 0;
	case SANDBOX_KERNEL:
	case SANDBOX_INITRD:
		return SANDBOX_PIECE_MAX;
	case SANDBOX_CMDLINE:
		return BOOTDISK_CMDLINE_MAX - 1;
	case SANDBOX_DESCRIPTION:
		return BOOTDISK_DESCRIPTION_MAX;
	case SANDBOX_ERROR:
		return SANDBOX_ERROR_MAX;
	default:
		return 0;
	}
}

static bool take_error(struct serve *s, const struct sandbox_msg *m)
{
	g_autofree char *text = g_strndup((const char *)s->buf, m->len);
	enum husk_exit status = m->arg == HUSK_EXIT_HOST      ? HUSK_EXIT_HOST
	                        : m->arg == HUSK_EXIT_RUNTIME ? HUSK_EXIT_RUNTIME
	                                                      : HUSK_EXIT_USAGE;

	make_printable(text);
	return serve_fail(s, status, "%s", text);
}

/* One message from the child; false when the run is over (done or failed). */
static bool handle(struct serve *s, const struct sandbox_msg *m)
{
	switch (m->type) {
	case SANDBOX_READ:
		if (m->len > SANDBOX_PIECE_MAX)
			return serve_fail(
			    s, HUSK_EXIT_USAGE,
			    "the disk image's sandboxed parser asked for %u bytes at once", m->len);
		return answer_read(s, m) ||
		       serve_fail(s, HUSK_EXIT_USAGE,
		                  "the disk image's sandboxed parser stopped reading");
	case SANDBOX_KERNEL:
		return take_piece(s, &s->kernel, m->len, BOOTDISK_KERNEL_MAX, "kernel");
	case SANDBOX_INITRD:
		return take_piece(s, &s->initrd, m->len, BOOTDISK_INITRD_MAX, "initrd");
	case SANDBOX_CMDLINE:
		return take_text(s, &s->cmdline, m->len);
	case SANDBOX_DESCRIPTION:
		return take_text(s, &s->description, m->len);
	case SANDBOX_ERROR:
		return take_error(s, m);
	default: /* SANDBOX_DONE */
		return false;
	}
}

static const char *why_gone(int wstatus, char *buf, size_t len)
{
	if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGSYS)
		return "it made a system call its filter forbids";
	if (WIFSIGNALED(wstatus))
		g_snprintf(buf, len, "it died of signal %d (%s)", WTERMSIG(wstatus),
		           strsignal(WTERMSIG(wstatus)));
	else
		g_snprintf(buf, len, "it exited with status %d", WEXITSTATUS(wstatus));
	return buf;
}

/* The child closed its socket early: it is gone or going; ask how it ended. */
static void child_gone(struct serve *s, pid_t pid)
{
	int wstatus = 0;
	char buf[96];

	for (int i = 0; i < 100 && waitpid(pid, &wstatus, WNOHANG) == 0; i++)
		g_usleep(10 * 1000);
	kill(pid, SIGKILL);
	waitpid(pid, &wstatus, 0);
	serve_fail(s, HUSK_EXIT_USAGE,
	           "the disk image's sandboxed parser ended without an answer: %s",
	           why_gone(wstatus, buf, sizeof(buf)));
}

/* Reads messages until SANDBOX_DONE or a failure. */
static void serve(struct serve *s, pid_t pid, unsigned timeout_ms)
{
	for (;;) {
		struct sandbox_msg m;
		int got = receive(s, &m, sizeof(m));

		if (got == 1 && m.type != SANDBOX_READ && m.len > piece_limit(m.type))
			got = -2;
		if (got == 1 && m.type != SANDBOX_READ && m.len > 0)
			got = receive(s, s->buf, m.len);
		if (got == 0) {
			child_gone(s, pid);
			return;
		}
		if (got == -1)
			serve_fail(s, HUSK_EXIT_USAGE,
			           "reading the boot files out of the disk image took over %.1f s",
			           timeout_ms / 1000.0);
		if (got == -2 || (got == 1 && (m.type < SANDBOX_READ || m.type > SANDBOX_DONE)))
			serve_fail(s, HUSK_EXIT_USAGE,
			           "the disk image's sandboxed parser sent a malformed message");
		if (got != 1 || !handle(s, &m))
			break;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The bzImage's magic: Documentation/arch/x86/boot.rst, the setup header at 0x1f1. */
static bool looks_like_bzimage(const GByteArray *kernel)
{
	return kernel && kernel->len >= 0x206 && memcmp(kernel->data + 0x202, "HdrS", 4) == 0;
}

/* What a finished run hands back, checked. */
static bool accept_answer(struct serve *s, struct boot_choice *out)
{
	if (s->failure)
		return false;
	if (!looks_like_bzimage(s->kernel))
		return serve_fail(s, HUSK_EXIT_USAGE,
		                  "the kernel found in the disk image is not a bzImage");
	if (!s->cmdline || !printable(s->cmdline))
		return serve_fail(
		    s, HUSK_EXIT_USAGE,
		    "the kernel command line found in the disk image is not printable text");
	if (!s->description)
		s->description = g_strdup("a kernel from the disk image");
	make_printable(s->description);
	out->kernel = g_byte_array_free_to_bytes(g_steal_pointer(&s->kernel));
	out->initrd = s->initrd && s->initrd->len
	                  ? g_byte_array_free_to_bytes(g_steal_pointer(&s->initrd))
	                  : NULL;
	out->cmdline = g_steal_pointer(&s->cmdline);
	out->description = g_steal_pointer(&s->description);
	return true;
}

static void serve_clear(struct serve *s)
{
	if (s->kernel)
		g_byte_array_unref(s->kernel);
	if (s->initrd)
		g_byte_array_unref(s->initrd);
	g_free(s->cmdline);
	g_free(s->description);
	g_free(s->failure);
	g_free(s->buf);
}

bool sandbox_run(const struct bootdisk_reader *r, sandbox_child_fn child, unsigned timeout_ms,
                 struct boot_choice *out, GError **err)
{
	int sv[2];

	memset(out, 0, sizeof(*out));
	husk_error_quark(); /* registered before fork: the child takes no GLib lock for it */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "cannot make a socket pair: %s",
		                 g_strerror(errno));
	uint64_t address_space = address_space_now() + CHILD_EXTRA_ADDRESS_SPACE;
	pid_t pid = fork();

	if (pid == 0) {
		close(sv[0]);
		child_main(r, child, sv[1], address_space);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return husk_fail(err, HUSK_EXIT_RUNTIME, "cannot fork: %s", g_strerror(errno));
	}
	struct serve s = {.r = r, .fd = sv[0], .buf = g_malloc(SANDBOX_PIECE_MAX)};

	s.deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	serve(&s, pid, timeout_ms);
	close(sv[0]);
	bool ok = accept_answer(&s, out);

	if (!ok)
		husk_fail(err, s.status, "%s", s.failure);
	serve_clear(&s);
	return ok;
}
