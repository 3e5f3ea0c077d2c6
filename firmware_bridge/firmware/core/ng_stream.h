/* The streaming arithmetic of PROTOCOL.md section 5: which configurations are valid, how many scans a
 * SAMPLES frame holds, how many bytes per second a stream needs and whether that fits the link, and
 * the 10-bit packing. Pure functions, shared by the core, its tests, and the frame tool that compares
 * them with firmware_bridge/protocol.py. */
#ifndef NG_STREAM_H
#define NG_STREAM_H

#include <stdint.h>

#include "ng_config.h"
#include "ng_protocol.h"

/* Number of set bits of a channel mask: the channels per scan. */
uint8_t ng_stream_channels(uint8_t mask);
/* Scans per SAMPLES frame: as many as fit NG_LEN_SAMPLES and NG_STREAM_SPAN_MS of time, at least 1. */
uint8_t ng_stream_scans_per_frame(uint8_t n_ch, uint16_t rate_hz);
/* Payload length of a SAMPLES frame holding n_scans scans of n_ch channels. */
uint8_t ng_samples_len(uint8_t n_ch, uint8_t n_scans);
/* Bytes on the wire of that frame: header, CRC, the one COBS code byte and the delimiter. */
uint8_t ng_samples_wire_len(uint8_t n_ch, uint8_t n_scans);
/* Bytes per second the stream sends (rounded up). */
uint32_t ng_stream_need_bps(uint8_t n_ch, uint16_t rate_hz);
/* Bytes per second a stream may use at this baud rate (NG_STREAM_LOAD_PCT of the line, less
 * NG_STREAM_RESERVE_BPS for the replies); 0 when the reserve alone does not fit. */
uint32_t ng_stream_avail_bps(uint32_t baud);
/* 0 when STREAM_START's fields (mask, reserved byte, rate) describe a stream that can run at this
 * baud rate; otherwise the NACK reason: NG_R_BAD_ARG (a field out of range), NG_R_BUDGET. */
uint8_t ng_stream_check(uint8_t mask, uint8_t reserved, uint16_t rate_hz, uint32_t baud);

/* Value number i (10 bits, LSB first) into buf, whose bytes there must be zero beforehand. */
void ng_pack10(uint8_t *buf, uint16_t i, uint16_t value);
/* Value number i out of buf. */
uint16_t ng_unpack10(const uint8_t *buf, uint16_t i);

#endif
