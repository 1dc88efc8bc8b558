// SPDX-License-Identifier: MIT
#include "vmm/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/error.h"

/* A name, or a number below 2^32 - 1 ((uid_t)-1 means "unchanged" to the kernel). */
static bool parse_id(const char *text, guint64 *id)
{
	return g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT32 - 1, id, NULL);
}

static bool parse_user(const char *what, const char *name, struct run_as *out, GError **err)
{
	struct passwd *pw = getpwnam(name);
	guint64 id;

	if (pw) {
		out->uid = pw->pw_uid;
		out->gid = pw->pw_gid;
	} else if (parse_id(name, &id)) {
		struct passwd *by_id = getpwuid((uid_t)id);
		out->uid = (uid_t)id;
		out->gid = by_id ? by_id->pw_gid : (gid_t)id;
	} else {
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: no user \"%s\"", what, name);
	}
	if (out->uid == 0)
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: \"%s\" is root: nothing would be dropped", what, name);
	return true;
}

static bool parse_group(const char *what, const char *name, struct run_as *out, GError **err)
{
	struct group *gr = getgrnam(name);
	guint64 id;

	if (gr)
		out->gid = gr->gr_gid;
	else if (parse_id(name, &id))
		out->gid = (gid_t)id;
	else
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: no group \"%s\"", what, name);
	if (out->gid == 0)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: \"%s\" is root's group", what, name);
	return true;
}

bool run_as_parse(const char *what, const char *text, struct run_as *out, GError **err)
{
	const char *colon = strchr(text, ':');
	g_autofree char *user = g_strndup(text, colon ? (gsize)(colon - text) : strlen(text));

	*out = (struct run_as){0};
	if (!*user || (colon && !colon[1]))
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: \"%s\" is not USER[:GROUP]", what,
		                 text);
	if (!parse_user(what, user, out, err) || (colon && !parse_group(what, colon + 1, out, err)))
		return false;
	out->set = true;
	return true;
}

/* Whether every id of the calling thread is 'r''s, and uid 0 is out of reach. */
static bool took(const struct run_as *r)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) || getresgid(&rg, &eg, &sg))
		return false;
	if (ru != r->uid || eu != r->uid || su != r->uid || rg != r->gid || eg != r->gid ||
	    sg != r->gid)
		return false;
	/* The way back must be shut: were it open, setuid(0) would succeed (this thread only). */
	return syscall(SYS_setuid, 0) != 0 && errno == EPERM;
}

bool run_as_apply(const struct run_as *r, GError **err)
{
	if (geteuid() != 0)
		return husk_fail(err, HUSK_EXIT_HOST,
		                 "--user: husk must be started as root to switch users");
	/* Groups first: once the user changes, CAP_SETGID is gone. */
	if (setgroups(1, &r->gid) || setresgid(r->gid, r->gid, r->gid) ||
	    setresuid(r->uid, r->uid, r->uid))
		return husk_fail(err, HUSK_EXIT_HOST, "--user: cannot switch to %u:%u: %s",
		                 (unsigned int)r->uid, (unsigned int)r->gid, g_strerror(errno));
	if (!took(r))
		return husk_fail(err, HUSK_EXIT_HOST,
		                 "--user: the switch to %u:%u did not take, or can be undone",
		                 (unsigned int)r->uid, (unsigned int)r->gid);
	return true;
}
