// SPDX-License-Identifier: MIT
/*
 * 16550A UART. Register behaviour follows the National PC16550D datasheet
 * ("Register Description"); the comments cite it where Linux's 8250 driver
 * depends on a detail.
 *
 * The transmitter is infinitely fast: a byte written to THR reaches out_fd
 * before the port write returns, so THR and the transmit shift register are
 * always empty (LSR.THRE and LSR.TEMT stay set) and there is no transmit
 * FIFO to model. The receiver has a real 16-byte FIFO because its size is
 * visible: Linux's size_fifo() probe sends bytes to itself in loopback mode
 * and counts what arrives, and a count of 64 would make it a U6_16550A.
 */
#include "devices/serial.h"

#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* Register offsets; LCR.DLAB turns 0 and 1 into the divisor latch. */
#define UART_RBR 0 /* read */
#define UART_THR 0 /* write */
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI  0x01 /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI  0x08 /* modem status */
#define IER_MASK 0x0f /* bits 4-7 are always 0 on a 16550A */

#define IIR_NO_INT       0x01
#define IIR_MSI          0x00
#define IIR_THRI         0x02
#define IIR_RDI          0x04
#define IIR_RLSI         0x06
#define IIR_RX_TIMEOUT   0x0c
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE        0x01
#define FCR_CLEAR_RCVR    0x02
#define FCR_CLEAR_XMIT    0x04
#define FCR_DMA_MODE      0x08
#define FCR_TRIGGER       0xc0
#define FCR_TRIGGER_SHIFT 6

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f /* bits 5-7 are always 0 on a 16550A */

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS    0x10
#define MSR_DSR    0x20
#define MSR_RI     0x40
#define MSR_DCD    0x80

#define RX_FIFO_SIZE 16

struct serial {
	/* vCPU threads and the I/O thread; a pthread mutex, which ThreadSanitizer understands */
	pthread_mutex_t lock;
	struct irq_line irq;
	bool irq_level;
	int out_fd;
	bool out_broken;

	uint8_t ier, fcr, lcr, mcr, scr, dll, dlm;
	uint8_t msr;       /* modem inputs (high nibble) and their deltas (low nibble) */
	bool overrun;      /* LSR.OE, sticky until LSR is read */
	bool thre_pending; /* the THR-empty interrupt, latched as described at ier_write() */

	uint8_t rx[RX_FIFO_SIZE];
	unsigned int rx_head, rx_count;

	bool rx_starved; /* serial_receive() turned bytes away */
	void (*rx_space_cb)(void *ctx);
	void *rx_space_ctx;
};

static bool fifo_enabled(const struct serial *s)
{
	return s->fcr & FCR_ENABLE;
}

/* With FIFOs off the UART is a 16450: one receive holding register. */
static unsigned int rx_capacity(const struct serial *s)
{
	return fifo_enabled(s) ? RX_FIFO_SIZE : 1;
}

static unsigned int rx_trigger_level(const struct serial *s)
{
	static const unsigned int levels[] = {1, 4, 8, 14};

	return levels[(s->fcr & FCR_TRIGGER) >> FCR_TRIGGER_SHIFT];
}

static bool rx_push(struct serial *s, uint8_t byte)
{
	if (s->rx_count == rx_capacity(s))
		return false;
	s->rx[(s->rx_head + s->rx_count) % RX_FIFO_SIZE] = byte;
	s->rx_count++;
	return true;
}

static uint8_t rx_pop(struct serial *s)
{
	uint8_t byte;

	if (s->rx_count == 0)
		return 0;
	byte = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % RX_FIFO_SIZE;
	s->rx_count--;
	return byte;
}

