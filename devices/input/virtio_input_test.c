// SPDX-License-Identifier: MIT
#include <glib.h>
#include <linux/input-event-codes.h>
#include <string.h>

#include "devices/input/keymap.h"
#include "devices/input/virtio_input.h"

#define CONFIG_SIZE 136

/* The driver's side of the configuration: select, subsel, then read size and the answer. */
static uint8_t cfg_select(struct virtio_input *in, uint8_t select, uint8_t subsel, uint8_t *answer)
{
	uint8_t cfg[CONFIG_SIZE];

	virtio_input_ops.config_write(in, 0, &select, 1);
	virtio_input_ops.config_write(in, 1, &subsel, 1);
	virtio_input_ops.config_read(in, 0, cfg, CONFIG_SIZE);
	g_assert_cmpuint(cfg[0], ==, select);
	g_assert_cmpuint(cfg[1], ==, subsel);
	if (answer)
		memcpy(answer, cfg + 8, 128);
	return cfg[2];
}

static bool bit(const uint8_t *map, unsigned int b)
{
	return map[b / 8] & (1u << (b % 8));
}

static void test_keyboard_config(void)
{
	struct virtio_input *in = virtio_input_new(INPUT_KEYBOARD);
	uint8_t a[128];
	uint8_t size = cfg_select(in, 0x01, 0, a);

	g_assert_cmpuint(size, ==, strlen("husk virtio keyboard"));
	g_assert_cmpmem(a, size, "husk virtio keyboard", size);
	size = cfg_select(in, 0x11, EV_KEY, a);
	g_assert_cmpuint(size, >=, KEY_COMPOSE / 8 + 1);
	g_assert_true(bit(a, KEY_A) && bit(a, KEY_ENTER) && bit(a, KEY_LEFTSHIFT));
	g_assert_false(bit(a, 0));
	g_assert_cmpuint(cfg_select(in, 0x11, EV_REP, NULL), >, 0);
	g_assert_cmpuint(cfg_select(in, 0x11, EV_ABS, NULL), ==, 0);
	g_assert_cmpuint(cfg_select(in, 0x12, ABS_X, NULL), ==, 0);
	virtio_input_free(in);
}

static void test_tablet_config(void)
{
	struct virtio_input *in = virtio_input_new(INPUT_TABLET);
	uint8_t a[128];

	g_assert_cmpuint(cfg_select(in, 0x11, EV_ABS, a), ==, 1);
	g_assert_true(bit(a, ABS_X) && bit(a, ABS_Y));
	g_assert_cmpuint(cfg_select(in, 0x11, EV_KEY, a), ==, BTN_MIDDLE / 8 + 1);
	g_assert_true(bit(a, BTN_LEFT) && bit(a, BTN_RIGHT) && bit(a, BTN_MIDDLE));
	g_assert_cmpuint(cfg_select(in, 0x12, ABS_Y, a), ==, 20);
	uint32_t info[5];
	memcpy(info, a, sizeof(info));
	g_assert_cmpuint(info[0], ==, 0);
	g_assert_cmpuint(info[1], ==, INPUT_ABS_MAX);
	g_assert_cmpuint(cfg_select(in, 0x03, 0, a), ==, 8);
	virtio_input_free(in);
}

/* A hostile driver: every select and subsel, odd offsets, writes over the read-only parts. */
static void test_hostile_config(void)
{
	struct virtio_input *in = virtio_input_new(INPUT_TABLET);
	uint8_t a[128], junk[CONFIG_SIZE];

	for (unsigned int s = 0; s < 256; s++)
		for (unsigned int sub = 0; sub < 256; sub += 17) {
			uint8_t size = cfg_select(in, (uint8_t)s, (uint8_t)sub, a);
			g_assert_cmpuint(size, <=, 128);
			/* Nothing answered past its size. */
			for (unsigned int i = size; i < 128; i++)
				g_assert_cmpuint(a[i], ==, 0);
		}
	/* The size and the answer are the device's: writes there change nothing. */
	cfg_select(in, 0x01, 0, NULL);
	memset(junk, 0xff, sizeof(junk));
	virtio_input_ops.config_write(in, 2, junk, CONFIG_SIZE - 2);
	g_assert_cmpuint(cfg_select(in, 0x01, 0, a), ==, strlen("husk virtio tablet"));
	g_assert_cmpmem(a, 18, "husk virtio tablet", 18);
	/* One write of four bytes sets select and subsel together. */
	uint8_t four[4] = {0x12, ABS_X, 0x55, 0x55};
	virtio_input_ops.config_write(in, 0, four, 4);
	virtio_input_ops.config_read(in, 2, junk, 1);
	g_assert_cmpuint(junk[0], ==, 20);
	/* Reads at every offset and width stay inside the configuration. */
	for (uint32_t off = 0; off < CONFIG_SIZE; off++)
		for (uint32_t len = 1; len <= 4 && off + len <= CONFIG_SIZE; len *= 2)
			virtio_input_ops.config_read(in, off, junk, len);
	virtio_input_free(in);
}

/* An event-queue chain: the given segments, writable or not. */
static void chain_of(struct vq_chain *c, uint8_t *buf, const uint32_t *lens, const bool *writable,
                     unsigned int n)
{
	memset(c, 0, sizeof(*c));
	for (unsigned int i = 0; i < n; i++) {
		c->seg[i] = (struct vq_seg){buf, lens[i], writable[i]};
		buf += lens[i];
		if (writable[i])
			c->in_len += lens[i];
		else
			c->out_len += lens[i];
	}
	c->nseg = n;
}

