// SPDX-License-Identifier: MIT
#include "vmm/machine.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "devices/display/virtio_gpu.h"
#include "devices/display/vnc.h"
#include "devices/display/window.h"
#include "devices/input/virtio_input.h"
#include "devices/pci.h"
#include "devices/serial.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/fs.h"
#include "devices/virtio/net.h"
#include "devices/virtio/pci.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"
#include "vmm/arch.h"
#include "vmm/bus.h"
#include "vmm/error.h"
#include "vmm/guest_memory.h"
#include "vmm/host_check.h"
#include "vmm/irq.h"
#include "vmm/layout.h"
#include "vmm/msi.h"
#include "vmm/seccomp_threads.h"
#include "vmm/vcpu.h"

struct machine {
	const struct vm_config *cfg;
	int kvm_fd;
	int vm_fd;
	struct guest_memory mem;
	struct bus pio;
	struct bus mmio;

	struct arch_vm arch;

	struct vcpu_env vcpu_env;
	struct vcpu *vcpus;
	unsigned int nvcpus;

	struct serial *serial;
	struct pci_bus pci;
	struct msi_router msi;
	bool msi_ready;
	struct virtio_env virtio;
	struct virtio_pci *rng;
	GPtrArray *disks;      /* struct virtio_blk * */
	GPtrArray *nics;       /* struct virtio_net * */
	GPtrArray *shares;     /* struct virtio_fs * */
	GPtrArray *transports; /* struct virtio_pci *, one per disk, NIC and share */
	struct virtio_vsock *vsock;
	struct virtio_pci *vsock_t;
	struct virtio_gpu *gpu; /* --gpu, or NULL */
	struct virtio_pci *gpu_t;
	/* --display vnc: its server, and the keyboard and tablet it feeds */
	struct vnc_server *vnc;
	struct display_window *window; /* --display window */
	struct virtio_input *keyboard, *tablet;
	struct virtio_pci *keyboard_t, *tablet_t;
	/* Hot-plugged shares, by slot, and the thread that plugs them. */
	struct virtio_fs *plugged_fs[PCI_MAX_DEVICES];
	struct virtio_pci *plugged_t[PCI_MAX_DEVICES];
	GThread *plugger;
	bool threads_confined; /* machine_confine_threads() done */
	GAsyncQueue *plug_jobs;

	GMainContext *ctx;
	GMainLoop *loop;
	atomic_int stop_reason;
	atomic_bool stopping;
};

