/* SPDX-License-Identifier: MIT */
/* husk exec: boot, run one command in the guest, hand back its output and status. */
#ifndef HUSK_EXEC_H
#define HUSK_EXEC_H

#include <stdint.h>

/* argv[0] is "exec". Returns husk's exit status: the command's, or 124/125/128+N. */
int exec_main(int argc, char **argv, int64_t start_ns);

/* Where the command's output goes, and who hears that it started. */
struct exec_io {
	int app_stdout, app_stderr;
	int started_fd; /* one byte once the command runs (its execvp succeeded); -1: none */
};

/* exec_main, with the command's output to 'io' rather than husk's own stdout and stderr. */
int exec_main_io(int argc, char **argv, int64_t start_ns, const struct exec_io *io);

#endif
