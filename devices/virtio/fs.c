// SPDX-License-Identifier: MIT
#include "devices/virtio/fs.h"

#include <endian.h>
#include <string.h>

#include "devices/fs/fuse_server.h"
#include "devices/virtio/vq_pool.h"
#include "vmm/error.h"

#define VIRTIO_ID_FS   26
#define CLASS_STORAGE  0x018000 /* mass storage, other */
#define FS_QUEUE_SIZE  128
#define REQUEST_QUEUES 1
#define HIPRIO_QUEUE   0
#define WAIT_THREADS   8 /* READs waiting for the disk at once */

struct virtio_fs {
	struct fuse_server *server;
	struct vq_pool *pool; /* the request queue's READs that wait for the disk */
	char tag[VIRTIO_FS_TAG_BYTES];
};

/* virtio 1.2, 5.11.6: each chain is a FUSE request and room for its reply. */
struct fs_request {
	struct iovec in[FUSE_SERVER_MAX_SEGS], out[FUSE_SERVER_MAX_SEGS];
	int nin, nout;
};

static void split_chain(const struct vq_chain *chain, struct fs_request *r)
{
	r->nin = r->nout = 0;
	for (unsigned int i = 0; i < chain->nseg && i < FUSE_SERVER_MAX_SEGS; i++) {
		const struct vq_seg *s = &chain->seg[i];
		struct iovec v = {s->addr, s->len};
		if (s->device_writable)
			r->out[r->nout++] = v;
		else
			r->in[r->nin++] = v;
	}
}

static void fs_work(void *dev, struct vq_job *job)
{
	struct virtio_fs *fs = dev;
	struct fs_request r;

	split_chain(&job->chain, &r);
	job->written = (uint32_t)fuse_server_handle(fs->server, r.in, r.nin, r.out, r.nout);
}

/*
 * On the queue's thread. A READ the page cache cannot answer goes to the
 * pool, to wait for the disk beside other requests (as virtiofsd's thread
 * pool does); everything else is answered here, in order: quicker than a
 * thread switch.
 */
static void fs_notify(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	struct virtio_fs *fs = dev;
	struct vq_job *job = vq_job_new();
	struct fs_request r;
	unsigned int budget;
	size_t n;

	if (q != HIPRIO_QUEUE)
		vq_pool_push_done(fs->pool, vq);
	for (budget = VQ_BURST; budget; budget--) {
		/* The high-priority queue hands nothing to the pool. */
		if ((q != HIPRIO_QUEUE && vq_pool_full(fs->pool)) || vq_pop(vq, &job->chain) <= 0)
			break;
		split_chain(&job->chain, &r);
		if (q == HIPRIO_QUEUE) {
			n = fuse_server_handle(fs->server, r.in, r.nin, r.out, r.nout);
		} else if (!fuse_server_try_handle(fs->server, r.in, r.nin, r.out, r.nout, &n)) {
			vq_pool_submit(fs->pool, t, q, job);
			job = vq_job_new();
			continue;
		}
		vq_push(vq, job->chain.head, (uint32_t)n);
	}
	vq_job_free(job);
	if (!budget)
		virtio_pci_wake(t, q);
	virtio_pci_used(t, vq, q);
}

static void fs_confine_worker(void *dev)
{
	struct virtio_fs *fs = dev;

	fuse_server_confine_thread(fs->server);
}

/* Under the transport's lock: READs under way end before the rings go. */
static void fs_reset(void *dev)
{
	struct virtio_fs *fs = dev;

	vq_pool_drain(fs->pool);
}

static void fs_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_fs *fs = dev;
	struct {
		char tag[VIRTIO_FS_TAG_BYTES];
		uint32_t num_request_queues;
	} __attribute__((packed)) c;

	memcpy(c.tag, fs->tag, sizeof(c.tag));
	c.num_request_queues = htole32(REQUEST_QUEUES);
	if (offset <= sizeof(c) && len <= sizeof(c) - offset)
		memcpy(data, (uint8_t *)&c + offset, len);
}

const struct virtio_device_ops virtio_fs_ops = {
    .name = "virtio-fs",
    .device_id = VIRTIO_ID_FS,
    .class_code = CLASS_STORAGE,
    .num_queues = 1 + REQUEST_QUEUES, /* the high-priority queue first */
    .queue_size = FS_QUEUE_SIZE,
    .config_size = VIRTIO_FS_TAG_BYTES + 4,
    .config_read = fs_config_read,
    .queue_notify = fs_notify,
    .reset = fs_reset,
    .confine_worker = fs_confine_worker,
    .blocking = true,
    .unpolled_queues = 1u << HIPRIO_QUEUE, /* FORGETs: the guest waits for no answer */
};

