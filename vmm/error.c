// SPDX-License-Identifier: MIT
#include "vmm/error.h"

G_DEFINE_QUARK(husk - error - quark, husk_error)
