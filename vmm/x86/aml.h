/* SPDX-License-Identifier: MIT */
/*
 * A small AML (ACPI Machine Language) writer for the DSDT: just the
 * constructs husk's tables use, encoded per ACPI 6.4 section 20.2.
 * Nested objects are written with aml_open()/aml_close(): the package
 * length is only known once the contents are written.
 */
#ifndef HUSK_AML_H
#define HUSK_AML_H

#include <glib.h>
#include <stdint.h>

/* Opcodes that open a PkgLength-scoped object (20.2.5). */
#define AML_SCOPE_OP   0x10
#define AML_BUFFER_OP  0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP  0x14
#define AML_DEVICE_OP  0x5b82 /* ExtOpPrefix DeviceOp */

/* Returns where the object's PkgLength goes; pass it to aml_close(). */
size_t aml_open(GByteArray *b, uint16_t op);
void aml_close(GByteArray *b, size_t mark);

/* PkgLength of 'len' bytes of contents (20.2.4); returns the bytes written to out[4]. */
unsigned int aml_pkg_length(uint32_t len, uint8_t out[4]);

void aml_name_string(GByteArray *b, const char *path); /* "\\_SB_.COM1", "_HID" */
void aml_integer(GByteArray *b, uint64_t value);
void aml_string(GByteArray *b, const char *s);
void aml_name(GByteArray *b, const char *name); /* NameOp + name: a value follows */
void aml_eisaid(GByteArray *b, const char *id); /* "PNP0501" -> compressed DWord */
uint32_t aml_eisaid_value(const char *id);

/* Resource descriptors for a ResourceTemplate (6.4.2), and its end tag. */
void aml_res_io(GByteArray *b, uint16_t port, uint8_t len);
void aml_res_irq(GByteArray *b, uint8_t irq);
/* Extended Interrupt (6.4.3.6): one GSI, consumed, edge-triggered, active high. */
void aml_res_interrupt(GByteArray *b, uint32_t gsi);
/* Notify(path, value) (19.6.92). */
void aml_notify(GByteArray *b, const char *path, uint8_t value);
/* Address space descriptors of a bridge's windows (6.4.3.5): a producer, min/max fixed. */
void aml_res_word_bus(GByteArray *b, uint16_t min, uint16_t max);
void aml_res_word_io(GByteArray *b, uint16_t min, uint16_t max);
void aml_res_dword_memory(GByteArray *b, uint32_t min, uint32_t max);
void aml_res_qword_memory(GByteArray *b, uint64_t min, uint64_t max);
/* Name(name, ResourceTemplate() { contents }) where 'res' holds the descriptors. */
void aml_resource_template(GByteArray *b, const char *name, const GByteArray *res);

#endif
