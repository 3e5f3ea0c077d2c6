/* Line-oriented access to the C framing code, so Python tests can check that both sides produce
 * and accept identical bytes.
 *   E <type> <seq> <hex payload|->   -> hex of the wire frame (COBS + delimiter)
 *   P <hex stream>                   -> one token per parser event: F:<type>:<seq>:<hex payload|->, C, X
 *   B <mask> <reserved> <rate_hz> <baud>
 *                                    -> the stream budget: <reason|0> <scans_per_frame> <frame wire bytes>
 *                                       <needed B/s> <available B/s> (core/ng_stream.c)
 *   S <start_seq> <mask> <rate_hz> <first_index> <v,v,...>
 *                                    -> hex of each SAMPLES frame the core sends when, after HELLO and
 *                                       STREAM_START (seq start_seq), it gets the values as consecutive
 *                                       scans from first_index, then STREAM_STOP (which sends the rest)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ng_core.h"

static int unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned v;
    if (strcmp(s, "-") == 0) {
        return 0;
    }
    while (s[0] && s[1]) {
        if (n >= cap || sscanf(s, "%2x", &v) != 1) {
            return -1;
        }
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return (int)n;
}

static void puthex(const uint8_t *d, size_t n)
{
    size_t i;
    if (n == 0) {
        putchar('-');
    }
    for (i = 0; i < n; i++) {
        printf("%02x", d[i]);
    }
}

static uint8_t captured[4096];
static size_t out_len;

static void capture(void *ctx, const uint8_t *d, size_t n)
{
    (void)ctx;
    if (out_len + n <= sizeof captured) {
        memcpy(captured + out_len, d, n);
        out_len += n;
    }
}

static void feed(ng_core_t *c, uint8_t type, uint8_t seq, const uint8_t *payload, uint8_t len)
{
    uint8_t buf[NG_MAX_ENCODED + 1];
    size_t n = ng_frame_encode(type, seq, payload, len, buf), i;
    for (i = 0; i < n; i++) {
        ng_core_rx(c, buf[i], 0);
    }
}

/* The S command: print the SAMPLES frames (wire bytes) among everything the core wrote. */
static void samples(unsigned start_seq, unsigned mask, unsigned rate, unsigned long first, char *list)
{
    static ng_core_t c;
    uint8_t hello[2] = {NG_PROTOCOL_VERSION, 0};
    uint8_t start[4] = {(uint8_t)mask, 0, (uint8_t)(rate & 0xFFu), (uint8_t)(rate >> 8)};
    uint16_t scan[NG_ADC_CHANNELS];
    uint32_t index = (uint32_t)first;
    unsigned k = 0, n_ch = ng_stream_channels((uint8_t)mask);
    size_t i, begin = 0;
    char *tok;
    ng_core_init(&c, 0, capture, NULL);
    feed(&c, NG_MSG_HELLO, 1, hello, 2);
    feed(&c, NG_MSG_STREAM_START, (uint8_t)start_seq, start, 4);
    out_len = 0;
    for (tok = strtok(list, ","); tok != NULL && n_ch > 0; tok = strtok(NULL, ",")) {
        scan[k++] = (uint16_t)strtoul(tok, NULL, 10);
        if (k == n_ch) {
            ng_core_scan(&c, index++, scan);
            k = 0;
        }
    }
    feed(&c, NG_MSG_STREAM_STOP, (uint8_t)(start_seq + 1u), NULL, 0);
    for (i = 0; i < out_len; i++) {
        if (captured[i] == 0u) {
            ng_frame_t f;
            if (ng_frame_decode(captured + begin, i - begin, &f) == NG_PARSE_FRAME && f.type == NG_MSG_SAMPLES) {
                puthex(captured + begin, i - begin + 1u);
                putchar(' ');
            }
            begin = i + 1u;
        }
    }
    putchar('\n');
}

int main(void)
{
    static char line[70000], arg[70000];
    static uint8_t data[35000];
    while (fgets(line, sizeof line, stdin)) {
        unsigned type, seq, mask, reserved, rate;
        unsigned long baud, first;
        int n;
        if (sscanf(line, "E %u %u %69999s", &type, &seq, arg) == 3) {
            uint8_t out[NG_MAX_ENCODED + 1];
            size_t m;
            n = unhex(arg, data, NG_MAX_PAYLOAD);
            m = n < 0 ? 0 : ng_frame_encode((uint8_t)type, (uint8_t)seq, data, (uint8_t)n, out);
            if (m == 0) {
                puts("ERR");
            } else {
                puthex(out, m);
                putchar('\n');
            }
        } else if (sscanf(line, "P %69999s", arg) == 1) {
            ng_parser_t p;
            ng_frame_t f;
            int i;
            ng_parser_init(&p);
            n = unhex(arg, data, sizeof data);
            for (i = 0; i < n; i++) {
                switch (ng_parser_feed(&p, data[i], &f)) {
                case NG_PARSE_FRAME:
                    printf("F:%u:%u:", f.type, f.seq);
                    puthex(f.payload, f.len);
                    putchar(' ');
                    break;
                case NG_PARSE_CRC: fputs("C ", stdout); break;
                case NG_PARSE_FRAMING: fputs("X ", stdout); break;
                default: break;
                }
            }
            putchar('\n');
        } else if (sscanf(line, "B %u %u %u %lu", &mask, &reserved, &rate, &baud) == 4) {
            uint8_t n_ch = ng_stream_channels((uint8_t)mask);
            uint8_t k = ng_stream_scans_per_frame(n_ch, (uint16_t)rate);
            printf("%u %u %u %lu %lu\n", ng_stream_check((uint8_t)mask, (uint8_t)reserved, (uint16_t)rate, (uint32_t)baud),
                   k, ng_samples_wire_len(n_ch, k), (unsigned long)ng_stream_need_bps(n_ch, (uint16_t)rate),
                   (unsigned long)ng_stream_avail_bps((uint32_t)baud));
        } else if (sscanf(line, "S %u %u %u %lu %69999s", &seq, &mask, &rate, &first, arg) == 5) {
            samples(seq, mask, rate, first, arg);
        } else {
            puts("ERR");
        }
        fflush(stdout);
    }
    return 0;
}