static gboolean quit_loop(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

/* Any thread may call this; the first reason wins. */
static void request_stop(void *ctx, enum stop_reason reason)
{
	struct machine *m = ctx;
	int none = STOP_NONE;

	if (!atomic_compare_exchange_strong(&m->stop_reason, &none, (int)reason))
		return;
	atomic_store(&m->stopping, true);
	/* Invoke rather than quit directly: the loop may not be running yet. */
	g_main_context_invoke(m->ctx, quit_loop, m->loop);
}

static struct stop_hook stop_hook(struct machine *m)
{
	return (struct stop_hook){.request = request_stop, .ctx = m};
}

static void set_irq_line(void *ctx, uint32_t gsi, bool level)
{
	struct machine *m = ctx;

	arch_set_irq(&m->arch, gsi, level);
}

static bool open_kvm(struct machine *m, GError **err)
{
	m->kvm_fd = host_open_kvm(m->cfg->allow_pvm, err);
	return m->kvm_fd >= 0;
}

/*
 * --halt-poll: how long a vCPU whose guest halted spins in KVM, watching
 * for an interrupt, before it sleeps (KVM_CAP_HALT_POLL, Linux 5.8; KVM
 * grows and shrinks the window below this as the guest's halts go). A
 * guest that halts while a device answers it is woken without a trip
 * through the host's scheduler when the answer comes within it.
 */
static bool set_halt_poll(struct machine *m, GError **err)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_HALT_POLL,
	                             .args[0] = (uint64_t)m->cfg->halt_poll_us * 1000};

	if (m->cfg->halt_poll_us < 0)
		return true;
	if (ioctl(m->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_HALT_POLL) <= 0) {
		g_set_error(
		    err, HUSK_ERROR, HUSK_EXIT_HOST,
		    "--halt-poll: this host's KVM cannot set it (KVM_CAP_HALT_POLL, Linux 5.8)");
		return false;
	}
	if (ioctl(m->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return husk_fail_errno(err, HUSK_EXIT_HOST, "KVM_ENABLE_CAP(KVM_CAP_HALT_POLL)");
	return true;
}

static bool create_vm(struct machine *m, GError **err)
{
	m->vm_fd = ioctl(m->kvm_fd, KVM_CREATE_VM, 0UL);
	if (m->vm_fd < 0)
		return husk_fail_errno(err, HUSK_EXIT_HOST, "KVM_CREATE_VM");
	m->arch = (struct arch_vm){.cfg = m->cfg,
	                           .kvm_fd = m->kvm_fd,
	                           .vm_fd = m->vm_fd,
	                           .mem = &m->mem,
	                           .pio = &m->pio,
	                           .mmio = &m->mmio,
	                           .pci = &m->pci,
	                           .stop = stop_hook(m)};
	return arch_vm_init(&m->arch, err) && set_halt_poll(m, err);
}

static bool add_memory(struct machine *m, GError **err)
{
	if (!guest_memory_alloc(&m->mem, m->cfg->memory)) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_RUNTIME,
		            "cannot map %" PRIu64 " MiB of guest memory: %s", m->cfg->memory / MiB,
		            g_strerror(errno));
		return false;
	}
	for (unsigned int i = 0; i < m->mem.count; i++) {
		const struct guest_region *r = &m->mem.regions[i];
		struct kvm_userspace_memory_region region = {
		    .slot = i,
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uintptr_t)r->hva,
		};

		if (ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
			return husk_fail_errno(err, HUSK_EXIT_RUNTIME,
			                       "KVM_SET_USER_MEMORY_REGION");
	}
	return true;
}

static bool register_mmio(struct machine *m, uint64_t base, uint64_t len, bus_access_fn fn,
                          void *opaque, const char *name, GError **err)
{
	if (bus_register(&m->mmio, base, len, fn, opaque, name))
		return true;
	return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: MMIO 0x%" PRIx64 "+0x%" PRIx64 " is taken",
	                 name, base, len);
}

static bool add_virtio(struct machine *m, const struct virtio_device_ops *ops, void *dev,
                       struct virtio_pci **out, GError **err)
{
	struct virtio_pci *t = virtio_pci_create(&m->virtio, ops, dev, err);

	*out = t;
	if (!t)
		return false;
	if (pci_bus_add(&m->pci, virtio_pci_device(t)) < 0)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: no room left on PCI bus 0", ops->name);
	return true;
}

static bool add_disks(struct machine *m, GError **err)
{
	for (guint i = 0; i < m->cfg->disks->len; i++) {
		struct virtio_blk *blk =
		    virtio_blk_open(m->cfg->disks->pdata[i], m->cfg->cpus, err);
		struct virtio_pci *t;

		if (!blk)
			return false;
		g_ptr_array_add(m->disks, blk);
		bool ok = add_virtio(m, &virtio_blk_ops, blk, &t, err);
		if (t)
			g_ptr_array_add(m->transports, t);
		if (!ok)
			return false;
	}
	return true;
}

static bool add_nics(struct machine *m, GError **err)
{
	for (guint i = 0; i < m->cfg->nets->len; i++) {
		struct virtio_net *n = virtio_net_create(m->cfg->nets->pdata[i], m->ctx, err);
		struct virtio_pci *t;

		if (!n)
			return false;
		g_ptr_array_add(m->nics, n);
		bool ok = add_virtio(m, &virtio_net_ops, n, &t, err);
		if (t) {
			g_ptr_array_add(m->transports, t);
			virtio_net_attach(n, t);
		}
		if (!ok)
			return false;
	}
	return true;
}

static bool add_shares(struct machine *m, GError **err)
{
	for (guint i = 0; i < m->cfg->shares->len; i++) {
		struct virtio_fs *fs = virtio_fs_open(m->cfg->shares->pdata[i], err);
		struct virtio_pci *t;

		if (!fs)
			return false;
		g_ptr_array_add(m->shares, fs);
		bool ok = add_virtio(m, &virtio_fs_ops, fs, &t, err);
		if (t)
			g_ptr_array_add(m->transports, t);
		if (!ok)
			return false;
	}
	return true;
}

