// SPDX-License-Identifier: MIT
#include "devices/serial.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define RBR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

struct fixture {
	struct serial *s;
	int out[2]; /* pipe: the serial writes to out[1] */
	bool levels[64];
	unsigned int transitions;
	unsigned int rx_space_calls;
};

static void fake_irq_set(void *ctx, uint32_t gsi, bool level)
{
	struct fixture *f = ctx;

	g_assert_cmpuint(gsi, ==, 4);
	g_assert_cmpuint(f->transitions, <, G_N_ELEMENTS(f->levels));
	/* The device must only report changes. */
	if (f->transitions)
		g_assert_cmpint(level, !=, f->levels[f->transitions - 1]);
	else
		g_assert_true(level);
	f->levels[f->transitions++] = level;
}

static bool irq_level(const struct fixture *f)
{
	return f->transitions && f->levels[f->transitions - 1];
}

static void rx_space(void *ctx)
{
	struct fixture *f = ctx;

	f->rx_space_calls++;
}

static void setup(struct fixture *f, gconstpointer data)
{
	struct irq_line line = {.set = fake_irq_set, .ctx = f, .gsi = 4};

	memset(f, 0, sizeof(*f));
	g_assert_cmpint(pipe2(f->out, O_NONBLOCK), ==, 0);
	f->s = serial_create(line, f->out[1]);
	serial_set_rx_space_cb(f->s, rx_space, f);
}

static void teardown(struct fixture *f, gconstpointer data)
{
	serial_destroy(f->s);
	close(f->out[0]);
	close(f->out[1]);
}

static uint8_t rd(struct fixture *f, unsigned int reg)
{
	uint8_t val = 0;

	serial_access(f->s, reg, &val, 1, false);
	return val;
}

static void wr(struct fixture *f, unsigned int reg, uint8_t val)
{
	serial_access(f->s, reg, &val, 1, true);
}

/* Everything the serial has transmitted so far. */
static GString *output(struct fixture *f)
{
	GString *got = g_string_new(NULL);
	char buf[512];
	ssize_t n;

	while ((n = read(f->out[0], buf, sizeof(buf))) > 0)
		g_string_append_len(got, buf, n);
	g_assert_true(n == 0 || errno == EAGAIN);
	return got;
}

static void test_scratch(struct fixture *f, gconstpointer data)
{
	static const uint8_t values[] = {0x00, 0x55, 0xaa, 0xff, 0x5a};

	for (size_t i = 0; i < sizeof(values); i++) {
		wr(f, SCR, values[i]);
		g_assert_cmphex(rd(f, SCR), ==, values[i]);
	}
}

static void test_divisor_latch(struct fixture *f, gconstpointer data)
{
	wr(f, IER, 0x05);
	g_assert_true(serial_receive(f->s, (const uint8_t *)"z", 1) == 1);

	wr(f, LCR, 0x83);
	g_assert_cmphex(rd(f, RBR), ==, 0x01); /* reset divisor: 115200 baud */
	g_assert_cmphex(rd(f, IER), ==, 0x00);
	wr(f, RBR, 0x0c);
	wr(f, IER, 0x12);
	g_assert_cmphex(rd(f, RBR), ==, 0x0c);
	g_assert_cmphex(rd(f, IER), ==, 0x12);
	g_assert_cmphex(rd(f, LCR), ==, 0x83);

	/* With DLAB clear, the same ports are RBR and IER again, untouched. */
	wr(f, LCR, 0x03);
	g_assert_cmphex(rd(f, IER), ==, 0x05);
	g_assert_cmphex(rd(f, RBR), ==, 'z');
	g_assert_cmphex(rd(f, LCR), ==, 0x03);
	wr(f, LCR, 0x80);
	g_assert_cmphex(rd(f, RBR), ==, 0x0c); /* writing DLL did not transmit */
	g_autoptr(GString) got = output(f);
	g_assert_cmpuint(got->len, ==, 0);
}

