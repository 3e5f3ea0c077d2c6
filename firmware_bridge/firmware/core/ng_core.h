/* The arm firmware's portable core: protocol handling, watchdog, motion, e-stop latch, and the
 * SAMPLES stream of the analog inputs.
 *
 * Hardware-free: the caller feeds received bytes, a millisecond clock and completed ADC scans, and
 * reads joint positions to drive the servos and the stream's configuration to drive its ADC
 * sampler (ng_sampler.h). Used unchanged by the AVR build, the host/pty build, the unit tests and the
 * fuzzer. No dynamic allocation; one ng_core_t holds all state (~220 bytes). */
#ifndef NG_CORE_H
#define NG_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "ng_config.h"
#include "ng_frame.h"
#include "ng_stream.h"

typedef void (*ng_write_fn)(void *ctx, const uint8_t *data, size_t len);

typedef struct {
    uint16_t min, max, safe, max_speed; /* ddeg, ddeg, ddeg, ddeg/s */
} ng_limits_t;

/* The SAMPLES stream (PROTOCOL.md section 5). The hardware layer watches `gen`: when it changes, it
 * configures its sampler with `active ? mask : 0` and `period_ms`, whose scans then go to
 * ng_core_scan() from index 0. */
typedef struct {
    uint8_t active;          /* STREAM_START accepted, not stopped since */
    uint8_t mask;            /* bit i: ADC input i */
    uint8_t n_ch;            /* inputs per scan */
    uint8_t scans_per_frame;
    uint16_t rate_hz;
    uint16_t period_ms;      /* ms ticks between scans */
    uint8_t gen;             /* changes at every start and stop */
    uint8_t id;              /* seq of the STREAM_START that started the stream (in every frame) */
    uint8_t frame_seq;       /* seq of the next SAMPLES frame */
    uint8_t n_scans;         /* scans in the frame being built */
    uint32_t first;          /* sample index of its first scan */
    uint32_t next;           /* index the next scan should have */
    uint16_t frames_sent;    /* counters, wrapping at 65536 */
    uint16_t scans_lost;     /* indices that never reached the core (sampler overruns, full ring) */
    uint8_t packed[NG_LEN_SAMPLES - NG_SAMPLES_HEADER];
} ng_stream_t;

typedef struct {
    ng_parser_t parser;
    ng_limits_t limits[NG_N_JOINTS];
    uint32_t pos_fine[NG_N_JOINTS]; /* position in 1/1000 ddeg: speed (ddeg/s) x 1 ms is exact */
    uint16_t target[NG_N_JOINTS];
    uint16_t speed[NG_N_JOINTS];
    uint16_t faults;
    uint16_t watchdog_ms;
    uint32_t boot_ms, now_ms, last_tick_ms, last_heartbeat_ms, estop_pressed_ms;
    uint8_t hello_done;
    uint8_t last_action;
    /* Counters reported in STATUS (wrap at 65536). */
    uint16_t frames_ok, crc_errors, framing_errors, commands_executed, watchdog_trips, nacks_sent;
    /* Retransmission memory: the last executed state-changing request and the reply it got. */
    uint8_t have_last, last_type, last_seq;
    uint16_t last_crc;
    uint8_t last_reply_len;
    uint8_t last_reply[NG_MAX_ENCODED + 1u];
    /* The last executed ARM_CMD (seq and payload), for test harnesses that audit execution. */
    uint8_t last_cmd_seq;
    uint8_t last_cmd[NG_LEN_ARM_CMD];
    ng_write_fn write;
    void *write_ctx;
    uint32_t link_baud;      /* the UART's rate, for the stream budget (NG_LINK_BAUD after init) */
    ng_stream_t stream;
} ng_core_t;

void ng_core_init(ng_core_t *c, uint32_t now_ms, ng_write_fn write, void *write_ctx);
/* Feed one received byte. Replies are written through the write callback before it returns. */
void ng_core_rx(ng_core_t *c, uint8_t byte, uint32_t now_ms);
/* Advance the watchdog and motion to now_ms; call at least every few ms. */
void ng_core_tick(ng_core_t *c, uint32_t now_ms);
/* The hardware layer reports a lost received byte (UART ring overflow). */
void ng_core_note_rx_overflow(ng_core_t *c);
/* The hardware layer reports the arm's e-stop switch as it reads it (call after each tick): pressed
 * freezes every joint and refuses motion (NACK ESTOPPED, fault ESTOP_INPUT) at once; once it has
 * read released for NG_ESTOP_RELEASE_MS (contact bounce) the fault clears, and the arm stays where
 * it stopped until a new command. */
void ng_core_estop_input(ng_core_t *c, int pressed);
/* A scan of the stream's inputs completed (values in ascending input order, ADC counts): packed into
 * the SAMPLES frame being built, which is sent once it holds scans_per_frame scans, or earlier when
 * `index` skips (a frame's scans are always consecutive). Ignored when no stream runs. */
void ng_core_scan(ng_core_t *c, uint32_t index, const uint16_t *values);
/* Current commanded position of joint j in ddeg (rounded). */
uint16_t ng_core_position(const ng_core_t *c, uint8_t j);
/* Servo pulse width in microseconds for an angle in ddeg. */
uint16_t ng_pulse_us(uint16_t ddeg);

#endif
