// SPDX-License-Identifier: MIT
#include "vmm/size.h"

#include <ctype.h>
#include <strings.h>

static int suffix_shift(const char *s)
{
	static const struct {
		const char *name;
		int shift;
	} units[] = {
	    {"", 20},    {"b", 0},  {"k", 10},  {"kb", 10},  {"kib", 10}, {"m", 20},  {"mb", 20},
	    {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40},   {"tb", 40}, {"tib", 40},
	};

	for (unsigned int i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcasecmp(s, units[i].name) == 0)
			return units[i].shift;
	return -1;
}

bool size_parse(const char *text, uint64_t *bytes)
{
	uint64_t value = 0;
	const char *p = text;

	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (value > (UINT64_MAX - 9) / 10)
			return false;
		value = value * 10 + (uint64_t)(*p - '0');
	}
	int shift = suffix_shift(p);
	if (shift < 0 || (shift > 0 && value > (UINT64_MAX >> shift)))
		return false;
	*bytes = value << shift;
	return true;
}