static gboolean press_power_button(gpointer data)
{
	machine_press_power_button(data);
	return G_SOURCE_REMOVE;
}

/* The window's thread: the guest is asked to power off, from the I/O thread. */
static void window_closed(void *opaque)
{
	struct machine *m = opaque;

	g_main_context_invoke(m->ctx, press_power_button, m);
}

static bool add_gpu(struct machine *m, GError **err)
{
	if (m->cfg->gpu == GPU_NONE)
		return true;
	if (m->cfg->gpu == GPU_VIRGL)
		m->gpu = virtio_gpu_new_virgl(&m->mem, GPU_DEFAULT_WIDTH, GPU_DEFAULT_HEIGHT, err);
	else
		m->gpu = virtio_gpu_new(&m->mem, GPU_DEFAULT_WIDTH, GPU_DEFAULT_HEIGHT);
	if (!m->gpu || !add_virtio(m, &virtio_gpu_ops, m->gpu, &m->gpu_t, err))
		return false;
	if (!m->cfg->vnc && !m->cfg->window)
		return true;
	m->keyboard = virtio_input_new(INPUT_KEYBOARD);
	m->tablet = virtio_input_new(INPUT_TABLET);
	if (!add_virtio(m, &virtio_input_ops, m->keyboard, &m->keyboard_t, err) ||
	    !add_virtio(m, &virtio_input_ops, m->tablet, &m->tablet_t, err))
		return false;
	virtio_input_set_transport(m->keyboard, m->keyboard_t);
	virtio_input_set_transport(m->tablet, m->tablet_t);
	if (m->cfg->window) {
		m->window =
		    window_open("husk", m->gpu, m->keyboard, m->tablet, window_closed, m, err);
		return m->window != NULL;
	}
	m->vnc = vnc_start(m->cfg->vnc, m->gpu, m->keyboard, m->tablet, err);
	return m->vnc != NULL;
}

static bool add_vsock(struct machine *m, GError **err)
{
	if (!m->cfg->vsock)
		return true;
	m->vsock = virtio_vsock_create(m->cfg->vsock, m->ctx, err);
	if (!m->vsock || !add_virtio(m, &virtio_vsock_ops, m->vsock, &m->vsock_t, err))
		return false;
	virtio_vsock_attach(m->vsock, m->vsock_t);
	return true;
}

/* --- hot-plugged shares ------------------------------------------------------ */

struct plug_job {
	const struct share_config *cfg; /* NULL: the thread is to end (or to take its list) */
	bool confine;                   /* take its list, and go on */
	int slot;
	GError *err;
	GAsyncQueue *done;
};

static int plug_share(struct machine *m, const struct share_config *cfg, GError **err)
{
	struct virtio_fs *fs = virtio_fs_open(cfg, err);
	struct virtio_pci *t = fs ? virtio_pci_create(&m->virtio, &virtio_fs_ops, fs, err) : NULL;
	int slot = t ? pci_bus_plug(&m->pci, virtio_pci_device(t)) : -1;

	if (t && slot < 0)
		husk_fail(err, HUSK_EXIT_RUNTIME,
		          "virtio-fs: no room left on PCI bus 0 (32 slots, its BAR window)");
	if (slot < 0) {
		virtio_pci_destroy(t);
		virtio_fs_close(fs);
		return -1;
	}
	m->plugged_fs[slot] = fs;
	m->plugged_t[slot] = t;
	if (m->threads_confined)
		virtio_pci_confine_workers(t);
	return slot;
}

/*
 * Started on the main thread as the machine is made, before any filter
 * (the process-wide one goes on all threads at once, which one of its own
 * would refuse); once that is on, machine_confine_threads() has it take
 * its own list. The shares it plugs start their queue threads from here,
 * each taking the share's list on top of this one (vmm/seccomp_threads.h).
 */
static gpointer plugger_thread(gpointer data)
{
	struct machine *m = data;
	struct plug_job *job;

	while ((job = g_async_queue_pop(m->plug_jobs))->cfg || job->confine) {
		if (job->confine)
			seccomp_thread_enter_or_exit(SECCOMP_THREAD_PLUG);
		else
			job->slot = plug_share(m, job->cfg, &job->err);
		g_async_queue_push(job->done, job);
	}
	g_async_queue_push(job->done, job);
	return NULL;
}

