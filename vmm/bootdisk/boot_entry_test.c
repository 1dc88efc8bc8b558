// SPDX-License-Identifier: MIT
/*
 * grub.cfg files in the shape grub-mkconfig writes on Debian 12 and Ubuntu
 * 24.04 (testdata/), small ones for each rule, BLS entries, and thousands
 * of seeded random mutations of them, each parsed or refused, never a crash.
 */
#include <glib.h>
#include <string.h>

#include "vmm/bootdisk/boot_entry.h"
#include "vmm/bootdisk/testdata_dir.h"

static char *testdata(const char *name, size_t *len)
{
	g_autofree char *path = g_build_filename(BOOTDISK_TESTDATA, name, NULL);
	char *text;
	GError *err = NULL;

	g_assert_true(g_file_get_contents(path, &text, len, &err));
	g_assert_no_error(err);
	return text;
}

static void default_of(const char *text, const char *grubenv, struct boot_entry *e)
{
	GError *err = NULL;

	g_assert_true(grub_cfg_default_entry(text, strlen(text), grubenv, e, &err));
	g_assert_no_error(err);
}

static void test_debian12(void)
{
	size_t len;
	g_autofree char *cfg = testdata("debian12-grub.cfg", &len);
	struct boot_entry e;

	default_of(cfg, NULL, &e);
	g_assert_cmpstr(e.title, ==, "Debian GNU/Linux");
	g_assert_cmpstr(e.kernel, ==, "/boot/vmlinuz-6.1.0-28-cloud-amd64");
	g_assert_cmpuint(e.initrds->len, ==, 1);
	g_assert_cmpstr(e.initrds->pdata[0], ==, "/boot/initrd.img-6.1.0-28-cloud-amd64");
	g_assert_cmpstr(e.options, ==,
	                "root=PARTUUID=5c6f1a2b-0d3e-4f5a-8b7c-9d0e1f2a3b4c ro console=tty0 "
	                "console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0");
	g_assert_cmpstr(e.search_uuid, ==, "8d6f3c2a-5b1e-4f0a-9c7d-2e4b6a8c0d1f");
	boot_entry_clear(&e);
}

/* The root GRUB searched is the separate /boot: paths are relative to it; $vt_handoff goes. */
static void test_ubuntu2404(void)
{
	size_t len;
	g_autofree char *cfg = testdata("ubuntu2404-grub.cfg", &len);
	struct boot_entry e;

	default_of(cfg, NULL, &e);
	g_assert_cmpstr(e.title, ==, "Ubuntu");
	g_assert_cmpstr(e.kernel, ==, "/vmlinuz-6.8.0-49-generic");
	g_assert_cmpstr(e.initrds->pdata[0], ==, "/initrd.img-6.8.0-49-generic");
	g_assert_cmpstr(e.options, ==, "root=LABEL=cloudimg-rootfs ro console=tty1 console=ttyS0");
	g_assert_cmpstr(e.search_uuid, ==, "7a1c3e5f-9b2d-4f6a-8c0e-1d3f5a7b9c2e");
	boot_entry_clear(&e);
}

/* GRUB_DEFAULT=saved: the default is grubenv's saved_entry, ids through the submenu. */
static void test_saved_entry(void)
{
	size_t len, env_len;
	g_autofree char *cfg = testdata("debian12-saved-grub.cfg", &len);
	g_autofree char *env = testdata("debian12-saved-grubenv", &env_len);
	struct boot_entry e;

	default_of(cfg, env, &e);
	g_assert_cmpstr(e.title, ==, "Debian GNU/Linux, with Linux 6.1.0-27-cloud-amd64");
	g_assert_cmpstr(e.kernel, ==, "/boot/vmlinuz-6.1.0-27-cloud-amd64");
	boot_entry_clear(&e);
	/* No grubenv: GRUB boots the first entry. */
	default_of(cfg, NULL, &e);
	g_assert_cmpstr(e.title, ==, "Debian GNU/Linux");
	boot_entry_clear(&e);
}

#define SMALL_ENTRIES                                                                              \
	"menuentry 'A' --id a { linux /a root=/dev/vda; }\n"                                       \
	"submenu 'Sub' --id sub {\n"                                                               \
	"  menuentry 'B' --id b {\n    linux (hd0,gpt2)/b x=1\n  }\n"                              \
	"  menuentry \"C \\\"quoted\\\"\" --id c {\n"                                              \
	"    linux /c acpi_osi=\"Windows 2009\" # a comment\n"                                     \
	"    initrd /ucode.img /c.img\n  }\n"                                                      \
	"}\n"

static const char small[] = "set default=\"1>1\"\n" SMALL_ENTRIES;

