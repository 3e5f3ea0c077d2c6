"""Robustness (issue 13): the runtime recovers by itself when the firmware protects itself or the
stream drops, measured with real parts; the 30-minute soak (``make soak``, :mod:`tools/soak`) runs
the same rig for longer.

The rig (:class:`Rig`) is the deployment in miniature, every part in its own process:

* ``neurogrip stream`` publishes a real recording over LSL on loopback, looped, with a pinned
  identity (name and source_id, as the systemd unit pins its producer);
* ``neurogrip run`` is the runtime, with a JSON-lines log that says what happened and when;
* the simulated arm runs the real AVR firmware on simavr's ATmega328P (the host build of the
  same firmware core where simavr is missing) behind a pty.

Faults (each with the moment its cause is gone, from which recovery is timed):

``mcu_reset``
    the microcontroller resets (simavr's ``avr_reset``, as a brown-out would): it forgets its
    session and rests the joints.  Cause gone: at once.
``watchdog``
    the runtime process is frozen (SIGSTOP) for :data:`FREEZE_S`, longer than the firmware's
    watchdog (250 ms): heartbeats stop, the firmware rests the arm and latches.  Cause gone: SIGCONT.
``estop``
    a person presses the arm's own e-stop switch (the firmware's e-stop input; simulated by
    SIGUSR2), releases it :data:`ESTOP_S` later — the arm stays stopped (ISO 13850) — and starts it
    again deliberately :data:`START_AFTER_S` after that (SIGUSR1 to the runtime).  Cause gone: the
    start.
``stream_drop``
    the producer is killed and started again :data:`DROP_S` later with the same identity.  Cause
    gone: the new producer publishes (its "publishing" line; its Python start-up is not counted).

Recovery is the time from the cause gone to the runtime's ``resume`` log event (decisions flow
to the arm again); the goal is at most 1 s (docs/design.md §3).  A decision that could not be
delivered to the arm outside an injected fault's episode is a *lost command*.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import stream_time
from benchmarks.common import REPO, myo_session, proc_status_kb

FAULTS = ("mcu_reset", "watchdog", "estop", "stream_drop")
FREEZE_S = 0.6          # the runtime frozen this long: > the firmware watchdog's 250 ms
ESTOP_S = 0.5           # the arm's e-stop switch held this long
START_AFTER_S = 0.3     # then released; the person starts the arm again (SIGUSR1) this long after
LABELS = {"mcu_reset": "an MCU reset", "watchdog": "a watchdog trip",
          "estop": "the arm's e-stop is released and started",
          "stream_drop": "a stream drop"}
DROP_S = 1.0            # the producer away this long
RECOVERY_GOAL_S = 1.0   # cause gone → control resumed (issue 13)
EPISODE_MARGIN_S = 1.0  # after the resume, still part of the injected episode (commands in flight)


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read()


@dataclass
class Injection:
    kind: str
    t_inject: float      # time.time() when the fault began
    t_cause_gone: float  # when its cause was gone
    recovered_s: float | None = None
    t_resume: float | None = None
    first_event: int = 0  # Rig.events() before it began: its resume comes after

    @property
    def ok(self) -> bool:
        """Control resumed, and not before the cause was gone (that would be a failure, never fast)."""
        return self.recovered_s is not None and self.recovered_s >= 0


def recovery_times(injections, kind: str) -> tuple[list, list[float]]:
    """Every recovery time of one fault kind (None: not recovered), and those that count (:attr:`Injection.ok`)."""
    mine = [i for i in injections if i.kind == kind]
    return [i.recovered_s for i in mine], [i.recovered_s for i in mine if i.ok]


@dataclass
class Rig:
    """``neurogrip stream`` → ``neurogrip run`` → the simulated arm, each in its own process.

    Parameters
    ----------
    bundle, recording : Path
        A bundle that moves the arm and a recording it reads (looped by the producer).
    workdir : Path
        Where the log, the summary and the processes' output go.
    """

    bundle: Path
    recording: Path
    workdir: Path
    arm: object = None
    player: subprocess.Popen | None = None
    runtime: subprocess.Popen | None = None
    injections: list = field(default_factory=list)
    name: str = field(default_factory=lambda: f"ng-rig-{uuid.uuid4().hex[:8]}")
    _events: list = field(default_factory=list)
    _offset: int = 0
    _inode: int | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "run.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.workdir / "summary.json"

    def _cli(self, *args) -> list[str]:
        return [sys.executable, "-m", "edge.cli", *map(str, args)]

    def _start_player(self) -> None:
        out = open(self.workdir / "player.out", "a")  # noqa: SIM115 - the child owns it
        self.player = subprocess.Popen(self._cli("stream", self.recording, "--loop", "--name", self.name,
                                                 "--source-id", self.name), cwd=REPO, stdout=out,
                                       stderr=subprocess.STDOUT)
        out.close()

    def start(self, ready_timeout_s: float = 60.0) -> Rig:
        from firmware_bridge.sim import start

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.arm = start()  # simavr's Uno, else the host build of the same firmware core
        self._start_player()
        spec = f"lsl:name={self.name}&source_id={self.name}&hostname=localhost&timeout=20"
        out = open(self.workdir / "runtime.out", "w")  # noqa: SIM115 - the child owns it
        self.runtime = subprocess.Popen(self._cli("run", "--bundle", self.bundle, "--source", spec, "--arm",
                                                  self.arm.pty, "--log", self.log_path, "--summary",
                                                  self.summary_path), cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + ready_timeout_s
        while not any(e["event"] == "start" for e in self.events()):
            if self.runtime.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the runtime did not start: {self.output()[-2000:]}")
            time.sleep(0.2)
        time.sleep(2.0)  # connected: the stream flows and the windows fill
        return self

    def events(self) -> list[dict]:
        """Every event of the runtime's JSON log so far, oldest first.  Read incrementally (a soak's
        log grows to megabytes and is polled every 50 ms), across the log's rotations."""
        if not self.log_path.is_file():
            return self._events
        inode = self.log_path.stat().st_ino
        if self._inode is not None and inode != self._inode:  # rotated: what we were reading is run.jsonl.1
            self._events += self._parse(_read_from(self.log_path.with_name(self.log_path.name + ".1"), self._offset))
            self._offset = 0
        self._inode = inode
        data = _read_from(self.log_path, self._offset)
        whole = data[:data.rfind(b"\n") + 1]  # a line being written right now waits for the next call
        self._offset += len(whole)
        self._events += self._parse(whole)
        return self._events

    @staticmethod
    def _parse(data: bytes) -> list[dict]:
        out = []
        for line in data.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out

    def output(self) -> str:
        p = self.workdir / "runtime.out"
        return p.read_text() if p.is_file() else ""

    def rss_kb(self) -> int | None:
        return proc_status_kb(self.runtime.pid, "VmRSS") if self.runtime is not None else None

    def inject(self, kind: str) -> Injection:
        """Inject one fault (see the module docstring); returns when its cause is gone."""
        first_event = len(self.events())  # its events come after these
        t0 = time.time()
        if kind == "mcu_reset":
            self.arm.reset_mcu()
        elif kind == "watchdog":
            os.kill(self.runtime.pid, signal.SIGSTOP)
            time.sleep(FREEZE_S)
            os.kill(self.runtime.pid, signal.SIGCONT)
        elif kind == "estop":
            self.arm.set_estop(True)
            time.sleep(ESTOP_S)
            self.arm.set_estop(False)
            # released, the arm stays stopped (ISO 13850) until a person starts it: SIGUSR1, as the
            # guide says, once the runtime has seen the release
            self._wait_event("link_fault", first_event, "estop_switch_released")
            time.sleep(START_AFTER_S)
            os.kill(self.runtime.pid, signal.SIGUSR1)
        elif kind == "stream_drop":
            self.player.terminate()
            self.player.wait(5)
            time.sleep(DROP_S)
            out = self.workdir / "player.out"
            start = out.stat().st_size  # the output of every producer so far: look only at the new one's
            self._start_player()
            deadline = time.monotonic() + 30  # the cause is gone once the new producer publishes
            while b"publishing LSL stream" not in (new := _read_from(out, start)) and time.monotonic() < deadline:
                if self.player.poll() is not None:
                    raise RuntimeError(f"the producer exited: {new[-2000:].decode(errors='replace')}")
                time.sleep(0.01)
        else:
            raise ValueError(f"fault must be one of {FAULTS}, got {kind!r}")
        inj = Injection(kind, t0, time.time(), first_event=first_event)
        self.injections.append(inj)
        return inj

    def _wait_event(self, event: str, first: int, kind: str | None = None, timeout_s: float = 5.0) -> bool:
        """Wait until the runtime's log has ``event`` (with ``kind``) after its ``first`` events."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(e["event"] == event and (kind is None or e.get("kind") == kind) for e in self.events()[first:]):
                return True
            time.sleep(0.01)
        return False

    def wait_recovered(self, inj: Injection, timeout_s: float = 10.0) -> Injection:
        """Wait for the runtime's first ``resume`` after the fault began; fills ``recovered_s``
        (negative: it resumed before the cause was gone — a failure, never counted as fast)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            resumes = [e["t"] for e in self.events()[inj.first_event:] if e["event"] == "resume" and e["t"] >= inj.t_inject]
            if resumes:
                inj.t_resume = resumes[0]
                inj.recovered_s = resumes[0] - inj.t_cause_gone
                return inj
            if self.runtime.poll() is not None:
                break
            time.sleep(0.05)
        return inj

    def stop(self) -> dict:
        """SIGTERM the runtime (it rests the arm and writes its summary), then the others; every
        process is waited for, whatever happened to the one before."""
        for proc, grace in ((self.runtime, 15), (self.player, 5)):
            if proc is None or proc.poll() is not None:
                continue
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.arm is not None:
            self.arm.stop()
        return json.loads(self.summary_path.read_text()) if self.summary_path.is_file() else {}

    def lost_commands(self) -> tuple[int, int]:
        """(decisions not delivered outside the injected episodes, decisions in all)."""
        episodes = [(i.t_inject, (i.t_resume or i.t_cause_gone) + EPISODE_MARGIN_S) for i in self.injections]
        decisions = [e for e in self.events() if e["event"] == "decision"]
        lost = [e for e in decisions if e.get("sent") is False and not any(a <= e["t"] <= b for a, b in episodes)]
        return len(lost), len(decisions)


