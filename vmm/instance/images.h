/* SPDX-License-Identifier: MIT */
/*
 * Base images for instances: a local file as it is, or an http(s):// URL
 * or an alias (debian-12, ubuntu-24.04, ...) downloaded once into the
 * image cache with libcurl: resumed after an interruption, and checked
 * against the checksum the distribution publishes beside the image (or
 * --sha256) before it enters the cache, so a bad download never does.
 */
#ifndef HUSK_IMAGES_H
#define HUSK_IMAGES_H

#include <glib.h>

struct image_alias {
	const char *name;
	const char *path; /* under the distribution's base URL */
	const char *sums; /* the checksum list beside it */
	const char *base; /* the base URL; HUSK_IMAGE_BASE replaces it */
};

/* The known aliases, ending with a NULL name. */
extern const struct image_alias image_aliases[];

/* The alias called 'name', or NULL. */
const struct image_alias *images_find_alias(const char *name);

/* The alias's image URL and checksum-list URL (HUSK_IMAGE_BASE honoured). */
char *images_alias_url(const struct image_alias *a, const char *file);

/*
 * The local path of 'image' (a file, a URL or an alias), downloading it
 * into the cache if need be. 'sha256' (hex, may be NULL) overrides the
 * published checksum. Errors are one line: HUSK_EXIT_USAGE for a missing
 * file, an unknown alias or a checksum that does not match,
 * HUSK_EXIT_RUNTIME for a download that failed.
 */
char *images_fetch(const char *image, const char *sha256, GError **err);

/* The checksum 'sums' (a SHA256SUMS or SHA512SUMS text) gives for 'file', or NULL. */
char *images_sum_for(const char *sums, const char *file);

#endif
