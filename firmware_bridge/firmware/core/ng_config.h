/* Numbers that define the arm's behaviour, in one place (mirrored in firmware_bridge/protocol.py;
 * tests/firmware_bridge/test_protocol.py checks they agree). */
#ifndef NG_CONFIG_H
#define NG_CONFIG_H

#define NG_FIRMWARE_VERSION 0x0100u /* 1.0 */
#define NG_N_JOINTS 2u

/* Compile-time ceilings: SET_LIMITS can narrow these, never widen them. */
#define NG_ANGLE_MAX_DDEG 1800u    /* 180.0 deg: the servo's whole travel */
#define NG_SPEED_MAX_DDEG_S 3000u  /* 300 deg/s */

/* Watchdog: safe state <= 250 ms after heartbeats stop (docs/design.md section 3). */
#define NG_WATCHDOG_DEFAULT_MS 250u
#define NG_WATCHDOG_MIN_MS 20u
#define NG_WATCHDOG_MAX_MS 250u

/* A tick longer than this is treated as this long, so a stalled main loop cannot make a joint
 * jump: slew stays bounded by speed x NG_TICK_MAX_MS per tick. */
#define NG_TICK_MAX_MS 20u

/* Default joint limits: {min, max, safe, max_speed}. Joint 0 gripper, joint 1 lift. */
#define NG_J0_MIN 200u
#define NG_J0_MAX 1600u
#define NG_J0_SAFE 400u
#define NG_J0_SPEED 1200u
#define NG_J1_MIN 300u
#define NG_J1_MAX 1500u
#define NG_J1_SAFE 400u
#define NG_J1_SPEED 900u

/* The e-stop switch must read released this long before the arm takes commands again (contact
 * bounce of a mechanical switch); pressed takes effect at once. */
#define NG_ESTOP_RELEASE_MS 20u

/* Servo pulse range at 0 and 180 degrees. */
#define NG_PULSE_MIN_US 1000u
#define NG_PULSE_MAX_US 2000u

/* The link: UART 8N1 at this rate (10 bits on the wire per byte). 500 000 baud is exact from 16 MHz
 * (UBRR 3 with U2X) and on the Uno's 16U2, CH340, FT232R and CP2102 bridges; the streaming budget
 * below is computed at it (PROTOCOL.md section 5). A build for a slower bridge may define another. */
#ifndef NG_LINK_BAUD
#define NG_LINK_BAUD 500000u
#endif

/* Streaming the analog inputs (PROTOCOL.md section 5). A scan converts every selected input once;
 * scans are triggered by the 1 kHz tick, so a rate must divide NG_STREAM_TICK_HZ. */
#define NG_ADC_CHANNELS 8u           /* A0..A7 (A6/A7 only on the TQFP/QFN Nano and Pro Mini) */
#define NG_STREAM_TICK_HZ 1000u
#define NG_STREAM_RATE_MAX_HZ 1000u  /* 8 conversions x <= 116 us = 928 us: every mask fits 1 ms */
#define NG_STREAM_SPAN_MS 5u         /* a SAMPLES frame holds at most this much time (latency) */
/* The budget: a stream fits when its bytes per second plus NG_STREAM_RESERVE_BPS (the replies:
 * 57 STATUS per second, 20 Hz heartbeats need 700) stay within NG_STREAM_LOAD_PCT % of the line. */
#define NG_STREAM_RESERVE_BPS 2000u
#define NG_STREAM_LOAD_PCT 80u
/* Scans the hardware layer buffers between its ADC interrupt and the main loop (power of two). */
#define NG_SAMPLER_RING 8u

#endif
