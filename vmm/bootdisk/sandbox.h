/* SPDX-License-Identifier: MIT */
/*
 * A forked child that parses the image under a system-call filter: it may
 * only read and write the socket it shares with this process, and map
 * memory (never executable). It asks for the image's bytes ("len at off")
 * and sends back the kernel, initrd, command line and description in
 * bounded messages, which this process checks.
 */
#ifndef HUSK_BOOTDISK_SANDBOX_H
#define HUSK_BOOTDISK_SANDBOX_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bootdisk/bootdisk.h"

/* Every message starts with this header; 'len' bytes follow, except after SANDBOX_READ. */
struct sandbox_msg {
	uint32_t type;
	uint32_t len;
	uint64_t arg; /* SANDBOX_READ: the offset; SANDBOX_ERROR: a husk exit status */
};

enum sandbox_msg_type {
	/* child to parent */
	SANDBOX_READ = 1, /* "len bytes at arg", answered by SANDBOX_DATA or SANDBOX_READ_FAILED */
	SANDBOX_KERNEL,   /* the next piece of the kernel */
	SANDBOX_INITRD,   /* the next piece of the initrd */
	SANDBOX_CMDLINE,
	SANDBOX_DESCRIPTION,
	SANDBOX_ERROR, /* a one-line reason: the search failed */
	SANDBOX_DONE,
	/* parent to child */
	SANDBOX_DATA,
	SANDBOX_READ_FAILED,
};

#define SANDBOX_PIECE_MAX (1u << 20) /* bytes of one message */
#define SANDBOX_ERROR_MAX 1024       /* of a SANDBOX_ERROR's text */

/* The child's work: it reads the image through 'image' and answers on 'fd'. */
typedef void (*sandbox_child_fn)(const struct bootdisk_reader *image, int fd);

/*
 * Runs 'child' in the sandbox, serving its reads from 'r', and fills 'out'
 * from its answer. A child that crashes, hangs past 'timeout_ms' or sends
 * anything malformed is one error.
 */
bool sandbox_run(const struct bootdisk_reader *r, sandbox_child_fn child, unsigned timeout_ms,
                 struct boot_choice *out, GError **err);

/* For the child: sends one message; false when the parent is gone. */
bool sandbox_send(int fd, enum sandbox_msg_type type, uint64_t arg, const void *buf, size_t len);

#endif
