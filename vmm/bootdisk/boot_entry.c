// SPDX-License-Identifier: MIT
/*
 * grub.cfg: a small reader for the shape grub-mkconfig's templates write.
 * Commands are words split as GRUB's shell splits them (quotes, escapes,
 * comments, ';' and newlines); `if`/`then`/`else`/`fi` are read through as
 * if every branch ran, function bodies are skipped, and menuentry and
 * submenu blocks become a tree of entries. Variables are never expanded:
 * a word naming one is only kept where its meaning is clear (the default
 * entry, through grubenv).
 */
#include "vmm/bootdisk/boot_entry.h"

#include <string.h>

#include "vmm/error.h"

/* Bounds on what a hostile file can make us build. */
#define GRUB_DEPTH_MAX   16
#define GRUB_ITEMS_MAX   1024
#define GRUB_WORDS_MAX   512
#define GRUB_DEFAULT_MAX 256

/* A word of a command: its text at 'off' in the command's, NUL-ended. */
struct word {
	size_t off, len;
	bool has_var; /* an unquoted or double-quoted '$' */
	bool quoted;
};

/*
 * One command's words, their texts end to end in one buffer: a file of
 * many short words costs no allocation per word, and the buffers are
 * kept from one command to the next.
 */
struct command {
	GString *text;
	GArray *words; /* struct word */
};

struct lexer {
	const char *p, *end;
};

enum token { TOKEN_WORD, TOKEN_END_OF_COMMAND, TOKEN_END_OF_FILE };

struct grub_item {
	char *title, *id;
	GPtrArray *children; /* a submenu's items; NULL for an entry */
	struct boot_entry entry;
};

struct grub_parse {
	struct lexer lx;
	char *default_value; /* the last `set default=` not naming a variable */
	GHashTable *grubenv; /* grubenv_table() */
	unsigned items;
};

void boot_entry_clear(struct boot_entry *e)
{
	g_free(e->title);
	g_free(e->kernel);
	if (e->initrds)
		g_ptr_array_unref(e->initrds);
	g_free(e->options);
	g_free(e->search_uuid);
	memset(e, 0, sizeof(*e));
}

static void grub_item_free(void *p)
{
	struct grub_item *item = p;

	g_free(item->title);
	g_free(item->id);
	if (item->children)
		g_ptr_array_unref(item->children);
	boot_entry_clear(&item->entry);
	g_free(item);
}

static void command_init(struct command *cmd)
{
	cmd->text = g_string_sized_new(256);
	cmd->words = g_array_sized_new(FALSE, FALSE, sizeof(struct word), 16);
}

static void command_free(struct command *cmd)
{
	g_string_free(cmd->text, TRUE);
	g_array_unref(cmd->words);
}

static unsigned nwords(const struct command *cmd)
{
	return cmd->words->len;
}

static const struct word *word_get(const struct command *cmd, unsigned i)
{
	return &g_array_index(cmd->words, struct word, i);
}

static void skip_blanks_and_comments(struct lexer *lx)
{
	while (lx->p < lx->end) {
		if (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r') {
			lx->p++;
		} else if (*lx->p == '\\' && lx->p + 1 < lx->end && lx->p[1] == '\n') {
			lx->p += 2;
		} else if (*lx->p == '#') {
			const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));

			lx->p = nl ? nl : lx->end;
		} else {
			return;
		}
	}
}

static bool ends_word(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';';
}

/*
 * The bytes a word's text takes as they are, unquoted and double-quoted:
 * runs of them are copied at once, not byte by byte.
 */
static const bool special[256] = {
    [' '] = true,  ['\t'] = true, ['\r'] = true, ['\n'] = true, [';'] = true,
    ['\''] = true, ['"'] = true,  ['\\'] = true, ['$'] = true,
};
static const bool special_in_quotes[256] = {['"'] = true, ['\\'] = true, ['$'] = true};

/* From 'p' up to the first byte 'table' marks (or the end), appended to 'text'. */
static const char *copy_run(const char *p, const char *end, const bool *table, GString *text)
{
	const char *run = p;

	while (p < end && !table[(unsigned char)*p])
		p++;
	g_string_append_len(text, run, p - run);
	return p;
}