static bool start_plugger(struct machine *m, GError **err)
{
	m->plug_jobs = g_async_queue_new();
	m->plugger = g_thread_try_new("husk-plug", plugger_thread, m, err);
	if (!m->plugger)
		g_prefix_error(err, "cannot start the hot-plug thread: ");
	return m->plugger != NULL;
}

static void run_plug_job(struct machine *m, struct plug_job *job)
{
	job->done = g_async_queue_new();
	g_async_queue_push(m->plug_jobs, job);
	g_async_queue_pop(job->done);
	g_async_queue_unref(job->done);
}

void machine_confine_threads(struct machine *m)
{
	struct plug_job job = {.confine = true};

	for (guint i = 0; i < m->transports->len; i++)
		virtio_pci_confine_workers(m->transports->pdata[i]);
	if (m->plugger)
		run_plug_job(m, &job);
	m->threads_confined = true;
}

int machine_plug_share(struct machine *m, const struct share_config *cfg, GError **err)
{
	struct plug_job job = {.cfg = cfg, .slot = -1};

	run_plug_job(m, &job);
	if (job.err)
		g_propagate_error(err, job.err);
	return job.slot;
}

bool machine_unplug_share(struct machine *m, int slot, GError **err)
{
	if (slot <= 0 || slot >= PCI_MAX_DEVICES || !m->plugged_t[slot])
		return husk_fail(err, HUSK_EXIT_RUNTIME, "virtio-fs: no share plugged at slot %d",
		                 slot);
	pci_bus_unplug(&m->pci, slot);
	/* No guest access reaches it now; its queue threads end before its server goes. */
	g_clear_pointer(&m->plugged_t[slot], virtio_pci_destroy);
	g_clear_pointer(&m->plugged_fs[slot], virtio_fs_close);
	return true;
}

static void stop_plugger(struct machine *m)
{
	if (m->plugger) {
		struct plug_job end = {0};
		run_plug_job(m, &end);
		g_thread_join(m->plugger);
	}
	if (m->plug_jobs)
		g_async_queue_unref(m->plug_jobs);
	for (int slot = 0; slot < PCI_MAX_DEVICES; slot++) {
		g_clear_pointer(&m->plugged_t[slot], virtio_pci_destroy);
		g_clear_pointer(&m->plugged_fs[slot], virtio_fs_close);
	}
}

/* Frames a guest sent that broke the rules are dropped; say how many, once. */
static void report_net_drops(struct machine *m)
{
	static const char *const why[NET_TX_NVERDICTS] = {
	    [NET_TX_BAD_CHAIN] = "bad chain",     [NET_TX_TRUNCATED] = "truncated",
	    [NET_TX_OVERSIZE] = "oversize",       [NET_TX_BAD_HEADER] = "bad header",
	    [NET_TX_BACKEND] = "backend refused",
	};

	for (guint i = 0; m->nics && i < m->nics->len; i++) {
		struct virtio_net_stats st;
		GString *msg = g_string_new(NULL);
		uint64_t total = 0;

		virtio_net_get_stats(m->nics->pdata[i], &st);
		for (int v = NET_TX_OK + 1; v < NET_TX_NVERDICTS; v++) {
			if (!st.tx_dropped[v])
				continue;
			total += st.tx_dropped[v];
			g_string_append_printf(msg, "%s%" PRIu64 " %s", msg->len ? ", " : "",
			                       st.tx_dropped[v], why[v]);
		}
		if (total)
			g_printerr("husk: net%u: dropped %" PRIu64 " of %" PRIu64
			           " frames from the guest (%s)\n",
			           i, total, total + st.tx_frames, msg->str);
		g_string_free(msg, TRUE);
		total = st.rx_dropped + st.rx_queue_full;
		if (total)
			g_printerr("husk: net%u: dropped %" PRIu64 " of %" PRIu64
			           " frames for the guest (%" PRIu64 " it could not take, %" PRIu64
			           " while it had no buffers free)\n",
			           i, total, total + st.rx_frames, st.rx_dropped, st.rx_queue_full);
		if (st.ring_faults)
			g_printerr("husk: net%u: vhost-net found %" PRIu64
			           " faults in the guest's rings (the device needed a reset)\n",
			           i, st.ring_faults);
	}
}

