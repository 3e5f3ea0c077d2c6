"""The numbers that define the edge's behaviour, in one place (docs/design.md § 3).

Rates, window lengths, labels and thresholds belong to a *task* and travel in the bundle's
manifest (:mod:`edge.tasks`, :mod:`edge.bundle`).  What is here belongs to the machine that
runs the edge: how long a stream may be silent, how late a command may be, how sources read.
Every default of the command line, the runtime and the sources comes from this module, so a
number is changed once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from edge._checks import check_int, check_number, check_positive
from firmware_bridge.config import DEFAULT_COMMAND_MAX_AGE_S

# -- sources (edge.sources) ------------------------------------------------------------------
RESOLVE_TIMEOUT_S = 5.0    # lsl: how long to look for the stream at start
STALL_TIMEOUT_S = 0.1      # no sample this long → the source reports a stall (safe state by 0.25 s)
DROP_TOLERANCE = 1.5       # nominal periods; a larger timestamp step means samples were lost
REPLAY_CHUNK_S = 0.02      # replay chunk: 20 ms of samples (10 at 500 Hz)
LSL_MAX_CHUNK = 1024       # samples returned by one LSL read at most (the rest comes next read)
LSL_BUFLEN_S = 10          # s of data liblsl keeps for us if we fall behind (older samples are dropped)
# lsl, who the producer is (edge/sources/lsl_identity.py, docs/security.md): liblsl's resolve returns at
# the first stream that answers, so every other match is listened for this long (two resolve waves).
LSL_RESOLVE_ALL_S = 1.0
LSL_SILENT_CHECK_S = 5.0   # a connected stream silent this long: check that its outlet still exists
LSL_CONFIG_MAX_BYTES = 64 << 10  # an lsl_api.cfg neurogrip reads to add its settings to
PLAYER_MAX_GAP_S = 0.05    # the player's pause for a gap in a recording (below the stall timeout)
# brainflow: most boards stamp samples on arrival here, in bursts (a USB-serial read, a BLE packet of
# 12 Muse samples), so a chunk counts as late only beyond a few periods (edge/sources/boards.py).
BRAINFLOW_DROP_TOLERANCE = 3.0  # nominal periods a chunk may fall behind before samples count as missing
BRAINFLOW_BUFFER_S = 60    # s of samples BrainFlow's ring buffer keeps for us (older ones are overwritten)
BRAINFLOW_POLL_S = 0.002   # read(timeout) polls BrainFlow's buffer this often (BrainFlow has no blocking read)
# arm: the arm's microcontroller as the front end (edge/sources/arm.py, arm_clock.py).  Its scan index is
# mapped to this machine's clock by the lowest-latency line through (index, arrival) over a sliding
# window, kept as the minimum of each bucket (a refit per bucket, not per frame).
ARM_RATE_HZ = 200          # default rate: 8 inputs at 200 Hz is the Myo armband's shape (the gesture bundles)
ARM_MAX_CHUNK_S = 0.1      # one read() joins at most this much of the stream's queued frames
ARM_CLOCK_WINDOW_S = 20.0  # the fit's window (an Uno's resonator drifts with temperature over minutes)
ARM_CLOCK_BUCKET_S = 0.05  # one candidate point (the earliest arrival) per this much of the stream
ARM_CLOCK_MIN_SPAN_S = 2.0  # below this span the slope is the nominal one (or the last fitted): too short to fit
ARM_CLOCK_TOLERANCE = 0.01  # the MCU's clock is trusted within ±1 % of nominal (an Uno's: ±0.5 %); beyond,
#                            the runtime's rate check sees it (edge/runtime/rate.py)
ARM_CLOCK_SLEW = 0.1       # a stamp moves at most this fraction of a period per sample towards a new fit

# A live stream's time is checked on every chunk, from the first (edge/runtime/rate.py,
# docs/robustness.md § Stream time): its newest sample's age (where the stamps are on a clock this
# machine reads), or how far it falls behind / runs ahead of its own freshest chunk.  The age limit
# is the safe-state time of docs/design.md §3: data older than that cannot make a timely command, and
# a Bluetooth headset's chunking and jitter (tens of ms) stay well inside it.
# The arm's state is known only from its STATUS replies (each heartbeat's, every 50 ms): none valid for
# this long (a peer answering malformed replies, heartbeats unanswered) → an "arm" fault and a hold.
# Longer than a stall the runtime itself may have (the bench freezes it 0.6 s) so that is no fault.
ARM_STATUS_MAX_AGE_S = 1.0
STREAM_MAX_AGE_S = 0.25      # data older (or stamps further ahead) are never decided on
STREAM_BEHIND_HOLD_S = 0.3   # behind this long → an "age"/"rate" fault and REST (detected in <= 1 s at 0.5x)
STREAM_CLEAR_S = 0.8         # a stream that ran ahead must run at its declared rate this long to resume
RATE_TOLERANCE = 0.1         # |stream clock / arrival clock - 1| that counts as a wrong rate
RATE_WINDOW_S = 2.0          # the delivered rate (messages, the release of a rate hold) is measured over this
STREAM_DRIFT = 1e-3          # relative check: clocks may drift apart this much (s/s; devices: ~1e-4)
STREAM_FOREIGN_CLOCK_S = 60.0  # a stamp this far from LSL's clock is on another clock, not late
STREAM_SETTLE_S = 1.0        # relative check: the start follows fresher chunks this long (a backlog start)
# A decision policy's times (min_dwell_ms, refractory_ms) count as met when they lack less than this: a live
# stream's stamps jitter by fractions of a millisecond (the arm's fitted clock, LSL's dejittering) where a
# replay's are exact multiples of the sample period, so a dwell of k window strides must end at the k-th window
# on both (edge/decision/decider.py).  Strides are >= 25 ms: no replayed decision moves by a window.
DECISION_TIME_SLACK_MS = 1.0
# The multi-class "accumulate" decision filter's defaults (edge/decision/evidence.py): it commits a class once
# its evidence (per window, its log-probability over its strongest competitor's, each floored at evidence_floor,
# decaying with time constant leak_ms; 0 = no leak) reaches commit_nats, which one window must never reach.
# The values chosen on the 19 development participants at a 25 ms stride (tools/gesture-dev-cv --policies;
# docs/design.md § 7); not what calibration writes (CALIBRATION_EMG_DECISION keeps the vote filter).
DECISION_ACCUMULATE = {"commit_nats": 25.0, "evidence_floor": 0.0001, "leak_ms": 100.0}

# The JSON-lines log (`neurogrip run --log`): about 60 MB a day at 20 decisions/s, so it rotates by size
# (edge/runtime/outputs.py): at most LOG_MAX_BYTES per file, LOG_BACKUPS older files (FILE.1 ...).
# The console goes to journald under systemd, which caps its own size (SystemMaxUse=).
LOG_MAX_BYTES = 50 << 20
LOG_BACKUPS = 3
LOG_RETRY_S = 5.0  # a log that cannot be written (full card) is opened again this often

# glibc gives each new thread its own malloc arena (up to 8 per core) and keeps their memory: every
# LSL re-connection (liblsl starts new threads) grew the runtime by 50-480 KB that never came back.
# With two arenas the threads' arena still fragmented: its top grew by 500, 170, 80, 40 ... KB over
# ten producer restarts in a row (/proc/PID/smaps), +15 KB/min in the 30-minute soak.  With one,
# liblsl's threads allocate from the main heap, whose free space absorbs it: after the first restart
# the growth is 0-32 KB per restart, +3 KB/min (docs/soak.md).  liblsl's native threads and the
# serial reads do not hold the GIL, so they now share the main arena's lock with the loop; the bench
# saw no cost beyond its noise (sample -> command p99 6.4 and 6.6 ms after, 8.9 ms before; docs/bench.md).
# edge/runtime/serve.py sets this with mallopt before any source opens.
MALLOC_ARENAS = 1

# The stages a window's latency is split into, in the order they run (the run report, the live view
# and the bench name them alike; docs/design.md § 1).
STAGES = ("acquire", "filter", "infer", "decide", "send")

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
    stream_speed : float
        A live stream is expected to deliver its declared rate times this (1: a device; 4: a
        recording played 4x faster by ``neurogrip stream --speed 4``); 0: played as fast as
        possible: neither its rate nor the age of its data is checked (:mod:`edge.runtime.rate`).
    """

    budget_ms: float = 10.0
    safe_after_ms: float = 200.0
    overload_limit: int = 5
    read_timeout_s: float = 0.01
    command_max_age_ms: float = DEFAULT_COMMAND_MAX_AGE_S * 1000.0
    stream_speed: float = 1.0

    def __post_init__(self):
        for f in fields(self):
            if f.name == "overload_limit":
                self.overload_limit = check_int(self.overload_limit, "overload_limit", lo=1)
            elif f.name == "stream_speed":
                self.stream_speed = check_number(self.stream_speed, "stream_speed", lo=0.0)
            else:
                setattr(self, f.name, check_positive(getattr(self, f.name), f.name))


