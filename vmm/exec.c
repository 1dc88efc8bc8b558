// SPDX-License-Identifier: MIT
/*
 * husk exec: run one command in a fresh VM and hand back its output and
 * exit status. The guest's /init (firmware/husk-init.c, carried inside
 * husk) learns what to do from files in a private control directory that
 * husk shares over virtio-fs, and writes the command's stdout, stderr and
 * status there; husk copies the output to its own as it grows.
 *
 * Why a virtio-fs control directory rather than virtio-console ports or
 * vsock: husk needs virtio-fs for the guest's root and mounts anyway, the
 * guest's writes reach the host file at once (no write-back cache), and
 * stdout and stderr stay apart byte for byte.
 * See tools/MANUAL.md, "husk exec".
 * What files cannot carry, a terminal and a stdin (husk run --image -t/-i),
 * goes through a husk-agent session over husk's own vsock device instead
 * (vmm/exec_session.h).
 */
#include "vmm/exec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "devices/net/net.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/fs.h"
#include "devices/virtio/vsock.h"
#include "firmware/exec_file.h"
#include "vmm/arch.h"
#include "vmm/console.h"
#include "vmm/error.h"
#include "vmm/exec_session.h"
#include "vmm/initramfs.h"
#include "vmm/process.h"
#include "vmm/size.h"

extern const unsigned char husk_init_blob[];
extern const unsigned long husk_init_blob_size;

#define DEFAULT_MEMORY (1024 * MiB)
#define DEFAULT_PATH   "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CTL_TAG        "husk-ctl"
#define ROOT_TAG       "husk-root"
#define STOP_GRACE_S   10 /* from SIGTERM to the app to the VM's end, as docker stop */

struct exec_opts {
	char *kernel, *modules, *rootfs, *root_dev, *workdir, *user;
	char *image_root; /* husk run --image: the unpacked root, and no default mount */
	uint64_t memory;
	unsigned int cpus, timeout;
	GPtrArray *mounts; /* char *, "HOSTDIR[:GUESTPATH][,ro]" */
	GPtrArray *envs;   /* char *, "K=V" */
	GPtrArray *disks, *nets;
	gboolean console, allow_pvm, timings, no_seccomp;
	gboolean tty, interactive; /* husk run --image -t, -i: the app through a session */
	char *console_file;        /* --console=FILE */
	char **command;
};

/* --- options --------------------------------------------------------------- */

static gboolean opt_add(GPtrArray *list, const char *value)
{
	g_ptr_array_add(list, g_strdup(value));
	return TRUE;
}

static gboolean opt_mount(const char *n, const char *v, gpointer d, GError **e)
{
	return opt_add(((struct exec_opts *)d)->mounts, v);
}

static gboolean opt_env(const char *n, const char *v, gpointer d, GError **e)
{
	if (!strchr(v, '=') || *v == '=') {
		husk_fail(e, HUSK_EXIT_EXEC_FAILED, "--env: \"%s\" is not NAME=VALUE", v);
		return FALSE;
	}
	return opt_add(((struct exec_opts *)d)->envs, v);
}

static gboolean opt_disk(const char *n, const char *v, gpointer d, GError **e)
{
	struct disk_config *disk = g_new0(struct disk_config, 1);

	if (!disk_config_parse(v, disk, e)) {
		g_free(disk);
		return FALSE;
	}
	g_ptr_array_add(((struct exec_opts *)d)->disks, disk);
	return TRUE;
}

static gboolean opt_net(const char *n, const char *v, gpointer d, GError **e)
{
	struct exec_opts *o = d;
	struct net_config *net = g_new0(struct net_config, 1);

	if (!net_config_parse(v, o->nets->len, net, e)) {
		g_free(net);
		return FALSE;
	}
	g_ptr_array_add(o->nets, net);
	return TRUE;
}

static gboolean opt_memory(const char *n, const char *v, gpointer d, GError **e)
{
	uint64_t bytes;

	if (!size_parse(v, &bytes) || bytes < VM_MIN_MEMORY || bytes > VM_MAX_MEMORY) {
		husk_fail(e, HUSK_EXIT_EXEC_FAILED, "--memory: \"%s\" is not a size from 16M to 1T",
		          v);
		return FALSE;
	}
	((struct exec_opts *)d)->memory = bytes;
	return TRUE;
}

static bool parse_uint(const char *v, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long n;

	if (!g_ascii_isdigit(*v))
		return false;
	n = strtoul(v, &end, 10);
	if (*end || n == 0 || n > max)
		return false;
	*out = (unsigned int)n;
	return true;
}

static gboolean opt_cpus(const char *n, const char *v, gpointer d, GError **e)
{
	if (parse_uint(v, VM_MAX_CPUS, &((struct exec_opts *)d)->cpus))
		return TRUE;
	husk_fail(e, HUSK_EXIT_EXEC_FAILED, "--cpus: \"%s\" is not a number from 1 to %d", v,
	          VM_MAX_CPUS);
	return FALSE;
}

static gboolean opt_timeout(const char *n, const char *v, gpointer d, GError **e)
{
	if (parse_uint(v, 1000000, &((struct exec_opts *)d)->timeout))
		return TRUE;
	husk_fail(e, HUSK_EXIT_EXEC_FAILED, "--timeout: \"%s\" is not a number of seconds", v);
	return FALSE;
}

