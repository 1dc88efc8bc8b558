/* SPDX-License-Identifier: MIT */
/*
 * The exec file `husk exec` writes to its control share and husk-init
 * reads: NUL-terminated "key=value" records. husk-init reads it into a
 * fixed buffer, so husk refuses a command that would not fit.
 */
#ifndef HUSK_EXEC_FILE_H
#define HUSK_EXEC_FILE_H

#define EXEC_FILE_MAX_RECORDS 4096
#define EXEC_FILE_MAX_BYTES   (1 << 20) /* the terminating NULs included */

#endif