/* A double-quoted string, from after its opening quote. */
static void lex_double_quoted(struct lexer *lx, GString *text, struct word *w)
{
	while ((lx->p = copy_run(lx->p, lx->end, special_in_quotes, text)) < lx->end &&
	       *lx->p != '"') {
		char c = *lx->p++;

		if (c == '\\' && lx->p < lx->end && strchr("\"\\$\n", *lx->p))
			c = *lx->p++;
		else if (c == '$')
			w->has_var = true;
		g_string_append_c(text, c);
	}
	lx->p += lx->p < lx->end; /* the closing quote */
}

/* The next token; a word's text is appended to 'text', NUL-ended, and 'w' says where. */
static enum token lex(struct lexer *lx, GString *text, struct word *w)
{
	skip_blanks_and_comments(lx);
	if (lx->p >= lx->end)
		return TOKEN_END_OF_FILE;
	if (*lx->p == '\n' || *lx->p == ';') {
		lx->p++;
		return TOKEN_END_OF_COMMAND;
	}
	*w = (struct word){.off = text->len};
	while ((lx->p = copy_run(lx->p, lx->end, special, text)) < lx->end && !ends_word(*lx->p)) {
		char c = *lx->p++;

		if (c == '\'') {
			const char *close = memchr(lx->p, '\'', lx->end - lx->p);
			const char *stop = close ? close : lx->end;

			g_string_append_len(text, lx->p, stop - lx->p);
			lx->p = close ? close + 1 : lx->end;
			w->quoted = true;
		} else if (c == '"') {
			lex_double_quoted(lx, text, w);
			w->quoted = true;
		} else if (c == '\\' && lx->p < lx->end) {
			g_string_append_c(text, *lx->p++);
		} else {
			w->has_var |= c == '$';
			g_string_append_c(text, c);
		}
	}
	w->len = text->len - w->off;
	g_string_append_c(text, '\0');
	return TOKEN_WORD;
}

/*
 * The next command's words into 'cmd', up to a separator or a '{' opening
 * a block; false at the end of the file.
 */
static bool next_command(struct lexer *lx, struct command *cmd)
{
	g_string_truncate(cmd->text, 0);
	g_array_set_size(cmd->words, 0);
	for (;;) {
		struct word w;
		enum token t = lex(lx, cmd->text, &w);

		if (t != TOKEN_WORD)
			return t != TOKEN_END_OF_FILE || cmd->words->len > 0;
		bool opens_block = !w.quoted && strcmp(cmd->text->str + w.off, "{") == 0;

		if (cmd->words->len < GRUB_WORDS_MAX || opens_block)
			g_array_append_val(cmd->words, w);
		else
			g_string_truncate(cmd->text, w.off);
		if (opens_block) /* what follows on the line is the block's first command */
			return true;
	}
}

static const char *word_at(const struct command *cmd, unsigned i)
{
	return i < cmd->words->len ? cmd->text->str + word_get(cmd, i)->off : NULL;
}

static bool is_bare(const struct command *cmd, unsigned i, const char *text)
{
	if (i >= cmd->words->len)
		return false;
	const struct word *w = word_get(cmd, i);

	return !w->quoted && strcmp(cmd->text->str + w->off, text) == 0;
}

/* `if`, `then`, `else`... introduce the command after them: skip them. */
static unsigned first_command_word(const struct command *cmd)
{
	static const char *const keywords[] = {"if", "then",  "else", "elif",
	                                       "do", "while", "until"};
	unsigned i = 0;

	for (bool again = true; again && i < cmd->words->len;) {
		again = false;
		for (size_t k = 0; k < G_N_ELEMENTS(keywords); k++)
			if (is_bare(cmd, i, keywords[k])) {
				i++;
				again = true;
			}
	}
	return i;
}

/* "(hd0,gpt1)/boot/vmlinuz" and "($root)/vmlinuz" name a path on a device. */
static char *path_without_device(const char *path)
{
	if (path[0] == '(') {
		const char *close = strchr(path, ')');

		if (close)
			path = close + 1;
	}
	return g_strdup(path);
}