/* Numbers only: names mean nothing until the guest's root is known (husk run --image). */
static gboolean opt_user(const char *n, const char *v, gpointer d, GError **e)
{
	struct exec_opts *o = d;

	if (!g_regex_match_simple("^[0-9]{1,10}:[0-9]{1,10}(:[0-9]{1,10}(,[0-9]{1,10}){0,63})?$", v,
	                          0, 0)) {
		husk_fail(e, HUSK_EXIT_EXEC_FAILED, "--user: \"%s\" is not UID:GID[:GID,...]", v);
		return FALSE;
	}
	g_free(o->user);
	o->user = g_strdup(v);
	return TRUE;
}

/* --console alone: stderr; --console=FILE: that file, kept for later. */
static gboolean opt_console(const char *n, const char *v, gpointer d, GError **e)
{
	struct exec_opts *o = d;

	o->console = TRUE;
	g_free(o->console_file);
	o->console_file = v && *v ? g_strdup(v) : NULL;
	return TRUE;
}

#define CB(fn) G_OPTION_ARG_CALLBACK, (gpointer)(fn)

static bool parse_options(int argc, char **argv, struct exec_opts *o, GError **err)
{
	GOptionEntry entries[] = {
	    {"kernel", 'k', 0, G_OPTION_ARG_FILENAME, &o->kernel,
	     "Kernel (default: /boot/vmlinuz-$(uname -r), else a cached Debian kernel)", "PATH"},
	    {"modules", 0, 0, G_OPTION_ARG_FILENAME, &o->modules,
	     "The kernel's module tree (default: found beside the kernel)", "DIR"},
	    {"memory", 'm', 0, CB(opt_memory), "Guest RAM (default 1G)", "SIZE"},
	    {"cpus", 'c', 0, CB(opt_cpus), "vCPUs (default 1)", "N"},
	    {"mount", 0, 0, CB(opt_mount),
	     "Share a host directory (repeatable; default: the current directory)",
	     "HOSTDIR[:GUESTPATH][,ro]"},
	    {"rootfs", 0, 0, G_OPTION_ARG_FILENAME, &o->rootfs,
	     "The guest's root, read-only under a throwaway layer (default: /)", "DIR"},
	    {"disk", 'd', 0, CB(opt_disk), "A disk image, as for husk run (repeatable)",
	     "PATH[,ro][,snapshot]"},
	    {"root", 0, 0, G_OPTION_ARG_STRING, &o->root_dev, "Boot from this disk, e.g. /dev/vda",
	     "DEV"},
	    {"net", 'n', 0, CB(opt_net), "A NIC, as for husk run (default: no network)",
	     "user[,...]|tap=IFNAME"},
	    {"env", 'e', 0, CB(opt_env), "Set a variable for the command (repeatable)",
	     "NAME=VALUE"},
	    {"workdir", 'w', 0, G_OPTION_ARG_STRING, &o->workdir,
	     "Where the command starts (default: the current directory)", "DIR"},
	    {"user", 'u', 0, CB(opt_user), "Run the command as this user and group (default 0:0)",
	     "UID:GID[:GID,...]"},
	    {"image-root", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &o->image_root,
	     "A container image's root (husk run --image)", "DIR"},
	    {"tty", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &o->tty,
	     "The command on a terminal (husk run --image -t)", NULL},
	    {"interactive", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &o->interactive,
	     "Standard input to the command (husk run --image -i)", NULL},
	    {"timeout", 't', 0, CB(opt_timeout), "Stop the VM after this long: exit status 124",
	     "SECONDS"},
	    {"console", 0, G_OPTION_FLAG_OPTIONAL_ARG, CB(opt_console),
	     "Show the guest's console on stderr, or write it to FILE", "[FILE]"},
	    {"allow-pvm", 0, 0, G_OPTION_ARG_NONE, &o->allow_pvm,
	     "Run even on a PVM-backed /dev/kvm", NULL},
	    {"timings", 0, 0, G_OPTION_ARG_NONE, &o->timings,
	     "Say where the time went: set-up, the VM's run, the exit (to stderr)", NULL},
	    {"no-seccomp", 0, 0, G_OPTION_ARG_NONE, &o->no_seccomp,
	     "Run without husk's system-call filter (for debugging husk)", NULL},
	    {0},
	};
	GOptionContext *ctx = g_option_context_new("[--] COMMAND [ARG...] - run a command in a VM");
	GOptionGroup *group =
	    g_option_group_new("exec", "husk exec options", "exec options", o, NULL);

	g_option_group_add_entries(group, entries);
	g_option_context_set_main_group(ctx, group);
	g_option_context_set_description(
	    ctx, "Exit status: the command's; 128+N when a signal N killed it; 124 when\n"
	         "--timeout fired; 125 when husk or the VM failed before the command ended.\n"
	         "\n"
	         "The guest's /: the host's / (--rootfs), read-only under a throwaway layer in\n"
	         "guest memory, without the host's kernel file systems (procfs, sysfs,\n"
	         "debugfs, ...: empty directories) and, unless --rootfs / is given, without\n"
	         "/root, /home, /dev, /run, /tmp, /etc/shadow, /etc/gshadow, the SSH host\n"
	         "keys, /etc/ssl/private and /var/backups (empty or missing). The guest has\n"
	         "its own /proc, /sys, /dev, /run and /tmp; the --mount folders (by default\n"
	         "the current directory, at its own path) are shared read-write.\n"
	         "\n"
	         "Files: the kernel and its modules (default: the running kernel's, else\n"
	         "the newest Debian kernel in the cache); the cache, $HUSK_CACHE (default\n"
	         "$XDG_CACHE_HOME/husk, else ~/.cache/husk), holds kernels/ and the\n"
	         "initramfs images husk builds (initramfs/).");
	/* Options end at the command: husk exec -- ls -l, or husk exec ls -l. */
	g_option_context_set_strict_posix(ctx, TRUE);
	char **args = g_new0(char *, argc + 1);
	memcpy(args, argv, sizeof(char *) * argc);
	int n = argc;
	bool ok = g_option_context_parse(ctx, &n, &args, err);
	if (ok && n > 1 && strcmp(args[1], "--") == 0)
		memmove(&args[1], &args[2], sizeof(char *) * (size_t)(n-- - 1));
	if (ok && n < 2)
		ok =
		    husk_fail(err, HUSK_EXIT_EXEC_FAILED,
		              "exec: no command given (husk exec [OPTION...] -- COMMAND [ARG...])");
	if (ok)
		o->command = g_strdupv(args + 1);
	else if (err && *err && (*err)->domain != HUSK_ERROR)
		(*err)->domain = HUSK_ERROR, (*err)->code = HUSK_EXIT_EXEC_FAILED;
	g_free(args);
	g_option_context_free(ctx);
	return ok;
}

