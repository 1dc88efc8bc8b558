// SPDX-License-Identifier: MIT
#include "devices/fs/landlock.h"

#include <errno.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define READ_ACCESS                                                                                \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

/* Every right ABI 'abi' knows of: those it handles are denied unless a rule grants them. */
static uint64_t all_access(int abi)
{
	uint64_t access = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1 */

	if (abi >= 2)
		access |= LANDLOCK_ACCESS_FS_REFER;
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
	if (abi >= 3)
		access |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
	return access;
}

/*
 * A ruleset of every right the kernel knows, granting 'allowed[i]'
 * beneath 'dir_fds[i]', on the calling thread. Returns false with errno
 * set; the thread is then as it was (no_new_privs aside).
 */
static bool confine(const int *dir_fds, const uint64_t *allowed, unsigned int n, int abi)
{
	/* Without CAP_SYS_ADMIN, the kernel takes a ruleset only from a thread that cannot gain
	 * more. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return false;
	struct landlock_ruleset_attr attr = {.handled_access_fs = all_access(abi)};
	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		return false;
	bool ok = true;
	for (unsigned int i = 0; ok && i < n; i++) {
		struct landlock_path_beneath_attr beneath = {
		    .allowed_access = allowed[i] & attr.handled_access_fs,
		    .parent_fd = dir_fds[i],
		};
		ok = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath,
		             0) == 0;
	}
	ok = ok && syscall(SYS_landlock_restrict_self, ruleset, 0) == 0;
	int why = errno;
	close(ruleset);
	errno = why;
	return ok;
}

/* Landlock's ABI, or -1 with errno set when it is missing or too old for husk. */
static int usable_abi(void)
{
	int abi =
	    (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	/* ABI 1 refuses every rename and link between two directories, even both allowed. */
	if (abi >= 0 && abi < 2) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return abi;
}

bool landlock_confine_beneath(int dir_fd, bool read_only)
{
	int abi = usable_abi();

	if (abi < 0)
		return false;
	uint64_t allowed = read_only ? READ_ACCESS : all_access(abi);
	return confine(&dir_fd, &allowed, 1, abi);
}

bool landlock_confine_dirs(const int *dir_fds, const bool *writable, unsigned int n)
{
	uint64_t allowed[LANDLOCK_MAX_DIRS];
	int abi = usable_abi();

	if (n > LANDLOCK_MAX_DIRS) {
		errno = E2BIG;
		return false;
	}
	if (abi < 0)
		return false;
	for (unsigned int i = 0; i < n; i++)
		allowed[i] = writable[i]
		                 ? all_access(abi) & ~(uint64_t)LANDLOCK_ACCESS_FS_EXECUTE
		                 : LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	return confine(dir_fds, allowed, n, abi);
}
