/* The firmware core on the host, behind a pseudo-terminal: the same protocol, watchdog and
 * motion code as on the ATmega328P, driven by the real monotonic clock. Tests and the simulated
 * arm open the printed pty path with the Python link exactly as they would open /dev/ttyACM0.
 *
 * usage: arm_host [--link PATH] [--trace-ms N] [--log-commands] [--adc FEED]
 *   prints "PTY <path>" on stdout once ready; --link also makes PATH a symlink to it (a stable
 *   name across restarts, as udev gives a real Uno); --trace-ms prints
 *   "T <ms> <pos0> <pos1> <pulse0_us> <pulse1_us> <faults>" every N ms, and
 *   "P <ms> <pulse0_us> <pulse1_us>" whenever a servo pulse width changes (as arm_sim does);
 *   --log-commands prints "C <seq> <payload hex>" for every ARM_CMD the core executes;
 *   --adc FEED drives the analog inputs with an ADC feed (host/adc_feed.h: a file, or - for standard
 *   input) and prints "A <ms>" when the feed starts (the first conversion, sample 0) and
 *   "D <ms> <samples>" when it ends (its last values then hold).
 * The ADC is emulated on the core's millisecond clock: the 1 kHz tick drives the same sampler
 * (core/ng_sampler.h) as the AVR's interrupts, converting a scan's inputs at once, and a scan at tick
 * t reads the feed's sample in effect at t; ticks the process slept through are caught up, so the
 * stream keeps its rate and its sample indices exact. Without --adc the inputs read 0.
 * Exits on SIGTERM/SIGINT, removing the symlink. SIGUSR1 resets the "MCU": the core is initialised
 * again behind the same pty (session, faults, limits and counters forgotten, joints commanded to
 * the safe pose), as an Uno's ATmega328P reboots while its USB-serial chip keeps /dev/ttyACM0 open;
 * prints "R" when it has. SIGUSR2 presses the arm's e-stop switch, or releases it when pressed;
 * prints "E 1" / "E 0" when it has. */
#define _XOPEN_SOURCE 600
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "adc_feed.h"
#include "ng_core.h"
#include "ng_sampler.h"

static volatile sig_atomic_t stop, reset_requested, estop_toggle_requested;

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        reset_requested = 1;
    } else if (sig == SIGUSR2) {
        estop_toggle_requested = 1;
    } else {
        stop = 1;
    }
}

/* The emulated analog front end. */
static ng_sampler_t sampler;
static adc_feed_t feed;
static int have_feed, feed_started, feed_ended;
static uint32_t feed_t0;
static uint8_t adc_gen;
static uint32_t adc_tick;

typedef struct {
    int fd;
    const ng_core_t *core;
    int jammed; /* streaming, and the last write found the pty full for 50 ms: nobody reads */
} out_t;

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static void write_all(void *ctx, const uint8_t *d, size_t n)
{
    out_t *out = (out_t *)ctx;
    int fd = out->fd, waits = 0;
    while (n > 0) {
        ssize_t w = write(fd, d, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                struct pollfd p = {fd, POLLOUT, 0};
                /* While samples stream, a host that stops reading must not stall the "MCU": after
                 * 50 ms the rest is dropped, and then every write until one goes through again, as a
                 * real UART sends whether or not anyone reads. */
                if (out->core->stream.active && (out->jammed || ++waits > 10)) {
                    out->jammed = 1;
                    return;
                }
                poll(&p, 1, 5);
                continue;
            }
            return; /* nobody listening: the reply is lost, as on a real unplugged cable */
        }
        d += w;
        n -= (size_t)w;
    }
    out->jammed = 0;
}

/* One conversion: the feed's value of input ch at tick t (the feed starts at the first conversion). */
static uint16_t convert(uint8_t ch, uint32_t t, uint32_t boot_ms)
{
    if (!have_feed) {
        return 0;
    }
    if (!feed_started) {
        feed_started = 1;
        feed_t0 = t;
        printf("A %lu\n", (unsigned long)(t - boot_ms));
        fflush(stdout);
    }
    if (adc_feed_seek(&feed, adc_feed_index_at_ms(&feed, (uint64_t)(uint32_t)(t - feed_t0))) && !feed_ended) {
        feed_ended = 1;
        printf("D %lu %llu\n", (unsigned long)(t - boot_ms), (unsigned long long)feed.n_read);
        fflush(stdout);
    }
    return adc_feed_counts(ch < feed.n_ch ? feed.mv[ch] : 0u);
}

/* The ADC's interrupts, emulated up to tick `now`: a START or STOP the core handled reconfigures
 * the sampler; each tick may start a scan, whose inputs are converted at once. */
static void run_adc(ng_core_t *core, uint32_t now)
{
    ng_scan_t scan;
    if (core->stream.gen != adc_gen) {
        adc_gen = core->stream.gen;
        ng_sampler_configure(&sampler, core->stream.active ? core->stream.mask : 0u, core->stream.period_ms);
        adc_tick = now;
    }
    if (sampler.n == 0u) {
        adc_tick = now; /* stopped: nothing to catch up */
        return;
    }
    while (adc_tick != now) {
        uint8_t ch;
        adc_tick++;
        ch = ng_sampler_tick(&sampler);
        while (ch != NG_SAMPLER_NONE) {
            ch = ng_sampler_result(&sampler, convert(ch, adc_tick, core->boot_ms));
        }
        while (ng_sampler_pop(&sampler, &scan)) {
            ng_core_scan(core, scan.index, scan.value);
        }
    }
}

