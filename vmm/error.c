// SPDX-License-Identifier: MIT
#include "vmm/error.h"

G_DEFINE_QUARK(husk - error - quark, husk_error)

bool husk_fail(GError **err, enum husk_exit status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_propagate_error(err, g_error_new_valist(HUSK_ERROR, (int)status, fmt, ap));
	va_end(ap);
	return false;
}
