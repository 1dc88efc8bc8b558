// SPDX-License-Identifier: MIT
/*
 * The floor under every thread, installed on all of them at once: a deny
 * list of what a VMM never needs once its guest runs and what an attacker
 * who took over husk would reach for: a new program or process, another
 * process's memory or signals, the host's mounts and namespaces, the
 * kernel's modules, keys, BPF, io_uring and clock. It covers the threads
 * husk does not start itself (glib's own) and the main thread, which tears
 * the VM down and may set it up again (--on-reboot=restart). Each thread
 * husk starts adds its own allow list on top (vmm/seccomp_threads.c).
 *
 * Denied calls fail with EPERM rather than killing husk: a library call
 * that was missed then fails one operation, not the guest.
 */
#include "vmm/seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/error.h"

#if defined(__x86_64__)
#define HUSK_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define HUSK_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

static const long denied[] = {
    /* Running something else: husk never does. */
    __NR_execve,
    __NR_execveat,
#ifdef __NR_fork
    __NR_fork,
    __NR_vfork,
#endif
    /* Other processes' memory and file descriptors. */
    __NR_ptrace,
    __NR_process_vm_readv,
    __NR_process_vm_writev,
    __NR_kcmp,
#ifdef __NR_pidfd_getfd
    __NR_pidfd_getfd,
#endif
    /* The host's mounts and namespaces, and files by handle (past any directory). */
    __NR_mount,
    __NR_umount2,
    __NR_pivot_root,
    __NR_chroot,
    __NR_unshare,
    __NR_setns,
    __NR_open_by_handle_at,
    __NR_name_to_handle_at,
    __NR_quotactl,
#ifdef __NR_fsopen
    __NR_fsopen,
    __NR_fsconfig,
    __NR_fsmount,
    __NR_fspick,
    __NR_move_mount,
    __NR_open_tree,
#endif
#ifdef __NR_mount_setattr
    __NR_mount_setattr,
#endif
    /* The kernel: modules, kexec, BPF, keys, its log, swap, the clock, names. */
    __NR_init_module,
    __NR_finit_module,
    __NR_delete_module,
    __NR_kexec_load,
#ifdef __NR_kexec_file_load
    __NR_kexec_file_load,
#endif
    __NR_reboot,
    __NR_swapon,
    __NR_swapoff,
    __NR_bpf,
    __NR_perf_event_open,
    __NR_userfaultfd,
    __NR_keyctl,
    __NR_add_key,
    __NR_request_key,
    __NR_syslog,
    __NR_acct,
    __NR_personality,
    __NR_settimeofday,
    __NR_clock_settime,
    __NR_clock_adjtime,
    __NR_adjtimex,
    __NR_sethostname,
    __NR_setdomainname,
    __NR_vhangup,
#ifdef __NR_iopl
    __NR_iopl,
    __NR_ioperm,
#endif
    /* Credentials: husk keeps the ones it started with. */
    __NR_setuid,
    __NR_setgid,
    __NR_setreuid,
    __NR_setregid,
    __NR_setresuid,
    __NR_setresgid,
    __NR_setfsuid,
    __NR_setfsgid,
    __NR_setgroups,
/* (capset stays: it can only take capabilities away, as each thread does.) */
/* io_uring runs calls in the kernel's workers, out of any filter's sight. */
#ifdef __NR_io_uring_setup
    __NR_io_uring_setup,
    __NR_io_uring_enter,
    __NR_io_uring_register,
#endif
    /* Signals to other processes (kill and tgkill are checked below). */
    __NR_tkill,
#ifdef __NR_pidfd_send_signal
    __NR_pidfd_send_signal,
#endif
    __NR_rt_sigqueueinfo,
    __NR_rt_tgsigqueueinfo,
};

static void emit(GArray *p, uint16_t code, uint32_t k, uint8_t yes, uint8_t no)
{
	struct sock_filter insn = {.code = code, .jt = yes, .jf = no, .k = k};

	g_array_append_val(p, insn);
}

