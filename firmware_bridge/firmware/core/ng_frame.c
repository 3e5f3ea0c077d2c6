#include "ng_frame.h"

uint16_t ng_crc16(const uint8_t *data, size_t len)
{
    /* A byte at a time without a table (512 bytes of table would be a quarter of the Uno's RAM, or
     * need PROGMEM plumbing): x is the top byte's contribution, folded through the polynomial
     * x^16 + x^12 + x^5 + 1 in three shifts. ~30 cycles per byte on the AVR, a quarter of the
     * bit-by-bit loop: a 37-byte frame costs ~0.07 ms, next to its 0.74 ms on the wire at 500 000 baud. */
    uint16_t crc = 0xFFFFu;
    size_t i;
    for (i = 0; i < len; i++) {
        uint8_t x = (uint8_t)((crc >> 8) ^ data[i]);
        x = (uint8_t)(x ^ (x >> 4));
        crc = (uint16_t)((uint16_t)(crc << 8) ^ (uint16_t)((uint16_t)x << 12) ^ (uint16_t)((uint16_t)x << 5) ^ x);
    }
    return crc;
}

size_t ng_cobs_encode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t code_at = 0, o = 1, i;
    uint8_t code = 1;
    for (i = 0; i < len; i++) {
        if (in[i] == 0u) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            out[o++] = in[i];
            code++;
            if (code == 0xFFu) {
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    return o;
}

int ng_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap)
{
    size_t i = 0, o = 0;
    while (i < len) {
        uint8_t code = in[i];
        size_t end, k;
        if (code == 0u) {
            return -1;
        }
        end = i + code;
        if (end > len) {
            return -1;
        }
        for (k = i + 1u; k < end; k++) {
            if (in[k] == 0u || o >= out_cap) {
                return -1;
            }
            out[o++] = in[k];
        }
        i = end;
        if (code != 0xFFu && i < len) {
            if (o >= out_cap) {
                return -1;
            }
            out[o++] = 0u;
        }
    }
    return (int)o;
}

size_t ng_frame_encode(uint8_t type, uint8_t seq, const uint8_t *payload, uint8_t payload_len, uint8_t *out)
{
    uint8_t raw[NG_MAX_RAW];
    uint16_t crc;
    size_t n, i;
    if (payload_len > NG_MAX_PAYLOAD) {
        return 0;
    }
    raw[0] = type;
    raw[1] = seq;
    raw[2] = payload_len;
    for (i = 0; i < payload_len; i++) {
        raw[NG_HEADER_SIZE + i] = payload[i];
    }
    n = NG_HEADER_SIZE + payload_len;
    crc = ng_crc16(raw, n);
    raw[n++] = (uint8_t)(crc & 0xFFu);
    raw[n++] = (uint8_t)(crc >> 8);
    n = ng_cobs_encode(raw, n, out);
    out[n++] = 0u;
    return n;
}

ng_parse_result_t ng_frame_decode(const uint8_t *enc, size_t len, ng_frame_t *out)
{
    uint8_t raw[NG_MAX_RAW];
    int n;
    uint16_t crc;
    uint8_t i;
    if (len > NG_MAX_ENCODED) {
        return NG_PARSE_FRAMING;
    }
    n = ng_cobs_decode(enc, len, raw, sizeof raw);
    if (n < (int)(NG_HEADER_SIZE + NG_CRC_SIZE)) {
        return NG_PARSE_FRAMING;
    }
    if ((int)raw[2] != n - (int)(NG_HEADER_SIZE + NG_CRC_SIZE)) {
        return NG_PARSE_FRAMING;
    }
    crc = (uint16_t)(raw[n - 2] | (uint16_t)((uint16_t)raw[n - 1] << 8));
    if (crc != ng_crc16(raw, (size_t)n - NG_CRC_SIZE)) {
        return NG_PARSE_CRC;
    }
    out->type = raw[0];
    out->seq = raw[1];
    out->len = raw[2];
    out->crc = crc;
    for (i = 0; i < out->len; i++) {
        out->payload[i] = raw[NG_HEADER_SIZE + i];
    }
    return NG_PARSE_FRAME;
}

void ng_parser_init(ng_parser_t *p)
{
    p->n = 0;
    p->overflow = 0;
}

ng_parse_result_t ng_parser_feed(ng_parser_t *p, uint8_t byte, ng_frame_t *out)
{
    ng_parse_result_t r;
    if (byte != 0u) {
        if (p->n < NG_MAX_ENCODED) {
            p->buf[p->n++] = byte;
        } else {
            p->overflow = 1; /* keep discarding until the next delimiter resynchronises us */
        }
        return NG_PARSE_NONE;
    }
    if (p->overflow) {
        r = NG_PARSE_FRAMING;
    } else if (p->n == 0u) {
        r = NG_PARSE_NONE; /* empty frame: a resync delimiter */
    } else {
        r = ng_frame_decode(p->buf, p->n, out);
    }
    p->n = 0;
    p->overflow = 0;
    return r;
}
