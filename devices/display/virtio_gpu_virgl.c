// SPDX-License-Identifier: MIT
#include "devices/display/virtio_gpu_virgl.h"

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <virgl/virglrenderer.h>

#include "devices/display/virtio_gpu_proto.h"
#include "vmm/error.h"

#define CAPSET_VIRGL     1
#define CAPSET_VIRGL2    2
#define CAPSET_MAX_BYTES (64u << 10) /* virglrenderer 0.10's are 308 and 1376 */
#define TARGET_BUFFER    0           /* gallium's PIPE_BUFFER: width is bytes */
#define TARGET_2D        2           /* PIPE_TEXTURE_2D */
#define TARGET_MAX       8           /* PIPE_TEXTURE_2D_ARRAY is the last */
#define BIND_RENDER      (1u << 1)
#define FLAG_Y_0_TOP     1u /* VIRTIO_GPU_RESOURCE_FLAG_Y_0_TOP: rows stored top first */
#define MAX_SIDE         16384
#define MAX_LAYERS       2048
#define POLL_US          1000 /* how often fences are looked at while some are due */
#define ESTIMATED_TEXEL  4    /* bytes a texel, for the budget: most scanouts and textures */

/* virglrenderer takes a box it does not declare in its header: its wire layout. */
struct virgl_box {
	uint32_t x, y, z, w, h, d;
};

struct cmd_ctx_create {
	uint32_t nlen, context_init;
	char debug_name[64];
};

struct cmd_ctx_resource {
	uint32_t resource_id, padding;
};

struct cmd_resource_create_3d {
	uint32_t resource_id, target, format, bind, width, height, depth, array_size, last_level,
	    nr_samples, flags, padding;
};

struct cmd_transfer_3d {
	struct virgl_box box;
	uint64_t offset;
	uint32_t resource_id, level, stride, layer_stride;
};

struct cmd_submit {
	uint32_t size, padding;
};

struct cmd_get_capset_info {
	uint32_t capset_index, padding;
};

struct resp_capset_info {
	struct ctrl_hdr hdr;
	uint32_t capset_id, capset_max_version, capset_max_size, padding;
};

struct cmd_get_capset {
	uint32_t capset_id, capset_version;
};

G_STATIC_ASSERT(sizeof(struct cmd_ctx_create) == 72);
G_STATIC_ASSERT(sizeof(struct cmd_resource_create_3d) == 48);
G_STATIC_ASSERT(sizeof(struct cmd_transfer_3d) == 48);
G_STATIC_ASSERT(sizeof(struct resp_capset_info) == 40);

/* What husk keeps of a resource virglrenderer holds. */
struct vres {
	uint32_t id, format, width, height, flags;
	uint64_t bytes;    /* counted against GPU_MAX_RESOURCE_BYTES */
	struct iovec *iov; /* its backing, which virglrenderer uses but does not own */
	unsigned int niov;
};

enum job_kind { JOB_REQUEST, JOB_RESET, JOB_QUIT };

struct job {
	enum job_kind kind;
	int generation;
	uint64_t fence_id; /* a fenced request's, kept until its fence passes */
	int64_t taken_us;  /* when the I/O thread took it off the ring */
	uint32_t written;
	struct vq_chain chain; /* only its first chain.nseg segments are allocated */
};

struct gpu_virgl {
	struct virtio_gpu *gpu;
	const struct guest_memory *mem;
	void (*wake)(void *opaque);
	void *opaque;
	GThread *thread;
	GAsyncQueue *jobs;
	/* Bumped by a reset: jobs of an older generation are dropped. */
	int generation;

	/* Start-up: the thread says whether virglrenderer came up. */
	GMutex start_lock;
	GCond started;
	int start_state; /* 0 starting, 1 up, -1 failed */

	/* Answers for the I/O thread. */
	GMutex done_lock;
	GArray *done; /* struct vq_used */

	/* The renderer thread's own, but for stats (read under stats_lock). */
	GHashTable *resources; /* id -> struct vres */
	GHashTable *contexts;  /* ids */
	uint64_t resource_bytes;
	GQueue fenced; /* struct job, by fence id */
	uint32_t scanout_id, scanout_x, scanout_y, scanout_w, scanout_h; /* scanout_id 0: off */
	uint8_t *readback;
	size_t readback_size;
	GMutex stats_lock;
	struct gpu_virgl_stats stats;
};

/* virglrenderer keeps one renderer a process, and calls back with no pointer of ours but this. */
static struct gpu_virgl *the_renderer;

