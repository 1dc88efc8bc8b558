// SPDX-License-Identifier: MIT
#include "devices/landlock.h"

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

bool landlock_confine_beneath(int dir_fd, bool read_only)
{
	int abi =
	    (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	if (abi < 0)
		return false;
	/* ABI 1 refuses every rename and link between two directories, even both allowed. */
	if (abi < 2) {
		errno = EOPNOTSUPP;
		return false;
	}
	/* Without CAP_SYS_ADMIN, the kernel takes a ruleset only from a thread that cannot gain
	 * more. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return false;
	struct landlock_ruleset_attr attr = {.handled_access_fs = all_access(abi)};
	struct landlock_path_beneath_attr beneath = {
	    .allowed_access = read_only ? READ_ACCESS : attr.handled_access_fs,
	    .parent_fd = dir_fd,
	};
	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		return false;
	bool ok =
	    syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) == 0 &&
	    syscall(SYS_landlock_restrict_self, ruleset, 0) == 0;
	int why = errno;
	close(ruleset);
	errno = why;
	return ok;
}
