/* Unit tests of the portable firmware core. Prints "N passed, M failed"; exit status 1 on failure. */
#include <stdio.h>
#include <string.h>

#include "ng_core.h"
#include "ng_sampler.h"

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

/* ---- capture of what the core writes, decoded back into frames */
static uint8_t out_buf[4096];
static size_t out_len;

static void capture(void *ctx, const uint8_t *d, size_t n)
{
    (void)ctx;
    if (out_len + n <= sizeof out_buf) {
        memcpy(out_buf + out_len, d, n);
        out_len += n;
    }
}

/* Decode every frame written since the last call; return how many; the last one in *last. */
static int replies(ng_frame_t *last)
{
    ng_parser_t p;
    ng_frame_t f;
    size_t i;
    int n = 0;
    ng_parser_init(&p);
    for (i = 0; i < out_len; i++) {
        if (ng_parser_feed(&p, out_buf[i], &f) == NG_PARSE_FRAME) {
            n++;
            *last = f;
        }
    }
    out_len = 0;
    return n;
}

static uint32_t now;
static ng_core_t core;

static void send_raw(const uint8_t *d, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        ng_core_rx(&core, d[i], now);
    }
}

static ng_frame_t request(uint8_t type, uint8_t seq, const uint8_t *payload, uint8_t len)
{
    uint8_t buf[NG_MAX_ENCODED + 1];
    ng_frame_t r;
    size_t n = ng_frame_encode(type, seq, payload, len, buf);
    memset(&r, 0, sizeof r);
    out_len = 0;
    send_raw(buf, n);
    CHECK(replies(&r) == 1);
    CHECK(r.seq == seq);
    return r;
}

static void advance(uint32_t ms)
{
    uint32_t i;
    for (i = 0; i < ms; i++) {
        now++;
        ng_core_tick(&core, now);
    }
}

static uint8_t seqn;

static ng_frame_t hello(void)
{
    uint8_t p[2] = {NG_PROTOCOL_VERSION, 0};
    return request(NG_MSG_HELLO, seqn++, p, 2);
}

static ng_frame_t heartbeat(void) { return request(NG_MSG_HEARTBEAT, seqn++, NULL, 0); }

static ng_frame_t arm(uint8_t action, uint16_t target, uint16_t speed)
{
    uint8_t p[6] = {action, 0, (uint8_t)target, (uint8_t)(target >> 8), (uint8_t)speed, (uint8_t)(speed >> 8)};
    return request(NG_MSG_ARM_CMD, seqn++, p, 6);
}

static ng_frame_t clear(uint16_t mask)
{
    uint8_t p[4] = {(uint8_t)mask, (uint8_t)(mask >> 8), (uint8_t)(NG_CLEAR_MAGIC & 0xFF), (uint8_t)(NG_CLEAR_MAGIC >> 8)};
    return request(NG_MSG_CLEAR, seqn++, p, 4);
}

static int is_nack(ng_frame_t r, uint8_t reason) { return r.type == NG_MSG_NACK && r.len == 2 && r.payload[1] == reason; }
static int is_ack(ng_frame_t r, uint8_t type) { return r.type == NG_MSG_ACK && r.len == 1 && r.payload[0] == type; }

static void fresh(uint32_t t0)
{
    now = t0;
    out_len = 0;
    ng_core_init(&core, now, capture, NULL);
}

/* ------------------------------------------------------------------ framing */
static void test_crc(void)
{
    CHECK(ng_crc16((const uint8_t *)"123456789", 9) == 0x29B1);
    CHECK(ng_crc16(NULL, 0) == 0xFFFF);
}

static void test_cobs_roundtrip(void)
{
    uint8_t in[600], enc[610], dec[600];
    size_t lens[] = {0, 1, 2, 253, 254, 255, 256, 508, 600};
    unsigned k, pat;
    for (pat = 0; pat < 3; pat++) {
        for (k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t i, n = lens[k], e;
            int d;
            for (i = 0; i < n; i++) {
                in[i] = pat == 0 ? 0 : pat == 1 ? (uint8_t)(1 + i % 255) : (uint8_t)(i * 7 % 3);
            }
            e = ng_cobs_encode(in, n, enc);
            CHECK(memchr(enc, 0, e) == NULL);
            CHECK(e <= n + n / 254 + 1);
            d = ng_cobs_decode(enc, e, dec, sizeof dec);
            CHECK(d == (int)n && memcmp(in, dec, n) == 0);
        }
    }
    {
        const uint8_t bad1[] = {0x05, 0x01, 0x02}; /* block runs past the end */
        const uint8_t bad2[] = {0x03, 0x00, 0x01}; /* zero inside */
        CHECK(ng_cobs_decode(bad1, sizeof bad1, dec, sizeof dec) == -1);
        CHECK(ng_cobs_decode(bad2, sizeof bad2, dec, sizeof dec) == -1);
        CHECK(ng_cobs_decode(enc, 5, dec, 2) == -1 || 1); /* small out_cap never overflows (ASan checks) */
    }
}

/* The worked example of PROTOCOL.md section 4 (also checked from Python against the document). */
static void test_example_frame(void)
{
    const uint8_t expect[] = {0x05, 0x03, 0x05, 0x06, 0x01, 0x07, 0xB0, 0x04, 0x58, 0x02, 0x48, 0x13, 0x00};
    const uint8_t payload[] = {NG_ACT_GRASP, 0x00, 0xB0, 0x04, 0x58, 0x02};
    uint8_t out[NG_MAX_ENCODED + 1];
    size_t n = ng_frame_encode(NG_MSG_ARM_CMD, 5, payload, 6, out);
    CHECK(n == sizeof expect && memcmp(out, expect, n) == 0);
}

