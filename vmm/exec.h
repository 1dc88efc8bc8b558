/* SPDX-License-Identifier: MIT */
/* husk exec: boot, run one command in the guest, hand back its output and status. */
#ifndef HUSK_EXEC_H
#define HUSK_EXEC_H

#include <stdint.h>

/* argv[0] is "exec". Returns husk's exit status: the command's, or 124/125/128+N. */
int exec_main(int argc, char **argv, int64_t start_ns);

#endif
