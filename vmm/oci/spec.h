/* SPDX-License-Identifier: MIT */
/*
 * The JSON documents of an OCI image (image-spec v1) and of `docker save`:
 * an index, a manifest, the image's configuration, Docker's manifest.json.
 * Each parser takes untrusted bytes and gives plain data or one error line.
 */
#ifndef HUSK_OCI_SPEC_H
#define HUSK_OCI_SPEC_H

#include <glib.h>
#include <stdbool.h>

#define OCI_JSON_MAX       (4 * 1024 * 1024) /* bigger is not an index, manifest or config */
#define OCI_JSON_MAX_DEPTH 64

/* A pointer to a blob, as an index or manifest lists them. */
struct oci_descriptor {
	char *media_type, *digest;
	gint64 size;
	char *ref_name;          /* annotation org.opencontainers.image.ref.name */
	char *os, *architecture; /* platform, if given */
};

struct oci_config {
	char **env, **entrypoint, **cmd; /* NULL when the image sets none */
	char *working_dir, *user;
	char *os, *architecture;
	char **diff_ids;
};

/* One image in a `docker save` archive's manifest.json. */
struct docker_image {
	char *config;     /* a path in the archive */
	char **repo_tags; /* "name:tag" */
	char **layers;    /* paths in the archive */
};

/* Index: its manifests (struct oci_descriptor *). */
GPtrArray *oci_index_parse(const char *data, gsize len, GError **err);
/* Manifest: its config descriptor and layers (struct oci_descriptor *). */
bool oci_manifest_parse(const char *data, gsize len, struct oci_descriptor *config,
                        GPtrArray **layers, GError **err);
bool oci_config_parse(const char *data, gsize len, struct oci_config *out, GError **err);
/* manifest.json: its images (struct docker_image *). */
GPtrArray *docker_manifest_parse(const char *data, gsize len, GError **err);

/* Whether a document is an index (it lists "manifests") rather than a manifest. */
bool oci_is_index(const struct oci_descriptor *d);

void oci_descriptor_clear(struct oci_descriptor *d);
void oci_descriptor_free(gpointer d);
void oci_config_clear(struct oci_config *c);
void docker_image_free(gpointer d);

#endif
