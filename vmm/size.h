/* SPDX-License-Identifier: MIT */
#ifndef HUSK_SIZE_H
#define HUSK_SIZE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Parses a memory size as users write it: "512M", "2G", "1.5G" is not
 * accepted (no fractions), "512MiB" and "512m" are. A bare number means
 * MiB, as in QEMU's -m. Returns false on anything else or on overflow.
 */
bool size_parse(const char *text, uint64_t *bytes);

#endif