# -- bundle signatures (edge.bundle.trust, docs/bundle-signing.md) ----------------------------------
# The public keys (*.pub) of the signers this machine trusts.  When this directory holds a key,
# load_bundle refuses unsigned bundles and bundles signed by any other key.  The environment
# variable NEUROGRIP_TRUSTED_KEYS names another directory (read at call time, like the bounds).
TRUSTED_KEYS_DIR = "/etc/neurogrip/trusted-keys"
# This Pi's own key pair (edge.bundle.device_trust): calibrate signs with the private key; the public key in
# DEVICE_KEYS_DIR is trusted only for bundles whose workstation-signed root they carry.
# NEUROGRIP_DEVICE_KEY and NEUROGRIP_DEVICE_KEYS name others.
DEVICE_KEY_FILE = "/etc/neurogrip/device-key/device.pem"
DEVICE_KEYS_DIR = "/etc/neurogrip/device-keys"
# The bundle the service runs: a symlink into BUNDLE_LINK + "s" (edge/bundle/installed.py), switched atomically by
# `neurogrip install-bundle` / `calibrate --install`; NEUROGRIP_BUNDLE_LINK names another.
BUNDLE_LINK = "/opt/neurogrip/bundle"


# -- bounds (edge.bundle, edge.bundle.schema, edge.recordings) ----------------------------------
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
BUNDLE_MAX_SIGNATURE_BYTES = 4 << 10  # signature.json (edge.bundle.trust writes ~400 bytes)
TRUSTED_KEY_MAX_BYTES = 4 << 10        # one public key file of the trust store (a PEM key is 113 bytes)
TRUST_STORE_MAX_ENTRIES = 256          # entries of the trust store directory that are looked at
MODEL_PROBE_TIMEOUT_S = 10.0           # an untrusted model is loaded and run once in a child process first
MODEL_PROBE_MAX_MEMORY = 1 << 30       # that child's address-space limit (a 60 KB model peaks near 130 MB)
RECORDING_MAX_BYTES = 512 << 20        # a recording file, after decompression (a Kaggle series is ~40 MB)
RECORDING_MAX_HEADER_BYTES = 1 << 20   # a CSV header line
RECORDING_MAX_LINE_BYTES = 1 << 20     # any other CSV line (tables are parsed in blocks of whole lines)
RECORDING_MAX_COLUMNS = 4096           # CSV columns (emotions.csv has 2549)
RECORDING_MAX_DIR_ENTRIES = 100_000    # entries of one folder listed by a reader (Myo sessions)
ERROR_QUOTE_CHARS = 200                # an error message quotes at most this much of the bad input
# XDF, EDF and BDF files are read whole and their values become float64 (2-4x the file), so
# they are capped below RECORDING_MAX_BYTES (an hour of 16 channels at 500 Hz is ~130 MB of float32 XDF).
RECORDING_MAX_XDF_BYTES = 256 << 20    # an .xdf file (pyxdf keeps all of it in memory)
RECORDING_MAX_XDF_XML_BYTES = 1 << 20  # one XML chunk (file/stream header, footer) of an .xdf file
RECORDING_MAX_XDF_STREAMS = 256        # streams declared in one .xdf file
RECORDING_MAX_XDF_XML_DEPTH = 32       # nesting of an .xdf file's XML meta-data (pyxdf converts it recursively)
RECORDING_MAX_EDF_BYTES = 256 << 20    # an .edf/.bdf file
RECORDING_MAX_EDF_SIGNALS = 1024       # signals declared in an EDF/BDF header (ns; the format allows 9999)

