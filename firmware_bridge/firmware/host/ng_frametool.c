/* Line-oriented access to the C framing code, so Python tests can check that both sides produce
 * and accept identical bytes.
 *   E <type> <seq> <hex payload|->   -> hex of the wire frame (COBS + delimiter)
 *   P <hex stream>                   -> one token per parser event: F:<type>:<seq>:<hex payload|->, C, X
 */
#include <stdio.h>
#include <string.h>

#include "ng_frame.h"

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

int main(void)
{
    static char line[70000], arg[70000];
    static uint8_t data[35000];
    while (fgets(line, sizeof line, stdin)) {
        unsigned type, seq;
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
        } else {
            puts("ERR");
        }
        fflush(stdout);
    }
    return 0;
}
