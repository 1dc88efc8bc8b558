// SPDX-License-Identifier: MIT
/*
 * husk run --image REF: a container image's app in its own VM.
 *
 * The image is resolved and unpacked (vmm/oci/), then run exactly as
 * `husk exec` runs a command (vmm/exec.c): its root served read-only over
 * virtio-fs under a throwaway layer, husk-init as PID 1, the app its only
 * child, its output and exit status husk's. This file only turns Docker's
 * words (Entrypoint, Cmd, Env, WorkingDir, User, -v, -p, -t, -i) into
 * exec's; -t and -i run the app through a session (vmm/exec_session.h).
 */
#include "vmm/cli/run_image.h"

#include <string.h>
#include <unistd.h>

#include "vmm/cli/run_detached.h"
#include "vmm/config.h"
#include "vmm/error.h"
#include "vmm/exec.h"
#include "vmm/oci/image.h"
#include "vmm/oci/runspec.h"

/* The run's spec, and what is only for this command: where it runs. */
struct run_image_opts {
	struct run_spec spec;
	gboolean detach, tty, interactive;
	char *name;
};

#define DOCKER_TERM "TERM=xterm" /* what docker run -t sets, unless the image or -e does */

static gboolean opt_add(GPtrArray *list, const char *v)
{
	g_ptr_array_add(list, g_strdup(v));
	return TRUE;
}

static gboolean opt_env(const char *n, const char *v, gpointer d, GError **e)
{
	if (!strchr(v, '=') || *v == '=')
		return husk_fail(e, HUSK_EXIT_USAGE, "-e: \"%s\" is not NAME=VALUE", v);
	return opt_add(((struct run_image_opts *)d)->spec.envs, v);
}

static gboolean opt_volume(const char *n, const char *v, gpointer d, GError **e)
{
	return opt_add(((struct run_image_opts *)d)->spec.volumes, v);
}

static gboolean opt_publish(const char *n, const char *v, gpointer d, GError **e)
{
	return opt_add(((struct run_image_opts *)d)->spec.publish, v);
}

static gboolean opt_entrypoint(const char *n, const char *v, gpointer d, GError **e)
{
	struct run_spec *s = &((struct run_image_opts *)d)->spec;

	g_free(s->entrypoint);
	s->entrypoint = g_strdup(v);
	s->entrypoint_set = true;
	return TRUE;
}

/* An option exec understands as it is: kept with its value for exec's parser. */
static gboolean opt_pass(const char *n, const char *v, gpointer d, GError **e)
{
	static const char *const longs[][2] = {
	    {"-m", "--memory"}, {"-c", "--cpus"}, {"-k", "--kernel"}};
	struct run_image_opts *o = d;

	/* "-m=1G" is no option: the long name always, with its value after '='. */
	for (size_t i = 0; i < G_N_ELEMENTS(longs); i++)
		if (strcmp(n, longs[i][0]) == 0)
			n = longs[i][1];
	g_ptr_array_add(o->spec.options, v ? g_strdup_printf("%s=%s", n, v) : g_strdup(n));
	return TRUE;
}

#define CB(fn) G_OPTION_ARG_CALLBACK, (gpointer)(fn)