# -- writing recordings (edge.recordings.xdf_writer, `neurogrip record`) ----------------------
RECORD_FSYNC_EVERY_S = 1.0             # written chunks reach the disk at least this often (a power cut loses <= this)
XDF_BOUNDARY_EVERY_S = 10.0            # a Boundary chunk this often, as LabRecorder writes (a reader resumes there)


# -- on-device calibration (edge/calibration, docs/design.md §7)
CALIBRATION_MIN_VALID = 0.9  # a session with more than 10 % NaN/inf rows is refused (electrodes off)
CALIBRATION_HOLDOUT = 0.25  # the last quarter of each session file judges base vs calibrated
CALIBRATION_INNER = 0.25    # of the rest, the last quarter chooses the penalty and the normalisation
CALIBRATION_PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # pull towards the base head (standardised features)
# EMG: the shrinkage LDA on the int8 window's log time-domain features fused with the re-fitted layer
# (docs/design.md § 7), over these window tails (ms; None: the whole window; () : no LDA expert); a
# step of one int8 input step counts as a zero crossing or slope change.  Chosen on the development
# participants (tools/gesture-dev-cv), never on the evaluation participants.
CALIBRATION_TD_TAILS_MS = (None,)
CALIBRATION_TD_THRESHOLD = 1.0
# ... and the window stride (ms; None: the base's) and decision parameters (None: the base's) such a
# calibrated EMG bundle gets, chosen on the development participants by the gesture objective
# (training.gesture.OBJECTIVE; tools/gesture-dev-cv --policies; docs/design.md § 7): a decision
# every 25 ms instead of 50 took 30 ms off the delay at no cost in wrong commands
CALIBRATION_EMG_STRIDE_MS = 25.0
CALIBRATION_EMG_DECISION = {"reject_below": 0.9, "vote": 2, "min_dwell_ms": 100.0, "refractory_ms": 0.0}
CALIBRATION_REFIT_ALL = True  # once judged on the held-out block, refit on every window of the session
CALIBRATION_GUARD_S = 1.0   # filter memory kept clear of the held-out block before a calibration window
EVENT_HALF_WIDTH_S = 0.15   # an event label is 1 within ±150 ms of its cue (the Kaggle grasp-lift convention)
CALIBRATION_MIN_WINDOWS = 40  # per part, and per class for one-class-at-a-time tasks: fewer is refused
# Calibration's memory (issue 24: the edge's 120 MB hold for it too; edge/calibration/session.py
# reads one file at a time, docs/robustness.md "Calibration's memory").
# Values: rows x columns of ONE file read whole (and of a Kaggle events file), counted from sizes
# or lines before it is read (a reader holds a file whole: 8-13 bytes per value; 4 M: a 4-minute
# 32-channel XDF, ~96 MB in calibrate).  A larger XDF, EDF/BDF file, Myo folder or CSV file (grasp-lift,
# Muse, GAMEEMO) is read in blocks from the file instead, up to its reader's own cap (82-103 MB for
# the longest one file may be; RECORDING_MAX_BYTES for a CSV file).  Nor does it bound a session of
# many files.
# Windows: n x length x channels x 4 bytes of the whole session (16 MB: 2.1 min of 32-channel EEG
# at 500 Hz, 8.4 min of Myo EMG at calibration's own stride).  Fitting holds 3-4 times that at its
# peak (94-110 MB at this cap).  A longer session is not refused: the same share of each label's
# windows is kept, evenly over the session; as kept windows share fewer rows, fewer are kept (their
# windows and signal within what the cap's take, 0.56-0.62 of them), on average at most
# CALIBRATION_MAX_STRIDE_WINDOWS window lengths apart (2: every cue lasting two windows keeps one;
# 11 min of that EEG, 52 min of Myo EMG); only a longer session is refused.  With 2 and MAX_VALUES
# <= MAX_WINDOW_BYTES / 4, no file read whole is too long; one read in blocks may be (refused first).
CALIBRATION_MAX_VALUES = 4_000_000
CALIBRATION_MAX_WINDOW_BYTES = 16 << 20
CALIBRATION_MAX_STRIDE_WINDOWS = 2.0


