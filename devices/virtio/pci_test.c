/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci transport's common configuration against a hostile driver:
 * accesses that cross fields or run past the structure, queues grown past
 * what the device offers. No KVM: the test supplies the two MSI routing
 * calls the transport makes (so vmm/msi.c is not linked in), and the
 * ioeventfd registration fails harmlessly on fd -1.
 */
#include <glib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>

#include "devices/virtio/pci.h"
#include "vmm/layout.h"

/* Common configuration offsets (virtio 1.2, 4.1.4.3). */
#define STATUS       0x14
#define CONFIG_GEN   0x15
#define QUEUE_SELECT 0x16
#define QUEUE_SIZE   0x18
#define QUEUE_ENABLE 0x1c
#define QUEUE_DESC   0x20
#define QUEUE_DRIVER 0x28
#define QUEUE_DEVICE 0x30
#define COMMON_END   0x38

#define STATUS_NEEDS_RESET 0x40
#define DRIVER_FEATURE_SEL 0x08
#define DRIVER_FEATURE     0x0c
#define ISR                0x1000 /* the ISR status region (4.1.4.5) */

int msi_vector_create(struct msi_router *r, uint32_t *gsi, GError **err)
{
	static uint32_t next = 24;

	*gsi = next++;
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

bool msi_vector_route(struct msi_router *r, uint32_t gsi, uint64_t addr, uint32_t data,
                      uint32_t rid)
{
	return true;
}

static void no_notify(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
}

static const struct virtio_device_ops test_ops = {
    .name = "test",
    .device_id = 4,
    .class_code = 0xff0000,
    .num_queues = 1,
    .queue_size = 64,
    .queue_notify = no_notify,
};

struct fixture {
	struct guest_memory gm;
	GMainContext *ctx;
	struct virtio_pci *t;
	struct pci_device *pci;
};

/* A transport for 'ops' over 1 MiB of guest memory, as the machine makes one. */
static void create(struct fixture *f, const struct virtio_device_ops *ops, unsigned int poll_us)
{
	g_assert_true(guest_memory_alloc(&f->gm, 1 * MiB));
	f->ctx = g_main_context_new();
	struct virtio_env env = {.vm_fd = -1, .ctx = f->ctx, .mem = &f->gm, .poll_us = poll_us};
	GError *err = NULL;
	f->t = virtio_pci_create(&env, ops, NULL, &err);
	g_assert_no_error(err);
	f->pci = virtio_pci_device(f->t);
}

static void setup(struct fixture *f, gconstpointer data)
{
	create(f, &test_ops, 0);
}

static void teardown(struct fixture *f, gconstpointer data)
{
	virtio_pci_destroy(f->t);
	g_main_context_unref(f->ctx);
	guest_memory_free(&f->gm);
}

static void bar_write(struct fixture *f, uint32_t off, uint64_t v, uint32_t len)
{
	uint8_t b[8];

	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	f->pci->ops->bar_access(f->pci, 0, off, b, len, true);
}

static uint64_t bar_read(struct fixture *f, uint32_t off, uint32_t len)
{
	uint8_t b[8];
	uint64_t v = 0;

	memset(b, 0xaa, sizeof(b));
	f->pci->ops->bar_access(f->pci, 0, off, b, len, false);
	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

/* Whole 64-bit writes and 32-bit halves, as drivers do. */
static void test_queue_address_writes(struct fixture *f, gconstpointer data)
{
	bar_write(f, QUEUE_DESC, 0x1122334455667000ULL, 8);
	g_assert_cmphex(bar_read(f, QUEUE_DESC, 8), ==, 0x1122334455667000ULL);
	bar_write(f, QUEUE_DRIVER, 0x8000, 4);
	bar_write(f, QUEUE_DRIVER + 4, 0x1, 4);
	g_assert_cmphex(bar_read(f, QUEUE_DRIVER, 8), ==, 0x100008000ULL);
}

/*
 * An 8-byte write at the upper half of a 64-bit field crosses into the next
 * field (or past the structure): ignored, and nothing around it changes.
 */
static void test_write_across_fields(struct fixture *f, gconstpointer data)
{
	bar_write(f, QUEUE_DESC, 0x1000, 8);
	bar_write(f, QUEUE_DRIVER, 0x2000, 8);
	bar_write(f, QUEUE_DEVICE, 0x3000, 8);
	bar_write(f, QUEUE_DESC + 4, 0xdeadbeefcafef00dULL, 8);
	bar_write(f, QUEUE_DRIVER + 4, 0xdeadbeefcafef00dULL, 8);
	bar_write(f, QUEUE_DEVICE + 4, 0xdeadbeefcafef00dULL, 8);
	g_assert_cmphex(bar_read(f, QUEUE_DESC, 8), ==, 0x1000);
	g_assert_cmphex(bar_read(f, QUEUE_DRIVER, 8), ==, 0x2000);
	g_assert_cmphex(bar_read(f, QUEUE_DEVICE, 8), ==, 0x3000);
}

/* A read running past the end of the structure reads zeros, not stale bytes. */
static void test_read_past_end(struct fixture *f, gconstpointer data)
{
	g_assert_cmphex(bar_read(f, COMMON_END - 4, 8), ==, 0);
	g_assert_cmphex(bar_read(f, COMMON_END, 4), ==, 0);
}

/* Queue 0 set up with SIZE entries at well-formed ring addresses, then enabled. */
static void enable_queue(struct fixture *f, uint16_t size)
{
	bar_write(f, QUEUE_SIZE, size, 2);
	bar_write(f, QUEUE_DESC, LAYOUT_RAM_START + 0x1000, 8);
	bar_write(f, QUEUE_DRIVER, LAYOUT_RAM_START + 0x2000, 8);
	bar_write(f, QUEUE_DEVICE, LAYOUT_RAM_START + 0x3000, 8);
	bar_write(f, QUEUE_ENABLE, 1, 2);
}

/* A queue larger than the device offers is refused when enabled. */
static void test_queue_grown(struct fixture *f, gconstpointer data)
{
	g_assert_cmpuint(bar_read(f, QUEUE_SIZE, 2), ==, 64);
	enable_queue(f, 128);
	g_assert_cmpuint(bar_read(f, QUEUE_ENABLE, 2), ==, 0);
	g_assert_cmphex(bar_read(f, STATUS, 1) & STATUS_NEEDS_RESET, ==, STATUS_NEEDS_RESET);
}

/* The same queue at the offered size (or smaller) starts. */
static void test_queue_shrunk(struct fixture *f, gconstpointer data)
{
	enable_queue(f, 32);
	g_assert_cmpuint(bar_read(f, QUEUE_ENABLE, 2), ==, 1);
	g_assert_cmphex(bar_read(f, STATUS, 1) & STATUS_NEEDS_RESET, ==, 0);
}

/* A queue index the device does not have reads as size 0 and takes no writes. */
static void test_queue_select_out_of_range(struct fixture *f, gconstpointer data)
{
	bar_write(f, QUEUE_SELECT, 7, 2);
	g_assert_cmpuint(bar_read(f, QUEUE_SIZE, 2), ==, 0);
	bar_write(f, QUEUE_DESC, 0x1000, 8);
	g_assert_cmphex(bar_read(f, QUEUE_DESC, 8), ==, 0);
	bar_write(f, QUEUE_SELECT, 0, 2);
	g_assert_cmphex(bar_read(f, QUEUE_DESC, 8), ==, 0);
}

/*
 * A configuration change (a link went down) moves config_generation at
 * once, and raises the configuration interrupt once the driver runs.
 */
static void test_config_changed(struct fixture *f, gconstpointer data)
{
	g_assert_cmpuint(bar_read(f, CONFIG_GEN, 1), ==, 0);
	virtio_pci_config_changed(f->t);
	g_assert_cmpuint(bar_read(f, CONFIG_GEN, 1), ==, 1);
	g_assert_cmpuint(bar_read(f, ISR, 1), ==, 0); /* no driver yet */
	bar_write(f, DRIVER_FEATURE_SEL, 1, 4);
	bar_write(f, DRIVER_FEATURE, 1, 4);     /* VIRTIO_F_VERSION_1 */
	bar_write(f, STATUS, 1 | 2 | 8, 1);     /* ACKNOWLEDGE, DRIVER, FEATURES_OK */
	bar_write(f, STATUS, 1 | 2 | 8 | 4, 1); /* DRIVER_OK */
	g_assert_cmphex(bar_read(f, STATUS, 1), ==, 0xf);
	virtio_pci_config_changed(f->t);
	g_assert_cmpuint(bar_read(f, CONFIG_GEN, 1), ==, 2);
	g_assert_cmpuint(bar_read(f, ISR, 1), ==, 2); /* the configuration bit, */
	g_assert_cmpuint(bar_read(f, ISR, 1), ==, 0); /* cleared by the read */
}

/* --- a blocking device's worker, and its polling -------------------------- */

#define DRIVER_OK   (1 | 2 | 8 | 4)
#define NOTIFY      0x3000 /* queue 0's kick (the BAR's notify region) */
#define POLL_MAX_US 1000000

static atomic_uint served; /* requests the worker took */

static void serve_all(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	struct vq_chain *chain = g_new(struct vq_chain, 1);

	while (vq_pop(vq, chain) > 0) {
		vq_push(vq, chain->head, 0);
		atomic_fetch_add(&served, 1);
	}
	g_free(chain);
	virtio_pci_used(t, vq, q);
}

/* A one-queue device whose queue work runs on a worker thread. */
#define WORKER_DEVICE                                                                              \
	.name = "worker", .device_id = 4, .class_code = 0xff0000, .num_queues = 1,                 \
	.queue_size = 64, .queue_notify = serve_all, .blocking = true

static const struct virtio_device_ops worker_ops = {WORKER_DEVICE};
/* The same device, whose one queue is never to be polled. */
static const struct virtio_device_ops unpolled_ops = {WORKER_DEVICE, .unpolled_queues = 1};

struct worker_setup {
	const struct virtio_device_ops *ops;
	unsigned int poll_us;
};

static const struct worker_setup polling = {&worker_ops, POLL_MAX_US};
static const struct worker_setup polling_off = {&worker_ops, 0};
static const struct worker_setup unpolled_queue = {&unpolled_ops, POLL_MAX_US};

/* What a driver does to start the device: EVENT_IDX, then queue 0, then DRIVER_OK. */
static void start_driver(struct fixture *f)
{
	bar_write(f, DRIVER_FEATURE_SEL, 0, 4);
	bar_write(f, DRIVER_FEATURE, 1u << 29, 4); /* VIRTIO_F_EVENT_IDX */
	bar_write(f, DRIVER_FEATURE_SEL, 1, 4);
	bar_write(f, DRIVER_FEATURE, 1, 4); /* VIRTIO_F_VERSION_1 */
	bar_write(f, STATUS, 1 | 2 | 8, 1);
	enable_queue(f, 64);
	bar_write(f, STATUS, DRIVER_OK, 1);
	g_assert_cmphex(bar_read(f, STATUS, 1), ==, DRIVER_OK);
}

/* A running device on a worker thread; 'data' is a worker_setup. */
static void setup_worker(struct fixture *f, gconstpointer data)
{
	const struct worker_setup *w = data;

	create(f, w->ops, w->poll_us);
	atomic_store(&served, 0);
	start_driver(f);
}

/* Publishes one 16-byte buffer, as a driver does, without kicking. */
static void offer_buffer(struct fixture *f)
{
	uint16_t *idx = gm_ptr(&f->gm, 0x2000 + 2, 2);
	uint16_t head = *idx % 64;
	uint8_t *desc = gm_ptr(&f->gm, 0x1000 + 16ULL * head, 16);
	uint64_t addr = 0x10000;
	uint32_t len = 16;

	memset(desc, 0, 16);
	memcpy(desc, &addr, 8);
	memcpy(desc + 8, &len, 4);
	*(uint16_t *)gm_ptr(&f->gm, 0x2000 + 4 + 2ULL * head, 2) = head;
	__atomic_store_n(idx, (uint16_t)(*idx + 1), __ATOMIC_RELEASE);
}

/* Waits up to 'us' for the worker to have served 'n' requests. */
static bool served_within(unsigned int n, unsigned int us)
{
	for (int64_t end = g_get_monotonic_time() + us; g_get_monotonic_time() < end;) {
		if (atomic_load(&served) >= n)
			return true;
		g_usleep(50);
	}
	return atomic_load(&served) >= n;
}

/* Requests that follow each other closely grow the window from nothing. */
static void warm_up(struct fixture *f)
{
	for (unsigned int i = 0; i < 24; i++) {
		unsigned int n = atomic_load(&served) + 1;
		offer_buffer(f);
		bar_write(f, NOTIFY, 0, 2);
		g_assert_true(served_within(n, 5000000));
	}
}

/*
 * While requests keep coming, the worker takes one the driver did not kick
 * for. A worker the host preempts stops polling, so on a busy machine it
 * may take a few tries.
 */
static void test_worker_polls(struct fixture *f, gconstpointer data)
{
	bool polled = false;

	for (int try = 0; try < 5 && !polled; try++) {
		warm_up(f);
		unsigned int n = atomic_load(&served) + 1;
		offer_buffer(f);
		polled = served_within(n, 1000000);
		if (!polled) {
			bar_write(f, NOTIFY, 0, 2);
			g_assert_true(served_within(n, 5000000));
		}
	}
	g_assert_true(polled);

	struct virtio_poll_stats st;
	g_assert_true(virtio_pci_poll_stats(f->t, 0, &st));
	g_assert_true(st.polled);
	g_assert_cmpuint(st.caught, >=, 1);
	g_assert_cmpuint(st.woken, >=, 1);
	uint64_t gaps = 0;
	for (unsigned int b = 0; b < VIRTIO_POLL_GAP_BUCKETS; b++)
		gaps += st.gaps[b];
	g_assert_cmpuint(gaps, >=, st.caught); /* each catch had a wait before it */
	g_assert_false(virtio_pci_poll_stats(f->t, 1, &st));
}

/* With polling off, or on a queue never polled, a buffer without a kick waits for the kick. */
static void test_worker_without_polling(struct fixture *f, gconstpointer data)
{
	warm_up(f);
	unsigned int n = atomic_load(&served) + 1;
	offer_buffer(f);
	g_assert_false(served_within(n, 100000));
	bar_write(f, NOTIFY, 0, 2);
	g_assert_true(served_within(n, 5000000));

	struct virtio_poll_stats st;
	g_assert_true(virtio_pci_poll_stats(f->t, 0, &st));
	g_assert_false(st.polled);
	g_assert_cmpuint(st.caught, ==, 0);
	/*
	 * Not one wake-up per kick: a kick that lands while the worker is busy
	 * adds to its eventfd, and the worker's look at the ring before it
	 * sleeps may take the request first, so on a loaded host two kicks can
	 * make one wake-up.
	 */
	g_assert_cmpuint(st.woken, >=, 1);
}

/* --- queues handed to the kernel (vhost) ----------------------------------- */

#define QUEUE_VECTOR 0x1a
#define MSIX_TABLE   0x4000 /* the BAR's MSI-X table: vector 0's control word at +12 */
#define MSIX_PBA     0x5000

/* What a device that hands its one queue over saw. */
static struct {
	unsigned int starts, resets, notifies, call_changes;
	struct virtio_queue_info info;
	int call_fd; /* the last call_fd_changed */
} handed;

static void count_notify(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	handed.notifies++;
}

static bool take_queue(void *dev, struct virtio_pci *t)
{
	handed.starts++;
	g_assert_true(virtio_pci_queue_info(t, 0, &handed.info));
	g_assert_false(virtio_pci_queue_info(t, 1, &(struct virtio_queue_info){0}));
	handed.call_fd = handed.info.call_fd;
	return true;
}

static void count_reset(void *dev)
{
	handed.resets++;
}

static void call_moved(void *dev, unsigned int q, int fd)
{
	g_assert_cmpuint(q, ==, 0);
	handed.call_changes++;
	handed.call_fd = fd;
}

static const struct virtio_device_ops handing_ops = {
    .name = "handing",
    .device_id = 4,
    .class_code = 0xff0000,
    .num_queues = 1,
    .queue_size = 64,
    .queue_notify = count_notify,
    .reset = count_reset,
    .start = take_queue,
    .call_fd_changed = call_moved,
};

static uint8_t msix_cap(struct fixture *f)
{
	uint8_t at = f->pci->config[PCI_CAPABILITY_LIST];

	while (at && f->pci->config[at] != PCI_CAP_ID_MSIX)
		at = f->pci->config[at + 1];
	g_assert_cmpuint(at, !=, 0);
	return at;
}

/* Writes the MSI-X Message Control's high byte, as the bus would. */
static void msix_control(struct fixture *f, uint8_t high)
{
	uint8_t at = msix_cap(f) + 3;

	f->pci->config[at] = high;
	f->pci->ops->config_written(f->pci, at, 1);
}

static bool fd_signalled(int fd)
{
	eventfd_t count;

	return eventfd_read(fd, &count) == 0;
}

/* Vector 0 for queue 0, MSI-X on and the vector unmasked, then DRIVER_OK. */
static void setup_handing(struct fixture *f, gconstpointer data)
{
	memset(&handed, 0, sizeof(handed));
	create(f, &handing_ops, 0);
	msix_control(f, 0x80); /* MSI-X Enable */
	bar_write(f, MSIX_TABLE + 12, 0, 4);
	bar_write(f, DRIVER_FEATURE_SEL, 1, 4);
	bar_write(f, DRIVER_FEATURE, 1, 4); /* VIRTIO_F_VERSION_1 */
	bar_write(f, STATUS, 1 | 2 | 8, 1);
	bar_write(f, QUEUE_VECTOR, 0, 2);
	enable_queue(f, 64);
	bar_write(f, STATUS, DRIVER_OK, 1);
	g_assert_cmpuint(handed.starts, ==, 1);
}

/*
 * The device's start op gets the ring in host memory and vector 0's irqfd;
 * kicks are the kernel's from then on (the I/O thread leaves the kick fd
 * alone, and no queue_notify runs) until a reset gives the queue back.
 */
static void test_handed_queue(struct fixture *f, gconstpointer data)
{
	g_assert_cmpuint(handed.info.size, ==, 64);
	g_assert_true(handed.info.desc == gm_ptr(&f->gm, 0x1000, 1));
	g_assert_true(handed.info.driver == gm_ptr(&f->gm, 0x2000, 1));
	g_assert_true(handed.info.device == gm_ptr(&f->gm, 0x3000, 1));
	g_assert_cmpint(handed.info.call_fd, >=, 0);
	/* The transport's own wake-up of the kernel at the hand-over, then a kick. */
	g_assert_true(fd_signalled(handed.info.kick_fd));
	bar_write(f, NOTIFY, 0, 2);
	while (g_main_context_iteration(f->ctx, FALSE))
		;
	g_assert_true(fd_signalled(handed.info.kick_fd));
	g_assert_cmpuint(handed.notifies, ==, 0);

	unsigned int resets = handed.resets;
	bar_write(f, STATUS, 0, 1);
	g_assert_cmpuint(handed.resets, ==, resets + 1);
	bar_write(f, NOTIFY, 0, 2);
	while (g_main_context_iteration(f->ctx, FALSE))
		;
	g_assert_false(fd_signalled(handed.info.kick_fd)); /* the I/O thread took it again */
}

/*
 * Masking the vector moves the kernel's calls off the irqfd (KVM would
 * deliver them regardless); a call while masked makes the vector pending,
 * and unmasking delivers it through the irqfd (PCI 3.0, 6.8.2.9).
 */
static void test_handed_queue_masked(struct fixture *f, gconstpointer data)
{
	int irqfd = handed.info.call_fd;

	bar_write(f, MSIX_TABLE + 12, 1, 4);
	g_assert_cmpuint(handed.call_changes, ==, 1);
	g_assert_cmpint(handed.call_fd, !=, irqfd);
	g_assert_cmpint(handed.call_fd, >=, 0);
	eventfd_write(handed.call_fd, 1); /* the kernel interrupts the masked vector */
	while (g_main_context_iteration(f->ctx, FALSE))
		;
	g_assert_false(fd_signalled(irqfd));
	g_assert_cmphex(bar_read(f, MSIX_PBA, 8), ==, 1);

	bar_write(f, MSIX_TABLE + 12, 0, 4);
	g_assert_cmpuint(handed.call_changes, ==, 2);
	g_assert_cmpint(handed.call_fd, ==, irqfd);
	g_assert_true(fd_signalled(irqfd));
	g_assert_cmphex(bar_read(f, MSIX_PBA, 8), ==, 0);

	/* The function's mask (MSI-X Function Mask) counts as well. */
	msix_control(f, 0x80 | 0x40);
	g_assert_cmpint(handed.call_fd, !=, irqfd);
	eventfd_write(handed.call_fd, 1);
	msix_control(f, 0x80);
	g_assert_cmpint(handed.call_fd, ==, irqfd);
	g_assert_true(fd_signalled(irqfd));
}

/*
 * The kernel found the driver's ring malformed: the device reports it needs
 * a reset (2.1.2) with a configuration interrupt, and a reset clears it.
 */
static void test_handed_queue_broken(struct fixture *f, gconstpointer data)
{
	virtio_pci_broken(f->t);
	g_assert_cmphex(bar_read(f, STATUS, 1), ==, DRIVER_OK | STATUS_NEEDS_RESET);
	g_assert_cmpuint(bar_read(f, ISR, 1), ==, 2);
	bar_write(f, STATUS, 0, 1);
	g_assert_cmphex(bar_read(f, STATUS, 1), ==, 0);
	virtio_pci_broken(f->t); /* no driver: nothing to tell */
	g_assert_cmphex(bar_read(f, STATUS, 1), ==, 0);
}

/* --- a hostile driver ---------------------------------------------------------- */

#define HOSTILE_ACCESSES 20000
#define BAR_END          0x8000

/* A value for a common configuration field: mostly one a driver might write. */
static uint64_t hostile_value(GRand *r, uint32_t off)
{
	static const uint64_t statuses[] = {0, 1, 3, 11, 15, 0x40, 0x80};
	static const uint64_t sizes[] = {0, 1, 3, 16, 64, 64, 64, 128, 32768};

	if (!g_rand_int_range(r, 0, 8))
		return (uint64_t)g_rand_int(r) << 32 | g_rand_int(r);
	switch (off) {
	case STATUS:
		return statuses[g_rand_int_range(r, 0, G_N_ELEMENTS(statuses))];
	case QUEUE_SELECT:
		return (uint64_t)g_rand_int_range(r, 0, 3);
	case QUEUE_SIZE:
		return sizes[g_rand_int_range(r, 0, G_N_ELEMENTS(sizes))];
	case QUEUE_ENABLE:
		return (uint64_t)g_rand_int_range(r, 0, 2);
	case QUEUE_DESC:
	case QUEUE_DRIVER:
	case QUEUE_DEVICE:
		/* Half the time where offer_buffer() puts requests; else anywhere, some past RAM.
		 */
		if (g_rand_int_range(r, 0, 2))
			return 0x1000 + (off - QUEUE_DESC) / 8 * 0x1000;
		return 0x1000 * (uint64_t)g_rand_int_range(r, 0, 260);
	default:
		return g_rand_int(r);
	}
}

/* Somewhere in the BAR, mostly the common configuration; any size, any alignment. */
static void hostile_access(struct fixture *f, GRand *r)
{
	static const uint32_t fields[] = {
	    0x00,       0x04, 0x08,         0x0c, STATUS,     CONFIG_GEN,   QUEUE_SELECT,
	    QUEUE_SIZE, 0x1a, QUEUE_ENABLE, 0x1e, QUEUE_DESC, QUEUE_DRIVER, QUEUE_DEVICE};
	static const uint32_t lens[] = {1, 2, 4, 8};
	uint32_t len = lens[g_rand_int_range(r, 0, 4)], off;

	switch (g_rand_int_range(r, 0, 10)) {
	case 0:
		off = (uint32_t)g_rand_int_range(r, 0, BAR_END - 8);
		break;
	case 1:
		off = NOTIFY + 4 * (uint32_t)g_rand_int_range(r, 0, 3);
		break;
	case 2:
		off = MSIX_TABLE + (uint32_t)g_rand_int_range(r, 0, 64);
		break;
	default:
		off = fields[g_rand_int_range(r, 0, G_N_ELEMENTS(fields))];
		if (!g_rand_int_range(r, 0, 8))
			off += (uint32_t)g_rand_int_range(r, 1, 4);
	}
	if (g_rand_int_range(r, 0, 3))
		bar_write(f, off, hostile_value(r, off), len);
	else
		bar_read(f, off, len);
}

/*
 * What a proper driver does after whatever came before: reset the device
 * (which must take at once), clear its rings and start it again.
 */
static void restart_driver(struct fixture *f)
{
	bar_write(f, STATUS, 0, 1);
	g_assert_cmphex(bar_read(f, STATUS, 1), ==, 0);
	memset(gm_ptr(&f->gm, 0x1000, 0x3000), 0, 0x3000);
	bar_write(f, QUEUE_SELECT, 0, 2);
	start_driver(f);
}

/*
 * A driver that writes what it likes where it likes in the BAR, while the
 * device's worker serves whatever the rings say: well-formed requests, and
 * the driver's scribbles over them; selects and sizes out of range, rings
 * outside RAM, enables and resets in any order, kicks for queues that are
 * not there. Nothing crashes, and a reset brings back a device a proper
 * driver can use.
 */
static void test_hostile_driver(struct fixture *f, gconstpointer data)
{
	GRand *r = g_rand_new_with_seed(0x706369);

	for (int i = 0; i < HOSTILE_ACCESSES; i++) {
		switch (g_rand_int_range(r, 0, 16)) {
		case 0: {
			uint8_t *rings = gm_ptr(&f->gm, 0x1000, 0x3000);
			for (int k = 0; k < 16; k++)
				rings[g_rand_int_range(r, 0, 0x3000)] = (uint8_t)g_rand_int(r);
			break;
		}
		case 1: /* a proper driver's turn: reset, start, send a request */
			restart_driver(f);
			/* fall through */
		case 2:
			offer_buffer(f);
			bar_write(f, NOTIFY, 0, 2);
			break;
		}
		hostile_access(f, r);
	}
	restart_driver(f);
	unsigned int n = atomic_load(&served) + 1;
	offer_buffer(f);
	bar_write(f, NOTIFY, 0, 2);
	g_assert_true(served_within(n, 5000000));
	g_rand_free(r);
}

#define HANDING(name, fn) g_test_add(name, struct fixture, NULL, setup_handing, fn, teardown)
#define ADD(name, fn)     g_test_add(name, struct fixture, NULL, setup, fn, teardown)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/virtio_pci/queue-address-writes", test_queue_address_writes);
	ADD("/virtio_pci/write-across-fields", test_write_across_fields);
	ADD("/virtio_pci/read-past-end", test_read_past_end);
	ADD("/virtio_pci/queue-grown", test_queue_grown);
	ADD("/virtio_pci/queue-shrunk", test_queue_shrunk);
	ADD("/virtio_pci/queue-select-out-of-range", test_queue_select_out_of_range);
	ADD("/virtio_pci/config-changed", test_config_changed);
	g_test_add("/virtio_pci/worker-polls", struct fixture, &polling, setup_worker,
	           test_worker_polls, teardown);
	g_test_add("/virtio_pci/worker-without-polling", struct fixture, &polling_off, setup_worker,
	           test_worker_without_polling, teardown);
	g_test_add("/virtio_pci/unpolled-queue", struct fixture, &unpolled_queue, setup_worker,
	           test_worker_without_polling, teardown);
	g_test_add("/virtio_pci/hostile-driver", struct fixture, &polling_off, setup_worker,
	           test_hostile_driver, teardown);
	HANDING("/virtio_pci/handed-queue", test_handed_queue);
	HANDING("/virtio_pci/handed-queue-masked", test_handed_queue_masked);
	HANDING("/virtio_pci/handed-queue-broken", test_handed_queue_broken);
	return g_test_run();
}
