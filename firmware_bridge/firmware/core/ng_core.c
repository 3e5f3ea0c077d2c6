#include "ng_core.h"

static const ng_limits_t default_limits[NG_N_JOINTS] = {
    {NG_J0_MIN, NG_J0_MAX, NG_J0_SAFE, NG_J0_SPEED},
    {NG_J1_MIN, NG_J1_MAX, NG_J1_SAFE, NG_J1_SPEED},
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (uint16_t)((uint16_t)p[1] << 8)); }

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static uint8_t expected_len(uint8_t type)
{
    switch (type) {
    case NG_MSG_HELLO: return NG_LEN_HELLO;
    case NG_MSG_HEARTBEAT: return NG_LEN_HEARTBEAT;
    case NG_MSG_ARM_CMD: return NG_LEN_ARM_CMD;
    case NG_MSG_ESTOP: return NG_LEN_ESTOP;
    case NG_MSG_CLEAR: return NG_LEN_CLEAR;
    case NG_MSG_STATUS_REQ: return NG_LEN_STATUS_REQ;
    case NG_MSG_SET_LIMITS: return NG_LEN_SET_LIMITS;
    case NG_MSG_SET_CONFIG: return NG_LEN_SET_CONFIG;
    case NG_MSG_STREAM_START: return NG_LEN_STREAM_START;
    case NG_MSG_STREAM_STOP: return NG_LEN_STREAM_STOP;
    default: return 0xFFu; /* unknown (firmware->host types are unknown here too) */
    }
}

uint16_t ng_pulse_us(uint16_t ddeg)
{
    uint32_t span = NG_PULSE_MAX_US - NG_PULSE_MIN_US;
    if (ddeg > NG_ANGLE_MAX_DDEG) {
        ddeg = NG_ANGLE_MAX_DDEG;
    }
    return (uint16_t)(NG_PULSE_MIN_US + ((uint32_t)ddeg * span + NG_ANGLE_MAX_DDEG / 2u) / NG_ANGLE_MAX_DDEG);
}

uint16_t ng_core_position(const ng_core_t *c, uint8_t j)
{
    return (uint16_t)((c->pos_fine[j] + 500u) / 1000u);
}

/* Stop every joint where it is. The sub-0.1-degree rounding snap is below the servo's resolution
 * (1 us of pulse = 0.18 degree), and it makes "target == position" exact, so nothing creeps. */
static void freeze(ng_core_t *c)
{
    uint8_t j;
    for (j = 0; j < NG_N_JOINTS; j++) {
        c->target[j] = ng_core_position(c, j);
        c->pos_fine[j] = (uint32_t)c->target[j] * 1000u;
    }
}

static void go_safe(ng_core_t *c)
{
    uint8_t j;
    for (j = 0; j < NG_N_JOINTS; j++) {
        c->target[j] = c->limits[j].safe;
        c->speed[j] = c->limits[j].max_speed;
    }
}

void ng_core_init(ng_core_t *c, uint32_t now_ms, ng_write_fn write, void *write_ctx)
{
    uint8_t j;
    uint8_t *p = (uint8_t *)c;
    size_t i;
    for (i = 0; i < sizeof *c; i++) {
        p[i] = 0u;
    }
    ng_parser_init(&c->parser);
    for (j = 0; j < NG_N_JOINTS; j++) {
        c->limits[j] = default_limits[j];
        /* The servos' real position at power-up is unknown; the first pulses command the safe pose. */
        c->pos_fine[j] = (uint32_t)default_limits[j].safe * 1000u;
        c->target[j] = default_limits[j].safe;
        c->speed[j] = default_limits[j].max_speed;
    }
    c->faults = NG_FAULT_NO_HELLO;
    c->watchdog_ms = NG_WATCHDOG_DEFAULT_MS;
    c->boot_ms = c->now_ms = c->last_tick_ms = c->last_heartbeat_ms = now_ms;
    c->write = write;
    c->write_ctx = write_ctx;
    c->link_baud = NG_LINK_BAUD;
}

void ng_core_note_rx_overflow(ng_core_t *c) { c->faults |= NG_FAULT_RX_OVERFLOW; }

static void send(ng_core_t *c, uint8_t type, uint8_t seq, const uint8_t *payload, uint8_t len)
{
    uint8_t buf[NG_MAX_ENCODED + 1u];
    size_t n = ng_frame_encode(type, seq, payload, len, buf);
    if (type == NG_MSG_NACK) {
        c->nacks_sent++;
    }
    if (c->write != NULL) {
        c->write(c->write_ctx, buf, n);
    }
}

