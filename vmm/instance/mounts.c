// SPDX-License-Identifier: MIT
#include "vmm/instance/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/virtio/fs.h"
#include "firmware/husk-agent.h"
#include "vmm/error.h"
#include "vmm/fdio.h"
#include "vmm/instance/agent_client.h"
#include "vmm/instance/protocol.h"
#include "vmm/machine.h"

#define AGENT_CALL_MS   30000 /* a mount waits up to 10 s in the guest for its device */
#define MOUNTS_MAX_JSON (256 * 1024)

/* --- a mount's words ---------------------------------------------------------- */

bool mount_guest_path_check(const char *cmd, const char *guest, GError **err)
{
	if (!agent_path_ok(guest))
		return husk_fail(err, HUSK_EXIT_USAGE,
		                 "%s: guest path \"%s\" is not absolute, or has a . or .. "
		                 "component, or is too long",
		                 cmd, guest);
	return true;
}

bool mount_host_check(const char *host, GError **err)
{
	struct stat st;

	if (stat(host, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return true;
	} else if (errno != ENOENT && errno != ENOTDIR) {
		/* A folder this process may not reach is not a missing one. */
		return husk_fail(err, HUSK_EXIT_USAGE, "mount: %s: %s", host, g_strerror(errno));
	}
	return husk_fail(err, HUSK_EXIT_USAGE, "mount: %s: no such folder on the host", host);
}

/* In the child: 0, or the errno that says why those ids may not. */
static int try_folder_as(const char *host, bool read_only, uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		return errno;
	int fd = open(host, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	/* The ids are real and effective now: access(2) asks about them. */
	return !read_only && faccessat(fd, ".", W_OK, 0) < 0 ? errno : 0;
}

bool mount_host_check_as(const char *host, bool read_only, uid_t uid, gid_t gid, GError **err)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(try_folder_as(host, read_only, uid, gid));
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return husk_fail(err, HUSK_EXIT_RUNTIME, "mount: %s: cannot check it as uid %u",
		                 host, (unsigned)uid);
	if (WEXITSTATUS(status))
		return husk_fail(err, HUSK_EXIT_USAGE, "mount: %s: uid %u may not %s it: %s", host,
		                 (unsigned)uid, read_only ? "open" : "write in",
		                 g_strerror(WEXITSTATUS(status)));
	return true;
}

bool mount_spec_parse(const char *text, struct mount_spec *out, GError **err)
{
	/* The guest path is absolute: the first ":/" ends the host's. */
	const char *sep = strstr(text, ":/");
	bool ro = g_str_has_suffix(text, ":ro");

	memset(out, 0, sizeof(*out));
	if (!sep || sep == text)
		return husk_fail(err, HUSK_EXIT_USAGE, "--mount: \"%s\" is not " MOUNT_SYNTAX,
		                 text);
	char *host = g_strndup(text, (gsize)(sep - text));
	char *guest = g_strndup(sep + 1, strlen(sep + 1) - (ro ? 3 : 0));
	if (!mount_guest_path_check("--mount", guest, err)) {
		g_free(host);
		g_free(guest);
		return false;
	}
	out->host = g_canonicalize_filename(host, NULL);
	out->guest = guest;
	out->read_only = ro;
	g_free(host);
	return true;
}

void mount_spec_clear(struct mount_spec *m)
{
	g_free(m->host);
	g_free(m->guest);
	memset(m, 0, sizeof(*m));
}

static void free_spec(gpointer p)
{
	mount_spec_clear(p);
	g_free(p);
}

GPtrArray *mounts_new(void)
{
	return g_ptr_array_new_with_free_func(free_spec);
}

/* --- mounts.json ------------------------------------------------------------- */

char *mounts_to_json(GPtrArray *specs)
{
	JsonArray *a = json_array_new();

	for (guint i = 0; i < specs->len; i++) {
		const struct mount_spec *m = specs->pdata[i];
		JsonObject *o = json_object_new();
		json_object_set_string_member(o, "host", m->host);
		json_object_set_string_member(o, "guest", m->guest);
		json_object_set_boolean_member(o, "ro", m->read_only);
		json_array_add_object_element(a, o);
	}
	JsonNode *root = json_node_init_array(json_node_alloc(), a);
	char *text = json_to_string(root, TRUE);
	json_node_unref(root);
	json_array_unref(a);
	return text;
}

static bool boolean_member(JsonObject *o, const char *key, bool *out)
{
	JsonNode *v = json_object_get_member(o, key);

	if (!v)
		return true;
	if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_BOOLEAN)
		return false;
	*out = json_node_get_boolean(v);
	return true;
}

