// SPDX-License-Identifier: MIT
/*
 * virtio-fs's queue path, with the transport faked at link time: FUSE
 * requests on a split ring in a fake guest memory, answered by the real
 * server on a temporary share. One kick takes at most VQ_BURST requests,
 * so a driver that keeps its ring full cannot hold the I/O thread, and
 * the rest waits for the next kick, none lost.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/fuse.h>
#include <string.h>

#include "devices/virtio/fs.h"
#include "devices/virtio/test_ring.h"
#include "vmm/layout.h"

#define QSIZE   1024 /* room for NREQ chains of two descriptors */
#define NREQ    300  /* more than one kick's budget */
#define SLOT    256  /* bytes per request, and per reply */
#define DESC    (LAYOUT_RAM_START + 0x1000)
#define REQS    (LAYOUT_RAM_START + 0x20000)
#define REPLIES (LAYOUT_RAM_START + 0x60000)
#define REQUEST 1 /* the request queue; 0 is the high-priority one */
#define FAKE_T  ((struct virtio_pci *)&fake_transport)
#define F_NEXT  1
#define F_WRITE 2

static int fake_transport;
static gint wakes;

void virtio_pci_wake(struct virtio_pci *t, unsigned int index)
{
	g_assert_true(t == FAKE_T);
	g_assert_cmpuint(index, ==, REQUEST);
	g_atomic_int_inc(&wakes);
}

void virtio_pci_used(struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
}

struct ring {
	struct guest_memory gm;
	struct virtqueue vq;
	uint64_t avail_at;
};

static void put_desc(struct ring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
	test_put_desc(&r->gm, DESC, i, addr, len, flags, next);
}

/* Request 'i' (unique i + 1): a header, its arguments, and room for the reply. */
static void put_request(struct ring *r, uint16_t i, uint32_t opcode, const void *arg,
                        uint32_t arg_len)
{
	struct fuse_in_header h = {.len = (uint32_t)sizeof(h) + arg_len,
	                           .opcode = opcode,
	                           .unique = i + 1u,
	                           .nodeid = FUSE_ROOT_ID};
	uint64_t req = REQS + (uint64_t)SLOT * i, reply = REPLIES + (uint64_t)SLOT * i;
	uint8_t *p = gm_ptr(&r->gm, req, SLOT);

	g_assert_cmpuint(h.len, <=, SLOT);
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), arg, arg_len);
	put_desc(r, (uint16_t)(2 * i), req, h.len, F_NEXT, (uint16_t)(2 * i + 1));
	put_desc(r, (uint16_t)(2 * i + 1), reply, SLOT, F_WRITE, 0);
	uint16_t *avail = gm_ptr(&r->gm, r->avail_at, 4 + 2ULL * QSIZE);
	avail[2 + i] = (uint16_t)(2 * i);
	avail[1] = (uint16_t)(i + 1);
}

/* INIT, then NREQ - 1 GETATTRs of the root, all waiting at once. */
static void ring_setup(struct ring *r)
{
	struct fuse_init_in init = {.major = FUSE_KERNEL_VERSION, .minor = 38};
	struct fuse_getattr_in getattr = {0};

	g_assert_true(guest_memory_alloc(&r->gm, 1 * MiB));
	r->avail_at = DESC + 16ULL * QSIZE;
	uint64_t used_at = r->avail_at + 4 + 2ULL * QSIZE;
	g_assert_true(vq_init(&r->vq, &r->gm, QSIZE, DESC, r->avail_at, used_at));
	put_request(r, 0, FUSE_INIT, &init, sizeof(init));
	for (uint16_t i = 1; i < NREQ; i++)
		put_request(r, i, FUSE_GETATTR, &getattr, sizeof(getattr));
}

static uint16_t used_idx(struct ring *r)
{
	return *(uint16_t *)gm_ptr(&r->gm, r->vq.used_addr + 2, 2);
}

/* Used element i is request i's reply, a success of the length the device says. */
static void check_reply(struct ring *r, uint16_t i)
{
	uint32_t e[2];
	struct fuse_out_header o;

	memcpy(e, gm_ptr(&r->gm, r->vq.used_addr + 4 + 8ULL * i, 8), 8);
	g_assert_cmpuint(e[0], ==, 2u * i);
	memcpy(&o, gm_ptr(&r->gm, REPLIES + (uint64_t)SLOT * i, sizeof(o)), sizeof(o));
	g_assert_cmpuint(o.unique, ==, i + 1u);
	g_assert_cmpint(o.error, ==, 0);
	g_assert_cmpuint(o.len, ==, e[1]);
}

static void test_budget(void)
{
	g_autofree char *dir = g_dir_make_tmp("husk-fs-test-XXXXXX", NULL);
	struct share_config cfg = {.path = dir, .tag = "t"};
	struct virtio_fs *fs = virtio_fs_open(&cfg, NULL);
	struct ring r;

	g_assert_nonnull(fs);
	ring_setup(&r);
	g_atomic_int_set(&wakes, 0);
	virtio_fs_ops.queue_notify(fs, FAKE_T, &r.vq, REQUEST);
	g_assert_cmpuint(used_idx(&r), ==, VQ_BURST);
	g_assert_cmpint(g_atomic_int_get(&wakes), ==, 1);
	virtio_fs_ops.queue_notify(fs, FAKE_T, &r.vq, REQUEST);
	g_assert_cmpuint(used_idx(&r), ==, NREQ);
	g_assert_cmpint(g_atomic_int_get(&wakes), ==, 1);
	for (uint16_t i = 0; i < NREQ; i++)
		check_reply(&r, i);
	virtio_fs_close(fs);
	guest_memory_free(&r.gm);
	g_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-fs/budget", test_budget);
	return g_test_run();
}
