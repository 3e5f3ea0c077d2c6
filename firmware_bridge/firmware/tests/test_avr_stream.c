/* The real AVR firmware (build/avr/neurogrip_arm.elf) streaming its analog inputs on simavr's
 * ATmega328P, in simulated time (as fast as this machine runs it, no pacing): the UART is driven
 * through simavr's IRQs, the inputs by an ADC feed file (host/adc_feed.h) through sim/adc_drive.c,
 * exactly as arm_sim drives them. Checks, on the simulated clock:
 *   - the configured rate, the 10-bit packing (every value equals the feed's), the frame seq, the
 *     first-sample index and the stream id of every SAMPLES frame, and that no byte is corrupted;
 *   - commands, heartbeats, the watchdog and the e-stop input while streaming, and the extra
 *     command -> ACK delay streaming adds (bounded by one SAMPLES frame on the wire);
 *   - the interrupts: every ISR's longest run and the UART receive interrupt's longest wait
 *     (bounded by the receiver's two-byte buffer), and the main loop's 1 ms servo update cadence;
 *   - with a second image built for 115 200 baud: NACK BUDGET for raw EMG, 8 x 200 Hz streaming.
 * usage: test_avr_stream FIRMWARE.elf [FIRMWARE_115200.elf]; prints the measurements and
 * "N passed, M failed"; exit status 1 on failure. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <simavr/avr_ioport.h>
#include <simavr/avr_timer.h>
#include <simavr/avr_uart.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_cycle_timers.h>
#include <simavr/sim_elf.h>
#include <simavr/sim_interrupts.h>

#include "adc_drive.h"
#include "adc_feed.h"
#include "ng_core.h"

static int passed, failed;

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (cond) {                                                                \
            passed++;                                                              \
        } else {                                                                   \
            failed++;                                                              \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
        }                                                                          \
    } while (0)

#define F_CPU 16000000u
#define MS(x) ((uint64_t)(x) * (F_CPU / 1000u))
#define FEED_RATE 500u
#define FEED_SECONDS 40u
#define VEC_TIMER0_COMPA 14
#define VEC_USART_RX 18
#define VEC_USART_UDRE 19
#define VEC_ADC 21

static avr_t *avr;
static adc_feed_t feed;
static adc_drive_t drive;
static char feed_path[64];

/* ------------------------------------------------------------------ the feed: a known pattern */
static uint16_t pattern(uint64_t k, unsigned ch) { return (uint16_t)((k * 7u + ch * 131u) % 1024u); }

/* The smallest millivolt value that simavr converts to `counts` (mV x 1023 / 5000, rounded down). */
static uint16_t mv_of(uint16_t counts) { return (uint16_t)((counts * 5000u + 1022u) / 1023u); }

static void write_feed(void)
{
    FILE *f;
    uint64_t k;
    unsigned ch;
    int fd;
    strcpy(feed_path, "/tmp/ng_adc_feed_XXXXXX");
    fd = mkstemp(feed_path);
    f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (f == NULL) {
        perror("test_avr_stream: cannot write the ADC feed");
        exit(2);
    }
    fprintf(f, "NGADC1 %u 8\n", FEED_RATE);
    for (k = 0; k < (uint64_t)FEED_RATE * FEED_SECONDS; k++) {
        for (ch = 0; ch < 8; ch++) {
            uint16_t mv = mv_of(pattern(k, ch));
            fputc(mv & 0xFF, f);
            fputc(mv >> 8, f);
        }
    }
    fclose(f);
}

/* ------------------------------------------------------------------ what the firmware sends */
typedef struct {
    ng_frame_t f;
    uint64_t cycle; /* when its delimiter left the UART */
} rec_t;

static rec_t *recs;
static size_t n_recs, cap_recs;
static ng_parser_t parser;
static unsigned bad_frames;

static void on_uart_out(struct avr_irq_t *irq, uint32_t value, void *param)
{
    ng_frame_t f;
    ng_parse_result_t r = ng_parser_feed(&parser, (uint8_t)value, &f);
    (void)irq;
    (void)param;
    if (r == NG_PARSE_FRAME) {
        if (n_recs == cap_recs) {
            cap_recs = cap_recs ? 2 * cap_recs : 4096;
            recs = realloc(recs, cap_recs * sizeof *recs);
            if (recs == NULL) {
                perror("test_avr_stream");
                exit(2);
            }
        }
        recs[n_recs].f = f;
        recs[n_recs].cycle = avr->cycle;
        n_recs++;
    } else if (r != NG_PARSE_NONE) {
        bad_frames++;
    }
}

