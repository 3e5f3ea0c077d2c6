"""The numbers that define the edge's behaviour, in one place (docs/design.md § 3).

Rates, window lengths, labels and thresholds belong to a *task* and travel in the bundle's
manifest (:mod:`edge.tasks`, :mod:`edge.bundle`).  What is here belongs to the machine that
runs the edge: how long a stream may be silent, how late a command may be, how sources read.
Every default of the command line, the runtime and the sources comes from this module, so a
number is changed once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from edge._checks import check_int, check_positive
from firmware_bridge.config import DEFAULT_COMMAND_MAX_AGE_S

# -- sources (edge.sources) ------------------------------------------------------------------
RESOLVE_TIMEOUT_S = 5.0    # lsl: how long to look for the stream at start
STALL_TIMEOUT_S = 0.1      # no sample this long → the source reports a stall (safe state by 0.25 s)
DROP_TOLERANCE = 1.5       # nominal periods; a larger timestamp step means samples were lost
REPLAY_CHUNK_S = 0.02      # replay chunk: 20 ms of samples (10 at 500 Hz)
LSL_MAX_CHUNK = 1024       # samples returned by one LSL read at most (the rest comes next read)
LSL_BUFLEN_S = 10          # s of data liblsl keeps for us if we fall behind (older samples are dropped)
PLAYER_MAX_GAP_S = 0.05    # the player's pause for a gap in a recording (below the stall timeout)

# -- the arm's safe state (edge.runtime) -----------------------------------------------------
REST_TARGET_DDEG = 0       # REST's target is the firmware's own safe pose; the field is ignored
REST_SPEED_DDEG_S = 900
REST_DEADLINE_S = 0.2      # one REST attempt may take this long (ACK round trips with retries)
REST_RETRY_S = 0.1         # an unacknowledged REST is retried this often
FAULT_LOG_INTERVAL_S = 1.0  # a fault kind is logged at most this often (counted every time)


@dataclass
class RuntimeConfig:
    """Numbers that define the runtime loop's behaviour (defaults from docs/design.md § 3).

    Attributes
    ----------
    budget_ms : float
        Per-decision processing budget (chunk received → command sent).
    safe_after_ms : float
        Stream silent this long → arm to its safe pose.  200 ms leaves the loop's read timeout
        and the REST round trip inside the design's 250 ms.
    overload_limit : int
        Consecutive deadline misses that count as sustained overload → safe state.
    read_timeout_s : float
        Longest wait for a chunk in one loop turn (bounds the reaction to a stall).
    command_max_age_ms : float
        A command not sent within this time of its window's arrival is dropped (the link's
        own default, :data:`firmware_bridge.config.DEFAULT_COMMAND_MAX_AGE_S`).
    """

    budget_ms: float = 10.0
    safe_after_ms: float = 200.0
    overload_limit: int = 5
    read_timeout_s: float = 0.01
    command_max_age_ms: float = DEFAULT_COMMAND_MAX_AGE_S * 1000.0

    def __post_init__(self):
        for f in fields(self):
            if f.name == "overload_limit":
                self.overload_limit = check_int(self.overload_limit, "overload_limit", lo=1)
            else:
                setattr(self, f.name, check_positive(getattr(self, f.name), f.name))