/* --- the kernel and its initramfs -------------------------------------------- */

static char *cache_dir(const char *sub)
{
	const char *env = g_getenv("HUSK_CACHE");

	return env ? g_build_filename(env, sub, NULL)
	           : g_build_filename(g_get_user_cache_dir(), "husk", sub, NULL);
}

/* The host's own kernel if we may read it, else the newest one the project's setup fetched. */
static char *find_kernel(GError **err)
{
	struct utsname u;
	char *host = NULL;

	if (uname(&u) == 0) {
		host = g_strdup_printf("/boot/vmlinuz-%s", u.release);
		if (access(host, R_OK) == 0)
			return host;
	}
	char *kernels = cache_dir("kernels"), *best = NULL;
	GDir *dir = g_dir_open(kernels, 0, NULL);
	const char *pkg;
	while (dir && (pkg = g_dir_read_name(dir))) {
		char *boot = g_build_filename(kernels, pkg, "boot", NULL);
		GDir *b = g_dir_open(boot, 0, NULL);
		const char *f;
		while (b && (f = g_dir_read_name(b))) {
			/* Prefer the cloud kernel: fewer drivers, faster boot. */
			if (g_str_has_prefix(f, "vmlinuz-") && (!best || strstr(f, "cloud"))) {
				g_free(best);
				best = g_build_filename(boot, f, NULL);
			}
		}
		if (b)
			g_dir_close(b);
		g_free(boot);
	}
	if (dir)
		g_dir_close(dir);
	if (!best)
		husk_fail(
		    err, HUSK_EXIT_EXEC_FAILED,
		    "exec: no kernel: %s is not readable and %s holds none (pass --kernel, or "
		    "fetch one with guest-tests/lib/debian-kernel.sh cloud-amd64)",
		    host ? host : "/boot/vmlinuz-*", kernels);
	g_free(kernels);
	g_free(host);
	return best;
}

/* The version a bzImage names (setup header kernel_version, at 0x20e). */
static char *bzimage_version(const char *path)
{
	uint8_t buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf), 0) : -1;
	char *ver = NULL;

	if (fd >= 0)
		close(fd);
	if (n > 0x210) {
		size_t off = (size_t)(buf[0x20e] | buf[0x20f] << 8) + 0x200;
		if (off < (size_t)n) {
			size_t len = strnlen((char *)buf + off, (size_t)n - off);
			ver = g_strndup((char *)buf + off, len);
			char *space = strchr(ver, ' ');
			if (space)
				*space = '\0';
		}
	}
	return ver;
}

/* lib/modules/VERSION beside the kernel's boot/ (an unpacked package), else /lib/modules. */
static char *find_modules(const char *kernel, GError **err)
{
	const char *base = strrchr(kernel, '/');
	char *ver = g_str_has_prefix(base ? base + 1 : kernel, "vmlinuz-")
	                ? g_strdup((base ? base + 1 : kernel) + 8)
	                : bzimage_version(kernel);
	char *dir = g_path_get_dirname(kernel), *top = g_path_get_dirname(dir);
	char *beside = ver ? g_build_filename(top, "lib", "modules", ver, NULL) : NULL;
	char *system = ver ? g_build_filename("/lib/modules", ver, NULL) : NULL;
	char *found = NULL;

	if (beside && g_file_test(beside, G_FILE_TEST_IS_DIR))
		found = g_strdup(beside);
	else if (system && g_file_test(system, G_FILE_TEST_IS_DIR))
		found = g_strdup(system);
	else
		husk_fail(err, HUSK_EXIT_EXEC_FAILED,
		          "exec: no modules for kernel %s (version %s): pass --modules DIR", kernel,
		          ver ? ver : "unknown");
	g_free(ver);
	g_free(dir);
	g_free(top);
	g_free(beside);
	g_free(system);
	return found;
}

static bool session_wanted(const struct exec_opts *o)
{
	return o->tty || o->interactive;
}

static bool module_list(const char *moddir, const struct exec_opts *o, GPtrArray *out, GError **err)
{
	const char *required[] = {"virtio_pci", "virtiofs", "overlay",
	                          session_wanted(o) ? "vmw_vsock_virtio_transport" : NULL, NULL};
	const char *optional[] = {"pvpanic-mmio", o->disks->len ? "virtio_blk" : NULL, NULL, NULL};

	if (o->nets->len)
		optional[o->disks->len ? 2 : 1] = "virtio_net";
	return modules_resolve(moddir, required, true, out, err) &&
	       modules_resolve(moddir, optional, false, out, err);
}