static void test_parser(void)
{
    ng_parser_t p;
    ng_frame_t f;
    uint8_t frame[NG_MAX_ENCODED + 1];
    const uint8_t pl[3] = {0, 1, 2};
    size_t n = ng_frame_encode(0x42, 9, pl, 3, frame), i;
    int frames = 0, crc = 0, framing = 0;
    ng_parser_init(&p);
    /* garbage, an empty frame, a good frame, an over-long run, a good frame, a corrupted frame */
    for (i = 0; i < 7; i++) {
        frames += ng_parser_feed(&p, (uint8_t)(0x11 * (i + 1)), &f) == NG_PARSE_FRAME;
    }
    framing += ng_parser_feed(&p, 0, &f) == NG_PARSE_FRAMING;
    CHECK(ng_parser_feed(&p, 0, &f) == NG_PARSE_NONE);
    for (i = 0; i < n; i++) {
        frames += ng_parser_feed(&p, frame[i], &f) == NG_PARSE_FRAME;
    }
    CHECK(frames == 1 && f.type == 0x42 && f.seq == 9 && f.len == 3 && memcmp(f.payload, pl, 3) == 0);
    for (i = 0; i < 200; i++) {
        CHECK(ng_parser_feed(&p, 0x33, &f) == NG_PARSE_NONE);
    }
    framing += ng_parser_feed(&p, 0, &f) == NG_PARSE_FRAMING;
    for (i = 0; i < n; i++) {
        frames += ng_parser_feed(&p, frame[i], &f) == NG_PARSE_FRAME;
    }
    frame[5] ^= 0x40; /* corrupt a payload byte (stays non-zero) */
    for (i = 0; i < n; i++) {
        ng_parse_result_t r = ng_parser_feed(&p, frame[i], &f);
        crc += r == NG_PARSE_CRC;
        framing += r == NG_PARSE_FRAMING;
    }
    CHECK(frames == 2);
    CHECK(framing == 2);
    CHECK(crc == 1);
}

/* ------------------------------------------------------------------ core */
static void test_session(void)
{
    ng_frame_t r;
    uint8_t badv[2] = {NG_PROTOCOL_VERSION + 1, 0};
    fresh(1000);
    CHECK(core.faults & NG_FAULT_NO_HELLO);
    CHECK(is_nack(arm(NG_ACT_GRASP, 1000, 500), NG_R_NO_HELLO));
    CHECK(is_nack(heartbeat(), NG_R_NO_HELLO));
    r = request(NG_MSG_STATUS_REQ, seqn++, NULL, 0);
    CHECK(r.type == NG_MSG_STATUS && r.len == NG_LEN_STATUS);
    CHECK(is_nack(request(NG_MSG_HELLO, seqn++, badv, 2), NG_R_VERSION));
    r = hello();
    CHECK(r.type == NG_MSG_HELLO_REPLY && r.len == 8 && r.payload[0] == NG_PROTOCOL_VERSION && r.payload[1] == 2);
    CHECK((r.payload[4] | (r.payload[5] << 8)) == NG_WATCHDOG_DEFAULT_MS);
    CHECK(!(core.faults & NG_FAULT_NO_HELLO));
    CHECK(is_nack(request(0x7E, seqn++, NULL, 0), NG_R_UNKNOWN_TYPE));
    CHECK(is_nack(request(NG_MSG_ARM_CMD, seqn++, badv, 2), NG_R_BAD_LENGTH));
}

static void test_motion_slew_and_limits(void)
{
    uint16_t prev;
    int i, ok = 1;
    fresh(5);
    hello();
    CHECK(is_ack(arm(NG_ACT_GRASP, 1400, 600), NG_MSG_ARM_CMD));
    CHECK(core.target[0] == 1400 && core.speed[0] == 600);
    prev = ng_core_position(&core, 0);
    for (i = 0; i < 100; i++) { /* 100 ms at 60 deg/s: 6.0 deg = 60 ddeg */
        advance(1);
        ok &= ng_core_position(&core, 0) >= prev && ng_core_position(&core, 0) - prev <= 1;
        prev = ng_core_position(&core, 0);
        if (i % 40 == 0) {
            heartbeat();
        }
    }
    CHECK(ok);
    CHECK(ng_core_position(&core, 0) == NG_J0_SAFE + 60);
    /* target above the joint's max is clamped, flagged; speed above max_speed clamped */
    CHECK(is_ack(arm(NG_ACT_LIFT, 1800, 60000), NG_MSG_ARM_CMD));
    CHECK(core.target[1] == NG_J1_MAX && core.speed[1] == NG_J1_SPEED);
    CHECK(core.faults & NG_FAULT_CLAMPED);
    CHECK(is_ack(arm(NG_ACT_LOWER, 500, 100), NG_MSG_ARM_CMD));
    CHECK(!(core.faults & NG_FAULT_CLAMPED));
    /* out of the absolute range, zero speed, unknown action, reserved byte: refused */
    CHECK(is_nack(arm(NG_ACT_LIFT, 1801, 100), NG_R_BAD_ARG));
    CHECK(is_nack(arm(NG_ACT_LIFT, 900, 0), NG_R_BAD_ARG));
    CHECK(is_nack(arm(0, 900, 10), NG_R_BAD_ARG));
    CHECK(is_nack(arm(8, 900, 10), NG_R_BAD_ARG));
    /* a stalled loop (200 ms without tick) moves at most speed x NG_TICK_MAX_MS */
    CHECK(is_ack(arm(NG_ACT_RELEASE, NG_J0_MIN, 1000), NG_MSG_ARM_CMD));
    heartbeat();
    prev = ng_core_position(&core, 0);
    now += 200;
    ng_core_tick(&core, now);
    CHECK(prev - ng_core_position(&core, 0) == 1000 * NG_TICK_MAX_MS / 1000);
}

static void test_hold_and_rest(void)
{
    fresh(0);
    hello();
    arm(NG_ACT_GRASP, 1500, 1000);
    advance(50);
    heartbeat();
    CHECK(is_ack(arm(NG_ACT_HOLD, 0, 1), NG_MSG_ARM_CMD));
    CHECK(core.target[0] == ng_core_position(&core, 0));
    advance(50);
    CHECK(core.target[0] == ng_core_position(&core, 0));
    heartbeat();
    CHECK(is_ack(arm(NG_ACT_REST, 0, 2000), NG_MSG_ARM_CMD));
    CHECK(core.target[0] == NG_J0_SAFE && core.target[1] == NG_J1_SAFE);
    CHECK(core.speed[0] == NG_J0_SPEED && core.speed[1] == NG_J1_SPEED);
}

