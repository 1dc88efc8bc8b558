// SPDX-License-Identifier: MIT
/*
 * The extended-attribute round trip of the virtio-fs workout, run inside
 * the guest, whose busybox has no setfattr or getfattr:
 *   xattr-probe FILE NAME VALUE
 * sets NAME to VALUE, reads it back, finds it in the list and removes it.
 * It prints "ok", or the first step that went wrong and why
 * ("set: Operation not supported"). On the test host's side:
 *   xattr-probe --set-cap FILE    gives FILE a file capability (cap_setuid+ep)
 *   xattr-probe --has-cap FILE    prints "yes" or "no"
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

/* VFS_CAP_REVISION_2, effective, CAP_SETUID (7) permitted: setcap's cap_setuid+ep. */
static const unsigned int setuid_cap[5] = {0x02000001, 1u << 7, 0, 0, 0};

static int file_cap(const char *how, const char *file)
{
	if (strcmp(how, "--set-cap") == 0) {
		if (setxattr(file, "security.capability", setuid_cap, sizeof(setuid_cap), 0) != 0)
			return failed("set-cap", NULL);
		return 0;
	}
	if (getxattr(file, "security.capability", NULL, 0) >= 0)
		puts("yes");
	else if (errno == ENODATA)
		puts("no");
	else
		return failed("has-cap", NULL);
	return 0;
}

int main(int argc, char **argv)
{
	char got[256];

	if (argc == 3 && (strcmp(argv[1], "--set-cap") == 0 || strcmp(argv[1], "--has-cap") == 0))
		return file_cap(argv[1], argv[2]);
	if (argc != 4) {
		fprintf(stderr,
		        "usage: xattr-probe FILE NAME VALUE | --set-cap FILE | --has-cap FILE\n");
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
