// SPDX-License-Identifier: MIT
/*
 * husk transfer SOURCE DEST: one file into or out of a running instance,
 * one side NAME:PATH. It rides on the agent's EXEC: the file is the
 * standard input of a `cat >` in the guest, or the standard output of a
 * `cat` there, so it needs nothing of the agent that husk exec does not.
 * A file copied out is written beside its destination and renamed into
 * place once whole: an interrupted copy leaves nothing half-written.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/cli/agent.h"
#include "vmm/error.h"
#include "vmm/instance/instance.h"

#define USAGE "usage: husk transfer [--user U] SOURCE DEST (one of them NAME:PATH)\n"

/*
 * In the guest: DEST, or DEST/NAME when DEST is a folder; written through a
 * temporary file and renamed, as on the host.
 */
static const char push_script[] = "d=$1; [ -d \"$d\" ] && d=\"${d%/}/$2\"; "
                                  "t=\"$d.husk-transfer.$$\"; "
                                  "cat >\"$t\" && mv -f \"$t\" \"$d\" || { rm -f \"$t\"; exit 1; }";

/* "NAME:PATH" split; false if TEXT is a local path (no ':' before any '/'). */
static bool remote(const char *text, char **target, char **path)
{
	const char *colon = strchr(text, ':');

	if (!colon || colon == text)
		return false;
	char *t = g_strndup(text, (gsize)(colon - text));
	/* A socket's path may hold '/'; a local file's name that has a ':' is written ./a:b. */
	if (g_str_has_prefix(t, ".") || (!strchr(t, '/') && !instance_name_check(t, NULL))) {
		g_free(t);
		return false;
	}
	*target = t;
	*path = g_strdup(colon + 1);
	return true;
}

/* Puts 'fd' where stdin or stdout is, for the agent's call. */
static bool redirect(int fd, int to)
{
	bool ok = fd >= 0 && dup2(fd, to) >= 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static int push(const char *local, const char *target, const char *path, const char *user)
{
	int fd = open(local, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		g_printerr("husk: transfer: %s: %s\n", local,
		           fd < 0 ? g_strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return HUSK_EXIT_USAGE;
	}
	char *base = g_path_get_basename(local);
	const char *command[] = {"sh", "-c", push_script, "sh", path, base, NULL};
	int status = redirect(fd, STDIN_FILENO) ? agent_run("transfer", target, command, user)
	                                        : HUSK_EXIT_EXEC_FAILED;
	g_free(base);
	return status;
}

/* The host's destination: DEST, or DEST/NAME when DEST is a folder. */
static char *local_destination(const char *dest, const char *remote_path)
{
	if (!g_file_test(dest, G_FILE_TEST_IS_DIR))
		return g_strdup(dest);
	char *base = g_path_get_basename(remote_path);
	char *path = g_build_filename(dest, base, NULL);
	g_free(base);
	return path;
}

static int pull(const char *target, const char *path, const char *dest, const char *user)
{
	char *final = local_destination(dest, path);
	char *tmp = g_strdup_printf("%s.husk-transfer.%d", final, (int)getpid());
	const char *command[] = {"cat", "--", path, NULL};
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), status;

	if (fd < 0) {
		g_printerr("husk: transfer: %s: %s\n", tmp, g_strerror(errno));
		status = HUSK_EXIT_USAGE;
	} else {
		status = redirect(fd, STDOUT_FILENO) ? agent_run("transfer", target, command, user)
		                                     : HUSK_EXIT_EXEC_FAILED;
	}
	if (status == 0 && rename(tmp, final) < 0) {
		g_printerr("husk: transfer: %s: %s\n", final, g_strerror(errno));
		status = HUSK_EXIT_RUNTIME;
	}
	if (status != 0)
		g_unlink(tmp);
	g_free(tmp);
	g_free(final);
	return status;
}

int transfer_main(int argc, char **argv)
{
	char *user = NULL, *target = NULL, *path = NULL;
	GOptionEntry entries[] = {
	    {"user", 'u', 0, G_OPTION_ARG_STRING, &user,
	     "Read or write the guest's file as this user (default: root)", "USER"},
	    {0},
	};
	GOptionContext *ctx = g_option_context_new("SOURCE DEST - copy a file into or out of a "
	                                           "running instance");
	GError *err = NULL;
	int status;

	g_option_context_set_description(
	    ctx, "One of SOURCE and DEST is NAME:PATH (NAME an instance, or a husk run --vsock\n"
	         "socket's path). A DEST that is a folder gets the file's own name.\n\n"
	         "Exit status: 0 copied; 2 bad usage or a local file that cannot be read or\n"
	         "written; 1 the guest's side failed (its message is shown); 125 husk could not\n"
	         "reach the instance's agent.");
	g_option_context_add_main_entries(ctx, entries, NULL);
	bool ok = g_option_context_parse(ctx, &argc, &argv, &err);
	g_option_context_free(ctx);
	if (!ok || argc != 3) {
		g_printerr("husk: transfer: %s\n" USAGE, err ? err->message : "two files, please");
		g_clear_error(&err);
		g_free(user);
		return HUSK_EXIT_USAGE;
	}
	char *src_target = NULL, *src_path = NULL;
	bool from = remote(argv[1], &src_target, &src_path);
	bool to = remote(argv[2], &target, &path);
	if (from == to) {
		g_printerr(
		    "husk: transfer: one of SOURCE and DEST, not both, is NAME:PATH\n" USAGE);
		status = HUSK_EXIT_USAGE;
	} else if (from) {
		status = pull(src_target, src_path, argv[2], user);
	} else {
		status = push(argv[1], target, path, user);
	}
	g_free(src_target);
	g_free(src_path);
	g_free(target);
	g_free(path);
	g_free(user);
	return status;
}
