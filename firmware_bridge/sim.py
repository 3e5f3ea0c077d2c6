"""Run the arm firmware without an arm: the simulated Uno (simavr) or the host build behind a pty.

Both expose a pseudo-terminal that :class:`firmware_bridge.link.ArmLink` opens like a real
``/dev/ttyACM0``.  :func:`start` prefers the simavr simulation of the real AVR binary and falls back
to the host build of the same firmware core; the returned handle's ``kind`` says which one runs.

``adc=`` drives the simulated analog inputs A0..A7 with an ADC feed (``firmware/host/adc_feed.h``,
``firmware_bridge/README.md`` § "Feeding recordings into the simulated ADC"): a feed file, or an
:class:`AdcFeed` of rows of millivolts streamed to the simulator through a pipe.  :func:`write_adc_feed`
writes one to a file or a pipe.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from firmware_bridge.adc_feed import ADC_VREF_MV, AdcFeed, adc_counts, write_adc_feed
from firmware_bridge.errors import LinkError
from firmware_bridge.pty_proxy import PtyProxy

__all__ = ["ADC_VREF_MV", "BUILD_DIR", "FIRMWARE_DIR", "STOP_SIGNALS", "AdcFeed", "ArmProcess", "PtyProxy", "SimError",
           "adc_counts", "build_host", "build_sim", "main", "run", "start", "start_arm_host", "start_simavr",
           "write_adc_feed"]

FIRMWARE_DIR = Path(__file__).resolve().parent / "firmware"
BUILD_DIR = FIRMWARE_DIR / "build"

class SimError(LinkError):
    """The simulated arm could not be built or started."""


def _make(*targets: str) -> None:
    if shutil.which("make") is None:
        raise SimError("'make' not found: install it (apt-get install make) to build the firmware")
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), *targets], capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        raise SimError(f"building firmware target(s) {' '.join(targets)} failed; run "
                       f"firmware_bridge/firmware/install-deps.sh, then: make -C {FIRMWARE_DIR} {' '.join(targets)}\n"
                       f"{r.stdout[-2000:]}{r.stderr[-2000:]}")


def build_host() -> Path:
    """Build the host programs (``arm_host``, ``ng_frametool``); return their directory."""
    _make("host")
    return BUILD_DIR / "host"


@dataclass
class ArmProcess:
    """A running simulated arm.

    Attributes
    ----------
    kind : str
        ``"simavr"`` (the AVR binary on a simulated ATmega328P) or ``"host"`` (the firmware core
        compiled for this machine).
    pty : str
        Path to open with :class:`~firmware_bridge.link.ArmLink`: a symlink to the process's pty (``link=``,
        by default in a private temporary folder) that disappears with the process (however it ends), as
        a udev name does with its device.  A ``/dev/pts/N`` freed by a stopped arm can be taken by any other program's
        terminal, which a link re-opening that path would then reach as if it were the same arm.
    device : str
        The pty itself (``/dev/pts/N``), which ``pty`` leads to while the process runs.
    trace : list of tuple
        Host build only, with ``trace_ms``: ``(time_ms, pos0, pos1, pulse0_us, pulse1_us, faults)``.
    commands : list of tuple
        Host build only, with ``log_commands``: ``(seq, payload)`` of every ARM_CMD the firmware
        executed, in order.
    pulses : list of tuple
        ``(time_ms, pulse0_us, pulse1_us)`` servo pulse widths, newest last (simavr: measured on
        the simulated timer output pins; host build: computed, with ``trace_ms``).
    resets : int
        MCU resets done by :meth:`reset_mcu` so far (as reported by the process).
    estop_pressed : bool
        The arm's e-stop switch as :meth:`set_estop` left it (as reported by the process).
    adc_started_ms, adc_ended_ms : int or None
        With ``adc=``: when the feed started (the firmware's first conversion: sample 0) and ended (its
        last values then hold), in the firmware's milliseconds since boot; ``None`` until then.
    adc_samples : int or None
        The feed's samples, once it ended.
    adc_error : Exception or None
        Why an :class:`AdcFeed` stopped being written before its end (its pipe then closes, so the feed
        ends there), e.g. a ``ValueError`` for a value out of range.
    """

    kind: str
    pty: str
    proc: subprocess.Popen
    trace: list = field(default_factory=list)
    pulses: list = field(default_factory=list)
    pwm_period_us: int | None = None
    commands: list = field(default_factory=list)
    resets: int = 0
    estop_pressed: bool = False
    fallback_reason: str | None = None
    device: str | None = None
    adc_started_ms: int | None = None
    adc_ended_ms: int | None = None
    adc_samples: int | None = None
    adc_error: Exception | None = None
    _reader: threading.Thread | None = None
    _feeder: threading.Thread | None = None
    _remove_dir: weakref.finalize | None = None  # the private folder of its name, removed once
    _adc_ended: threading.Event = field(default_factory=threading.Event)

    def _follow(self) -> None:
        for line in self.proc.stdout:
            parts = line.split()
            if parts and parts[0] == "T":
                self.trace.append(tuple(int(x) for x in parts[1:]))
                del self.trace[:-10000]
            elif parts and parts[0] == "C":
                self.commands.append((int(parts[1]), bytes.fromhex(parts[2])))
            elif parts and parts[0] == "F":
                self.pwm_period_us = int(parts[1])
            elif parts and parts[0] == "P":
                self.pulses.append(tuple(int(x) for x in parts[1:]))
                del self.pulses[:-10000]
            elif parts and parts[0] == "R":
                self.resets += 1
            elif parts and parts[0] == "E":
                self.estop_pressed = parts[1:] == ["1"]
            elif parts and parts[0] == "A":
                self.adc_started_ms = int(parts[1])
            elif parts and parts[0] == "D":
                self.adc_ended_ms, self.adc_samples = int(parts[1]), int(parts[2])
                self._adc_ended.set()
        self._adc_ended.set()  # the process ended: so did its feed
        self._forget_name()  # (killed, crashed: it could not remove its name itself)

    def _forget_name(self) -> None:
        """Remove the name it is opened by if it still leads to its pty: once the process is gone, the
        kernel gives that /dev/pts/N to the next terminal opened anywhere."""
        if self.device is None or self.pty == self.device:
            return
        try:
            if os.readlink(self.pty) == self.device:
                os.unlink(self.pty)
        except OSError:
            pass  # gone already (the program removes it on SIGTERM), or replaced by another arm's

    def wait_adc_end(self, timeout: float | None = None) -> bool:
        """Wait until the ADC feed has ended (or the process has exited); True if it did within
        ``timeout`` seconds.  A feed starts at the first STREAM_START and plays in simulated time, so
        this is the recording's length after the host began streaming."""
        return self._adc_ended.wait(timeout)

    def _feed(self, feed: AdcFeed) -> None:
        try:
            feed.write_rows(self.proc.stdin)
        except (BrokenPipeError, ValueError, OSError) as e:  # BrokenPipe: the simulator stopped first
            if not isinstance(e, BrokenPipeError) and self.proc.poll() is None:
                self.adc_error = e
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def reset_mcu(self, timeout: float = 2.0) -> None:
        """Reset the simulated microcontroller behind the same pty, and wait until it has.

        The firmware reboots (session, latches, settings and counters forgotten, joints commanded to
        their safe pose) while the pty stays open, as an Uno's ATmega328P resets (brown-out, its
        hardware watchdog) while the USB-serial chip keeps ``/dev/ttyACM0``.  ``arm_sim`` calls
        simavr's ``avr_reset``; ``arm_host`` initialises the core again.

        Raises
        ------
        SimError
            The process is not running or did not confirm the reset within ``timeout`` seconds.
        """
        before = self.resets
        self._signal(signal.SIGUSR1, lambda: self.resets != before, "the reset", timeout)

    def set_estop(self, pressed: bool, timeout: float = 2.0) -> None:
        """Press (or release) the arm's e-stop switch, and wait until the simulator has.

        The firmware reads the switch on its e-stop input (D2, a normally-closed switch to GND):
        pressed, every joint freezes and motion is refused (fault ESTOP_INPUT); released, the arm
        stays where it stopped until a new command.

        Raises
        ------
        SimError
            The process is not running or did not confirm within ``timeout`` seconds.
        """
        if self.estop_pressed != bool(pressed):  # SIGUSR2 toggles the switch
            self._signal(signal.SIGUSR2, lambda: self.estop_pressed == bool(pressed), "the e-stop", timeout)

    def _signal(self, sig: int, done, what: str, timeout: float) -> None:
        """Send ``sig`` to the simulator and wait until ``done()`` (its confirmation was read)."""
        if self.proc.poll() is not None:
            raise SimError(f"the simulated arm exited (status {self.proc.returncode}): start it again")
        self.proc.send_signal(sig)
        t_end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > t_end:
                raise SimError(f"the simulated arm ({self.kind}) did not confirm {what} within {timeout} s")
            time.sleep(0.002)

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 3 s) and wait for it; both programs exit
        within milliseconds of SIGTERM.  The name it is opened by goes first ("unplugged")."""
        self._forget_name()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        if self._remove_dir is not None:
            self._remove_dir()

    def __enter__(self):  # returns self
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _adc_argv(adc) -> list[str]:
    if adc is None:
        return []
    if isinstance(adc, AdcFeed):
        return ["--adc", "-"]  # written to the simulator's standard input as it goes
    if isinstance(adc, (str, os.PathLike)):
        if str(adc) != "-" and not Path(adc).exists():  # ("-": this process's standard input, inherited)
            raise FileNotFoundError(f"ADC feed {adc} not found: write one with firmware_bridge.sim.write_adc_feed")
        return ["--adc", str(adc)]
    raise TypeError(f"adc must be a path to an ADC feed file or an AdcFeed, got {type(adc).__name__}")


def _launch(kind: str, argv: list[str], adc=None, link=None) -> ArmProcess:
    """Start ``argv`` (``arm_host`` or ``arm_sim``) with ``--link``: ``link``, or a name in a private
    temporary folder (removed by :meth:`ArmProcess.stop`)."""
    private_dir = None
    if link is None:
        private_dir = tempfile.mkdtemp(prefix="neurogrip-arm-")
        link = Path(private_dir) / "tty"
    try:
        arm = _start(kind, argv + ["--link", str(link)] + _adc_argv(adc), adc)
    except BaseException:
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
        raise
    arm.pty = str(link)
    if private_dir is not None:  # by stop(), or once an arm never stopped is collected (or at exit)
        arm._remove_dir = weakref.finalize(arm, shutil.rmtree, private_dir, True)
    return arm


def _start(kind: str, argv: list[str], adc) -> ArmProcess:
    feed = adc if isinstance(adc, AdcFeed) else None
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                            stdin=subprocess.PIPE if feed is not None else None)
    if feed is not None:  # the simulator reads the header before it reports its pty; the rows follow
        proc.stdin = proc.stdin.detach()  # (text=True made it text; a feed is bytes)
        try:
            proc.stdin.write(feed.header)
            proc.stdin.flush()
        except OSError:
            pass  # it exited already: its error is read below
    # simavr's uart_pty prints its own banner lines first; ours starts with "PTY ".
    for _ in range(20):
        line = proc.stdout.readline()
        if not line or line.startswith("PTY "):
            break
    if not line.startswith("PTY "):
        proc.kill()
        proc.wait(timeout=3)
        err = proc.stderr.read()[-2000:] if proc.stderr else ""
        raise SimError(f"{argv[0]} did not report its pty (got {line!r}): {err}")
    device = line.split(maxsplit=1)[1].strip()
    arm = ArmProcess(kind, device, proc, device=device)
    arm._reader = threading.Thread(target=arm._follow, daemon=True)
    arm._reader.start()
    if feed is not None:
        arm._feeder = threading.Thread(target=arm._feed, args=(feed,), daemon=True)
        arm._feeder.start()
    return arm


def start_arm_host(host_dir: Path | None = None, *, link: str | os.PathLike | None = None,
                   trace_ms: int = 0, log_commands: bool = False, adc=None) -> ArmProcess:
    """Start the firmware core on the host behind a pty.

    Parameters
    ----------
    link : path, optional
        The symlink to the pty that ``ArmProcess.pty`` names (a stable name across restarts; removed when
        the process ends).  Default: one in a private temporary folder, removed with it.
    trace_ms : int
        Report positions/pulse widths every ``trace_ms`` ms into ``ArmProcess.trace`` (0: never).
    log_commands : bool
        Record every executed ARM_CMD in ``ArmProcess.commands`` (to audit what ran).
    adc : path or AdcFeed, optional
        Drive the analog inputs with this ADC feed (see :func:`start`).
    """
    host_dir = build_host() if host_dir is None else Path(host_dir)
    argv = [str(host_dir / "arm_host")]
    if trace_ms:
        argv += ["--trace-ms", str(int(trace_ms))]
    if log_commands:
        argv += ["--log-commands"]
    return _launch("host", argv, adc, link)


def build_sim() -> Path:
    """Build the AVR firmware and the simavr program; return the build directory."""
    _make("avr", "sim")
    return BUILD_DIR


def start_simavr(*, link: str | os.PathLike | None = None, trace_ms: int = 0, adc=None) -> ArmProcess:
    """Run the real AVR firmware binary on simavr's ATmega328P behind a pty (see ``sim/arm_sim.c``);
    ``link``: the name to open it by (see :func:`start_arm_host`); ``adc``: drive its analog inputs with
    this ADC feed (see :func:`start`).

    Raises
    ------
    SimError
        simavr, avr-gcc or their headers are missing, or the simulator failed to start.
    """
    build = build_sim()
    argv = [str(build / "sim" / "arm_sim"), str(build / "avr" / "neurogrip_arm.elf")]
    if trace_ms:
        argv += ["--trace-ms", str(int(trace_ms))]
    return _launch("simavr", argv, adc, link)


def start(prefer: str = "simavr", *, trace_ms: int = 0, adc=None) -> ArmProcess:
    """Start a simulated arm: the simavr Uno if it can run here, else the host build.

    Parameters
    ----------
    prefer : {"simavr", "host"}
        ``"simavr"`` tries the simulated Uno first and falls back to the host build;
        ``"host"`` starts the host build directly.
    trace_ms : int
        Report servo pulse widths at least every ``trace_ms`` ms (``ArmProcess.pulses``; 0: on change only
        for simavr, never for the host build).
    adc : path or AdcFeed, optional
        Drive the analog inputs A0.. with an ADC feed: a feed file's path (:func:`write_adc_feed`), or an
        :class:`AdcFeed` written to the simulator through a pipe as it reads it.  The feed starts at the
        firmware's first conversion (the first STREAM_START: its scan 0 reads sample 0) and plays at its own
        rate in simulated time (simavr's clock; the host build's millisecond clock); after its end its last
        values hold (``ArmProcess.wait_adc_end``).  Without it the inputs read 0 V.

    Returns
    -------
    ArmProcess
        ``kind`` says which one runs; ``fallback_reason`` (an attribute, ``None`` when simavr
        runs) says why simavr could not.
    """
    if prefer not in ("simavr", "host"):
        raise ValueError(f"prefer must be 'simavr' or 'host', got {prefer!r}")
    reason = None
    if prefer == "simavr":
        try:
            arm = start_simavr(trace_ms=trace_ms, adc=adc)
            arm.fallback_reason = None
            return arm
        except SimError as e:
            reason = str(e).splitlines()[0]
    arm = start_arm_host(trace_ms=trace_ms, adc=adc)
    arm.fallback_reason = reason
    return arm


#: Signals that end ``neurogrip arm-sim`` cleanly, its simulator child with it: Ctrl-C, a service stop or
#: ``kill``, the terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main(argv: list[str] | None = None) -> int:
    """``python -m firmware_bridge.sim``: run a simulated arm until Ctrl-C, SIGTERM or SIGHUP, then stop its
    simulator process (never left running behind).

    Prints the path to open (e.g. ``ArmLink('/tmp/neurogrip-arm-k2x9/tty')``, a name of the simulator's
    pty that goes with it) and which implementation runs.
    ``neurogrip arm-sim`` is the same program, whose ``--adc`` also takes any recording neurogrip reads
    (``edge/commands/arm_sim.py``); here ``--adc`` takes an ADC feed file.
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m firmware_bridge.sim", description=main.__doc__.splitlines()[0])
    ap.add_argument("--host", action="store_true", help="run the host build instead of the simavr Uno")
    ap.add_argument("--trace-ms", type=int, default=0, help="print servo pulse widths every N ms")
    ap.add_argument("--adc", metavar="FEED", help="drive the analog inputs with this ADC feed file ('-': standard "
                                                  "input; NGADC1: firmware_bridge/README.md, 'Feeding recordings into "
                                                  "the simulated ADC')")
    args = ap.parse_args(argv)
    return run("host" if args.host else "simavr", trace_ms=args.trace_ms, adc=args.adc,
               adc_about=f"ADC feed {args.adc}" if args.adc else None)


