// SPDX-License-Identifier: MIT
/*
 * The GPU tests' painter in the guest (static: busybox has no DRM tools).
 * Linux 6.1's fbdev emulation keeps what write(2) puts in /dev/fb0 in a
 * shadow buffer and never sends it to the device, so the known picture is
 * drawn through KMS instead: a dumb buffer on the first connector's
 * preferred mode, ADDFB, SETCRTC, then DIRTYFB for the whole of it (what
 * makes virtio-gpu's driver send TRANSFER_TO_HOST_2D and RESOURCE_FLUSH).
 * The picture: the top half red on the left and green on the right, the
 * bottom half blue.
 *   drm-draw [CARD]  ->  "WIDTHxHEIGHT FIRST-PIXEL-HEX" on stdout
 * The picture stays up only while its DRM file is open (closing it hands
 * the display back to the fbdev console), so once it is drawn a child
 * keeps the file open and sleeps, and the parent exits 0. Exit status 1,
 * with one line on stderr, on any failure.
 *
 * The DRM ioctls' structures are written out here: this machine's
 * linux-libc-dev has no <drm/...> headers. They are the kernel's UAPI.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct drm_mode_card_res {
	uint64_t fb_id_ptr, crtc_id_ptr, connector_id_ptr, encoder_id_ptr;
	uint32_t count_fbs, count_crtcs, count_connectors, count_encoders;
	uint32_t min_width, max_width, min_height, max_height;
};

struct drm_mode_modeinfo {
	uint32_t clock;
	uint16_t hdisplay, hsync_start, hsync_end, htotal, hskew;
	uint16_t vdisplay, vsync_start, vsync_end, vtotal, vscan;
	uint32_t vrefresh, flags, type;
	char name[32];
};

struct drm_mode_crtc {
	uint64_t set_connectors_ptr;
	uint32_t count_connectors, crtc_id, fb_id, x, y, gamma_size, mode_valid;
	struct drm_mode_modeinfo mode;
};

struct drm_mode_get_connector {
	uint64_t encoders_ptr, modes_ptr, props_ptr, prop_values_ptr;
	uint32_t count_modes, count_props, count_encoders, encoder_id, connector_id;
	uint32_t connector_type, connector_type_id, connection, mm_width, mm_height;
	uint32_t subpixel, pad;
};

struct drm_mode_fb_cmd {
	uint32_t fb_id, width, height, pitch, bpp, depth, handle;
};

struct drm_mode_fb_dirty_cmd {
	uint32_t fb_id, flags, color, num_clips;
	uint64_t clips_ptr;
};

struct drm_clip_rect {
	uint16_t x1, y1, x2, y2;
};

struct drm_mode_create_dumb {
	uint32_t height, width, bpp, flags, handle, pitch;
	uint64_t size;
};

struct drm_mode_map_dumb {
	uint32_t handle, pad;
	uint64_t offset;
};

_Static_assert(sizeof(struct drm_mode_modeinfo) == 68, "drm_mode_modeinfo");
_Static_assert(sizeof(struct drm_mode_crtc) == 104, "drm_mode_crtc");
_Static_assert(sizeof(struct drm_mode_get_connector) == 80, "drm_mode_get_connector");

#define DRM_IOCTL_MODE_GETRESOURCES _IOWR('d', 0xA0, struct drm_mode_card_res)
#define DRM_IOCTL_MODE_SETCRTC      _IOWR('d', 0xA2, struct drm_mode_crtc)
#define DRM_IOCTL_MODE_GETCONNECTOR _IOWR('d', 0xA7, struct drm_mode_get_connector)
#define DRM_IOCTL_MODE_ADDFB        _IOWR('d', 0xAE, struct drm_mode_fb_cmd)
#define DRM_IOCTL_MODE_DIRTYFB      _IOWR('d', 0xB1, struct drm_mode_fb_dirty_cmd)
#define DRM_IOCTL_MODE_CREATE_DUMB  _IOWR('d', 0xB2, struct drm_mode_create_dumb)
#define DRM_IOCTL_MODE_MAP_DUMB     _IOWR('d', 0xB3, struct drm_mode_map_dumb)

#define MAX_IDS 16

static int fail(const char *what)
{
	fprintf(stderr, "drm-draw: %s: %m\n", what);
	exit(1);
}

static void drm(int fd, unsigned long req, void *arg, const char *what)
{
	while (ioctl(fd, req, arg) < 0)
		if (errno != EINTR && errno != EAGAIN)
			fail(what);
}

/* The first connected connector's preferred (first) mode. */
static uint32_t pick_connector(int fd, const struct drm_mode_card_res *res, const uint32_t *ids,
                               struct drm_mode_modeinfo *mode)
{
	for (uint32_t i = 0; i < res->count_connectors && i < MAX_IDS; i++) {
		struct drm_mode_modeinfo modes[64];
		struct drm_mode_get_connector c = {.connector_id = ids[i]};
		drm(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c, "GETCONNECTOR");
		if (c.connection != 1 || c.count_modes == 0)
			continue;
		c = (struct drm_mode_get_connector){
		    .connector_id = ids[i], .count_modes = 64, .modes_ptr = (uintptr_t)modes};
		drm(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c, "GETCONNECTOR");
		*mode = modes[0];
		return ids[i];
	}
	errno = ENODEV;
	return fail("no connected connector with a mode");
}

