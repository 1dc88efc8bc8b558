// SPDX-License-Identifier: MIT
/*
 * bootdisk_find: the search (find.c) run in the sandbox (sandbox.c), its
 * kernel and initrd streamed to this process as it reads them.
 */
#include "vmm/bootdisk/bootdisk.h"

#include <string.h>

#include "vmm/bootdisk/find.h"
#include "vmm/bootdisk/sandbox.h"
#include "vmm/error.h"

/* Long enough for a 1 GiB initrd from a slow disk; a hung parser is not waited on longer. */
#define BOOTDISK_TIMEOUT_MS 30000

static bool send_kernel(void *opaque, const void *buf, size_t len)
{
	return sandbox_send(*(int *)opaque, SANDBOX_KERNEL, 0, buf, len);
}

static bool send_initrd(void *opaque, const void *buf, size_t len)
{
	return sandbox_send(*(int *)opaque, SANDBOX_INITRD, 0, buf, len);
}

static bool send_text(int fd, enum sandbox_msg_type type, uint64_t arg, const char *text,
                      size_t max)
{
	return sandbox_send(fd, type, arg, text, MIN(strlen(text), max));
}

/* Runs in the sandboxed child. */
static void search_in_child(const struct bootdisk_reader *image, int fd)
{
	struct boot_sink sink = {send_kernel, send_initrd, &fd};
	g_autofree char *cmdline = NULL, *description = NULL;
	g_autoptr(GError) err = NULL;

	if (!bootdisk_search(image, &sink, &cmdline, &description, &err)) {
		send_text(fd, SANDBOX_ERROR, (uint64_t)err->code, err->message, SANDBOX_ERROR_MAX);
		return;
	}
	if (strlen(cmdline) >= BOOTDISK_CMDLINE_MAX) {
		static const char too_long[] =
		    "the kernel command line in the disk image is too long";

		send_text(fd, SANDBOX_ERROR, HUSK_EXIT_USAGE, too_long, sizeof(too_long));
		return;
	}
	send_text(fd, SANDBOX_CMDLINE, 0, cmdline, BOOTDISK_CMDLINE_MAX - 1);
	send_text(fd, SANDBOX_DESCRIPTION, 0, description, BOOTDISK_DESCRIPTION_MAX);
	sandbox_send(fd, SANDBOX_DONE, 0, NULL, 0);
}

bool bootdisk_find_within(const struct bootdisk_reader *r, unsigned timeout_ms,
                          struct boot_choice *out, GError **err)
{
	return sandbox_run(r, search_in_child, timeout_ms, out, err);
}

bool bootdisk_find(const struct bootdisk_reader *r, struct boot_choice *out, GError **err)
{
	return bootdisk_find_within(r, BOOTDISK_TIMEOUT_MS, out, err);
}

void boot_choice_clear(struct boot_choice *c)
{
	if (c->kernel)
		g_bytes_unref(c->kernel);
	if (c->initrd)
		g_bytes_unref(c->initrd);
	g_free(c->cmdline);
	g_free(c->description);
	memset(c, 0, sizeof(*c));
}
