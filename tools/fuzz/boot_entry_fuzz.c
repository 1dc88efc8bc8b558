// SPDX-License-Identifier: MIT
/*
 * The boot entry parsers: the input is a grub.cfg, then, after a NUL, a
 * grubenv; the grub.cfg's text is also read as a BLS entry.
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "vmm/bootdisk/boot_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(data, '\0', size);
	size_t len = nul ? (size_t)(nul - text) : size;
	char *grubenv = nul ? g_strndup(nul + 1, size - len - 1) : NULL;
	struct boot_entry e = {0};
	char *version = NULL;
	GError *err = NULL;

	if (grub_cfg_default_entry(text, len, grubenv, &e, &err))
		boot_entry_clear(&e);
	g_clear_error(&err);
	if (bls_entry_parse(text, len, grubenv, &e, &version))
		boot_entry_clear(&e);
	g_free(version);
	g_free(grubenv);
	return 0;
}