/* The 64-bit BAR window: past the end of RAM, and addressable by the guest. */
static bool place_mmio64(struct machine *m, GError **err)
{
	const struct guest_region *last = &m->mem.regions[m->mem.count - 1];
	uint64_t ram_end = MAX(last->gpa + last->size, LAYOUT_HIGH_RAM);
	uint64_t base = (ram_end + LAYOUT_PCI_MMIO64_ALIGN - 1) & ~(LAYOUT_PCI_MMIO64_ALIGN - 1);
	unsigned int bits = arch_phys_bits(&m->arch);

	if (bits < 64 && base + LAYOUT_PCI_MMIO64_SIZE > UINT64_C(1) << bits) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_USAGE,
		            "--memory: %" PRIu64 " MiB leaves no room for PCI devices below the "
		            "guest's %u-bit physical address limit",
		            m->cfg->memory / MiB, bits);
		return false;
	}
	pci_bus_set_mmio64(&m->pci, base, LAYOUT_PCI_MMIO64_SIZE);
	return true;
}

static bool add_pci(struct machine *m, GError **err)
{
	if (!place_mmio64(m, err) || !msi_router_init(&m->msi, m->vm_fd, err))
		return false;
	m->msi_ready = true;
	m->virtio = (struct virtio_env){.vm_fd = m->vm_fd,
	                                .ctx = m->ctx,
	                                .msi = &m->msi,
	                                .mem = &m->mem,
	                                .poll_us = m->cfg->poll_us};
	if (!add_virtio(m, &virtio_rng_ops, NULL, &m->rng, err) || !add_disks(m, err) ||
	    !add_nics(m, err) || !add_shares(m, err) || !add_vsock(m, err) || !add_gpu(m, err))
		return false;
	return register_mmio(m, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, pci_ecam_access, &m->pci,
	                     "pci-ecam", err) &&
	       register_mmio(m, LAYOUT_PCI_MMIO32, LAYOUT_PCI_MMIO32_SIZE, pci_mmio32_access,
	                     &m->pci, "pci-bars", err) &&
	       register_mmio(m, m->pci.mmio64_base, m->pci.mmio64_size, pci_mmio64_access, &m->pci,
	                     "pci-bars-64", err);
}

static bool add_devices(struct machine *m, GError **err)
{
	struct irq_line serial_irq = {.set = set_irq_line, .ctx = m, .gsi = IRQ_SERIAL};

	m->serial = serial_create(serial_irq, m->cfg->console_out);
	return arch_add_devices(&m->arch, m->serial, err) && add_pci(m, err);
}

/* The kernel, the machine's description (ACPI, device tree) for it, and the boot vCPU at its entry.
 */
static bool load_kernel(struct machine *m, GError **err)
{
	struct arch_boot boot = {0};

	return arch_load_kernel(&m->arch, &boot, err) &&
	       arch_describe_machine(&m->arch, &boot, err) &&
	       arch_vcpu_boot(&m->vcpus[0], &boot, err);
}

static bool create_vcpus(struct machine *m, GError **err)
{
	int run_size = ioctl(m->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	int max_vcpus = ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);

	if (run_size <= 0)
		return husk_fail_errno(err, HUSK_EXIT_HOST, "KVM_GET_VCPU_MMAP_SIZE");
	if (max_vcpus > 0 && m->cfg->cpus > (unsigned int)max_vcpus) {
		g_set_error(err, HUSK_ERROR, HUSK_EXIT_HOST,
		            "--cpus: %u is more than this host's KVM allows (%d)", m->cfg->cpus,
		            max_vcpus);
		return false;
	}
	m->vcpu_env = (struct vcpu_env){
	    .vm_fd = m->vm_fd,
	    .run_size = (size_t)run_size,
	    .arch = &m->arch,
	    .pio = &m->pio,
	    .mmio = &m->mmio,
	    .stop = stop_hook(m),
	    .stopping = &m->stopping,
	};
	m->vcpus = g_new0(struct vcpu, m->cfg->cpus);
	for (unsigned int i = 0; i < m->cfg->cpus; i++) {
		m->vcpus[i].fd = -1;
		m->nvcpus = i + 1;
		if (!vcpu_create(&m->vcpus[i], &m->vcpu_env, i, err))
			return false;
	}
	return arch_vcpus_ready(&m->arch, err);
}