/* --- answers ------------------------------------------------------------------------------- */

static void finish(struct gpu_virgl *v, struct job *job)
{
	g_mutex_lock(&v->done_lock);
	if (job->generation == g_atomic_int_get(&v->generation)) {
		struct vq_used u = {job->chain.head, job->written};
		g_array_append_val(v->done, u);
	}
	g_mutex_unlock(&v->done_lock);
	g_free(job);
	v->wake(v->opaque);
}

/* virglrenderer's write_fence: every fenced request up to 'fence' is done. */
static void fence_passed(void *cookie, uint32_t fence)
{
	struct gpu_virgl *v = cookie;
	struct job *job;

	/* Fence ids grow; virglrenderer 0.10 carries their low 32 bits. */
	while ((job = g_queue_peek_head(&v->fenced)) && (uint32_t)job->fence_id <= fence) {
		g_queue_pop_head(&v->fenced);
		finish(v, job);
	}
}

static struct virgl_renderer_callbacks callbacks = {
    .version = 1,
    .write_fence = fence_passed,
};

/* --- resources ----------------------------------------------------------------------------- */

static void vres_free(gpointer data)
{
	struct vres *r = data;
	struct iovec *iov = NULL;
	int n = 0;

	virgl_renderer_resource_detach_iov((int)r->id, &iov, &n);
	virgl_renderer_resource_unref(r->id);
	g_free(r->iov);
	g_free(r);
}

static struct vres *vres_find(struct gpu_virgl *v, uint32_t id)
{
	return g_hash_table_lookup(v->resources, GUINT_TO_POINTER(id));
}

/* An estimate of what a resource takes (its mipmaps ignored), or 0 for one too big to have. */
static uint64_t vres_bytes(const struct cmd_resource_create_3d *c)
{
	uint64_t layers = (uint64_t)MAX(c->depth, 1) * MAX(c->array_size, 1);

	if (c->target == TARGET_BUFFER)
		return c->width; /* at most 4 GiB, within the budget's check below */
	if (c->width > MAX_SIDE || c->height > MAX_SIDE || layers > MAX_LAYERS)
		return 0;
	return (uint64_t)c->width * MAX(c->height, 1) * layers * ESTIMATED_TEXEL *
	       MAX(c->nr_samples, 1);
}

static uint32_t create_resource(struct gpu_virgl *v, const struct cmd_resource_create_3d *c)
{
	uint64_t bytes = vres_bytes(c);

	if (c->resource_id == 0 || vres_find(v, c->resource_id))
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (c->target > TARGET_MAX || !c->width || !bytes || c->nr_samples > 32 ||
	    c->last_level > 15)
		return RESP_ERR_INVALID_PARAMETER;
	if (g_hash_table_size(v->resources) >= GPU_MAX_RESOURCES ||
	    bytes > GPU_MAX_RESOURCE_BYTES - v->resource_bytes)
		return RESP_ERR_OUT_OF_MEMORY;
	struct virgl_renderer_resource_create_args args = {
	    .handle = c->resource_id,
	    .target = c->target,
	    .format = c->format,
	    .bind = c->bind,
	    .width = c->width,
	    .height = c->height,
	    .depth = c->depth,
	    .array_size = c->array_size,
	    .last_level = c->last_level,
	    .nr_samples = c->nr_samples,
	    .flags = c->flags,
	};
	if (virgl_renderer_resource_create(&args, NULL, 0) != 0)
		return RESP_ERR_INVALID_PARAMETER; /* virglrenderer's own checks refused it */
	struct vres *r = g_new0(struct vres, 1);
	*r = (struct vres){.id = c->resource_id,
	                   .format = c->format,
	                   .width = c->width,
	                   .height = c->height,
	                   .flags = c->flags,
	                   .bytes = bytes};
	v->resource_bytes += bytes;
	g_hash_table_insert(v->resources, GUINT_TO_POINTER(r->id), r);
	return RESP_OK_NODATA;
}

/* A 2D resource is a texture virglrenderer holds too: scanouts and cursors use either. */
static uint32_t create_2d(struct gpu_virgl *v, const struct cmd_resource_create_2d *c)
{
	if (!gpu_format_known(c->format) || !c->height)
		return RESP_ERR_INVALID_PARAMETER;
	struct cmd_resource_create_3d c3 = {.resource_id = c->resource_id,
	                                    .target = TARGET_2D,
	                                    .format = c->format,
	                                    .bind = BIND_RENDER,
	                                    .width = c->width,
	                                    .height = c->height,
	                                    .depth = 1,
	                                    .array_size = 1,
	                                    .flags = FLAG_Y_0_TOP};
	return create_resource(v, &c3);
}

