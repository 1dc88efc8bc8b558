/* SPDX-License-Identifier: MIT */
/*
 * cloud-init's NoCloud seed, written by husk itself: a FAT12 volume
 * labelled CIDATA holding meta-data, user-data and vendor-data (with the
 * long names FAT's VFAT entries give them), which cloud-init finds by its
 * label. vfat rather than ISO 9660: Debian's cloud kernels mount both,
 * and FAT12 is a few hundred lines with no library.
 */
#ifndef HUSK_SEED_H
#define HUSK_SEED_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

struct seed_file {
	const char *name; /* at most 13 characters, ASCII */
	const char *data;
	size_t len;
};

#define SEED_LABEL "CIDATA"

/* Writes a new volume at 'path' holding 'files' (at most SEED_MAX_FILES). */
#define SEED_MAX_FILES 8
bool seed_write(const char *path, const struct seed_file *files, size_t nfiles, GError **err);

/* What an instance's seed holds. */
struct seed_instance {
	const char *name, *instance_id;
	const char *ssh_key;   /* NULL: none */
	const char *user_data; /* NULL: none */
	size_t user_len;
	const void *agent; /* husk-agent's binary, or NULL: no agent */
	size_t agent_len;
};

#define SEED_AGENT_FILE "husk-agent"

/*
 * The files for an instance: meta-data (instance-id, hostname = name),
 * husk's vendor-data (a default user "husk" with sudo and, if given,
 * the SSH key; with an agent, a script that installs it from this volume
 * as the systemd service husk-agent.service), user-data, and the agent.
 */
bool seed_write_instance(const char *path, const struct seed_instance *si, GError **err);

#endif