/* ------------------------------------------------------------------ the servo updates */
static uint64_t last_ocr_write, max_ocr_gap;
static uint32_t ocr1a;
static int track_ocr;

static void on_pwm0(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (track_ocr && last_ocr_write != 0 && avr->cycle - last_ocr_write > max_ocr_gap) {
        max_ocr_gap = avr->cycle - last_ocr_write;
    }
    last_ocr_write = avr->cycle;
    ocr1a = value;
}

/* ------------------------------------------------------------------ the interrupts */
typedef struct {
    uint64_t pending_at, running_at, max_wait, max_run;
    unsigned runs;
} isr_stat_t;

static isr_stat_t isr[32];
static int isr_running_seen;

static void on_pending(struct avr_irq_t *irq, uint32_t value, void *param)
{
    isr_stat_t *s = &isr[(intptr_t)param];
    (void)irq;
    if (value) {
        s->pending_at = avr->cycle;
    }
}

static void on_running(struct avr_irq_t *irq, uint32_t value, void *param)
{
    isr_stat_t *s = &isr[(intptr_t)param];
    (void)irq;
    isr_running_seen = 1;
    if (value) {
        s->running_at = avr->cycle;
        if (s->pending_at != 0 && s->running_at - s->pending_at > s->max_wait) {
            s->max_wait = s->running_at - s->pending_at;
        }
        s->runs++;
    } else if (s->running_at != 0 && avr->cycle - s->running_at > s->max_run) {
        s->max_run = avr->cycle - s->running_at;
    }
}

static void hook_vector(int v)
{
    avr_irq_t *irq = avr_get_interrupt_irq(avr, (uint8_t)v);
    if (irq != NULL) {
        avr_irq_register_notify(irq + AVR_INT_IRQ_PENDING, on_pending, (void *)(intptr_t)v);
        avr_irq_register_notify(irq + AVR_INT_IRQ_RUNNING, on_running, (void *)(intptr_t)v);
    }
}

/* ------------------------------------------------------------------ driving the MCU */
static void run_until(uint64_t cycle)
{
    while (avr->cycle < cycle) {
        int state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            printf("FAIL the simulated MCU stopped (state %d)\n", state);
            exit(1);
        }
    }
}

static void run_ms(unsigned ms) { run_until(avr->cycle + MS(ms)); }

static uint8_t host_seq;

/* Send one request (with the leading delimiter the Python link sends); returns when it was queued. */
static uint64_t send_frame(uint8_t type, uint8_t seq, const uint8_t *payload, uint8_t len)
{
    uint8_t buf[NG_MAX_ENCODED + 2];
    size_t n, i;
    buf[0] = 0;
    n = ng_frame_encode(type, seq, payload, len, buf + 1) + 1u;
    for (i = 0; i < n; i++) {
        avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT), buf[i]);
    }
    return avr->cycle;
}

/* The first reply (not SAMPLES) with this seq recorded after index `from`, waiting up to 20 ms. */
static const rec_t *reply_to(uint8_t seq, size_t from)
{
    uint64_t end = avr->cycle + MS(20);
    size_t i = from;
    while (avr->cycle < end) {
        for (; i < n_recs; i++) {
            if (recs[i].f.type != NG_MSG_SAMPLES && recs[i].f.seq == seq) {
                return &recs[i];
            }
        }
        run_until(avr->cycle + 160u); /* 10 us */
    }
    return NULL;
}

static const rec_t *request(uint8_t type, const uint8_t *payload, uint8_t len, uint64_t *latency)
{
    uint8_t seq = host_seq++;
    size_t from = n_recs;
    uint64_t t0 = send_frame(type, seq, payload, len);
    const rec_t *r = reply_to(seq, from);
    if (r != NULL && latency != NULL) {
        *latency = r->cycle - t0;
    }
    return r;
}