/* Requests whose retransmission must not execute twice. HEARTBEAT and STATUS_REQ are idempotent
 * reads: they are answered fresh and do not evict the memory of the last command, so a heartbeat
 * sent between a command and its retransmission cannot make the command run twice. */
static int remembered(uint8_t type)
{
    return type == NG_MSG_HELLO || type == NG_MSG_ARM_CMD || type == NG_MSG_ESTOP || type == NG_MSG_CLEAR ||
           type == NG_MSG_SET_LIMITS || type == NG_MSG_SET_CONFIG || type == NG_MSG_STREAM_START ||
           type == NG_MSG_STREAM_STOP;
}

/* Reply to a valid request; remember state-changing ones for retransmissions. */
static void reply(ng_core_t *c, const ng_frame_t *req, uint8_t type, const uint8_t *payload, uint8_t len)
{
    uint8_t buf[NG_MAX_ENCODED + 1u];
    uint8_t *out = remembered(req->type) ? c->last_reply : buf;
    size_t n = ng_frame_encode(type, req->seq, payload, len, out);
    if (out == c->last_reply) {
        c->last_reply_len = (uint8_t)n;
        c->have_last = 1u;
        c->last_type = req->type;
        c->last_seq = req->seq;
        c->last_crc = req->crc;
    }
    if (type == NG_MSG_NACK) {
        c->nacks_sent++;
    }
    if (c->write != NULL) {
        c->write(c->write_ctx, out, n);
    }
}

static void ack(ng_core_t *c, const ng_frame_t *req)
{
    uint8_t p[NG_LEN_ACK];
    p[0] = req->type;
    reply(c, req, NG_MSG_ACK, p, NG_LEN_ACK);
}

static void nack(ng_core_t *c, const ng_frame_t *req, uint8_t reason)
{
    uint8_t p[NG_LEN_NACK];
    p[0] = req->type;
    p[1] = reason;
    reply(c, req, NG_MSG_NACK, p, NG_LEN_NACK);
}

static void status(ng_core_t *c, const ng_frame_t *req)
{
    uint8_t p[NG_LEN_STATUS];
    uint32_t up = c->now_ms - c->boot_ms;
    p[0] = (uint8_t)(up & 0xFFu);
    p[1] = (uint8_t)((up >> 8) & 0xFFu);
    p[2] = (uint8_t)((up >> 16) & 0xFFu);
    p[3] = (uint8_t)((up >> 24) & 0xFFu);
    wr16(p + 4, ng_core_position(c, 0));
    wr16(p + 6, ng_core_position(c, 1));
    wr16(p + 8, c->target[0]);
    wr16(p + 10, c->target[1]);
    wr16(p + 12, c->faults);
    p[14] = c->last_action;
    p[15] = 0u;
    wr16(p + 16, c->frames_ok);
    wr16(p + 18, c->crc_errors);
    wr16(p + 20, c->framing_errors);
    wr16(p + 22, c->commands_executed);
    wr16(p + 24, c->watchdog_trips);
    wr16(p + 26, c->nacks_sent);
    reply(c, req, NG_MSG_STATUS, p, NG_LEN_STATUS);
}

/* The first failing gate of NO_HELLO, ESTOPPED, WATCHDOG (only when `motion`), or 0. */
static uint8_t gate(const ng_core_t *c, int motion)
{
    if (!c->hello_done) {
        return NG_R_NO_HELLO;
    }
    if (c->faults & NG_FAULT_STOPPED) {
        return NG_R_ESTOPPED;
    }
    if (motion && (c->faults & NG_FAULT_WATCHDOG)) {
        return NG_R_WATCHDOG;
    }
    return 0u;
}

static uint16_t clamp_u16(uint16_t v, uint16_t lo, uint16_t hi, int *clamped)
{
    if (v < lo) {
        *clamped = 1;
        return lo;
    }
    if (v > hi) {
        *clamped = 1;
        return hi;
    }
    return v;
}

