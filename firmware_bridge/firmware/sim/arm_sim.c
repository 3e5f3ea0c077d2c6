/* The simulated arm: simavr runs the real AVR firmware binary (build/avr/neurogrip_arm.elf) on a
 * simulated ATmega328P at 16 MHz, paced to real time. The AVR's UART is bridged to a pseudo-
 * terminal by simavr's uart_pty part; the servo pulse widths are read from the simulated Timer1
 * outputs (OC1A = D9, OC1B = D10), on the simulated clock.
 *
 * usage: arm_sim FIRMWARE.elf [--link PATH] [--trace-ms N] [--adc FEED]
 *   prints "PTY <path>" once the UART is connected (--link also makes PATH a symlink to it, removed at
 *   exit: a name no other program's terminal can take once this one is gone), "F <period_us>" once the first PWM period has
 *   been measured on the OC1A pin, then "P <sim_ms> <pulse0_us> <pulse1_us>" whenever a pulse
 *   width changes (and at least every N ms with --trace-ms).
 *   --adc FEED drives the analog inputs A0.. with an ADC feed (host/adc_feed.h: a file, or - for
 *   standard input) at the feed's own rate in simulated time, from the firmware's first conversion
 *   on (sim/adc_drive.h); prints "A <sim_ms>" then, and "D <sim_ms> <samples>" when the feed ends
 *   (its last values then hold). Without it the inputs read 0 V. AVcc is 5 V.
 * Exits promptly on SIGTERM/SIGINT. SIGUSR1 resets the simulated MCU (avr_reset: the firmware
 * reboots and forgets its session, as an Uno's ATmega328P does on a brown-out or watchdog reset,
 * while the pty stays open like the Uno's USB-serial chip); prints "R" when it has. SIGUSR2 presses
 * the arm's e-stop switch, or releases it when pressed (the normally-closed switch on D2: the pin
 * is driven low while released, high while pressed); prints "E 1" / "E 0" when it has. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <simavr/avr_ioport.h>
#include <simavr/avr_timer.h>
#include <simavr/parts/uart_pty.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>

#include "adc_drive.h"
#include "adc_feed.h"

static volatile sig_atomic_t stop, reset_requested, estop_toggle_requested;
static int estop_pressed;
static avr_t *avr;
static uart_pty_t uart;
static uint64_t rise[1];
static int period_reported;
static unsigned pulse_us[2], printed_us[2];
static long trace_ms;
static uint64_t last_print_cycle;
static adc_feed_t feed;
static adc_drive_t drive;

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

static uint64_t cycles_to_ms(uint64_t c) { return c / (avr->frequency / 1000u); }

/* Drive the e-stop pin (PD2) as the normally-closed switch would: low while released, high while
 * pressed. Set as the port's external value too, so the firmware's pull-up does not override it. */
static void drive_estop(void)
{
    avr_ioport_external_t e;
    e.name = 'D';
    e.mask = 1u << 2;
    e.value = estop_pressed ? (1u << 2) : 0u;
    avr_ioctl(avr, AVR_IOCTL_IOPORT_SET_EXTERNAL('D'), &e);
    avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 2), estop_pressed ? 1u : 0u);
}

static void report(void)
{
    printf("P %llu %u %u\n", (unsigned long long)cycles_to_ms(avr->cycle), pulse_us[0], pulse_us[1]);
    fflush(stdout);
    printed_us[0] = pulse_us[0];
    printed_us[1] = pulse_us[1];
    last_print_cycle = avr->cycle;
}

/* Servo pulse widths come from Timer1's PWM outputs: simavr raises TIMER_IRQ_OUT_PWM0/1 with the
 * compare value the firmware programs into OCR1A/OCR1B; at clk/8 (0.5 us per count, fast PWM)
 * the pulse is (OCR + 1) / 2 us. simavr 1.6 does not reload a changed OCR1x into its pin-level
 * output in mode 14 (ICR1 top), so the pins are used only to measure the PWM period. */
static void pwm_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    int ch = (int)(intptr_t)param;
    (void)irq;
    pulse_us[ch] = (value + 1u) / 2u;
    if (pulse_us[ch] != printed_us[ch]) {
        report();
    }
}

static void pin_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (value) {
        if (rise[0] != 0 && !period_reported) {
            printf("F %llu\n", (unsigned long long)((avr->cycle - rise[0]) * 1000000u / avr->frequency));
            fflush(stdout);
            period_reported = 1;
        }
        rise[0] = avr->cycle;
    }
}