static void scanout_off(struct gpu_virgl *v)
{
	v->scanout_id = 0;
	virtio_gpu_shadow(v->gpu, 0, 0, 0, NULL, NULL);
}

static uint32_t unref(struct gpu_virgl *v, const struct cmd_resource_id *c)
{
	struct vres *r = vres_find(v, c->resource_id);

	if (!r)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (v->scanout_id == r->id)
		scanout_off(v);
	v->resource_bytes -= r->bytes;
	g_hash_table_remove(v->resources, GUINT_TO_POINTER(r->id));
	return RESP_OK_NODATA;
}

/* The entries follow the command; each must lie inside guest RAM. */
static uint32_t attach_backing(struct gpu_virgl *v, const struct vq_chain *chain,
                               const struct cmd_attach_backing *c)
{
	struct vres *r = vres_find(v, c->resource_id);
	uint64_t at = sizeof(struct ctrl_hdr) + sizeof(*c);

	if (!r)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (r->iov || c->nr_entries == 0 || c->nr_entries > GPU_MAX_BACKING_ENTRIES)
		return RESP_ERR_INVALID_PARAMETER;
	struct iovec *iov = g_new(struct iovec, c->nr_entries);
	for (uint32_t i = 0; i < c->nr_entries; i++, at += sizeof(struct mem_entry)) {
		struct mem_entry e;
		uint32_t refusal = 0;
		if (!gpu_chain_read(chain, at, &e, sizeof(e)))
			refusal = RESP_ERR_UNSPEC;
		else if (e.length == 0 || !(iov[i].iov_base = gm_ptr(v->mem, e.addr, e.length)))
			refusal = RESP_ERR_INVALID_PARAMETER;
		if (refusal) {
			g_free(iov);
			return refusal;
		}
		iov[i].iov_len = e.length;
	}
	if (virgl_renderer_resource_attach_iov((int)r->id, iov, (int)c->nr_entries) != 0) {
		g_free(iov);
		return RESP_ERR_UNSPEC;
	}
	r->iov = iov;
	r->niov = c->nr_entries;
	return RESP_OK_NODATA;
}

static uint32_t detach_backing(struct gpu_virgl *v, const struct cmd_resource_id *c)
{
	struct vres *r = vres_find(v, c->resource_id);
	struct iovec *iov = NULL;
	int n = 0;

	if (!r)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (!r->iov)
		return RESP_ERR_UNSPEC;
	virgl_renderer_resource_detach_iov((int)r->id, &iov, &n);
	g_clear_pointer(&r->iov, g_free);
	r->niov = 0;
	return RESP_OK_NODATA;
}

static void count_transfer(struct gpu_virgl *v)
{
	g_mutex_lock(&v->stats_lock);
	v->stats.transfers++;
	g_mutex_unlock(&v->stats_lock);
}

static uint32_t transfer_to_host_2d(struct gpu_virgl *v, const struct cmd_transfer_to_host_2d *c)
{
	struct vres *r = vres_find(v, c->resource_id);

	if (!r)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (!r->iov)
		return RESP_ERR_UNSPEC;
	if (!c->r.width || !c->r.height || (uint64_t)c->r.x + c->r.width > r->width ||
	    (uint64_t)c->r.y + c->r.height > r->height)
		return RESP_ERR_INVALID_PARAMETER;
	struct virgl_box box = {c->r.x, c->r.y, 0, c->r.width, c->r.height, 1};
	/* virglrenderer checks the rows against the backing's size. */
	if (virgl_renderer_transfer_write_iov(r->id, 0, 0, 0, 0, &box, c->offset, NULL, 0) != 0)
		return RESP_ERR_INVALID_PARAMETER;
	count_transfer(v);
	return RESP_OK_NODATA;
}

static uint32_t transfer_3d(struct gpu_virgl *v, const struct ctrl_hdr *hdr,
                            const struct cmd_transfer_3d *c, bool to_host)
{
	struct vres *r = vres_find(v, c->resource_id);
	struct virgl_box box = c->box;
	int rc;

	if (!r)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (!r->iov)
		return RESP_ERR_UNSPEC;
	/* The box, level and strides against the resource and its backing: virglrenderer's checks.
	 */
	if (to_host)
		rc = virgl_renderer_transfer_write_iov(r->id, hdr->ctx_id, (int)c->level, c->stride,
		                                       c->layer_stride, &box, c->offset, NULL, 0);
	else
		rc = virgl_renderer_transfer_read_iov(r->id, hdr->ctx_id, c->level, c->stride,
		                                      c->layer_stride, &box, c->offset, NULL, 0);
	if (rc != 0)
		return RESP_ERR_INVALID_PARAMETER;
	count_transfer(v);
	return RESP_OK_NODATA;
}