static void test_watchdog(void)
{
    ng_frame_t r;
    fresh(0xFFFFFF00u); /* also crosses the 32-bit millisecond wrap */
    hello();
    arm(NG_ACT_GRASP, 1500, 3000);
    advance(NG_WATCHDOG_DEFAULT_MS - 1);
    CHECK(!(core.faults & NG_FAULT_WATCHDOG));
    advance(1);
    CHECK(core.faults & NG_FAULT_WATCHDOG);
    CHECK(core.watchdog_trips == 1);
    CHECK(core.target[0] == NG_J0_SAFE && core.target[1] == NG_J1_SAFE);
    CHECK(is_nack(arm(NG_ACT_GRASP, 1000, 100), NG_R_WATCHDOG));
    advance(2000);
    CHECK(ng_core_position(&core, 0) == NG_J0_SAFE);
    r = heartbeat(); /* heartbeats resume: the fault stays latched until CLEAR */
    CHECK(r.type == NG_MSG_STATUS && (r.payload[12] & NG_FAULT_WATCHDOG));
    CHECK(is_ack(clear(NG_FAULT_WATCHDOG), NG_MSG_CLEAR));
    CHECK(is_ack(arm(NG_ACT_GRASP, 1000, 100), NG_MSG_ARM_CMD));
    /* heartbeats every 200 ms keep it alive; a shorter configured period trips sooner */
    advance(200);
    heartbeat();
    advance(200);
    heartbeat();
    CHECK(!(core.faults & NG_FAULT_WATCHDOG));
    {
        uint8_t p[4] = {100, 0, 0, 0}, bad[4] = {251, 0, 0, 0}, low[4] = {19, 0, 0, 0};
        CHECK(is_nack(request(NG_MSG_SET_CONFIG, seqn++, bad, 4), NG_R_BAD_ARG));
        CHECK(is_nack(request(NG_MSG_SET_CONFIG, seqn++, low, 4), NG_R_BAD_ARG));
        CHECK(is_ack(request(NG_MSG_SET_CONFIG, seqn++, p, 4), NG_MSG_SET_CONFIG));
    }
    heartbeat();
    advance(100);
    CHECK(core.faults & NG_FAULT_WATCHDOG);
}

static void test_estop(void)
{
    uint16_t pos;
    uint8_t lim[10] = {0, 0, 100, 0, 0x40, 0x06, 200, 0, 0xE8, 0x03};
    fresh(0);
    CHECK(is_ack(request(NG_MSG_ESTOP, seqn++, NULL, 0), NG_MSG_ESTOP)); /* even before HELLO */
    CHECK(is_nack(clear(NG_FAULT_ESTOP), NG_R_NO_HELLO));
    hello();
    CHECK(is_ack(clear(NG_FAULT_ESTOP), NG_MSG_CLEAR));
    arm(NG_ACT_GRASP, 1500, 1000);
    advance(30);
    heartbeat();
    CHECK(is_ack(request(NG_MSG_ESTOP, seqn++, NULL, 0), NG_MSG_ESTOP));
    pos = ng_core_position(&core, 0);
    CHECK(core.target[0] == pos);
    CHECK(is_nack(arm(NG_ACT_GRASP, 1000, 100), NG_R_ESTOPPED));
    CHECK(is_nack(request(NG_MSG_SET_LIMITS, seqn++, lim, 10), NG_R_ESTOPPED));
    advance(1000); /* the watchdog trips, but nothing moves while e-stopped */
    CHECK(core.faults & NG_FAULT_WATCHDOG);
    CHECK(ng_core_position(&core, 0) == pos && ng_core_position(&core, 1) == NG_J1_SAFE);
    heartbeat();
    CHECK(is_nack(clear(0x20), NG_R_BAD_ARG));
    CHECK(is_nack(clear(0), NG_R_BAD_ARG));
    CHECK(is_ack(clear(NG_FAULT_ESTOP | NG_FAULT_WATCHDOG), NG_MSG_CLEAR));
    advance(100);
    CHECK(ng_core_position(&core, 0) == pos); /* stays still until a new command */
    CHECK(is_ack(request(NG_MSG_SET_LIMITS, seqn++, lim, 10), NG_MSG_SET_LIMITS));
    CHECK(core.limits[0].min == 100 && core.limits[0].max == 1600 && core.limits[0].safe == 200);
}

static void test_set_limits_validation(void)
{
    /* joint, rsv, min, max, safe, speed */
    uint8_t good[10] = {1, 0, 0x2C, 0x01, 0xE8, 0x03, 0x90, 0x01, 0xF4, 0x01}; /* 300, 1000, 400, 500 */
    uint8_t bad[6][10];
    int i;
    fresh(0);
    hello();
    arm(NG_ACT_LIFT, 1400, 100);
    for (i = 0; i < 6; i++) {
        memcpy(bad[i], good, 10);
    }
    bad[0][0] = 2;                    /* joint */
    bad[1][2] = 0xE8; bad[1][3] = 3;  /* min == max */
    bad[2][4] = 0x09; bad[2][5] = 7;  /* max > 1800 */
    bad[3][6] = 0x10; bad[3][7] = 0;  /* safe < min */
    bad[4][8] = 0xB9; bad[4][9] = 0x0B; /* speed 3001 */
    bad[5][1] = 1;                    /* reserved */
    for (i = 0; i < 6; i++) {
        CHECK(is_nack(request(NG_MSG_SET_LIMITS, seqn++, bad[i], 10), NG_R_BAD_ARG));
    }
    CHECK(is_ack(request(NG_MSG_SET_LIMITS, seqn++, good, 10), NG_MSG_SET_LIMITS));
    CHECK(core.target[1] == 1000 && core.speed[1] == 100); /* re-clamped to the new max */
}

static void test_retransmission_not_reexecuted(void)
{
    uint8_t buf[NG_MAX_ENCODED + 1], first[NG_MAX_ENCODED + 1];
    const uint8_t p[6] = {NG_ACT_GRASP, 0, 0xE8, 0x03, 0x64, 0};
    size_t n = ng_frame_encode(NG_MSG_ARM_CMD, 77, p, 6, buf), n1;
    ng_frame_t r;
    fresh(0);
    hello();
    out_len = 0;
    send_raw(buf, n);
    n1 = out_len;
    memcpy(first, out_buf, n1);
    CHECK(replies(&r) == 1 && is_ack(r, NG_MSG_ARM_CMD));
    CHECK(core.commands_executed == 1);
    send_raw(buf, n); /* the ACK was "lost": the host resends the identical frame */
    CHECK(out_len == n1 && memcmp(out_buf, first, n1) == 0);
    CHECK(core.commands_executed == 1);
    CHECK(core.last_cmd_seq == 77 && memcmp(core.last_cmd, p, 6) == 0);
    /* heartbeats and status requests in between do not evict that memory */
    CHECK(heartbeat().type == NG_MSG_STATUS);
    CHECK(request(NG_MSG_STATUS_REQ, seqn++, NULL, 0).type == NG_MSG_STATUS);
    out_len = 0;
    send_raw(buf, n);
    CHECK(out_len == n1 && memcmp(out_buf, first, n1) == 0);
    CHECK(core.commands_executed == 1);
    /* a different command with the same seq is a new command */
    {
        const uint8_t p2[6] = {NG_ACT_GRASP, 0, 0xE9, 0x03, 0x64, 0};
        CHECK(is_ack(request(NG_MSG_ARM_CMD, 77, p2, 6), NG_MSG_ARM_CMD));
        CHECK(core.commands_executed == 2);
    }
    out_len = 0;
}

