// SPDX-License-Identifier: MIT
/*
 * The extended-attribute round trip of the virtio-fs workout, run inside
 * the guest, whose busybox has no setfattr or getfattr:
 *   xattr-probe FILE NAME VALUE
 * sets NAME to VALUE, reads it back, finds it in the list and removes it.
 * It prints "ok", or the first step that went wrong and why
 * ("set: Operation not supported").
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

static int failed(const char *step, const char *why)
{
	printf("%s: %s\n", step, why ? why : strerror(errno));
	return 1;
}

static bool listed(const char *file, const char *name)
{
	char list[4096];
	ssize_t n = listxattr(file, list, sizeof(list));

	for (char *p = list; n > 0 && p < list + n; p += strlen(p) + 1)
		if (strcmp(p, name) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	char got[256];

	if (argc != 4) {
		fprintf(stderr, "usage: xattr-probe FILE NAME VALUE\n");
		return 2;
	}
	const char *file = argv[1], *name = argv[2], *value = argv[3];
	size_t len = strlen(value);

	if (setxattr(file, name, value, len, 0) != 0)
		return failed("set", NULL);
	ssize_t n = getxattr(file, name, got, sizeof(got));
	if (n < 0)
		return failed("get", NULL);
	if ((size_t)n != len || memcmp(got, value, len) != 0)
		return failed("get", "another value");
	if (!listed(file, name))
		return failed("list", "not listed");
	if (removexattr(file, name) != 0)
		return failed("remove", NULL);
	if (getxattr(file, name, got, sizeof(got)) >= 0 || errno != ENODATA)
		return failed("remove", "still there");
	puts("ok");
	return 0;
}