static void rx_clear(struct serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/*
 * Outside loopback there is a modem that is always ready: carrier, data set
 * ready and clear to send. In loopback the datasheet wires the outputs
 * back to the inputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. Linux's
 * autoconfig sets LOOP|OUT2|RTS and expects MSR & 0xf0 == DCD|CTS.
 */
static uint8_t modem_inputs(const struct serial *s)
{
	uint8_t m = s->mcr;

	if (!(m & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	return (m & MCR_RTS ? MSR_CTS : 0) | (m & MCR_DTR ? MSR_DSR : 0) |
	       (m & MCR_OUT1 ? MSR_RI : 0) | (m & MCR_OUT2 ? MSR_DCD : 0);
}

/* Latch the delta bits; RI only counts its trailing (1 -> 0) edge. */
static void update_msr(struct serial *s)
{
	uint8_t now = modem_inputs(s);
	uint8_t changed = (s->msr ^ now) & ~MSR_DELTAS;
	uint8_t deltas = s->msr & MSR_DELTAS;

	if (changed & MSR_CTS)
		deltas |= MSR_DCTS;
	if (changed & MSR_DSR)
		deltas |= MSR_DDSR;
	if (changed & MSR_DCD)
		deltas |= MSR_DDCD;
	if ((changed & MSR_RI) && !(now & MSR_RI))
		deltas |= MSR_TERI;
	s->msr = now | deltas;
}

/*
 * The highest-priority enabled interrupt, as IIR bits 3:0. There is no
 * character timer: data sitting below the FIFO trigger level reports the
 * character timeout at once, because no further byte is on the wire.
 */
static uint8_t pending_interrupt(const struct serial *s)
{
	if ((s->ier & IER_RLSI) && s->overrun)
		return IIR_RLSI;
	if ((s->ier & IER_RDI) && s->rx_count) {
		if (fifo_enabled(s) && s->rx_count < rx_trigger_level(s))
			return IIR_RX_TIMEOUT;
		return IIR_RDI;
	}
	if ((s->ier & IER_THRI) && s->thre_pending)
		return IIR_THRI;
	if ((s->ier & IER_MSI) && (s->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NO_INT;
}

static void update_irq(struct serial *s)
{
	bool level = pending_interrupt(s) != IIR_NO_INT;

	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->irq, level);
	}
}

/* Called with the lock held, so the callback cannot outlive its unhooking. */
static void notify_rx_space(struct serial *s)
{
	if (!s->rx_starved || s->rx_count || (s->mcr & MCR_LOOP))
		return;
	s->rx_starved = false;
	if (s->rx_space_cb)
		s->rx_space_cb(s->rx_space_ctx);
}

/*
 * A full pipe or a terminal under flow control holds the guest up as a
 * slow line would. Anything else (the reader went away) loses the output
 * but not the guest.
 */
static void output_byte(struct serial *s, uint8_t byte)
{
	struct pollfd pfd = {.fd = s->out_fd, .events = POLLOUT};

	while (!s->out_broken) {
		ssize_t n = write(s->out_fd, &byte, 1);

		if (n == 1)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && poll(&pfd, 1, -1) >= 0)
			continue;
		g_warning("serial: output dropped: %s", n < 0 ? g_strerror(errno) : "short write");
		s->out_broken = true;
	}
}

/* In loopback the transmitter feeds the receiver; a full FIFO overruns. */
static void transmit(struct serial *s, uint8_t byte)
{
	if (!(s->mcr & MCR_LOOP))
		output_byte(s, byte);
	else if (!rx_push(s, byte))
		s->overrun = true;
	/* The byte is gone at once, so THR is empty again: THRE re-arms. */
	s->thre_pending = true;
}

/*
 * The THRE interrupt is cleared by writing THR or by reading IIR while it
 * is the reported source, and set when THR becomes empty. Enabling IER.THRI
 * while THR is already empty raises it too; Linux's startup test clears and
 * sets THRI and expects the interrupt back.
 */
static void ier_write(struct serial *s, uint8_t val)
{
	val &= IER_MASK;
	if ((val & IER_THRI) && !(s->ier & IER_THRI))
		s->thre_pending = true;
	s->ier = val;
}

/*
 * Datasheet: changing FCR0 clears both FIFOs, and FCR0 must be 1 when the
 * other bits are written or they are not programmed. FCR1/FCR2 clear the
 * FIFOs and self-clear; the transmit side has nothing to clear here.
 */
static void fcr_write(struct serial *s, uint8_t val)
{
	if ((val ^ s->fcr) & FCR_ENABLE)
		rx_clear(s);
	if (!(val & FCR_ENABLE)) {
		s->fcr = 0;
		return;
	}
	if (val & FCR_CLEAR_RCVR)
		rx_clear(s);
	s->fcr = val & (FCR_ENABLE | FCR_DMA_MODE | FCR_TRIGGER);
}

static uint8_t iir_read(struct serial *s)
{
	uint8_t id = pending_interrupt(s);

	if (id == IIR_THRI)
		s->thre_pending = false;
	return id | (fifo_enabled(s) ? IIR_FIFO_ENABLED : 0);
}

static uint8_t lsr_read(struct serial *s)
{
	uint8_t lsr = LSR_THRE | LSR_TEMT;

	if (s->rx_count)
		lsr |= LSR_DR;
	if (s->overrun)
		lsr |= LSR_OE;
	s->overrun = false;
	return lsr;
}

static uint8_t msr_read(struct serial *s)
{
	uint8_t msr = s->msr;

	s->msr &= ~MSR_DELTAS;
	return msr;
}

static uint8_t reg_read(struct serial *s, unsigned int reg)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR:
		return dlab ? s->dll : rx_pop(s);
	case UART_IER:
		return dlab ? s->dlm : s->ier;
	case UART_IIR:
		return iir_read(s);
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return lsr_read(s);
	case UART_MSR:
		return msr_read(s);
	default:
		return s->scr;
	}
}

/* Writes to LSR and MSR (factory test on real parts) are ignored. */
static void reg_write(struct serial *s, unsigned int reg, uint8_t val)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (reg) {
	case UART_THR:
		if (dlab)
			s->dll = val;
		else
			transmit(s, val);
		break;
	case UART_IER:
		if (dlab)
			s->dlm = val;
		else
			ier_write(s, val);
		break;
	case UART_FCR:
		fcr_write(s, val);
		break;
	case UART_LCR:
		s->lcr = val;
		break;
	case UART_MCR:
		s->mcr = val & MCR_MASK;
		update_msr(s);
		break;
	case UART_SCR:
		s->scr = val;
		break;
	}
}

void serial_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;

	if (len != 1 || offset >= SERIAL_PORTS) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (is_write)
		reg_write(s, offset, *data);
	else
		*data = reg_read(s, offset);
	update_irq(s);
	notify_rx_space(s);
	pthread_mutex_unlock(&s->lock);
}

/* In loopback the receiver is cut off from the outside, as on the chip. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	if (!(s->mcr & MCR_LOOP))
		while (n < len && rx_push(s, buf[n]))
			n++;
	if (n < len)
		s->rx_starved = true;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_set_rx_space_cb(struct serial *s, void (*cb)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&s->lock);
	s->rx_space_cb = cb;
	s->rx_space_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}

/*
 * The divisor latch starts at 1 (115200 baud), never 0: Linux's earlycon
 * given no speed ("earlycon=uart,io,0x3f8") divides the clock by it. The
 * rate means nothing otherwise.
 */
struct serial *serial_create(struct irq_line irq, int out_fd)
{
	struct serial *s = g_new0(struct serial, 1);

	pthread_mutex_init(&s->lock, NULL);
	s->irq = irq;
	s->out_fd = out_fd;
	s->dll = 1;
	s->msr = modem_inputs(s);
	return s;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	g_free(s);
}
