// SPDX-License-Identifier: MIT
/*
 * The layer unpacker: the input is a layer (tar, gzip or zstd), unpacked
 * onto a fresh root (its digest computed, so unpacking goes all the way)
 * in a folder that also holds a canary file. Whatever the layer holds,
 * the canary must stay as it was, with no second name: else abort().
 * The folder is made once per process (fuzz_dir.h), the root in it
 * emptied after each input.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/fuzz/fuzz_dir.h"
#include "vmm/oci/layer.h"

struct input {
	const uint8_t *data;
	size_t size, done;
};

static gssize read_input(void *ctx, void *buf, gsize len, GError **err)
{
	struct input *in = ctx;
	size_t n = MIN(len, in->size - in->done);

	memcpy(buf, in->data + in->done, n);
	in->done += n;
	return (gssize)n;
}

static char *top, *canary;

static void check_canary(void)
{
	char *text = NULL;
	struct stat st;

	if (!g_file_get_contents(canary, &text, NULL, NULL) || strcmp(text, "sing") ||
	    stat(canary, &st) || st.st_nlink != 1)
		abort();
	g_free(text);
}

static void remove_top(void)
{
	oci_remove_tree(top);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!top) {
		top = fuzz_make_dir("husk-layer-fuzz-XXXXXX");
		atexit(remove_top);
		canary = g_build_filename(top, "canary", NULL);
		g_file_set_contents(canary, "sing", -1, NULL);
	}
	char *root = g_build_filename(top, "root", NULL);
	char *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, size);
	char *digest = g_strdup_printf("sha256:%s", hex);
	struct input in = {data, size, 0};

	g_mkdir(root, 0755);
	struct oci_unpack *u = oci_unpack_new(root, NULL);
	if (u && oci_unpack_layer(u, read_input, &in, digest, NULL))
		oci_unpack_finish(u, NULL);
	else
		oci_unpack_abort(u);
	check_canary();
	oci_remove_tree(root);
	g_free(digest);
	g_free(hex);
	g_free(root);
	return 0;
}
