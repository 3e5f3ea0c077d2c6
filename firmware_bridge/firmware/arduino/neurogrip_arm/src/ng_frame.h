/* CRC-16/CCITT-FALSE, COBS and the incremental frame parser. Pure functions, no allocation. */
#ifndef NG_FRAME_H
#define NG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ng_protocol.h"

uint16_t ng_crc16(const uint8_t *data, size_t len);

/* Encode len bytes; out must hold len + len/254 + 1 bytes. Returns the encoded length. */
size_t ng_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);
/* Decode; returns the decoded length, or -1 on malformed input or if out_cap is too small. */
int ng_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

/* Build a complete wire frame (COBS + trailing 0x00) into out (>= NG_MAX_ENCODED + 1 bytes).
 * Returns its length, or 0 if payload_len > NG_MAX_PAYLOAD. */
size_t ng_frame_encode(uint8_t type, uint8_t seq, const uint8_t *payload, uint8_t payload_len, uint8_t *out);

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint8_t len;
    uint16_t crc;
    uint8_t payload[NG_MAX_PAYLOAD];
} ng_frame_t;

typedef enum {
    NG_PARSE_NONE = 0,   /* byte consumed, no frame finished */
    NG_PARSE_FRAME = 1,  /* a valid frame is in *out */
    NG_PARSE_CRC = 2,    /* a frame finished with a bad CRC: dropped */
    NG_PARSE_FRAMING = 3 /* a frame finished with bad COBS, bad length or overflow: dropped */
} ng_parse_result_t;

typedef struct {
    uint8_t buf[NG_MAX_ENCODED];
    uint8_t n;
    uint8_t overflow;
} ng_parser_t;

void ng_parser_init(ng_parser_t *p);
ng_parse_result_t ng_parser_feed(ng_parser_t *p, uint8_t byte, ng_frame_t *out);

/* Decode one frame given its COBS bytes without the delimiter (used by the parser and tests). */
ng_parse_result_t ng_frame_decode(const uint8_t *enc, size_t len, ng_frame_t *out);

#endif
