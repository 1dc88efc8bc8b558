// SPDX-License-Identifier: MIT
/* Telling a PVM-backed /dev/kvm, with /sys to look in and without. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/host_check.h"

static void test_pvm_signals(void)
{
	g_autofree char *dir = g_dir_make_tmp("host-check-XXXXXX", NULL);

	g_assert_false(host_kvm_is_pvm("/nonexistent/kvm_pvm", true));
	/* In a chroot without /sys the module is out of sight; CPUID is not. */
	g_assert_true(host_kvm_is_pvm("/nonexistent/kvm_pvm", false));
	g_assert_true(host_kvm_is_pvm(dir, true));
	g_rmdir(dir);
}

/* CPUID's answer is the one the kernel prints in /proc/cpuinfo's flags. */
static void test_cpuid_matches_cpuinfo(void)
{
	g_autofree char *text = NULL;

#if !defined(__x86_64__)
	g_test_skip("VMX and SVM are x86's; arm64 has no cpuinfo flag for EL2");
	return;
#endif
	if (!g_file_get_contents("/proc/cpuinfo", &text, NULL, NULL)) {
		g_test_skip("no /proc/cpuinfo");
		return;
	}
	char *flags = strstr(text, "\nflags");
	g_assert_nonnull(flags);
	g_autofree char *line = g_strndup(flags + 1, strcspn(flags + 1, "\n"));
	bool listed = strstr(line, " vmx") || strstr(line, " svm");
	g_assert_cmpint(host_cpu_has_hw_virt(), ==, listed);
}

/* On this host, if it is one without VMX and SVM: refused, naming PVM. */
static void test_refuses_without_hw_virt(void)
{
	GError *err = NULL;

	if (host_cpu_has_hw_virt() || access(KVM_DEVICE, R_OK | W_OK) != 0) {
		g_test_skip("needs a CPU without VMX and SVM and a /dev/kvm to open");
		return;
	}
	g_assert_cmpint(host_open_kvm(false, &err), ==, -1);
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_HOST);
	g_assert_nonnull(strstr(err->message, "PVM-backed"));
	g_error_free(err);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/host_check/pvm_signals", test_pvm_signals);
	g_test_add_func("/host_check/cpuid_matches_cpuinfo", test_cpuid_matches_cpuinfo);
	g_test_add_func("/host_check/refuses_without_hw_virt", test_refuses_without_hw_virt);
	return g_test_run();
}