static int is_ack(const rec_t *r, uint8_t type)
{
    return r != NULL && r->f.type == NG_MSG_ACK && r->f.len == 1 && r->f.payload[0] == type;
}

static int is_nack(const rec_t *r, uint8_t reason)
{
    return r != NULL && r->f.type == NG_MSG_NACK && r->f.len == 2 && r->f.payload[1] == reason;
}

static uint16_t status_faults(const rec_t *r) { return (uint16_t)(r->f.payload[12] | (r->f.payload[13] << 8)); }

/* Heartbeats every 50 ms while `heartbeats` is set (a cycle timer, as the Python link's thread). */
static int heartbeats;
static uint64_t last_heartbeat;

static avr_cycle_count_t heartbeat_timer(avr_t *a, avr_cycle_count_t when, void *param)
{
    (void)a;
    (void)param;
    if (heartbeats) {
        last_heartbeat = send_frame(NG_MSG_HEARTBEAT, host_seq++, NULL, 0);
    }
    return when + MS(50);
}

static void set_estop_pin(int pressed)
{
    avr_ioport_external_t e;
    e.name = 'D';
    e.mask = 1u << 2;
    e.value = pressed ? (1u << 2) : 0u;
    avr_ioctl(avr, AVR_IOCTL_IOPORT_SET_EXTERNAL('D'), &e);
    avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 2), pressed ? 1u : 0u);
}

static void boot(const char *elf)
{
    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(elf, &fw) != 0) {
        printf("FAIL cannot read %s: make avr\n", elf);
        exit(1);
    }
    avr = avr_make_mcu_by_name("atmega328p");
    avr_init(avr);
    avr_load_firmware(avr, &fw);
    avr->frequency = F_CPU;
    avr->log = LOG_ERROR;
    ng_parser_init(&parser);
    n_recs = 0;
    memset(isr, 0, sizeof isr);
    if (adc_feed_open(&feed, feed_path, (char[128]){0}, 128) != 0) {
        printf("FAIL cannot reopen the ADC feed\n");
        exit(1);
    }
    adc_drive_init(&drive, avr, &feed);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_uart_out, NULL);
    {
        /* simavr reports OCR1A only when it changes; every write is wanted (the main loop's cadence) */
        avr_irq_t *pwm0 = avr_io_getirq(avr, AVR_IOCTL_TIMER_GETIRQ('1'), TIMER_IRQ_OUT_PWM0);
        uint32_t flags = 0;
        pwm0->flags &= ~(uint32_t)IRQ_FLAG_FILTERED;
        avr_irq_register_notify(pwm0, on_pwm0, NULL);
        /* the UART's bytes go to the parser only, not to the console */
        avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
        flags &= ~(uint32_t)AVR_UART_FLAG_STDIO;
        avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    }
    hook_vector(VEC_TIMER0_COMPA);
    hook_vector(VEC_USART_RX);
    hook_vector(VEC_ADC);
    hook_vector(VEC_USART_UDRE);
    avr_cycle_timer_register(avr, MS(50), heartbeat_timer, NULL);
    set_estop_pin(0);
    run_ms(5);
}

/* ------------------------------------------------------------------ checking a stream */
static uint32_t u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

typedef struct {
    uint8_t id, mask;
    size_t frames;
    uint32_t scans;          /* scans received, all consecutive */
    int contiguous, seq_ok, header_ok;
    uint64_t first_cycle, last_cycle;
    uint32_t first_index, first_n, last_end;
    /* values: each scan equals the feed's sample q (for some q), q never going back */
    int values_ok;
    uint64_t q_first, q_last;
} stream_check_t;

/* The feed sample whose counts a scan holds (channel values of `mask`), searched from q_hint
 * onwards (the pattern repeats every 1024 samples); -1 if none. */
static int64_t sample_of(const uint16_t *v, uint8_t mask, uint64_t q_hint)
{
    uint64_t q;
    for (q = q_hint; q < q_hint + 1024u; q++) {
        unsigned ch, j = 0;
        int ok = 1;
        for (ch = 0; ch < 8 && ok; ch++) {
            if (mask & (1u << ch)) {
                ok = v[j++] == pattern(q, ch);
            }
        }
        if (ok) {
            return (int64_t)q;
        }
    }
    return -1;
}