/* drivers/tty/serial/8250/8250_port.c size_fifo(): loopback byte count. */
static unsigned int linux_size_fifo(struct fixture *f)
{
	uint8_t old_lcr, old_fcr, old_mcr, old_dll, old_dlm;
	unsigned int count;

	old_lcr = rd(f, LCR);
	wr(f, LCR, 0);
	old_fcr = rd(f, IIR); /* sic: Linux reads IIR here */
	old_mcr = rd(f, MCR);
	wr(f, FCR, 0x07);
	wr(f, MCR, 0x10);
	wr(f, LCR, 0x80);
	old_dll = rd(f, 0);
	old_dlm = rd(f, 1);
	wr(f, 0, 1);
	wr(f, 1, 0);
	wr(f, LCR, 0x03);
	for (count = 0; count < 256; count++)
		wr(f, RBR, count);
	for (count = 0; (rd(f, LSR) & 0x01) && count < 256; count++)
		rd(f, RBR);
	wr(f, FCR, old_fcr);
	wr(f, MCR, old_mcr);
	wr(f, LCR, 0x80);
	wr(f, 0, old_dll);
	wr(f, 1, old_dlm);
	wr(f, LCR, old_lcr);
	return count;
}

/* The variant probes of autoconfig_16550a(), all of which must fail. */
static const char *linux_probe_16550a(struct fixture *f)
{
	uint8_t status1, status2, ier;

	wr(f, LCR, 0xbf);
	if (rd(f, 2) == 0) /* EFR */
		return "16650-family";
	wr(f, LCR, 0x80);
	if (rd(f, 2) == 0)
		return "16650";

	wr(f, LCR, 0);
	status1 = rd(f, MCR);
	wr(f, LCR, 0xe0);
	status2 = rd(f, 2); /* EXCR1 on National parts */
	if (!((status2 ^ status1) & 0x10)) {
		wr(f, LCR, 0);
		wr(f, MCR, status1 ^ 0x10);
		wr(f, LCR, 0xe0);
		status2 = rd(f, 2);
		wr(f, LCR, 0);
		wr(f, MCR, status1);
		if ((status2 ^ status1) & 0x10)
			return "NS16550A";
	}

	wr(f, LCR, 0);
	wr(f, FCR, 0x21);
	status1 = rd(f, IIR) >> 5;
	wr(f, FCR, 0x01);
	wr(f, LCR, 0x80);
	wr(f, FCR, 0x21);
	status2 = rd(f, IIR) >> 5;
	wr(f, FCR, 0x01);
	wr(f, LCR, 0);
	if (status1 == 6 && status2 == 7)
		return "16750";

	ier = rd(f, IER);
	wr(f, IER, ier | 0x40);
	status1 = rd(f, IER) & 0x40;
	wr(f, IER, ier);
	if (status1)
		return "XScale";

	return linux_size_fifo(f) == 64 ? "U6_16550A" : "16550A";
}

/* autoconfig() in drivers/tty/serial/8250/8250_port.c, register by register. */
static const char *linux_autoconfig(struct fixture *f)
{
	uint8_t save_ier, ier0, ier15, save_mcr, save_lcr, msr;
	const char *type;

	save_ier = rd(f, IER);
	wr(f, IER, 0);
	ier0 = rd(f, IER) & 0x0f;
	wr(f, IER, 0x0f);
	ier15 = rd(f, IER) & 0x0f;
	wr(f, IER, save_ier);
	if (ier0 != 0 || ier15 != 0x0f)
		return "no IER";

	save_mcr = rd(f, MCR);
	save_lcr = rd(f, LCR);
	wr(f, MCR, 0x10 | 0x0a); /* LOOP | OUT2 | RTS */
	msr = rd(f, MSR) & 0xf0;
	wr(f, MCR, save_mcr);
	if (msr != 0x90)
		return "no loopback";

	wr(f, LCR, 0xbf);
	wr(f, 2, 0); /* EFR */
	wr(f, LCR, 0);
	wr(f, FCR, 0x01);
	switch (rd(f, IIR) >> 6) {
	case 3:
		type = linux_probe_16550a(f);
		break;
	case 2:
		type = "16550";
		break;
	default:
		type = "16450";
		break;
	}
	wr(f, LCR, save_lcr);

	wr(f, MCR, save_mcr);
	wr(f, FCR, 0x01);
	wr(f, FCR, 0x07);
	wr(f, FCR, 0);
	rd(f, RBR);
	wr(f, IER, 0);
	return type;
}