/* One key for the initramfs: our init and every module file as it is now. */
static char *initramfs_key(const char *moddir, GPtrArray *mods)
{
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);

	g_checksum_update(sum, husk_init_blob, (gssize)husk_init_blob_size);
	for (guint i = 0; i < mods->len; i++) {
		char *path = g_build_filename(moddir, mods->pdata[i], NULL);
		struct stat st = {0};
		stat(path, &st);
		char *line = g_strdup_printf("%s %lld %lld.%ld\n", path, (long long)st.st_size,
		                             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		g_checksum_update(sum, (const guchar *)line, -1);
		g_free(line);
		g_free(path);
	}
	char *key = g_strdup(g_checksum_get_string(sum));
	g_checksum_free(sum);
	return key;
}

static GBytes *build_initramfs(const char *moddir, GPtrArray *mods, GError **err)
{
	static const char *const dirs[] = {"dev", "proc",    "sys", "ctl", "newroot", "lower",
	                                   "rw",  "modules", "tmp", "run", "etc"};
	struct cpio c;
	GString *order = g_string_new(NULL);

	cpio_init(&c);
	for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++)
		cpio_add_dir(&c, dirs[i], 0755);
	cpio_add_char_dev(&c, "dev/console", 0600, 5, 1);
	cpio_add_file(&c, "init", 0755, husk_init_blob, husk_init_blob_size);
	for (guint i = 0; i < mods->len; i++) {
		char *path = g_build_filename(moddir, mods->pdata[i], NULL), *data;
		gsize len;
		if (!g_file_get_contents(path, &data, &len, NULL)) {
			husk_fail(err, HUSK_EXIT_EXEC_FAILED, "exec: cannot read module %s", path);
			g_free(path);
			g_string_free(order, TRUE);
			g_bytes_unref(cpio_finish(&c));
			return NULL;
		}
		char *name = g_path_get_basename(mods->pdata[i]);
		char *dst = g_build_filename("modules", name, NULL);
		cpio_add_file(&c, dst, 0644, data, len);
		g_string_append_printf(order, "%s\n", name);
		g_free(dst);
		g_free(name);
		g_free(data);
		g_free(path);
	}
	cpio_add_file(&c, "modules/order", 0644, order->str, order->len);
	g_string_free(order, TRUE);
	return cpio_finish(&c);
}

/* Built once per kernel and kept: the next exec with the same kernel starts at once. */
static char *cached_initramfs(const char *moddir, const struct exec_opts *o, GError **err)
{
	GPtrArray *mods = g_ptr_array_new_with_free_func(g_free);
	char *path = NULL;

	if (!module_list(moddir, o, mods, err))
		goto out;
	char *dir = cache_dir("initramfs"), *key = initramfs_key(moddir, mods);
	path = g_strdup_printf("%s/exec-%.32s.cpio", dir, key);
	g_free(key);
	if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
		GBytes *img = build_initramfs(moddir, mods, err);
		gsize len;
		const void *data = img ? g_bytes_get_data(img, &len) : NULL;
		char *tmp = g_strdup_printf("%s.%d.tmp", path, getpid());
		/* Written aside and renamed: two execs at once never see half a file. */
		if (!img || g_mkdir_with_parents(dir, 0755) ||
		    !g_file_set_contents(tmp, data, (gssize)len, NULL) || rename(tmp, path)) {
			if (img)
				husk_fail(err, HUSK_EXIT_EXEC_FAILED, "exec: cannot write %s",
				          path);
			g_unlink(tmp);
			g_clear_pointer(&path, g_free);
		}
		g_free(tmp);
		if (img)
			g_bytes_unref(img);
	}
	g_free(dir);
out:
	g_ptr_array_unref(mods);
	return path;
}

/* --- what the guest is told -------------------------------------------------- */

static void rec(GString *s, const char *key, const char *value)
{
	g_string_append_printf(s, "%s=%s", key, value);
	g_string_append_c(s, '\0');
}

/* husk-init reads the records into fixed room: a command that would be cut is refused. */
static bool exec_file_fits(const GString *exec, GError **err)
{
	gsize records = 0;

	for (gsize i = 0; i < exec->len; i++)
		records += exec->str[i] == '\0';
	if (records > EXEC_FILE_MAX_RECORDS || exec->len > EXEC_FILE_MAX_BYTES)
		return husk_fail(err, HUSK_EXIT_EXEC_FAILED,
		                 "exec: the command, its environment and mounts are too long "
		                 "(%" G_GSIZE_FORMAT " items in %" G_GSIZE_FORMAT
		                 " bytes; at most %d items in %d bytes)",
		                 records, exec->len, EXEC_FILE_MAX_RECORDS, EXEC_FILE_MAX_BYTES);
	return true;
}

struct mount_spec {
	char *host, *guest;
	bool ro;
};

static bool parse_mount(const char *text, struct mount_spec *m, GError **err)
{
	char *spec = g_strdup(text);
	char *comma = strrchr(spec, ',');

	m->ro = false;
	if (comma && strcmp(comma, ",ro") == 0) {
		m->ro = true;
		*comma = '\0';
	} else if (comma && strcmp(comma, ",rw") == 0) {
		*comma = '\0';
	}
	char *colon = strchr(spec, ':');
	if (colon)
		*colon = '\0';
	char *host = g_canonicalize_filename(spec, NULL);
	m->guest = colon ? g_strdup(colon + 1) : g_strdup(host);
	m->host = host;
	g_free(spec);
	if (!g_file_test(m->host, G_FILE_TEST_IS_DIR) || m->guest[0] != '/')
		return husk_fail(err, HUSK_EXIT_EXEC_FAILED, "--mount: \"%s\": %s", text,
		                 m->guest[0] != '/' ? "the guest path must be absolute"
		                                    : "no such host directory");
	return true;
}