struct machine *machine_create(const struct vm_config *cfg, GError **err)
{
	struct machine *m = g_new0(struct machine, 1);

	m->cfg = cfg;
	m->kvm_fd = -1;
	m->vm_fd = -1;
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	pci_bus_init(&m->pci);
	m->disks = g_ptr_array_new_with_free_func((GDestroyNotify)virtio_blk_close);
	m->nics = g_ptr_array_new_with_free_func((GDestroyNotify)virtio_net_destroy);
	m->shares = g_ptr_array_new_with_free_func((GDestroyNotify)virtio_fs_close);
	m->transports = g_ptr_array_new_with_free_func((GDestroyNotify)virtio_pci_destroy);
	m->ctx = g_main_context_new();
	m->loop = g_main_loop_new(m->ctx, FALSE);
	vcpu_init_signals();

	static const struct {
		const char *name;
		bool (*fn)(struct machine *m, GError **err);
	} steps[] = {
	    {"kvm", open_kvm},           {"vm", create_vm},        {"memory", add_memory},
	    {"vcpus", create_vcpus},     {"devices", add_devices}, {"kernel", load_kernel},
	    {"hot-plug", start_plugger},
	};
	GString *times = g_string_new(NULL);
	bool ok = true;

	for (size_t i = 0; ok && i < G_N_ELEMENTS(steps); i++) {
		int64_t start = g_get_monotonic_time();
		ok = steps[i].fn(m, err);
		g_string_append_printf(times, " %s %.2f", steps[i].name,
		                       (double)(g_get_monotonic_time() - start) / 1000);
	}
	if (ok && cfg->timings)
		g_printerr("husk: set-up steps (ms):%s\n", times->str);
	g_string_free(times, TRUE);
	if (!ok) {
		machine_destroy(m);
		return NULL;
	}
	return m;
}

static void stop_vcpus(struct machine *m)
{
	atomic_store(&m->stopping, true);
	for (unsigned int i = 0; i < m->nvcpus; i++)
		vcpu_kick(&m->vcpus[i]);
	for (unsigned int i = 0; i < m->nvcpus; i++)
		vcpu_join(&m->vcpus[i]);
}

/* --timings: how long husk took to start the guest, and its own memory apart from the guest's RAM.
 */
static void report_timings(struct machine *m)
{
	struct rusage ru;

	if (m->vcpus[0].first_run_ns)
		g_printerr("husk: setup took %.2f ms (start to first KVM_RUN)\n",
		           (double)(m->vcpus[0].first_run_ns - m->cfg->start_ns) / 1e6);
	getrusage(RUSAGE_SELF, &ru);
	uint64_t peak = (uint64_t)ru.ru_maxrss * KiB;
	uint64_t guest = gm_resident_bytes(&m->mem);
	g_printerr("husk: peak RSS %.1f MiB, guest RAM touched %.1f MiB, husk's own %.1f MiB\n",
	           (double)peak / MiB, (double)guest / MiB,
	           (double)(peak > guest ? peak - guest : 0) / MiB);
}

/* The driver's waits, bucket by bucket: what each window length would catch. */
static void report_gaps(const struct virtio_poll_stats *st, unsigned int q)
{
	GString *line = g_string_new(NULL);

	for (unsigned int b = 0; b < VIRTIO_POLL_GAP_BUCKETS; b++) {
		bool last = b == VIRTIO_POLL_GAP_BUCKETS - 1; /* it has the rest */

		if (st->gaps[b])
			g_string_append_printf(line, "%s%s%uus %" PRIu64, line->len ? ", " : "",
			                       last ? ">=" : "<", last ? 1u << b : 2u << b,
			                       st->gaps[b]);
	}
	g_printerr("husk: %s queue %u: waits for the next request: %s\n", st->device, q, line->str);
	g_string_free(line, TRUE);
}

