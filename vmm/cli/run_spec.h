/* SPDX-License-Identifier: MIT */
/*
 * husk run --image's options as data: what a detached image run keeps in
 * its instance's config.json, so that its serving process (and a later
 * husk start) runs the very same app.
 */
#ifndef HUSK_CLI_RUN_SPEC_H
#define HUSK_CLI_RUN_SPEC_H

#include <glib.h>
#include <stdbool.h>

#define RUN_SPEC_KIND "image-run" /* config.json's "kind" for an image run */

struct run_spec {
	char *image; /* PATH[:TAG], as given */
	char *entrypoint;
	bool entrypoint_set;
	char *user, *workdir;
	GPtrArray *envs, *volumes, *publish; /* char *, as given to -e, -v, -p */
	GPtrArray *options;                  /* husk exec's own options, "--name[=VALUE]" */
	char **args;                         /* replaces the image's Cmd; NULL: keep it */
	char *cwd;             /* where relative paths (-v, --kernel, the image) start from */
	bool tty, interactive; /* -t, -i: never saved, as --detach refuses them */
};

void run_spec_init(struct run_spec *s);
void run_spec_clear(struct run_spec *s);

/* config.json's text for 's'. */
char *run_spec_to_json(const struct run_spec *s);

/*
 * Reads config.json's text into 's' (initialised here; run_spec_clear it
 * either way). Bounded: a file that is not an image run's, has a field
 * of the wrong type, or lists more than RUN_SPEC_MAX_ITEMS of anything
 * is refused with one line.
 */
#define RUN_SPEC_MAX_ITEMS 4096
bool run_spec_from_json(const char *json, struct run_spec *s, GError **err);

/* Whether config.json's text is an image run's (it names RUN_SPEC_KIND). */
bool run_spec_json_is_image_run(const char *json);

/*
 * -t (a terminal for the app) and -i (husk's stdin to the app) as docker
 * run words them. Docker's run -dit keeps both for a later docker attach;
 * an image run has no attach, so with --detach they are refused. -i with
 * -t wants a terminal on stdin ('stdin_is_tty'), which goes raw: as
 * docker says, "the input device is not a TTY" otherwise. False, and one
 * line in 'err' (HUSK_EXIT_USAGE), when refused.
 */
bool run_spec_check_terminal(bool tty, bool interactive, bool detach, bool stdin_is_tty,
                             GError **err);

struct instance;

/* Whether the instance is an image run (its config.json says so). */
bool run_spec_is_image_run(const struct instance *inst);

#endif
