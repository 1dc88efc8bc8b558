// SPDX-License-Identifier: MIT
#include "devices/display/virtio_gpu.h"
#include "devices/display/virtio_gpu_proto.h"

#include <string.h>

#include "devices/display/virtio_gpu_virgl.h"
#include "vmm/error.h"

#define VIRTIO_ID_GPU   16
#define CLASS_DISPLAY   0x038000 /* display controller, other: as QEMU's virtio-gpu-pci */
#define GPU_QUEUE_SIZE  256
#define CONFIG_SIZE     16 /* events_read, events_clear, num_scanouts, num_capsets */
#define NUM_SCANOUTS    1
#define CONTROL_QUEUE   0
#define CURSOR_QUEUE    1
#define BYTES_PER_PIXEL 4
#define EDID_BYTES      128
#define EDID_MAX_SIDE   4095 /* a detailed timing's 12-bit fields */

#define F_VIRGL 0 /* 5.7.3: offered with --gpu virgl only */
#define F_EDID  1

/* A piece of a resource's backing, in host memory (guest RAM stays mapped for the VM's life). */
struct backing_piece {
	uint8_t *addr;
	uint32_t len;
};

struct resource {
	uint32_t id, format, width, height;
	uint8_t *pixels; /* width * height * 4 bytes, rows packed */
	struct backing_piece *backing;
	unsigned int nbacking;
	uint64_t backing_bytes;
};

struct scanout {
	uint32_t resource_id; /* 0: disabled */
	struct rect r;        /* the part of the resource shown */
};

struct virtio_gpu {
	const struct guest_memory *mem;
	uint32_t width, height; /* what GET_DISPLAY_INFO reports */
	uint8_t edid[EDID_BYTES];
	/*
	 * Held by the queues' work (the I/O thread) and by snapshots from
	 * other threads; never across anything that waits.
	 */
	GMutex lock;
	GHashTable *resources; /* id -> struct resource */
	uint64_t resource_bytes;
	struct scanout scanout;
	struct cursor_pos cursor;
	uint32_t cursor_resource;
	struct gpu_stats stats;
	/* The display's part that changed since a viewer last looked (display coordinates). */
	struct rect damage;
	/* What the scanout showed when the driver last reset the device, if anything. */
	struct gpu_image before_reset;
	/*
	 * --gpu virgl: the renderer holds the resources; 'shadow' is its
	 * read-back copy of what the scanout shows (id SHADOW_ID when on).
	 */
	struct gpu_virgl *virgl;
	struct resource shadow;
	bool shadowed; /* from the first virtio_gpu_shadow on, the scanout shows only it */
	/* Whom the renderer's answers wake: the transport, between kicks and resets. */
	GMutex transport_lock;
	struct virtio_pci *transport;
};

#define SHADOW_ID UINT32_MAX

/* --- EDID (VESA E-EDID 1.4): one monitor whose preferred mode is the display's size -------- */

static void edid_detailed_timing(uint8_t *d, uint32_t w, uint32_t h)
{
	/* Reduced blanking, as CVT-RB: 160 pixels, 30 lines; 60 Hz. */
	const uint32_t hblank = 160, hso = 48, hsw = 32, vblank = 30, vso = 3, vsw = 5;
	uint64_t clock = (uint64_t)(w + hblank) * (h + vblank) * 60 / 10000; /* 10 kHz units */
	uint32_t wmm = w * 254 / 960, hmm = h * 254 / 960;                   /* at 96 dpi */

	clock = MIN(clock, 0xffff);
	d[0] = (uint8_t)clock;
	d[1] = (uint8_t)(clock >> 8);
	d[2] = (uint8_t)w;
	d[3] = (uint8_t)hblank;
	d[4] = (uint8_t)((w >> 8) << 4 | hblank >> 8);
	d[5] = (uint8_t)h;
	d[6] = (uint8_t)vblank;
	d[7] = (uint8_t)((h >> 8) << 4 | vblank >> 8);
	d[8] = (uint8_t)hso;
	d[9] = (uint8_t)hsw;
	d[10] = (uint8_t)((vso & 15) << 4 | (vsw & 15));
	d[11] = (uint8_t)((hso >> 8) << 6 | (hsw >> 8) << 4 | (vso >> 4) << 2 | vsw >> 4);
	d[12] = (uint8_t)wmm;
	d[13] = (uint8_t)hmm;
	d[14] = (uint8_t)((wmm >> 8) << 4 | (hmm >> 8 & 15));
	d[17] = 0x1e; /* digital separate sync, both positive */
}

static void edid_text(uint8_t *d, uint8_t tag, const char *text)
{
	size_t n = strlen(text);

	d[3] = tag;
	memset(d + 5, ' ', 13);
	memcpy(d + 5, text, n);
	if (n < 13)
		d[5 + n] = '\n';
}