static void test_events(void)
{
	struct virtio_input *in = virtio_input_new(INPUT_KEYBOARD);
	struct vq_chain *c = g_new(struct vq_chain, 1);
	uint8_t buf[64];
	uint32_t one[1] = {8};
	bool w[3] = {true, true, true};

	chain_of(c, buf, one, w, 1);
	g_assert_cmpuint(virtio_input_fill(in, c), ==, 0); /* nothing pending */
	g_assert_true(virtio_input_key(in, KEY_A, true));
	g_assert_cmpuint(virtio_input_pending(in), ==, 2);
	g_assert_cmpuint(virtio_input_fill(in, c), ==, 8);
	static const uint8_t key_a[8] = {EV_KEY, 0, KEY_A, 0, 1, 0, 0, 0};
	g_assert_cmpmem(buf, 8, key_a, 8);
	/* The SYN_REPORT after it, split over three buffers of 3, 1 and 4 bytes. */
	uint32_t split[3] = {3, 1, 4};
	memset(buf, 0xee, sizeof(buf));
	chain_of(c, buf, split, w, 3);
	g_assert_cmpuint(virtio_input_fill(in, c), ==, 8);
	static const uint8_t syn[8] = {0};
	g_assert_cmpmem(buf, 8, syn, 8);
	g_assert_cmpuint(virtio_input_pending(in), ==, 0);
	g_free(c);
	virtio_input_free(in);
}

/* Buffers too small, or not writable: no event is lost to them. */
static void test_hostile_buffers(void)
{
	struct virtio_input *in = virtio_input_new(INPUT_KEYBOARD);
	struct vq_chain *c = g_new(struct vq_chain, 1);
	uint8_t buf[64];
	uint32_t lens[2] = {7, 8};
	bool w[2] = {true, false};

	virtio_input_key(in, KEY_B, true);
	chain_of(c, buf, lens, w, 1);
	g_assert_cmpuint(virtio_input_fill(in, c), ==, 0);
	chain_of(c, buf, lens + 1, w + 1, 1);
	g_assert_cmpuint(virtio_input_fill(in, c), ==, 0);
	g_assert_cmpuint(virtio_input_pending(in), ==, 2);
	/* A driver that takes nothing: the queue stops at its bound, and counts the rest. */
	unsigned int sent = 0;
	while (virtio_input_key(in, KEY_C, true))
		sent++;
	g_assert_cmpuint(virtio_input_pending(in), <=, INPUT_MAX_PENDING);
	g_assert_cmpuint(virtio_input_pending(in), ==, 2 + 2 * sent);
	g_assert_cmpuint(virtio_input_dropped(in), ==, 1);
	/* A reset forgets them. */
	virtio_input_ops.reset(in);
	g_assert_cmpuint(virtio_input_pending(in), ==, 0);
	g_free(c);
	virtio_input_free(in);
}

static void test_pointer(void)
{
	struct virtio_input *in = virtio_input_new(INPUT_TABLET);
	struct vq_chain *c = g_new(struct vq_chain, 1);
	uint8_t buf[8];
	uint32_t len[1] = {8};
	bool w[1] = {true};
	uint16_t type, code;
	uint32_t value;

	/* The far corner of 1024x768 is the axes' maximum; x beyond it is clamped. */
	g_assert_true(virtio_input_pointer(in, 5000, 767, 1024, 768, 1));
	g_assert_cmpuint(virtio_input_pending(in), ==, 4); /* X, Y, BTN_LEFT, SYN */
	chain_of(c, buf, len, w, 1);
	uint16_t want[3][2] = {{EV_ABS, ABS_X}, {EV_ABS, ABS_Y}, {EV_KEY, BTN_LEFT}};
	for (int i = 0; i < 3; i++) {
		virtio_input_fill(in, c);
		memcpy(&type, buf, 2), memcpy(&code, buf + 2, 2), memcpy(&value, buf + 4, 4);
		g_assert_cmpuint(type, ==, want[i][0]);
		g_assert_cmpuint(code, ==, want[i][1]);
		g_assert_cmpuint(value, ==, i < 2 ? INPUT_ABS_MAX : 1);
	}
	g_free(c);
	virtio_input_free(in);
}

static void test_keymap(void)
{
	g_assert_cmpuint(keymap_evdev_code('a'), ==, KEY_A);
	g_assert_cmpuint(keymap_evdev_code('Q'), ==, KEY_Q);
	g_assert_cmpuint(keymap_evdev_code('!'), ==, KEY_1);
	g_assert_cmpuint(keymap_evdev_code('0'), ==, KEY_0);
	g_assert_cmpuint(keymap_evdev_code(0xff0d), ==, KEY_ENTER);
	g_assert_cmpuint(keymap_evdev_code(0xffe1), ==, KEY_LEFTSHIFT);
	g_assert_cmpuint(keymap_evdev_code(0xffc9), ==, KEY_F12);
	g_assert_cmpuint(keymap_evdev_code(0x20ac), ==, 0); /* the euro sign: no key here */
	for (uint32_t k = 0x20; k < 0x7f; k++)
		g_assert_cmpuint(keymap_evdev_code(k), !=, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/virtio-input/keyboard-config", test_keyboard_config);
	g_test_add_func("/virtio-input/tablet-config", test_tablet_config);
	g_test_add_func("/virtio-input/hostile-config", test_hostile_config);
	g_test_add_func("/virtio-input/events", test_events);
	g_test_add_func("/virtio-input/hostile-buffers", test_hostile_buffers);
	g_test_add_func("/virtio-input/pointer", test_pointer);
	g_test_add_func("/virtio-input/keymap", test_keymap);
	return g_test_run();
}