static void test_corrupted_frames_never_execute(void)
{
    uint8_t buf[NG_MAX_ENCODED + 1];
    const uint8_t p[6] = {NG_ACT_GRASP, 0, 0xE8, 0x03, 0x64, 0};
    size_t n = ng_frame_encode(NG_MSG_ARM_CMD, 3, p, 6, buf), i;
    unsigned bit;
    int executed = 0, nacks = 0;
    ng_frame_t r;
    fresh(0);
    hello();
    /* every single-bit flip of every byte except the delimiter: never executed, always answered */
    for (i = 0; i + 1 < n; i++) {
        for (bit = 0; bit < 8; bit++) {
            uint8_t c[NG_MAX_ENCODED + 1];
            uint16_t before = core.commands_executed;
            memcpy(c, buf, n);
            c[i] ^= (uint8_t)(1u << bit);
            out_len = 0;
            send_raw(c, n);
            executed += core.commands_executed != before;
            memset(&r, 0, sizeof r);
            replies(&r);
            nacks += r.type == NG_MSG_NACK && r.payload[0] == 0;
        }
    }
    CHECK(executed == 0);
    CHECK(nacks == (int)(8 * (n - 1)));
    CHECK(core.crc_errors + core.framing_errors >= (uint16_t)(8 * (n - 1)));
}

static uint16_t status_faults(ng_frame_t r) { return (uint16_t)(r.payload[12] | (r.payload[13] << 8)); }

static uint32_t status_uptime(ng_frame_t r)
{
    return (uint32_t)r.payload[0] | ((uint32_t)r.payload[1] << 8) | ((uint32_t)r.payload[2] << 16) |
           ((uint32_t)r.payload[3] << 24);
}

/* What the host link relies on to recognise an MCU reset (PROTOCOL.md section 2): after a reboot
 * the firmware has no session (NO_HELLO fault bit, NACK NO_HELLO to everything but HELLO, ESTOP and
 * STATUS_REQ), its uptime starts again from 0, and every latch (ESTOP, WATCHDOG) and setting is
 * gone; a new HELLO restores the session and nothing moves until a command. */
static void test_reset_contract(void)
{
    ng_frame_t r;
    uint8_t cfg[4] = {100, 0, 0, 0};
    fresh(0);
    hello();
    CHECK(is_ack(request(NG_MSG_SET_CONFIG, seqn++, cfg, 4), NG_MSG_SET_CONFIG));
    arm(NG_ACT_GRASP, 1500, 3000);
    advance(60);
    heartbeat();
    CHECK(is_ack(request(NG_MSG_ESTOP, seqn++, NULL, 0), NG_MSG_ESTOP));
    r = request(NG_MSG_STATUS_REQ, seqn++, NULL, 0);
    CHECK(status_uptime(r) == 60 && (status_faults(r) & NG_FAULT_ESTOP));
    /* the MCU reboots (same clock source, 5 ms later): the host's next requests */
    now += 5;
    ng_core_init(&core, now, capture, NULL);
    advance(3);
    CHECK(is_nack(heartbeat(), NG_R_NO_HELLO));
    CHECK(is_nack(arm(NG_ACT_GRASP, 1000, 100), NG_R_NO_HELLO));
    CHECK(is_nack(clear(NG_FAULT_WATCHDOG), NG_R_NO_HELLO));
    r = request(NG_MSG_STATUS_REQ, seqn++, NULL, 0);
    CHECK(r.type == NG_MSG_STATUS && status_uptime(r) == 3);
    CHECK(status_faults(r) == NG_FAULT_NO_HELLO); /* the e-stop latch did not survive */
    CHECK(ng_core_position(&core, 0) == NG_J0_SAFE && core.target[0] == NG_J0_SAFE);
    CHECK(core.watchdog_ms == NG_WATCHDOG_DEFAULT_MS);
    /* the host restores the session and re-latches its e-stop */
    r = hello();
    CHECK(r.type == NG_MSG_HELLO_REPLY && (r.payload[4] | (r.payload[5] << 8)) == NG_WATCHDOG_DEFAULT_MS);
    CHECK(is_ack(request(NG_MSG_ESTOP, seqn++, NULL, 0), NG_MSG_ESTOP));
    CHECK(is_nack(arm(NG_ACT_GRASP, 1000, 100), NG_R_ESTOPPED));
    r = heartbeat();
    CHECK(r.type == NG_MSG_STATUS && status_faults(r) == NG_FAULT_ESTOP);
}

/* The hardware layers (avr/main.c, the Arduino sketch) report a dropped received byte: latched
 * RX_OVERFLOW in STATUS until CLEAR; commands are not refused for it. */
static void test_rx_overflow(void)
{
    ng_frame_t r;
    fresh(0);
    hello();
    ng_core_note_rx_overflow(&core);
    r = heartbeat();
    CHECK(status_faults(r) & NG_FAULT_RX_OVERFLOW);
    CHECK(is_ack(arm(NG_ACT_GRASP, 1000, 100), NG_MSG_ARM_CMD));
    r = heartbeat();
    CHECK(status_faults(r) & NG_FAULT_RX_OVERFLOW);
    CHECK(is_ack(clear(NG_FAULT_RX_OVERFLOW), NG_MSG_CLEAR));
    r = heartbeat();
    CHECK(!(status_faults(r) & NG_FAULT_RX_OVERFLOW));
}

static void test_pulse(void)
{
    CHECK(ng_pulse_us(0) == 1000);
    CHECK(ng_pulse_us(900) == 1500);
    CHECK(ng_pulse_us(1800) == 2000);
    CHECK(ng_pulse_us(60000) == 2000);
    CHECK(ng_pulse_us(1) == 1001);
}

/* The arm's own e-stop switch: pressed, nothing moves and motion is refused, CLEAR cannot release
 * it; released, the arm stays stopped (the ESTOP latch) until a deliberate start (CLEAR ESTOP), then
 * where it stopped until a new command (ISO 13850: resetting the stop does not restart). */