/* One entry: strings where they belong, an absolute host folder, a sound guest path. */
static struct mount_spec *spec_from_json(JsonNode *n, GError **err)
{
	JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
	const char *host = o ? protocol_string(o, "host") : NULL;
	const char *guest = o ? protocol_string(o, "guest") : NULL;
	bool ro = false;

	if (!host || !guest || !g_path_is_absolute(host) || !boolean_member(o, "ro", &ro)) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "mounts: an entry is not {host, guest, ro}");
		return NULL;
	}
	if (!mount_guest_path_check("mounts", guest, err))
		return NULL;
	struct mount_spec *m = g_new0(struct mount_spec, 1);
	*m = (struct mount_spec){g_strdup(host), g_strdup(guest), ro};
	return m;
}

GPtrArray *mounts_from_json(const char *text, GError **err)
{
	JsonParser *p = json_parser_new();
	GPtrArray *specs = mounts_new();
	JsonArray *a = NULL;

	if (json_parser_load_from_data(p, text, -1, NULL) && json_parser_get_root(p) &&
	    JSON_NODE_HOLDS_ARRAY(json_parser_get_root(p)))
		a = json_node_get_array(json_parser_get_root(p));
	bool ok = a && json_array_get_length(a) <= MOUNTS_MAX;
	if (!ok)
		husk_fail(err, HUSK_EXIT_RUNTIME, "mounts: not a JSON array of at most %d mounts",
		          MOUNTS_MAX);
	for (guint i = 0; ok && i < json_array_get_length(a); i++) {
		struct mount_spec *m = spec_from_json(json_array_get_element(a, i), err);
		ok = m != NULL;
		if (ok)
			g_ptr_array_add(specs, m);
	}
	g_object_unref(p);
	if (!ok)
		g_clear_pointer(&specs, g_ptr_array_unref);
	return specs;
}

GPtrArray *mounts_load(const char *path, GError **err)
{
	char *text = NULL;
	size_t len = 0;

	/* In a state folder, its user may have put anything there. */
	if (!fdio_read_regular(path, MOUNTS_MAX_JSON, &text, &len, NULL)) {
		if (errno == ENOENT)
			return mounts_new();
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path,
		          errno == EFBIG ? "too big" : g_strerror(errno));
		return NULL;
	}
	GPtrArray *specs = mounts_from_json(text, err);
	if (!specs)
		g_prefix_error(err, "%s: ", path);
	g_free(text);
	return specs;
}

bool mounts_save(const char *path, GPtrArray *specs, GError **err)
{
	char *text = mounts_to_json(specs);
	GError *e = NULL;
	bool ok = g_file_set_contents(path, text, -1, &e);

	if (!ok) {
		husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s", path, e->message);
		g_error_free(e);
	}
	g_free(text);
	return ok;
}

/* --- the agent's side of a mount ---------------------------------------------- */

/* The agent's greeting, from a HELLO of version 3 or later: MOUNT came with 3. */
static bool agent_handshake(int fd, int64_t deadline, GError **err)
{
	uint32_t version = 0;

	if (!agent_client_hello(fd, deadline, HUSK_EXIT_RUNTIME, &version, err))
		return false;
	if (version < 3)
		return husk_fail(err, HUSK_EXIT_RUNTIME,
		                 "the guest's agent speaks version %u; mounts need 3 "
		                 "(restart the instance for a newer agent)",
		                 version);
	return true;
}

