// SPDX-License-Identifier: MIT
#include <glib.h>
#include <string.h>

#include "vmm/cli/run_spec.h"
#include "vmm/error.h"

static void add(GPtrArray *a, const char *s)
{
	g_ptr_array_add(a, g_strdup(s));
}

static void assert_same_list(GPtrArray *a, GPtrArray *b)
{
	g_assert_cmpuint(a->len, ==, b->len);
	for (guint i = 0; i < a->len; i++)
		g_assert_cmpstr(a->pdata[i], ==, b->pdata[i]);
}

static void test_round_trip(void)
{
	struct run_spec s, back;
	GError *err = NULL;

	run_spec_init(&s);
	s.image = g_strdup("img/layout:v1");
	s.entrypoint = g_strdup("/bin/httpd");
	s.entrypoint_set = true;
	s.user = g_strdup("1000:1000");
	s.workdir = g_strdup("/srv");
	s.cwd = g_strdup("/home/me/project");
	add(s.envs, "A=b \"quoted\"");
	add(s.envs, "EMPTY=");
	add(s.volumes, "data:/data:ro");
	add(s.publish, "127.0.0.1:8080:80");
	add(s.options, "--memory=512M");
	add(s.options, "--no-seccomp");
	s.args = g_strdupv((char *[]){"-f", "", "-p 80", NULL});
	char *json = run_spec_to_json(&s);
	g_assert_true(run_spec_json_is_image_run(json));
	g_assert_true(run_spec_from_json(json, &back, &err));
	g_assert_no_error(err);
	g_assert_cmpstr(back.image, ==, s.image);
	g_assert_cmpstr(back.entrypoint, ==, s.entrypoint);
	g_assert_true(back.entrypoint_set);
	g_assert_cmpstr(back.user, ==, s.user);
	g_assert_cmpstr(back.workdir, ==, s.workdir);
	g_assert_cmpstr(back.cwd, ==, s.cwd);
	assert_same_list(back.envs, s.envs);
	assert_same_list(back.volumes, s.volumes);
	assert_same_list(back.publish, s.publish);
	assert_same_list(back.options, s.options);
	g_assert_true(g_strv_equal((const char *const *)back.args, (const char *const *)s.args));
	g_free(json);
	run_spec_clear(&back);
	run_spec_clear(&s);
}

/* -t and -i: refused with --detach (no attach); -it wants a terminal on stdin, as docker. */
static void test_terminal_rules(void)
{
	static const struct {
		bool tty, interactive, detach, stdin_tty;
		const char *line; /* NULL: allowed */
	} cases[] = {
	    {false, false, false, false, NULL},
	    {false, false, true, false, NULL},
	    {true, false, true, true, "run: --detach with -t: an image run has no attach*"},
	    {false, true, true, false, "run: --detach with -i: *"},
	    {true, true, true, true, "run: --detach with -t and -i: *"},
	    {true, false, false, false, NULL},
	    {true, false, false, true, NULL},
	    {false, true, false, false, NULL},
	    {false, true, false, true, NULL},
	    {true, true, false, true, NULL},
	    {true, true, false, false, "run: -it: the input is not a terminal *"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		GError *err = NULL;
		bool ok = run_spec_check_terminal(cases[i].tty, cases[i].interactive,
		                                  cases[i].detach, cases[i].stdin_tty, &err);
		g_assert_cmpint(ok, ==, cases[i].line == NULL);
		if (ok) {
			g_assert_no_error(err);
			continue;
		}
		g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
		g_assert_true(g_pattern_match_simple(cases[i].line, err->message));
		g_assert_null(strchr(err->message, '\n'));
		g_error_free(err);
	}
}

/* No Cmd given stays "no Cmd given", and an empty --entrypoint "" stays set. */
static void test_unset_and_empty(void)
{
	struct run_spec s, back;

	run_spec_init(&s);
	s.image = g_strdup("x");
	s.entrypoint = g_strdup("");
	s.entrypoint_set = true;
	char *json = run_spec_to_json(&s);
	g_assert_true(run_spec_from_json(json, &back, NULL));
	g_assert_null(back.args);
	g_assert_true(back.entrypoint_set);
	g_assert_cmpstr(back.entrypoint, ==, "");
	g_assert_null(back.user);
	g_free(json);
	run_spec_clear(&back);
	run_spec_clear(&s);

	/* A spec with no entrypoint key: the image's own. */
	g_assert_true(run_spec_from_json("{\"kind\":\"image-run\",\"image\":\"x\"}", &back, NULL));
	g_assert_false(back.entrypoint_set);
	run_spec_clear(&back);
}

static void assert_refused(const char *json, const char *message)
{
	struct run_spec s;
	GError *err = NULL;

	g_assert_false(run_spec_from_json(json, &s, &err));
	g_assert_error(err, HUSK_ERROR, HUSK_EXIT_USAGE);
	g_assert_cmpstr(err->message, ==, message);
	g_error_free(err);
	run_spec_clear(&s);
}

static void test_refused(void)
{
	/* A cloud image's config.json is not an image run's. */
	assert_refused("{\"kernel\":\"/boot/vmlinuz\"}", "config.json: not an image run's");
	g_assert_false(run_spec_json_is_image_run("{\"kernel\":\"/boot/vmlinuz\"}"));
	g_assert_false(run_spec_json_is_image_run("not json"));
	assert_refused("[1]", "config.json: not a JSON object");
	assert_refused("{\"kind\":\"image-run\"}", "config.json: no \"image\"");
	assert_refused("{\"kind\":\"image-run\",\"image\":3}",
	               "config.json: \"image\" is not a string");
	assert_refused("{\"kind\":\"image-run\",\"image\":\"x\",\"env\":\"A=b\"}",
	               "config.json: \"env\" is not a list of at most 4096 strings");
	assert_refused("{\"kind\":\"image-run\",\"image\":\"x\",\"args\":[\"a\",{}]}",
	               "config.json: \"args\" holds something not a string");
	GString *big = g_string_new("{\"kind\":\"image-run\",\"image\":\"x\",\"args\":[");
	for (int i = 0; i <= RUN_SPEC_MAX_ITEMS; i++)
		g_string_append(big, i ? ",\"a\"" : "\"a\"");
	g_string_append(big, "]}");
	assert_refused(big->str, "config.json: \"args\" is not a list of at most 4096 strings");
	g_string_free(big, TRUE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/run_spec/round-trip", test_round_trip);
	g_test_add_func("/run_spec/unset-and-empty", test_unset_and_empty);
	g_test_add_func("/run_spec/refused", test_refused);
	g_test_add_func("/run_spec/terminal-rules", test_terminal_rules);
	return g_test_run();
}