static char *user_net(const struct net_config *n)
{
	char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
	int prefix = __builtin_popcount(ntohl(n->mask.s_addr));

	inet_ntop(AF_INET, &n->dhcp_start, a, sizeof(a));
	inet_ntop(AF_INET, &n->host, g, sizeof(g));
	inet_ntop(AF_INET, &n->dns, d, sizeof(d));
	return g_strdup_printf("%s/%d,%s,%s", a, prefix, g, d);
}

/*
 * What the default root (the host's /) hides from the guest: what a command
 * needs least and an attacker wants most, secrets (password hashes, host
 * keys, whatever users keep at home), and the host's /dev, /run and /tmp,
 * where husk-init mounts the guest's own. --rootfs / shows them.
 */
static const char *const hidden_by_default[] = {
    "etc/shadow",
    "etc/shadow-",
    "etc/gshadow",
    "etc/gshadow-",
    "etc/security/opasswd",
    "etc/ssh/ssh_host_rsa_key",
    "etc/ssh/ssh_host_ecdsa_key",
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_dsa_key",
    "etc/ssl/private",
    "var/backups",
    "root",
    "home",
    "dev",
    "run",
    "tmp",
    NULL,
};

/* The defaults, then --env in order; a later NAME=... replaces an earlier one. */
static GPtrArray *merged_env(GPtrArray *envs)
{
	GPtrArray *all = g_ptr_array_new();

	g_ptr_array_add(all, DEFAULT_PATH);
	g_ptr_array_add(all, "HOME=/root");
	for (guint i = 0; i < envs->len; i++) {
		const char *e = envs->pdata[i];
		size_t name = strcspn(e, "=") + 1;
		guint j = 0;
		while (j < all->len && strncmp(all->pdata[j], e, name) != 0)
			j++;
		if (j < all->len)
			all->pdata[j] = (gpointer)e;
		else
			g_ptr_array_add(all, (gpointer)e);
	}
	return all;
}

static void add_env(GString *exec, GPtrArray *envs)
{
	GPtrArray *all = merged_env(envs);

	for (guint i = 0; i < all->len; i++)
		rec(exec, "env", all->pdata[i]);
	g_ptr_array_unref(all);
}

/* The VM: control share, root, mounts, disks, NICs; and the exec file that explains them. */
static bool plan(struct exec_opts *o, struct vm_config *cfg, GString *exec, const char *ctl,
                 GError **err)
{
	struct share_config *s = g_new0(struct share_config, 1);
	char *cwd = g_get_current_dir();

	*s = (struct share_config){.path = g_strdup(ctl), .tag = g_strdup(CTL_TAG)};
	g_ptr_array_add(cfg->shares, s);
	if (o->root_dev) {
		char *r = g_strdup_printf("dev:%s", o->root_dev);
		rec(exec, "root", r);
		g_free(r);
	} else {
		s = g_new0(struct share_config, 1);
		/*
		 * One file system to the guest, the host's mounts included but its
		 * kernel's (procfs, sysfs, ...): it mounts its own /proc and the rest.
		 */
		const char *root = o->image_root ? o->image_root : o->rootfs;
		*s = (struct share_config){.path = g_strdup(root ? root : "/"),
		                           .tag = g_strdup(ROOT_TAG),
		                           .serve = {.read_only = true,
		                                     .cross_mounts = !o->image_root,
		                                     .hidden = root ? NULL : hidden_by_default}};
		g_ptr_array_add(cfg->shares, s);
		rec(exec, "root", "overlay:" ROOT_TAG);
	}
	/* A container sees its image, not the folder husk was started in. */
	if (o->mounts->len == 0 && !o->image_root)
		g_ptr_array_add(o->mounts, g_strdup(cwd));
	bool ok = true, cwd_shared = false;
	for (guint i = 0; ok && i < o->mounts->len; i++) {
		struct mount_spec m;
		ok = parse_mount(o->mounts->pdata[i], &m, err);
		if (ok) {
			char *tag = g_strdup_printf("husk-m%u", i);
			char *r = g_strdup_printf("%s:%s:%s", tag, m.ro ? "ro" : "rw", m.guest);
			s = g_new0(struct share_config, 1);
			*s = (struct share_config){
			    .path = g_strdup(m.host), .tag = tag, .serve.read_only = m.ro};
			g_ptr_array_add(cfg->shares, s);
			rec(exec, "mount", r);
			g_free(r);
			cwd_shared |= strcmp(m.host, cwd) == 0 && strcmp(m.guest, cwd) == 0;
		}
		g_free(m.host);
		g_free(m.guest);
	}
	/* The disks and NICs move to the VM's configuration. */
	g_ptr_array_set_free_func(o->disks, NULL);
	g_ptr_array_set_free_func(o->nets, NULL);
	for (guint i = 0; i < o->disks->len; i++)
		g_ptr_array_add(cfg->disks, o->disks->pdata[i]);
	for (guint i = 0; i < o->nets->len; i++) {
		struct net_config *n = o->nets->pdata[i];
		if (i == 0 && n->kind == NET_USER) {
			char *net = user_net(n);
			rec(exec, "net", net);
			g_free(net);
		}
		g_ptr_array_add(cfg->nets, n);
	}
	add_env(exec, o->envs);
	rec(exec, "cwd", o->workdir ? o->workdir : cwd_shared ? cwd : "/");
	/* An image's WorkingDir need not exist in it: Docker makes it. */
	if (o->image_root) {
		rec(exec, "cwd-make", "1");
		rec(exec, "forward-signals", "1");
		/* As Docker does: the app may listen on port 80 as any user. */
		rec(exec, "sysctl", "net.ipv4.ip_unprivileged_port_start=0");
	}
	if (o->user)
		rec(exec, "user", o->user);
	if (session_wanted(o)) {
		char *port = g_strdup_printf("%u", EXEC_SESSION_PORT);
		rec(exec, "session", port);
		g_free(port);
	}
	for (char **a = o->command; *a; a++)
		rec(exec, "arg", *a);
	g_free(cwd);
	return ok && exec_file_fits(exec, err);
}

