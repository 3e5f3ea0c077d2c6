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
# A channel whose filtered window spans at most this (in the bundle's units) is flat: no signal.
# Real EEG spans microvolts in 200 ms and the Myo's EMG whole counts at rest; the chain resolves 6e-5.
FLAT_PTP = 1e-3


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


# -- bounds (edge.bundle, edge.manifest_schema, edge.recordings) ----------------------------------
# Every read of a file that comes from outside is bounded before it is made: sizes are checked
# (stat, the archive's directory) and the read itself stops at the bound, so a zip bomb, a
# symlink to a huge file or a 10-million-column header is refused after reading at most the bound.
# Read at call time (``config.NAME``), so tests may patch a bound down.
BUNDLE_MAX_MANIFEST_BYTES = 1 << 20    # manifest.json (the fixture manifests are 4-7 KB)
BUNDLE_MAX_MODEL_BYTES = 16 << 20      # model.tflite (design goal: a whole bundle <= 256 KB)
BUNDLE_MAX_ARCHIVE_BYTES = 24 << 20    # a bundle .zip, before it is opened
BUNDLE_MAX_MEMBERS = 16                # entries in a bundle .zip (write_bundle writes 2)
BUNDLE_MAX_ZIP_DIRECTORY_BYTES = 64 << 10  # the .zip's central directory, checked before zipfile parses it
BUNDLE_READ_CHUNK_BYTES = 64 << 10     # bounded reads go in chunks of this size
MANIFEST_MAX_DEPTH = 32                # JSON nesting of the manifest
MANIFEST_MAX_STRING = 256              # characters of a name or enum string the edge uses
MANIFEST_MAX_FREE_STRING = 4096        # characters of any other string (metrics, provenance)
MANIFEST_MAX_FREE_BYTES = 256 << 10    # each free-form section (metrics, provenance, design), as JSON
MANIFEST_MAX_CHANNELS = 1024
MANIFEST_MAX_LABELS = 256
MANIFEST_MAX_SECTIONS = 64             # biquad sections of the filter chain
MANIFEST_MAX_WINDOW = 100_000          # window length and stride, samples
MANIFEST_MAX_WINDOW_VALUES = 1 << 22   # window length x channels (the buffers and the model input)
MANIFEST_MAX_FS = 1e6                  # Hz
MANIFEST_MAX_FACTOR = 1024             # decimation factor
MODEL_PROBE_TIMEOUT_S = 10.0           # an untrusted model is loaded and run once in a child process first
MODEL_PROBE_MAX_MEMORY = 1 << 30       # that child's address-space limit (a 60 KB model peaks near 130 MB)
RECORDING_MAX_BYTES = 512 << 20        # a recording file, after decompression (a Kaggle series is ~40 MB)
RECORDING_MAX_HEADER_BYTES = 1 << 20   # a CSV header line
RECORDING_MAX_COLUMNS = 4096           # CSV columns (emotions.csv has 2549)
RECORDING_MAX_DIR_ENTRIES = 100_000    # entries of one folder listed by a reader (Myo sessions)
ERROR_QUOTE_CHARS = 200                # an error message quotes at most this much of the bad input