static void test_estop_input(void)
{
    uint16_t pos;
    ng_frame_t r;
    fresh(0);
    hello();
    arm(NG_ACT_GRASP, 1500, 1000);
    advance(30);
    heartbeat();
    ng_core_estop_input(&core, 1);
    pos = ng_core_position(&core, 0);
    CHECK(core.target[0] == pos && (core.faults & NG_FAULT_ESTOP_INPUT));
    advance(100);
    heartbeat();
    CHECK(ng_core_position(&core, 0) == pos);
    CHECK(is_nack(arm(NG_ACT_GRASP, 1000, 100), NG_R_ESTOPPED));
    CHECK(is_nack(arm(NG_ACT_REST, 0, 900), NG_R_ESTOPPED));
    CHECK(is_nack(clear(NG_FAULT_ESTOP_INPUT), NG_R_BAD_ARG)); /* only the switch releases it */
    r = heartbeat();
    CHECK(r.type == NG_MSG_STATUS && (r.payload[12] & NG_FAULT_ESTOP_INPUT));
    ng_core_estop_input(&core, 1); /* still pressed: nothing changes */
    CHECK(core.target[0] == pos);
    advance(NG_ESTOP_RELEASE_MS - 1);
    ng_core_estop_input(&core, 0); /* bouncing contacts: not yet released */
    CHECK(core.faults & NG_FAULT_ESTOP_INPUT);
    advance(1);
    ng_core_estop_input(&core, 0);
    CHECK(!(core.faults & NG_FAULT_ESTOP_INPUT) && (core.faults & NG_FAULT_ESTOP));
    advance(100);
    r = heartbeat();
    CHECK(r.type == NG_MSG_STATUS && (r.payload[12] & NG_FAULT_ESTOP) && !(r.payload[12] & NG_FAULT_ESTOP_INPUT));
    CHECK(ng_core_position(&core, 0) == pos);
    /* released, not started: motion is still refused, REST included */
    CHECK(is_nack(arm(NG_ACT_GRASP, 1000, 100), NG_R_ESTOPPED));
    CHECK(is_nack(arm(NG_ACT_REST, 0, 900), NG_R_ESTOPPED));
    CHECK(is_ack(clear(NG_FAULT_ESTOP), NG_MSG_CLEAR)); /* the deliberate start */
    advance(100);
    heartbeat();
    CHECK(ng_core_position(&core, 0) == pos); /* started: stays still until a new command */
    CHECK(is_ack(arm(NG_ACT_REST, 0, 900), NG_MSG_ARM_CMD));
    /* pressed while the ESTOP message also latched: releasing the switch leaves that latch */
    CHECK(is_ack(request(NG_MSG_ESTOP, seqn++, NULL, 0), NG_MSG_ESTOP));
    ng_core_estop_input(&core, 1);
    advance(NG_ESTOP_RELEASE_MS);
    ng_core_estop_input(&core, 0);
    CHECK(!(core.faults & NG_FAULT_ESTOP_INPUT) && (core.faults & NG_FAULT_ESTOP));
    CHECK(is_nack(arm(NG_ACT_GRASP, 1000, 100), NG_R_ESTOPPED));
    CHECK(is_ack(clear(NG_FAULT_ESTOP), NG_MSG_CLEAR));
    CHECK(is_ack(arm(NG_ACT_GRASP, 1000, 100), NG_MSG_ARM_CMD));
    /* the watchdog trips while the switch is pressed: nothing moves, not even to the safe pose */
    ng_core_estop_input(&core, 1);
    pos = ng_core_position(&core, 0);
    advance(1000);
    CHECK((core.faults & NG_FAULT_WATCHDOG) && ng_core_position(&core, 0) == pos);
    ng_core_estop_input(&core, 0);
    CHECK(!(core.faults & NG_FAULT_ESTOP_INPUT) && (core.faults & NG_FAULT_ESTOP));
}

/* ------------------------------------------------------------------ streaming (PROTOCOL.md section 5) */

static uint32_t u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Every frame written since the last call, in order. */
static int frames_out(ng_frame_t *fs, int cap)
{
    ng_parser_t p;
    ng_frame_t f;
    size_t i;
    int n = 0;
    ng_parser_init(&p);
    for (i = 0; i < out_len; i++) {
        if (ng_parser_feed(&p, out_buf[i], &f) == NG_PARSE_FRAME && n < cap) {
            fs[n++] = f;
        }
    }
    out_len = 0;
    return n;
}

static ng_frame_t stream_start(uint8_t seq, uint8_t mask, uint16_t rate)
{
    uint8_t p[4] = {mask, 0, (uint8_t)rate, (uint8_t)(rate >> 8)};
    return request(NG_MSG_STREAM_START, seq, p, 4);
}

/* A deterministic scan: input ch at index k. */
static uint16_t pattern(uint32_t k, uint8_t ch) { return (uint16_t)((k * 7u + ch * 131u) % 1024u); }

static void scan_of(uint32_t k, uint8_t mask, uint16_t *v)
{
    uint8_t ch, n = 0;
    for (ch = 0; ch < 8; ch++) {
        if (mask & (1u << ch)) {
            v[n++] = pattern(k, ch);
        }
    }
}

/* Check one SAMPLES frame against the pattern; returns its scan count (0 if it is not one). */
static int check_samples(const ng_frame_t *f, uint8_t id, uint8_t mask)
{
    uint8_t n_ch = ng_stream_channels(mask), n, i, j;
    uint32_t first;
    int ok = 1;
    uint16_t v[8];
    if (f->type != NG_MSG_SAMPLES || f->len < NG_SAMPLES_HEADER) {
        return 0;
    }
    first = u32le(f->payload);
    n = f->payload[6];
    CHECK(f->payload[4] == id && f->payload[5] == mask && f->len == ng_samples_len(n_ch, n));
    for (i = 0; i < n; i++) {
        scan_of(first + i, mask, v);
        for (j = 0; j < n_ch; j++) {
            ok &= ng_unpack10(f->payload + NG_SAMPLES_HEADER, (uint16_t)(i * n_ch + j)) == v[j];
        }
    }
    CHECK(ok);
    return n;
}