static void arm_cmd(ng_core_t *c, const ng_frame_t *f)
{
    uint8_t action = f->payload[0];
    uint16_t target = rd16(f->payload + 2), speed = rd16(f->payload + 4);
    uint8_t g = gate(c, 1), j;
    int clamped = 0;
    if (g) {
        nack(c, f, g);
        return;
    }
    if (action < NG_ACT_GRASP || action > NG_ACT_REST || f->payload[1] != 0u || speed == 0u ||
        target > NG_ANGLE_MAX_DDEG) {
        nack(c, f, NG_R_BAD_ARG);
        return;
    }
    switch (action) {
    case NG_ACT_HOLD:
        freeze(c);
        break;
    case NG_ACT_REST:
        for (j = 0; j < NG_N_JOINTS; j++) {
            c->target[j] = c->limits[j].safe;
            c->speed[j] = clamp_u16(speed, 1u, c->limits[j].max_speed, &clamped);
        }
        break;
    default:
        j = (action == NG_ACT_LIFT || action == NG_ACT_LOWER) ? 1u : 0u;
        c->target[j] = clamp_u16(target, c->limits[j].min, c->limits[j].max, &clamped);
        c->speed[j] = clamp_u16(speed, 1u, c->limits[j].max_speed, &clamped);
        break;
    }
    c->faults = (uint16_t)(clamped ? (c->faults | NG_FAULT_CLAMPED) : (c->faults & ~NG_FAULT_CLAMPED));
    c->last_action = action;
    c->commands_executed++;
    c->last_cmd_seq = f->seq;
    for (j = 0; j < NG_LEN_ARM_CMD; j++) {
        c->last_cmd[j] = f->payload[j];
    }
    ack(c, f);
}

static void set_limits(ng_core_t *c, const ng_frame_t *f)
{
    const uint8_t *p = f->payload;
    uint8_t j = p[0], g = gate(c, 0);
    ng_limits_t l;
    int clamped = 0;
    if (g) {
        nack(c, f, g);
        return;
    }
    l.min = rd16(p + 2);
    l.max = rd16(p + 4);
    l.safe = rd16(p + 6);
    l.max_speed = rd16(p + 8);
    if (j >= NG_N_JOINTS || p[1] != 0u || l.min >= l.max || l.max > NG_ANGLE_MAX_DDEG || l.safe < l.min ||
        l.safe > l.max || l.max_speed == 0u || l.max_speed > NG_SPEED_MAX_DDEG_S) {
        nack(c, f, NG_R_BAD_ARG);
        return;
    }
    c->limits[j] = l;
    c->target[j] = clamp_u16(c->target[j], l.min, l.max, &clamped);
    c->speed[j] = clamp_u16(c->speed[j], 1u, l.max_speed, &clamped);
    ack(c, f);
}

/* ------------------------------------------------------------------ the SAMPLES stream */

/* Send the frame being built (if it holds any scan). */
static void stream_flush(ng_core_t *c)
{
    ng_stream_t *s = &c->stream;
    uint8_t p[NG_LEN_SAMPLES];
    uint8_t len, i;
    if (s->n_scans == 0u) {
        return;
    }
    len = ng_samples_len(s->n_ch, s->n_scans);
    p[0] = (uint8_t)(s->first & 0xFFu);
    p[1] = (uint8_t)((s->first >> 8) & 0xFFu);
    p[2] = (uint8_t)((s->first >> 16) & 0xFFu);
    p[3] = (uint8_t)((s->first >> 24) & 0xFFu);
    p[4] = s->id;
    p[5] = s->mask;
    p[6] = s->n_scans;
    for (i = NG_SAMPLES_HEADER; i < len; i++) {
        p[i] = s->packed[i - NG_SAMPLES_HEADER];
        s->packed[i - NG_SAMPLES_HEADER] = 0u;
    }
    s->n_scans = 0u;
    s->frames_sent++;
    send(c, NG_MSG_SAMPLES, s->frame_seq++, p, len);
}

/* End the stream; `flush` sends the scans it still holds first (before the reply to STOP or START:
 * no frame of a stream ever follows that reply). */
static void stream_stop(ng_core_t *c, int flush)
{
    ng_stream_t *s = &c->stream;
    uint8_t i;
    if (!s->active) {
        return;
    }
    if (flush) {
        stream_flush(c);
    }
    for (i = 0; i < (uint8_t)sizeof s->packed; i++) {
        s->packed[i] = 0u;
    }
    s->n_scans = 0u;
    s->active = 0u;
    s->gen++;
}

/* STREAM_START: NO_HELLO, then BAD_ARG, then BUDGET; not gated by the e-stop or the watchdog, which
 * stop motion, not sensing. A START while streaming ends that stream and starts the new one. */