/* The kernel's arguments; one with a space is quoted as the kernel reads it. */
static char *kernel_options(const struct command *cmd, unsigned from)
{
	GString *s = g_string_new(NULL);

	for (unsigned i = from; i < cmd->words->len; i++) {
		const struct word *w = word_get(cmd, i);
		const char *text = cmd->text->str + w->off;
		const char *eq = strchr(text, '=');

		if (w->has_var || w->len == 0)
			continue;
		if (s->len)
			g_string_append_c(s, ' ');
		if (strchr(text, ' ') && eq)
			g_string_append_printf(s, "%.*s\"%s\"", (int)(eq - text + 1), text, eq + 1);
		else
			g_string_append(s, text);
	}
	return g_string_free(s, FALSE);
}

/* search --no-floppy --fs-uuid --set=root [--hint...] UUID */
static void search_command(struct boot_entry *e, const struct command *cmd, unsigned at)
{
	const char *last = NULL;
	bool by_uuid = false;

	for (unsigned i = at + 1; i < cmd->words->len; i++) {
		const char *w = word_at(cmd, i);

		if (!strcmp(w, "--fs-uuid") || !strcmp(w, "-u"))
			by_uuid = true;
		else if (w[0] != '-')
			last = w;
	}
	if (by_uuid && last) {
		g_free(e->search_uuid);
		e->search_uuid = g_strdup(last);
	}
}

static void entry_command(struct boot_entry *e, const struct command *words, unsigned at)
{
	const char *cmd = word_at(words, at);

	if (!cmd)
		return;
	if ((!strcmp(cmd, "linux") || !strcmp(cmd, "linux16") || !strcmp(cmd, "linuxefi")) &&
	    nwords(words) > at + 1) {
		g_free(e->kernel);
		g_free(e->options);
		e->kernel = path_without_device(word_at(words, at + 1));
		e->options = kernel_options(words, at + 2);
	} else if (!strcmp(cmd, "initrd") || !strcmp(cmd, "initrd16") ||
	           !strcmp(cmd, "initrdefi")) {
		g_ptr_array_set_size(e->initrds, 0);
		for (unsigned i = at + 1; i < nwords(words); i++)
			g_ptr_array_add(e->initrds, path_without_device(word_at(words, i)));
	} else if (!strcmp(cmd, "search.fs_uuid") && nwords(words) > at + 1) {
		g_free(e->search_uuid);
		e->search_uuid = g_strdup(word_at(words, at + 1));
	} else if (!strcmp(cmd, "search")) {
		search_command(e, words, at);
	}
}

static void note_assignment(struct grub_parse *gp, const struct command *words, unsigned at);
static void parse_block(struct grub_parse *gp, GPtrArray *items, struct grub_item *entry,
                        unsigned depth);

/* menuentry TITLE [--class x]... [$menuentry_id_option|--id ID] { */
static struct grub_item *new_item(const struct command *words, unsigned at, bool submenu)
{
	struct grub_item *item = g_new0(struct grub_item, 1);

	item->title = g_strdup(word_at(words, at + 1) ? word_at(words, at + 1) : "");
	for (unsigned i = at + 2; i + 1 < nwords(words); i++) {
		const char *w = word_at(words, i);

		if (!strcmp(w, "--id") || !strcmp(w, "$menuentry_id_option")) {
			g_free(item->id);
			item->id = g_strdup(word_at(words, i + 1));
		}
	}
	if (submenu)
		item->children = g_ptr_array_new_with_free_func(grub_item_free);
	else
		item->entry.initrds = g_ptr_array_new_with_free_func(g_free);
	return item;
}

static void block_command(struct grub_parse *gp, GPtrArray *items, const struct command *words,
                          unsigned at, unsigned depth)
{
	const char *cmd = word_at(words, at);
	bool submenu = !strcmp(cmd, "submenu");

	if ((submenu || !strcmp(cmd, "menuentry")) && items && gp->items < GRUB_ITEMS_MAX) {
		struct grub_item *item = new_item(words, at, submenu);

		gp->items++;
		g_ptr_array_add(items, item);
		parse_block(gp, item->children, submenu ? NULL : item, depth + 1);
	} else {
		parse_block(gp, NULL, NULL, depth + 1); /* a function, or too many entries */
	}
}

/*
 * Reads commands up to the '}' closing this block (or the end). Entries go
 * to 'items' (NULL: thrown away), an entry's commands to 'entry'.
 */