struct virtio_fs *virtio_fs_open(const struct share_config *cfg, GError **err)
{
	struct virtio_fs *fs = g_new0(struct virtio_fs, 1);

	fs->server = fuse_server_new(cfg->path, &cfg->serve, err);
	if (!fs->server) {
		g_free(fs);
		return NULL;
	}
	fs->pool = vq_pool_new(WAIT_THREADS, FS_QUEUE_SIZE, fs_work, fs);
	/* The tag is not NUL-terminated when it fills the field (5.11.4). */
	memcpy(fs->tag, cfg->tag, MIN(strlen(cfg->tag), sizeof(fs->tag)));
	return fs;
}

void virtio_fs_get_stats(struct virtio_fs *fs, struct fuse_server_stats *out)
{
	fuse_server_get_stats(fs->server, out);
}

void virtio_fs_close(struct virtio_fs *fs)
{
	if (!fs)
		return;
	vq_pool_free(fs->pool); /* after the transport's last reset: nothing in flight */
	fuse_server_free(fs->server);
	g_free(fs);
}

/* "uid=HOST:GUEST" (or gid=): two numeric ids; -1 (4294967295) means "none" to chown, so not it. */
static bool parse_id_map(const char *opt, struct fuse_id_map *map, GError **err)
{
	char **ids = g_strsplit(strchr(opt, '=') + 1, ":", -1);
	guint64 host = 0, guest = 0;
	bool ok = g_strv_length(ids) == 2 &&
	          g_ascii_string_to_unsigned(ids[0], 10, 0, UINT32_MAX - 1, &host, NULL) &&
	          g_ascii_string_to_unsigned(ids[1], 10, 0, UINT32_MAX - 1, &guest, NULL);

	g_strfreev(ids);
	if (!ok)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--share: \"%s\" is not %.3s=HOST:GUEST (two numeric ids)", opt,
		                 opt);
	if (map->on)
		return husk_fail(err, HUSK_EXIT_USAGE, "--share: %.3s= is given twice", opt);
	*map = (struct fuse_id_map){.on = true, .host = (uint32_t)host, .guest = (uint32_t)guest};
	return true;
}

bool share_config_parse(const char *text, struct share_config *out, GError **err)
{
	char **parts = g_strsplit(text, ",", -1);
	const char *spec = parts[0] ? parts[0] : "";
	const char *colon = strrchr(spec, ':');
	bool ok = true;

	memset(out, 0, sizeof(*out));
	if (!colon || colon == spec || !colon[1])
		ok = husk_fail(err, HUSK_EXIT_USAGE, "--share: \"%s\" is not " SHARE_SYNTAX, text);
	else if (strlen(colon + 1) > VIRTIO_FS_TAG_BYTES)
		ok = husk_fail(err, HUSK_EXIT_USAGE, "--share: tag \"%s\" is longer than %d bytes",
		               colon + 1, VIRTIO_FS_TAG_BYTES);
	for (int i = 1; ok && parts[i]; i++) {
		if (strcmp(parts[i], "ro") == 0)
			out->serve.read_only = true;
		else if (strcmp(parts[i], "submounts") == 0)
			out->serve.submounts = true;
		else if (strcmp(parts[i], "noxattr") == 0)
			out->serve.no_xattr = true;
		else if (g_str_has_prefix(parts[i], "uid="))
			ok = parse_id_map(parts[i], &out->serve.uid_map, err);
		else if (g_str_has_prefix(parts[i], "gid="))
			ok = parse_id_map(parts[i], &out->serve.gid_map, err);
		else
			ok = husk_fail(err, HUSK_EXIT_USAGE,
			               "--share: unknown option \"%s\" (try ro, submounts, "
			               "noxattr, uid=, gid=)",
			               parts[i]);
	}
	if (ok) {
		out->path = g_strndup(spec, (gsize)(colon - spec));
		out->tag = g_strdup(colon + 1);
	}
	g_strfreev(parts);
	return ok;
}

void share_config_clear(struct share_config *cfg)
{
	g_free(cfg->path);
	g_free(cfg->tag);
	memset(cfg, 0, sizeof(*cfg));
}
