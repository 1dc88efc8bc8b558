// SPDX-License-Identifier: MIT
/*
 * The window end to end, without a VM: a guest's commands draw into
 * virtio-gpu, the window shows it and its keys, pointer and closing come
 * back. On SDL's offscreen driver, which saves each frame the window
 * presents as a BMP (the picture is checked there); then on X11, with the
 * window thread's system-call list on, where Xvfb is installed.
 */
#include <SDL.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/input-event-codes.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "devices/display/test_gpu.h"
#include "devices/display/window.h"
#include "vmm/seccomp_threads.h"

#define W 64
#define H 48

struct fixture {
	struct test_guest g;
	struct virtio_input *kbd, *tablet;
	struct display_window *w;
	atomic_int closed;
};

static void on_close(void *opaque)
{
	struct fixture *f = opaque;

	atomic_fetch_add(&f->closed, 1);
}

/* Waits up to 5 s for 'done' to hold. */
#define WAIT_FOR(done)                                                                             \
	do {                                                                                       \
		for (int i_ = 0; i_ < 250 && !(done); i_++)                                        \
			g_usleep(20000);                                                           \
	} while (0)

static void open_window(struct fixture *f)
{
	GError *err = NULL;

	memset(f, 0, sizeof(*f));
	g_assert_true(guest_memory_alloc(&f->g.gm, 16 * MiB));
	f->g.gpu = virtio_gpu_new(&f->g.gm, W, H);
	f->kbd = virtio_input_new(INPUT_KEYBOARD);
	f->tablet = virtio_input_new(INPUT_TABLET);
	f->w = window_open("husk test", f->g.gpu, f->kbd, f->tablet, on_close, f, &err);
	g_assert_no_error(err);
	g_assert_nonnull(f->w);
}

static void close_window(struct fixture *f)
{
	window_close(f->w);
	virtio_input_free(f->kbd);
	virtio_input_free(f->tablet);
	virtio_gpu_free(f->g.gpu);
	guest_memory_free(&f->g.gm);
}

static void push_key(SDL_Scancode code, bool down)
{
	SDL_Event ev = {.type = down ? SDL_KEYDOWN : SDL_KEYUP};

	ev.key.state = down ? SDL_PRESSED : SDL_RELEASED;
	ev.key.keysym.scancode = code;
	g_assert_cmpint(SDL_PushEvent(&ev), ==, 1);
}

/* Draws, presses and lets go of A, moves and clicks, closes: each reaches its end. */
static void exercise(struct fixture *f)
{
	test_gpu_draw_halves(&f->g, W, H);
	window_serve(f->w);
	WAIT_FOR(window_frames(f->w) > 0);
	g_assert_cmpuint(window_frames(f->w), >, 0);

	push_key(SDL_SCANCODE_A, true);
	push_key(SDL_SCANCODE_A, false);
	/* Each key with its SYN_REPORT. */
	WAIT_FOR(virtio_input_pending(f->kbd) >= 4);
	g_assert_cmpuint(virtio_input_pending(f->kbd), ==, 4);

	SDL_Event move = {.type = SDL_MOUSEMOTION};
	move.motion.x = 10;
	move.motion.y = 20;
	g_assert_cmpint(SDL_PushEvent(&move), ==, 1);
	WAIT_FOR(virtio_input_pending(f->tablet) > 0);
	g_assert_cmpuint(virtio_input_pending(f->tablet), >, 0);

	SDL_Event quit = {.type = SDL_QUIT};
	g_assert_cmpint(SDL_PushEvent(&quit), ==, 1);
	WAIT_FOR(atomic_load(&f->closed) > 0);
	g_assert_cmpint(atomic_load(&f->closed), ==, 1);
}

/* The last frame the offscreen driver saved in 'dir' (SDL_window<id>-<frame>.bmp). */
static SDL_Surface *last_frame(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;
	char *last = NULL;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)))
		if (g_str_has_suffix(name, ".bmp") && (!last || strcmp(name, last) > 0)) {
			g_free(last);
			last = g_strdup(name);
		}
	g_dir_close(d);
	g_assert_nonnull(last);
	char *path = g_build_filename(dir, last, NULL);
	SDL_Surface *s = SDL_LoadBMP(path);
	g_assert_nonnull(s);
	g_free(path);
	g_free(last);
	return s;
}

static uint32_t rgb_at(SDL_Surface *s, int x, int y)
{
	uint32_t px;
	uint8_t r, g, b;

	g_assert_true(SDL_LockSurface(s) == 0);
	memcpy(&px, (uint8_t *)s->pixels + y * s->pitch + x * s->format->BytesPerPixel,
	       s->format->BytesPerPixel);
	SDL_UnlockSurface(s);
	SDL_GetRGB(px, s->format, &r, &g, &b);
	return (uint32_t)r << 16 | (uint32_t)g << 8 | b;
}