static void load(GArray *p, uint32_t offset)
{
	emit(p, BPF_LD | BPF_W | BPF_ABS, offset, 0, 0);
}

static void ret(GArray *p, uint32_t action)
{
	emit(p, BPF_RET | BPF_K, action, 0, 0);
}

/* Returns 'action' when the loaded value is 'k'; goes on otherwise. */
static void ret_if(GArray *p, uint32_t k, uint32_t action)
{
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1);
	ret(p, action);
}

/* Allows the call when its first argument (64 bits) is 'value'; EPERM otherwise. */
static void allow_if_arg0(GArray *p, uint32_t nr, uint32_t value)
{
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 6);
	load(p, offsetof(struct seccomp_data, args[0]));
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, value, 0, 3);
	load(p, offsetof(struct seccomp_data, args[0]) + 4);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
	ret(p, SECCOMP_RET_ALLOW);
	ret(p, SECCOMP_RET_ERRNO | EPERM);
	load(p, offsetof(struct seccomp_data, nr)); /* not this call: on with the number */
}

/*
 * The program. A thread is a clone with CLONE_THREAD; a clone without it
 * is a new process, and one with a CLONE_NEW* flag a new namespace. clone3
 * passes its flags in memory, which a filter cannot read, so it answers
 * ENOSYS, and the C library falls back to clone for its threads (as in
 * Chromium's and Flatpak's sandboxes). kill and tgkill reach this process
 * only.
 */
static GArray *build_program(void)
{
	GArray *p = g_array_new(FALSE, FALSE, sizeof(struct sock_filter));
	const uint32_t new_namespace = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
	                               CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
	uint32_t self = (uint32_t)getpid();

	/* Another ABI's numbers mean other calls: refuse them all. */
	load(p, offsetof(struct seccomp_data, arch));
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, HUSK_AUDIT_ARCH, 1, 0);
	ret(p, SECCOMP_RET_ERRNO | EPERM);
	load(p, offsetof(struct seccomp_data, nr));
#ifdef __X32_SYSCALL_BIT
	emit(p, BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1);
	ret(p, SECCOMP_RET_ERRNO | EPERM);
#endif
	for (size_t i = 0; i < G_N_ELEMENTS(denied); i++)
		ret_if(p, (uint32_t)denied[i], SECCOMP_RET_ERRNO | EPERM);
	ret_if(p, __NR_clone3, SECCOMP_RET_ERRNO | ENOSYS);
	allow_if_arg0(p, __NR_kill, self);
	allow_if_arg0(p, __NR_tgkill, self);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 5);
	/* The flags' low half, where CLONE_THREAD is (64-bit arguments, little-endian). */
	load(p, offsetof(struct seccomp_data, args[0]));
	emit(p, BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 2);
	emit(p, BPF_JMP | BPF_JSET | BPF_K, new_namespace, 1, 0);
	ret(p, SECCOMP_RET_ALLOW);
	ret(p, SECCOMP_RET_ERRNO | EPERM);
	ret(p, SECCOMP_RET_ALLOW);
	return p;
}

bool seccomp_lock_down(GError **err)
{
	static bool installed; /* a restarted VM (--on-reboot=restart) is set up again */

	if (installed)
		return true;
#ifndef HUSK_AUDIT_ARCH
	return husk_fail(err, HUSK_EXIT_HOST,
	                 "no system-call filter for this architecture (--no-seccomp runs without)");
#else
	G_STATIC_ASSERT(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);
	GArray *p = build_program();
	struct sock_fprog prog = {.len = (unsigned short)p->len,
	                          .filter = (struct sock_filter *)(void *)p->data};
	/* Without it only a process with CAP_SYS_ADMIN may install a filter. */
	bool ok =
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0;
	int why = errno; /* before the free */

	g_array_free(p, TRUE);
	installed = ok;
	if (!ok)
		return husk_fail(
		    err, HUSK_EXIT_HOST,
		    "cannot install the system-call filter: %s (--no-seccomp runs without)",
		    g_strerror(why));
	return true;
#endif
}
