// SPDX-License-Identifier: MIT
#include "vmm/cli/image.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "devices/block/block.h"
#include "vmm/error.h"
#include "vmm/size.h"

#define COPY_CHUNK (1024 * 1024)

static const char *const usage =
    "usage: husk image create [--size SIZE] [--backing FILE [--backing-format FMT]] "
    "[--format qcow2|raw] PATH\n"
    "       husk image info [--format-output human|json] PATH\n"
    "       husk image convert [-f FMT] [-O raw|qcow2] SRC DST\n"
    "\n"
    "create makes a new image (qcow2 unless told), of SIZE or of its backing\n"
    "file's size; SIZE is 20G, 512M, ... (a bare number is MiB). info describes\n"
    "an image and its backing chain. convert copies the data SRC shows its guest\n"
    "into the image DST, in the format -O names.\n"
    "\n"
    "Exit status: 0 done, 1 husk failed while reading or writing, 2 bad usage or\n"
    "input (a damaged or unsupported image).\n";

static int fail(GError *err)
{
	int status = err->domain == HUSK_ERROR ? err->code : HUSK_EXIT_RUNTIME;

	fprintf(stderr, "husk image: %s\n", err->message);
	g_error_free(err);
	return status;
}

/* Parses the subcommand's options; leaves the operands in argv. */
static bool parse(const char *name, GOptionEntry *entries, int *argc, char ***argv, int operands,
                  GError **err)
{
	GOptionContext *ctx = g_option_context_new(NULL);
	bool ok;

	g_option_context_set_help_enabled(ctx, false);
	g_option_context_add_main_entries(ctx, entries, NULL);
	ok = g_option_context_parse(ctx, argc, argv, err);
	g_option_context_free(ctx);
	if (!ok) {
		(*err)->domain = HUSK_ERROR;
		(*err)->code = HUSK_EXIT_USAGE;
		return false;
	}
	if (*argc - 1 != operands)
		return husk_fail(err, HUSK_EXIT_USAGE, "%s: expected %d file name%s\n%s", name,
		                 operands, operands > 1 ? "s" : "", usage);
	return true;
}

/* The format a file holds: given, or detected (the same rule as --disk's). */
static struct block_backend *open_read_only(const char *path, const char *format, GError **err)
{
	struct block_open_options o = {.format = format, .read_only = true};

	return block_open(path, &o, err);
}