def run(prefer: str = "simavr", *, trace_ms: int = 0, adc=None, adc_about=None, out=None) -> int:
    """Run a simulated arm (:func:`start`'s arguments) until Ctrl-C, SIGTERM or SIGHUP, printing to ``out``
    (default stdout) its pty path, on the next line which implementation runs, then ``adc_about`` (what the
    feed holds: a str, or a function of the running :class:`ArmProcess` returning one), when the ADC feed
    starts and ends, and with ``trace_ms`` the servo pulse widths.
    Stops its simulator process whatever ends it; returns the exit status (1: it could not start)."""
    stop = threading.Event()
    # Each stop signal only sets the flag: the simulator is stopped below, also when the signal came while
    # it was being built or started (an exception raised there could leave the child running).
    main_thread = threading.current_thread() is threading.main_thread()  # (only it may set handlers)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS} if main_thread else {}
    try:
        return _serve(prefer, trace_ms, adc, adc_about, stop, out)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(prefer: str, trace_ms: int, adc, adc_about, stop: threading.Event, out) -> int:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    try:
        arm = start(prefer, trace_ms=trace_ms, adc=adc)
    except (SimError, OSError) as e:  # (OSError: a feed file that is not there)
        say(f"error: {e}")
        return 1
    what = "simavr ATmega328P running the AVR firmware" if arm.kind == "simavr" else "host build of the firmware core"
    shown, started, ended = 0, None, None
    try:
        say(f"{arm.pty}\n  {what}" + (f" (simavr unavailable: {arm.fallback_reason})" if arm.fallback_reason else ""))
        if adc_about:
            about = adc_about(arm) if callable(adc_about) else adc_about
            say(f"  analog inputs: {about}; it plays from the first STREAM_START, in simulated time")
        while arm.proc.poll() is None and not stop.wait(0.2):
            if trace_ms:
                for p in arm.pulses[shown:]:
                    say(f"t={p[0]} ms  gripper {p[1]} us  lift {p[2]} us")
                shown = len(arm.pulses)
            if arm.adc_started_ms != started:
                started = arm.adc_started_ms
                say(f"t={started} ms  ADC feed started (sample 0 at the stream's first scan)")
            if arm.adc_ended_ms != ended:
                ended = arm.adc_ended_ms
                say(f"t={ended} ms  ADC feed ended after {arm.adc_samples} samples: its last values hold"
                    + (f" ({arm.adc_error})" if arm.adc_error else ""))
    except (KeyboardInterrupt, OSError):  # (OSError: the terminal went away under a line)
        pass
    finally:
        arm.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
