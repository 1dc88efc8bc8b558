// SPDX-License-Identifier: MIT
/*
 * The arm64 test host's first check (arm64-kvm): does its /dev/kvm run a
 * guest? A static aarch64 program (aarch64-linux-gnu-gcc -static), so it
 * needs nothing staged in the test host.
 *
 * It asks KVM for the IPA size and PSCI 0.2, makes a VM with 64 KiB of
 * RAM, an in-kernel GICv3 and one vCPU (the preferred target, PSCI 0.2),
 * and runs guest_code below from the start of RAM: a 64-bit store to an
 * address no memory slot covers, which KVM hands to us as KVM_EXIT_MMIO,
 * then PSCI SYSTEM_OFF through HVC, which KVM's PSCI turns into
 * KVM_EXIT_SYSTEM_EVENT (SHUTDOWN). It prints one line per step and exits
 * 0 only if both exits came, in that order, with the values the guest
 * used; 1 otherwise, with the reason on the last line.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_BASE 0x40000000UL
#define RAM_SIZE 0x10000UL
/* The guest's MMIO target: below RAM, away from the GIC's frames. */
#define MMIO_ADDR       0x10000000UL
#define MMIO_VALUE      0x6875736b2d61726dULL /* "husk-arm" */
#define PSCI_SYSTEM_OFF 0x84000008UL
#define GICD_BASE       0x08000000UL
#define GICR_BASE       0x080a0000UL /* one vCPU's redistributor: 128 KiB */
/* TCG runs the test host slowly, but a few instructions take no time. */
#define RUN_SECONDS 30
#define MAX_EXITS   16

/*
 * The guest, run with its MMU off from RAM_BASE (as aarch64-linux-gnu-as
 * assembles it): it loads its values from a literal pool right after the
 * code, at GUEST_POOL, 8-byte aligned (with the MMU off data accesses are
 * Device memory, which faults on misalignment).
 */
static const uint32_t guest_code[] = {
    0x580000c1, /* ldr x1, pool[0]   MMIO_ADDR */
    0x580000e2, /* ldr x2, pool[1]   MMIO_VALUE */
    0xf9000022, /* str x2, [x1]      the MMIO exit */
    0x580000e0, /* ldr x0, pool[2]   PSCI_SYSTEM_OFF */
    0xd4000002, /* hvc #0            the system event */
    0x14000000, /* b .               never reached */
};
#define GUEST_POOL 0x18 /* the ldr offsets above point here */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("kvm-arm64-probe: ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
}

/* A call that failed: what it was, and errno's word for why. */
static void __attribute__((noreturn)) fail(const char *what)
{
	say("FAIL %s: %s", what, strerror(errno));
	exit(1);
}

/* A capability or value that is not what the test needs. */
static void __attribute__((noreturn)) fail_check(const char *what)
{
	say("FAIL %s", what);
	exit(1);
}

static int ioctl_or_die(int fd, unsigned long req, void *arg, const char *what)
{
	int ret = ioctl(fd, req, arg);

	if (ret < 0)
		fail(what);
	return ret;
}

static void gic_attr(int gic, uint32_t group, uint64_t attr, void *addr, const char *what)
{
	struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uintptr_t)addr};

	ioctl_or_die(gic, KVM_SET_DEVICE_ATTR, &a, what);
}

/* The in-kernel GICv3, its frames placed where the guest does not look. */
static int create_gic(int vm)
{
	struct kvm_create_device dev = {.type = KVM_DEV_TYPE_ARM_VGIC_V3};
	uint64_t dist = GICD_BASE, redist = GICR_BASE;

	ioctl_or_die(vm, KVM_CREATE_DEVICE, &dev, "KVM_CREATE_DEVICE (GICv3)");
	gic_attr(dev.fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
	         "GICv3 distributor address");
	gic_attr(dev.fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
	         "GICv3 redistributor address");
	say("GICv3 in the kernel: distributor 0x%lx, redistributor 0x%lx", GICD_BASE, GICR_BASE);
	return dev.fd;
}

static void set_pc(int vcpu, uint64_t pc)
{
	struct kvm_one_reg reg = {
	    .id =
	        KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pc),
	    .addr = (uintptr_t)&pc,
	};

	ioctl_or_die(vcpu, KVM_SET_ONE_REG, &reg, "KVM_SET_ONE_REG (pc)");
}

static int create_vcpu(int vm)
{
	struct kvm_vcpu_init init;
	int vcpu = ioctl_or_die(vm, KVM_CREATE_VCPU, (void *)0, "KVM_CREATE_VCPU");

	memset(&init, 0, sizeof(init));
	ioctl_or_die(vm, KVM_ARM_PREFERRED_TARGET, &init, "KVM_ARM_PREFERRED_TARGET");
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	ioctl_or_die(vcpu, KVM_ARM_VCPU_INIT, &init, "KVM_ARM_VCPU_INIT");
	say("vCPU 0: target %u, PSCI 0.2", init.target);
	return vcpu;
}