static int image_create(int argc, char **argv)
{
	char *size_text = NULL, *backing = NULL, *backing_format = NULL, *format = NULL;
	GOptionEntry entries[] = {
	    {"size", 0, 0, G_OPTION_ARG_STRING, &size_text, NULL, NULL},
	    {"backing", 0, 0, G_OPTION_ARG_FILENAME, &backing, NULL, NULL},
	    {"backing-format", 0, 0, G_OPTION_ARG_STRING, &backing_format, NULL, NULL},
	    {"format", 0, 0, G_OPTION_ARG_STRING, &format, NULL, NULL},
	    {0}};
	GError *err = NULL;
	uint64_t size = 0;
	bool ok = parse("create", entries, &argc, &argv, 1, &err);

	if (ok && size_text && !size_parse(size_text, &size))
		ok = husk_fail(&err, HUSK_EXIT_USAGE,
		               "create: --size: \"%s\" is not a size (try 20G)", size_text);
	if (ok && !size_text && !backing)
		ok = husk_fail(&err, HUSK_EXIT_USAGE, "create: give --size, or --backing");
	if (ok && backing && !backing_format) {
		/* The user names the file on the host: detect its format once, and record it. */
		char *dir = g_path_get_dirname(argv[1]);
		char *full = g_path_is_absolute(backing) ? g_strdup(backing)
		                                         : g_build_filename(dir, backing, NULL);
		struct block_backend *b = open_read_only(full, NULL, &err);
		ok = b != NULL;
		if (ok)
			backing_format = g_strdup(b->format);
		block_close(b);
		g_free(full);
		g_free(dir);
	}
	if (ok)
		ok = block_create(argv[1], format ? format : "qcow2", size, backing, backing_format,
		                  &err);
	g_free(size_text);
	g_free(backing);
	g_free(backing_format);
	g_free(format);
	return ok ? 0 : fail(err);
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void json_string(GString *out, const char *s)
{
	g_string_append_c(out, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			g_string_append_printf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			g_string_append_printf(out, "\\u%04x", *s);
		else
			g_string_append_c(out, *s);
	}
	g_string_append_c(out, '"');
}

static void describe_json(GString *out, const char *path, struct block_backend *b, uint64_t disk)
{
	struct block_info info;

	block_describe(b, &info);
	g_string_append(out, "{\"filename\": ");
	json_string(out, path);
	g_string_append(out, ", \"format\": ");
	json_string(out, b->format);
	g_string_append_printf(out, ", \"virtual-size\": %" G_GUINT64_FORMAT, b->size);
	if (disk)
		g_string_append_printf(out, ", \"actual-size\": %" G_GUINT64_FORMAT, disk);
	if (info.cluster_size)
		g_string_append_printf(out, ", \"cluster-size\": %" G_GUINT64_FORMAT,
		                       info.cluster_size);
	if (!strcmp(b->format, "qcow2"))
		g_string_append_printf(out, ", \"dirty-flag\": %s", info.dirty ? "true" : "false");
	if (info.backing_name) {
		g_string_append(out, ", \"backing-filename\": ");
		json_string(out, info.backing_name);
		g_string_append(out, ", \"backing-filename-format\": ");
		json_string(out, info.backing_format);
		g_string_append(out, ", \"backing-image\": ");
		describe_json(out, info.backing_name, info.backing, 0);
	}
	g_string_append(out, "}");
}

static void describe_human(GString *out, const char *path, struct block_backend *b, uint64_t disk,
                           int depth)
{
	struct block_info info;

	block_describe(b, &info);
	g_string_append_printf(out, "%*simage: %s\n", depth * 2, "", path);
	g_string_append_printf(out, "%*sfile format: %s\n", depth * 2, "", b->format);
	g_string_append_printf(out, "%*svirtual size: %" G_GUINT64_FORMAT " bytes\n", depth * 2, "",
	                       b->size);
	if (disk)
		g_string_append_printf(out, "%*sdisk size: %" G_GUINT64_FORMAT " bytes\n",
		                       depth * 2, "", disk);
	if (info.cluster_size)
		g_string_append_printf(out, "%*scluster_size: %" G_GUINT64_FORMAT "\n", depth * 2,
		                       "", info.cluster_size);
	if (!strcmp(b->format, "qcow2"))
		g_string_append_printf(out, "%*sdirty: %s\n", depth * 2, "",
		                       info.dirty ? "yes (repair: qemu-img check -r all)" : "no");
	if (info.backing_name) {
		g_string_append_printf(out, "%*sbacking file: %s (format %s)\n", depth * 2, "",
		                       info.backing_name, info.backing_format);
		describe_human(out, info.backing_name, info.backing, 0, depth + 1);
	}
}

static int image_info(int argc, char **argv)
{
	char *output = NULL;
	GOptionEntry entries[] = {{"format-output", 0, 0, G_OPTION_ARG_STRING, &output, NULL, NULL},
	                          {0}};
	GError *err = NULL;
	struct block_backend *b = NULL;
	bool ok = parse("info", entries, &argc, &argv, 1, &err);

	if (ok && output && strcmp(output, "json") && strcmp(output, "human"))
		ok = husk_fail(&err, HUSK_EXIT_USAGE, "info: --format-output is human or json");
	if (ok)
		ok = (b = open_read_only(argv[1], NULL, &err)) != NULL;
	if (ok) {
		struct stat st;
		uint64_t disk = stat(argv[1], &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
		GString *out = g_string_new(NULL);
		if (output && !strcmp(output, "json")) {
			describe_json(out, argv[1], b, disk);
			g_string_append_c(out, '\n');
		} else {
			describe_human(out, argv[1], b, disk, 0);
		}
		fputs(out->str, stdout);
		g_string_free(out, true);
	}
	block_close(b);
	g_free(output);
	return ok ? 0 : fail(err);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Copies what is not zeros: a new image reads as zeros already. */
static bool copy_data(struct block_backend *src, struct block_backend *dst, const char *name,
                      GError **err)
{
	uint8_t *buf = g_malloc(COPY_CHUNK);
	int e = 0;

	for (uint64_t off = 0; off < src->size && e == 0; off += COPY_CHUNK) {
		size_t n = (size_t)MIN(COPY_CHUNK, src->size - off);
		e = block_pread(src, buf, n, off);
		if (e == 0 && !all_zero(buf, n))
			e = block_pwrite(dst, buf, n, off);
	}
	if (e == 0)
		e = dst->ops->flush(dst);
	g_free(buf);
	return e == 0 || husk_fail(err, HUSK_EXIT_RUNTIME, "convert: %s: %s", name, g_strerror(-e));
}

static int image_convert(int argc, char **argv)
{
	char *in_format = NULL, *out_format = NULL;
	GOptionEntry entries[] = {
	    {"format", 'f', 0, G_OPTION_ARG_STRING, &in_format, NULL, NULL},
	    {"output-format", 'O', 0, G_OPTION_ARG_STRING, &out_format, NULL, NULL},
	    {0}};
	GError *err = NULL;
	struct block_backend *src = NULL, *dst = NULL;
	bool ok = parse("convert", entries, &argc, &argv, 2, &err);

	if (ok)
		ok = (src = open_read_only(argv[1], in_format, &err)) != NULL;
	const char *format = out_format ? out_format : "raw";
	if (ok)
		ok = block_create(argv[2], format, src->size, NULL, NULL, &err);
	if (ok) {
		struct block_open_options o = {.format = format};
		ok = (dst = block_open(argv[2], &o, &err)) != NULL;
	}
	if (ok)
		ok = copy_data(src, dst, argv[2], &err);
	block_close(dst);
	block_close(src);
	g_free(in_format);
	g_free(out_format);
	return ok ? 0 : fail(err);
}

int husk_image_main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return HUSK_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, stdout);
		return 0;
	}
	/* The subcommand's own options follow its name. */
	if (!strcmp(argv[1], "create"))
		return image_create(argc - 1, argv + 1);
	if (!strcmp(argv[1], "info"))
		return image_info(argc - 1, argv + 1);
	if (!strcmp(argv[1], "convert"))
		return image_convert(argc - 1, argv + 1);
	fprintf(stderr, "husk image: unknown subcommand \"%s\"\n%s", argv[1], usage);
	return HUSK_EXIT_USAGE;
}