/* --- the scanout, read back for viewers ---------------------------------------------------- */

/* The scanout's rectangle, read back into the device's copy; rows flipped for GL's bottom-up. */
static void read_scanout(struct gpu_virgl *v, const struct rect *damage)
{
	struct vres *r = vres_find(v, v->scanout_id);
	size_t row = (size_t)v->scanout_w * 4, bytes = row * v->scanout_h;

	if (!r)
		return;
	if (bytes > v->readback_size) {
		g_free(v->readback);
		v->readback = g_malloc(bytes);
		v->readback_size = bytes;
	}
	struct virgl_box box = {v->scanout_x, v->scanout_y, 0, v->scanout_w, v->scanout_h, 1};
	struct iovec iov = {v->readback, bytes};
	if (virgl_renderer_transfer_read_iov(r->id, 0, 0, (uint32_t)row, 0, &box, 0, &iov, 1) != 0)
		return;
	if (!(r->flags & FLAG_Y_0_TOP)) {
		uint8_t *tmp = g_malloc(row);
		for (uint32_t y = 0; y < v->scanout_h / 2; y++) {
			uint8_t *a = v->readback + y * row,
			        *b = v->readback + (v->scanout_h - 1 - y) * row;
			memcpy(tmp, a, row);
			memcpy(a, b, row);
			memcpy(b, tmp, row);
		}
		g_free(tmp);
	}
	g_mutex_lock(&v->stats_lock);
	v->stats.readbacks++;
	g_mutex_unlock(&v->stats_lock);
	virtio_gpu_shadow(v->gpu, r->format, v->scanout_w, v->scanout_h, v->readback, damage);
}

static uint32_t set_scanout(struct gpu_virgl *v, const struct cmd_set_scanout *c)
{
	if (c->scanout_id != 0)
		return RESP_ERR_INVALID_SCANOUT_ID;
	if (c->resource_id == 0) {
		scanout_off(v);
		return RESP_OK_NODATA;
	}
	struct vres *r = vres_find(v, c->resource_id);
	if (!r)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (!gpu_format_known(r->format) || !c->r.width || !c->r.height ||
	    (uint64_t)c->r.x + c->r.width > r->width || (uint64_t)c->r.y + c->r.height > r->height)
		return RESP_ERR_INVALID_PARAMETER;
	v->scanout_id = r->id;
	v->scanout_x = c->r.x;
	v->scanout_y = c->r.y;
	v->scanout_w = c->r.width;
	v->scanout_h = c->r.height;
	read_scanout(v, NULL);
	return RESP_OK_NODATA;
}

static uint32_t flush(struct gpu_virgl *v, const struct cmd_resource_flush *c, int64_t taken_us)
{
	struct vres *r = vres_find(v, c->resource_id);

	if (!r)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (r->id == v->scanout_id) {
		/* Damage in display coordinates; the read-back is whole (flipping needs all rows).
		 */
		struct rect d = c->r;
		d.x = d.x > v->scanout_x ? d.x - v->scanout_x : 0;
		d.y = d.y > v->scanout_y ? d.y - v->scanout_y : 0;
		read_scanout(v, &d);
		virtio_gpu_note_shown(v->gpu, taken_us);
	}
	return RESP_OK_NODATA;
}

/* --- contexts ------------------------------------------------------------------------------ */

static bool has_context(struct gpu_virgl *v, uint32_t id)
{
	return g_hash_table_contains(v->contexts, GUINT_TO_POINTER(id));
}

static uint32_t ctx_create(struct gpu_virgl *v, const struct ctrl_hdr *hdr,
                           const struct cmd_ctx_create *c)
{
	if (hdr->ctx_id == 0 || has_context(v, hdr->ctx_id))
		return RESP_ERR_INVALID_CONTEXT_ID;
	if (g_hash_table_size(v->contexts) >= GPU_MAX_CONTEXTS)
		return RESP_ERR_OUT_OF_MEMORY;
	uint32_t nlen = MIN(c->nlen, (uint32_t)sizeof(c->debug_name));
	if (virgl_renderer_context_create(hdr->ctx_id, nlen, c->debug_name) != 0)
		return RESP_ERR_UNSPEC;
	g_hash_table_add(v->contexts, GUINT_TO_POINTER(hdr->ctx_id));
	return RESP_OK_NODATA;
}

