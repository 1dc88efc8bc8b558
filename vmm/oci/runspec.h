/* SPDX-License-Identifier: MIT */
/*
 * What `husk run --image` runs: the command (Docker's rules for the image's
 * Entrypoint and Cmd against --entrypoint and the arguments given), the user
 * (its name looked up in the image's own /etc/passwd and /etc/group) and
 * the environment.
 */
#ifndef HUSK_OCI_RUNSPEC_H
#define HUSK_OCI_RUNSPEC_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#define OCI_MAX_GROUPS 64

/*
 * Docker's rules: arguments given replace Cmd; --entrypoint replaces the
 * Entrypoint and drops the image's Cmd ("" clears the Entrypoint). The
 * result is Entrypoint + Cmd; NULL with err when it is empty.
 * entrypoint: NULL when not given; args: NULL when none were given.
 */
char **oci_command(char **image_entrypoint, char **image_cmd, const char *entrypoint, char **args,
                   GError **err);

struct oci_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[OCI_MAX_GROUPS]; /* supplementary, from /etc/group */
	int ngroups;
	char *home; /* from /etc/passwd, or NULL */
};

/*
 * spec: "", "USER", "USER:GROUP", each a name or a number, as an image's
 * User or docker run -u says. Names are looked up in passwd and group (the
 * image's files' contents, NULL when it has none). "" is root.
 */
bool oci_user_resolve(const char *spec, const char *passwd, const char *group, struct oci_user *out,
                      GError **err);
/* The same, with the files read from the unpacked root (never outside it). */
bool oci_user_resolve_in(const char *root, const char *spec, struct oci_user *out, GError **err);
void oci_user_clear(struct oci_user *u);

/* "UID:GID[:G1,G2...]", the form husk-init takes. */
char *oci_user_format(const struct oci_user *u);

/* env with NAME=VALUE set, replacing an earlier NAME (a new vector; env is kept). */
char **oci_env_set(char **env, const char *assignment);

#endif
