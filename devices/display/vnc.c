// SPDX-License-Identifier: MIT
#include "devices/display/vnc.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/input/keymap.h"
#include "vmm/error.h"
#include "vmm/seccomp_threads.h"

bool vnc_parse_address(const char *text, char **host, int *port, GError **err)
{
	const char *colon = strrchr(text, ':');
	char *end = NULL;
	long p;

	if (!colon || colon == text)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--display vnc=%s: want ADDRESS:PORT, such as 127.0.0.1:5900",
		                 text);
	p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 1 || p > 65535)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "--display vnc=%s: the port is not 1 to 65535", text);
	if (text[0] == '[') {
		if (colon[-1] != ']' || colon - text < 3)
			return husk_fail(
			    err, HUSK_EXIT_USAGE,
			    "--display vnc=%s: an IPv6 address goes in brackets, [::1]:5900", text);
		*host = g_strndup(text + 1, (size_t)(colon - text - 2));
	} else {
		*host = g_strndup(text, (size_t)(colon - text));
	}
	struct in6_addr a6;
	struct in_addr a4;
	if (inet_pton(text[0] == '[' ? AF_INET6 : AF_INET, *host,
	              text[0] == '[' ? (void *)&a6 : (void *)&a4) != 1) {
		husk_fail(err, HUSK_EXIT_USAGE, "--display vnc=%s: \"%s\" is not an IP address",
		          text, *host);
		g_clear_pointer(host, g_free);
		return false;
	}
	*port = (int)p;
	return true;
}

#ifdef HAVE_LIBVNCSERVER

#include <rfb/rfb.h>

#define PASS_US 20000 /* a pass of the loop: how late a flush reaches the clients, at most */

struct vnc_server {
	rfbScreenInfoPtr screen;
	struct virtio_gpu *gpu;
	struct virtio_input *keyboard, *tablet;
	uint32_t width, height;
	char *host;
	GThread *thread;
	atomic_bool stop;
};

bool vnc_available(void)
{
	return true;
}

/* libvncserver's chatter goes to the debug log; its errors to stderr, as husk's. */
/* libvncserver's messages, each ending in a newline of its own: one line of ours. */
static void vnc_say(bool error, const char *fmt, va_list ap)
{
	char *msg = g_strchomp(g_strdup_vprintf(fmt, ap));

	if (error)
		g_printerr("husk: vnc: %s\n", msg);
	else
		g_debug("vnc: %s", msg);
	g_free(msg);
}

static void vnc_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnc_say(false, fmt, ap);
	va_end(ap);
}

static void vnc_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnc_say(true, fmt, ap);
	va_end(ap);
}

static void on_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
	struct vnc_server *vnc = cl->screen->screenData;
	uint16_t code = keymap_evdev_code(keysym);

	if (code && vnc->keyboard)
		virtio_input_key(vnc->keyboard, code, down);
}

static void on_pointer(int buttons, int x, int y, rfbClientPtr cl)
{
	struct vnc_server *vnc = cl->screen->screenData;

	if (vnc->tablet)
		virtio_input_pointer(vnc->tablet, (uint32_t)MAX(x, 0), (uint32_t)MAX(y, 0),
		                     vnc->width, vnc->height, (unsigned int)buttons);
	rfbDefaultPtrAddEvent(buttons, x, y, cl);
}

static gpointer serve(gpointer data)
{
	struct vnc_server *vnc = data;
	struct gpu_rect r;

	while (!atomic_load(&vnc->stop)) {
		/* Its list, at the first pass (later calls return at once). */
		seccomp_thread_enter_or_exit(SECCOMP_THREAD_VNC);
		if (virtio_gpu_take_damage(vnc->gpu, (uint8_t *)vnc->screen->frameBuffer, &r))
			rfbMarkRectAsModified(vnc->screen, (int)r.x, (int)r.y, (int)(r.x + r.width),
			                      (int)(r.y + r.height));
		rfbProcessEvents(vnc->screen, PASS_US);
	}
	return NULL;
}