static void parse_block(struct grub_parse *gp, GPtrArray *items, struct grub_item *entry,
                        unsigned depth)
{
	struct command cmd; /* one for the block's commands, reused */

	command_init(&cmd);
	while (next_command(&gp->lx, &cmd)) {
		unsigned at = first_command_word(&cmd);
		bool opens = nwords(&cmd) > at && is_bare(&cmd, nwords(&cmd) - 1, "{");

		if (is_bare(&cmd, at, "}"))
			break;
		if (opens && depth < GRUB_DEPTH_MAX)
			block_command(gp, items, &cmd, at, depth);
		else if (entry)
			entry_command(&entry->entry, &cmd, at);
		else if (depth == 0)
			note_assignment(gp, &cmd, at);
	}
	command_free(&cmd);
}

/* `${name}` or `$name`: the name. */
static char *variable_name(const char *value)
{
	if (value[0] != '$')
		return NULL;
	if (value[1] == '{') {
		const char *close = strchr(value, '}');

		return close && close[1] == '\0' ? g_strndup(value + 2, close - value - 2) : NULL;
	}
	return g_strdup(value + 1);
}

/*
 * grubenv's "name=value" lines by name, the first of a name kept, empty
 * values left out. Read once: a config may name variables on every line,
 * and searching the block each time made those lines cost its size.
 */
static GHashTable *grubenv_table(const char *grubenv)
{
	GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

	for (const char *l = grubenv; l && *l;) {
		const char *end = strchrnul(l, '\n');
		const char *eq = memchr(l, '=', (size_t)(end - l));

		if (eq && eq + 1 < end) {
			char *name = g_strndup(l, (gsize)(eq - l));

			if (g_hash_table_contains(t, name))
				g_free(name);
			else
				g_hash_table_insert(t, name,
				                    g_strndup(eq + 1, (gsize)(end - eq - 1)));
		}
		l = *end ? end + 1 : end;
	}
	return t;
}

/* A variable's value in grubenv, a copy. */
static char *grubenv_value(GHashTable *grubenv, const char *name)
{
	return g_strdup(g_hash_table_lookup(grubenv, name));
}

/* `set default=VALUE` or `default=VALUE`, at the top level. */
static void note_assignment(struct grub_parse *gp, const struct command *words, unsigned at)
{
	if (is_bare(words, at, "set"))
		at++;
	if (at >= nwords(words) || strncmp(word_at(words, at), "default=", 8) != 0)
		return;
	const struct word *w = word_get(words, at);
	const char *value = word_at(words, at) + 8;
	char *chosen = NULL;

	if (w->has_var) {
		g_autofree char *name = variable_name(value);

		chosen = name ? grubenv_value(gp->grubenv, name) : NULL;
	} else {
		chosen = g_strdup(value);
	}
	if (chosen && strlen(chosen) <= GRUB_DEFAULT_MAX) {
		g_free(gp->default_value);
		gp->default_value = chosen;
	} else {
		g_free(chosen);
	}
}

/*
 * An entry's index, or -1 if 'key' is not a number. By hand, not with
 * g_ascii_strtoull: its first call sets up a locale behind a lock, a
 * futex the sandbox's filter may refuse.
 */
static long entry_index(const char *key)
{
	long n = 0;

	if (!*key)
		return -1;
	for (; *key; key++) {
		if (!g_ascii_isdigit(*key))
			return -1;
		n = MIN(n * 10 + (*key - '0'), GRUB_ITEMS_MAX); /* past any entry, no overflow */
	}
	return n;
}

static struct grub_item *find_item(GPtrArray *items, const char *key)
{
	long index = entry_index(key);

	if (index >= 0)
		return (guint)index < items->len ? items->pdata[index] : NULL;
	for (unsigned i = 0; i < items->len; i++) {
		struct grub_item *item = items->pdata[i];

		if (!strcmp(item->title, key) || (item->id && !strcmp(item->id, key)))
			return item;
	}
	return NULL;
}

/* Follows "a>b>c" down the submenus; a submenu itself means its first entry. */
static struct grub_item *resolve_default(GPtrArray *items, const char *value)
{
	g_auto(GStrv) path = g_strsplit(value, ">", GRUB_DEPTH_MAX);
	struct grub_item *item = NULL;