/*
 * --timings: how the queue threads found their work. Each request the
 * driver kicked cost the guest a VM exit; those polling caught cost none.
 */
static void report_polling(struct machine *m)
{
	for (guint i = 0; i < m->transports->len; i++) {
		struct virtio_poll_stats st;

		for (unsigned int q = 0; virtio_pci_poll_stats(m->transports->pdata[i], q, &st);
		     q++) {
			if (!st.polled || !(st.woken + st.caught))
				continue;
			g_printerr("husk: %s queue %u: %" PRIu64 " wake-ups, %" PRIu64
			           " polls caught work, %" PRIu64
			           " more as the window closed, %" PRIu64
			           " windows cut short by preemption\n",
			           st.device, q, st.woken, st.caught, st.late, st.preempted);
			report_gaps(&st, q);
		}
	}
}

static int by_count_desc(const void *a, const void *b, void *counts)
{
	const uint64_t *n = counts;
	uint64_t x = n[*(const unsigned int *)a], y = n[*(const unsigned int *)b];

	return x < y ? 1 : x > y ? -1 : 0;
}

/* --timings: each share's FUSE requests, the commonest first. */
static void report_shares(struct machine *m)
{
	for (guint i = 0; i < m->shares->len; i++) {
		const struct share_config *cfg = m->cfg->shares->pdata[i];
		struct fuse_server_stats st;
		unsigned int order[FUSE_SERVER_OPCODES];
		GString *mix = g_string_new(NULL);

		virtio_fs_get_stats(m->shares->pdata[i], &st);
		for (unsigned int op = 0; op < FUSE_SERVER_OPCODES; op++)
			order[op] = op;
		g_qsort_with_data(order, FUSE_SERVER_OPCODES, sizeof(order[0]), by_count_desc,
		                  st.by_opcode);
		for (unsigned int k = 0; k < FUSE_SERVER_OPCODES && st.by_opcode[order[k]]; k++) {
			const char *name = fuse_opcode_name(order[k]);

			if (mix->len)
				g_string_append(mix, ", ");
			if (name)
				g_string_append(mix, name);
			else
				g_string_append_printf(mix, "opcode %u", order[k]);
			g_string_append_printf(mix, " %" PRIu64, st.by_opcode[order[k]]);
		}
		g_printerr("husk: share %s: %" PRIu64 " requests (%s), %" PRIu64
		           " answered with an error, %" PRIu64 " malformed\n",
		           cfg->tag, st.requests, mix->str, st.errors, st.bad_requests);
		g_string_free(mix, TRUE);
	}
}

void machine_press_power_button(struct machine *m)
{
	arch_press_power_button(&m->arch);
}

void machine_request_stop(struct machine *m, enum stop_reason reason)
{
	request_stop(m, reason);
}

GMainContext *machine_context(struct machine *m)
{
	return m->ctx;
}

struct virtio_gpu *machine_gpu(struct machine *m)
{
	return m->gpu;
}

struct serial *machine_serial(struct machine *m)
{
	return m->serial;
}

struct stop_hook machine_stop_hook(struct machine *m)
{
	return stop_hook(m);
}

/* What the guest's display driver asked of the GPU, and what it holds now. */
static void report_gpu(struct machine *m)
{
	struct gpu_stats st;

	if (!m->gpu)
		return;
	virtio_gpu_stats(m->gpu, &st);
	g_printerr("husk: gpu: %" PRIu64 " commands (%" PRIu64 " refused), %" PRIu64
	           " transfers, %" PRIu64 " flushes, %" PRIu64
	           " cursor updates; %u resources, %" PRIu64 " KiB\n",
	           st.commands, st.errors, st.transfers, st.flushes, st.cursor_updates,
	           st.resources, st.resource_bytes / 1024);
	if (st.shown)
		g_printerr("husk: gpu: %" PRIu64 " flushes of the scanout, taken to on screen: "
		           "%" PRIu64 " us on average, %" PRIu64 " us at most\n",
		           st.shown, st.shown_us_total / st.shown, st.shown_us_max);
	if (m->cfg->gpu == GPU_VIRGL)
		g_printerr("husk: gpu: 3D: %u contexts, %" PRIu64 " command streams (%" PRIu64
		           " KiB), %" PRIu64 " fences\n",
		           st.contexts, st.submits, st.submit_bytes / 1024, st.fences);
}