static bool parse(int argc, char **argv, struct run_image_opts *o, GError **err)
{
	GOptionEntry entries[] = {
	    {"image", 0, 0, G_OPTION_ARG_FILENAME, &o->spec.image,
	     "An OCI image layout folder, or an OCI or docker save archive", "PATH[:TAG]"},
	    {"env", 'e', 0, CB(opt_env), "Set a variable (repeatable)", "NAME=VALUE"},
	    {"volume", 'v', 0, CB(opt_volume), "Share a host folder (repeatable)",
	     "HOSTDIR:GUESTPATH[:ro]"},
	    {"publish", 'p', 0, CB(opt_publish), "Publish a guest port (repeatable)",
	     "[ADDR:]HOSTPORT:GUESTPORT[/udp]"},
	    {"entrypoint", 0, 0, CB(opt_entrypoint), "Replace the image's Entrypoint (and Cmd)",
	     "PROGRAM"},
	    {"user", 'u', 0, G_OPTION_ARG_STRING, &o->spec.user, "Replace the image's User",
	     "USER[:GROUP]"},
	    {"workdir", 'w', 0, G_OPTION_ARG_STRING, &o->spec.workdir,
	     "Replace the image's WorkingDir", "DIR"},
	    {"memory", 'm', 0, CB(opt_pass), "Guest RAM (default 1G)", "SIZE"},
	    {"cpus", 'c', 0, CB(opt_pass), "vCPUs (default 1)", "N"},
	    {"kernel", 'k', 0, CB(opt_pass), "Kernel, as for husk exec", "PATH"},
	    {"modules", 0, 0, CB(opt_pass), "The kernel's module tree, as for husk exec", "DIR"},
	    {"timeout", 0, 0, CB(opt_pass), "Stop the VM after this long: exit status 124",
	     "SECONDS"},
	    {"tty", 't', 0, G_OPTION_ARG_NONE, &o->tty,
	     "A terminal for the app (its stdout and stderr merged), as docker run -t", NULL},
	    {"interactive", 'i', 0, G_OPTION_ARG_NONE, &o->interactive,
	     "Pass husk's stdin on to the app, as docker run -i", NULL},
	    {"console", 0, G_OPTION_FLAG_OPTIONAL_ARG, CB(opt_pass),
	     "Show the guest's console on stderr, or write it to FILE", "[FILE]"},
	    {"allow-pvm", 0, G_OPTION_FLAG_NO_ARG, CB(opt_pass),
	     "Run even on a PVM-backed /dev/kvm", NULL},
	    {"timings", 0, G_OPTION_FLAG_NO_ARG, CB(opt_pass), "Say where the time went", NULL},
	    {"no-seccomp", 0, G_OPTION_FLAG_NO_ARG, CB(opt_pass),
	     "Run without husk's system-call filter", NULL},
	    {"detach", 'd', 0, G_OPTION_ARG_NONE, &o->detach,
	     "Run in the background as instance --name (husk list, logs, stop, delete)", NULL},
	    {"name", 0, 0, G_OPTION_ARG_STRING, &o->name, "The instance's name, with --detach",
	     "NAME"},
	    {0},
	};
	GOptionContext *ctx =
	    g_option_context_new("--image PATH[:TAG] [OPTION...] [-- COMMAND [ARG...]]");
	GOptionGroup *group = g_option_group_new("run", "husk run --image options", "", o, NULL);

	g_option_group_add_entries(group, entries);
	g_option_context_set_main_group(ctx, group);
	g_option_context_set_summary(ctx, "Run a container image's app in its own VM.");
	g_option_context_set_description(
	    ctx, "The command is the image's Entrypoint and Cmd: arguments given replace Cmd,\n"
	         "--entrypoint replaces both. Ctrl-C or SIGTERM reaches the app as SIGTERM;\n"
	         "10 s later, or at a second signal, the VM stops (137).\n"
	         "\n"
	         "-t: the app runs on a terminal in the guest, as big as husk's (and resized\n"
	         "with it), TERM=xterm unless set; its stdout and stderr come as one stream.\n"
	         "-i: husk's stdin goes to the app, and its end closes the app's. -it on a\n"
	         "terminal puts that terminal in raw mode, so that every key, Ctrl-C included,\n"
	         "goes to the app's terminal; -it with stdin not a terminal is refused.\n"
	         "\n"
	         "Exit status: the app's; 128+N when signal N killed it; 127 no such program,\n"
	         "126 not runnable; 125 when husk, the image or the VM failed first (a bad\n"
	         "option or image too).");
	/* Options end at the command, as for husk exec. */
	g_option_context_set_strict_posix(ctx, TRUE);
	char **args = g_new0(char *, argc + 1);
	memcpy(args, argv, sizeof(char *) * argc);
	int n = argc;
	bool ok = g_option_context_parse(ctx, &n, &args, err);
	if (ok && n > 1 && strcmp(args[1], "--") == 0)
		memmove(&args[1], &args[2], sizeof(char *) * (size_t)(n-- - 1));
	if (ok && !o->spec.image)
		ok = husk_fail(err, HUSK_EXIT_USAGE, "run: --image PATH[:TAG] is missing");
	if (ok && o->detach != (o->name != NULL))
		ok = husk_fail(err, HUSK_EXIT_USAGE, "run: --detach and --name go together");
	if (ok)
		ok = run_spec_check_terminal(o->tty, o->interactive, o->detach,
		                             isatty(STDIN_FILENO), err);
	o->spec.tty = o->tty;
	o->spec.interactive = o->interactive;
	if (ok && n > 1)
		o->spec.args = g_strdupv(args + 1);
	g_free(args);
	g_option_context_free(ctx);
	if (!ok && err && *err && (*err)->domain != HUSK_ERROR)
		(*err)->domain = HUSK_ERROR, (*err)->code = HUSK_EXIT_USAGE;
	return ok;
}