static GByteArray *mount_request(bool umount, const char *tag, const char *guest, int slot,
                                 bool read_only)
{
	GByteArray *b = g_byte_array_new();
	char slot_text[8];
	uint8_t hdr[5];

	g_byte_array_set_size(b, 5);
	snprintf(slot_text, sizeof(slot_text), "%d", slot);
	const char *values[] = {umount ? NULL : tag, guest, slot >= 0 ? slot_text : NULL,
	                        !umount && read_only ? "" : NULL};
	const uint8_t tags[] = {AGENT_TAG, AGENT_PATH, AGENT_SLOT, AGENT_RO};
	for (size_t i = 0; i < G_N_ELEMENTS(values); i++) {
		if (!values[i])
			continue;
		guint at = b->len;
		g_byte_array_set_size(b, at + 5 + (guint)strlen(values[i]));
		agent_field_put(b->data + at, tags[i], values[i]);
	}
	agent_frame_header(hdr, umount ? AGENT_UMOUNT : AGENT_MOUNT, b->len - 5);
	memcpy(b->data, hdr, 5);
	return b;
}

/* The agent's answer: DONE, or its ERROR's text as the error (printable, one line). */
static bool agent_answer(int fd, int64_t deadline, GError **err)
{
	uint8_t hdr[5], text[512];

	if (!fdio_read_until(fd, hdr, 5, deadline))
		return husk_fail(err, HUSK_EXIT_RUNTIME, "the agent did not answer");
	uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
	               (uint32_t)hdr[3] << 24;
	if (len == 0 || len > AGENT_MAX_BODY)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "the agent's answer is no frame");
	uint32_t want = len - 1, keep = MIN(want, (uint32_t)sizeof(text) - 1);
	if (!fdio_read_until(fd, text, keep, deadline))
		return husk_fail(err, HUSK_EXIT_RUNTIME, "the agent did not answer");
	text[keep] = '\0';
	if (hdr[4] == AGENT_DONE && want == 0)
		return true;
	for (uint32_t i = 0; i < keep; i++)
		if (!g_ascii_isprint(text[i]))
			text[i] = '?';
	if (hdr[4] == AGENT_ERROR)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "the agent: %s", (char *)text);
	return husk_fail(err, HUSK_EXIT_RUNTIME, "the agent sent a frame of type %u", hdr[4]);
}

bool mount_agent_call(const char *vsock, bool umount, const char *tag, const char *guest, int slot,
                      bool read_only, GError **err)
{
	int64_t deadline = g_get_monotonic_time() + AGENT_CALL_MS * 1000;
	int fd = fdio_unix_connect(vsock);

	if (fd < 0)
		return husk_fail(err, HUSK_EXIT_RUNTIME, "%s: %s: %s", umount ? "umount" : "mount",
		                 vsock, g_strerror(errno));
	GByteArray *req = mount_request(umount, tag, guest, slot, read_only);
	bool ok = agent_handshake(fd, deadline, err);
	if (ok && !fdio_send_all(fd, req->data, req->len))
		ok = husk_fail(err, HUSK_EXIT_RUNTIME, "the agent went away");
	ok = ok && agent_answer(fd, deadline, err);
	if (!ok)
		g_prefix_error(err, "%s: ", umount ? "umount" : "mount");
	g_byte_array_unref(req);
	close(fd);
	return ok;
}

/* --- a running VM's mounts ------------------------------------------------------ */

struct mount_entry {
	struct mount_spec spec;
	char *tag;
	int slot; /* -1: not plugged (its folder was missing at the start) */
};

struct mount_table {
	struct machine *m;
	char *store, *vsock;
	struct fuse_id_map uid_map, gid_map;
	GPtrArray *entries; /* struct mount_entry * */
	unsigned int next_tag;
};

static void free_entry(gpointer p)
{
	struct mount_entry *e = p;

	mount_spec_clear(&e->spec);
	g_free(e->tag);
	g_free(e);
}

struct mount_table *mount_table_new(struct machine *m, const char *store, const char *vsock,
                                    struct fuse_id_map uid_map, struct fuse_id_map gid_map)
{
	struct mount_table *t = g_new0(struct mount_table, 1);

