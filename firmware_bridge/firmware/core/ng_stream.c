#include "ng_stream.h"

/* Bytes a SAMPLES frame adds around its payload on the wire: type, seq, len, the CRC, the COBS code
 * byte (exactly one: a raw frame is at most 37 bytes, far below COBS's 254-byte blocks) and the
 * delimiter. */
#define WIRE_OVERHEAD (NG_HEADER_SIZE + NG_CRC_SIZE + 2u)
/* 10-bit values a SAMPLES payload holds: (32 - 7) x 8 / 10 = 20. */
#define MAX_VALUES (((NG_LEN_SAMPLES - NG_SAMPLES_HEADER) * 8u) / 10u)

uint8_t ng_stream_channels(uint8_t mask)
{
    uint8_t n = 0;
    while (mask != 0u) {
        n = (uint8_t)(n + (mask & 1u));
        mask = (uint8_t)(mask >> 1);
    }
    return n;
}

uint8_t ng_stream_scans_per_frame(uint8_t n_ch, uint16_t rate_hz)
{
    uint32_t by_time = (uint32_t)rate_hz * NG_STREAM_SPAN_MS / 1000u;
    uint8_t by_size = 1u;
    if (n_ch != 0u) {
        by_size = (uint8_t)(MAX_VALUES / n_ch);
    }
    if (by_time < 1u) {
        by_time = 1u;
    }
    return by_time < by_size ? (uint8_t)by_time : by_size;
}

uint8_t ng_samples_len(uint8_t n_ch, uint8_t n_scans)
{
    return (uint8_t)(NG_SAMPLES_HEADER + ((uint16_t)n_scans * n_ch * 10u + 7u) / 8u);
}

uint8_t ng_samples_wire_len(uint8_t n_ch, uint8_t n_scans)
{
    return (uint8_t)(ng_samples_len(n_ch, n_scans) + WIRE_OVERHEAD);
}

uint32_t ng_stream_need_bps(uint8_t n_ch, uint16_t rate_hz)
{
    uint8_t k = ng_stream_scans_per_frame(n_ch, rate_hz);
    return ((uint32_t)rate_hz * ng_samples_wire_len(n_ch, k) + k - 1u) / k;
}

uint32_t ng_stream_avail_bps(uint32_t baud)
{
    /* 8N1: 10 bits per byte, so the line carries baud / 10 bytes per second. */
    uint32_t usable = baud / 10u * NG_STREAM_LOAD_PCT / 100u;
    return usable > NG_STREAM_RESERVE_BPS ? usable - NG_STREAM_RESERVE_BPS : 0u;
}

uint8_t ng_stream_check(uint8_t mask, uint8_t reserved, uint16_t rate_hz, uint32_t baud)
{
    if (mask == 0u || (NG_ADC_CHANNELS < 8u && (mask >> NG_ADC_CHANNELS) != 0u) || reserved != 0u ||
        rate_hz == 0u || rate_hz > NG_STREAM_RATE_MAX_HZ || NG_STREAM_TICK_HZ % rate_hz != 0u) {
        return NG_R_BAD_ARG;
    }
    if (ng_stream_need_bps(ng_stream_channels(mask), rate_hz) > ng_stream_avail_bps(baud)) {
        return NG_R_BUDGET;
    }
    return 0u;
}

/* Value i occupies bits 10i .. 10i+9 of the little-endian bit string: it starts at bit 10i mod 8,
 * which is 0, 2, 4 or 6, so it always lies within two bytes. */
void ng_pack10(uint8_t *buf, uint16_t i, uint16_t value)
{
    uint16_t bit = (uint16_t)(i * 10u);
    uint16_t w = (uint16_t)(((unsigned)value & 0x3FFu) << (bit & 7u));
    buf[bit >> 3] = (uint8_t)(buf[bit >> 3] | (w & 0xFFu));
    buf[(bit >> 3) + 1u] = (uint8_t)(buf[(bit >> 3) + 1u] | (w >> 8));
}

uint16_t ng_unpack10(const uint8_t *buf, uint16_t i)
{
    uint16_t bit = (uint16_t)(i * 10u);
    uint16_t w = (uint16_t)(buf[bit >> 3] | (uint16_t)((uint16_t)buf[(bit >> 3) + 1u] << 8));
    return (uint16_t)(((unsigned)w >> (bit & 7u)) & 0x3FFu);
}