	for (char **key = path; *key; key++) {
		item = find_item(items, *key);
		if (!item)
			return NULL;
		if (item->children)
			items = item->children;
	}
	while (item && item->children)
		item = item->children->len ? item->children->pdata[0] : NULL;
	return item;
}

static void take_entry(struct grub_item *item, struct boot_entry *out)
{
	*out = item->entry;
	memset(&item->entry, 0, sizeof(item->entry));
	out->title = g_strdup(item->title);
}

bool grub_cfg_default_entry(const char *text, size_t len, const char *grubenv,
                            struct boot_entry *out, GError **err)
{
	struct grub_parse gp = {.lx = {text, text + len}, .grubenv = grubenv_table(grubenv)};
	g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(grub_item_free);

	memset(out, 0, sizeof(*out));
	while (gp.lx.p < gp.lx.end)
		parse_block(&gp, items, NULL, 0); /* a stray '}' ends a block early: go on */
	struct grub_item *item = resolve_default(items, gp.default_value ? gp.default_value : "0");

	/* GRUB boots the first entry when the default names none. */
	if (!item)
		item = resolve_default(items, "0");
	g_free(gp.default_value);
	g_hash_table_unref(gp.grubenv);
	if (!item)
		return husk_fail(err, HUSK_EXIT_USAGE, "it has no menu entry");
	if (!item->entry.kernel)
		return husk_fail(err, HUSK_EXIT_USAGE, "its entry '%s' has no linux command",
		                 item->title);
	take_entry(item, out);
	return true;
}

/*
 * BLS options: a word naming a grubenv variable is its value there (Fedora
 * 30 to 32 kept the kernel's arguments in $kernelopts); other variables go.
 */
static char *bls_options(const char *options, const char *grubenv)
{
	g_auto(GStrv) words = g_strsplit_set(options, " \t", -1);
	g_autoptr(GHashTable) env = grubenv_table(grubenv);
	GString *s = g_string_new(NULL);

	for (char **w = words; *w; w++) {
		g_autofree char *name = variable_name(*w);
		g_autofree char *value = name ? grubenv_value(env, name) : NULL;
		const char *word = name ? value : *w;

		if (word && *word && !strchr(word, '$'))
			g_string_append_printf(s, "%s%s", s->len ? " " : "", word);
	}
	return g_string_free(s, FALSE);
}

/* One "key value" line; options may repeat, and so may initrd. */
static void bls_line(char *line, struct boot_entry *out, char **version, GString *options)
{
	size_t key_len = strcspn(line, " \t");

	if (line[0] == '#' || line[key_len] == '\0')
		return;
	line[key_len] = '\0';
	char *value = g_strstrip(line + key_len + 1);

	if (!strcmp(line, "title") && !out->title)
		out->title = g_strdup(value);
	else if (!strcmp(line, "version") && !*version)
		*version = g_strdup(value);
	else if (!strcmp(line, "linux") && !out->kernel)
		out->kernel = g_strdup(value);
	else if (!strcmp(line, "initrd"))
		g_ptr_array_add(out->initrds, g_strdup(value));
	else if (!strcmp(line, "options"))
		g_string_append_printf(options, "%s%s", options->len ? " " : "", value);
}

bool bls_entry_parse(const char *text, size_t len, const char *grubenv, struct boot_entry *out,
                     char **version)
{
	g_autofree char *copy = g_strndup(text, len);
	g_autoptr(GString) options = g_string_new(NULL);
	char *end = copy + strlen(copy);

	memset(out, 0, sizeof(*out));
	*version = NULL;
	out->initrds = g_ptr_array_new_with_free_func(g_free);
	/* Line by line in place: no copy of each, nor a search from each to the end. */
	for (char *l = copy, *nl; l; l = nl ? nl + 1 : NULL) {
		nl = memchr(l, '\n', (size_t)(end - l));
		if (nl)
			*nl = '\0';
		bls_line(g_strstrip(l), out, version, options);
	}
	out->options = bls_options(options->str, grubenv);
	if (!out->kernel) {
		boot_entry_clear(out);
		g_clear_pointer(version, g_free);
		return false;
	}
	return true;
}