static void check_stream(stream_check_t *s, size_t from, size_t to, uint8_t id, uint8_t mask, uint8_t k,
                         uint64_t q_hint)
{
    size_t i;
    uint8_t n_ch = ng_stream_channels(mask), seq = 0;
    int short_frame = 0;
    memset(s, 0, sizeof *s);
    s->id = id;
    s->mask = mask;
    s->contiguous = s->seq_ok = s->header_ok = s->values_ok = 1;
    for (i = from; i < to; i++) {
        const ng_frame_t *f = &recs[i].f;
        uint32_t first;
        uint8_t n, j, c;
        if (f->type != NG_MSG_SAMPLES) {
            continue;
        }
        first = u32le(f->payload);
        n = f->payload[6];
        s->header_ok &= f->payload[4] == id && f->payload[5] == mask && f->len == ng_samples_len(n_ch, n);
        /* full frames; only the last may be shorter (sent by STOP) */
        s->header_ok &= !short_frame && n >= 1 && n <= k;
        short_frame = n < k;
        if (s->frames == 0) {
            s->first_cycle = recs[i].cycle;
            s->first_index = first;
            s->first_n = n;
            seq = f->seq;
        } else {
            s->contiguous &= first == s->last_end;
            s->seq_ok &= f->seq == seq;
        }
        seq = (uint8_t)(f->seq + 1u);
        s->last_cycle = recs[i].cycle;
        s->last_end = first + n;
        s->frames++;
        s->scans += n;
        for (j = 0; j < n; j++) {
            uint16_t v[8];
            int64_t q;
            for (c = 0; c < n_ch; c++) {
                v[c] = ng_unpack10(f->payload + NG_SAMPLES_HEADER, (uint16_t)(j * n_ch + c));
            }
            q = sample_of(v, mask, s->frames == 1 && j == 0 ? q_hint : s->q_last);
            if (q < 0) {
                s->values_ok = 0;
                continue;
            }
            if (s->frames == 1 && j == 0) {
                s->q_first = (uint64_t)q;
            }
            s->q_last = (uint64_t)q;
        }
    }
}

/* Scans per second on the simulated clock: the scans completed between the first frame's arrival and
 * the last's. */
static double rate_of(const stream_check_t *s)
{
    return (double)(s->last_end - s->first_index - s->first_n) / ((double)(s->last_cycle - s->first_cycle) / F_CPU);
}

static size_t count_type(size_t from, size_t to, uint8_t type)
{
    size_t i, n = 0;
    for (i = from; i < to; i++) {
        n += recs[i].f.type == type;
    }
    return n;
}

/* The deepest the stack went, in bytes below the top of RAM: simavr starts RAM at zero, so the stack
 * left its mark down to the first run of 32 zero bytes below RAMEND (the static data lies further down). */
static unsigned stack_depth(void)
{
    unsigned a = avr->ramend, zeros = 0;
    while (a > 0x100u && zeros < 32u) {
        zeros = avr->data[a] == 0 ? zeros + 1u : 0u;
        a--;
    }
    return avr->ramend - a - zeros;
}

/* ------------------------------------------------------------------ the tests */
/* Command -> ACK, n times at every phase of the stream's frame cycle. Each command follows its own
 * heartbeat's reply (the heartbeat timer is off meanwhile): what is measured is the command's own
 * delay, not a STATUS reply it may queue behind with or without streaming. */
static uint64_t ack_latency(int n, uint64_t *worst)
{
    uint64_t sum = 0, lat = 0;
    int i, hb = heartbeats;
    *worst = 0;
    heartbeats = 0;
    for (i = 0; i < n; i++) {
        uint8_t p[6] = {(uint8_t)(i % 2 ? NG_ACT_GRASP : NG_ACT_RELEASE), 0, 0xB0, 0x04, 0x58, 0x02};
        const rec_t *r = request(NG_MSG_HEARTBEAT, NULL, 0, NULL);
        CHECK(r != NULL && r->f.type == NG_MSG_STATUS);
        r = request(NG_MSG_ARM_CMD, p, 6, &lat);
        CHECK(is_ack(r, NG_MSG_ARM_CMD));
        sum += lat;
        if (lat > *worst) {
            *worst = lat;
        }
        run_until(avr->cycle + MS(3) + (uint64_t)(i * 977u) % MS(2)); /* all phases of the frame cycle */
    }
    heartbeats = hb;
    return sum / (uint64_t)n;
}

