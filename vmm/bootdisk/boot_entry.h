/* SPDX-License-Identifier: MIT */
/*
 * Boot entries: the default entry of a grub.cfg as grub-mkconfig writes it
 * (not all of GRUB's scripting: what its templates produce), and Boot
 * Loader Specification entries (/loader/entries/NAME.conf).
 */
#ifndef HUSK_BOOTDISK_BOOT_ENTRY_H
#define HUSK_BOOTDISK_BOOT_ENTRY_H

#include <glib.h>
#include <stdbool.h>

/* What a grub.cfg or BLS file may be, at most: a generated grub.cfg is some 10 KiB. */
#define BOOT_CONFIG_MAX (1u << 20)

struct boot_entry {
	char *title;
	char *kernel;       /* the path as written, "(hd0,gpt1)" prefix removed */
	GPtrArray *initrds; /* of char *, in order: Linux reads them concatenated */
	char *options;      /* the kernel's arguments, those naming GRUB variables left out */
	char *search_uuid;  /* the filesystem GRUB's `search --fs-uuid --set=root` picks, or NULL */
};

void boot_entry_clear(struct boot_entry *e);

/*
 * The entry GRUB boots by default: `set default=` as an index, a title or an
 * id (with '>' into submenus), or a variable that 'grubenv' (the text of
 * /boot/grub/grubenv, may be NULL) sets, such as saved_entry. False, with a
 * reason in *err, when the text holds no entry with a kernel.
 */
bool grub_cfg_default_entry(const char *text, size_t len, const char *grubenv,
                            struct boot_entry *out, GError **err);

/*
 * One BLS entry file; false when it names no kernel. *version may be NULL on
 * return. 'grubenv' (may be NULL) gives variables in options their values.
 */
bool bls_entry_parse(const char *text, size_t len, const char *grubenv, struct boot_entry *out,
                     char **version);

#endif