static void build_edid(uint8_t *e, uint32_t w, uint32_t h)
{
	static const uint8_t header[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
	static const uint8_t srgb_chromaticity[10] = {0xee, 0x91, 0xa3, 0x54, 0x4c,
	                                              0x99, 0x26, 0x0f, 0x50, 0x54};
	uint8_t sum = 0;

	memset(e, 0, EDID_BYTES);
	memcpy(e, header, sizeof(header));
	e[8] = 0x22; /* manufacturer "HSK": three 5-bit letters, big-endian */
	e[9] = 0x6b;
	e[10] = 1; /* product code */
	e[16] = 1; /* week and year (2024) of manufacture */
	e[17] = 2024 - 1990;
	e[18] = 1; /* EDID 1.4 */
	e[19] = 4;
	e[20] = 0x80;                      /* digital input */
	e[21] = (uint8_t)(w * 254 / 9600); /* size in cm at 96 dpi */
	e[22] = (uint8_t)(h * 254 / 9600);
	e[23] = 120;  /* gamma 2.2 */
	e[24] = 0x06; /* sRGB; the preferred timing is the native mode */
	memcpy(e + 25, srgb_chromaticity, sizeof(srgb_chromaticity));
	memset(e + 38, 1, 16); /* no standard timings */
	edid_detailed_timing(e + 54, w, h);
	edid_text(e + 72, 0xfc, "husk");
	edid_text(e + 90, 0xff, "0");
	e[108 + 3] = 0x10; /* an unused descriptor */
	for (unsigned int i = 0; i < EDID_BYTES - 1; i++)
		sum += e[i];
	e[EDID_BYTES - 1] = (uint8_t)(0x100 - sum);
}

/* --- the chain: request bytes in, response bytes out ------------------------------------- */

bool gpu_chain_read(const struct vq_chain *c, uint64_t skip, void *dst, size_t len)
{
	uint8_t *out = dst;

	for (unsigned int i = 0; i < c->nseg && len; i++) {
		const struct vq_seg *s = &c->seg[i];
		if (s->device_writable)
			continue;
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		size_t n = MIN((size_t)(s->len - skip), len);
		memcpy(out, (uint8_t *)s->addr + skip, n);
		out += n;
		len -= n;
		skip = 0;
	}
	return len == 0;
}

uint32_t gpu_chain_write(const struct vq_chain *c, const void *src, size_t len)
{
	const uint8_t *in = src;
	uint32_t done = 0;

	for (unsigned int i = 0; i < c->nseg && len; i++) {
		const struct vq_seg *s = &c->seg[i];
		if (!s->device_writable)
			continue;
		size_t n = MIN((size_t)s->len, len);
		memcpy(s->addr, in, n);
		in += n;
		len -= n;
		done += (uint32_t)n;
	}
	return done;
}

/* --- damage, for viewers --------------------------------------------------------------------- */

/* Adds 'r' (display coordinates, clipped to the display) to what viewers have not seen. */
static void add_damage(struct virtio_gpu *gpu, uint64_t x, uint64_t y, uint64_t w, uint64_t h)
{
	uint64_t x2 = MIN(x + w, gpu->width), y2 = MIN(y + h, gpu->height);
	struct rect *d = &gpu->damage;

	if (x >= x2 || y >= y2)
		return;
	if (d->width && d->height) {
		x2 = MAX(x2, (uint64_t)d->x + d->width);
		y2 = MAX(y2, (uint64_t)d->y + d->height);
		x = MIN(x, d->x);
		y = MIN(y, d->y);
	}
	*d = (struct rect){(uint32_t)x, (uint32_t)y, (uint32_t)(x2 - x), (uint32_t)(y2 - y)};
}

static void damage_all(struct virtio_gpu *gpu)
{
	add_damage(gpu, 0, 0, gpu->width, gpu->height);
}

/* --- resources ------------------------------------------------------------------------------ */

bool gpu_format_known(uint32_t format)
{
	switch (format) {
	case FMT_B8G8R8A8:
	case FMT_B8G8R8X8:
	case FMT_A8R8G8B8:
	case FMT_X8R8G8B8:
	case FMT_R8G8B8A8:
	case FMT_X8B8G8R8:
	case FMT_A8B8G8R8:
	case FMT_R8G8B8X8:
		return true;
	default:
		return false;
	}
}

static void resource_free(gpointer data)
{
	struct resource *res = data;

	g_free(res->pixels);
	g_free(res->backing);
	g_free(res);
}

static struct resource *find(struct virtio_gpu *gpu, uint32_t id)
{
	return g_hash_table_lookup(gpu->resources, GUINT_TO_POINTER(id));
}

/* Is 'r' a non-empty rectangle inside the resource? (Sums in 64 bits: no wrap-around.) */
static bool rect_inside(const struct rect *r, const struct resource *res)
{
	return r->width && r->height && (uint64_t)r->x + r->width <= res->width &&
	       (uint64_t)r->y + r->height <= res->height;
}

static uint32_t create_2d(struct virtio_gpu *gpu, const struct cmd_resource_create_2d *c)
{
	uint64_t bytes = (uint64_t)c->width * c->height * BYTES_PER_PIXEL;

	if (c->resource_id == 0 || find(gpu, c->resource_id))
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (!gpu_format_known(c->format) || !c->width || !c->height ||
	    c->width > GPU_MAX_DIMENSION || c->height > GPU_MAX_DIMENSION)
		return RESP_ERR_INVALID_PARAMETER;
	if (g_hash_table_size(gpu->resources) >= GPU_MAX_RESOURCES ||
	    bytes > GPU_MAX_RESOURCE_BYTES - gpu->resource_bytes)
		return RESP_ERR_OUT_OF_MEMORY;
	struct resource *res = g_new0(struct resource, 1);
	res->pixels = g_try_malloc0(bytes);
	if (!res->pixels) {
		g_free(res);
		return RESP_ERR_OUT_OF_MEMORY;
	}
	res->id = c->resource_id;
	res->format = c->format;
	res->width = c->width;
	res->height = c->height;
	gpu->resource_bytes += bytes;
	g_hash_table_insert(gpu->resources, GUINT_TO_POINTER(res->id), res);
	return RESP_OK_NODATA;
}

static uint32_t unref(struct virtio_gpu *gpu, const struct cmd_resource_id *c)
{
	struct resource *res = find(gpu, c->resource_id);

	if (!res)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (gpu->scanout.resource_id == res->id) {
		gpu->scanout.resource_id = 0;
		damage_all(gpu);
	}
	if (gpu->cursor_resource == res->id)
		gpu->cursor_resource = 0;
	gpu->resource_bytes -= (uint64_t)res->width * res->height * BYTES_PER_PIXEL;
	g_hash_table_remove(gpu->resources, GUINT_TO_POINTER(c->resource_id));
	return RESP_OK_NODATA;
}

/*
 * The entries follow the command in the chain. Each must lie inside guest
 * RAM; an empty entry or one outside refuses the whole list.
 */
static uint32_t attach_backing(struct virtio_gpu *gpu, const struct vq_chain *chain,
                               const struct cmd_attach_backing *c)
{
	struct resource *res = find(gpu, c->resource_id);
	uint64_t at = sizeof(struct ctrl_hdr) + sizeof(*c), total = 0;

	if (!res)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (res->backing || c->nr_entries == 0 || c->nr_entries > GPU_MAX_BACKING_ENTRIES)
		return RESP_ERR_INVALID_PARAMETER;
	struct backing_piece *pieces = g_new(struct backing_piece, c->nr_entries);
	for (uint32_t i = 0; i < c->nr_entries; i++, at += sizeof(struct mem_entry)) {
		struct mem_entry e;
		uint32_t refusal = 0;
		if (!gpu_chain_read(chain, at, &e, sizeof(e)))
			refusal = RESP_ERR_UNSPEC; /* the list is shorter than it says */
		else if (e.length == 0 || !(pieces[i].addr = gm_ptr(gpu->mem, e.addr, e.length)))
			refusal = RESP_ERR_INVALID_PARAMETER;
		if (refusal) {
			g_free(pieces);
			return refusal;
		}
		pieces[i].len = e.length;
		total += e.length;
	}
	res->backing = pieces;
	res->nbacking = c->nr_entries;
	res->backing_bytes = total;
	return RESP_OK_NODATA;
}

static uint32_t detach_backing(struct virtio_gpu *gpu, const struct cmd_resource_id *c)
{
	struct resource *res = find(gpu, c->resource_id);

	if (!res)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (!res->backing)
		return RESP_ERR_UNSPEC;
	g_clear_pointer(&res->backing, g_free);
	res->nbacking = 0;
	res->backing_bytes = 0;
	return RESP_OK_NODATA;
}

/* Where a walk of the backing is: piece 'index' starts 'start' bytes in. */
struct backing_cursor {
	unsigned int index;
	uint64_t start;
};

/*
 * Copies 'len' bytes from 'offset' in the backing. Rows come at growing
 * offsets, so the cursor moves forward across calls instead of walking
 * the list from its head for each row.
 */
static void backing_copy(const struct resource *res, struct backing_cursor *cur, uint64_t offset,
                         uint8_t *dst, size_t len)
{
	if (offset < cur->start)
		*cur = (struct backing_cursor){0, 0};
	while (cur->index < res->nbacking && offset >= cur->start + res->backing[cur->index].len)
		cur->start += res->backing[cur->index++].len;
	for (unsigned int i = cur->index; i < res->nbacking && len; i++) {
		uint64_t piece_start = i == cur->index ? cur->start : 0;
		uint64_t skip = i == cur->index ? offset - piece_start : 0;
		size_t n = MIN((size_t)(res->backing[i].len - skip), len);
		memcpy(dst, res->backing[i].addr + skip, n);
		dst += n;
		len -= n;
	}
}

/*
 * Rows of the rectangle from the backing into the resource (QEMU's and
 * Linux's reading of 5.7.6.8: 'offset' is where the rectangle's first
 * pixel sits in the backing, which has the resource's stride).
 */
static uint32_t transfer_to_host(struct virtio_gpu *gpu, const struct cmd_transfer_to_host_2d *c)
{
	struct resource *res = find(gpu, c->resource_id);

	if (!res)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (!res->backing)
		return RESP_ERR_UNSPEC;
	if (!rect_inside(&c->r, res))
		return RESP_ERR_INVALID_PARAMETER;
	uint64_t stride = (uint64_t)res->width * BYTES_PER_PIXEL;
	uint64_t row_bytes = (uint64_t)c->r.width * BYTES_PER_PIXEL;
	/* The last row's end; the offset is the guest's, so keep clear of wrapping. */
	if (c->offset > res->backing_bytes ||
	    stride * (c->r.height - 1) + row_bytes > res->backing_bytes - c->offset)
		return RESP_ERR_INVALID_PARAMETER;
	struct backing_cursor cur = {0, 0};
	gpu->stats.transfers++;
	for (uint32_t h = 0; h < c->r.height; h++) {
		uint8_t *dst =
		    res->pixels + (c->r.y + h) * stride + (uint64_t)c->r.x * BYTES_PER_PIXEL;
		backing_copy(res, &cur, c->offset + stride * h, dst, row_bytes);
	}
	return RESP_OK_NODATA;
}

static uint32_t set_scanout(struct virtio_gpu *gpu, const struct cmd_set_scanout *c)
{
	if (c->scanout_id >= NUM_SCANOUTS)
		return RESP_ERR_INVALID_SCANOUT_ID;
	if (c->resource_id == 0) {
		gpu->scanout.resource_id = 0; /* the guest turns the display off */
		damage_all(gpu);
		return RESP_OK_NODATA;
	}
	struct resource *res = find(gpu, c->resource_id);
	if (!res)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (!rect_inside(&c->r, res))
		return RESP_ERR_INVALID_PARAMETER;
	gpu->scanout = (struct scanout){.resource_id = res->id, .r = c->r};
	damage_all(gpu);
	return RESP_OK_NODATA;
}

static uint32_t flush(struct virtio_gpu *gpu, const struct cmd_resource_flush *c)
{
	struct resource *res = find(gpu, c->resource_id);

	if (!res)
		return RESP_ERR_INVALID_RESOURCE_ID;
	if (!rect_inside(&c->r, res))
		return RESP_ERR_INVALID_PARAMETER;
	gpu->stats.flushes++;
	/* What viewers see changes only where the scanout shows the flushed part. */
	const struct rect *sr = &gpu->scanout.r;
	if (gpu->scanout.resource_id == res->id) {
		uint64_t x1 = MAX(c->r.x, sr->x), y1 = MAX(c->r.y, sr->y);
		uint64_t x2 = MIN((uint64_t)c->r.x + c->r.width, (uint64_t)sr->x + sr->width);
		uint64_t y2 = MIN((uint64_t)c->r.y + c->r.height, (uint64_t)sr->y + sr->height);
		if (x1 < x2 && y1 < y2)
			add_damage(gpu, x1 - sr->x, y1 - sr->y, x2 - x1, y2 - y1);
	}
	return RESP_OK_NODATA;
}

/* Under the lock: a flush of the scanout is on screen. */
static void note_shown_locked(struct virtio_gpu *gpu, int64_t since_us)
{
	uint64_t us = (uint64_t)MAX(g_get_monotonic_time() - since_us, 0);

	gpu->stats.shown++;
	gpu->stats.shown_us_total += us;
	gpu->stats.shown_us_max = MAX(gpu->stats.shown_us_max, us);
}

/* --- requests ----------------------------------------------------------------------------- */

/* A command's fixed part after the header; false if the chain is too short for it. */
#define READ_BODY(chain, var) gpu_chain_read(chain, sizeof(struct ctrl_hdr), &(var), sizeof(var))

static uint32_t display_info(struct virtio_gpu *gpu, struct resp_display_info *resp)
{
	memset(resp->pmodes, 0, sizeof(resp->pmodes));
	resp->pmodes[0].r = (struct rect){0, 0, gpu->width, gpu->height};
	resp->pmodes[0].enabled = 1;
	return RESP_OK_DISPLAY_INFO;
}

static uint32_t get_edid(struct virtio_gpu *gpu, const struct cmd_get_edid *c,
                         struct resp_edid *resp)
{
	if (c->scanout >= NUM_SCANOUTS)
		return RESP_ERR_INVALID_SCANOUT_ID;
	memset(resp->edid, 0, sizeof(resp->edid));
	memcpy(resp->edid, gpu->edid, EDID_BYTES);
	resp->size = EDID_BYTES;
	resp->padding = 0;
	return RESP_OK_EDID;
}

/* Runs the command under the lock; *resp_len grows for the responses that carry data. */
static uint32_t dispatch(struct virtio_gpu *gpu, const struct vq_chain *chain, uint32_t type,
                         void *resp, size_t *resp_len)
{
	union {
		struct cmd_resource_create_2d create;
		struct cmd_resource_id id;
		struct cmd_set_scanout scanout;
		struct cmd_resource_flush flush;
		struct cmd_transfer_to_host_2d transfer;
		struct cmd_attach_backing attach;
		struct cmd_get_edid edid;
	} c;

	switch (type) {
	case CMD_GET_DISPLAY_INFO:
		*resp_len = sizeof(struct resp_display_info);
		return display_info(gpu, resp);
	case CMD_GET_EDID:
		if (!READ_BODY(chain, c.edid))
			return RESP_ERR_UNSPEC;
		*resp_len = sizeof(struct resp_edid);
		return get_edid(gpu, &c.edid, resp);
	case CMD_RESOURCE_CREATE_2D:
		return READ_BODY(chain, c.create) ? create_2d(gpu, &c.create) : RESP_ERR_UNSPEC;
	case CMD_RESOURCE_UNREF:
		return READ_BODY(chain, c.id) ? unref(gpu, &c.id) : RESP_ERR_UNSPEC;
	case CMD_SET_SCANOUT:
		return READ_BODY(chain, c.scanout) ? set_scanout(gpu, &c.scanout) : RESP_ERR_UNSPEC;
	case CMD_RESOURCE_FLUSH:
		return READ_BODY(chain, c.flush) ? flush(gpu, &c.flush) : RESP_ERR_UNSPEC;
	case CMD_TRANSFER_TO_HOST_2D:
		return READ_BODY(chain, c.transfer) ? transfer_to_host(gpu, &c.transfer)
		                                    : RESP_ERR_UNSPEC;
	case CMD_RESOURCE_ATTACH_BACKING:
		return READ_BODY(chain, c.attach) ? attach_backing(gpu, chain, &c.attach)
		                                  : RESP_ERR_UNSPEC;
	case CMD_RESOURCE_DETACH_BACKING:
		return READ_BODY(chain, c.id) ? detach_backing(gpu, &c.id) : RESP_ERR_UNSPEC;
	default:
		/* 3D, capsets, blobs: not offered, so a driver that sends them is wrong. */
		return RESP_ERR_UNSPEC;
	}
}

uint32_t virtio_gpu_control(struct virtio_gpu *gpu, const struct vq_chain *chain)
{
	/* The largest response, EDID's, as the buffer for any. */
	union {
		struct ctrl_hdr hdr;
		struct resp_display_info display;
		struct resp_edid edid;
	} resp;
	struct ctrl_hdr req;
	size_t resp_len = sizeof(struct ctrl_hdr);
	uint32_t type;
	int64_t taken = g_get_monotonic_time();

	if (chain->in_len < sizeof(struct ctrl_hdr))
		return 0; /* no room for an answer: the driver learns nothing */
	g_mutex_lock(&gpu->lock);
	gpu->stats.commands++;
	if (gpu_chain_read(chain, 0, &req, sizeof(req)))
		type = dispatch(gpu, chain, req.type, &resp, &resp_len);
	else
		type = RESP_ERR_UNSPEC, memset(&req, 0, sizeof(req));
	if (type >= RESP_ERR_UNSPEC) {
		gpu->stats.errors++;
		resp_len = sizeof(struct ctrl_hdr);
	} else if (req.type == CMD_RESOURCE_FLUSH && gpu->scanout.resource_id) {
		struct cmd_resource_flush f;
		if (READ_BODY(chain, f) && f.resource_id == gpu->scanout.resource_id)
			note_shown_locked(gpu, taken);
	}
	g_mutex_unlock(&gpu->lock);
	/* Commands complete in order, at once: a fence is signalled by its own answer. */
	resp.hdr = (struct ctrl_hdr){.type = type,
	                             .flags = req.flags & FLAG_FENCE,
	                             .fence_id = req.flags & FLAG_FENCE ? req.fence_id : 0,
	                             .ctx_id = req.ctx_id,
	                             .ring_idx = req.ring_idx};
	return gpu_chain_write(chain, &resp, MIN(resp_len, chain->in_len));
}

void virtio_gpu_cursor(struct virtio_gpu *gpu, const struct vq_chain *chain)
{
	struct ctrl_hdr req;
	struct cmd_update_cursor c;

	if (!gpu_chain_read(chain, 0, &req, sizeof(req)) || !READ_BODY(chain, c))
		return;
	if ((req.type != CMD_UPDATE_CURSOR && req.type != CMD_MOVE_CURSOR) ||
	    c.pos.scanout_id >= NUM_SCANOUTS)
		return;
	g_mutex_lock(&gpu->lock);
	gpu->cursor = c.pos;
	/* The image is the guest's resource, kept only if it is one. */
	if (req.type == CMD_UPDATE_CURSOR) {
		gpu->cursor_resource = find(gpu, c.resource_id) ? c.resource_id : 0;
		gpu->stats.cursor_updates++;
	}
	g_mutex_unlock(&gpu->lock);
}

/* --- snapshots ---------------------------------------------------------------------------- */

/* Where red, green and blue sit in a pixel's four bytes, by format. */
static void channel_offsets(uint32_t format, unsigned int *r, unsigned int *g, unsigned int *b)
{
	switch (format) {
	case FMT_B8G8R8A8:
	case FMT_B8G8R8X8:
		*b = 0, *g = 1, *r = 2;
		break;
	case FMT_A8R8G8B8:
	case FMT_X8R8G8B8:
		*r = 1, *g = 2, *b = 3;
		break;
	case FMT_R8G8B8A8:
	case FMT_R8G8B8X8:
		*r = 0, *g = 1, *b = 2;
		break;
	default: /* X8B8G8R8, A8B8G8R8 */
		*b = 1, *g = 2, *r = 3;
		break;
	}
}

/* Under the lock: the resource the scanout shows, or NULL. */
static struct resource *scanout_resource(struct virtio_gpu *gpu)
{
	if (gpu->shadowed)
		return gpu->scanout.resource_id == SHADOW_ID ? &gpu->shadow : NULL;
	return find(gpu, gpu->scanout.resource_id);
}

/* Under the lock: the scanout's pixels as RGB; false if it shows nothing. */
static bool copy_scanout(struct virtio_gpu *gpu, struct gpu_image *out)
{
	struct resource *res = scanout_resource(gpu);
	unsigned int ro, go, bo;

	if (!res)
		return false;
	const struct rect *r = &gpu->scanout.r;
	uint64_t stride = (uint64_t)res->width * BYTES_PER_PIXEL;
	channel_offsets(res->format, &ro, &go, &bo);
	out->width = r->width;
	out->height = r->height;
	out->rgb = g_malloc((size_t)r->width * r->height * 3);
	for (uint32_t y = 0; y < r->height; y++) {
		const uint8_t *src = res->pixels + (r->y + y) * stride + (uint64_t)r->x * 4;
		uint8_t *dst = out->rgb + (size_t)y * r->width * 3;
		for (uint32_t x = 0; x < r->width; x++, src += 4, dst += 3) {
			dst[0] = src[ro];
			dst[1] = src[go];
			dst[2] = src[bo];
		}
	}
	return true;
}

static bool shows_nothing(GError **err)
{
	return husk_fail(err, HUSK_EXIT_RUNTIME,
	                 "virtio-gpu: the guest shows nothing on its display");
}

bool virtio_gpu_snapshot(struct virtio_gpu *gpu, struct gpu_image *out, GError **err)
{
	g_mutex_lock(&gpu->lock);
	bool ok = copy_scanout(gpu, out);
	g_mutex_unlock(&gpu->lock);
	return ok || shows_nothing(err);
}

bool virtio_gpu_last_picture(struct virtio_gpu *gpu, struct gpu_image *out, GError **err)
{
	g_mutex_lock(&gpu->lock);
	bool ok = copy_scanout(gpu, out);
	if (!ok && gpu->before_reset.rgb) {
		*out = gpu->before_reset;
		size_t bytes = (size_t)out->width * out->height * 3;
		out->rgb = memcpy(g_malloc(bytes), gpu->before_reset.rgb, bytes);
		ok = true;
	}
	g_mutex_unlock(&gpu->lock);
	return ok || shows_nothing(err);
}

void virtio_gpu_display_size(struct virtio_gpu *gpu, uint32_t *width, uint32_t *height)
{
	*width = gpu->width; /* fixed once made */
	*height = gpu->height;
}

/* Under the lock: row 'y' of the display, pixels [x, x + w), as B, G, R, X bytes. */
static void display_row(struct virtio_gpu *gpu, uint32_t x, uint32_t y, uint32_t w, uint8_t *dst)
{
	struct resource *res = scanout_resource(gpu);
	const struct rect *r = &gpu->scanout.r;
	unsigned int ro, go, bo;

	memset(dst, 0, (size_t)w * 4);
	if (!res || y >= r->height || x >= r->width)
		return;
	w = MIN(w, r->width - x);
	channel_offsets(res->format, &ro, &go, &bo);
	const uint8_t *src = res->pixels + ((uint64_t)r->y + y) * res->width * BYTES_PER_PIXEL +
	                     ((uint64_t)r->x + x) * BYTES_PER_PIXEL;
	if (res->format == FMT_B8G8R8X8 || res->format == FMT_B8G8R8A8) {
		memcpy(dst, src, (size_t)w * 4);
		return;
	}
	for (uint32_t i = 0; i < w; i++, src += 4, dst += 4) {
		dst[0] = src[bo];
		dst[1] = src[go];
		dst[2] = src[ro];
		dst[3] = 0;
	}
}

bool virtio_gpu_take_damage(struct virtio_gpu *gpu, uint8_t *fb, struct gpu_rect *out)
{
	g_mutex_lock(&gpu->lock);
	struct rect d = gpu->damage;
	bool changed = d.width && d.height;
	for (uint32_t y = 0; changed && y < d.height; y++)
		display_row(gpu, d.x, d.y + y, d.width,
		            fb + ((size_t)(d.y + y) * gpu->width + d.x) * 4);
	gpu->damage = (struct rect){0, 0, 0, 0};
	g_mutex_unlock(&gpu->lock);
	*out = (struct gpu_rect){d.x, d.y, d.width, d.height};
	return changed;
}

void virtio_gpu_shadow(struct virtio_gpu *gpu, uint32_t format, uint32_t width, uint32_t height,
                       const uint8_t *pixels, const struct rect *damage)
{
	size_t bytes = (size_t)width * height * BYTES_PER_PIXEL;
	struct resource *sh = &gpu->shadow;

	g_mutex_lock(&gpu->lock);
	gpu->shadowed = true;
	if (!pixels) {
		gpu->scanout.resource_id = 0;
		damage_all(gpu);
		g_mutex_unlock(&gpu->lock);
		return;
	}
	bool resized = sh->width != width || sh->height != height || sh->format != format ||
	               gpu->scanout.resource_id != SHADOW_ID;
	if (sh->width != width || sh->height != height) {
		g_free(sh->pixels);
		sh->pixels = g_malloc(bytes);
	}
	*sh = (struct resource){.id = SHADOW_ID,
	                        .format = format,
	                        .width = width,
	                        .height = height,
	                        .pixels = sh->pixels};
	memcpy(sh->pixels, pixels, bytes);
	gpu->scanout = (struct scanout){.resource_id = SHADOW_ID, .r = {0, 0, width, height}};
	gpu->stats.flushes++;
	if (resized || !damage)
		damage_all(gpu);
	else
		add_damage(gpu, damage->x, damage->y, damage->width, damage->height);
	g_mutex_unlock(&gpu->lock);
}

void virtio_gpu_note_shown(struct virtio_gpu *gpu, int64_t since_us)
{
	g_mutex_lock(&gpu->lock);
	note_shown_locked(gpu, since_us);
	g_mutex_unlock(&gpu->lock);
}

void virtio_gpu_count(struct virtio_gpu *gpu, bool refused)
{
	g_mutex_lock(&gpu->lock);
	gpu->stats.commands++;
	gpu->stats.errors += refused;
	g_mutex_unlock(&gpu->lock);
}

void virtio_gpu_stats(struct virtio_gpu *gpu, struct gpu_stats *out)
{
	g_mutex_lock(&gpu->lock);
	*out = gpu->stats;
	out->resources = g_hash_table_size(gpu->resources);
	out->resource_bytes = gpu->resource_bytes;
	g_mutex_unlock(&gpu->lock);
#ifdef HAVE_VIRGLRENDERER
	if (gpu->virgl) {
		struct gpu_virgl_stats vs;
		gpu_virgl_stats(gpu->virgl, &vs);
		out->resources = vs.resources;
		out->resource_bytes = vs.resource_bytes;
		out->transfers = vs.transfers;
		out->contexts = vs.contexts;
		out->submits = vs.submits;
		out->submit_bytes = vs.submit_bytes;
		out->fences = vs.fences;
	}
#endif
}

/* --- the device ----------------------------------------------------------------------------- */

struct virtio_gpu *virtio_gpu_new(const struct guest_memory *mem, uint32_t width, uint32_t height)
{
	struct virtio_gpu *gpu = g_new0(struct virtio_gpu, 1);

	gpu->mem = mem;
	gpu->width = CLAMP(width, 1, EDID_MAX_SIDE);
	gpu->height = CLAMP(height, 1, EDID_MAX_SIDE);
	build_edid(gpu->edid, gpu->width, gpu->height);
	damage_all(gpu); /* a viewer's first look: the display, black */
	g_mutex_init(&gpu->lock);
	g_mutex_init(&gpu->transport_lock);
	gpu->resources = g_hash_table_new_full(NULL, NULL, NULL, resource_free);
	return gpu;
}

#ifdef HAVE_VIRGLRENDERER
/* From the renderer thread: answers are ready; the I/O thread pushes them. */
static void wake_control_queue(void *opaque)
{
	struct virtio_gpu *gpu = opaque;

	g_mutex_lock(&gpu->transport_lock);
	if (gpu->transport)
		virtio_pci_wake(gpu->transport, CONTROL_QUEUE);
	g_mutex_unlock(&gpu->transport_lock);
}
#endif

struct virtio_gpu *virtio_gpu_new_virgl(const struct guest_memory *mem, uint32_t width,
                                        uint32_t height, GError **err)
{
#ifdef HAVE_VIRGLRENDERER
	struct virtio_gpu *gpu = virtio_gpu_new(mem, width, height);

	gpu->virgl = gpu_virgl_new(gpu, mem, wake_control_queue, gpu, err);
	if (!gpu->virgl) {
		virtio_gpu_free(gpu);
		return NULL;
	}
	return gpu;
#else
	husk_fail(err, HUSK_EXIT_USAGE, "--gpu virgl: husk was built without virglrenderer");
	return NULL;
#endif
}

void virtio_gpu_free(struct virtio_gpu *gpu)
{
	if (!gpu)
		return;
#ifdef HAVE_VIRGLRENDERER
	gpu_virgl_free(gpu->virgl); /* first: its thread hands pixels to this device */
#endif
	g_free(gpu->shadow.pixels);
	g_mutex_clear(&gpu->transport_lock);
	g_hash_table_unref(gpu->resources);
	g_free(gpu->before_reset.rgb);
	g_mutex_clear(&gpu->lock);
	g_free(gpu);
}

/* A reset forgets every resource and turns the display off (2.4). */
static void gpu_reset(void *dev)
{
	struct virtio_gpu *gpu = dev;

	g_mutex_lock(&gpu->lock);
	struct gpu_image shown;
	if (copy_scanout(gpu, &shown)) {
		g_free(gpu->before_reset.rgb);
		gpu->before_reset = shown;
	}
	g_hash_table_remove_all(gpu->resources);
	gpu->resource_bytes = 0;
	gpu->scanout.resource_id = 0;
	gpu->cursor_resource = 0;
	damage_all(gpu);
	g_mutex_unlock(&gpu->lock);
#ifdef HAVE_VIRGLRENDERER
	if (gpu->virgl) {
		/* Not waited for: a vCPU resets the device, and must never wait on the renderer. */
		g_mutex_lock(&gpu->transport_lock);
		gpu->transport = NULL;
		g_mutex_unlock(&gpu->transport_lock);
		gpu_virgl_reset(gpu->virgl);
	}
#endif
}

#ifdef HAVE_VIRGLRENDERER
/* Does the renderer answer this request, or is it the display's (no resource involved)? */
static bool for_renderer(const struct vq_chain *chain)
{
	struct ctrl_hdr req;

	return !gpu_chain_read(chain, 0, &req, sizeof(req)) ||
	       (req.type != CMD_GET_DISPLAY_INFO && req.type != CMD_GET_EDID);
}

/*
 * --gpu virgl's control queue: what the renderer has answered goes back
 * to the driver; new requests go to the renderer, except the display's.
 */
static void virgl_notify(struct virtio_gpu *gpu, struct virtio_pci *t, struct virtqueue *vq)
{
	struct vq_chain *chain = g_new(struct vq_chain, 1);
	struct vq_used done[64];
	unsigned int n, budget;

	g_mutex_lock(&gpu->transport_lock);
	gpu->transport = t;
	g_mutex_unlock(&gpu->transport_lock);
	while ((n = gpu_virgl_take_done(gpu->virgl, done, G_N_ELEMENTS(done))))
		vq_push_many(vq, done, n);
	for (budget = VQ_BURST; budget && vq_pop(vq, chain) > 0; budget--) {
		if (for_renderer(chain))
			gpu_virgl_submit(gpu->virgl, chain);
		else
			vq_push(vq, chain->head, virtio_gpu_control(gpu, chain));
	}
	g_free(chain);
	if (!budget)
		virtio_pci_wake(t, CONTROL_QUEUE);
	virtio_pci_used(t, vq, CONTROL_QUEUE);
}
#endif

static void gpu_notify(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	struct virtio_gpu *gpu = dev;
	struct vq_chain *chain = g_new(struct vq_chain, 1); /* ~16 KiB: not on the loop's stack */
	unsigned int budget;

#ifdef HAVE_VIRGLRENDERER
	if (gpu->virgl && q == CONTROL_QUEUE) {
		g_free(chain);
		virgl_notify(gpu, t, vq);
		return;
	}
#endif
	for (budget = VQ_BURST; budget && vq_pop(vq, chain) > 0; budget--) {
		uint32_t written = 0;
		if (q == CONTROL_QUEUE)
			written = virtio_gpu_control(gpu, chain);
		else
			virtio_gpu_cursor(gpu, chain);
		vq_push(vq, chain->head, written);
	}
	g_free(chain);
	if (!budget)
		virtio_pci_wake(t, q);
	virtio_pci_used(t, vq, q);
}

static uint64_t gpu_features(void *dev)
{
	struct virtio_gpu *gpu = dev;

	return UINT64_C(1) << F_EDID | (gpu->virgl ? UINT64_C(1) << F_VIRGL : 0);
}

/* events_read stays 0: the display never changes under the driver; one scanout; capsets for 3D. */
static void gpu_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_gpu *gpu = dev;
	uint32_t config[CONFIG_SIZE / 4] = {0, 0, NUM_SCANOUTS, gpu->virgl ? GPU_VIRGL_CAPSETS : 0};

	memcpy(data, (uint8_t *)config + offset, len);
}

const struct virtio_device_ops virtio_gpu_ops = {
    .name = "virtio-gpu",
    .device_id = VIRTIO_ID_GPU,
    .class_code = CLASS_DISPLAY,
    .num_queues = 2,
    .queue_size = GPU_QUEUE_SIZE,
    .features = gpu_features,
    .config_size = CONFIG_SIZE,
    .config_read = gpu_config_read,
    .queue_notify = gpu_notify,
    .reset = gpu_reset,
};
