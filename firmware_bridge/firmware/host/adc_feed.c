#include "adc_feed.h"

#include <math.h>
#include <string.h>

int adc_feed_open(adc_feed_t *a, const char *path, char *err, size_t err_len)
{
    char line[128];
    char magic[16];
    double rate;
    unsigned n;
    memset(a, 0, sizeof *a);
    a->f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (a->f == NULL) {
        snprintf(err, err_len, "cannot open the ADC feed %s", path);
        return -1;
    }
    if (fgets(line, sizeof line, a->f) == NULL || sscanf(line, "%15s %lf %u", magic, &rate, &n) != 3 ||
        strcmp(magic, "NGADC1") != 0) {
        snprintf(err, err_len, "%s is not an ADC feed: its first line must be 'NGADC1 <rate_hz> <n_channels>'",
                 path);
        adc_feed_close(a);
        return -1;
    }
    if (!(rate > 0.0 && rate <= 100000.0) || n < 1u || n > ADC_FEED_MAX_CHANNELS) {
        snprintf(err, err_len, "ADC feed %s: the rate must be 0-100000 Hz and the channels 1-%u, got %g Hz, %u",
                 path, ADC_FEED_MAX_CHANNELS, rate, n);
        adc_feed_close(a);
        return -1;
    }
    a->rate_hz = rate;
    a->n_ch = n;
    return 0;
}

int adc_feed_seek(adc_feed_t *a, uint64_t k)
{
    uint8_t raw[2u * ADC_FEED_MAX_CHANNELS];
    while (!a->ended && a->n_read <= k) {
        unsigned c;
        if (fread(raw, 2u, a->n_ch, a->f) != a->n_ch) {
            a->ended = 1;
            return 1;
        }
        for (c = 0; c < a->n_ch; c++) {
            a->mv[c] = (uint16_t)(raw[2u * c] | (uint16_t)((uint16_t)raw[2u * c + 1u] << 8));
        }
        a->n_read++;
    }
    return 0;
}

uint64_t adc_feed_index_at_ms(const adc_feed_t *a, uint64_t t_ms)
{
    /* The small bias keeps an exact multiple exact (t = k / rate in ms, computed in floating point). */
    return (uint64_t)floor((double)t_ms * a->rate_hz / 1000.0 + 1e-6);
}

uint16_t adc_feed_counts(uint16_t mv)
{
    uint32_t counts = (uint32_t)mv * 1023u / ADC_FEED_VREF_MV;
    return (uint16_t)(counts > 1023u ? 1023u : counts);
}

void adc_feed_close(adc_feed_t *a)
{
    if (a->f != NULL && a->f != stdin) {
        fclose(a->f);
    }
    a->f = NULL;
}
