// SPDX-License-Identifier: MIT
/*
 * husk screenshot NAME FILE: what the instance's display (launched with
 * --gpu 2d) shows now, as a PNG file, through the control socket's
 * "screenshot" op, whose reply is followed by the PNG's bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/cli/instances.h"
#include "vmm/error.h"
#include "vmm/instance/control.h"
#include "vmm/instance/instance.h"

/* Far above any display husk offers (4095 x 4095 x 3 bytes, uncompressed). */
#define SCREENSHOT_MAX_BYTES (64u << 20)

static const char png_signature[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};

/* Everything the server sends until it closes, bounded; NULL with 'err' set. */
static GByteArray *read_png(int fd, GError **err)
{
	GByteArray *png = g_byte_array_new();
	char buf[65536];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			husk_fail(err, HUSK_EXIT_RUNTIME, "reading the picture: %s",
			          g_strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (png->len + (size_t)n > SCREENSHOT_MAX_BYTES) {
			husk_fail(err, HUSK_EXIT_RUNTIME, "the picture is larger than %u MiB",
			          SCREENSHOT_MAX_BYTES >> 20);
			break;
		}
		g_byte_array_append(png, (const guint8 *)buf, (guint)n);
	}
	if (!*err && (png->len < sizeof(png_signature) ||
	              memcmp(png->data, png_signature, sizeof(png_signature)) != 0))
		husk_fail(err, HUSK_EXIT_RUNTIME, "the instance sent no PNG");
	if (*err)
		g_clear_pointer(&png, g_byte_array_unref);
	return png;
}

static int usage(int argc, char **argv)
{
	printf(
	    "usage: husk screenshot NAME FILE\n\nWrites what the instance's display shows now "
	    "to FILE, as PNG.\nThe instance needs one: husk launch --gpu 2d.\n\n" INSTANCE_EXIT_TEXT
	    "\n");
	return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : HUSK_EXIT_USAGE;
}

int screenshot_main(int argc, char **argv)
{
	GError *err = NULL;
	GByteArray *png = NULL;

	if (argc != 3 || argv[1][0] == '-')
		return usage(argc, argv);
	struct instance *inst = instance_get(argv[1], &err);
	if (inst && (!instance_exists(inst) || !instance_running_pid(inst)))
		husk_fail(&err, HUSK_EXIT_USAGE, "%s \"%s\"",
		          instance_exists(inst) ? "not running:" : "no instance is called",
		          argv[1]);
	char *sock = inst ? instance_state_path(inst, "control.sock") : NULL;
	int fd = err ? -1 : control_open_stream(sock, "screenshot", &err);
	g_free(sock);
	instance_free(inst);
	if (fd >= 0) {
		png = read_png(fd, &err);
		close(fd);
	}
	GError *why = NULL;
	if (png && !g_file_set_contents(argv[2], (const char *)png->data, png->len, &why)) {
		husk_fail(&err, HUSK_EXIT_RUNTIME, "%s", why->message);
		g_error_free(why);
	}
	if (png)
		g_byte_array_unref(png);
	if (err) {
		g_prefix_error(&err, "screenshot: ");
		return instance_cli_fail(err);
	}
	return 0;
}