static void stream_start(ng_core_t *c, const ng_frame_t *f)
{
    ng_stream_t *s = &c->stream;
    uint8_t mask = f->payload[0];
    uint16_t rate = rd16(f->payload + 2);
    uint8_t r = c->hello_done ? ng_stream_check(mask, f->payload[1], rate, c->link_baud) : (uint8_t)NG_R_NO_HELLO;
    if (r) {
        nack(c, f, r);
        return;
    }
    stream_stop(c, 1);
    s->active = 1u;
    s->mask = mask;
    s->n_ch = ng_stream_channels(mask);
    s->rate_hz = rate;
    s->period_ms = (uint16_t)(NG_STREAM_TICK_HZ / rate);
    s->scans_per_frame = ng_stream_scans_per_frame(s->n_ch, rate);
    s->id = f->seq;
    s->frame_seq = 0u;
    s->first = s->next = 0u;
    s->gen++;
    ack(c, f);
}

void ng_core_scan(ng_core_t *c, uint32_t index, const uint16_t *values)
{
    ng_stream_t *s = &c->stream;
    uint8_t i;
    if (!s->active || (uint32_t)(index - s->next) >= 0x80000000u) {
        return; /* no stream, or a scan older than the stream (the hardware layer lagged a restart) */
    }
    if (index != s->next) {
        s->scans_lost = (uint16_t)(s->scans_lost + (uint16_t)(index - s->next));
        stream_flush(c); /* a frame's scans are consecutive: the gap is between two frames */
    }
    if (s->n_scans == 0u) {
        s->first = index;
    }
    for (i = 0; i < s->n_ch; i++) {
        ng_pack10(s->packed, (uint16_t)(s->n_scans * s->n_ch + i), values[i]);
    }
    s->n_scans++;
    s->next = index + 1u;
    if (s->n_scans >= s->scans_per_frame) {
        stream_flush(c);
    }
}

static void handle(ng_core_t *c, const ng_frame_t *f)
{
    uint8_t g;
    if (c->have_last && f->type == c->last_type && f->seq == c->last_seq && f->crc == c->last_crc) {
        /* A retransmission of the request we just executed: its reply was lost. Resend, don't redo. */
        if (c->write != NULL) {
            c->write(c->write_ctx, c->last_reply, c->last_reply_len);
        }
        return;
    }
    if (expected_len(f->type) == 0xFFu) {
        nack(c, f, NG_R_UNKNOWN_TYPE);
        return;
    }
    if (expected_len(f->type) != f->len) {
        nack(c, f, NG_R_BAD_LENGTH);
        return;
    }
    switch (f->type) {
    case NG_MSG_HELLO:
        if (f->payload[0] != NG_PROTOCOL_VERSION || f->payload[1] != 0u) {
            nack(c, f, NG_R_VERSION);
        } else {
            uint8_t p[NG_LEN_HELLO_REPLY];
            stream_stop(c, 0); /* a new session starts without a stream */
            c->hello_done = 1u;
            c->faults &= (uint16_t)~NG_FAULT_NO_HELLO;
            c->last_heartbeat_ms = c->now_ms; /* arms the watchdog */
            p[0] = NG_PROTOCOL_VERSION;
            p[1] = NG_N_JOINTS;
            wr16(p + 2, NG_FIRMWARE_VERSION);
            wr16(p + 4, c->watchdog_ms);
            wr16(p + 6, 0u);
            reply(c, f, NG_MSG_HELLO_REPLY, p, NG_LEN_HELLO_REPLY);
        }
        break;
    case NG_MSG_HEARTBEAT:
        if (!c->hello_done) {
            nack(c, f, NG_R_NO_HELLO);
        } else {
            c->last_heartbeat_ms = c->now_ms;
            status(c, f);
        }
        break;
    case NG_MSG_STATUS_REQ:
        status(c, f);
        break;
    case NG_MSG_ESTOP:
        /* Accepted in every state: stopping must never depend on a session. */
        c->faults |= NG_FAULT_ESTOP;
        freeze(c);
        ack(c, f);
        break;
    case NG_MSG_CLEAR: {
        uint16_t mask = rd16(f->payload);
        if (!c->hello_done) {
            nack(c, f, NG_R_NO_HELLO);
        } else if (mask == 0u || (mask & (uint16_t)~NG_FAULT_CLEARABLE) != 0u ||
                   rd16(f->payload + 2) != NG_CLEAR_MAGIC) {
            nack(c, f, NG_R_BAD_ARG);
        } else {
            if ((mask & NG_FAULT_WATCHDOG) && (c->faults & NG_FAULT_WATCHDOG)) {
                c->last_heartbeat_ms = c->now_ms; /* re-arm: trips again unless heartbeats resumed */
                freeze(c);
            }
            c->faults &= (uint16_t)~mask;
            ack(c, f);
        }
        break;
    }
    case NG_MSG_ARM_CMD:
        arm_cmd(c, f);
        break;
    case NG_MSG_SET_LIMITS:
        set_limits(c, f);
        break;
    case NG_MSG_SET_CONFIG: {
        uint16_t wd = rd16(f->payload);
        g = gate(c, 0);
        if (g) {
            nack(c, f, g);
        } else if (wd < NG_WATCHDOG_MIN_MS || wd > NG_WATCHDOG_MAX_MS || rd16(f->payload + 2) != 0u) {
            nack(c, f, NG_R_BAD_ARG);
        } else {
            c->watchdog_ms = wd;
            ack(c, f);
        }
        break;
    }
    case NG_MSG_STREAM_START:
        stream_start(c, f);
        break;
    case NG_MSG_STREAM_STOP:
        /* Accepted in every state, like ESTOP: the reply follows the stream's last frame. */
        stream_stop(c, 1);
        ack(c, f);
        break;
    default:
        nack(c, f, NG_R_UNKNOWN_TYPE);
        break;
    }
}