static const uint8_t GRASP[6] = {NG_ACT_GRASP, 0, 0xB0, 0x04, 0x58, 0x02};

static void test_stream_500k(const char *elf)
{
    uint8_t hello[2] = {NG_PROTOCOL_VERSION, 0}, start[4] = {0xFF, 0, 0xF4, 0x01}, buf[NG_MAX_ENCODED + 2];
    const uint8_t clear_wd[4] = {NG_FAULT_WATCHDOG, 0, 0xEA, 0xC1};
    const rec_t *r;
    uint64_t mean_off, worst_off, mean_on, worst_on, t_hb, tripped = 0, q_hint;
    size_t from, mark, i, n;
    uint8_t id;
    stream_check_t s;
    double rate;
    boot(elf);
    r = request(NG_MSG_HELLO, hello, 2, NULL);
    CHECK(r != NULL && r->f.type == NG_MSG_HELLO_REPLY);
    heartbeats = 1;
    run_ms(60);
    mean_off = ack_latency(30, &worst_off);

    /* 8 inputs at 500 Hz for 2 s, commands and heartbeats going on */
    from = n_recs;
    r = request(NG_MSG_STREAM_START, start, 4, NULL);
    CHECK(is_ack(r, NG_MSG_STREAM_START));
    id = r->f.seq;
    /* the retransmitted START (its ACK lost: the next request is its retransmission) is answered again and does not restart the stream */
    mark = n_recs;
    n = ng_frame_encode(NG_MSG_STREAM_START, id, start, 4, buf);
    for (i = 0; i < n; i++) {
        avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT), buf[i]);
    }
    CHECK(is_ack(reply_to(id, mark), NG_MSG_STREAM_START));

    track_ocr = 1;
    max_ocr_gap = 0;
    mean_on = ack_latency(60, &worst_on);
    run_ms(1700);
    track_ocr = 0;
    check_stream(&s, from, n_recs, id, 0xFF, 2, 0);
    rate = rate_of(&s);
    printf("8 x 500 Hz: %zu frames, %u scans in %.3f s simulated: %.3f scans/s; feed samples %llu..%llu\n", s.frames,
           s.scans, (double)(s.last_cycle - s.first_cycle) / F_CPU, rate, (unsigned long long)s.q_first,
           (unsigned long long)s.q_last);
    CHECK(s.frames > 450 && s.header_ok && s.seq_ok && s.contiguous && s.first_index == 0);
    CHECK(rate > 499.5 && rate < 500.5);
    CHECK(s.values_ok && s.q_first == 0 && s.q_last == s.last_end - 1u); /* scan j read feed sample j */
    CHECK(bad_frames == 0);
    printf("command -> ACK (request on the wire, handling, ACK on the wire): streaming off mean %.0f us, worst "
           "%.0f us; 8 x 500 Hz on: mean %.0f us, worst %.0f us\n",
           mean_off / 16.0, worst_off / 16.0, mean_on / 16.0, worst_on / 16.0);
    /* streaming adds at most one SAMPLES frame on the wire (34 bytes: 680 us at 500 000 baud, 760 us
     * with simavr's byte time) and its encoding */
    CHECK(worst_on <= worst_off + MS(1));
    CHECK(worst_on < MS(2));
    printf("main loop: longest gap between two servo updates while streaming %.0f us (one per 1 ms tick)\n",
           max_ocr_gap / 16.0);
    CHECK(max_ocr_gap > 0 && max_ocr_gap < MS(2));
    if (isr_running_seen) {
        printf("ISRs, in cycles at 16 MHz (longest run, longest wait from pending to running): TIMER0_COMPA %llu, %llu; "
               "ADC %llu, %llu; USART_RX %llu, %llu; USART_UDRE %llu, %llu\n",
               (unsigned long long)isr[VEC_TIMER0_COMPA].max_run, (unsigned long long)isr[VEC_TIMER0_COMPA].max_wait,
               (unsigned long long)isr[VEC_ADC].max_run, (unsigned long long)isr[VEC_ADC].max_wait,
               (unsigned long long)isr[VEC_USART_RX].max_run, (unsigned long long)isr[VEC_USART_RX].max_wait,
               (unsigned long long)isr[VEC_USART_UDRE].max_run, (unsigned long long)isr[VEC_USART_UDRE].max_wait);
        /* the receiver holds two bytes: a byte is lost only if its interrupt waits two byte times (640) */
        CHECK(isr[VEC_USART_RX].runs > 0 && isr[VEC_USART_RX].max_wait < 320u);
        CHECK(isr[VEC_ADC].runs > 7000u && isr[VEC_ADC].max_run < 250u && isr[VEC_TIMER0_COMPA].max_run < 250u);
        CHECK(isr[VEC_USART_UDRE].runs > 10000u && isr[VEC_USART_UDRE].max_run < 250u);
    } else {
        printf("(this simavr does not report interrupt run times: ISR lengths not measured)\n");
    }

    /* heartbeats stop: the watchdog trips at 250 ms, the arm goes to its safe pose, samples go on */
    heartbeats = 0;
    t_hb = last_heartbeat;
    while (avr->cycle < t_hb + MS(400) && tripped == 0) {
        r = request(NG_MSG_STATUS_REQ, NULL, 0, NULL);
        if (r != NULL && (status_faults(r) & NG_FAULT_WATCHDOG)) {
            tripped = r->cycle;
        }
        run_ms(5);
    }
    printf("watchdog while streaming: seen tripped %.1f ms after the last heartbeat was sent (polled every 5 ms)\n",
           (double)(tripped - t_hb) / 16000.0);
    CHECK(tripped != 0 && tripped - t_hb >= MS(250) && tripped - t_hb <= MS(250 + 8));
    CHECK(is_nack(request(NG_MSG_ARM_CMD, GRASP, 6, NULL), NG_R_WATCHDOG));
    run_ms(1500);
    CHECK(ocr1a == 2u * ng_pulse_us(NG_J0_SAFE) - 1u);
    heartbeats = 1;
    run_ms(60);
    CHECK(is_ack(request(NG_MSG_CLEAR, clear_wd, 4, NULL), NG_MSG_CLEAR));

    /* the e-stop switch while streaming: motion refused at once, samples go on */
    set_estop_pin(1);
    run_ms(3);
    r = request(NG_MSG_STATUS_REQ, NULL, 0, NULL);
    CHECK(r != NULL && (status_faults(r) & NG_FAULT_ESTOP_INPUT));
    CHECK(is_nack(request(NG_MSG_ARM_CMD, GRASP, 6, NULL), NG_R_ESTOPPED));
    set_estop_pin(0);
    run_ms(50);

    /* STOP: the last SAMPLES frame, then the ACK, then nothing */
    r = request(NG_MSG_STREAM_STOP, NULL, 0, NULL);
    CHECK(is_ack(r, NG_MSG_STREAM_STOP));
    mark = (size_t)(r - recs);
    run_ms(50);
    CHECK(count_type(mark, n_recs, NG_MSG_SAMPLES) == 0);
    check_stream(&s, from, n_recs, id, 0xFF, 2, 0);
    printf("8 x 500 Hz through commands, a watchdog trip, the e-stop and STOP: %u scans, none missing: %s "
           "(contiguous %d, seq %d, header %d, values %d; %llu..%llu, end %u)\n",
           s.scans, s.contiguous && s.seq_ok && s.values_ok ? "yes" : "NO", s.contiguous, s.seq_ok, s.header_ok,
           s.values_ok, (unsigned long long)s.q_first, (unsigned long long)s.q_last, s.last_end);
    CHECK(s.contiguous && s.seq_ok && s.header_ok && s.values_ok && s.scans > 1900);
    CHECK(s.q_last == s.last_end - 1u && bad_frames == 0);

    /* 4 inputs at 1 kHz: each feed sample (500 Hz) is read twice */
    start[0] = 0x0F;
    start[2] = 0xE8;
    start[3] = 0x03;
    q_hint = drive.next > 2u ? drive.next - 2u : 0u;
    r = request(NG_MSG_STREAM_START, start, 4, NULL);
    CHECK(is_ack(r, NG_MSG_STREAM_START));
    id = r->f.seq;
    from = n_recs;
    run_ms(1000);
    check_stream(&s, from, n_recs, id, 0x0F, 5, q_hint);
    rate = rate_of(&s);
    printf("4 x 1 kHz: %zu frames, %u scans: %.3f scans/s; feed samples %llu..%llu\n", s.frames, s.scans, rate,
           (unsigned long long)s.q_first, (unsigned long long)s.q_last);
    CHECK(s.header_ok && s.seq_ok && s.contiguous && s.values_ok && s.first_index == 0);
    CHECK(rate > 999.0 && rate < 1001.0);
    CHECK(s.q_last - s.q_first + 1u >= s.scans / 2u && s.q_last - s.q_first <= s.scans / 2u + 1u);

    /* 8 inputs at 1 kHz, the most the ADC does (8 conversions in each millisecond) */
    start[0] = 0xFF;
    q_hint = drive.next > 2u ? drive.next - 2u : 0u;
    r = request(NG_MSG_STREAM_START, start, 4, NULL);
    CHECK(is_ack(r, NG_MSG_STREAM_START));
    id = r->f.seq;
    from = n_recs;
    run_ms(500);
    check_stream(&s, from, n_recs, id, 0xFF, 2, q_hint);
    rate = rate_of(&s);
    printf("8 x 1 kHz: %zu frames, %u scans: %.3f scans/s, none missing: %s\n", s.frames, s.scans, rate,
           s.contiguous && s.values_ok ? "yes" : "NO");
    CHECK(s.header_ok && s.seq_ok && s.contiguous && s.values_ok && s.first_index == 0);
    CHECK(rate > 999.0 && rate < 1001.0);
    CHECK(bad_frames == 0);
    /* 2 KiB of RAM: static RAM (make avr prints it, <= 1 KiB) + this stays well below it */
    printf("stack: at most %u bytes deep\n", stack_depth());
    CHECK(stack_depth() < 512u);
    avr_terminate(avr);
    adc_feed_close(&feed);
}