# -- the live view (edge/view, docs/live-view.md; `run`/`record --view [ADDR:]PORT`) -----------------
# Served by the runtime's own process, off the loop's thread: the loop hands over a frame at most
# VIEW_UPDATE_HZ times a second (never waiting: a bounded deque, the oldest dropped), a view thread
# turns frames into one snapshot, and each client gets the newest snapshot when it is ready for one.
VIEW_HOST = "127.0.0.1"          # bound here unless an address is named: the health data stay on the Pi
VIEW_UPDATE_HZ = 10.0            # snapshots a second (the ceiling is 20: VIEW_MAX_UPDATE_HZ)
VIEW_MAX_UPDATE_HZ = 20.0
VIEW_SIGNAL_S = 5.0              # seconds of signal drawn per channel
VIEW_SIGNAL_HZ = 50.0            # the signal's display rate (decimated by picking; ≤ the stream's rate)
VIEW_QUALITY_S = 1.0             # raw signal judged for the quality marks, once this often
VIEW_MAINS_CAPTURE_S = 1.0       # raw samples captured for the rail and mains marks (1 s: 1 Hz spectral lines)
VIEW_MAINS_BAND_HZ = 2.0         # ... "mains" is power within this of 50 or 60 Hz: the Hann window's main lobe
                                 # (±2 lines) at a 1 s capture; a shorter capture is not judged for mains
