// SPDX-License-Identifier: MIT
/* The partition table reader (GPT, MBR and its logical partitions) on a disk the input is. */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "vmm/bootdisk/partition.h"

struct disk {
	const uint8_t *data;
	size_t size;
};

static bool read_disk(void *opaque, void *buf, size_t len, uint64_t off)
{
	const struct disk *d = opaque;

	memcpy(buf, d->data + off, len); /* off + len <= size: the reader's promise */
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct partition parts[PARTITION_MAX];
	struct disk d = {data, size};
	struct bootdisk_reader r = {.read = read_disk, .size = size, .opaque = &d};
	GError *err = NULL;
	int count = 0;

	if (partition_read(&r, parts, &count, &err) && (count < 0 || count > PARTITION_MAX))
		abort();
	for (int i = 0; i < count; i++)
		if (parts[i].offset > size || parts[i].size > size - parts[i].offset)
			abort(); /* a partition must lie inside the disk */
	g_clear_error(&err);
	return 0;
}