def rig_bundle(gesture_bundle: Path, session: Path) -> Path:
    """The gesture bundle calibrated to the session's participant (Male1) when ``make bundles`` made
    it (``<bundle>.report/calibrated/Male1``: it recognises their gestures, so commands flow), else
    the base bundle."""
    calibrated = gesture_bundle.parent / f"{gesture_bundle.name}.report" / "calibrated" / session.parent.name
    return calibrated if (calibrated / "manifest.json").is_file() else gesture_bundle


def rig_inputs(ctx) -> tuple[Path, Path]:
    """A gesture bundle (it drives the arm by class, so commands flow all the time) and a real
    Myo test session (../shared/data); FileNotFoundError when either is missing."""
    session, _ = myo_session(ctx)
    ref = ctx.bundle("gesture")
    if ref is None:
        raise FileNotFoundError("the rig needs a gesture bundle (make bundles trains one)")
    return rig_bundle(ref.path, session), session


def run(quick: bool = False, ctx=None) -> dict:
    try:
        bundle, recording = rig_inputs(ctx)
    except FileNotFoundError as exc:
        return {"skipped": str(exc)}
    rig = Rig(bundle, recording, ctx.tmp / "robustness")
    rounds = 1 if quick else 3
    t0 = time.monotonic()
    try:
        rig.start()
        for _ in range(rounds):
            for kind in FAULTS:
                time.sleep(2.0)  # steady state first
                rig.wait_recovered(rig.inject(kind))
        time.sleep(2.0)
    finally:
        summary = rig.stop()
    lost, decisions = rig.lost_commands()
    stream = _stream_time(ctx)
    per_kind = {}
    for kind in FAULTS:
        times, ok = recovery_times(rig.injections, kind)
        per_kind[kind] = {"n": len(times), "recovered": len(ok), "max_s": max(ok, default=None), "times_s": times}
    return {"arm": getattr(rig.arm, "kind", "?"), "bundle": str(bundle), "recording": str(recording),
            "rounds": rounds, "seconds": time.monotonic() - t0, "recovery": per_kind,
            "lost_commands": lost, "decisions": decisions, "faults": summary.get("faults", {}),
            "safe_state_entries": summary.get("safe_state_entries"),
            "commands_sent": summary.get("commands_sent"), "commands_failed": summary.get("commands_failed"),
            "stream_time": stream}


