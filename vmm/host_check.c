// SPDX-License-Identifier: MIT
#include "vmm/host_check.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/arch.h"
#include "vmm/error.h"

/* PVM (a paravirtual KVM for hosts without VMX/SVM) registers this module. */
#define PVM_MODULE "/sys/module/kvm_pvm"

static const struct {
	int cap;
	const char *name;
} required_caps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

/* Host errors from functions that return a file descriptor. */
#define host_error(err, ...) (husk_fail(err, HUSK_EXIT_HOST, __VA_ARGS__), -1)

static int open_device(GError **err)
{
	int fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT)
		return host_error(err, KVM_DEVICE " does not exist: load kvm_intel or kvm_amd "
		                                  "(and enable virtualization in the firmware)");
	if (errno == EACCES || errno == EPERM)
		return host_error(err, KVM_DEVICE ": permission denied (add your user to the "
		                                  "'kvm' group, then log in again)");
	return host_error(err, KVM_DEVICE ": %s", g_strerror(errno));
}

static bool check_caps(int fd, GError **err)
{
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);

	if (version != KVM_API_VERSION)
		return husk_fail(err, HUSK_EXIT_HOST,
		                 KVM_DEVICE ": KVM API version %d, husk needs %d", version,
		                 KVM_API_VERSION);
	for (size_t i = 0; i < G_N_ELEMENTS(required_caps); i++) {
		if (ioctl(fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0)
			return husk_fail(err, HUSK_EXIT_HOST,
			                 KVM_DEVICE ": the host's KVM lacks %s, which husk needs",
			                 required_caps[i].name);
	}
	for (const struct arch_kvm_cap *c = arch_required_caps; c->name; c++) {
		if (ioctl(fd, KVM_CHECK_EXTENSION, c->cap) <= 0)
			return husk_fail(err, HUSK_EXIT_HOST,
			                 KVM_DEVICE ": the host's KVM lacks %s, which husk needs",
			                 c->name);
	}
	return true;
}

bool host_cpu_has_hw_virt(void)
{
	return arch_cpu_has_hw_virt();
}

bool host_kvm_is_pvm(const char *module_path, bool cpu_has_hw_virt)
{
	/*
	 * kvm_intel and kvm_amd load only on a CPU that shows VMX or SVM, so a
	 * working /dev/kvm on one that shows neither is PVM's: this holds in a
	 * chroot or container without /sys, where the module cannot be seen.
	 */
	return !cpu_has_hw_virt || access(module_path, F_OK) == 0;
}

int host_open_kvm(bool allow_pvm, GError **err)
{
	int fd = open_device(err);
	if (fd < 0)
		return -1;
	if (!allow_pvm && host_kvm_is_pvm(PVM_MODULE, host_cpu_has_hw_virt())) {
		close(fd);
		return host_error(err, KVM_DEVICE
		                  " is PVM-backed (kvm_pvm, or a CPU without VMX or "
		                  "SVM): it cannot boot an unmodified Linux kernel; use a "
		                  "host with VMX or SVM (or --allow-pvm to try anyway)");
	}
	if (!check_caps(fd, err)) {
		close(fd);
		return -1;
	}
	return fd;
}
