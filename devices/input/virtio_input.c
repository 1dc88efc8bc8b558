// SPDX-License-Identifier: MIT
#include "devices/input/virtio_input.h"

#include <glib.h>
#include <linux/input-event-codes.h>
#include <linux/input.h>
#include <string.h>

#define VIRTIO_ID_INPUT  18
#define CLASS_INPUT      0x098000 /* input device, other: as QEMU's virtio-input-pci */
#define INPUT_QUEUE_SIZE 64
#define EVENT_QUEUE      0
#define STATUS_QUEUE     1
#define CONFIG_UNION     8   /* select, subsel, size, 5 reserved, then the answer */
#define CONFIG_SIZE      136 /* 5.8.4 */
#define EVENT_BYTES      8

/* What the driver may select (5.8.4). */
enum {
	CFG_UNSET = 0x00,
	CFG_ID_NAME = 0x01,
	CFG_ID_SERIAL = 0x02,
	CFG_ID_DEVIDS = 0x03,
	CFG_PROP_BITS = 0x10,
	CFG_EV_BITS = 0x11,
	CFG_ABS_INFO = 0x12,
};

struct virtio_input {
	enum input_kind kind;
	struct virtio_pci *t;
	/* The configuration the driver last selected: on vCPU threads, under the transport's lock.
	 */
	uint8_t select, subsel, size;
	uint8_t answer[CONFIG_SIZE - CONFIG_UNION];
	/* Events waiting for buffers: filled from any thread, taken on the I/O thread. */
	GMutex lock;
	struct input_event_v ring[INPUT_MAX_PENDING];
	unsigned int head, count;
	uint64_t dropped;
	unsigned int buttons; /* the tablet's, as last sent */
};

/* --- configuration -------------------------------------------------------------------------- */

