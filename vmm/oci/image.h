/* SPDX-License-Identifier: MIT */
/*
 * A container image on this machine, ready to run: an OCI image layout
 * folder, or an OCI or `docker save` archive, resolved to its linux/amd64
 * manifest and configuration, its layers unpacked into a root folder in
 * husk's cache ($HUSK_HOME/oci). A registry would be one more source.
 */
#ifndef HUSK_OCI_IMAGE_H
#define HUSK_OCI_IMAGE_H

#include <glib.h>

#include "vmm/oci/spec.h"

struct oci_image {
	char *root; /* the unpacked root, read-only by convention: shared by every run */
	struct oci_config config;
};

/*
 * ref: PATH or PATH:TAG. With no tag, the image's only one, else the one
 * tagged "latest". Errors are one line, their code HUSK_EXIT_USAGE for a bad
 * image and HUSK_EXIT_RUNTIME for the cache.
 */
struct oci_image *oci_image_open(const char *ref, GError **err);
void oci_image_free(struct oci_image *img);

/* $HUSK_HOME/oci: where unpacked roots are kept. */
char *oci_cache_dir(void);

#endif