/* --- the command's output, as it arrives --------------------------------------- */

struct relay {
	char *ctl;
	int inotify;
	int started_fd; /* a byte here once the guest says the command runs; -1: none */
	struct stream {
		const char *name;
		int out_fd;
		int fd; /* the guest's file, once it exists */
		off_t done;
		bool refused; /* not a regular file: never read */
	} streams[2];
};

/*
 * A file the guest wrote in the control directory, opened for reading. The
 * guest can put anything there under the expected name: a symlink to a host
 * file, a FIFO that would block husk, /dev/zero's twin. Only a regular file
 * is taken; -1 with errno ENOENT (not there yet) or EPERM (refused).
 */
static int open_ctl_file(const char *ctl, const char *name)
{
	char *path = g_build_filename(ctl, name, NULL);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	g_free(path);
	if (fd < 0 && errno == ENOENT)
		return -1;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* husk-init's "started": the command's execvp succeeded. Said once. */
static void note_started(struct relay *r)
{
	if (r->started_fd < 0)
		return;
	int fd = open_ctl_file(r->ctl, "started");
	if (fd < 0)
		return;
	close(fd);
	if (write(r->started_fd, "s", 1) != 1)
		g_debug("started: %s", g_strerror(errno));
	r->started_fd = -1;
}

static void pump(struct relay *r)
{
	char buf[65536];

	note_started(r);

	for (int i = 0; i < 2; i++) {
		struct stream *s = &r->streams[i];
		if (s->refused)
			continue;
		if (s->fd < 0) {
			s->fd = open_ctl_file(r->ctl, s->name);
			if (s->fd < 0 && errno == EPERM) {
				g_printerr(
				    "husk: exec: the guest's %s is not a regular file; ignored\n",
				    s->name);
				s->refused = true;
			}
			if (s->fd < 0)
				continue;
		}
		ssize_t n;
		while ((n = pread(s->fd, buf, sizeof(buf), s->done)) > 0) {
			for (ssize_t w = 0; w < n;) {
				ssize_t k = write(s->out_fd, buf + w, (size_t)(n - w));
				if (k < 0 && errno == EINTR)
					continue;
				if (k < 0)
					break; /* our stdout went away: keep going, the status still
					          counts */
				w += k;
			}
			s->done += n;
		}
	}
}

static gboolean on_inotify(gint fd, GIOCondition cond, gpointer data)
{
	struct relay *r = data;
	char events[4096];

	while (read(fd, events, sizeof(events)) > 0)
		;
	pump(r);
	return G_SOURCE_CONTINUE;
}

/* --- running it ------------------------------------------------------------------ */

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	remove(path);
	return 0;
}

/*
 * The control directory and whatever the guest made in it, once the VM is
 * gone: depth first, never following a symlink, never leaving the file
 * system it is on.
 */
static void remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* What the guest's status file says, as husk's exit status. */
static int guest_status(const char *ctl)
{
	char text[512];
	int fd = open_ctl_file(ctl, "status"), status = HUSK_EXIT_EXEC_FAILED, n;
	ssize_t len = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);

	if (fd >= 0)
		close(fd);
	if (len < 0) {
		g_printerr("husk: exec: the guest stopped before the command ended\n");
		return status;
	}
	text[len] = '\0';
	if (sscanf(text, "exit %d", &n) == 1 && n >= 0 && n < 256)
		return n;
	if (sscanf(text, "signal %d", &n) == 1 && n > 0 && n < 128)
		return 128 + n;
	/* The guest's own words, on one line and with nothing a terminal would act on. */
	text[strcspn(text, "\n")] = '\0';
	for (char *c = text; *c; c++)
		if (!g_ascii_isprint(*c))
			*c = '?';
	g_printerr("husk: exec: guest: %s\n", g_str_has_prefix(text, "error ") ? text + 6 : text);
	return status;
}

static int64_t now_ns(void)
{
	return g_get_monotonic_time() * 1000;
}

/*
 * husk run --image: SIGINT or SIGTERM to husk reaches the app as SIGTERM
 * (husk-init finds the "signal" file in the control share; with -t or -i,
 * a SIGNAL frame through the app's session); a second signal, or
 * STOP_GRACE_S without an end, stops the VM as SIGKILL would.
 */
struct forward {
	struct machine *m;
	const char *ctl;
	struct exec_session *session;
	int signals;
	GSource *grace;
	bool killed;
};

static gboolean grace_over(gpointer data)
{
	struct forward *f = data;

	f->killed = true;
	machine_request_stop(f->m, STOP_SIGNAL);
	return G_SOURCE_REMOVE;
}

static void start_grace(struct forward *f)
{
	f->grace = g_timeout_source_new_seconds(STOP_GRACE_S);
	g_source_set_callback(f->grace, grace_over, f, NULL);
	g_source_attach(f->grace, machine_context(f->m));
}