static uint32_t ctx_destroy(struct gpu_virgl *v, const struct ctrl_hdr *hdr)
{
	if (!has_context(v, hdr->ctx_id))
		return RESP_ERR_INVALID_CONTEXT_ID;
	virgl_renderer_context_destroy(hdr->ctx_id);
	g_hash_table_remove(v->contexts, GUINT_TO_POINTER(hdr->ctx_id));
	return RESP_OK_NODATA;
}

static uint32_t ctx_resource(struct gpu_virgl *v, const struct ctrl_hdr *hdr,
                             const struct cmd_ctx_resource *c, bool attach)
{
	if (!has_context(v, hdr->ctx_id))
		return RESP_ERR_INVALID_CONTEXT_ID;
	if (!vres_find(v, c->resource_id))
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (attach)
		virgl_renderer_ctx_attach_resource((int)hdr->ctx_id, (int)c->resource_id);
	else
		virgl_renderer_ctx_detach_resource((int)hdr->ctx_id, (int)c->resource_id);
	return RESP_OK_NODATA;
}

/* The command stream follows the command; virglrenderer parses it (see the README on isolation). */
static uint32_t submit(struct gpu_virgl *v, const struct vq_chain *chain,
                       const struct ctrl_hdr *hdr, const struct cmd_submit *c)
{
	uint64_t at = sizeof(struct ctrl_hdr) + sizeof(*c);

	if (!has_context(v, hdr->ctx_id))
		return RESP_ERR_INVALID_CONTEXT_ID;
	if (c->size == 0 || c->size % 4 || c->size > GPU_MAX_SUBMIT_BYTES ||
	    at + c->size > chain->out_len)
		return RESP_ERR_INVALID_PARAMETER;
	uint32_t *buf = g_try_malloc(c->size);
	if (!buf)
		return RESP_ERR_OUT_OF_MEMORY;
	bool read = gpu_chain_read(chain, at, buf, c->size);
	int rc = read ? virgl_renderer_submit_cmd(buf, (int)hdr->ctx_id, (int)(c->size / 4)) : -1;
	g_free(buf);
	g_mutex_lock(&v->stats_lock);
	v->stats.submits++;
	v->stats.submit_bytes += c->size;
	g_mutex_unlock(&v->stats_lock);
	return rc == 0 ? RESP_OK_NODATA : RESP_ERR_INVALID_PARAMETER;
}

static uint32_t capset_info(const struct cmd_get_capset_info *c, struct resp_capset_info *resp)
{
	uint32_t max_version = 0, max_size = 0;

	if (c->capset_index >= GPU_VIRGL_CAPSETS)
		return RESP_ERR_INVALID_PARAMETER;
	resp->capset_id = c->capset_index == 0 ? CAPSET_VIRGL : CAPSET_VIRGL2;
	virgl_renderer_get_cap_set(resp->capset_id, &max_version, &max_size);
	resp->capset_max_version = max_version;
	resp->capset_max_size = MIN(max_size, CAPSET_MAX_BYTES);
	resp->padding = 0;
	return RESP_OK_CAPSET_INFO;
}

/* The answer (header and capabilities) in a buffer of its own; NULL if it cannot be given. */
static uint8_t *capset(const struct cmd_get_capset *c, size_t *len)
{
	uint32_t max_version = 0, max_size = 0;

	if (c->capset_id != CAPSET_VIRGL && c->capset_id != CAPSET_VIRGL2)
		return NULL;
	virgl_renderer_get_cap_set(c->capset_id, &max_version, &max_size);
	if (!max_size || max_size > CAPSET_MAX_BYTES || c->capset_version > max_version)
		return NULL;
	*len = sizeof(struct ctrl_hdr) + max_size;
	uint8_t *resp = g_malloc0(*len);
	virgl_renderer_fill_caps(c->capset_id, c->capset_version, resp + sizeof(struct ctrl_hdr));
	return resp;
}

/* --- requests ------------------------------------------------------------------------------ */

#define READ_BODY(chain, var) gpu_chain_read(chain, sizeof(struct ctrl_hdr), &(var), sizeof(var))