def _stream_time(ctx) -> dict:
    """The stream-time checks (:mod:`benchmarks.stream_time`) with a 500 Hz grasp-lift bundle."""
    from edge.bundle import load_bundle

    ref = ctx.bundle("grasp-lift")
    path = ref.path if ref is not None else REPO / "tests" / "fixtures" / "bundles" / "grasp-lift"
    return stream_time.run(load_bundle(path))


#: Faults with the recovery goal (issue 13: the firmware protecting itself).  A stream drop is
#: reported beside them: its recovery includes liblsl finding the producer again and the pinned
#: source's listening for a second producer of the same identity (LSL_RESOLVE_ALL_S, the spoofing
#: guard), so it is not held to the same second.
GOAL_FAULTS = ("mcu_reset", "watchdog", "estop")


def targets(r: dict) -> list[dict]:
    if "skipped" in r:
        return []
    out = []
    for kind, v in r["recovery"].items():
        if kind not in GOAL_FAULTS:
            continue
        worst = v["max_s"] if v["recovered"] == v["n"] else float("inf")
        out.append({"area": "robustness", "target": f"control resumes after {LABELS[kind]}",
                    "measured": worst, "unit": "s", "goal": RECOVERY_GOAL_S, "op": "<=",
                    "note": f"worst of {v['n']}, cause gone → 'resume', simulated arm ({r['arm']}), "
                            "runtime in its own process"})
    if "stream_time" in r:
        out += stream_time.targets(r["stream_time"])
    out.append({"area": "robustness", "target": "no lost command outside the injected faults",
                "measured": r["lost_commands"], "unit": "commands", "goal": 0, "op": "<=",
                "note": f"of {r['decisions']} decisions"})
    return out