static void paint(uint8_t *map, uint32_t w, uint32_t h, uint32_t pitch)
{
	/* XRGB8888 as a little-endian word. */
	for (uint32_t y = 0; y < h; y++) {
		uint32_t *row = (uint32_t *)(map + (size_t)y * pitch);
		for (uint32_t x = 0; x < w; x++)
			row[x] = y >= h / 2 ? 0x0000ff : x < w / 2 ? 0xff0000 : 0x00ff00;
	}
}

int main(int argc, char **argv)
{
	const char *card = argc > 1 ? argv[1] : "/dev/dri/card0";
	uint32_t conn_ids[MAX_IDS], crtc_ids[MAX_IDS], fb_ids[MAX_IDS], enc_ids[MAX_IDS];
	struct drm_mode_card_res res = {0};
	struct drm_mode_modeinfo mode;
	int fd = open(card, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		fail(card);
	drm(fd, DRM_IOCTL_MODE_GETRESOURCES, &res, "GETRESOURCES");
	if (!res.count_crtcs || !res.count_connectors)
		fail("no CRTC or connector");
	res.count_fbs = res.count_fbs < MAX_IDS ? res.count_fbs : MAX_IDS;
	res.count_crtcs = res.count_crtcs < MAX_IDS ? res.count_crtcs : MAX_IDS;
	res.count_connectors = res.count_connectors < MAX_IDS ? res.count_connectors : MAX_IDS;
	res.count_encoders = res.count_encoders < MAX_IDS ? res.count_encoders : MAX_IDS;
	res.fb_id_ptr = (uintptr_t)fb_ids;
	res.crtc_id_ptr = (uintptr_t)crtc_ids;
	res.connector_id_ptr = (uintptr_t)conn_ids;
	res.encoder_id_ptr = (uintptr_t)enc_ids;
	drm(fd, DRM_IOCTL_MODE_GETRESOURCES, &res, "GETRESOURCES");
	uint32_t conn = pick_connector(fd, &res, conn_ids, &mode);

	struct drm_mode_create_dumb dumb = {
	    .width = mode.hdisplay, .height = mode.vdisplay, .bpp = 32};
	drm(fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb, "CREATE_DUMB");
	struct drm_mode_map_dumb map_req = {.handle = dumb.handle};
	drm(fd, DRM_IOCTL_MODE_MAP_DUMB, &map_req, "MAP_DUMB");
	uint8_t *map =
	    mmap(NULL, dumb.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)map_req.offset);
	if (map == MAP_FAILED)
		fail("mmap of the dumb buffer");
	paint(map, dumb.width, dumb.height, dumb.pitch);

	struct drm_mode_fb_cmd fb = {.width = dumb.width,
	                             .height = dumb.height,
	                             .pitch = dumb.pitch,
	                             .bpp = 32,
	                             .depth = 24,
	                             .handle = dumb.handle};
	drm(fd, DRM_IOCTL_MODE_ADDFB, &fb, "ADDFB");
	struct drm_mode_crtc crtc = {.set_connectors_ptr = (uintptr_t)&conn,
	                             .count_connectors = 1,
	                             .crtc_id = crtc_ids[0],
	                             .fb_id = fb.fb_id,
	                             .mode_valid = 1,
	                             .mode = mode};
	drm(fd, DRM_IOCTL_MODE_SETCRTC, &crtc, "SETCRTC");
	/* SETCRTC shows the buffer; DIRTYFB says its pixels are new. */
	struct drm_clip_rect clip = {0, 0, (uint16_t)dumb.width, (uint16_t)dumb.height};
	struct drm_mode_fb_dirty_cmd dirty = {
	    .fb_id = fb.fb_id, .num_clips = 1, .clips_ptr = (uintptr_t)&clip};
	drm(fd, DRM_IOCTL_MODE_DIRTYFB, &dirty, "DIRTYFB");

	printf("%ux%u %08x\n", dumb.width, dumb.height, *(uint32_t *)map);
	fflush(stdout);
	pid_t child = fork();
	if (child < 0)
		fail("fork");
	if (child > 0)
		return 0;
	/* The child holds the picture up: stdout closed so $(...) in the shell returns. */
	close(STDOUT_FILENO);
	for (;;)
		pause();
}