void machine_report(struct machine *m)
{
	report_timings(m);
	report_shares(m);
	report_gpu(m);
	report_polling(m);
}

/* The I/O thread: the devices' glib loop, under its own allow list, until a stop. */
static void *io_thread(void *data)
{
	struct machine *m = data;
	GError *err = NULL;

	pthread_setname_np(pthread_self(), "husk-io");
	if (!seccomp_thread_enter(SECCOMP_THREAD_IO, &err)) {
		g_printerr("husk: %s\n", err->message);
		g_clear_error(&err);
		request_stop(m, STOP_ERROR);
	}
	g_main_loop_run(m->loop);
	return NULL;
}

enum stop_reason machine_run(struct machine *m)
{
	GError *err = NULL;
	pthread_t io;
	int rc = pthread_create(&io, NULL, io_thread, m);

	/* Their threads' lists, now the process-wide filter is on. */
	vnc_serve(m->vnc);
	window_serve(m->window);
	if (rc) {
		g_printerr("husk: cannot start the I/O thread: %s\n", g_strerror(rc));
		return STOP_ERROR;
	}
	for (unsigned int i = 0; i < m->nvcpus; i++) {
		if (!vcpu_start(&m->vcpus[i], &err)) {
			g_printerr("husk: %s\n", err->message);
			g_clear_error(&err);
			request_stop(m, STOP_ERROR);
			break;
		}
	}
	/*
	 * Every thread of the VM started (after: a thread inherits its
	 * starter's list), the main thread only waits and tears the VM down;
	 * to set it up again on a reboot, it keeps what it had.
	 */
	if (m->cfg->on_reboot != ON_REBOOT_RESTART)
		seccomp_thread_enter_or_exit(SECCOMP_THREAD_MAIN);
	pthread_join(io, NULL);
	stop_vcpus(m);
	for (unsigned int i = 0; i < m->nvcpus; i++)
		if (m->vcpus[i].error)
			g_printerr("husk: %s\n", m->vcpus[i].error);
	return (enum stop_reason)atomic_load(&m->stop_reason);
}

void machine_destroy(struct machine *m)
{
	if (!m)
		return;
	stop_vcpus(m);
	for (unsigned int i = 0; i < m->nvcpus; i++)
		vcpu_destroy(&m->vcpus[i]);
	g_free(m->vcpus);
	g_clear_pointer(&m->serial, serial_destroy);
	arch_vm_destroy(&m->arch);
	report_net_drops(m);
	stop_plugger(m);
	g_clear_pointer(&m->transports, g_ptr_array_unref);
	g_clear_pointer(&m->disks, g_ptr_array_unref);
	g_clear_pointer(&m->nics, g_ptr_array_unref);
	g_clear_pointer(&m->shares, g_ptr_array_unref);
	g_clear_pointer(&m->rng, virtio_pci_destroy);
	g_clear_pointer(&m->vsock_t, virtio_pci_destroy);
	g_clear_pointer(&m->vsock, virtio_vsock_destroy);
	/* Before what their threads reach. */
	g_clear_pointer(&m->vnc, vnc_stop);
	g_clear_pointer(&m->window, window_close);
	g_clear_pointer(&m->keyboard_t, virtio_pci_destroy);
	g_clear_pointer(&m->tablet_t, virtio_pci_destroy);
	g_clear_pointer(&m->keyboard, virtio_input_free);
	g_clear_pointer(&m->tablet, virtio_input_free);
	g_clear_pointer(&m->gpu_t, virtio_pci_destroy);
	g_clear_pointer(&m->gpu, virtio_gpu_free);
	if (m->msi_ready)
		msi_router_destroy(&m->msi);
	pci_bus_destroy(&m->pci);
	bus_destroy(&m->pio);
	bus_destroy(&m->mmio);
	if (m->vm_fd >= 0)
		close(m->vm_fd);
	if (m->kvm_fd >= 0)
		close(m->kvm_fd);
	guest_memory_free(&m->mem);
	g_main_loop_unref(m->loop);
	g_main_context_unref(m->ctx);
	g_free(m);
}
