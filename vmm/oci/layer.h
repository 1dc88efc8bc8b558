/* SPDX-License-Identifier: MIT */
/*
 * Unpacking an image's layers (tar, gzip or zstd) into one root folder:
 * whiteouts and opaque directories as the OCI image spec says, every
 * layer checked against its digest, and nothing written outside the root
 * (no "..", no path through a symbolic link, no hard link out of it).
 */
#ifndef HUSK_OCI_LAYER_H
#define HUSK_OCI_LAYER_H

#include <glib.h>
#include <stdbool.h>

/* Reads up to len bytes of a layer; 0 at its end, -1 with *err set. */
typedef gssize (*oci_read_fn)(void *ctx, void *buf, gsize len, GError **err);

struct oci_unpack;

/*
 * Layers are applied in order onto root (an empty folder that exists).
 * Folder permissions are set once at oci_unpack_finish, so a later layer
 * can still write into a folder an earlier one made read-only.
 */
struct oci_unpack *oci_unpack_new(const char *root, GError **err);
/* digest: "sha256:HEX" of the bytes read (the blob as stored). */
bool oci_unpack_layer(struct oci_unpack *u, oci_read_fn read, void *ctx, const char *digest,
                      GError **err);
/* Finishes the folders' permissions and times; frees u. */
bool oci_unpack_finish(struct oci_unpack *u, GError **err);
/* Gives up (after an error): frees u, leaves root as it is for the caller to remove. */
void oci_unpack_abort(struct oci_unpack *u);

/* A path inside a layer, made relative and plain ("./a//b/" -> "a/b"); NULL if it
 * climbs out (a ".." part) or is empty. */
char *oci_clean_path(const char *path);

/* Opens path under rootfd, never through a symbolic link ("" is rootfd's own folder). */
int oci_open_beneath(int rootfd, const char *path, int flags);

/* Removes dir and everything in it, never following a symbolic link. */
void oci_remove_tree(const char *dir);

/* A digest as "ALGORITHM:HEX" with a known algorithm (sha256, sha512) and hex of its length. */
bool oci_digest_valid(const char *digest);

#endif