static void forward_signal(void *data, int signo)
{
	struct forward *f = data;
	char *path = g_build_filename(f->ctl, "signal", NULL);

	if (f->signals++ == 0 && f->session) {
		exec_session_signal(f->session, SIGTERM);
		start_grace(f);
	} else if (f->signals == 1 && g_file_set_contents(path, "15\n", -1, NULL)) {
		start_grace(f);
	} else {
		grace_over(f);
	}
	g_free(path);
}

/*
 * With a session, at power-off: the app's status from its EXIT; else what
 * husk-init wrote, if it did; else how the session ended.
 */
static int session_status(struct exec_session *s, const char *ctl)
{
	const char *why;
	int status = exec_session_status(s, &why);

	if (status >= 0)
		return status;
	int fd = why ? open_ctl_file(ctl, "status") : -1;
	if (why && fd < 0) {
		g_printerr("husk: run: the app's session: %s\n", why);
		return HUSK_EXIT_EXEC_FAILED;
	}
	if (fd >= 0)
		close(fd);
	return guest_status(ctl);
}

static int run_vm(struct vm_config *cfg, const char *ctl, unsigned int timeout,
                  bool forward_signals, const struct exec_io *io_fds, struct exec_session *session,
                  bool tty)
{
	GError *err = NULL;
	struct relay r = {.ctl = (char *)ctl,
	                  .started_fd = io_fds->started_fd,
	                  .streams = {{.name = "stdout", .out_fd = io_fds->app_stdout, .fd = -1},
	                              {.name = "stderr", .out_fd = io_fds->app_stderr, .fd = -1}}};
	/*
	 * The guest's output files are read on the I/O thread as they grow; a
	 * signal passed on to an image's app is a file written there.
	 */
	unsigned int io = SECCOMP_IO_READ_FILES | (forward_signals ? SECCOMP_IO_WRITE_FILES : 0) |
	                  (tty ? SECCOMP_IO_TERMINAL : 0);
	struct machine *m = process_create_machine_in(cfg, io, ctl, &err);
	int signo = 0, status;

	if (!m) {
		g_printerr("husk: exec: %s\n", err->message);
		g_error_free(err);
		return HUSK_EXIT_EXEC_FAILED;
	}
	r.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	GSource *watch = NULL;
	if (r.inotify >= 0 && inotify_add_watch(r.inotify, ctl, IN_MODIFY | IN_CREATE) >= 0) {
		watch = g_unix_fd_source_new(r.inotify, G_IO_IN);
		g_source_set_callback(watch, (GSourceFunc)(void (*)(void))on_inotify, &r, NULL);
		g_source_attach(watch, machine_context(m));
	}
	if (session)
		exec_session_attach(session, machine_context(m));
	struct forward fwd = {.m = m, .ctl = ctl, .session = session};
	enum stop_reason reason =
	    forward_signals ? process_run_machine_forwarding(m, cfg, &signo, forward_signal, &fwd)
	                    : process_run_machine(m, cfg, &signo);
	int64_t stopped = now_ns();
	/* husk's own lines from here on start at the left, as the terminal was. */
	if (session)
		console_restore_terminal();
	if (fwd.grace) {
		g_source_destroy(fwd.grace);
		g_source_unref(fwd.grace);
	}
	if (watch) {
		g_source_destroy(watch);
		g_source_unref(watch);
	}
	machine_destroy(m);
	pump(&r);
	for (int i = 0; i < 2; i++)
		if (r.streams[i].fd >= 0)
			close(r.streams[i].fd);
	if (r.inotify >= 0)
		close(r.inotify);
	if (cfg->timings)
		g_printerr("husk: exec: VM stopped after %.0f ms; torn down in %.1f ms\n",
		           (double)(stopped - cfg->start_ns) / 1e6,
		           (double)(now_ns() - stopped) / 1e6);
	switch (reason) {
	case STOP_POWEROFF:
		return session ? session_status(session, ctl) : guest_status(ctl);
	case STOP_TIMEOUT:
		g_printerr("husk: exec: --timeout: still running after %u s, stopped\n", timeout);
		return HUSK_EXIT_TIMEOUT;
	case STOP_SIGNAL:
		if (fwd.killed) {
			g_printerr("husk: the app did not end within %d s of SIGTERM: stopped\n",
			           STOP_GRACE_S);
			return HUSK_EXIT_SIGNAL + SIGKILL;
		}
		g_printerr("husk: exec: stopped by signal %d (%s)\n", signo, strsignal(signo));
		return HUSK_EXIT_SIGNAL + signo;
	case STOP_PANIC:
	case STOP_REBOOT:
	case STOP_TRIPLE_FAULT:
		g_printerr("husk: exec: the guest kernel %s\n",
		           reason == STOP_PANIC ? "panicked" : stop_reboot_words(reason));
		return HUSK_EXIT_EXEC_FAILED;
	default:
		g_printerr("husk: exec: the VM failed\n");
		status = HUSK_EXIT_EXEC_FAILED;
	}
	return status;
}

/* Where the guest's console goes: stderr, a --console=FILE, or nowhere. */
static int open_console(const struct exec_opts *o, GError **err)
{
	if (o->console && !o->console_file)
		return STDERR_FILENO;
	const char *path = o->console_file ? o->console_file : "/dev/null";
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		husk_fail(err, HUSK_EXIT_EXEC_FAILED, "--console: %s: %s", path, g_strerror(errno));
	return fd;
}

/*
 * husk run --image -t/-i: the VM gets a vsock device, its socket in a
 * folder of its own (not the control share, which the guest can change),
 * and husk's end of the app's session listens beside it.
 */
