// SPDX-License-Identifier: MIT
#include "vmm/process.h"

#include <glib-unix.h>
#include <signal.h>
#include <unistd.h>

#include "devices/net/net.h"
#include "vmm/console.h"
#include "vmm/privdrop.h"
#include "vmm/seccomp.h"

/* What the devices do on the I/O thread, besides the driver's own work. */
static unsigned int devices_io(const struct vm_config *cfg)
{
	unsigned int io = cfg->vsock ? SECCOMP_IO_SOCKETS : 0;

	for (guint i = 0; i < cfg->nets->len; i++) {
		const struct net_config *n = cfg->nets->pdata[i];

		/* libslirp: the guest's connections, and /etc/resolv.conf read again as it changes.
		 */
		if (n->kind == NET_USER)
			io |= SECCOMP_IO_SOCKETS | SECCOMP_IO_READ_FILES;
	}
	return io;
}

/*
 * Before the machine is set up: the threads it starts during set-up (a
 * share's queue threads) learn the policy and drop capabilities at once.
 */
static void arm(const struct vm_config *cfg, unsigned int io, const char *io_dir)
{
	unsigned int files = SECCOMP_IO_READ_FILES | SECCOMP_IO_WRITE_FILES;
	struct seccomp_policy policy = {
	    .io = io | devices_io(cfg),
	    /* The driver's own files: beneath io_dir, else (an instance's) not confined yet. */
	    .io_landlock = !(io & files) || io_dir,
	    .io_dir = io_dir,
	    .io_dir_writable = io & SECCOMP_IO_WRITE_FILES,
	    .io_reads_resolv_conf = devices_io(cfg) & SECCOMP_IO_READ_FILES,
	    .keep_fs_caps = geteuid() == 0 && cfg->shares->len > 0 && !cfg->run_as.set,
	    .switch_user = cfg->run_as.set,
	};

	if (cfg->no_seccomp) {
		seccomp_disarm();
		return;
	}
	seccomp_policy_from_env(&policy);
	seccomp_arm(&policy);
}

/* Last, once every file husk needs is open: the filters keep a guest that took over a device in. */
static bool lock_down(const struct vm_config *cfg, GError **err)
{
	if (cfg->no_seccomp)
		return true;
	/*
	 * The main thread keeps what tearing the VM down takes (husk exec
	 * removes what the guest wrote), or, to set it up again on a reboot,
	 * everything. The threads the machine starts keep less (seccomp_threads.c).
	 */
	if (cfg->on_reboot != ON_REBOOT_RESTART && !seccomp_keep_caps(SECCOMP_FILE_CAPS, err))
		return false;
	return seccomp_lock_down(err);
}

struct machine *process_create_machine(const struct vm_config *cfg, unsigned int io, GError **err)
{
	return process_create_machine_in(cfg, io, NULL, err);
}

struct machine *process_create_machine_in(const struct vm_config *cfg, unsigned int io,
                                          const char *io_dir, GError **err)
{
	arm(cfg, io, io_dir);
	struct machine *m = machine_create(cfg, err);

	/* Every device open, no thread's capabilities dropped yet: root can go. */
	if (m && cfg->run_as.set && !run_as_apply(&cfg->run_as, err)) {
		machine_destroy(m);
		m = NULL;
	}
	if (m && !lock_down(cfg, err)) {
		machine_destroy(m);
		m = NULL;
	}
	if (m && !cfg->no_seccomp)
		machine_confine_threads(m);
	if (!m)
		seccomp_disarm();
	return m;
}

struct signal_watch {
	struct machine *m;
	int signo;
	int *caught;                            /* where the signal that stopped the VM goes */
	void (*forward)(void *data, int signo); /* instead of stopping, when set */
	void *forward_data;
};

static gboolean on_signal(gpointer data)
{
	struct signal_watch *w = data;

	if (w->forward) {
		w->forward(w->forward_data, w->signo);
		return G_SOURCE_CONTINUE;
	}
	*w->caught = w->signo;
	machine_request_stop(w->m, STOP_SIGNAL);
	return G_SOURCE_CONTINUE;
}

static void watch_signals(struct machine *m, int *caught, GSource **sources,
                          void (*forward)(void *data, int signo), void *forward_data)
{
	static const int signals[] = {SIGINT, SIGTERM, SIGHUP};

	/* glib's own thread, which starts with the first of them, under its list. */
	seccomp_new_signal_sources(signals, G_N_ELEMENTS(signals), sources);
	for (size_t i = 0; i < G_N_ELEMENTS(signals); i++) {
		struct signal_watch *w = g_new(struct signal_watch, 1);

		*w = (struct signal_watch){m, signals[i], caught, forward, forward_data};
		g_source_set_callback(sources[i], on_signal, w, g_free);
		g_source_attach(sources[i], machine_context(m));
	}
}

static gboolean timed_out(gpointer data)
{
	machine_request_stop(data, STOP_TIMEOUT);
	return G_SOURCE_REMOVE;
}

static GSource *add_timeout(struct machine *m, unsigned int seconds)
{
	GSource *t = g_timeout_source_new_seconds(seconds);

	g_source_set_callback(t, timed_out, m, NULL);
	g_source_attach(t, machine_context(m));
	return t;
}

static void remove_source(GSource *s)
{
	if (!s)
		return;
	g_source_destroy(s);
	g_source_unref(s);
}

enum stop_reason process_run_machine(struct machine *m, const struct vm_config *cfg, int *signo)
{
	return process_run_machine_forwarding(m, cfg, signo, NULL, NULL);
}

enum stop_reason process_run_machine_forwarding(struct machine *m, const struct vm_config *cfg,
                                                int *signo, void (*fn)(void *data, int signo),
                                                void *data)
{
	GSource *signals[3], *timeout = NULL;
	struct console *console = NULL;
	int caught = 0;

	watch_signals(m, &caught, signals, fn, data);
	if (cfg->console_in >= 0)
		console = console_open(cfg->console_in, machine_context(m), machine_serial(m),
		                       machine_stop_hook(m));
	if (cfg->timeout_s)
		timeout = add_timeout(m, cfg->timeout_s);
	enum stop_reason reason = machine_run(m);
	/* The loop has stopped: what ran on it can go. */
	if (console)
		console_close(console);
	remove_source(timeout);
	for (size_t i = 0; i < G_N_ELEMENTS(signals); i++)
		remove_source(signals[i]);
	if (cfg->timings)
		machine_report(m);
	*signo = caught;
	return reason;
}