static bool listen_on(struct vnc_server *vnc, const char *host, int port, GError **err)
{
	rfbScreenInfoPtr s = vnc->screen;

	s->autoPort = FALSE;
	s->httpDir = NULL;
	s->httpPort = s->http6Port = 0;
	if (strchr(host, ':')) {
		s->port = 0; /* IPv6 only */
		s->ipv6port = port;
		s->listen6Interface = vnc->host;
	} else {
		s->port = port;
		s->ipv6port = 0;
		inet_pton(AF_INET, host, &s->listenInterface);
	}
	rfbInitServer(s);
	if (s->listenSock == RFB_INVALID_SOCKET && s->listen6Sock == RFB_INVALID_SOCKET)
		return husk_fail(err, HUSK_EXIT_HOST, "vnc: cannot listen on %s port %d", host,
		                 port);
	return true;
}

struct vnc_server *vnc_start(const char *addr, struct virtio_gpu *gpu,
                             struct virtio_input *keyboard, struct virtio_input *tablet,
                             GError **err)
{
	struct vnc_server *vnc = g_new0(struct vnc_server, 1);
	int port, argc = 0;

	if (!vnc_parse_address(addr, &vnc->host, &port, err)) {
		g_free(vnc);
		return NULL;
	}
	rfbLog = vnc_log;
	rfbErr = vnc_err;
	vnc->gpu = gpu;
	vnc->keyboard = keyboard;
	vnc->tablet = tablet;
	virtio_gpu_display_size(gpu, &vnc->width, &vnc->height);
	vnc->screen = rfbGetScreen(&argc, NULL, (int)vnc->width, (int)vnc->height, 8, 3, 4);
	if (!vnc->screen) {
		g_free(vnc->host);
		g_free(vnc);
		husk_fail(err, HUSK_EXIT_HOST, "vnc: cannot set up the server");
		return NULL;
	}
	rfbScreenInfoPtr s = vnc->screen;
	/* The pixels as the device keeps them: blue, green, red, unused bytes. */
	s->serverFormat.redShift = 16;
	s->serverFormat.greenShift = 8;
	s->serverFormat.blueShift = 0;
	s->frameBuffer = g_malloc0((size_t)vnc->width * vnc->height * 4);
	s->desktopName = "husk";
	s->alwaysShared = TRUE;
	/* No cursor drawn into the picture: the guest draws its own. */
	s->cursor = NULL;
	s->screenData = vnc;
	s->kbdAddEvent = on_key;
	s->ptrAddEvent = on_pointer;
	if (!listen_on(vnc, vnc->host, port, err)) {
		vnc_stop(vnc);
		return NULL;
	}
	return vnc;
}

void vnc_serve(struct vnc_server *vnc)
{
	if (vnc && !vnc->thread)
		vnc->thread = g_thread_new("husk-vnc", serve, vnc);
}

void vnc_stop(struct vnc_server *vnc)
{
	if (!vnc)
		return;
	atomic_store(&vnc->stop, true);
	if (vnc->thread)
		g_thread_join(vnc->thread);
	rfbShutdownServer(vnc->screen, TRUE);
	g_free(vnc->screen->frameBuffer);
	rfbScreenCleanup(vnc->screen);
	g_free(vnc->host);
	g_free(vnc);
}

#else

bool vnc_available(void)
{
	return false;
}

struct vnc_server *vnc_start(const char *addr, struct virtio_gpu *gpu,
                             struct virtio_input *keyboard, struct virtio_input *tablet,
                             GError **err)
{
	husk_fail(err, HUSK_EXIT_USAGE, "--display vnc: husk was built without libvncserver");
	return NULL;
}

void vnc_serve(struct vnc_server *vnc)
{
}

void vnc_stop(struct vnc_server *vnc)
{
}

#endif
