/* SPDX-License-Identifier: MIT */
/*
 * The instance subcommands: launch, list, info, start, stop, restart,
 * delete, console. Each is a client of the instance's control socket
 * (vmm/instance/); exit statuses are in INSTANCE_EXIT_TEXT.
 */
#ifndef HUSK_CLI_INSTANCES_H
#define HUSK_CLI_INSTANCES_H

#include <glib.h>
#include <stdbool.h>

#define INSTANCE_EXIT_TEXT                                                                         \
	"Exit status: 0 done, 1 husk or the VM failed (a download, a full disk, a guest\n"         \
	"that would not boot), 2 bad usage or input (a bad, unknown or duplicate name,\n"          \
	"a missing or damaged image, a checksum that does not match), 3 this host cannot\n"        \
	"run VMs, 6 another husk command is working on the instance, 124 the guest was\n"          \
	"not ready (or stopped) within --timeout.\n"                                               \
	"\n" INSTANCE_FILES_TEXT

/* Files: a paragraph the man pages turn into their FILES section. */
#define INSTANCE_FILES_TEXT                                                                        \
	"Files: $HUSK_HOME (default $XDG_DATA_HOME/husk, else ~/.local/share/husk) holds\n"        \
	"images/, the downloaded cloud images, and instances/NAME/ for each instance:\n"           \
	"config.json, instance.json, disk.qcow2, seed.img, console.log, husk.log and\n"            \
	"control.sock; an image run (husk run --image --detach) has stdout.log,\n"                 \
	"stderr.log and exit-status instead of the disk, seed and console."

#define INSTANCE_DEFAULT_TIMEOUT_S 900 /* a cloud image's first boot, nested, is slow */

int launch_main(int argc, char **argv);
int list_main(int argc, char **argv);
int info_main(int argc, char **argv);
int start_main(int argc, char **argv);
int stop_main(int argc, char **argv);
int restart_main(int argc, char **argv);
int delete_main(int argc, char **argv);
int console_main(int argc, char **argv);
int logs_main(int argc, char **argv);
int screenshot_main(int argc, char **argv);

/* Prints "husk: MESSAGE" and returns the error's exit status. */
int instance_cli_fail(GError *err);

/*
 * Starts the instance's serving process and waits until its guest is
 * ready (cloud-init finished), with a progress line on a terminal.
 * The caller holds the instance's command lock.
 */
bool instance_boot(const char *name, unsigned int timeout_s, GError **err);

#endif