static void test_autoconfig(struct fixture *f, gconstpointer data)
{
	g_assert_cmpstr(linux_autoconfig(f), ==, "16550A");
	g_assert_false(irq_level(f));
	g_assert_cmphex(rd(f, IIR), ==, 0x01);
	g_assert_cmphex(rd(f, LSR), ==, 0x60);
	g_assert_cmphex(rd(f, MSR) & 0xf0, ==, 0xb0);
	/* The loopback bytes stayed inside the chip. */
	g_autoptr(GString) got = output(f);
	g_assert_cmpuint(got->len, ==, 0);
}

static void test_size_fifo(struct fixture *f, gconstpointer data)
{
	g_assert_cmpuint(linux_size_fifo(f), ==, 16);
}

static void test_tx(struct fixture *f, gconstpointer data)
{
	g_assert_cmphex(rd(f, IIR), ==, 0x01);
	g_assert_cmphex(rd(f, LSR), ==, 0x60);

	/* printk's path: poll THRE, interrupts off. */
	for (const char *p = "boot\r\n"; *p; p++) {
		g_assert_true(rd(f, LSR) & 0x20);
		wr(f, RBR, *p);
	}
	g_assert_cmpuint(f->transitions, ==, 0);

	/* Enabling THRI with THR empty raises THRE; reading IIR clears it. */
	wr(f, IER, 0x02);
	g_assert_true(irq_level(f));
	g_assert_cmphex(rd(f, IIR), ==, 0x02);
	g_assert_false(irq_level(f));
	g_assert_cmphex(rd(f, IIR), ==, 0x01);

	/* Linux's startup THRE test: 0 -> THRI re-asserts. */
	wr(f, IER, 0);
	wr(f, IER, 0x02);
	g_assert_cmphex(rd(f, IIR), ==, 0x02);
	g_assert_cmphex(rd(f, IIR), ==, 0x01);

	/* The tty path: each THR write is sent at once and THRE comes back. */
	wr(f, FCR, 0x01);
	wr(f, RBR, 'o');
	g_assert_true(irq_level(f));
	wr(f, RBR, 'k');
	g_assert_cmphex(rd(f, IIR), ==, 0xc2);
	wr(f, IER, 0);
	g_assert_false(irq_level(f));
	g_assert_cmphex(rd(f, IIR), ==, 0xc1);

	g_autoptr(GString) got = output(f);
	g_assert_cmpstr(got->str, ==, "boot\r\nok");
	g_assert_cmpuint(f->transitions, ==, 6);
}