/* One request; the answer's type. 'resp' may be replaced by a bigger buffer (GET_CAPSET). */
static uint32_t dispatch(struct gpu_virgl *v, const struct job *job, const struct ctrl_hdr *hdr,
                         uint8_t **resp, size_t *resp_len)
{
	union {
		struct cmd_resource_create_2d create_2d;
		struct cmd_resource_create_3d create_3d;
		struct cmd_resource_id id;
		struct cmd_set_scanout scanout;
		struct cmd_resource_flush flush;
		struct cmd_transfer_to_host_2d transfer_2d;
		struct cmd_transfer_3d transfer_3d;
		struct cmd_attach_backing attach;
		struct cmd_ctx_create ctx;
		struct cmd_ctx_resource ctx_res;
		struct cmd_submit submit;
		struct cmd_get_capset_info capset_info;
		struct cmd_get_capset capset;
	} c;
	const struct vq_chain *chain = &job->chain;

	switch (hdr->type) {
	case CMD_RESOURCE_CREATE_2D:
		return READ_BODY(chain, c.create_2d) ? create_2d(v, &c.create_2d) : RESP_ERR_UNSPEC;
	case CMD_RESOURCE_CREATE_3D:
		return READ_BODY(chain, c.create_3d) ? create_resource(v, &c.create_3d)
		                                     : RESP_ERR_UNSPEC;
	case CMD_RESOURCE_UNREF:
		return READ_BODY(chain, c.id) ? unref(v, &c.id) : RESP_ERR_UNSPEC;
	case CMD_SET_SCANOUT:
		return READ_BODY(chain, c.scanout) ? set_scanout(v, &c.scanout) : RESP_ERR_UNSPEC;
	case CMD_RESOURCE_FLUSH:
		return READ_BODY(chain, c.flush) ? flush(v, &c.flush, job->taken_us)
		                                 : RESP_ERR_UNSPEC;
	case CMD_TRANSFER_TO_HOST_2D:
		return READ_BODY(chain, c.transfer_2d) ? transfer_to_host_2d(v, &c.transfer_2d)
		                                       : RESP_ERR_UNSPEC;
	case CMD_TRANSFER_TO_HOST_3D:
	case CMD_TRANSFER_FROM_HOST_3D:
		return READ_BODY(chain, c.transfer_3d)
		           ? transfer_3d(v, hdr, &c.transfer_3d,
		                         hdr->type == CMD_TRANSFER_TO_HOST_3D)
		           : RESP_ERR_UNSPEC;
	case CMD_RESOURCE_ATTACH_BACKING:
		return READ_BODY(chain, c.attach) ? attach_backing(v, chain, &c.attach)
		                                  : RESP_ERR_UNSPEC;
	case CMD_RESOURCE_DETACH_BACKING:
		return READ_BODY(chain, c.id) ? detach_backing(v, &c.id) : RESP_ERR_UNSPEC;
	case CMD_CTX_CREATE:
		return READ_BODY(chain, c.ctx) ? ctx_create(v, hdr, &c.ctx) : RESP_ERR_UNSPEC;
	case CMD_CTX_DESTROY:
		return ctx_destroy(v, hdr);
	case CMD_CTX_ATTACH_RESOURCE:
	case CMD_CTX_DETACH_RESOURCE:
		return READ_BODY(chain, c.ctx_res)
		           ? ctx_resource(v, hdr, &c.ctx_res, hdr->type == CMD_CTX_ATTACH_RESOURCE)
		           : RESP_ERR_UNSPEC;
	case CMD_SUBMIT_3D:
		return READ_BODY(chain, c.submit) ? submit(v, chain, hdr, &c.submit)
		                                  : RESP_ERR_UNSPEC;
	case CMD_GET_CAPSET_INFO:
		if (!READ_BODY(chain, c.capset_info))
			return RESP_ERR_UNSPEC;
		*resp_len = sizeof(struct resp_capset_info);
		return capset_info(&c.capset_info, (struct resp_capset_info *)*resp);
	case CMD_GET_CAPSET: {
		uint8_t *big;
		if (!READ_BODY(chain, c.capset))
			return RESP_ERR_UNSPEC;
		if (!(big = capset(&c.capset, resp_len)))
			return RESP_ERR_INVALID_PARAMETER;
		g_free(*resp);
		*resp = big;
		return RESP_OK_CAPSET;
	}
	default:
		/* Blobs, UUIDs, context types: not offered. */
		return RESP_ERR_UNSPEC;
	}
}

