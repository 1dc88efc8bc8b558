// SPDX-License-Identifier: MIT
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vmm/instance/applog.h"

static char *tmp_dir(void)
{
	char *dir = g_dir_make_tmp("applog-test-XXXXXX", NULL);

	g_assert_nonnull(dir);
	return dir;
}

static gint64 file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static char *read_all(const char *path, int lines)
{
	GBytes *b = applog_read(path, 100, lines, NULL);
	gsize len;
	const char *data = g_bytes_get_data(b, &len);
	char *text = g_strndup(data ? data : "", len);

	g_bytes_unref(b);
	return text;
}

static void cleanup(char *dir, char *path)
{
	char *old = g_strconcat(path, ".1", NULL);

	g_unlink(path);
	g_unlink(old);
	g_rmdir(dir);
	g_free(old);
	g_free(path);
	g_free(dir);
}

/* Past the cap the older part moves to .1: the newest output kept, at most 2 caps on disk. */
static void test_cap(void)
{
	char *dir = tmp_dir(), *path = g_build_filename(dir, "out.log", NULL);
	char *old = g_strconcat(path, ".1", NULL);
	struct applog *log = applog_open(path, 100, NULL);
	GString *all = g_string_new(NULL);

	g_assert_nonnull(log);
	for (int i = 0; i < 100; i++) {
		char line[16];
		g_snprintf(line, sizeof(line), "line %03d\n", i); /* 9 bytes */
		g_assert_true(applog_write(log, line, strlen(line)));
		g_string_append(all, line);
		g_assert_cmpint(file_size(path), <=, 100);
		g_assert_cmpint(file_size(old), <=, 100);
	}
	/* One write larger than the cap is split, and its end kept. */
	char burst[250];
	memset(burst, 'x', sizeof(burst));
	burst[sizeof(burst) - 1] = '\n';
	g_assert_true(applog_write(log, burst, sizeof(burst)));
	g_string_append_len(all, burst, sizeof(burst));
	g_assert_cmpint(file_size(path), <=, 100);
	applog_close(log);

	char *kept = read_all(path, -1);
	g_assert_cmpuint(strlen(kept), >=, 100);
	g_assert_cmpuint(strlen(kept), <=, 200);
	g_assert_true(g_str_has_suffix(all->str, kept));
	g_free(kept);
	g_string_free(all, TRUE);
	g_free(old);
	cleanup(dir, path);
}

/* Reopened, a log goes on where it was: its size counts towards the cap. */
static void test_reopen(void)
{
	char *dir = tmp_dir(), *path = g_build_filename(dir, "out.log", NULL);
	struct applog *log = applog_open(path, 100, NULL);

	g_assert_true(applog_write(log, "first\n", 6));
	applog_close(log);
	log = applog_open(path, 100, NULL);
	g_assert_true(applog_write(log, "second\n", 7));
	applog_close(log);
	char *text = read_all(path, -1);
	g_assert_cmpstr(text, ==, "first\nsecond\n");
	g_free(text);
	cleanup(dir, path);
}

static void test_tail(void)
{
	char *dir = tmp_dir(), *path = g_build_filename(dir, "out.log", NULL);
	struct applog *log = applog_open(path, 100, NULL);
	char *text;

	text = read_all(path, 2);
	g_assert_cmpstr(text, ==, "");
	g_free(text);
	g_assert_true(applog_write(log, "a\nb\nc\nno newline", 16));
	text = read_all(path, 2);
	g_assert_cmpstr(text, ==, "c\nno newline");
	g_free(text);
	g_assert_true(applog_write(log, "\n", 1));
	text = read_all(path, 1);
	g_assert_cmpstr(text, ==, "no newline\n");
	g_free(text);
	text = read_all(path, 0);
	g_assert_cmpstr(text, ==, "");
	g_free(text);
	text = read_all(path, 99);
	g_assert_cmpstr(text, ==, "a\nb\nc\nno newline\n");
	g_free(text);
	applog_close(log);
	cleanup(dir, path);
}

/* A log grown past its cap by someone else is read only so far back. */
static void test_read_bounded(void)
{
	char *dir = tmp_dir(), *path = g_build_filename(dir, "out.log", NULL);
	char big[1000];
	uint64_t end = 0;

	memset(big, 'y', sizeof(big));
	g_assert_true(g_file_set_contents(path, big, sizeof(big), NULL));
	GBytes *b = applog_read(path, 100, -1, &end);
	g_assert_cmpuint(g_bytes_get_size(b), ==, 100);
	g_assert_cmpuint(end, ==, 1000);
	g_bytes_unref(b);
	cleanup(dir, path);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/applog/cap", test_cap);
	g_test_add_func("/applog/reopen", test_reopen);
	g_test_add_func("/applog/tail", test_tail);
	g_test_add_func("/applog/read-bounded", test_read_bounded);
	return g_test_run();
}