static void set_bit(uint8_t *map, unsigned int bit)
{
	map[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

/* The bitmap's size: up to the byte holding its highest bit (0 if empty). */
static uint8_t bitmap_size(const uint8_t *map, size_t len)
{
	while (len && !map[len - 1])
		len--;
	return (uint8_t)len;
}

static void event_bits(const struct virtio_input *in, uint8_t type, uint8_t *map)
{
	if (in->kind == INPUT_KEYBOARD) {
		if (type == EV_KEY)
			for (unsigned int k = KEY_ESC; k <= KEY_COMPOSE; k++)
				set_bit(map, k);
		else if (type == EV_REP)
			set_bit(map, 0); /* any answer: the driver's input core repeats keys */
		else if (type == EV_LED) {
			set_bit(map, LED_NUML);
			set_bit(map, LED_CAPSL);
			set_bit(map, LED_SCROLLL);
		}
		return;
	}
	if (type == EV_KEY) {
		set_bit(map, BTN_LEFT);
		set_bit(map, BTN_RIGHT);
		set_bit(map, BTN_MIDDLE);
	} else if (type == EV_ABS) {
		set_bit(map, ABS_X);
		set_bit(map, ABS_Y);
	} else if (type == EV_REL) {
		set_bit(map, REL_WHEEL);
	}
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Works out the answer to what the driver selected (unknown selections answer size 0). */
static void select_answer(struct virtio_input *in)
{
	uint8_t *a = in->answer;
	const char *name;

	memset(a, 0, sizeof(in->answer));
	in->size = 0;
	switch (in->select) {
	case CFG_ID_NAME:
		if (in->subsel)
			break;
		name = in->kind == INPUT_KEYBOARD ? "husk virtio keyboard" : "husk virtio tablet";
		in->size = (uint8_t)strlen(name);
		memcpy(a, name, in->size);
		break;
	case CFG_ID_DEVIDS:
		if (in->subsel)
			break;
		a[0] = BUS_VIRTUAL; /* bustype, vendor, product, version: le16 each */
		a[4] = in->kind == INPUT_KEYBOARD ? 1 : 2;
		a[6] = 1;
		in->size = 8;
		break;
	case CFG_EV_BITS:
		event_bits(in, in->subsel, a);
		in->size = bitmap_size(a, sizeof(in->answer));
		break;
	case CFG_ABS_INFO:
		if (in->kind != INPUT_TABLET || (in->subsel != ABS_X && in->subsel != ABS_Y))
			break;
		put_le32(a + 4, INPUT_ABS_MAX); /* min 0, max, fuzz 0, flat 0, res 0 */
		in->size = 20;
		break;
	default: /* CFG_UNSET, a serial, property bits: none */
		break;
	}
}

static void input_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_input *in = dev;
	uint8_t head[CONFIG_UNION] = {in->select, in->subsel, in->size};

	/* The transport keeps offset + len within CONFIG_SIZE. */
	for (uint32_t i = 0; i < len; i++) {
		uint32_t at = offset + i;
		data[i] = at < CONFIG_UNION ? head[at] : in->answer[at - CONFIG_UNION];
	}
}

/* Only select and subsel are the driver's to write; the rest is ignored (5.8.5). */
static void input_config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	struct virtio_input *in = dev;
	bool changed = false;

	for (uint32_t i = 0; i < len; i++) {
		if (offset + i == 0)
			in->select = data[i], changed = true;
		else if (offset + i == 1)
			in->subsel = data[i], changed = true;
	}
	if (changed)
		select_answer(in);
}

/* --- events ------------------------------------------------------------------------------------
 */

bool virtio_input_send(struct virtio_input *in, const struct input_event_v *ev, unsigned int n)
{
	bool fits;

	g_mutex_lock(&in->lock);
	fits = n < INPUT_MAX_PENDING - in->count;
	if (fits) {
		for (unsigned int i = 0; i <= n; i++) {
			struct input_event_v syn = {EV_SYN, SYN_REPORT, 0};
			in->ring[(in->head + in->count++) % INPUT_MAX_PENDING] =
			    i < n ? ev[i] : syn;
		}
	} else {
		in->dropped += n;
	}
	g_mutex_unlock(&in->lock);
	if (fits && in->t)
		virtio_pci_wake(in->t, EVENT_QUEUE);
	return fits;
}

bool virtio_input_key(struct virtio_input *in, uint16_t code, bool down)
{
	struct input_event_v ev = {EV_KEY, code, down};

	return virtio_input_send(in, &ev, 1);
}

/* VNC's button bits to evdev's, in the order of the mask. */
static const uint16_t button_codes[3] = {BTN_LEFT, BTN_MIDDLE, BTN_RIGHT};

bool virtio_input_pointer(struct virtio_input *in, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                          unsigned int buttons)
{
	struct input_event_v ev[8];
	unsigned int n = 0, changed;

	w = MAX(w, 2), h = MAX(h, 2);
	x = MIN(x, w - 1), y = MIN(y, h - 1);
	ev[n++] = (struct input_event_v){EV_ABS, ABS_X,
	                                 (uint32_t)((uint64_t)x * INPUT_ABS_MAX / (w - 1))};
	ev[n++] = (struct input_event_v){EV_ABS, ABS_Y,
	                                 (uint32_t)((uint64_t)y * INPUT_ABS_MAX / (h - 1))};
	g_mutex_lock(&in->lock);
	changed = (in->buttons ^ buttons) & 7;
	in->buttons = buttons;
	g_mutex_unlock(&in->lock);
	for (unsigned int b = 0; b < 3; b++)
		if (changed & (1u << b))
			ev[n++] = (struct input_event_v){EV_KEY, button_codes[b],
			                                 !!(buttons & (1u << b))};
	/* The wheel's buttons are clicks: each press one step. */
	if (buttons & 8)
		ev[n++] = (struct input_event_v){EV_REL, REL_WHEEL, 1};
	if (buttons & 16)
		ev[n++] = (struct input_event_v){EV_REL, REL_WHEEL, (uint32_t)-1};
	return virtio_input_send(in, ev, n);
}

uint32_t virtio_input_fill(struct virtio_input *in, const struct vq_chain *chain)
{
	uint8_t bytes[EVENT_BYTES];
	uint32_t done = 0, left = EVENT_BYTES;

	/* A buffer too small for an event takes none: the event waits for the next. */
	if (chain->in_len < EVENT_BYTES)
		return 0;
	g_mutex_lock(&in->lock);
	if (!in->count) {
		g_mutex_unlock(&in->lock);
		return 0;
	}
	struct input_event_v ev = in->ring[in->head];
	in->head = (in->head + 1) % INPUT_MAX_PENDING;
	in->count--;
	g_mutex_unlock(&in->lock);
	bytes[0] = (uint8_t)ev.type, bytes[1] = (uint8_t)(ev.type >> 8);
	bytes[2] = (uint8_t)ev.code, bytes[3] = (uint8_t)(ev.code >> 8);
	put_le32(bytes + 4, ev.value);
	for (unsigned int i = 0; i < chain->nseg && left; i++) {
		const struct vq_seg *s = &chain->seg[i];
		if (!s->device_writable)
			continue;
		uint32_t n = MIN(s->len, left);
		memcpy(s->addr, bytes + done, n);
		done += n;
		left -= n;
	}
	return done;
}

unsigned int virtio_input_pending(struct virtio_input *in)
{
	g_mutex_lock(&in->lock);
	unsigned int n = in->count;
	g_mutex_unlock(&in->lock);
	return n;
}

uint64_t virtio_input_dropped(struct virtio_input *in)
{
	g_mutex_lock(&in->lock);
	uint64_t n = in->dropped;
	g_mutex_unlock(&in->lock);
	return n;
}

/* --- the device ---------------------------------------------------------------------------------
 */

struct virtio_input *virtio_input_new(enum input_kind kind)
{
	struct virtio_input *in = g_new0(struct virtio_input, 1);

	in->kind = kind;
	g_mutex_init(&in->lock);
	return in;
}

void virtio_input_free(struct virtio_input *in)
{
	if (!in)
		return;
	g_mutex_clear(&in->lock);
	g_free(in);
}

void virtio_input_set_transport(struct virtio_input *in, struct virtio_pci *t)
{
	in->t = t;
}

static void input_notify(void *dev, struct virtio_pci *t, struct virtqueue *vq, unsigned int q)
{
	struct virtio_input *in = dev;
	struct vq_chain *chain = g_new(struct vq_chain, 1); /* ~16 KiB: not on the loop's stack */
	unsigned int budget = VQ_BURST;

	if (q == EVENT_QUEUE) {
		/* Only as many buffers as there are events: the rest wait for the next. */
		while (budget && virtio_input_pending(in) && vq_pop(vq, chain) > 0) {
			vq_push(vq, chain->head, virtio_input_fill(in, chain));
			budget--;
		}
	} else {
		/* LEDs and the like: taken, and nothing to show them on. */
		while (budget && vq_pop(vq, chain) > 0) {
			vq_push(vq, chain->head, 0);
			budget--;
		}
	}
	g_free(chain);
	if (!budget)
		virtio_pci_wake(t, q);
	virtio_pci_used(t, vq, q);
}

/* A reset forgets the events not yet taken, and what the driver selected. */
static void input_reset(void *dev)
{
	struct virtio_input *in = dev;

	g_mutex_lock(&in->lock);
	in->head = in->count = 0;
	in->buttons = 0;
	g_mutex_unlock(&in->lock);
	in->select = in->subsel = 0;
	select_answer(in);
}

const struct virtio_device_ops virtio_input_ops = {
    .name = "virtio-input",
    .device_id = VIRTIO_ID_INPUT,
    .class_code = CLASS_INPUT,
    .num_queues = 2,
    .queue_size = INPUT_QUEUE_SIZE,
    .config_size = CONFIG_SIZE,
    .config_read = input_config_read,
    .config_write = input_config_write,
    .queue_notify = input_notify,
    .reset = input_reset,
};
