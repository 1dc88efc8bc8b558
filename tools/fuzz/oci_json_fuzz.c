// SPDX-License-Identifier: MIT
/*
 * An image's JSON documents: the input is read as an OCI index, a manifest,
 * an image configuration and a `docker save` manifest.json, in turn.
 */
#include <glib.h>
#include <stdint.h>

#include "vmm/oci/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct oci_descriptor config;
	struct oci_config c;
	GPtrArray *list, *layers;

	if ((list = oci_index_parse(text, size, NULL)))
		g_ptr_array_unref(list);
	if (oci_manifest_parse(text, size, &config, &layers, NULL)) {
		oci_descriptor_clear(&config);
		g_ptr_array_unref(layers);
	}
	if (oci_config_parse(text, size, &c, NULL))
		oci_config_clear(&c);
	if ((list = docker_manifest_parse(text, size, NULL)))
		g_ptr_array_unref(list);
	return 0;
}