bool run_image_wanted(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (strcmp(argv[i], "--image") == 0 || g_str_has_prefix(argv[i], "--image="))
			return true;
	return false;
}

/* -v HOST:GUEST[:ro] as exec's --mount HOST:GUEST[,ro]. */
static char *volume_to_mount(const char *v, GError **err)
{
	char **parts = g_strsplit(v, ":", 3);
	guint n = g_strv_length(parts);
	char *mount = NULL;

	if (n < 2 || !*parts[0] || parts[1][0] != '/' ||
	    (n == 3 && strcmp(parts[2], "ro") && strcmp(parts[2], "rw")))
		husk_fail(err, HUSK_EXIT_USAGE, "-v: \"%s\" is not HOSTDIR:/GUESTPATH[:ro]", v);
	else
		mount = g_strdup_printf("%s:%s%s", parts[0], parts[1],
		                        n == 3 && strcmp(parts[2], "ro") == 0 ? ",ro" : "");
	g_strfreev(parts);
	return mount;
}

/* Every -p on one user-networking NIC: "user,hostfwd=A,hostfwd=B". */
static char *publish_net(GPtrArray *publish, GError **err)
{
	GString *net = g_string_new("user");

	for (guint i = 0; i < publish->len; i++) {
		char *text = config_publish_text(publish->pdata[i], err);
		if (!text) {
			g_string_free(net, TRUE);
			return NULL;
		}
		g_string_append(net, text + strlen("user"));
		g_free(text);
	}
	return g_string_free(net, FALSE);
}

/* The image's Env; HOME from its passwd unless set, TERM with -t; then -e, each replacing. */
static char **environment(const struct oci_image *img, const struct oci_user *user, GPtrArray *envs,
                          bool tty)
{
	char **env = g_strdupv(img->config.env ? img->config.env : (char *[]){NULL});
	bool has_home = false;

	for (char **e = env; *e; e++)
		has_home |= g_str_has_prefix(*e, "HOME=");
	if (!has_home) {
		char *home = g_strdup_printf("HOME=%s", user->home ? user->home : "/");
		char **next = oci_env_set(env, home);
		g_strfreev(env);
		env = next;
		g_free(home);
	}
	if (tty && !g_environ_getenv(env, "TERM")) {
		char **next = oci_env_set(env, DOCKER_TERM);
		g_strfreev(env);
		env = next;
	}
	for (guint i = 0; i < envs->len; i++) {
		char **next = oci_env_set(env, envs->pdata[i]);
		g_strfreev(env);
		env = next;
	}
	return env;
}