static void test_rx(struct fixture *f, gconstpointer data)
{
	wr(f, FCR, 0x01); /* trigger level 1 */
	wr(f, IER, 0x01);
	g_assert_false(irq_level(f));
	g_assert_cmpuint(serial_receive(f->s, (const uint8_t *)"hi", 2), ==, 2);
	g_assert_true(irq_level(f));
	g_assert_cmphex(rd(f, IIR), ==, 0xc4);
	g_assert_cmphex(rd(f, LSR), ==, 0x61);
	g_assert_cmphex(rd(f, RBR), ==, 'h');
	g_assert_true(irq_level(f));
	g_assert_cmphex(rd(f, RBR), ==, 'i');
	g_assert_false(irq_level(f));
	g_assert_cmphex(rd(f, LSR), ==, 0x60);
	g_assert_cmphex(rd(f, IIR), ==, 0xc1);

	/* Below the trigger level (8) the data reports as a character timeout. */
	wr(f, FCR, 0x81);
	g_assert_cmpuint(serial_receive(f->s, (const uint8_t *)"abc", 3), ==, 3);
	g_assert_cmphex(rd(f, IIR), ==, 0xcc);
	g_assert_cmpuint(serial_receive(f->s, (const uint8_t *)"defgh", 5), ==, 5);
	g_assert_cmphex(rd(f, IIR), ==, 0xc4);

	/* Received data outranks THRE, which shows once the FIFO is drained. */
	wr(f, IER, 0x03);
	g_assert_cmphex(rd(f, IIR), ==, 0xc4);
	for (const char *p = "abcdefgh"; *p; p++)
		g_assert_cmphex(rd(f, RBR), ==, *p);
	g_assert_cmphex(rd(f, IIR), ==, 0xc2);
	g_assert_cmphex(rd(f, IIR), ==, 0xc1);
	g_assert_false(irq_level(f));

	/* FCR bit 1 empties the receive FIFO. */
	g_assert_cmpuint(serial_receive(f->s, (const uint8_t *)"xyz", 3), ==, 3);
	g_assert_true(irq_level(f));
	wr(f, FCR, 0x03);
	g_assert_false(irq_level(f));
	g_assert_cmphex(rd(f, LSR), ==, 0x60);

	/* Turning the FIFOs off empties them; a 16450 holds one byte. */
	g_assert_cmpuint(serial_receive(f->s, (const uint8_t *)"xyz", 3), ==, 3);
	wr(f, FCR, 0);
	g_assert_cmphex(rd(f, LSR), ==, 0x60);
	g_assert_cmpuint(serial_receive(f->s, (const uint8_t *)"uv", 2), ==, 1);
	g_assert_cmphex(rd(f, IIR), ==, 0x04);
	g_assert_cmphex(rd(f, RBR), ==, 'u');
	g_assert_cmphex(rd(f, IIR), ==, 0x01);
}

static void test_line_status(struct fixture *f, gconstpointer data)
{
	wr(f, FCR, 0x01);
	wr(f, MCR, 0x10);
	wr(f, IER, 0x04);
	for (int i = 0; i < 17; i++)
		wr(f, RBR, 'A' + i);
	g_assert_true(irq_level(f));
	g_assert_cmphex(rd(f, IIR), ==, 0xc6);
	g_assert_cmphex(rd(f, LSR), ==, 0x63);
	g_assert_false(irq_level(f));
	g_assert_cmphex(rd(f, LSR), ==, 0x61);
	/* The overrun lost the 17th byte, not the FIFO's contents. */
	for (int i = 0; i < 16; i++)
		g_assert_cmphex(rd(f, RBR), ==, 'A' + i);
	g_assert_cmphex(rd(f, LSR), ==, 0x60);
}

static void test_modem_status(struct fixture *f, gconstpointer data)
{
	g_assert_cmphex(rd(f, MSR), ==, 0xb0);
	wr(f, IER, 0x08);
	g_assert_false(irq_level(f));

	/* Loopback with all outputs off: CTS, DSR and DCD fall. */
	wr(f, MCR, 0x10);
	g_assert_true(irq_level(f));
	g_assert_cmphex(rd(f, IIR), ==, 0x00);
	g_assert_cmphex(rd(f, MSR), ==, 0x0b);
	g_assert_false(irq_level(f));
	g_assert_cmphex(rd(f, MSR), ==, 0x00);

	/* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
	wr(f, MCR, 0x1f);
	g_assert_cmphex(rd(f, MSR), ==, 0xfb);
	g_assert_cmphex(rd(f, MCR), ==, 0x1f);
	/* RI only reports its trailing edge. */
	wr(f, MCR, 0x1b);
	g_assert_cmphex(rd(f, MSR), ==, 0xb4);
	wr(f, MCR, 0xff);
	g_assert_cmphex(rd(f, MCR), ==, 0x1f);
	g_assert_cmphex(rd(f, MSR), ==, 0xf0);
}