void ng_core_rx(ng_core_t *c, uint8_t byte, uint32_t now_ms)
{
    ng_frame_t f;
    uint8_t err[NG_LEN_NACK];
    ng_parse_result_t r;
    c->now_ms = now_ms;
    r = ng_parser_feed(&c->parser, byte, &f);
    switch (r) {
    case NG_PARSE_FRAME:
        c->frames_ok++;
        handle(c, &f);
        break;
    case NG_PARSE_CRC:
    case NG_PARSE_FRAMING:
        if (r == NG_PARSE_CRC) {
            c->crc_errors++;
        } else {
            c->framing_errors++;
        }
        /* nacked_type 0 and seq 0: the seq of a corrupted frame cannot be trusted. */
        err[0] = 0u;
        err[1] = (r == NG_PARSE_CRC) ? (uint8_t)NG_R_CRC : (uint8_t)NG_R_FRAMING;
        send(c, NG_MSG_NACK, 0u, err, NG_LEN_NACK);
        break;
    default:
        break;
    }
}

void ng_core_tick(ng_core_t *c, uint32_t now_ms)
{
    uint32_t dt = now_ms - c->last_tick_ms; /* unsigned: correct across the 49-day wrap */
    uint8_t j;
    c->now_ms = now_ms;
    c->last_tick_ms = now_ms;
    if (dt > NG_TICK_MAX_MS) {
        dt = NG_TICK_MAX_MS;
    }
    if (c->hello_done && !(c->faults & NG_FAULT_WATCHDOG) &&
        (uint32_t)(now_ms - c->last_heartbeat_ms) >= c->watchdog_ms) {
        c->faults |= NG_FAULT_WATCHDOG;
        c->watchdog_trips++;
        if (!(c->faults & NG_FAULT_STOPPED)) {
            go_safe(c);
        }
    }
    if (c->faults & NG_FAULT_STOPPED) {
        return; /* e-stopped: nothing moves */
    }
    for (j = 0; j < NG_N_JOINTS; j++) {
        uint32_t goal = (uint32_t)c->target[j] * 1000u;
        uint32_t step = (uint32_t)c->speed[j] * dt; /* ddeg/s x ms = 1/1000 ddeg */
        if (c->pos_fine[j] < goal) {
            c->pos_fine[j] = (goal - c->pos_fine[j] > step) ? c->pos_fine[j] + step : goal;
        } else if (c->pos_fine[j] > goal) {
            c->pos_fine[j] = (c->pos_fine[j] - goal > step) ? c->pos_fine[j] - step : goal;
        }
    }
}

void ng_core_estop_input(ng_core_t *c, int pressed)
{
    if (pressed) {
        if (!(c->faults & NG_FAULT_STOPPED)) {
            freeze(c); /* from this pose nothing moves until the switch is released */
        }
        c->faults |= NG_FAULT_ESTOP_INPUT;
        c->estop_pressed_ms = c->now_ms;
    } else if ((c->faults & NG_FAULT_ESTOP_INPUT) &&
               (uint32_t)(c->now_ms - c->estop_pressed_ms) >= NG_ESTOP_RELEASE_MS) {
        /* Releasing the switch resets the stop but must not restart the machine (ISO 13850 4.1.4,
           IEC 60204-1 9.2.5.4.2): the ESTOP latch stays until a deliberate start, CLEAR with the
           ESTOP bit.  Nothing to restore: the press froze the targets where the arm stood. */
        c->faults = (uint16_t)((c->faults & (uint16_t)~NG_FAULT_ESTOP_INPUT) | NG_FAULT_ESTOP);
    }
}