	*t = (struct mount_table){.m = m,
	                          .store = g_strdup(store),
	                          .vsock = g_strdup(vsock),
	                          .uid_map = uid_map,
	                          .gid_map = gid_map,
	                          .entries = g_ptr_array_new_with_free_func(free_entry)};
	return t;
}

void mount_table_free(struct mount_table *t)
{
	if (!t)
		return;
	g_ptr_array_unref(t->entries);
	g_free(t->store);
	g_free(t->vsock);
	g_free(t);
}

static struct mount_entry *find(struct mount_table *t, const char *guest, guint *index)
{
	for (guint i = 0; i < t->entries->len; i++) {
		struct mount_entry *e = t->entries->pdata[i];
		if (strcmp(e->spec.guest, guest) == 0) {
			if (index)
				*index = i;
			return e;
		}
	}
	return NULL;
}

/* Its own virtio-fs device, with --share's defaults: nothing crossed, nothing extra. */
static bool plug(struct mount_table *t, struct mount_entry *e, GError **err)
{
	struct share_config share = {.path = e->spec.host, .tag = e->tag};

	share.serve.read_only = e->spec.read_only;
	share.serve.uid_map = t->uid_map;
	share.serve.gid_map = t->gid_map;
	e->slot = mount_host_check(e->spec.host, err) ? machine_plug_share(t->m, &share, err) : -1;
	if (e->slot < 0)
		g_prefix_error(err, "%s: ", e->spec.guest);
	return e->slot >= 0;
}

static struct mount_entry *add_entry(struct mount_table *t, const struct mount_spec *spec)
{
	struct mount_entry *e = g_new0(struct mount_entry, 1);

	e->spec = (struct mount_spec){g_strdup(spec->host), g_strdup(spec->guest), spec->read_only};
	e->tag = g_strdup_printf("husk-mount-%u", t->next_tag++);
	e->slot = -1;
	g_ptr_array_add(t->entries, e);
	return e;
}

static bool save(struct mount_table *t, GError **err)
{
	if (!t->store)
		return true;
	GPtrArray *specs = g_ptr_array_new();
	for (guint i = 0; i < t->entries->len; i++)
		g_ptr_array_add(specs, &((struct mount_entry *)t->entries->pdata[i])->spec);
	bool ok = mounts_save(t->store, specs, err);
	g_ptr_array_unref(specs);
	return ok;
}

void mount_table_plug_stored(struct mount_table *t)
{
	GError *err = NULL;
	GPtrArray *specs = t->store ? mounts_load(t->store, &err) : NULL;

	if (err) {
		g_printerr("husk: %s\n", err->message);
		g_clear_error(&err);
	}
	for (guint i = 0; specs && i < specs->len; i++) {
		struct mount_entry *e = add_entry(t, specs->pdata[i]);
		if (!plug(t, e, &err)) {
			g_printerr("husk: %s (kept; husk umount forgets it)\n", err->message);
			g_clear_error(&err);
		}
	}
	if (specs)
		g_ptr_array_unref(specs);
}

struct remount_job {
	char *vsock;
	GPtrArray *entries; /* copies: the table may change meanwhile */
};

static gpointer remount_thread(gpointer data)
{
	struct remount_job *job = data;
	GError *err = NULL;

	for (guint i = 0; i < job->entries->len; i++) {
		struct mount_entry *e = job->entries->pdata[i];
		if (!mount_agent_call(job->vsock, false, e->tag, e->spec.guest, e->slot,
		                      e->spec.read_only, &err)) {
			g_printerr("husk: %s on %s: %s\n", e->spec.host, e->spec.guest,
			           err->message);
			g_clear_error(&err);
		}
	}
	g_ptr_array_unref(job->entries);
	g_free(job->vsock);
	g_free(job);
	return NULL;
}