/* exec's arguments for this image and these options. */
static GPtrArray *exec_args(const struct run_spec *o, struct oci_image *img, GError **err)
{
	struct oci_user user;
	const char *user_spec = o->user ? o->user : img->config.user;
	char **command = oci_command(img->config.entrypoint, img->config.cmd,
	                             o->entrypoint_set ? o->entrypoint : NULL, o->args, err);

	if (!command || !oci_user_resolve_in(img->root, user_spec, &user, err)) {
		g_strfreev(command);
		return NULL;
	}
	GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(a, g_strdup("exec"));
	g_ptr_array_add(a, g_strdup_printf("--image-root=%s", img->root));
	char *ids = oci_user_format(&user);
	g_ptr_array_add(a, g_strdup_printf("--user=%s", ids));
	g_free(ids);
	const char *wd = o->workdir ? o->workdir
	                 : img->config.working_dir && *img->config.working_dir
	                     ? img->config.working_dir
	                     : "/";
	g_ptr_array_add(a, g_strdup_printf("--workdir=%s", wd));
	char **env = environment(img, &user, o->envs, o->tty);
	for (char **e = env; *e; e++)
		g_ptr_array_add(a, g_strdup_printf("--env=%s", *e));
	g_strfreev(env);
	bool ok = true;
	for (guint i = 0; ok && i < o->volumes->len; i++) {
		char *m = volume_to_mount(o->volumes->pdata[i], err);
		ok = m != NULL;
		if (ok)
			g_ptr_array_add(a, g_strdup_printf("--mount=%s", m));
		g_free(m);
	}
	char *net = ok && o->publish->len ? publish_net(o->publish, err) : NULL;
	ok = ok && (!o->publish->len || net);
	if (net)
		g_ptr_array_add(a, g_strdup_printf("--net=%s", net));
	g_free(net);
	for (guint i = 0; i < o->options->len; i++)
		g_ptr_array_add(a, g_strdup(o->options->pdata[i]));
	if (o->tty)
		g_ptr_array_add(a, g_strdup("--tty"));
	if (o->interactive)
		g_ptr_array_add(a, g_strdup("--interactive"));
	g_ptr_array_add(a, g_strdup("--"));
	for (char **c = command; *c; c++)
		g_ptr_array_add(a, g_strdup(*c));
	g_strfreev(command);
	oci_user_clear(&user);
	if (!ok)
		g_clear_pointer(&a, g_ptr_array_unref);
	return a;
}

int run_spec_exec(const struct run_spec *spec, int64_t start_ns, const struct exec_io *io)
{
	GError *err = NULL;
	int status = HUSK_EXIT_EXEC_FAILED;
	struct oci_image *img = oci_image_open(spec->image, &err);
	GPtrArray *args = img ? exec_args(spec, img, &err) : NULL;

	if (args) {
		g_ptr_array_add(args, NULL);
		status = exec_main_io((int)args->len - 1, (char **)args->pdata, start_ns, io);
		g_ptr_array_unref(args);
	} else {
		g_printerr("husk: %s\n", err->message);
		g_error_free(err);
	}
	oci_image_free(img);
	return status;
}

int run_image_main(int argc, char **argv, int64_t start_ns)
{
	struct run_image_opts o = {0};
	GError *err = NULL;
	int status;

	run_spec_init(&o.spec);
	if (!parse(argc, argv, &o, &err)) {
		g_printerr("husk: %s\n", err->message);
		g_error_free(err);
		status = HUSK_EXIT_EXEC_FAILED;
	} else if (o.detach) {
		status = run_detached(o.name, &o.spec);
	} else {
		const struct exec_io io = {
		    .app_stdout = STDOUT_FILENO, .app_stderr = STDERR_FILENO, .started_fd = -1};
		status = run_spec_exec(&o.spec, start_ns, &io);
	}
	run_spec_clear(&o.spec);
	g_free(o.name);
	return status;
}