static void add_ram(int vm)
{
	void *ram =
	    mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const uint64_t pool[] = {MMIO_ADDR, MMIO_VALUE, PSCI_SYSTEM_OFF};

	if (ram == MAP_FAILED)
		fail("mmap of the guest's RAM");
	_Static_assert(sizeof(guest_code) <= GUEST_POOL, "the code runs into its literal pool");
	memcpy(ram, guest_code, sizeof(guest_code));
	memcpy((char *)ram + GUEST_POOL, pool, sizeof(pool));
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .guest_phys_addr = RAM_BASE,
	    .memory_size = RAM_SIZE,
	    .userspace_addr = (uintptr_t)ram,
	};
	ioctl_or_die(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");
	say("guest RAM: %lu KiB at 0x%lx, %zu instructions", RAM_SIZE / 1024, RAM_BASE,
	    sizeof(guest_code) / sizeof(guest_code[0]));
}

/* SIGALRM only interrupts KVM_RUN (EINTR): a guest that never exits. */
static void on_alarm(int sig)
{
	(void)sig;
}

/* 1 when this exit is the MMIO store the guest makes, with its value. */
static int is_guest_store(const struct kvm_run *run)
{
	uint64_t data = 0;

	if (!run->mmio.is_write || run->mmio.len != sizeof(data))
		return 0;
	memcpy(&data, run->mmio.data, sizeof(data));
	return run->mmio.phys_addr == MMIO_ADDR && data == MMIO_VALUE;
}

static void report_mmio(const struct kvm_run *run)
{
	uint64_t data = 0;

	memcpy(&data, run->mmio.data, run->mmio.len <= 8 ? run->mmio.len : 8);
	say("exit MMIO: %s of %u bytes at 0x%llx, data 0x%" PRIx64,
	    run->mmio.is_write ? "write" : "read", run->mmio.len,
	    (unsigned long long)run->mmio.phys_addr, data);
}

/* Run the vCPU to the guest's SYSTEM_OFF; 0 if both exits were right. */
static int run_guest(int vcpu, struct kvm_run *run)
{
	int saw_store = 0;

	alarm(RUN_SECONDS);
	for (int n = 0; n < MAX_EXITS; n++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR) {
				say("FAIL the guest did not exit within %d s", RUN_SECONDS);
				return 1;
			}
			fail("KVM_RUN");
		}
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			report_mmio(run);
			if (!is_guest_store(run) || saw_store) {
				say("FAIL expected one write of 0x%llx at 0x%lx",
				    (unsigned long long)MMIO_VALUE, MMIO_ADDR);
				return 1;
			}
			saw_store = 1;
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			say("exit SYSTEM_EVENT: type %u (%s)", run->system_event.type,
			    run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? "SHUTDOWN"
			                                                        : "other");
			if (run->system_event.type != KVM_SYSTEM_EVENT_SHUTDOWN || !saw_store) {
				say("FAIL expected SHUTDOWN after the MMIO write");
				return 1;
			}
			say("PASS");
			return 0;
		default:
			say("FAIL unexpected exit reason %u", run->exit_reason);
			return 1;
		}
	}
	say("FAIL no SYSTEM_OFF after %d exits", MAX_EXITS);
	return 1;
}

int main(void)
{
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (kvm < 0)
		fail("/dev/kvm");
	int api = ioctl_or_die(kvm, KVM_GET_API_VERSION, NULL, "KVM_GET_API_VERSION");
	int ipa = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
	int psci = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2);
	say("KVM API %d, IPA size %d bits, PSCI 0.2 %s", api, ipa, psci > 0 ? "yes" : "no");
	if (api != KVM_API_VERSION)
		fail_check("KVM API version (want 12)");
	if (ipa < 32)
		fail_check("KVM_CAP_ARM_VM_IPA_SIZE (want at least 32 bits)");
	if (psci <= 0)
		fail_check("KVM_CAP_ARM_PSCI_0_2 (missing)");

	/* Type 0: the default 40-bit IPA space, which holds our addresses. */
	int vm = ioctl_or_die(kvm, KVM_CREATE_VM, (void *)0, "KVM_CREATE_VM");
	add_ram(vm);
	/* The GIC before the vCPU (as kvmtool does): the vCPU's
	 * redistributor is registered as the vCPU is made. */
	int gic = create_gic(vm);
	int vcpu = create_vcpu(vm);
	gic_attr(gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL, "GICv3 init");
	set_pc(vcpu, RAM_BASE);

	int run_size = ioctl_or_die(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL, "KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run =
	    mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		fail("mmap of kvm_run");
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		fail("sigaction");
	return run_guest(vcpu, run);
}
