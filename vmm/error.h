/* SPDX-License-Identifier: MIT */
/*
 * husk's errors carry the exit status they lead to, so the code that finds
 * a problem also decides what it means to the user (see tools/MANUAL.md, "Exit status").
 */
#ifndef HUSK_ERROR_H
#define HUSK_ERROR_H

#include <glib.h>
#include <stdbool.h>

#define HUSK_ERROR (husk_error_quark())

enum husk_exit {
	HUSK_EXIT_POWEROFF = 0,
	HUSK_EXIT_RUNTIME = 1, /* husk itself failed while running */
	HUSK_EXIT_USAGE = 2,   /* bad option, missing or invalid file */
	HUSK_EXIT_HOST = 3,    /* this host cannot run the VM */
	HUSK_EXIT_PANIC = 4,   /* the guest kernel panicked */
	HUSK_EXIT_REBOOT = 5,  /* the guest rebooted (--on-reboot=exit) */
	HUSK_EXIT_BUSY = 6,    /* another husk command is working on the instance */
	/* husk exec: the command's own status is 0-255, so husk's own are where timeout(1) and
	 * docker run put theirs. */
	HUSK_EXIT_TIMEOUT = 124,     /* --timeout fired */
	HUSK_EXIT_EXEC_FAILED = 125, /* husk or the VM failed before the command ended */
	HUSK_EXIT_SIGNAL = 128       /* + signal number */
};

GQuark husk_error_quark(void);

/* Sets *err (if err is not NULL) to a husk error meaning 'status'; returns false. */
bool husk_fail(GError **err, enum husk_exit status, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* The same for a call that failed with errno: "WHAT: strerror(errno)". */
bool husk_fail_errno(GError **err, enum husk_exit status, const char *what);

#endif
