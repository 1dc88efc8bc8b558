/* SPDX-License-Identifier: MIT */
/*
 * Per-thread allow lists, on top of the process-wide deny list of
 * vmm/seccomp.h: each kind of husk thread, once it starts, may make only
 * the system calls its work needs (ioctl, clone, kill, socket, open and
 * mmap with their arguments checked), and drops the capabilities it has
 * no use for. A call off the list ends husk with one line naming the
 * thread and the call; HUSK_SECCOMP=log lets such calls through and has
 * the kernel log them instead (dmesg, "audit: type=1326"), for debugging.
 */
#ifndef HUSK_SECCOMP_THREADS_H
#define HUSK_SECCOMP_THREADS_H

#include <glib.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>

enum seccomp_thread {
	SECCOMP_THREAD_VCPU,  /* KVM_RUN, and the device registers the guest touches */
	SECCOMP_THREAD_IO,    /* the glib loop: kicks, interrupts, network, vsock, consoles */
	SECCOMP_THREAD_SHARE, /* a virtio-fs queue: the FUSE server, on files under its share */
	SECCOMP_THREAD_POOL,  /* the worker pool: reads and writes on files already open */
	SECCOMP_THREAD_PLUG,  /* husk-plug: opens shares for husk mount, starts their threads */
	SECCOMP_THREAD_GLIB,  /* glib's worker (gmain): signals handed on to their loops */
	SECCOMP_THREAD_MAIN,  /* the main thread once the VM runs: starts it, tears it down */
	/*
	 * A whole process, every thread of it: a detached image run's serving
	 * process (vmm/cli/run_detached.c) once its app's VM is forked: the
	 * app's output into its logs, the control socket's requests, signals
	 * to that one child, its status file. No new socket, program or process.
	 */
	SECCOMP_THREAD_APP_SERVER,
	SECCOMP_THREAD_VNC, /* the VNC server: its clients' sockets, and kicks for virtio-input */
	/*
	 * --display window: SDL and its X11 or Wayland client library on the
	 * connection opened beforehand; shared memory with the display server.
	 */
	SECCOMP_THREAD_WINDOW,
	SECCOMP_THREAD_KINDS,
};

/* What the I/O thread does besides serving devices, as its driver says. */
enum {
	SECCOMP_IO_SOCKETS = 1u << 0, /* Unix and IP sockets: user networking, vsock, control */
	SECCOMP_IO_READ_FILES = 1u
	                        << 1, /* open files read-only (/etc/resolv.conf, exec's output) */
	SECCOMP_IO_WRITE_FILES = 1u << 2, /* create, append to and rename files (a console log) */
	SECCOMP_IO_TERMINAL = 1u << 3,    /* the terminal's size on SIGWINCH (run --image -t) */
};

struct seccomp_policy {
	unsigned int io;   /* SECCOMP_IO_* */
	bool log_only;     /* let refused calls through and have the kernel log them */
	bool keep_fs_caps; /* shares run as root: keep the file capabilities they need */
	bool switch_user;  /* the process takes another user (vmm/privdrop.h) before the VM runs */
	/*
	 * Landlock on the I/O thread: it opens no file but, with user networking
	 * (io_reads_resolv_conf), those beneath /etc and where /etc/resolv.conf leads,
	 * and those beneath io_dir (if not NULL; its string must outlive the VM),
	 * to read or, with io_dir_writable, to change too.
	 */
	bool io_landlock;
	bool io_reads_resolv_conf;
	const char *io_dir;
	bool io_dir_writable;
	int app_child; /* SECCOMP_THREAD_APP_SERVER: the one process it may signal and wait for */
};

/* The policy from the environment: HUSK_SECCOMP=log sets log_only. */
void seccomp_policy_from_env(struct seccomp_policy *p);

/*
 * From now on, each husk thread that calls seccomp_thread_enter() takes its
 * kind's list under policy 'p'. Until then (unit tests, --no-seccomp) that
 * call does nothing. seccomp_disarm() stops it for threads that start later.
 */
void seccomp_arm(const struct seccomp_policy *p);
void seccomp_disarm(void);
bool seccomp_armed(void);

/*
 * On the thread itself, once its set-up is done: drops capabilities and
 * installs the kind's list, once per thread (later calls return at once).
 * Off the list, a call ends the process with a line on stderr naming the
 * thread and the call. On failure 'err' says why.
 */
bool seccomp_thread_enter(enum seccomp_thread kind, GError **err);

/*
 * For a thread that starts while the machine is set up, before the
 * process-wide filter (which a list of its own would keep from going on):
 * only the capabilities, at once; the list follows with
 * seccomp_thread_enter() once the VM runs.
 */
bool seccomp_thread_drop_caps(enum seccomp_thread kind, GError **err);

/*
 * glib starts its worker thread ("gmain", which hands signals on to the
 * loops watching them) the first time a signal source is made: this
 * makes 'n' sources for 'signals' into 'sources' on a short-lived thread
 * under the glib list, so that the worker, if it starts then, inherits
 * that list. Without a list armed, they are made on the calling thread.
 */
void seccomp_new_signal_sources(const int *signals, size_t n, GSource **sources);

/*
 * The image run's serving process: SECCOMP_THREAD_APP_SERVER's list on all
 * its threads at once (glib's own included), 'child' its app's VM, the
 * SIGSYS handler that names a refused call in husk.log with it. HUSK_SECCOMP=log
 * as for the VM. On failure 'err' says why.
 */
bool seccomp_app_server_lock_down(int child, GError **err);

/* For threads with no way to stop the VM: a failure ends husk, with its reason. */
void seccomp_thread_enter_or_exit(enum seccomp_thread kind);

/*
 * What serving files as root takes: ownership, permission and setgid
 * checks on files other users own.
 */
#define SECCOMP_FILE_CAPS                                                                          \
	((UINT64_C(1) << CAP_CHOWN) | (UINT64_C(1) << CAP_DAC_OVERRIDE) |                          \
	 (UINT64_C(1) << CAP_DAC_READ_SEARCH) | (UINT64_C(1) << CAP_FOWNER) |                      \
	 (UINT64_C(1) << CAP_FSETID))

/*
 * Capabilities are per thread: the calling one keeps those of 'keep' (a
 * mask of 1 << CAP_*) that it has, and none it could gain back (bounding,
 * inheritable and ambient sets emptied). A thread without any does nothing.
 */
bool seccomp_keep_caps(uint64_t keep, GError **err);

/* The same, unconditionally and with an explicit policy: for tests. */
bool seccomp_thread_apply(enum seccomp_thread kind, const struct seccomp_policy *p, GError **err);

const char *seccomp_thread_name(enum seccomp_thread kind);

#endif
