/* SPDX-License-Identifier: MIT */
/*
 * A VM's configuration as plain data: built from `husk run`'s command line
 * (vmm/options.c), by `husk exec`, or read back from an instance folder as
 * JSON. The machine (vmm/machine.h) takes it as it is.
 */
#ifndef HUSK_CONFIG_H
#define HUSK_CONFIG_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/layout.h"
#include "vmm/privdrop.h"

#define VM_DEFAULT_MEMORY  (512 * MiB)
#define VM_MIN_MEMORY      (16 * MiB)
#define VM_MAX_MEMORY      (1024 * GiB)
#define VM_MAX_CPUS        254 /* APIC ids 0..253 plus the IOAPIC's id fit in xAPIC's 8 bits */
#define VM_DEFAULT_CMDLINE "console=ttyS0"
#define VM_DEFAULT_POLL_US 1000 /* see --poll */
#define VM_MAX_POLL_US     1000000

struct disk_config;
struct net_config;
struct vsock_config;

enum on_reboot { ON_REBOOT_EXIT, ON_REBOOT_RESTART };

enum gpu_mode { GPU_NONE, GPU_2D, GPU_VIRGL }; /* --gpu: none, virtio-gpu in 2D, or with 3D */

struct vm_config {
	char *kernel;
	char *initrd;
	char *cmdline;
	uint64_t memory;
	unsigned int cpus;
	unsigned int poll_us; /* the longest a share's queue thread polls a busy queue */
	int halt_poll_us;     /* the longest a halted vCPU polls in KVM; -1: the host's */
	enum on_reboot on_reboot;
	GPtrArray *disks;  /* struct disk_config *, in --disk order */
	GPtrArray *nets;   /* struct net_config *, in --net order */
	GPtrArray *shares; /* struct share_config *, in --share order */
	/* --vsock, or NULL (not saved yet) */
	struct vsock_config *vsock;
	enum gpu_mode gpu;
	/* How this process runs the VM: never saved. */
	int console_out;        /* where the guest's serial output goes */
	int console_in;         /* what is typed to the guest: a terminal, a pipe; -1: nothing */
	unsigned int timeout_s; /* 0: none */
	bool allow_pvm;
	bool timings;
	bool no_seccomp;      /* run without the system-call filter (vmm/seccomp.h) */
	struct run_as run_as; /* --user: who husk becomes once the VM is set up */
	char *control;        /* --control: where husk run serves husk mount and umount, or NULL */
	int64_t start_ns;     /* CLOCK_MONOTONIC when husk started, for --timings */
	/* --display vnc=ADDR:PORT: where the VNC server listens; NULL: no viewer */
	char *vnc;
	bool window; /* --display window: a window on the host's desktop */
	/* --screenshot-on-exit: a PNG of the display, written once the VM stopped */
	char *screenshot_on_exit;
	char *dump_dtb; /* --dump-dtb: where to write the device tree (arm64), or NULL */
};

/* The defaults of `husk run`, with empty device lists. */
void config_init(struct vm_config *cfg);
void config_clear(struct vm_config *cfg);

void config_add_disk(struct vm_config *cfg, struct disk_config *disk);
void config_add_net(struct vm_config *cfg, struct net_config *net);

/*
 * The saved part of 'cfg' as JSON (shares are not saved yet: false, with
 * an error, when there are any), and back. config_from_json() starts from
 * config_init()'s defaults; its errors are one line, HUSK_EXIT_USAGE.
 */
/*
 * Publishes a guest port as Docker's -p does: "[ADDR:]HOSTPORT:GUESTPORT[/udp]"
 * (ADDR 127.0.0.1 by default) on the first user-networking NIC, which is
 * added when there is none. Errors are one line, HUSK_EXIT_USAGE.
 */
bool config_publish(struct vm_config *cfg, const char *spec, GError **err);
/* The same -p as a --net text, "user,hostfwd=..." (ADDR 127.0.0.1 by default). */
char *config_publish_text(const char *spec, GError **err);

/* The --net text that makes 'net' again. */
char *config_net_text(const struct net_config *net);

/* "2d", "virgl" or "none", as --gpu takes them and config.json keeps them. */
bool config_gpu_parse(const char *text, enum gpu_mode *out, GError **err);
const char *config_gpu_name(enum gpu_mode mode);
/*
 * --display: "none" (*vnc NULL, *window false), "vnc=ADDRESS:PORT" (*vnc
 * that address, g_free) or "window" (*window true).
 */
bool config_display_parse(const char *text, char **vnc, bool *window, GError **err);

char *config_to_json(const struct vm_config *cfg, GError **err);
bool config_from_json(const char *json, struct vm_config *cfg, GError **err);

#endif
