// SPDX-License-Identifier: MIT
#include "vmm/x86/aml.h"

#include <string.h>

#define AML_ZERO_OP         0x00
#define AML_ONE_OP          0x01
#define AML_NAME_OP         0x08
#define AML_BYTE_PREFIX     0x0a
#define AML_WORD_PREFIX     0x0b
#define AML_DWORD_PREFIX    0x0c
#define AML_STRING_PREFIX   0x0d
#define AML_QWORD_PREFIX    0x0e
#define AML_DUAL_NAME       0x2e
#define AML_MULTI_NAME      0x2f
#define AML_ROOT_CHAR       '\\'
#define RES_IO_DESCRIPTOR   0x47 /* small item, 7 bytes of data (6.4.2.5) */
#define RES_IRQ_NOFLAGS     0x22 /* small item, 2 bytes: the IRQ mask (6.4.2.1) */
#define RES_END_TAG         0x79 /* small item, 1 byte: checksum (6.4.2.9) */
#define RES_DWORD_ADDRESS   0x87 /* large items (6.4.3.5.2, 6.4.3.5.3) */
#define RES_WORD_ADDRESS    0x88
#define RES_QWORD_ADDRESS   0x8a
#define RES_SPACE_MEMORY    0
#define RES_SPACE_IO        1
#define RES_SPACE_BUS       2
#define RES_FIXED_PRODUCER  0x0c /* _MAF and _MIF set, positive decode, producer */
#define RES_IO_ENTIRE_RANGE 0x03
#define RES_MEM_READ_WRITE  0x01 /* non-cacheable, read-write */

static void put(GByteArray *b, const void *data, size_t len)
{
	g_byte_array_append(b, data, (guint)len);
}