static void test_offscreen(void)
{
	char *dir = g_dir_make_tmp("husk-window-XXXXXX", NULL);
	char *cwd = g_get_current_dir();
	struct fixture f;

	g_setenv("SDL_VIDEODRIVER", "offscreen", TRUE);
	g_setenv("SDL_VIDEO_OFFSCREEN_SAVE_FRAMES", "1", TRUE);
	g_assert_cmpint(chdir(dir), ==, 0);
	open_window(&f);
	exercise(&f);
	close_window(&f);
	g_assert_cmpint(chdir(cwd), ==, 0);
	g_unsetenv("SDL_VIDEO_OFFSCREEN_SAVE_FRAMES");

	SDL_Surface *frame = last_frame(dir);
	g_assert_cmpint(frame->w, ==, W);
	g_assert_cmpint(frame->h, ==, H);
	g_assert_cmphex(rgb_at(frame, 0, 0), ==, 0xff0000);
	g_assert_cmphex(rgb_at(frame, W / 2 - 1, H - 1), ==, 0xff0000);
	g_assert_cmphex(rgb_at(frame, W / 2, 0), ==, 0x0000ff);
	g_assert_cmphex(rgb_at(frame, W - 1, H - 1), ==, 0x0000ff);
	SDL_FreeSurface(frame);

	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;
	while ((name = g_dir_read_name(d))) {
		char *path = g_build_filename(dir, name, NULL);
		g_unlink(path);
		g_free(path);
	}
	g_dir_close(d);
	g_rmdir(dir);
	g_free(dir);
	g_free(cwd);
}

/*
 * Xvfb on a display it picks (-displayfd), gone when its last client is
 * (-terminate, so a failed test leaves none behind); its pid, or 0 where
 * there is none.
 */
static GPid start_xvfb(char *display, size_t len)
{
	char *xvfb = g_find_program_in_path("Xvfb");
	int fds[2];
	GPid pid = 0;

	if (!xvfb || pipe(fds) != 0) {
		g_free(xvfb);
		return 0;
	}
	char fd[16];
	g_snprintf(fd, sizeof(fd), "%d", fds[1]);
	const char *argv[] = {xvfb,      "-displayfd", fd,           "-nolisten", "tcp",
	                      "-screen", "0",          "320x240x24", NULL};
	GError *err = NULL;
	bool ok = g_spawn_async_with_fds(
	    NULL, (char **)argv, NULL, G_SPAWN_LEAVE_DESCRIPTORS_OPEN | G_SPAWN_STDERR_TO_DEV_NULL,
	    NULL, NULL, &pid, -1, -1, -1, &err);
	close(fds[1]);
	char buf[16] = {0};
	ssize_t n = ok ? read(fds[0], buf, sizeof(buf) - 1) : -1;
	close(fds[0]);
	g_clear_error(&err);
	g_free(xvfb);
	if (n <= 0) {
		if (ok)
			kill(pid, SIGTERM);
		return 0;
	}
	g_snprintf(display, len, ":%d", atoi(buf));
	return pid;
}

static void test_x11_confined(void)
{
	char display[16];
	GPid xvfb = start_xvfb(display, sizeof(display));
	struct seccomp_policy policy = {0};
	struct fixture f;

	if (!xvfb) {
		g_test_skip("no Xvfb to open a window on (Debian's xvfb)");
		return;
	}
	g_setenv("SDL_VIDEODRIVER", "x11", TRUE);
	g_setenv("DISPLAY", display, TRUE);
	/* The window thread takes its list at window_serve, as in husk. */
	seccomp_arm(&policy);
	open_window(&f);
	exercise(&f);
	close_window(&f);
	seccomp_disarm();
	kill(xvfb, SIGTERM);
	g_spawn_close_pid(xvfb);
}

static void test_no_display(void)
{
	struct test_guest g;
	GError *err = NULL;

	g_setenv("SDL_VIDEODRIVER", "x11", TRUE);
	g_setenv("DISPLAY", ":4242", TRUE);
	g_assert_true(guest_memory_alloc(&g.gm, 16 * MiB));
	g.gpu = virtio_gpu_new(&g.gm, W, H);
	g_assert_null(window_open("husk", g.gpu, NULL, NULL, NULL, NULL, &err));
	g_assert_nonnull(err);
	g_assert_true(g_str_has_prefix(err->message, "--display window: no display"));
	g_error_free(err);
	virtio_gpu_free(g.gpu);
	guest_memory_free(&g.gm);
}

static void test_keymap(void)
{
	g_assert_cmpuint(window_evdev_code(SDL_SCANCODE_A), ==, KEY_A);
	g_assert_cmpuint(window_evdev_code(SDL_SCANCODE_RETURN), ==, KEY_ENTER);
	g_assert_cmpuint(window_evdev_code(SDL_SCANCODE_LSHIFT), ==, KEY_LEFTSHIFT);
	g_assert_cmpuint(window_evdev_code(SDL_SCANCODE_KP_0), ==, KEY_KP0);
	g_assert_cmpuint(window_evdev_code(SDL_SCANCODE_UNKNOWN), ==, 0);
	g_assert_cmpuint(window_evdev_code(-1), ==, 0);
	g_assert_cmpuint(window_evdev_code(SDL_NUM_SCANCODES), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/window/keymap", test_keymap);
	g_test_add_func("/window/offscreen", test_offscreen);
	g_test_add_func("/window/no-display", test_no_display);
	g_test_add_func("/window/x11-confined", test_x11_confined);
	return g_test_run();
}