/* Built for 115 200 baud, the same firmware refuses raw EMG (NACK BUDGET) and streams 8 x 200 Hz. */
static void test_stream_115200(const char *elf)
{
    uint8_t hello[2] = {NG_PROTOCOL_VERSION, 0};
    uint8_t raw8[4] = {0xFF, 0, 0xF4, 0x01}, raw4[4] = {0x0F, 0, 0xE8, 0x03}, env8[4] = {0xFF, 0, 200, 0};
    const rec_t *r;
    stream_check_t s;
    size_t from;
    double rate;
    boot(elf);
    CHECK(request(NG_MSG_HELLO, hello, 2, NULL) != NULL);
    heartbeats = 1;
    CHECK(is_nack(request(NG_MSG_STREAM_START, raw8, 4, NULL), NG_R_BUDGET));
    CHECK(is_nack(request(NG_MSG_STREAM_START, raw4, 4, NULL), NG_R_BUDGET));
    r = request(NG_MSG_STREAM_START, env8, 4, NULL);
    CHECK(is_ack(r, NG_MSG_STREAM_START));
    from = n_recs;
    run_ms(1000);
    check_stream(&s, from, n_recs, r->f.seq, 0xFF, 1, 0);
    rate = rate_of(&s);
    printf("115 200 baud: 8 x 500 Hz and 4 x 1 kHz refused (BUDGET); 8 x 200 Hz: %zu frames, %.2f scans/s\n",
           s.frames, rate);
    CHECK(s.header_ok && s.seq_ok && s.contiguous && s.values_ok && s.q_first == 0);
    CHECK(rate > 199.8 && rate < 200.2);
    CHECK(bad_frames == 0);
    avr_terminate(avr);
    adc_feed_close(&feed);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIRMWARE.elf [FIRMWARE_115200.elf]\n", argv[0]);
        return 2;
    }
    write_feed();
    test_stream_500k(argv[1]);
    if (argc > 2) {
        test_stream_115200(argv[2]);
    }
    unlink(feed_path);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