static void serve(struct gpu_virgl *v, struct job *job)
{
	const struct vq_chain *chain = &job->chain;
	struct ctrl_hdr hdr;
	size_t resp_len = sizeof(struct ctrl_hdr);
	uint8_t *resp = g_malloc0(sizeof(struct resp_capset_info));
	uint32_t type;

	if (gpu_chain_read(chain, 0, &hdr, sizeof(hdr)))
		type = dispatch(v, job, &hdr, &resp, &resp_len);
	else
		type = RESP_ERR_UNSPEC, memset(&hdr, 0, sizeof(hdr));
	if (type >= RESP_ERR_UNSPEC)
		resp_len = sizeof(struct ctrl_hdr);
	bool fenced = (hdr.flags & FLAG_FENCE) && type < RESP_ERR_UNSPEC;
	*(struct ctrl_hdr *)resp =
	    (struct ctrl_hdr){.type = type,
	                      .flags = hdr.flags & FLAG_FENCE,
	                      .fence_id = hdr.flags & FLAG_FENCE ? hdr.fence_id : 0,
	                      .ctx_id = hdr.ctx_id,
	                      .ring_idx = hdr.ring_idx};
	job->written = gpu_chain_write(chain, resp, MIN(resp_len, chain->in_len));
	g_free(resp);
	virtio_gpu_count(v->gpu, type >= RESP_ERR_UNSPEC);
	if (!fenced) {
		finish(v, job);
		return;
	}
	/* Answered once the renderer has done what came before the fence (5.7.6.7). */
	job->fence_id = hdr.fence_id;
	g_queue_push_tail(&v->fenced, job);
	g_mutex_lock(&v->stats_lock);
	v->stats.fences++;
	g_mutex_unlock(&v->stats_lock);
	virgl_renderer_create_fence((int)(uint32_t)hdr.fence_id, hdr.ctx_id);
}

/* Everything goes: fences waited for, contexts, resources (2.4). */
static void reset_renderer(struct gpu_virgl *v)
{
	struct job *job;

	while ((job = g_queue_pop_head(&v->fenced)))
		g_free(job);
	scanout_off(v);
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, v->contexts);
	while (g_hash_table_iter_next(&it, &key, NULL))
		virgl_renderer_context_destroy(GPOINTER_TO_UINT(key));
	g_hash_table_remove_all(v->contexts);
	g_hash_table_remove_all(v->resources);
	v->resource_bytes = 0;
}

static void note_counts(struct gpu_virgl *v)
{
	g_mutex_lock(&v->stats_lock);
	v->stats.contexts = g_hash_table_size(v->contexts);
	v->stats.resources = g_hash_table_size(v->resources);
	v->stats.resource_bytes = v->resource_bytes;
	g_mutex_unlock(&v->stats_lock);
}

static void say_started(struct gpu_virgl *v, int state)
{
	g_mutex_lock(&v->start_lock);
	v->start_state = state;
	g_cond_signal(&v->started);
	g_mutex_unlock(&v->start_lock);
}

/* virglrenderer's messages (shader compile failures...) are the guest's doing: not husk's stderr.
 */
static void quiet(const char *fmt, va_list ap)
{
}

/*
 * libepoxy, virglrenderer's GL loader, aborts the process when it cannot
 * open glvnd's libEGL: look for it first, so that husk can say so instead.
 */