static void on_feed(adc_drive_t *d, char what)
{
    if (what == 'A') {
        printf("A %llu\n", (unsigned long long)cycles_to_ms(d->avr->cycle));
    } else {
        printf("D %llu %llu\n", (unsigned long long)cycles_to_ms(d->avr->cycle), (unsigned long long)d->feed->n_read);
    }
    fflush(stdout);
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    elf_firmware_t fw;
    struct sigaction sa;
    sigset_t sigs;
    char link[64];
    uint64_t start_ns, start_cycle;
    unsigned long n = 0;
    int i, keep_slave;
    const char *adc_path = NULL, *link_path = NULL;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FIRMWARE.elf [--link PATH] [--trace-ms N] [--adc FEED]\n", argv[0]);
        return 2;
    }
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--trace-ms") == 0 && i + 1 < argc) {
            trace_ms = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--adc") == 0 && i + 1 < argc) {
            adc_path = argv[++i];
        } else if (strcmp(argv[i], "--link") == 0 && i + 1 < argc) {
            link_path = argv[++i];
        }
    }
    if (adc_path != NULL) {
        char err[256];
        if (adc_feed_open(&feed, adc_path, err, sizeof err) != 0) {
            fprintf(stderr, "arm_sim: %s\n", err);
            return 1;
        }
    }
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(argv[1], &fw) != 0) {
        fprintf(stderr, "arm_sim: cannot read %s: build it with make -C firmware_bridge/firmware avr\n", argv[1]);
        return 1;
    }
    avr = avr_make_mcu_by_name("atmega328p");
    if (avr == NULL) {
        fprintf(stderr, "arm_sim: this simavr has no atmega328p core\n");
        return 1;
    }
    avr_init(avr);
    avr_load_firmware(avr, &fw);
    avr->frequency = 16000000u;
    avr->log = LOG_ERROR;
    adc_drive_init(&drive, avr, adc_path != NULL ? &feed : NULL);
    drive.event = on_feed;

    /* uart_pty's thread must never receive our signals: it leaves its loop on an interrupted
     * select(), which would silently cut the UART off. Blocked here, they stay blocked in the thread
     * it creates, and are unblocked below for this (the simulation) thread only. For the same reason
     * uart_pty_stop() is not called at exit: it stops that thread with pthread_kill(SIGINT) and
     * joins it, and simavr 1.6's thread does not always leave its loop for it, so the join could
     * hang (arm_sim then ignored SIGTERM); exiting the process ends the thread. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    uart_pty_init(avr, &uart);
    uart_pty_connect(&uart, '0');
    /* Keep the slave open ourselves so the pty survives clients closing and reopening it. */
    keep_slave = open(uart.pty.slavename, O_RDWR | O_NOCTTY);
    (void)keep_slave;

    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 1), pin_hook, (void *)(intptr_t)0);

    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_TIMER_GETIRQ('1'), TIMER_IRQ_OUT_PWM0), pwm_hook, (void *)(intptr_t)0);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_TIMER_GETIRQ('1'), TIMER_IRQ_OUT_PWM1), pwm_hook, (void *)(intptr_t)1);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
    drive_estop(); /* the switch is closed: released */
    if (link_path != NULL) {
        unlink(link_path);
        if (symlink(uart.pty.slavename, link_path) != 0) {
            perror("arm_sim: cannot create the --link symlink");
            return 1;
        }
    }

    printf("PTY %s\n", uart.pty.slavename);
    fflush(stdout);

    start_ns = wall_ns();
    start_cycle = avr->cycle;
    while (!stop) {
        int state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            fprintf(stderr, "arm_sim: the simulated MCU stopped (state %d)\n", state);
            break;
        }
        if (reset_requested) {
            uint64_t before = avr->cycle;
            reset_requested = 0;
            avr_reset(avr);
            adc_drive_after_reset(&drive, before); /* the reset dropped the feed's cycle timer */
            /* Re-base the pacing and the reports on the (possibly restarted) simulated clock. */
            start_ns = wall_ns();
            start_cycle = avr->cycle;
            last_print_cycle = avr->cycle;
            n = 0;
            drive_estop();
            printf("R\n");
            fflush(stdout);
        }
        if (estop_toggle_requested) {
            estop_toggle_requested = 0;
            estop_pressed = !estop_pressed;
            drive_estop();
            printf("E %d\n", estop_pressed);
            fflush(stdout);
        }
        if (trace_ms > 0 && cycles_to_ms(avr->cycle - last_print_cycle) >= (uint64_t)trace_ms) {
            report();
        }
        /* Pace the simulated clock to the wall clock, so the firmware's 250 ms watchdog is 250 ms
         * for the host talking to it. (Slower than real time is possible on a loaded machine; the
         * firmware's own timing stays exact on the simulated clock.) */
        if ((++n & 0x3FFu) == 0u) {
            uint64_t sim_ns = (avr->cycle - start_cycle) * 1000u / (avr->frequency / 1000000u);
            uint64_t now = wall_ns() - start_ns;
            if (sim_ns > now + 200000u) {
                struct timespec ts = {0, (long)(sim_ns - now)};
                nanosleep(&ts, NULL);
            }
        }
    }
    /* uart_pty_connect's convenience symlink, removed only if it is still ours (another arm_sim
     * may have replaced it). */
    snprintf(link, sizeof link, "/tmp/simavr-uart%c", '0');
    {
        char target[sizeof uart.pty.slavename];
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            if (strcmp(target, uart.pty.slavename) == 0) {
                unlink(link);
            }
        }
    }
    if (link_path != NULL) {
        unlink(link_path);
    }
    fflush(stdout);
    return 0;
}