int main(int argc, char **argv)
{
    const char *link_path = NULL, *adc_path = NULL;
    long trace_ms = 0;
    int log_commands = 0;
    int estop_pressed = 0;
    int master, slave, i;
    char *name;
    struct termios t;
    struct sigaction sa;
    static ng_core_t core;
    out_t out;
    uint32_t last_trace;
    uint16_t last_p0 = 0, last_p1 = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--link") == 0 && i + 1 < argc) {
            link_path = argv[++i];
        } else if (strcmp(argv[i], "--log-commands") == 0) {
            log_commands = 1;
        } else if (strcmp(argv[i], "--trace-ms") == 0 && i + 1 < argc) {
            trace_ms = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--adc") == 0 && i + 1 < argc) {
            adc_path = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--link PATH] [--trace-ms N] [--log-commands] [--adc FEED]\n", argv[0]);
            return 2;
        }
    }
    if (adc_path != NULL) {
        char err[256];
        if (adc_feed_open(&feed, adc_path, err, sizeof err) != 0) {
            fprintf(stderr, "arm_host: %s\n", err);
            return 1;
        }
        have_feed = 1;
    }
    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 || (name = ptsname(master)) == NULL) {
        perror("arm_host: cannot create a pseudo-terminal");
        return 1;
    }
    /* Holding the slave open keeps the pty alive while no client has it open (otherwise reads on
     * the master fail with EIO between a client's close and the next open). Raw mode: the link's
     * bytes are binary and must not be echoed or translated. */
    slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0 || tcgetattr(slave, &t) != 0) {
        perror("arm_host: cannot open the pty slave");
        return 1;
    }
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    if (link_path != NULL) {
        unlink(link_path);
        if (symlink(name, link_path) != 0) {
            perror("arm_host: cannot create the --link symlink");
            return 1;
        }
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    out.fd = master;
    out.core = &core;
    out.jammed = 0;
    ng_core_init(&core, now_ms(), write_all, &out);
    adc_gen = core.stream.gen;
    adc_tick = core.boot_ms;
    last_trace = now_ms();
    printf("PTY %s\n", name);
    fflush(stdout);

    while (!stop) {
        struct pollfd p = {master, POLLIN, 0};
        uint8_t buf[256];
        uint32_t now;
        int ready = poll(&p, 1, 1) > 0 && (p.revents & POLLIN);
        if (reset_requested) {
            reset_requested = 0;
            ng_core_init(&core, now_ms(), write_all, &out);
            adc_gen = core.stream.gen; /* the reboot stops the ADC; the feed goes on, like the muscles */
            ng_sampler_configure(&sampler, 0u, 1u);
            last_trace = core.boot_ms;
            printf("R\n");
            fflush(stdout);
        }
        /* Tick before handling what arrived: if this process was descheduled past the watchdog
         * deadline, the trip happens first, as it would have on time on the MCU, and a late
         * heartbeat cannot undo it. */
        if (estop_toggle_requested) {
            estop_toggle_requested = 0;
            estop_pressed = !estop_pressed;
            printf("E %d\n", estop_pressed);
            fflush(stdout);
        }
        now = now_ms();
        ng_core_tick(&core, now);
        ng_core_estop_input(&core, estop_pressed);
        if (ready) {
            ssize_t n = read(master, buf, sizeof buf);
            ssize_t k;
            for (k = 0; k < n; k++) {
                uint16_t before = core.commands_executed;
                ng_core_rx(&core, buf[k], now);
                if (log_commands && core.commands_executed != before) {
                    printf("C %u %02x%02x%02x%02x%02x%02x\n", core.last_cmd_seq, core.last_cmd[0], core.last_cmd[1],
                           core.last_cmd[2], core.last_cmd[3], core.last_cmd[4], core.last_cmd[5]);
                    fflush(stdout);
                }
            }
        }
        run_adc(&core, now);
        if (trace_ms > 0) {
            /* Servo pulses as the AVR build would program them: on change, and every trace_ms. */
            uint16_t p0 = ng_pulse_us(ng_core_position(&core, 0)), p1 = ng_pulse_us(ng_core_position(&core, 1));
            if (p0 != last_p0 || p1 != last_p1 || (uint32_t)(now - last_trace) >= (uint32_t)trace_ms) {
                printf("P %lu %u %u\n", (unsigned long)(now - core.boot_ms), p0, p1);
                last_p0 = p0;
                last_p1 = p1;
            }
        }
        if (trace_ms > 0 && (uint32_t)(now - last_trace) >= (uint32_t)trace_ms) {
            last_trace = now;
            printf("T %lu %u %u %u %u %u\n", (unsigned long)(now - core.boot_ms), ng_core_position(&core, 0),
                   ng_core_position(&core, 1), ng_pulse_us(ng_core_position(&core, 0)),
                   ng_pulse_us(ng_core_position(&core, 1)), core.faults);
            fflush(stdout);
        }
    }
    if (link_path != NULL) {
        unlink(link_path);
    }
    close(slave);
    close(master);
    return 0;
}