def markdown(r: dict) -> str:
    if "skipped" in r:
        return f"skipped: {r['skipped']}"
    lines = ["| fault | injected | recovered | worst (s) | each (s) |", "|---|---|---|---|---|"]
    for kind, v in r["recovery"].items():
        each = ", ".join("—" if t is None else f"{t:.2f}" for t in v["times_s"])
        worst = "—" if v["max_s"] is None else f"{v['max_s']:.2f}"
        lines.append(f"| {kind} | {v['n']} | {v['recovered']} | {worst} | {each} |")
    lines += ["", ("Recovery: from the moment the cause is gone (the MCU has reset; the frozen runtime runs "
                   "again; after the e-stop switch's release, the deliberate start (SIGUSR1); the new producer "
                   "publishes) to the runtime's "
                   "`resume`. A stream drop's recovery includes liblsl finding the producer again and the "
                   "pinned source listening for a second producer of the same identity "
                   "(`LSL_RESOLVE_ALL_S`), so it has no 1 s goal."),
              "", (f"Simulated arm: {r['arm']}; {r['decisions']} decisions, {r['lost_commands']} lost outside the "
                   f"injected faults; runtime faults {r['faults']}; {r['safe_state_entries']} safe-state entries.")]
    if "stream_time" in r:
        lines += ["", ("**Stream time** (docs/robustness.md § Stream time): a real LSL outlet on loopback that lies "
                      "about its rate or age, the runtime in this process; times from the loop's first chunk."), "",
                  stream_time.markdown(r["stream_time"]).rstrip()]
    return "\n".join(lines) + "\n"


__all__ = ["FAULTS", "Injection", "Rig", "markdown", "rig_inputs", "run", "targets"]