static void test_default_forms(void)
{
	static const struct {
		const char *set, *title;
	} cases[] = {
	    {"1>1", "C \"quoted\""},
	    {"sub>b", "B"},
	    {"Sub>C \"quoted\"", "C \"quoted\""},
	    {"a", "A"},
	    {"0", "A"},
	    {"1", "B"}, /* a submenu: its first entry */
	    {"7", "A"}, /* no such entry: the first */
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text =
		    g_strdup_printf("set default='%s'\n%s", cases[i].set, SMALL_ENTRIES);
		struct boot_entry e;

		default_of(text, NULL, &e);
		g_assert_cmpstr(e.title, ==, cases[i].title);
		boot_entry_clear(&e);
	}
}

static void test_paths_and_options(void)
{
	struct boot_entry e;

	default_of(small, NULL, &e);
	g_assert_cmpstr(e.kernel, ==, "/c");
	g_assert_cmpstr(e.options, ==, "acpi_osi=\"Windows 2009\"");
	g_assert_cmpuint(e.initrds->len, ==, 2);
	g_assert_cmpstr(e.initrds->pdata[0], ==, "/ucode.img");
	boot_entry_clear(&e);
	default_of("menuentry x { linux (hd0,gpt2)/b x=1 $y\n}", NULL, &e);
	g_assert_cmpstr(e.kernel, ==, "/b");
	g_assert_cmpstr(e.options, ==, "x=1");
	g_assert_cmpuint(e.initrds->len, ==, 0);
	boot_entry_clear(&e);
}

/*
 * Words as GRUB's shell splits them: quotes of both kinds and escapes
 * within one word, '$' in each, '#' inside a word and starting a comment.
 */
static void test_quoting(void)
{
	struct boot_entry e;

	default_of("# menuentry ignored { linux /no }\n"
	           "menuentry 'x y'\"z\\\"w\"\\ v$ --class c {\n"
	           "\tlinux /k a=1 \"b=c d\" 'e$f' g$h \"i\\$j\" k#l\tm;initrd /a /b # /c\n"
	           "}\n",
	           NULL, &e);
	g_assert_cmpstr(e.title, ==, "x yz\"w v$");
	g_assert_cmpstr(e.kernel, ==, "/k");
	g_assert_cmpstr(e.options, ==, "a=1 b=\"c d\" e$f i$j k#l m");
	g_assert_cmpuint(e.initrds->len, ==, 2);
	g_assert_cmpstr(e.initrds->pdata[1], ==, "/b");
	boot_entry_clear(&e);
}

/*
 * Ubuntu's cloud images (GRUB_FORCE_PARTUUID) try a boot without initrd
 * unless the last one failed. Both branches are read, in order: the
 * kernel's arguments are the initrd-less ones, and the initrd stays, which
 * boots whether or not the kernel needed it.
 */
static void test_initrdless_fallback(void)
{
	static const char cfg[] =
	    "menuentry 'Ubuntu' {\n"
	    "\tif [ \"${initrdfail}\" = 1 ]; then\n"
	    "\t  echo\t'GRUB_FORCE_PARTUUID set, initrdless boot failed. Attempting with initrd.'\n"
	    "\t  linux\t/vmlinuz-6.8.0-49-generic root=PARTUUID=0a1b ro console=tty1 "
	    "console=ttyS0\n"
	    "\t  initrd\t/initrd.img-6.8.0-49-generic\n"
	    "\telse\n"
	    "\t  echo\t'GRUB_FORCE_PARTUUID set, attempting initrdless boot.'\n"
	    "\t  linux\t/vmlinuz-6.8.0-49-generic root=PARTUUID=0a1b ro console=tty1 console=ttyS0 "
	    "panic=-1\n"
	    "\tfi\n"
	    "\tinitrdfail\n"
	    "}\n";
	struct boot_entry e;

	default_of(cfg, NULL, &e);
	g_assert_cmpstr(e.kernel, ==, "/vmlinuz-6.8.0-49-generic");
	g_assert_cmpstr(e.options, ==, "root=PARTUUID=0a1b ro console=tty1 console=ttyS0 panic=-1");
	g_assert_cmpuint(e.initrds->len, ==, 1);
	boot_entry_clear(&e);
}

static void test_refused(void)
{
	static const char *const bad[] = {
	    "",
	    "set default=0\n",
	    "menuentry 'x' {\n insmod ext2\n}\n",
	    "function f {\nmenuentry 'hidden' { linux /k }\n}\n",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		struct boot_entry e;
		GError *err = NULL;

		g_assert_false(grub_cfg_default_entry(bad[i], strlen(bad[i]), NULL, &e, &err));
		g_assert_nonnull(err);
		g_clear_error(&err);
	}
}

