/* SPDX-License-Identifier: MIT */
/*
 * Why a VM stops, and the hook devices use to ask for it. The first reason
 * reported wins; the machine then stops every vCPU and exits.
 */
#ifndef HUSK_STOP_H
#define HUSK_STOP_H

enum stop_reason {
	STOP_NONE = 0,
	STOP_POWEROFF,     /* ACPI S5 from the guest */
	STOP_REBOOT,       /* ACPI reset register, i8042 reset, KVM's reset event */
	STOP_TRIPLE_FAULT, /* a reboot too, but the guest did not ask: it crashed */
	STOP_PANIC,        /* pvpanic: the guest kernel panicked */
	STOP_USER,         /* the console escape (Ctrl-A x) */
	STOP_SIGNAL,       /* SIGINT/SIGTERM/SIGHUP to husk */
	STOP_ERROR,        /* a vCPU or device hit an error husk cannot recover from */
	STOP_TIMEOUT,      /* the time the VM was given ran out (husk exec --timeout) */
};

/* How a reboot is told to the user: a triple fault is a crash, not a choice. */
static inline const char *stop_reboot_words(enum stop_reason reason)
{
	return reason == STOP_TRIPLE_FAULT ? "rebooted (a triple fault: it crashed)" : "rebooted";
}

struct stop_hook {
	void (*request)(void *ctx, enum stop_reason reason);
	void *ctx;
};

static inline void stop_request(const struct stop_hook *hook, enum stop_reason reason)
{
	hook->request(hook->ctx, reason);
}

#endif