static struct exec_session *open_session(const struct exec_opts *o, struct vm_config *cfg,
                                         const struct exec_io *io, char **dir, GError **err)
{
	GError *why = NULL;

	*dir = g_dir_make_tmp("husk-run-XXXXXX", &why);
	if (!*dir) {
		husk_fail(err, HUSK_EXIT_EXEC_FAILED, "run: the app's session: %s", why->message);
		g_error_free(why);
		return NULL;
	}
	cfg->vsock = g_new0(struct vsock_config, 1);
	cfg->vsock->path = g_build_filename(*dir, "vsock", NULL);
	cfg->vsock->cid = VSOCK_DEFAULT_CID;
	char *path = g_strdup_printf("%s_%u", cfg->vsock->path, EXEC_SESSION_PORT);
	GPtrArray *env = merged_env(o->envs);
	g_ptr_array_add(env, NULL);
	const struct exec_session_opts so = {
	    .argv = (const char *const *)o->command,
	    .env = (const char *const *)env->pdata,
	    .tty = o->tty,
	    .interactive = o->interactive,
	    .in_fd = STDIN_FILENO,
	    .out_fd = io->app_stdout,
	    .err_fd = io->app_stderr,
	};
	struct exec_session *s = exec_session_new(path, &so, err);
	g_ptr_array_unref(env);
	g_free(path);
	return s;
}

static void free_opts(struct exec_opts *o)
{
	g_free(o->kernel);
	g_free(o->modules);
	g_free(o->rootfs);
	g_free(o->root_dev);
	g_free(o->workdir);
	g_free(o->user);
	g_free(o->image_root);
	g_free(o->console_file);
	g_ptr_array_unref(o->mounts);
	g_ptr_array_unref(o->envs);
	g_ptr_array_unref(o->disks);
	g_ptr_array_unref(o->nets);
	g_strfreev(o->command);
}

static void free_disk(gpointer d)
{
	disk_config_clear(d);
	g_free(d);
}

static void free_net(gpointer n)
{
	net_config_clear(n);
	g_free(n);
}

static int fail(GError *err)
{
	g_printerr("husk: %s\n", err->message);
	g_error_free(err);
	return HUSK_EXIT_EXEC_FAILED;
}

int exec_main(int argc, char **argv, int64_t start_ns)
{
	const struct exec_io io = {
	    .app_stdout = STDOUT_FILENO, .app_stderr = STDERR_FILENO, .started_fd = -1};

	return exec_main_io(argc, argv, start_ns, &io);
}

int exec_main_io(int argc, char **argv, int64_t start_ns, const struct exec_io *io)
{
	struct exec_opts o = {.memory = DEFAULT_MEMORY, .cpus = 1};
	struct vm_config cfg;
	GError *err = NULL;
	int status;

	o.mounts = g_ptr_array_new_with_free_func(g_free);
	o.envs = g_ptr_array_new_with_free_func(g_free);
	o.disks = g_ptr_array_new_with_free_func(free_disk);
	o.nets = g_ptr_array_new_with_free_func(free_net);
	int console = -1;
	if (!parse_options(argc, argv, &o, &err) || (console = open_console(&o, &err)) < 0) {
		free_opts(&o);
		return fail(err);
	}
	char *kernel = o.kernel ? g_strdup(o.kernel) : find_kernel(&err);
	if (kernel && !arch_check_files(kernel, NULL, &err))
		g_clear_pointer(&kernel, g_free);
	char *moddir = !kernel     ? NULL
	               : o.modules ? g_strdup(o.modules)
	                           : find_modules(kernel, &err);
	char *initrd = moddir ? cached_initramfs(moddir, &o, &err) : NULL;
	char *ctl = initrd ? g_dir_make_tmp("husk-exec-XXXXXX", NULL) : NULL;
	if (!initrd || !ctl) {
		status = err ? fail(err) : HUSK_EXIT_EXEC_FAILED;
		goto out;
	}
	config_init(&cfg);
	cfg.kernel = g_strdup(kernel);
	cfg.initrd = g_strdup(initrd);
	cfg.cmdline = g_strdup("console=ttyS0 quiet loglevel=3 panic=-1");
	cfg.memory = o.memory;
	cfg.cpus = o.cpus;
	cfg.console_out = console;
	cfg.console_in = -1;
	cfg.timeout_s = o.timeout;
	cfg.allow_pvm = o.allow_pvm;
	cfg.timings = o.timings;
	cfg.no_seccomp = o.no_seccomp;
	cfg.start_ns = start_ns;
	GString *exec = g_string_new(NULL);
	struct exec_session *session = NULL;
	char *sockdir = NULL;
	if (!plan(&o, &cfg, exec, ctl, &err) ||
	    (session_wanted(&o) && !(session = open_session(&o, &cfg, io, &sockdir, &err)))) {
		status = fail(err);
	} else {
		char *path = g_build_filename(ctl, "exec", NULL);
		if (g_file_set_contents(path, exec->str, (gssize)exec->len, &err))
			status =
			    run_vm(&cfg, ctl, o.timeout, o.image_root != NULL, io, session, o.tty);
		else
			status = fail(err);
		g_free(path);
	}
	g_string_free(exec, TRUE);
	exec_session_free(session);
	config_clear(&cfg);
	if (sockdir)
		remove_tree(sockdir);
	g_free(sockdir);
out:
	if (console != STDERR_FILENO)
		close(console);
	if (ctl)
		remove_tree(ctl);
	g_free(ctl);
	g_free(initrd);
	g_free(moddir);
	g_free(kernel);
	free_opts(&o);
	return status;
}