VIEW_MAINS_FRACTION = 0.5        # power within ±VIEW_MAINS_BAND_HZ of 50 or 60 Hz above this fraction: mains
VIEW_OUTPUT_POINTS = 400         # model outputs kept (~20 s at a decision every 48 ms)
VIEW_DECISIONS = 40              # decision lines kept (a repeat of the last one is counted in place)
VIEW_LATENCY_S = 60.0            # per-stage p50/p99 over the latest minute ...
VIEW_LATENCY_MAX = 4096          # ... and at most this many windows
VIEW_LATENCY_EVERY_S = 1.0       # ... recomputed at most this often
VIEW_FRAME_BACKLOG = 32          # frames handed over but not yet taken by the view (oldest dropped)
VIEW_WINDOWS_PER_FRAME = 256     # windows (outputs, stage times) per frame at most (a fast replay drops some)
VIEW_MAX_CLIENTS = 8             # event streams at once; more are refused (503)
VIEW_MAX_CONNECTIONS = 32        # connections (threads) at once, any request; more are closed unanswered
VIEW_MAX_PER_CLIENT = 4          # ... of them from one address until it holds an event stream (one request each)
VIEW_SEND_TIMEOUT_S = 5.0        # a client that takes no bytes this long is disconnected
VIEW_KEEPALIVE_S = 15.0          # a comment line this often when nothing new (proxies keep the stream)
VIEW_REQUEST_TIMEOUT_S = 10.0    # a deadline, not a per-read timeout: a request's whole header (and its small
                                 # body) must have arrived this long after its connection was taken, or it is closed
VIEW_MAX_HEADER_BYTES = 8192     # a request's line and header fields together, read before anything is parsed;
VIEW_MAX_HEADER_LINES = 32       # ... more bytes or lines: 431 and the connection closed
VIEW_MAX_BODY_BYTES = 4096       # a POST's body (the buttons take none): more → 400
VIEW_SSE_RETRY_MS = 2000         # the event stream's reconnection delay, told to the browser
VIEW_RETRY_AFTER_S = 5           # Retry-After of a 503 (every event stream taken)
VIEW_STALE_S = 3.0               # the page says "no update for N s" after this long without one
VIEW_LAST_UPDATE_S = 0.5         # record --view: time the session's last update gets to reach the page
VIEW_TOKEN_BYTES = 16            # random bytes of the access token (printed with the URL at start-up)
VIEW_TOKEN_ENV = "NEUROGRIP_VIEW_TOKEN"  # a fixed token instead (>= VIEW_TOKEN_MIN_CHARS): a bookmark survives restarts
VIEW_TOKEN_MIN_CHARS = 22
