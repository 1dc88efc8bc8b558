// SPDX-License-Identifier: MIT
#include "devices/display/window.h"

#include <linux/input-event-codes.h>
#include <stdatomic.h>

#include "vmm/error.h"
#include "vmm/seccomp_threads.h"

#ifdef HAVE_SDL2

#include <SDL.h>
#include <dlfcn.h>

/*
 * SDL is loaded when a window is asked for, not linked: husk on a server
 * then needs none of the desktop's libraries it brings (X11, Wayland,
 * sound), and the package only suggests it.
 */
#define SDL_LIBRARY "libSDL2-2.0.so.0"
#define SDL_CALLS(X)                                                                               \
	X(SetHint)                                                                                 \
	X(InitSubSystem)                                                                           \
	X(QuitSubSystem)                                                                           \
	X(GetError)                                                                                \
	X(CreateWindow)                                                                            \
	X(DestroyWindow)                                                                           \
	X(GetWindowSurface)                                                                        \
	X(UpdateWindowSurfaceRects)                                                                \
	X(CreateRGBSurfaceWithFormatFrom)                                                          \
	X(FreeSurface)                                                                             \
	X(UpperBlit)                                                                               \
	X(WaitEventTimeout)                                                                        \
	X(PollEvent)                                                                               \
	X(GetMouseState)                                                                           \
	X(TLSCleanup)

static struct {
#define SDL_POINTER(name) __typeof__(SDL_##name) *name;
	SDL_CALLS(SDL_POINTER)
#undef SDL_POINTER
} sdl;