static void test_bls(void)
{
	static const char conf[] = "# Fedora\ntitle Fedora Linux (6.11.4-301.fc41.x86_64)\n"
	                           "version 6.11.4-301.fc41.x86_64\n"
	                           "linux /vmlinuz-6.11.4-301.fc41.x86_64\n"
	                           "initrd /initramfs-6.11.4-301.fc41.x86_64.img\n"
	                           "options $kernelopts\noptions rhgb quiet $tuned_params\n"
	                           "grub_users $grub_users\ngrub_class fedora\n";
	struct boot_entry e;
	char *version;

	g_assert_true(
	    bls_entry_parse(conf, strlen(conf), "kernelopts=root=UUID=1234 ro\n", &e, &version));
	g_assert_cmpstr(version, ==, "6.11.4-301.fc41.x86_64");
	g_assert_cmpstr(e.kernel, ==, "/vmlinuz-6.11.4-301.fc41.x86_64");
	g_assert_cmpstr(e.options, ==, "root=UUID=1234 ro rhgb quiet");
	g_assert_cmpstr(e.initrds->pdata[0], ==, "/initramfs-6.11.4-301.fc41.x86_64.img");
	boot_entry_clear(&e);
	g_free(version);
	g_assert_false(bls_entry_parse("title x\n", 8, NULL, &e, &version));
	g_assert_null(version);
	/* A variable is its first non-empty line in grubenv, the whole name matched. */
	static const char two[] = "linux /v\noptions $kernelopts $kernel $k\n";
	g_assert_true(bls_entry_parse(two, strlen(two),
	                              "kernelopts=\nkernelopts=a b\nkernelopts=c\nkernel=z\nk", &e,
	                              &version));
	g_assert_cmpstr(e.options, ==, "a b z");
	boot_entry_clear(&e);
	g_free(version);
}

/* Bytes GRUB's syntax gives meaning to, likelier to break a parser than random ones. */
static char interesting_byte(GRand *rand)
{
	static const char bytes[] = "{}'\"\\$;\n#>= \t\0\xff";

	return g_rand_boolean(rand) ? bytes[g_rand_int_range(rand, 0, sizeof(bytes) - 1)]
	                            : (char)g_rand_int_range(rand, 0, 256);
}

static void mutate(GRand *rand, GString *text)
{
	int edits = g_rand_int_range(rand, 1, 16);

	for (int i = 0; i < edits && text->len > 0; i++) {
		gssize at = g_rand_int_range(rand, 0, (gint32)text->len);
		char c = interesting_byte(rand);

		switch (g_rand_int_range(rand, 0, 8)) {
		case 0:
		case 1:
		case 2:
			text->str[at] = c;
			break;
		case 3:
		case 4: {
			gssize cut = g_rand_int_range(rand, 1, 200);

			g_string_erase(text, at, MIN((gssize)text->len - at, cut));
			break;
		}
		case 5:
		case 6:
			g_string_insert_c(text, at, c);
			break;
		default:
			g_string_truncate(text, (gsize)at);
			break;
		}
	}
}

static void test_hostile(void)
{
	static const char *const files[] = {"debian12-grub.cfg", "ubuntu2404-grub.cfg",
	                                    "debian12-saved-grub.cfg"};
	g_autoptr(GRand) rand = g_rand_new_with_seed(20261206);
	unsigned parsed = 0, refused = 0;

	for (int n = 0; n < 6000; n++) {
		size_t len;
		g_autofree char *cfg = testdata(files[n % 3], &len);
		g_autoptr(GString) text = g_string_new_len(cfg, (gssize)len);
		struct boot_entry e;
		GError *err = NULL;

		mutate(rand, text);
		if (grub_cfg_default_entry(text->str, text->len, NULL, &e, &err)) {
			g_assert_nonnull(e.kernel);
			boot_entry_clear(&e);
			parsed++;
		} else {
			g_assert_nonnull(err);
			g_clear_error(&err);
			refused++;
		}
	}
	g_test_message("%u parsed, %u refused", parsed, refused);
	g_assert_cmpuint(parsed, >, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/boot_entry/grub/debian12", test_debian12);
	g_test_add_func("/boot_entry/grub/ubuntu2404", test_ubuntu2404);
	g_test_add_func("/boot_entry/grub/saved-entry", test_saved_entry);
	g_test_add_func("/boot_entry/grub/default-forms", test_default_forms);
	g_test_add_func("/boot_entry/grub/paths-and-options", test_paths_and_options);
	g_test_add_func("/boot_entry/grub/quoting", test_quoting);
	g_test_add_func("/boot_entry/grub/initrdless-fallback", test_initrdless_fallback);
	g_test_add_func("/boot_entry/grub/refused", test_refused);
	g_test_add_func("/boot_entry/bls", test_bls);
	g_test_add_func("/boot_entry/grub/hostile", test_hostile);
	return g_test_run();
}
