/* SPDX-License-Identifier: MIT */
/*
 * The one piece of the PC keyboard controller a guest needs from husk: the
 * reset line, pulsed by command 0xfe on port 0x64.
 */
#ifndef HUSK_I8042_H
#define HUSK_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/stop.h"

struct i8042;

struct i8042 *i8042_create(struct stop_hook stop);
void i8042_destroy(struct i8042 *k);

/*
 * Two bus_access_fn of one port each, because port 0x61 between them
 * belongs to the in-kernel PIT: register i8042_data_access at
 * PORT_I8042_DATA and i8042_command_access at PORT_I8042_CMD.
 */
void i8042_data_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_command_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                          bool is_write);

#endif
