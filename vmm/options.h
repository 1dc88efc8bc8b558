/* SPDX-License-Identifier: MIT */
/* The command line of `husk run`, checked into a vm_config. */
#ifndef HUSK_OPTIONS_H
#define HUSK_OPTIONS_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/layout.h"

#define VM_DEFAULT_MEMORY  (512 * MiB)
#define VM_MIN_MEMORY      (16 * MiB)
#define VM_MAX_MEMORY      (1024 * GiB)
#define VM_MAX_CPUS        254 /* APIC ids 0..253 plus the IOAPIC's id fit in xAPIC's 8 bits */
#define VM_DEFAULT_CMDLINE "console=ttyS0"
#define VM_DEFAULT_POLL_US 1000 /* see --poll */
#define VM_MAX_POLL_US     1000000

enum on_reboot { ON_REBOOT_EXIT, ON_REBOOT_RESTART };

struct vm_config {
	char *kernel;
	char *initrd;
	char *cmdline;
	uint64_t memory;
	unsigned int cpus;
	unsigned int poll_us; /* the longest a share's queue thread polls a busy queue */
	int halt_poll_us;     /* the longest a halted vCPU polls in KVM; -1: the host's */
	enum on_reboot on_reboot;
	GPtrArray *disks;       /* struct disk_config *, in --disk order */
	GPtrArray *nets;        /* struct net_config *, in --net order */
	GPtrArray *shares;      /* struct share_config *, in --share order */
	int console_out;        /* where the guest's serial output goes */
	bool console_in;        /* the terminal's input goes to the guest */
	unsigned int timeout_s; /* 0: none */
	bool allow_pvm;
	bool timings;
	bool no_seccomp;  /* run without the system-call filter (vmm/seccomp.h) */
	int64_t start_ns; /* CLOCK_MONOTONIC when husk started, for --timings */
};

/*
 * Parses `run`'s arguments (argv[0] is "run"). On failure 'err' holds one
 * line without the "husk: " prefix; its code is HUSK_EXIT_USAGE.
 */
bool options_parse_run(int argc, char **argv, struct vm_config *cfg, GError **err);
void options_free(struct vm_config *cfg);

#endif
