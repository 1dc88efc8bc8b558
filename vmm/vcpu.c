// SPDX-License-Identifier: MIT
#include "vmm/vcpu.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/error.h"
#include "vmm/seccomp_threads.h"

#define SIG_KICK SIGUSR1

/* The run structure of the vCPU this thread drives, for the kick handler. */
static __thread struct kvm_run *current_run;

static void kick_handler(int sig)
{
	(void)sig;
	if (current_run)
		current_run->immediate_exit = 1;
}

void vcpu_init_signals(void)
{
	/* No SA_RESTART: KVM_RUN must return EINTR to us. */
	struct sigaction sa = {.sa_handler = kick_handler};

	sigemptyset(&sa.sa_mask);
	sigaction(SIG_KICK, &sa, NULL);
}

bool vcpu_create(struct vcpu *v, const struct vcpu_env *env, unsigned int id, GError **err)
{
	memset(v, 0, sizeof(*v));
	v->env = env;
	v->id = id;
	v->fd = ioctl(env->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_HOST, "vCPU %u: KVM_CREATE_VCPU: %s", id,
		            g_strerror(errno));
		return false;
	}
	v->run = mmap(NULL, env->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_RUNTIME, "vCPU %u: mmap kvm_run: %s", id,
		            g_strerror(errno));
		return false;
	}

	return arch_vcpu_init(env->arch, v, err);
}

static void fail(struct vcpu *v, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(struct vcpu *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	char *what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_free(v->error);
	v->error = g_strdup_printf("vCPU %u: %s", v->id, what);
	g_free(what);
	stop_request(&v->env->stop, STOP_ERROR);
}

static const char *internal_error_name(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "event delivery failed";
	default:
		return "internal error";
	}
}

static void handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		stop_request(&v->env->stop, STOP_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		stop_request(&v->env->stop, STOP_REBOOT);
		break;
	case KVM_SYSTEM_EVENT_CRASH:
		stop_request(&v->env->stop, STOP_PANIC);
		break;
	default:
		fail(v, "unknown KVM system event %u", v->run->system_event.type);
	}
}

/* Returns false when the vCPU must stop running. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		bus_dispatch(v->env->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
		             run->mmio.is_write);
		return true;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(v);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		fail(v, "KVM internal error %u (%s) at %s 0x%" PRIx64, run->internal.suberror,
		     internal_error_name(run->internal.suberror), arch_pc_name(), arch_vcpu_pc(v));
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		fail(v, "KVM could not enter the guest (hardware reason 0x%llx)",
		     (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	default:
		switch (arch_handle_exit(v)) {
		case ARCH_EXIT_CONTINUE:
			return true;
		case ARCH_EXIT_STOP:
			return false;
		case ARCH_EXIT_UNKNOWN:
			break;
		}
		fail(v, "unexpected KVM exit %u at %s 0x%" PRIx64, run->exit_reason, arch_pc_name(),
		     arch_vcpu_pc(v));
		return false;
	}
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *vcpu_thread(void *opaque)
{
	struct vcpu *v = opaque;
	char name[16];
	GError *err = NULL;

	snprintf(name, sizeof(name), "husk-vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	if (!seccomp_thread_enter(SECCOMP_THREAD_VCPU, &err)) {
		fail(v, "%s", err->message);
		g_error_free(err);
		return NULL;
	}
	current_run = v->run;
	while (!atomic_load(v->env->stopping)) {
		if (!v->first_run_ns)
			v->first_run_ns = now_ns();
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			fail(v, "KVM_RUN: %s", g_strerror(errno));
			break;
		}
		if (!handle_exit(v))
			break;
	}
	current_run = NULL;
	return NULL;
}

bool vcpu_start(struct vcpu *v, GError **err)
{
	sigset_t block, old;

	/* Termination signals belong to the I/O thread; only the kick reaches vCPUs. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_RUNTIME, "vCPU %u: cannot start thread: %s",
		            v->id, g_strerror(rc));
		return false;
	}
	v->running = true;
	return true;
}

void vcpu_kick(struct vcpu *v)
{
	if (v->running)
		pthread_kill(v->thread, SIG_KICK);
}

void vcpu_join(struct vcpu *v)
{
	if (v->running)
		pthread_join(v->thread, NULL);
	v->running = false;
}

void vcpu_destroy(struct vcpu *v)
{
	g_clear_pointer(&v->error, g_free);
	if (v->run)
		munmap(v->run, v->env->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}