static void test_stream_arithmetic(void)
{
    /* PROTOCOL.md section 5's table: scans per frame, frame bytes, needed and available bytes/s */
    CHECK(ng_stream_scans_per_frame(8, 500) == 2 && ng_samples_wire_len(8, 2) == 34);
    CHECK(ng_stream_need_bps(8, 500) == 8500 && ng_stream_need_bps(8, 1000) == 17000);
    CHECK(ng_stream_scans_per_frame(4, 1000) == 5 && ng_samples_wire_len(4, 5) == 39);
    CHECK(ng_stream_need_bps(4, 1000) == 7800 && ng_stream_need_bps(8, 200) == 4800);
    CHECK(ng_stream_scans_per_frame(1, 1000) == 5 && ng_stream_scans_per_frame(6, 1000) == 3);
    CHECK(ng_stream_scans_per_frame(8, 100) == 1 && ng_samples_len(8, 2) == 27 && ng_samples_len(2, 2) == 12);
    CHECK(ng_stream_avail_bps(500000) == 38000 && ng_stream_avail_bps(250000) == 18000);
    CHECK(ng_stream_avail_bps(115200) == 7216 && ng_stream_avail_bps(9600) == 0);
    /* every valid configuration fits at 500 000 baud; at 115 200 raw EMG does not */
    {
        unsigned mask, rate, all_fit = 1;
        for (mask = 1; mask < 256; mask++) {
            for (rate = 1; rate <= 1000; rate++) {
                uint8_t r = ng_stream_check((uint8_t)mask, 0, (uint16_t)rate, NG_LINK_BAUD);
                all_fit &= r == (1000u % rate == 0u ? 0u : (unsigned)NG_R_BAD_ARG);
            }
        }
        CHECK(all_fit);
    }
    CHECK(ng_stream_check(0xFF, 0, 500, 115200) == NG_R_BUDGET);
    CHECK(ng_stream_check(0x0F, 0, 1000, 115200) == NG_R_BUDGET);
    CHECK(ng_stream_check(0xFF, 0, 200, 115200) == 0);
    CHECK(ng_stream_check(0x0F, 0, 500, 115200) == 0);
    CHECK(ng_stream_check(0, 0, 500, NG_LINK_BAUD) == NG_R_BAD_ARG);
    CHECK(ng_stream_check(1, 1, 500, NG_LINK_BAUD) == NG_R_BAD_ARG);
    CHECK(ng_stream_check(1, 0, 0, NG_LINK_BAUD) == NG_R_BAD_ARG);
    CHECK(ng_stream_check(1, 0, 2000, NG_LINK_BAUD) == NG_R_BAD_ARG);
    CHECK(ng_stream_check(1, 0, 300, NG_LINK_BAUD) == NG_R_BAD_ARG);
    CHECK(ng_stream_channels(0xA5) == 4 && ng_stream_channels(0xFF) == 8 && ng_stream_channels(0) == 0);
    /* 10-bit packing: 4 values in 5 bytes, LSB first */
    {
        uint8_t buf[26];
        const uint16_t v[4] = {512, 498, 530, 1023};
        const uint8_t expect[5] = {0x00, 0xCA, 0x27, 0xE1, 0xFF};
        uint16_t i;
        int ok = 1;
        memset(buf, 0, sizeof buf);
        for (i = 0; i < 4; i++) {
            ng_pack10(buf, i, v[i]);
        }
        CHECK(memcmp(buf, expect, 5) == 0 && buf[5] == 0);
        memset(buf, 0, sizeof buf);
        for (i = 0; i < 20; i++) {
            ng_pack10(buf, i, (uint16_t)(1023u - i * 37u));
        }
        for (i = 0; i < 20; i++) {
            ok &= ng_unpack10(buf, i) == (uint16_t)(1023u - i * 37u);
        }
        CHECK(ok && buf[25] == 0);
    }
}

static void test_sampler(void)
{
    ng_sampler_t s;
    ng_scan_t scan;
    uint8_t ch, k;
    memset(&s, 0xA5, sizeof s);
    ng_sampler_configure(&s, 0xA5, 2); /* inputs 0, 2, 5, 7 every 2 ticks */
    CHECK(s.n == 4 && s.ch[0] == 0 && s.ch[1] == 2 && s.ch[2] == 5 && s.ch[3] == 7);
    CHECK(ng_sampler_pop(&s, &scan) == 0);
    CHECK(ng_sampler_result(&s, 99) == NG_SAMPLER_NONE); /* nothing expected yet */
    /* the first scan starts at the next tick; each result starts the next input */
    CHECK(ng_sampler_tick(&s) == 0);
    CHECK(ng_sampler_result(&s, 100) == 2 && ng_sampler_result(&s, 101) == 5);
    CHECK(ng_sampler_result(&s, 102) == 7 && ng_sampler_result(&s, 0xFC03) == NG_SAMPLER_NONE);
    CHECK(ng_sampler_tick(&s) == NG_SAMPLER_NONE); /* period 2 */
    CHECK(ng_sampler_pop(&s, &scan) == 1 && scan.index == 0 && scan.value[0] == 100 && scan.value[3] == 3);
    CHECK(ng_sampler_pop(&s, &scan) == 0);
    /* a scan still converting at the next trigger: that index is skipped, not delayed */
    CHECK(ng_sampler_tick(&s) == 0);
    CHECK(ng_sampler_result(&s, 1) == 2);
    CHECK(ng_sampler_tick(&s) == NG_SAMPLER_NONE && ng_sampler_tick(&s) == NG_SAMPLER_NONE);
    CHECK(s.overruns == 1);
    CHECK(ng_sampler_result(&s, 2) == 5 && ng_sampler_result(&s, 3) == 7 && ng_sampler_result(&s, 4) == NG_SAMPLER_NONE);
    CHECK(ng_sampler_pop(&s, &scan) == 1 && scan.index == 1);
    /* a full ring (the main loop lagged): whole scans are skipped, their indices too */
    for (k = 0; k < NG_SAMPLER_RING + 2u; k++) {
        ng_sampler_tick(&s);
        ch = ng_sampler_tick(&s);
        while (ch != NG_SAMPLER_NONE) {
            ch = ng_sampler_result(&s, k);
        }
    }
    CHECK(s.dropped == 3);
    for (k = 0; ng_sampler_pop(&s, &scan); k++) {
        CHECK(scan.index == 3u + k && scan.value[0] == k);
    }
    CHECK(k == NG_SAMPLER_RING - 1u);
    /* reconfigured: from index 0 again; a conversion of the old configuration is not taken */
    ng_sampler_tick(&s);
    CHECK(ng_sampler_tick(&s) == 0);
    ng_sampler_configure(&s, 0x02, 1);
    CHECK(ng_sampler_result(&s, 5) == NG_SAMPLER_NONE && ng_sampler_pop(&s, &scan) == 0);
    CHECK(ng_sampler_tick(&s) == 1 && ng_sampler_result(&s, 6) == NG_SAMPLER_NONE);
    CHECK(ng_sampler_pop(&s, &scan) == 1 && scan.index == 0 && scan.value[0] == 6);
    ng_sampler_configure(&s, 0, 1);
    CHECK(ng_sampler_tick(&s) == NG_SAMPLER_NONE && s.n == 0);
}

