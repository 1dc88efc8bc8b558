/* SPDX-License-Identifier: MIT */
/*
 * husk exec NAME and husk shell NAME: a command, or a login shell on a
 * terminal, run by husk-agent in a running instance (or in any guest whose
 * `husk run --vsock PATH` socket is given as NAME).
 */
#ifndef HUSK_CLI_AGENT_H
#define HUSK_CLI_AGENT_H

#include <stdbool.h>

#define AGENT_EXIT_TEXT                                                                            \
	"Exit status: the command's own (0-255); 128+N when a signal N ended it; 2 bad\n"          \
	"usage; 125 when husk could not run it or lost it (no such instance, not running,\n"       \
	"an image run, which has no agent, no agent answering, no such program, directory\n"       \
	"or user, the agent gone). The same statuses as husk exec in a throwaway VM.\n"            \
	"Ctrl-C (SIGINT), SIGTERM, SIGHUP and SIGQUIT go to the command; if husk itself\n"         \
	"is killed, so is the command."

/* argv[0] is "exec" / "shell"; returns husk's exit status. */
int agent_exec_main(int argc, char **argv);
int shell_main(int argc, char **argv);
int transfer_main(int argc, char **argv);
int mount_main(int argc, char **argv);
int umount_main(int argc, char **argv);

/*
 * Runs 'command' through TARGET's agent (as 'user', or NULL: the agent's
 * own) with this process's standard streams; 'cmd' names it in messages.
 * Returns the command's status as husk exec does.
 */
int agent_run(const char *cmd, const char *target, const char *const *command, const char *user);

/*
 * Whether `husk exec TARGET ...` means an instance (one by that name
 * exists) or a vsock socket (a path to one), rather than a throwaway VM's
 * command given without "--".
 */
bool agent_exec_wanted(const char *target);

#endif
