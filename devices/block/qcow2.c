// SPDX-License-Identifier: MIT
/* qcow2 (QEMU's docs/interop/qcow2.txt): detected here, opened by the next commit. */
#include "devices/block/block.h"

#include <string.h>
#include <unistd.h>

#include "vmm/error.h"

static bool qcow2_probe(const uint8_t *head, size_t len)
{
	return len >= 4 && memcmp(head, "QFI\xfb", 4) == 0;
}

static struct block_backend *qcow2_open(int fd, const char *path,
                                        const struct block_open_options *o,
                                        struct block_chain *chain, GError **err)
{
	close(fd);
	husk_fail(err, HUSK_EXIT_USAGE, "%s: qcow2 is not supported yet", path);
	return NULL;
}

const struct block_format block_qcow2 = {
    .name = "qcow2",
    .probe = qcow2_probe,
    .open = qcow2_open,
};