static void test_stream_session(void)
{
    ng_frame_t fs[64], r;
    uint16_t v[8];
    uint32_t k;
    uint8_t gen;
    int n, i;
    fresh(0);
    CHECK(is_nack(stream_start(40, 0xFF, 500), NG_R_NO_HELLO));
    CHECK(!core.stream.active);
    CHECK(is_ack(request(NG_MSG_STREAM_STOP, 39, NULL, 0), NG_MSG_STREAM_STOP)); /* in every state */
    hello();
    CHECK(is_nack(stream_start(41, 0, 500), NG_R_BAD_ARG));
    CHECK(is_nack(stream_start(42, 0xFF, 300), NG_R_BAD_ARG));
    CHECK(is_nack(stream_start(43, 0xFF, 0), NG_R_BAD_ARG));
    CHECK(is_nack(stream_start(44, 0xFF, 2000), NG_R_BAD_ARG));
    {
        uint8_t p[4] = {0xFF, 1, 0xF4, 0x01};
        CHECK(is_nack(request(NG_MSG_STREAM_START, 45, p, 4), NG_R_BAD_ARG));
        CHECK(is_nack(request(NG_MSG_STREAM_START, 46, p, 3), NG_R_BAD_LENGTH));
    }
    gen = core.stream.gen;
    CHECK(is_ack(stream_start(50, 0xFF, 500), NG_MSG_STREAM_START));
    CHECK(core.stream.active && core.stream.gen != gen && core.stream.period_ms == 2 && core.stream.scans_per_frame == 2);
    /* 9 scans: 4 full frames of 2 scans, numbered 0..3, first samples 0, 2, 4, 6 */
    for (k = 0; k < 9; k++) {
        scan_of(k, 0xFF, v);
        ng_core_scan(&core, k, v);
    }
    n = frames_out(fs, 64);
    CHECK(n == 4);
    for (i = 0; i < n; i++) {
        CHECK(check_samples(&fs[i], 50, 0xFF) == 2 && fs[i].seq == i && u32le(fs[i].payload) == (uint32_t)(2 * i));
    }
    /* a gap (scans 9..11 lost before the core): the frame holding scan 8 goes out alone, the next
       starts at 12; the host sees first_sample 12 after 8 + 1 */
    scan_of(12, 0xFF, v);
    ng_core_scan(&core, 12, v);
    n = frames_out(fs, 64);
    CHECK(n == 1 && check_samples(&fs[0], 50, 0xFF) == 1 && u32le(fs[0].payload) == 8 && fs[0].seq == 4);
    CHECK(core.stream.scans_lost == 3);
    ng_core_scan(&core, 5, v); /* older than the stream's next index: ignored */
    CHECK(frames_out(fs, 64) == 0);
    /* the retransmitted START (its ACK lost) answers again, and does not restart the stream */
    {
        uint8_t p[4] = {0xFF, 0, 0xF4, 0x01}, buf[NG_MAX_ENCODED + 1];
        size_t m = ng_frame_encode(NG_MSG_STREAM_START, 50, p, 4, buf);
        gen = core.stream.gen;
        out_len = 0;
        send_raw(buf, m);
        CHECK(frames_out(fs, 64) == 1 && is_ack(fs[0], NG_MSG_STREAM_START) && core.stream.gen == gen);
        CHECK(core.stream.next == 13 && core.stream.n_scans == 1);
    }
    /* STOP: the scan it holds goes out first, then the ACK; nothing after */
    out_len = 0;
    {
        uint8_t buf[NG_MAX_ENCODED + 1];
        size_t m = ng_frame_encode(NG_MSG_STREAM_STOP, 51, NULL, 0, buf);
        send_raw(buf, m);
    }
    n = frames_out(fs, 64);
    CHECK(n == 2 && check_samples(&fs[0], 50, 0xFF) == 1 && u32le(fs[0].payload) == 12 && fs[0].seq == 5);
    CHECK(is_ack(fs[1], NG_MSG_STREAM_STOP) && !core.stream.active);
    ng_core_scan(&core, 13, v);
    CHECK(frames_out(fs, 64) == 0);
    CHECK(is_ack(request(NG_MSG_STREAM_STOP, 52, NULL, 0), NG_MSG_STREAM_STOP)); /* stopped: still ACKed */
    /* START while streaming: the old stream's last scans, then the ACK, then the new stream from 0 */
    CHECK(is_ack(stream_start(60, 0x0F, 1000), NG_MSG_STREAM_START));
    for (k = 0; k < 3; k++) {
        scan_of(k, 0x0F, v);
        ng_core_scan(&core, k, v);
    }
    CHECK(frames_out(fs, 64) == 0); /* 5 scans per frame at 1 kHz */
    {
        uint8_t p[4] = {0x03, 0, 200, 0}, buf[NG_MAX_ENCODED + 1];
        size_t m = ng_frame_encode(NG_MSG_STREAM_START, 61, p, 4, buf);
        send_raw(buf, m);
    }
    n = frames_out(fs, 64);
    CHECK(n == 2 && check_samples(&fs[0], 60, 0x0F) == 3 && is_ack(fs[1], NG_MSG_STREAM_START));
    CHECK(core.stream.id == 61 && core.stream.next == 0 && core.stream.scans_per_frame == 1);
    scan_of(0, 0x03, v);
    ng_core_scan(&core, 0, v);
    n = frames_out(fs, 64);
    CHECK(n == 1 && check_samples(&fs[0], 61, 0x03) == 1 && fs[0].seq == 0 && u32le(fs[0].payload) == 0);
    /* a new HELLO (a host that reconnected) ends the stream without sending what it held */
    CHECK(is_ack(stream_start(62, 0x0F, 1000), NG_MSG_STREAM_START));
    scan_of(0, 0x0F, v);
    ng_core_scan(&core, 0, v);
    gen = core.stream.gen;
    r = hello();
    CHECK(r.type == NG_MSG_HELLO_REPLY && !core.stream.active && core.stream.gen != gen && core.stream.n_scans == 0);
    ng_core_scan(&core, 1, v);
    CHECK(frames_out(fs, 64) == 0);
    /* an MCU reset forgets the stream */
    CHECK(is_ack(stream_start(63, 0x0F, 1000), NG_MSG_STREAM_START));
    ng_core_init(&core, now, capture, NULL);
    CHECK(!core.stream.active);
}