static void put8(GByteArray *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put_le(GByteArray *b, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		put8(b, (uint8_t)(v >> (8 * i)));
}

size_t aml_open(GByteArray *b, uint16_t op)
{
	if (op > 0xff)
		put8(b, op >> 8);
	put8(b, op & 0xff);
	return b->len;
}

unsigned int aml_pkg_length(uint32_t len, uint8_t out[4])
{
	/* The length counts its own encoding; one byte holds up to 63. */
	if (len + 1 <= 0x3f) {
		out[0] = (uint8_t)(len + 1);
		return 1;
	}
	unsigned int n = 2;
	while (n < 4 && len + n > (1U << (4 + 8 * (n - 1))) - 1)
		n++;
	uint32_t total = len + n;
	out[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
	for (unsigned int i = 1; i < n; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return n;
}

void aml_close(GByteArray *b, size_t mark)
{
	uint8_t enc[4];
	unsigned int n = aml_pkg_length((uint32_t)(b->len - mark), enc);
	size_t tail = b->len - mark;

	g_byte_array_set_size(b, b->len + n);
	memmove(b->data + mark + n, b->data + mark, tail);
	memcpy(b->data + mark, enc, n);
}

static void name_seg(GByteArray *b, const char *seg, size_t len)
{
	char padded[4] = {'_', '_', '_', '_'};

	memcpy(padded, seg, len > 4 ? 4 : len);
	put(b, padded, 4);
}

void aml_name_string(GByteArray *b, const char *path)
{
	if (*path == AML_ROOT_CHAR) {
		put8(b, AML_ROOT_CHAR);
		path++;
	}
	char **segs = g_strsplit(path, ".", -1);
	guint n = g_strv_length(segs);

	if (n == 2) {
		put8(b, AML_DUAL_NAME);
	} else if (n > 2) {
		put8(b, AML_MULTI_NAME);
		put8(b, (uint8_t)n);
	}
	for (guint i = 0; i < n; i++)
		name_seg(b, segs[i], strlen(segs[i]));
	g_strfreev(segs);
}

void aml_integer(GByteArray *b, uint64_t v)
{
	if (v == 0) {
		put8(b, AML_ZERO_OP);
	} else if (v == 1) {
		put8(b, AML_ONE_OP);
	} else if (v <= 0xff) {
		put8(b, AML_BYTE_PREFIX);
		put_le(b, v, 1);
	} else if (v <= 0xffff) {
		put8(b, AML_WORD_PREFIX);
		put_le(b, v, 2);
	} else if (v <= 0xffffffff) {
		put8(b, AML_DWORD_PREFIX);
		put_le(b, v, 4);
	} else {
		put8(b, AML_QWORD_PREFIX);
		put_le(b, v, 8);
	}
}

void aml_string(GByteArray *b, const char *s)
{
	put8(b, AML_STRING_PREFIX);
	put(b, s, strlen(s) + 1);
}

void aml_name(GByteArray *b, const char *name)
{
	put8(b, AML_NAME_OP);
	aml_name_string(b, name);
}

/*
 * A compressed EISA id: three letters of 5 bits each, then four hex
 * digits, stored big-endian in a DWord (6.1.5, _HID).
 */
uint32_t aml_eisaid_value(const char *id)
{
	uint32_t v =
	    (uint32_t)((id[0] - 0x40) & 0x1f) << 26 | (uint32_t)((id[1] - 0x40) & 0x1f) << 21 |
	    (uint32_t)((id[2] - 0x40) & 0x1f) << 16 | (uint32_t)g_ascii_xdigit_value(id[3]) << 12 |
	    (uint32_t)g_ascii_xdigit_value(id[4]) << 8 |
	    (uint32_t)g_ascii_xdigit_value(id[5]) << 4 | (uint32_t)g_ascii_xdigit_value(id[6]);

	return GUINT32_SWAP_LE_BE(v);
}

void aml_eisaid(GByteArray *b, const char *id)
{
	put8(b, AML_DWORD_PREFIX);
	put_le(b, aml_eisaid_value(id), 4);
}

void aml_res_io(GByteArray *b, uint16_t port, uint8_t len)
{
	put8(b, RES_IO_DESCRIPTOR);
	put8(b, 1); /* decodes 16 address bits */
	put_le(b, port, 2);
	put_le(b, port, 2);
	put8(b, 1); /* alignment */
	put8(b, len);
}

void aml_res_irq(GByteArray *b, uint8_t irq)
{
	put8(b, RES_IRQ_NOFLAGS);
	put_le(b, 1U << irq, 2);
}

void aml_res_interrupt(GByteArray *b, uint32_t gsi)
{
	put8(b, 0x89);        /* large item 9 */
	put_le(b, 6, 2);      /* flags, count, one DWord */
	put8(b, 0x01 | 0x02); /* consumer, edge; active high and exclusive are zeros */
	put8(b, 1);
	put_le(b, gsi, 4);
}

void aml_notify(GByteArray *b, const char *path, uint8_t value)
{
	put8(b, 0x86); /* NotifyOp */
	aml_name_string(b, path);
	aml_integer(b, value);
}

/* The fields every address space descriptor shares, for a window [min, max]. */
static void address_space(GByteArray *b, uint8_t tag, unsigned int width, uint8_t space,
                          uint8_t type_flags, uint64_t min, uint64_t max)
{
	put8(b, tag);
	put_le(b, 3 + 5 * width, 2); /* type, flags, type flags, then five fields */
	put8(b, space);
	put8(b, RES_FIXED_PRODUCER);
	put8(b, type_flags);
	put_le(b, 0, width); /* granularity */
	put_le(b, min, width);
	put_le(b, max, width);
	put_le(b, 0, width); /* translation offset */
	put_le(b, max - min + 1, width);
}

void aml_res_word_bus(GByteArray *b, uint16_t min, uint16_t max)
{
	address_space(b, RES_WORD_ADDRESS, 2, RES_SPACE_BUS, 0, min, max);
}

void aml_res_word_io(GByteArray *b, uint16_t min, uint16_t max)
{
	address_space(b, RES_WORD_ADDRESS, 2, RES_SPACE_IO, RES_IO_ENTIRE_RANGE, min, max);
}

void aml_res_dword_memory(GByteArray *b, uint32_t min, uint32_t max)
{
	address_space(b, RES_DWORD_ADDRESS, 4, RES_SPACE_MEMORY, RES_MEM_READ_WRITE, min, max);
}

void aml_res_qword_memory(GByteArray *b, uint64_t min, uint64_t max)
{
	address_space(b, RES_QWORD_ADDRESS, 8, RES_SPACE_MEMORY, RES_MEM_READ_WRITE, min, max);
}

void aml_resource_template(GByteArray *b, const char *name, const GByteArray *res)
{
	aml_name(b, name);
	size_t buf = aml_open(b, AML_BUFFER_OP);
	aml_integer(b, res->len + 2);
	put(b, res->data, res->len);
	put8(b, RES_END_TAG);
	put8(b, 0); /* zero: "the checksum is treated as correct" */
	aml_close(b, buf);
}
