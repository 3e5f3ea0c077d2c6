"""Who publishes an LSL stream, and whether a stream that appears later is that producer.

LSL has no authentication: any process that reaches this machine can publish a stream with any
name, type and source_id (docs/security.md).  What can be checked without cryptography is checked
here, so that another producer is never adopted silently:

- **Start-up.**  Every stream that matches the spec is listened for (:func:`resolve_all`: liblsl's
  own resolve stops at the first answer); more than one → :class:`SourceError` listing each
  (name, type, source_id, hostname, uid) and the spec that pins one (:func:`choose`).
- **Pinned.**  The adopted stream's :class:`StreamIdentity`: what the producer is (``source_id``,
  ``hostname``) and what it publishes (name, type, channel count and format, rate), plus the
  outlet's ``uid``, which is new each time the producer creates its stream.
- **After a drop** (:class:`Readoption`, in the background): a stream is taken back only if it is
  the same outlet (same uid: the connection broke, not the producer) or the same producer restarted
  (another uid, everything else equal; liblsl's own recovery, which the inlet does not use, would
  take any stream with that name, type and source_id, from any host).  Anything else that matches
  the spec is refused, logged and reported as a :class:`SourceAlarm`; none of its samples is
  delivered, so the source stays stalled and the runtime keeps the arm in its safe state.
  A producer that copies source_id and hostname is indistinguishable: see docs/security.md.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, fields
from urllib.parse import quote

from edge.config import LSL_RESOLVE_ALL_S
from edge.errors import SourceError

log = logging.getLogger(__name__)

#: ``hostname=localhost`` in a spec means this machine: liblsl stamps streams with the machine's name.
LOCALHOST = "localhost"
_SAFE = ":@/!$'()*,;~"  # left readable in a spec value; '&', '=', '%', '+', '#' and spaces are quoted


def pinned_hostname(value: str | None) -> str | None:
    """The host name a spec's ``hostname=`` selects (``localhost``: this machine's own name)."""
    return socket.gethostname() if value == LOCALHOST else value


def pin_spec(name: str, source_id: str, hostname: str, **more) -> str:
    """The ``lsl:`` spec that selects one producer: its stream ``name``, ``source_id`` (if it has one) and
    ``hostname`` (``localhost`` for this machine), then ``more`` options (``timeout=10``).  A producer
    this process starts (``neurogrip demo``'s player) is pinned with it, as a stream found at start-up is
    (:meth:`StreamIdentity.pin_spec`)."""
    host = LOCALHOST if hostname == socket.gethostname() else hostname
    pins = {"name": name, "source_id": source_id, "hostname": host, **{k: str(v) for k, v in more.items()}}
    return "lsl:" + "&".join(f"{k}={quote(v, safe=_SAFE)}" for k, v in pins.items() if v)


@dataclass(frozen=True)
class StreamIdentity:
    """What an LSL stream says about who publishes it.

    Attributes
    ----------
    name, type : str
    source_id, hostname : str
        The producer: the device's or program's own id (empty if it sets none) and the machine it
        runs on; both stay the same when the producer restarts.
    uid : str
        The outlet: a new random id each time the producer creates its stream.
    channel_count, channel_format : int
    nominal_srate : float
    """

    name: str
    type: str
    source_id: str
    hostname: str
    uid: str
    channel_count: int
    channel_format: int
    nominal_srate: float

    @classmethod
    def of(cls, info) -> StreamIdentity:
        """The identity a ``pylsl.StreamInfo`` declares."""
        return cls(info.name(), info.type(), info.source_id(), info.hostname(), info.uid(),
                   info.channel_count(), info.channel_format(), info.nominal_srate())

    def __str__(self) -> str:
        return (f"name {self.name!r}, type {self.type!r}, source_id {self.source_id!r}, "
                f"hostname {self.hostname!r}, uid {self.uid}")

    def pin_spec(self) -> str:
        """The ``lsl:`` spec that selects this producer: name, source_id (if it has one), hostname
        (``localhost`` for this machine)."""
        return pin_spec(self.name, self.source_id, self.hostname)

    def warn_unpinned(self, props: dict, searched: str) -> None:
        """Log what a spec (``props``: the properties it selects by) that does not pin the producer leaves open."""
        if not self.source_id:
            log.warning("LSL stream %r declares no source_id: after a drop any stream named %r from host %r is "
                        "taken back as it; give the producer a source_id (docs/security.md)",
                        self.name, self.name, self.hostname)
        elif "source_id" not in props or "hostname" not in props:
            log.warning("the LSL spec (%s) does not pin the producer; adopted %s, and after a drop only it is "
                        "taken back, but at start-up another producer could have been found first; pin it with "
                        "%s", searched, self, self.pin_spec())

    def differences(self, other: StreamIdentity) -> list[str]:
        """What ``other`` declares differently, the uid aside (empty: the same producer)."""
        return [f"{f.name} {getattr(other, f.name)!r} instead of {getattr(self, f.name)!r}"
                for f in fields(self) if f.name != "uid" and getattr(self, f.name) != getattr(other, f.name)]


@dataclass(frozen=True)
class SourceAlarm:
    """A stream refused in place of the pinned producer.

    ``kind``: ``"impostor"`` (another producer matches the spec), ``"ambiguous"`` (several streams
    claim the producer's identity), ``"changed"`` (the producer came back with other channels or
    units) or ``"search"`` (the background search itself failed); ``detail`` says which stream and why.
    ``"takeover"`` is no refusal: a new outlet with the pinned identity was taken back after a drop
    (a restarted producer, or a copy of its identity), reported so the run's log shows it.
    """

    kind: str
    detail: str

    @classmethod
    def takeover(cls, identity, old_uid: str) -> SourceAlarm:
        """A new outlet with the pinned identity taken back after a drop: a restarted producer and a
        copy that took its identity over look the same (docs/security.md), so the runtime logs it."""
        return cls("takeover", f"after a drop, a new outlet with the pinned identity feeds the stream: {identity} "
                               f"(was uid {old_uid}); if you did not restart the producer, stop and check")


def resolve_all(pylsl, predicate: str, timeout: float) -> list:
    """Every stream matching ``predicate``: wait up to ``timeout`` for one, then listen
    :data:`~edge.config.LSL_RESOLVE_ALL_S` for the others (liblsl's resolve returns at the first
    answer with ``minimum=1``; with ``minimum=0`` it keeps every answer until its timeout)."""
    first = pylsl.resolve_bypred(predicate, 1, timeout)
    if not first:
        return []
    found = {i.uid(): i for i in first}
    for info in pylsl.resolve_bypred(predicate, 0, LSL_RESOLVE_ALL_S):
        found.setdefault(info.uid(), info)
    return list(found.values())


def resolve_one(pylsl, predicate: str, timeout: float, searched: str):
    """The one stream matching ``predicate`` (:func:`resolve_all`), None if none answered within
    ``timeout``; several → :class:`SourceError` (:func:`choose`)."""
    infos = resolve_all(pylsl, predicate, timeout)
    return choose(infos, searched) if infos else None


def choose(infos: list, searched: str):
    """The one stream in ``infos``; several → :class:`SourceError` listing them and how to pin one."""
    if len(infos) == 1:
        return infos[0]
    ids = sorted((StreamIdentity.of(i) for i in infos), key=lambda s: (s.hostname, s.source_id, s.uid))
    pins = [s.pin_spec() for s in ids]
    # No stream is proposed: the order is the streams' own (a host name anyone can choose), and a copy
    # that publishes the same name, source_id and host cannot be told apart from the original at all.
    listing = "; ".join(f"({k}) {s}, pinned by --source '{p}'" if pins.count(p) == 1 else
                        f"({k}) {s}, which no spec tells apart from another one listed (same name, source_id "
                        "and host)" for k, (s, p) in enumerate(zip(ids, pins), 1))
    raise SourceError(f"{len(ids)} LSL streams match {searched} and LSL cannot tell which is the real "
                      f"producer: {listing}; pin the one you started (its source_id and host are on the device "
                      "or program that publishes it), and stop any stream you did not start (docs/security.md)")


class Readoption:
    """Look for the pinned producer in a background thread and connect to it, and to nothing else.

    Parameters
    ----------
    pylsl : module
    predicate : str
        The spec's XPath predicate: every stream it matches is judged against ``pinned``.
    pinned : StreamIdentity
    connect : callable
        ``connect(info) -> (inlet, full_info)``, raising :class:`SourceError` when it cannot.
    check : callable
        ``check(full_info) -> str or None``: why the stream's channels or units cannot be taken.
    alarm : callable
        Called with each :class:`SourceAlarm` (once per refused stream).
    silent : bool
        The inlet was not lost, only silent: if the pinned outlet (its uid) still answers, the search
        ends with nothing to adopt.

    Attributes
    ----------
    found : tuple or None
        ``(inlet, full_info, identity)`` once connected, for the reader to take when ``done`` is set.
    error : SourceError or None
        Set if the search itself failed (the reader raises it: never a silent death).
    """

    def __init__(self, pylsl, predicate: str, pinned: StreamIdentity, connect, check, alarm, *,
                 silent: bool = False):
        self.pylsl, self.predicate, self.pinned = pylsl, predicate, pinned
        self.connect, self.check, self.alarm, self.silent = connect, check, alarm, silent
        self.found: tuple | None = None
        self.error: SourceError | None = None
        self.done = threading.Event()
        self._closing = threading.Event()
        self._refused: set = set()
        self._thread = threading.Thread(target=self._run, name=f"lsl-readopt-{pinned.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop searching; an inlet connected and not taken is closed."""
        self._closing.set()
        if self.done.is_set() and self.found is not None:
            self.found[0].close_stream()
            self.found = None

    def _run(self) -> None:
        try:
            while not self._closing.is_set() and not self._search():
                pass
        except Exception as exc:  # the reader raises it as a SourceError: never a silent death
            log.exception("the search for LSL stream %r failed", self.pinned.name)
            self.error = SourceError(f"the search for the lost LSL stream {self.pinned.name!r} failed "
                                     f"({type(exc).__name__}: {exc}); restart neurogrip")
            self.alarm(SourceAlarm("search", str(self.error)))
        finally:
            if self._closing.is_set() and self.found is not None:
                self.found[0].close_stream()
                self.found = None
            self.done.set()

    def _refuse(self, key, kind: str, detail: str) -> None:
        if key not in self._refused:
            self._refused.add(key)
            log.error("LSL: %s", detail)
            self.alarm(SourceAlarm(kind, detail))

    def _search(self) -> bool:
        """One search (about a second); True when it is over (adopted, or the outlet still there)."""
        infos = resolve_all(self.pylsl, self.predicate, LSL_RESOLVE_ALL_S)
        if self._closing.is_set():
            return True
        ids = [StreamIdentity.of(i) for i in infos]
        if self.silent and any(s.uid == self.pinned.uid for s in ids):
            return True  # its outlet still answers: the producer is only silent, nothing to take back
        mine = []
        for info, s in zip(infos, ids):
            if s.uid in self._refused:  # already refused and reported: not connected to again
                continue
            why = [] if s.uid == self.pinned.uid else self.pinned.differences(s)
            if why:
                self._refuse(s.uid, "impostor", f"refused {s}: it matches the spec but is not the producer "
                                                f"pinned at start ({'; '.join(why)}); the arm stays in its safe state")
            else:
                mine.append((info, s))
        if len(mine) > 1:
            self._refuse(frozenset(s.uid for _, s in mine), "ambiguous",
                         f"{len(mine)} streams claim to be the pinned producer ({'; '.join(str(s) for _, s in mine)}); "
                         "none is taken back until only one is left")
            return False
        if not mine:
            return False
        info, s = mine[0]
        try:
            inlet, full = self.connect(info)
        except SourceError as exc:
            log.warning("%s", exc)
            return False
        got = StreamIdentity.of(full)
        why = [f"uid {got.uid} answered instead of {s.uid}"] if got.uid != s.uid else self.pinned.differences(got)
        why = "; ".join(why) or self.check(full)
        if why:
            inlet.close_stream()
            self._refuse(got.uid, "changed", f"refused {got}: {why}")
            return False
        self.found = (inlet, full, got)
        return True