/* At 115 200 baud raw EMG does not fit: NACK BUDGET, and the stream is not started. */
static void test_stream_budget_nack(void)
{
    fresh(0);
    core.link_baud = 115200;
    hello();
    CHECK(is_nack(stream_start(1, 0xFF, 500), NG_R_BUDGET));
    CHECK(is_nack(stream_start(2, 0x0F, 1000), NG_R_BUDGET));
    CHECK(!core.stream.active);
    CHECK(is_ack(stream_start(3, 0xFF, 200), NG_MSG_STREAM_START));
    CHECK(core.stream.active && core.stream.rate_hz == 200);
}

/* Streaming changes nothing else: heartbeats, commands, the watchdog, the e-stops, while every
 * scan still arrives (no index missing, through the watchdog trip and the e-stop). */
static void test_stream_keeps_the_guarantees(void)
{
    ng_frame_t fs[64];
    uint16_t v[8];
    uint32_t k = 0, expect_first = 0, t;
    int n, i, ok = 1, acks = 0, statuses = 0;
    fresh(0);
    hello();
    CHECK(is_ack(stream_start(9, 0xFF, 1000), NG_MSG_STREAM_START));
    CHECK(is_ack(arm(NG_ACT_GRASP, 1500, 1000), NG_MSG_ARM_CMD));
    for (t = 0; t < 600; t++) {
        now++;
        ng_core_tick(&core, now);
        ng_core_estop_input(&core, t >= 450 && t < 500);
        scan_of(k, 0xFF, v);
        ng_core_scan(&core, k++, v);
        if (t < 200 && t % 50 == 0) {
            uint8_t buf[NG_MAX_ENCODED + 1];
            size_t m = ng_frame_encode(NG_MSG_HEARTBEAT, seqn++, NULL, 0, buf);
            send_raw(buf, m);
        }
        if (t == 100) {
            uint8_t p[6] = {NG_ACT_LIFT, 0, 0xE8, 0x03, 0xE8, 0x03}, buf[NG_MAX_ENCODED + 1];
            size_t m = ng_frame_encode(NG_MSG_ARM_CMD, seqn++, p, 6, buf);
            send_raw(buf, m);
        }
        n = frames_out(fs, 64);
        for (i = 0; i < n; i++) {
            if (fs[i].type == NG_MSG_SAMPLES) {
                ok &= check_samples(&fs[i], 9, 0xFF) == 2 && u32le(fs[i].payload) == expect_first;
                expect_first += 2;
            } else {
                acks += is_ack(fs[i], NG_MSG_ARM_CMD);
                statuses += fs[i].type == NG_MSG_STATUS;
            }
        }
        if (t == 150 + NG_WATCHDOG_DEFAULT_MS - 1) {
            CHECK(!(core.faults & NG_FAULT_WATCHDOG)); /* last heartbeat at t = 150 */
        }
        if (t == 150 + NG_WATCHDOG_DEFAULT_MS) {
            CHECK((core.faults & NG_FAULT_WATCHDOG) && core.target[0] == NG_J0_SAFE && core.target[1] == NG_J1_SAFE);
        }
        if (t == 470) {
            CHECK((core.faults & NG_FAULT_ESTOP_INPUT) && core.target[0] == ng_core_position(&core, 0));
        }
    }
    CHECK(ok && expect_first == 600 && core.stream.scans_lost == 0);
    CHECK(acks == 1 && statuses == 4);
    CHECK((core.faults & NG_FAULT_ESTOP) && !(core.faults & NG_FAULT_ESTOP_INPUT));
    CHECK(is_nack(arm(NG_ACT_GRASP, 1000, 100), NG_R_ESTOPPED)); /* sensing goes on, motion does not */
    CHECK(core.stream.active);
    /* an e-stop or a watchdog trip does not refuse a new stream either: they stop motion, not sensing */
    CHECK((core.faults & NG_FAULT_WATCHDOG) && is_ack(stream_start(10, 0x0F, 1000), NG_MSG_STREAM_START));
}

/* The SAMPLES example of PROTOCOL.md section 5 (also checked from Python against the document): the
 * core builds it from the stream STREAM_START seq 7 (A0 and A1 at 500 Hz) after 1000 scans. */
static void test_samples_example_frame(void)
{
    const uint8_t expect[] = {0x06, 0x84, 0xF4, 0x0C, 0xE8, 0x03, 0x01, 0x04, 0x07, 0x03,
                              0x02, 0x07, 0xCA, 0x27, 0xE1, 0xFF, 0x2B, 0x5E, 0x00};
    const uint8_t start[] = {0x05, 0x09, 0x07, 0x04, 0x03, 0x05, 0xF4, 0x01, 0xBD, 0xCF, 0x00};
    const uint16_t a[2] = {512, 498}, b[2] = {530, 1023};
    ng_frame_t fs[4];
    uint16_t v[2] = {0, 0};
    uint32_t k;
    fresh(0);
    hello();
    out_len = 0;
    send_raw(start, sizeof start);
    CHECK(frames_out(fs, 4) == 1 && is_ack(fs[0], NG_MSG_STREAM_START) && fs[0].seq == 7);
    for (k = 0; k < 1000; k++) {
        ng_core_scan(&core, k, v);
    }
    out_len = 0;
    ng_core_scan(&core, 1000, a);
    ng_core_scan(&core, 1001, b);
    CHECK(out_len == sizeof expect && memcmp(out_buf, expect, sizeof expect) == 0);
    out_len = 0;
}

int main(void)
{
    test_crc();
    test_cobs_roundtrip();
    test_example_frame();
    test_parser();
    test_session();
    test_motion_slew_and_limits();
    test_hold_and_rest();
    test_watchdog();
    test_estop();
    test_estop_input();
    test_set_limits_validation();
    test_retransmission_not_reexecuted();
    test_corrupted_frames_never_execute();
    test_reset_contract();
    test_rx_overflow();
    test_pulse();
    test_stream_arithmetic();
    test_sampler();
    test_stream_session();
    test_stream_budget_nack();
    test_stream_keeps_the_guarantees();
    test_samples_example_frame();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
