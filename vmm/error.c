// SPDX-License-Identifier: MIT
#include "vmm/error.h"

#include <errno.h>

G_DEFINE_QUARK(husk - error - quark, husk_error)

bool husk_fail(GError **err, enum husk_exit status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_propagate_error(err, g_error_new_valist(HUSK_ERROR, (int)status, fmt, ap));
	va_end(ap);
	return false;
}

bool husk_fail_errno(GError **err, enum husk_exit status, const char *what)
{
	const char *why = g_strerror(errno);

	return husk_fail(err, status, "%s: %s", what, why);
}