static bool egl_loads(void)
{
	void *egl = dlopen("libEGL.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!egl)
		return false;
	dlclose(egl);
	return true;
}

static gpointer renderer_thread(gpointer data)
{
	struct gpu_virgl *v = data;
	int flags = VIRGL_RENDERER_USE_EGL | VIRGL_RENDERER_USE_SURFACELESS;

	virgl_set_debug_callback(quiet);
	if (!egl_loads() || virgl_renderer_init(v, flags, &callbacks) != 0) {
		say_started(v, -1);
		return NULL;
	}
	say_started(v, 1);
	for (;;) {
		/* While fences are due, look at them every POLL_US; else sleep until work comes. */
		struct job *job = g_queue_is_empty(&v->fenced)
		                      ? g_async_queue_pop(v->jobs)
		                      : g_async_queue_timeout_pop(v->jobs, POLL_US);
		if (job && job->kind == JOB_QUIT) {
			g_free(job);
			break;
		}
		if (job && job->kind == JOB_RESET) {
			g_free(job);
			reset_renderer(v);
		} else if (job && job->generation != g_atomic_int_get(&v->generation)) {
			g_free(job); /* a reset came after it: nobody waits for its answer */
		} else if (job) {
			serve(v, job);
		}
		note_counts(v);
		if (!g_queue_is_empty(&v->fenced))
			virgl_renderer_poll();
	}
	reset_renderer(v);
	virgl_renderer_cleanup(v);
	return NULL;
}

/* --- the interface ------------------------------------------------------------------------- */

struct gpu_virgl *gpu_virgl_new(struct virtio_gpu *gpu, const struct guest_memory *mem,
                                void (*wake)(void *opaque), void *opaque, GError **err)
{
	if (the_renderer) {
		husk_fail(err, HUSK_EXIT_USAGE, "--gpu virgl: one 3D device a process");
		return NULL;
	}
	struct gpu_virgl *v = g_new0(struct gpu_virgl, 1);
	*v = (struct gpu_virgl){.gpu = gpu, .mem = mem, .wake = wake, .opaque = opaque};
	v->jobs = g_async_queue_new();
	v->done = g_array_new(FALSE, FALSE, sizeof(struct vq_used));
	v->resources = g_hash_table_new_full(NULL, NULL, NULL, vres_free);
	v->contexts = g_hash_table_new(NULL, NULL);
	g_queue_init(&v->fenced);
	g_mutex_init(&v->start_lock);
	g_cond_init(&v->started);
	g_mutex_init(&v->done_lock);
	g_mutex_init(&v->stats_lock);
	the_renderer = v;
	v->thread = g_thread_new("husk-virgl", renderer_thread, v);
	g_mutex_lock(&v->start_lock);
	while (v->start_state == 0)
		g_cond_wait(&v->started, &v->start_lock);
	g_mutex_unlock(&v->start_lock);
	if (v->start_state < 0) {
		g_thread_join(v->thread);
		v->thread = NULL;
		gpu_virgl_free(v);
		husk_fail(err, HUSK_EXIT_HOST,
		          "--gpu virgl: virglrenderer did not start (no libEGL.so.1, or no EGL "
		          "with a surfaceless platform: are libegl1 and libegl-mesa0 installed?)");
		return NULL;
	}
	return v;
}

static void push_job(struct gpu_virgl *v, enum job_kind kind)
{
	struct job *job = g_new0(struct job, 1);

	job->kind = kind;
	g_async_queue_push(v->jobs, job);
}

void gpu_virgl_free(struct gpu_virgl *v)
{
	if (!v)
		return;
	if (v->thread) {
		push_job(v, JOB_QUIT);
		g_thread_join(v->thread);
	}
	struct job *job;
	while ((job = g_async_queue_try_pop(v->jobs)))
		g_free(job);
	g_async_queue_unref(v->jobs);
	g_hash_table_unref(v->resources);
	g_hash_table_unref(v->contexts);
	g_array_unref(v->done);
	g_free(v->readback);
	g_mutex_clear(&v->start_lock);
	g_cond_clear(&v->started);
	g_mutex_clear(&v->done_lock);
	g_mutex_clear(&v->stats_lock);
	if (the_renderer == v)
		the_renderer = NULL;
	g_free(v);
}

void gpu_virgl_submit(struct gpu_virgl *v, const struct vq_chain *chain)
{
	size_t segs = sizeof(struct vq_seg) * chain->nseg;
	struct job *job = g_malloc(offsetof(struct job, chain.seg) + segs);

	job->kind = JOB_REQUEST;
	job->generation = g_atomic_int_get(&v->generation);
	job->fence_id = 0;
	job->taken_us = g_get_monotonic_time();
	job->written = 0;
	job->chain.head = chain->head;
	job->chain.nseg = chain->nseg;
	job->chain.out_len = chain->out_len;
	job->chain.in_len = chain->in_len;
	memcpy(job->chain.seg, chain->seg, segs);
	g_async_queue_push(v->jobs, job);
}

unsigned int gpu_virgl_take_done(struct gpu_virgl *v, struct vq_used *out, unsigned int max)
{
	g_mutex_lock(&v->done_lock);
	unsigned int n = MIN(max, v->done->len);
	if (n) { /* an empty array may have no data at all */
		memcpy(out, v->done->data, n * sizeof(struct vq_used));
		g_array_remove_range(v->done, 0, n);
	}
	g_mutex_unlock(&v->done_lock);
	return n;
}

void gpu_virgl_reset(struct gpu_virgl *v)
{
	g_mutex_lock(&v->done_lock);
	g_atomic_int_inc(&v->generation);
	g_array_set_size(v->done, 0);
	g_mutex_unlock(&v->done_lock);
	push_job(v, JOB_RESET);
}

void gpu_virgl_stats(struct gpu_virgl *v, struct gpu_virgl_stats *out)
{
	g_mutex_lock(&v->stats_lock);
	*out = v->stats;
	g_mutex_unlock(&v->stats_lock);
}