static void test_rx_full(struct fixture *f, gconstpointer data)
{
	uint8_t buf[20];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = 'a' + i;
	g_assert_cmpuint(serial_receive(f->s, buf, 1), ==, 1);
	g_assert_cmpuint(serial_receive(f->s, buf, 1), ==, 0); /* 16450 mode */
	g_assert_cmpuint(f->rx_space_calls, ==, 0);
	/* Switching the FIFOs on empties the receiver: room again. */
	wr(f, FCR, 0x01);
	g_assert_cmpuint(f->rx_space_calls, ==, 1);

	g_assert_cmpuint(serial_receive(f->s, buf, sizeof(buf)), ==, 16);
	g_assert_cmpuint(serial_receive(f->s, buf + 16, 4), ==, 0);
	for (int i = 0; i < 15; i++)
		g_assert_cmphex(rd(f, RBR), ==, 'a' + i);
	g_assert_cmpuint(f->rx_space_calls, ==, 1);
	g_assert_cmphex(rd(f, RBR), ==, 'p');
	g_assert_cmpuint(f->rx_space_calls, ==, 2);
	rd(f, RBR);
	rd(f, LSR);
	g_assert_cmpuint(f->rx_space_calls, ==, 2);

	/* Input that fits does not ask for a callback. */
	g_assert_cmpuint(serial_receive(f->s, buf, 4), ==, 4);
	for (int i = 0; i < 4; i++)
		rd(f, RBR);
	g_assert_cmpuint(f->rx_space_calls, ==, 2);

	/* Loopback cuts the receiver off; leaving it brings the callback. */
	wr(f, MCR, 0x10);
	g_assert_cmpuint(serial_receive(f->s, buf, 4), ==, 0);
	g_assert_cmpuint(f->rx_space_calls, ==, 2);
	wr(f, MCR, 0x0b);
	g_assert_cmpuint(f->rx_space_calls, ==, 3);

	/* A FIFO reset counts as draining it. */
	g_assert_cmpuint(serial_receive(f->s, buf, sizeof(buf)), ==, 16);
	wr(f, FCR, 0x03);
	g_assert_cmpuint(f->rx_space_calls, ==, 4);

	/* Unhooked: no more calls. */
	serial_set_rx_space_cb(f->s, NULL, NULL);
	g_assert_cmpuint(serial_receive(f->s, buf, sizeof(buf)), ==, 16);
	wr(f, FCR, 0x03);
	g_assert_cmpuint(f->rx_space_calls, ==, 4);
}

static void test_output_broken(struct fixture *f, gconstpointer data)
{
	close(f->out[0]);
	f->out[0] = open("/dev/null", O_RDONLY);
	g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "serial: output dropped*");
	wr(f, RBR, 'x');
	wr(f, RBR, 'y');
	g_test_assert_expected_messages();
	g_assert_cmphex(rd(f, LSR), ==, 0x60);
}

static void test_bad_access(struct fixture *f, gconstpointer data)
{
	uint8_t buf[4];

	wr(f, SCR, 0x42);
	memset(buf, 0, sizeof(buf));
	serial_access(f->s, SCR, buf, 2, false);
	g_assert_cmphex(buf[0], ==, 0xff);
	g_assert_cmphex(buf[1], ==, 0xff);
	memset(buf, 0, sizeof(buf));
	serial_access(f->s, SCR, buf, 4, true);
	g_assert_cmphex(rd(f, SCR), ==, 0x42);
	serial_access(f->s, 8, buf, 1, false);
	g_assert_cmphex(buf[0], ==, 0xff);
	serial_access(f->s, 0xffffffff, buf, 1, true);
	wr(f, LSR, 0x00);
	wr(f, MSR, 0x00);
	g_assert_cmphex(rd(f, LSR), ==, 0x60);
	g_assert_cmphex(rd(f, MSR), ==, 0xb0);
	g_assert_cmpuint(f->transitions, ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* A closed pipe must surface as EPIPE, as it does in husk. */
	signal(SIGPIPE, SIG_IGN);

#define ADD(path, fn) g_test_add("/serial/" path, struct fixture, NULL, setup, fn, teardown)
	ADD("scratch", test_scratch);
	ADD("divisor-latch", test_divisor_latch);
	ADD("autoconfig", test_autoconfig);
	ADD("size-fifo", test_size_fifo);
	ADD("tx", test_tx);
	ADD("rx", test_rx);
	ADD("line-status", test_line_status);
	ADD("modem-status", test_modem_status);
	ADD("rx-full", test_rx_full);
	ADD("output-broken", test_output_broken);
	ADD("bad-access", test_bad_access);
#undef ADD
	return g_test_run();
}