void mount_table_remount(struct mount_table *t)
{
	struct remount_job *job = g_new0(struct remount_job, 1);

	job->vsock = g_strdup(t->vsock);
	job->entries = g_ptr_array_new_with_free_func(free_entry);
	for (guint i = 0; i < t->entries->len; i++) {
		struct mount_entry *e = t->entries->pdata[i];
		if (e->slot < 0)
			continue;
		struct mount_entry *c =
		    add_entry(&(struct mount_table){.entries = job->entries}, &e->spec);
		g_free(c->tag);
		c->tag = g_strdup(e->tag);
		c->slot = e->slot;
	}
	if (!job->entries->len) {
		g_ptr_array_unref(job->entries);
		g_free(job->vsock);
		g_free(job);
		return;
	}
	GThread *th = g_thread_try_new("husk-remount", remount_thread, job, NULL);
	if (th)
		g_thread_unref(th);
	else
		g_printerr("husk: cannot start a thread to mount the guest's folders again\n");
}

static void entry_json(JsonObject *o, const struct mount_entry *e)
{
	json_object_set_string_member(o, "host", e->spec.host);
	json_object_set_string_member(o, "guest", e->spec.guest);
	json_object_set_boolean_member(o, "ro", e->spec.read_only);
	json_object_set_string_member(o, "tag", e->tag);
	json_object_set_int_member(o, "slot", e->slot);
}

static bool op_mount(struct mount_table *t, JsonObject *request, JsonObject *reply, GError **err)
{
	struct mount_spec spec = {0};
	const char *host = protocol_string(request, "host");
	const char *guest = protocol_string(request, "guest");

	if (!host || !guest || !g_path_is_absolute(host) ||
	    !boolean_member(request, "ro", &spec.read_only))
		return husk_fail(err, HUSK_EXIT_USAGE, "mount: the request wants host, guest, ro");
	if (!mount_guest_path_check("mount", guest, err) || !mount_host_check(host, err))
		return false;
	if (find(t, guest, NULL))
		return husk_fail(err, HUSK_EXIT_USAGE, "mount: something is already mounted at %s",
		                 guest);
	if (t->entries->len >= MOUNTS_MAX)
		return husk_fail(err, HUSK_EXIT_USAGE, "mount: %d mounts is the most a guest has",
		                 MOUNTS_MAX);
	spec.host = (char *)host;
	spec.guest = (char *)guest;
	struct mount_entry *e = add_entry(t, &spec);
	if (!plug(t, e, err) || !save(t, err)) {
		if (e->slot >= 0)
			machine_unplug_share(t->m, e->slot, NULL);
		g_ptr_array_remove(t->entries, e);
		g_prefix_error(err, "mount: ");
		return false;
	}
	entry_json(reply, e);
	json_object_set_string_member(reply, "vsock", t->vsock);
	return true;
}

static bool op_umount(struct mount_table *t, JsonObject *request, GError **err)
{
	const char *guest = protocol_string(request, "guest");
	guint index;
	struct mount_entry *e = guest ? find(t, guest, &index) : NULL;

	if (!guest)
		return husk_fail(err, HUSK_EXIT_USAGE, "umount: the request wants guest");
	if (!e)
		return husk_fail(err, HUSK_EXIT_USAGE, "umount: nothing is mounted at %s", guest);
	if (e->slot >= 0 && !machine_unplug_share(t->m, e->slot, err))
		return false;
	g_ptr_array_remove_index(t->entries, index);
	return save(t, err);
}

bool mount_table_answer(struct mount_table *t, const char *op, JsonObject *request,
                        JsonObject *reply, bool *handled, GError **err)
{
	*handled = true;
	if (strcmp(op, "mount") == 0)
		return op_mount(t, request, reply, err);
	if (strcmp(op, "umount") == 0)
		return op_umount(t, request, err);
	if (strcmp(op, "mounts") == 0) {
		JsonArray *a = json_array_new();
		for (guint i = 0; i < t->entries->len; i++) {
			JsonObject *o = json_object_new();
			entry_json(o, t->entries->pdata[i]);
			json_array_add_object_element(a, o);
		}
		json_object_set_array_member(reply, "mounts", a);
		json_object_set_string_member(reply, "vsock", t->vsock);
		return true;
	}
	*handled = false;
	return false;
}