/* Once per process; the library stays loaded. */
static bool load_sdl(char **error)
{
	static GMutex lock;
	static bool loaded;
	void *lib;

	g_mutex_lock(&lock);
	if (loaded)
		goto out;
	lib = dlopen(SDL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		*error = g_strdup_printf("--display window: cannot load SDL2 (%s): install "
		                         "libsdl2-2.0-0",
		                         dlerror());
		goto out;
	}
#define SDL_LOAD(name)                                                                             \
	if (!(sdl.name = dlsym(lib, "SDL_" #name))) {                                              \
		*error = g_strdup_printf("--display window: %s has no SDL_" #name, SDL_LIBRARY);   \
		goto out;                                                                          \
	}
	SDL_CALLS(SDL_LOAD)
#undef SDL_LOAD
	loaded = true;
out:
	g_mutex_unlock(&lock);
	return loaded;
}

#define PASS_MS 20 /* a pass of the loop: how late a flush reaches the window, at most */

/* VNC's button bits (virtio_input_pointer), which SDL's masks share for the first three. */
#define WHEEL_UP   (1u << 3)
#define WHEEL_DOWN (1u << 4)

enum window_state { WINDOW_OPENING, WINDOW_OPEN, WINDOW_FAILED };

struct display_window {
	struct virtio_gpu *gpu;
	struct virtio_input *keyboard, *tablet;
	void (*on_close)(void *);
	void *opaque;
	char *title;
	uint32_t width, height;
	uint8_t *fb; /* what the guest shows, as virtio_gpu_take_damage copies it */
	GThread *thread;
	GMutex lock;
	GCond cond;
	enum window_state state; /* under lock */
	char *error;             /* under lock: why it failed */
	bool serve;              /* under lock: window_serve was called */
	atomic_bool stop;
	atomic_uint frames;
	unsigned int buttons; /* held, as VNC says them */
};

bool window_available(void)
{
	return true;
}

/* The window's thread: SDL's video, and the window showing the display. */
static SDL_Window *open_sdl(struct display_window *w, char **error)
{
	if (!load_sdl(error))
		return NULL;
	/* husk's own SIGINT and SIGTERM handling stays husk's. */
	sdl.SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
	sdl.SetHint(SDL_HINT_VIDEO_ALLOW_SCREENSAVER, "1");
	/*
	 * The display server's own shared-memory images, never a GL renderer
	 * behind the window's surface: no GPU driver in husk's process.
	 */
	sdl.SetHint(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0");
	sdl.SetHint(SDL_HINT_APP_NAME, "husk");
	if (sdl.InitSubSystem(SDL_INIT_VIDEO) != 0) {
		*error = g_strdup_printf("--display window: no display to open a window on (%s)",
		                         sdl.GetError());
		return NULL;
	}
	SDL_Window *win =
	    sdl.CreateWindow(w->title, SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED,
	                     (int)w->width, (int)w->height, 0);
	if (!win || !sdl.GetWindowSurface(win)) {
		*error =
		    g_strdup_printf("--display window: cannot open a window: %s", sdl.GetError());
		if (win)
			sdl.DestroyWindow(win);
		sdl.QuitSubSystem(SDL_INIT_VIDEO);
		return NULL;
	}
	return win;
}

static void send_pointer(struct display_window *w, int x, int y)
{
	if (w->tablet)
		virtio_input_pointer(w->tablet, (uint32_t)MAX(x, 0), (uint32_t)MAX(y, 0), w->width,
		                     w->height, w->buttons);
}

/* A wheel notch: VNC's way, the wheel's button pressed and let go. */
static void send_wheel(struct display_window *w, int dy)
{
	int x, y;
	unsigned int wheel = dy > 0 ? WHEEL_UP : WHEEL_DOWN;

	sdl.GetMouseState(&x, &y);
	w->buttons |= wheel;
	send_pointer(w, x, y);
	w->buttons &= ~wheel;
	send_pointer(w, x, y);
}

static unsigned int button_bit(uint8_t button)
{
	switch (button) {
	case SDL_BUTTON_LEFT:
		return 1u << 0;
	case SDL_BUTTON_MIDDLE:
		return 1u << 1;
	case SDL_BUTTON_RIGHT:
		return 1u << 2;
	default:
		return 0;
	}
}

/* One event; true if the window must be drawn again whole. */
static bool handle_event(struct display_window *w, const SDL_Event *ev)
{
	switch (ev->type) {
	case SDL_QUIT:
		if (w->on_close)
			w->on_close(w->opaque);
		return false;
	case SDL_KEYDOWN:
	case SDL_KEYUP:
		/* The guest repeats a held key itself. */
		if (!ev->key.repeat && w->keyboard) {
			uint16_t code = window_evdev_code(ev->key.keysym.scancode);
			if (code)
				virtio_input_key(w->keyboard, code, ev->type == SDL_KEYDOWN);
		}
		return false;
	case SDL_MOUSEMOTION:
		send_pointer(w, ev->motion.x, ev->motion.y);
		return false;
	case SDL_MOUSEBUTTONDOWN:
	case SDL_MOUSEBUTTONUP:
		if (ev->type == SDL_MOUSEBUTTONDOWN)
			w->buttons |= button_bit(ev->button.button);
		else
			w->buttons &= ~button_bit(ev->button.button);
		send_pointer(w, ev->button.x, ev->button.y);
		return false;
	case SDL_MOUSEWHEEL:
		if (ev->wheel.y)
			send_wheel(w, ev->wheel.y);
		return false;
	case SDL_WINDOWEVENT:
		return ev->window.event == SDL_WINDOWEVENT_EXPOSED ||
		       ev->window.event == SDL_WINDOWEVENT_SIZE_CHANGED;
	default:
		return false;
	}
}

/* Copies rectangle 'r' of the display into the window and shows it. */
static void draw(struct display_window *w, SDL_Window *win, SDL_Surface *display,
                 const struct gpu_rect *r)
{
	SDL_Surface *surface = sdl.GetWindowSurface(win);
	SDL_Rect rect = {(int)r->x, (int)r->y, (int)r->width, (int)r->height};

	if (!surface || sdl.UpperBlit(display, &rect, surface, &rect) != 0 ||
	    sdl.UpdateWindowSurfaceRects(win, &rect, 1) != 0) {
		g_debug("window: cannot draw: %s", sdl.GetError());
		return;
	}
	atomic_fetch_add(&w->frames, 1);
}

static void serve(struct display_window *w, SDL_Window *win)
{
	/* The device's pixels: blue, green, red, unused bytes; SDL's XRGB8888 on little-endian. */
	SDL_Surface *display = sdl.CreateRGBSurfaceWithFormatFrom(
	    w->fb, (int)w->width, (int)w->height, 32, (int)w->width * 4, SDL_PIXELFORMAT_XRGB8888);
	const struct gpu_rect all = {0, 0, w->width, w->height};
	struct gpu_rect r;
	SDL_Event ev;

	if (!display) {
		g_printerr("husk: window: %s\n", sdl.GetError());
		return;
	}
	while (!atomic_load(&w->stop)) {
		bool redraw = false;

		if (sdl.WaitEventTimeout(&ev, PASS_MS)) {
			redraw |= handle_event(w, &ev);
			while (sdl.PollEvent(&ev))
				redraw |= handle_event(w, &ev);
		}
		if (virtio_gpu_take_damage(w->gpu, w->fb, &r))
			draw(w, win, display, redraw ? &all : &r);
		else if (redraw)
			draw(w, win, display, &all);
	}
	sdl.FreeSurface(display);
}

static gpointer run(gpointer data)
{
	struct display_window *w = data;
	char *error = NULL;
	SDL_Window *win = open_sdl(w, &error);

	g_mutex_lock(&w->lock);
	w->state = win ? WINDOW_OPEN : WINDOW_FAILED;
	w->error = error;
	g_cond_broadcast(&w->cond);
	while (win && !w->serve && !atomic_load(&w->stop))
		g_cond_wait(&w->cond, &w->lock);
	g_mutex_unlock(&w->lock);
	if (!win) {
		if (sdl.TLSCleanup) /* NULL if SDL did not load */
			sdl.TLSCleanup();
		return NULL;
	}
	if (!atomic_load(&w->stop)) {
		seccomp_thread_enter_or_exit(SECCOMP_THREAD_WINDOW);
		serve(w, win);
	}
	sdl.DestroyWindow(win);
	sdl.QuitSubSystem(SDL_INIT_VIDEO);
	sdl.TLSCleanup(); /* SDL's per-thread data (its error text), which outlives the thread */
	return NULL;
}

struct display_window *window_open(const char *title, struct virtio_gpu *gpu,
                                   struct virtio_input *keyboard, struct virtio_input *tablet,
                                   void (*on_close)(void *), void *opaque, GError **err)
{
	struct display_window *w = g_new0(struct display_window, 1);

	w->gpu = gpu;
	w->keyboard = keyboard;
	w->tablet = tablet;
	w->on_close = on_close;
	w->opaque = opaque;
	w->title = g_strdup(title);
	virtio_gpu_display_size(gpu, &w->width, &w->height);
	w->fb = g_malloc0((size_t)w->width * w->height * 4);
	g_mutex_init(&w->lock);
	g_cond_init(&w->cond);
	w->thread = g_thread_new("husk-window", run, w);
	g_mutex_lock(&w->lock);
	while (w->state == WINDOW_OPENING)
		g_cond_wait(&w->cond, &w->lock);
	g_mutex_unlock(&w->lock);
	if (w->state == WINDOW_FAILED) {
		husk_fail(err, HUSK_EXIT_HOST, "%s", w->error);
		window_close(w);
		return NULL;
	}
	return w;
}

void window_serve(struct display_window *w)
{
	if (!w)
		return;
	g_mutex_lock(&w->lock);
	w->serve = true;
	g_cond_broadcast(&w->cond);
	g_mutex_unlock(&w->lock);
}

void window_close(struct display_window *w)
{
	if (!w)
		return;
	g_mutex_lock(&w->lock);
	atomic_store(&w->stop, true);
	g_cond_broadcast(&w->cond);
	g_mutex_unlock(&w->lock);
	g_thread_join(w->thread);
	g_mutex_clear(&w->lock);
	g_cond_clear(&w->cond);
	g_free(w->error);
	g_free(w->title);
	g_free(w->fb);
	g_free(w);
}

unsigned int window_frames(struct display_window *w)
{
	return atomic_load(&w->frames);
}

/* SDL's scancodes are USB HID usages (HID Usage Tables, section 10): their evdev keys. */
static const uint16_t evdev_of_scancode[SDL_NUM_SCANCODES] = {
    [SDL_SCANCODE_A] = KEY_A,
    [SDL_SCANCODE_B] = KEY_B,
    [SDL_SCANCODE_C] = KEY_C,
    [SDL_SCANCODE_D] = KEY_D,
    [SDL_SCANCODE_E] = KEY_E,
    [SDL_SCANCODE_F] = KEY_F,
    [SDL_SCANCODE_G] = KEY_G,
    [SDL_SCANCODE_H] = KEY_H,
    [SDL_SCANCODE_I] = KEY_I,
    [SDL_SCANCODE_J] = KEY_J,
    [SDL_SCANCODE_K] = KEY_K,
    [SDL_SCANCODE_L] = KEY_L,
    [SDL_SCANCODE_M] = KEY_M,
    [SDL_SCANCODE_N] = KEY_N,
    [SDL_SCANCODE_O] = KEY_O,
    [SDL_SCANCODE_P] = KEY_P,
    [SDL_SCANCODE_Q] = KEY_Q,
    [SDL_SCANCODE_R] = KEY_R,
    [SDL_SCANCODE_S] = KEY_S,
    [SDL_SCANCODE_T] = KEY_T,
    [SDL_SCANCODE_U] = KEY_U,
    [SDL_SCANCODE_V] = KEY_V,
    [SDL_SCANCODE_W] = KEY_W,
    [SDL_SCANCODE_X] = KEY_X,
    [SDL_SCANCODE_Y] = KEY_Y,
    [SDL_SCANCODE_Z] = KEY_Z,
    [SDL_SCANCODE_1] = KEY_1,
    [SDL_SCANCODE_2] = KEY_2,
    [SDL_SCANCODE_3] = KEY_3,
    [SDL_SCANCODE_4] = KEY_4,
    [SDL_SCANCODE_5] = KEY_5,
    [SDL_SCANCODE_6] = KEY_6,
    [SDL_SCANCODE_7] = KEY_7,
    [SDL_SCANCODE_8] = KEY_8,
    [SDL_SCANCODE_9] = KEY_9,
    [SDL_SCANCODE_0] = KEY_0,
    [SDL_SCANCODE_RETURN] = KEY_ENTER,
    [SDL_SCANCODE_ESCAPE] = KEY_ESC,
    [SDL_SCANCODE_BACKSPACE] = KEY_BACKSPACE,
    [SDL_SCANCODE_TAB] = KEY_TAB,
    [SDL_SCANCODE_SPACE] = KEY_SPACE,
    [SDL_SCANCODE_MINUS] = KEY_MINUS,
    [SDL_SCANCODE_EQUALS] = KEY_EQUAL,
    [SDL_SCANCODE_LEFTBRACKET] = KEY_LEFTBRACE,
    [SDL_SCANCODE_RIGHTBRACKET] = KEY_RIGHTBRACE,
    [SDL_SCANCODE_BACKSLASH] = KEY_BACKSLASH,
    [SDL_SCANCODE_NONUSHASH] = KEY_BACKSLASH,
    [SDL_SCANCODE_SEMICOLON] = KEY_SEMICOLON,
    [SDL_SCANCODE_APOSTROPHE] = KEY_APOSTROPHE,
    [SDL_SCANCODE_GRAVE] = KEY_GRAVE,
    [SDL_SCANCODE_COMMA] = KEY_COMMA,
    [SDL_SCANCODE_PERIOD] = KEY_DOT,
    [SDL_SCANCODE_SLASH] = KEY_SLASH,
    [SDL_SCANCODE_CAPSLOCK] = KEY_CAPSLOCK,
    [SDL_SCANCODE_F1] = KEY_F1,
    [SDL_SCANCODE_F2] = KEY_F2,
    [SDL_SCANCODE_F3] = KEY_F3,
    [SDL_SCANCODE_F4] = KEY_F4,
    [SDL_SCANCODE_F5] = KEY_F5,
    [SDL_SCANCODE_F6] = KEY_F6,
    [SDL_SCANCODE_F7] = KEY_F7,
    [SDL_SCANCODE_F8] = KEY_F8,
    [SDL_SCANCODE_F9] = KEY_F9,
    [SDL_SCANCODE_F10] = KEY_F10,
    [SDL_SCANCODE_F11] = KEY_F11,
    [SDL_SCANCODE_F12] = KEY_F12,
    [SDL_SCANCODE_PRINTSCREEN] = KEY_SYSRQ,
    [SDL_SCANCODE_SCROLLLOCK] = KEY_SCROLLLOCK,
    [SDL_SCANCODE_PAUSE] = KEY_PAUSE,
    [SDL_SCANCODE_INSERT] = KEY_INSERT,
    [SDL_SCANCODE_HOME] = KEY_HOME,
    [SDL_SCANCODE_PAGEUP] = KEY_PAGEUP,
    [SDL_SCANCODE_DELETE] = KEY_DELETE,
    [SDL_SCANCODE_END] = KEY_END,
    [SDL_SCANCODE_PAGEDOWN] = KEY_PAGEDOWN,
    [SDL_SCANCODE_RIGHT] = KEY_RIGHT,
    [SDL_SCANCODE_LEFT] = KEY_LEFT,
    [SDL_SCANCODE_DOWN] = KEY_DOWN,
    [SDL_SCANCODE_UP] = KEY_UP,
    [SDL_SCANCODE_NUMLOCKCLEAR] = KEY_NUMLOCK,
    [SDL_SCANCODE_KP_DIVIDE] = KEY_KPSLASH,
    [SDL_SCANCODE_KP_MULTIPLY] = KEY_KPASTERISK,
    [SDL_SCANCODE_KP_MINUS] = KEY_KPMINUS,
    [SDL_SCANCODE_KP_PLUS] = KEY_KPPLUS,
    [SDL_SCANCODE_KP_ENTER] = KEY_KPENTER,
    [SDL_SCANCODE_KP_1] = KEY_KP1,
    [SDL_SCANCODE_KP_2] = KEY_KP2,
    [SDL_SCANCODE_KP_3] = KEY_KP3,
    [SDL_SCANCODE_KP_4] = KEY_KP4,
    [SDL_SCANCODE_KP_5] = KEY_KP5,
    [SDL_SCANCODE_KP_6] = KEY_KP6,
    [SDL_SCANCODE_KP_7] = KEY_KP7,
    [SDL_SCANCODE_KP_8] = KEY_KP8,
    [SDL_SCANCODE_KP_9] = KEY_KP9,
    [SDL_SCANCODE_KP_0] = KEY_KP0,
    [SDL_SCANCODE_KP_PERIOD] = KEY_KPDOT,
    [SDL_SCANCODE_NONUSBACKSLASH] = KEY_102ND,
    [SDL_SCANCODE_APPLICATION] = KEY_COMPOSE,
    [SDL_SCANCODE_KP_EQUALS] = KEY_KPEQUAL,
    [SDL_SCANCODE_LCTRL] = KEY_LEFTCTRL,
    [SDL_SCANCODE_LSHIFT] = KEY_LEFTSHIFT,
    [SDL_SCANCODE_LALT] = KEY_LEFTALT,
    [SDL_SCANCODE_LGUI] = KEY_LEFTMETA,
    [SDL_SCANCODE_RCTRL] = KEY_RIGHTCTRL,
    [SDL_SCANCODE_RSHIFT] = KEY_RIGHTSHIFT,
    [SDL_SCANCODE_RALT] = KEY_RIGHTALT,
    [SDL_SCANCODE_RGUI] = KEY_RIGHTMETA,
};

uint16_t window_evdev_code(int scancode)
{
	if (scancode < 0 || scancode >= SDL_NUM_SCANCODES)
		return 0;
	return evdev_of_scancode[scancode];
}

#else

bool window_available(void)
{
	return false;
}

struct display_window *window_open(const char *title, struct virtio_gpu *gpu,
                                   struct virtio_input *keyboard, struct virtio_input *tablet,
                                   void (*on_close)(void *), void *opaque, GError **err)
{
	husk_fail(err, HUSK_EXIT_USAGE, "--display window: husk was built without SDL2");
	return NULL;
}

void window_serve(struct display_window *w)
{
}

void window_close(struct display_window *w)
{
}

uint16_t window_evdev_code(int scancode)
{
	return 0;
}

unsigned int window_frames(struct display_window *w)
{
	return 0;
}

#endif
