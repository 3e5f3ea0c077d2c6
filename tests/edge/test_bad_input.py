"""Bad input, on purpose: malformed bundles and recordings end in a typed error or load and work.

Every case ends in an ``EdgeError`` (``BundleError``, ``RecordingError``) or loads successfully
and is then used (chain, windows, model input, model, decision policy): no other exception type,
no traceback, no crash, no hang, no unbounded read.  The cases are generated from the fixture
bundles in ``tests/fixtures/bundles`` and from small recordings written here:

* manifests: every field the edge uses set to a wrong type, NaN, ±inf, zero, negative and huge
  values, plus textual damage (truncation, duplicate keys, ``1e400``, deep nesting, size);
* models: truncated and bit-flipped flatbuffers with ``model.sha256`` and ``content_hash``
  recomputed, so the damage reaches the interpreter.  tflite-runtime does not verify flatbuffers
  and can segfault on them, so each case runs in a child process: a crash fails the case instead
  of killing pytest.  ``python -m tests.edge.test_bad_input`` counts crashes with and without
  the loader's model probe (:func:`edge.bundle.probe_model`);
* archives: zip bombs (with the bounds patched down to stay fast), symlinks, path traversal,
  duplicate and too many members, zip64; directories with links, FIFOs, oversized files;
* recordings: grasp-lift, Muse, GAMEEMO, emotions.csv and Myo files with wrong, huge or binary
  headers, NaN, huge cells, truncated or corrupt gzip, bombs, FIFOs.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edge import config
from edge.bundle import content_hash, load_bundle, write_bundle
from edge.errors import BundleError, EdgeError, RecordingError
from edge.recordings import (
    GAMEEMO_CHANNELS,
    GRASP_LIFT_CHANNELS,
    GRASP_LIFT_EVENTS,
    MUSE_COLUMNS,
    read_emotions_table,
    read_gameemo,
    read_grasp_lift,
    read_muse,
    read_myo,
    read_myo_file,
    read_myo_session,
    read_recording,
)
from tests.conftest import FIXTURE_BUNDLES, REPO

BUNDLES = ("grasp-lift", "emotion", "gesture")
MAX_MESSAGE = 2000  # no error message quotes the bad input at length


@functools.cache
def _fixture(name: str) -> tuple[str, bytes]:
    path = FIXTURE_BUNDLES / name
    return (path / "manifest.json").read_text(), (path / "model.tflite").read_bytes()


def _manifest(name: str) -> dict:
    return json.loads(_fixture(name)[0])


def _seal(m, model: bytes, model_fields: bool = True):
    """Recompute model.bytes, model.sha256 (unless told not to) and content_hash where the damage
    leaves them a place."""
    import hashlib

    if isinstance(m, dict):
        if model_fields and isinstance(m.get("model"), dict):
            m["model"].update(bytes=len(model), sha256=hashlib.sha256(model).hexdigest())
        m["content_hash"] = content_hash(m, model)
    return m


def _write_dir(tmp_path: Path, manifest: bytes | str, model: bytes, name: str = "b") -> Path:
    out = tmp_path / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_bytes(manifest.encode() if isinstance(manifest, str) else manifest)
    (out / "model.tflite").write_bytes(model)
    return out


def _check_message(err: Exception) -> None:
    assert isinstance(err, EdgeError), f"{type(err).__name__}: {err}"
    assert len(str(err)) < MAX_MESSAGE, f"a {len(str(err))}-character message: {str(err)[:300]}"


def _use(bundle) -> None:
    """A bundle that loaded must work: one chunk through chain, windows, model input, model, policy."""
    from edge.decision import Decider

    assert math.isfinite(bundle.fs) and bundle.fs > 0
    chain, buf, stage = bundle.signal_chain(), bundle.window_buffer(), bundle.model_input_stage()
    policy, model = bundle.decision_policy(), bundle.model()
    n = (bundle.window["length"] + bundle.window["stride"]) * chain.factor
    x = np.random.default_rng(0).normal(0, 20, (n, len(bundle.channels)))
    y = chain.process_valid(x)
    assert y is not None and np.isfinite(y).all()
    windows, _ = buf.process(y)
    assert len(windows)
    probs = model.run_batch_int8(stage.process(windows))
    assert probs.shape == (len(windows), len(bundle.labels))
    decider = Decider(policy)
    assert decider is not None


def _load_outcome(path: Path, check_model: bool = True) -> str:
    """'ok' (loaded and used) or 'refused' (a BundleError, checked); anything else fails the test."""
    try:
        bundle = load_bundle(path, check_model=check_model)
    except BundleError as err:
        _check_message(err)
        return f"refused: {err.problem}"
    _use(bundle)
    return "ok"


# --------------------------------------------------------------------------- manifest fields

NAN, INF = float("nan"), float("inf")
BAD_VALUES = {"nan": NAN, "inf": INF, "-inf": -INF, "str": "x", "list": [], "dict": {}, "true": True, "null": None,
              "zero": 0, "neg": -1, "frac": 2.5, "huge": 1e308, "bigint": 10**30}
NON_FINITE = ("nan", "inf", "-inf")

# (bundle, dotted path with [i] indices) for every field the edge uses, in each kind of bundle.
FIELDS = [
    *[("grasp-lift", p) for p in (
        "schema", "schema_version", "task", "signal", "signal.channels", "signal.channels[0]", "signal.fs",
        "signal.units", "signal.chain", "signal.chain.fs", "signal.chain.factor", "signal.chain.fs_out",
        "signal.chain.lowpass_hz", "signal.chain.filter", "signal.chain.filter.format",
        "signal.chain.filter.coef_frac_bits", "signal.chain.filter.state_frac_bits",
        "signal.chain.filter.input_frac_bits", "signal.chain.filter.sections", "signal.chain.filter.sections[0]",
        "signal.chain.filter.sections[0].c", "signal.chain.filter.sections[0].c[0]",
        "signal.chain.filter.sections[0].pre_shift", "signal.chain.filter.sections[0].fb_shift",
        "window", "window.length", "window.stride", "window.channel_scale", "window.channel_scale[3]",
        "window.clip", "window.normalisation", "model", "model.file", "model.activation", "model.input",
        "model.input.shape", "model.input.shape[1]", "model.input.dtype", "model.input.scale",
        "model.input.zero_point", "model.output.shape", "model.output.scale", "model.output.zero_point",
        "labels", "labels[0]", "decision", "decision.mode", "decision.thresholds", "decision.thresholds[0]",
        "decision.hysteresis", "decision.min_dwell_ms", "decision.refractory_ms", "decision.vote",
        "decision.commands", "decision.targets", "decision.targets.OPEN", "metrics", "provenance")],
    *[("emotion", p) for p in (
        "window.features", "window.features.kind", "window.features.fs", "window.features.bands",
        "window.features.bands[0]", "window.features.bands[0][1]", "window.features.center",
        "window.features.center[0]", "window.features.scale[0]", "window.features.clip", "decision.reject_below",
        "decision.commands", "decision.moves_arm")],
    *[("gesture", p) for p in (
        "signal.fs", "signal.chain.lowpass_hz", "decision.moves_arm", "decision.commands.hand_open",
        "decision.objective", "labels[6]", "window.channel_scale[7]")],
]


def _set(doc, path: str, value) -> None:
    keys = []
    for part in path.replace("]", "").split("."):
        name, *idx = part.split("[")
        keys.append(name)
        keys.extend(int(i) for i in idx)
    for key in keys[:-1]:
        doc = doc[key]
    doc[keys[-1]] = value


@pytest.mark.parametrize("bundle, path", FIELDS, ids=[f"{b}:{p}" for b, p in FIELDS])
def test_every_field_with_every_bad_value(tmp_path, bundle, path):
    model = _fixture(bundle)[1]
    outcomes = {}
    for label, value in BAD_VALUES.items():
        m = _manifest(bundle)
        _set(m, path, value)
        out = _write_dir(tmp_path, json.dumps(_seal(m, model)), model, label)
        outcomes[label] = _load_outcome(out)
    leaf = path.rsplit(".", 1)[-1].split("[")[0]
    for label in NON_FINITE:  # never accepted, and the message names the field
        assert outcomes[label].startswith("refused") and leaf in outcomes[label], (label, outcomes[label])
    # Exercised: the cases of one field do not all end in the same message (each value is judged).
    assert any(o.startswith("refused") for o in outcomes.values())


@pytest.mark.parametrize("value, match", [
    (NAN, r"signal.fs must be a finite number > 0.*got nan"),
    (INF, r"signal.fs must be a finite number > 0.*got inf"),
    ("500", r"signal.fs must be a finite number > 0.*got '500'"),
    (250.0, r"signal.chain.fs 500 differs from signal.fs 250"),
    (True, r"signal.fs must be a finite number"),
])
def test_the_rate_check_cannot_be_dodged(tmp_path, value, match):
    """The review's case: fs = NaN passed the runtime's rate check and a 500 Hz model ran on 250 Hz."""
    m, model = _manifest("grasp-lift"), _fixture("grasp-lift")[1]
    m["signal"]["fs"] = value
    with pytest.raises(BundleError, match=match):
        load_bundle(_write_dir(tmp_path, json.dumps(_seal(m, model)), model))


def test_a_bundle_is_usable_after_the_checks():
    for name in BUNDLES:
        _use(load_bundle(FIXTURE_BUNDLES / name))


STRUCTURAL = {
    "2000 channels": lambda m: (m["signal"].update(channels=[f"c{i}" for i in range(2000)]),
                                m["window"].update(channel_scale=[1.0] * 2000)),
    "channel name of 10k chars": lambda m: m["signal"]["channels"].__setitem__(0, "x" * 10_000),
    "units of 100k chars": lambda m: m["signal"].update(units="u" * 100_000),
    "window length 10**6": lambda m: (m["window"].update(length=10**6),
                                      m["model"]["input"]["shape"].__setitem__(1, 10**6)),
    "window length x channels 4M": lambda m: (m["window"].update(length=99_999),
                                              m["model"]["input"]["shape"].__setitem__(1, 99_999)),
    "100 filter sections": lambda m: m["signal"]["chain"]["filter"].update(
        sections=m["signal"]["chain"]["filter"]["sections"] * 100),
    "300 labels": lambda m: m.update(labels=[f"l{i}" for i in range(300)]),
    "coefficient 2**40": lambda m: m["signal"]["chain"]["filter"]["sections"][0]["c"].__setitem__(0, 2**40),
    "coefficient 2**70": lambda m: m["signal"]["chain"]["filter"]["sections"][0]["c"].__setitem__(0, 2**70),
    "section with 6 coefficients": lambda m: m["signal"]["chain"]["filter"]["sections"][0]["c"].append(1),
    "input_frac_bits 99": lambda m: m["signal"]["chain"]["filter"].update(input_frac_bits=99),
    "unknown filter format": lambda m: m["signal"]["chain"]["filter"].update(format="float-biquad"),
    "factor 2 without a low-pass": lambda m: m["signal"]["chain"].update(lowpass_hz=None),
    "fs_out not fs/factor": lambda m: m["signal"]["chain"].update(fs_out=500.0),
    "model.bytes 10**12": lambda m: m["model"].update(bytes=10**12),
    "model.file elsewhere": lambda m: m["model"].update(file="../../etc/passwd"),
    "sha256 upper case": lambda m: m["model"].update(sha256="A" * 64),
    "zero point 300": lambda m: m["model"]["input"].update(zero_point=300),
    "input dtype float32": lambda m: m["model"]["input"].update(dtype="float32"),
    "input shape 4-d": lambda m: m["model"]["input"].update(shape=[1, 50, 32, 1]),
    "labels duplicated": lambda m: m["labels"].__setitem__(1, m["labels"][0]),
    "labels empty": lambda m: m.update(labels=[]),
    "decision unknown key": lambda m: m["decision"].update(surprise=1),
    "decision thresholds of 3": lambda m: m["decision"].update(thresholds=[0.5] * 3),
    "decision command to a missing label": lambda m: m["decision"]["commands"].update(Nope="OPEN"),
    "decision target 10**9": lambda m: m["decision"]["targets"]["OPEN"].update(target_ddeg=10**9),
    "metrics of 300 KB": lambda m: m.update(metrics={"pad": ["x" * 1000] * 300}),
    "metrics nested 40 deep": lambda m: m.update(metrics=functools.reduce(lambda a, _: {"a": a}, range(40), {})),
    "provenance with a NaN": lambda m: m.update(provenance={"seed": NAN}),
    "provenance string of 10k": lambda m: m.update(provenance={"data": "p" * 10_000}),
    "manifest is a list": lambda m: [m],
    "schema_version 2": lambda m: m.update(schema_version=2),
    "schema_version 1.0": lambda m: m.update(schema_version=1.0),
    "task sleep": lambda m: m.update(task="sleep"),
    "no signal section": lambda m: m.pop("signal"),
    "no channel_scale": lambda m: m["window"].pop("channel_scale"),
    "unknown top-level key (allowed)": lambda m: m.update(notes="free text"),
    "no clip (allowed)": lambda m: m["window"].pop("clip"),
    "no metrics (allowed)": lambda m: m.pop("metrics"),
}
ACCEPTED = {"unknown top-level key (allowed)", "no clip (allowed)", "no metrics (allowed)"}
UNSEALED = {"model.bytes 10**12", "sha256 upper case"}  # the damage is to the fields the seal rewrites


@pytest.mark.parametrize("name", STRUCTURAL)
def test_structural_damage(tmp_path, name):
    m, model = _manifest("grasp-lift"), _fixture("grasp-lift")[1]
    result = STRUCTURAL[name](m)
    if isinstance(result, list):  # the edit replaced the whole document
        m = result
    outcome = _load_outcome(_write_dir(tmp_path, json.dumps(_seal(m, model, name not in UNSEALED)), model))
    assert outcome == "ok" if name in ACCEPTED else outcome.startswith("refused"), outcome


def _text(bundle="grasp-lift") -> str:
    return _fixture(bundle)[0]


TEXTUAL = {
    "empty": b"",
    "truncated at 10%": _text()[: len(_text()) // 10],
    "truncated at 50%": _text()[: len(_text()) // 2],
    "truncated by one byte": _text()[:-2],
    "not UTF-8": b"\xff\xfe\x00garbage",
    "binary": bytes(range(256)) * 8,
    "a JSON string": '"manifest"',
    "a JSON number": "42",
    "null": "null",
    "NaN literal": _text().replace('"fs": 500.0', '"fs": NaN', 1),
    "Infinity literal": _text().replace('"fs": 500.0', '"fs": Infinity', 1),
    "-Infinity in channel_scale": _text().replace('"clip": 8.0', '"clip": -Infinity', 1),
    "1e400": _text().replace('"fs": 500.0', '"fs": 1e400', 1),
    "integer of 5000 digits": _text().replace('"length": 50', '"length": 1' + "0" * 5000, 1),
    "integer of 100 digits": _text().replace('"length": 50', '"length": 1' + "0" * 100, 1),
    "duplicate key": _text().replace('"fs": 500.0', '"fs": 500.0, "fs": 250.0', 1),
    "nested 100 000 deep": _text().replace('"metrics": {', '"metrics": {"deep": ' + "[" * 100_000 + "]" * 100_000
                                           + ",", 1),
    "nested 500 deep": _text().replace('"metrics": {', '"metrics": {"deep": ' + "[" * 500 + "]" * 500 + ",", 1),
    "over 1 MB": _text().replace('"metrics": {', '"metrics": {"pad": "' + "x" * (1 << 20) + '",', 1),
    "BOM (allowed)": b"\xef\xbb\xbf" + _text().encode(),
    "UTF-16": _text().encode("utf-16"),
}


@pytest.mark.parametrize("name", TEXTUAL)
def test_textual_damage(tmp_path, name):
    model = _fixture("grasp-lift")[1]
    outcome = _load_outcome(_write_dir(tmp_path, TEXTUAL[name], model))
    if name.endswith("(allowed)"):
        assert outcome == "ok"
    else:
        assert outcome.startswith("refused"), outcome


def test_messages_name_the_field(tmp_path):
    model = _fixture("emotion")[1]
    for path, value, text in (("window.features.scale[2]", -1.0, "window.features.scale[2] must be a finite number > 0"),
                              ("window.clip", INF, "window.clip must be a finite number > 0"),
                              ("decision.vote", 0, "decision['vote']"),
                              ("provenance.seed", NAN, "provenance.seed must be a finite number, got nan")):
        m = _manifest("emotion")
        _set(m, path, value)
        with pytest.raises(BundleError) as info:
            load_bundle(_write_dir(tmp_path, json.dumps(_seal(m, model)), model, path))
        assert text in str(info.value), str(info.value)


# --------------------------------------------------------------------------- archives


def _zip(path: Path, members: list[tuple], **kw) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of one case
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, **kw) as z:
            for name_or_info, data in members:
                z.writestr(name_or_info, data)
    return path


def _good_members(bundle="grasp-lift"):
    text, model = _fixture(bundle)
    return [("manifest.json", text), ("model.tflite", model)]


class _Spy:
    """Counts the bytes the loader inflates from zip members."""

    def __init__(self, monkeypatch):
        self.total = 0
        real = zipfile.ZipExtFile.read

        def read(fh, n=-1):
            data = real(fh, n)
            self.total += len(data)
            return data

        monkeypatch.setattr(zipfile.ZipExtFile, "read", read)


def _patch_sizes(data: bytes, name: bytes, size: int) -> bytes:
    """Make the archive declare ``size`` uncompressed bytes for member ``name`` (a lying zip bomb)."""
    buf = bytearray(data)
    at = buf.find(b"PK\x03\x04")
    while at >= 0:
        n_len = struct.unpack_from("<H", buf, at + 26)[0]
        if buf[at + 30:at + 30 + n_len] == name:
            struct.pack_into("<L", buf, at + 22, size)
        at = buf.find(b"PK\x03\x04", at + 4)
    at = buf.find(b"PK\x01\x02")
    while at >= 0:
        n_len = struct.unpack_from("<H", buf, at + 28)[0]
        if buf[at + 46:at + 46 + n_len] == name:
            struct.pack_into("<L", buf, at + 24, size)
        at = buf.find(b"PK\x01\x02", at + 4)
    return bytes(buf)


def test_a_good_archive_loads(tmp_path):
    assert _load_outcome(_zip(tmp_path / "b.zip", _good_members())) == "ok"
    stored = tmp_path / "s.zip"
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as z:
        for name, data in _good_members("emotion"):
            z.writestr(name, data)
    assert _load_outcome(stored) == "ok"


def test_zip_bomb_declared_is_refused_before_inflating(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "BUNDLE_MAX_MODEL_BYTES", 64 << 10)
    spy = _Spy(monkeypatch)
    bomb = _zip(tmp_path / "bomb.zip", [_good_members()[0], ("model.tflite", bytes(8 << 20))])
    assert bomb.stat().st_size < 64 << 10
    with pytest.raises(BundleError, match="model.tflite is 8388608 bytes, over the 65536-byte limit"):
        load_bundle(bomb)
    assert spy.total <= config.BUNDLE_MAX_MANIFEST_BYTES  # the manifest at most: the model was never inflated


def test_zip_bomb_that_lies_about_its_size_is_refused_after_the_cap(tmp_path, monkeypatch):
    cap = 64 << 10
    monkeypatch.setattr(config, "BUNDLE_MAX_MODEL_BYTES", cap)
    data = _zip(tmp_path / "x.zip", [_good_members()[0], ("model.tflite", bytes(8 << 20))]).read_bytes()
    bomb = tmp_path / "liar.zip"
    bomb.write_bytes(_patch_sizes(data, b"model.tflite", 50_000))
    spy = _Spy(monkeypatch)
    with pytest.raises(BundleError):
        load_bundle(bomb)
    manifest_size = len(_fixture("grasp-lift")[0].encode())
    assert spy.total <= manifest_size + cap + config.BUNDLE_READ_CHUNK_BYTES


def _eocd_count(data: bytes, n: int) -> bytes:
    at = data.rfind(b"PK\x05\x06")
    buf = bytearray(data)
    struct.pack_into("<HH", buf, at + 8, n, n)
    return bytes(buf)


ARCHIVES = {
    "not a zip": lambda p: p.write_bytes(os.urandom(4096)),
    "empty file": lambda p: p.write_bytes(b""),
    "empty zip": lambda p: _zip(p, []),
    "no manifest": lambda p: _zip(p, _good_members()[1:]),
    "no model": lambda p: _zip(p, _good_members()[:1]),
    "inside a folder": lambda p: _zip(p, [(f"bundle/{n}", d) for n, d in _good_members()]),
    "path traversal": lambda p: _zip(p, [*_good_members(), ("../../evil.sh", b"rm -rf /")]),
    "absolute member": lambda p: _zip(p, [*_good_members(), ("/etc/cron.d/x", b"x")]),
    "duplicate manifest": lambda p: _zip(p, [*_good_members(), ("manifest.json", b"{}")]),
    "1000 members": lambda p: _zip(p, [*_good_members(), *[(f"f{i}", b"") for i in range(1000)]]),
    "500 members, end record says 2": lambda p: p.write_bytes(_eocd_count(
        _zip(p, [*_good_members(), *[(f"f{i}", b"") for i in range(500)]]).read_bytes(), 2)),
    "huge member names": lambda p: _zip(p, [*_good_members(), *[("n" * 20_000 + str(i), b"") for i in range(5)]]),
    "model is a symlink entry": lambda p: _zip(p, [_good_members()[0], (_link_info("model.tflite"), b"/dev/zero")]),
    "model is encrypted (flag)": lambda p: p.write_bytes(_flag_encrypted(_zip(p, _good_members()).read_bytes())),
    "zip64 extra fields (allowed)": lambda p: _zip64(p),
    "end record says zip64": lambda p: p.write_bytes(_eocd_count(_zip(p, _good_members()).read_bytes(), 0xFFFF)),
    "truncated at 90%": lambda p: p.write_bytes(_cut(_zip(p, _good_members()).read_bytes(), 0.9)),
    "truncated at 50%": lambda p: p.write_bytes(_cut(_zip(p, _good_members()).read_bytes(), 0.5)),
    "truncated end record": lambda p: p.write_bytes(_zip(p, _good_members()).read_bytes()[:-10]),
    "corrupt deflate data": lambda p: p.write_bytes(_corrupt_middle(_zip(p, _good_members()).read_bytes())),
    "manifest is a JSON bomb": lambda p: _zip(p, [("manifest.json", b"[" * 500_000), _good_members()[1]]),
    "comment at the end (allowed)": lambda p: _with_comment(p),
}


def _cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def _link_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16)
    info.create_system = 3
    return info


def _flag_encrypted(data: bytes) -> bytes:
    buf = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = buf.find(sig)
        while at >= 0:
            buf[at + off] |= 1
            at = buf.find(sig, at + 4)
    return bytes(buf)


def _zip64(p: Path) -> None:
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        for name, data in _good_members():
            with z.open(name, "w", force_zip64=True) as fh:
                fh.write(data.encode() if isinstance(data, str) else data)


def _corrupt_middle(data: bytes) -> bytes:
    buf = bytearray(data)
    for i in range(len(buf) // 3, len(buf) // 3 + 64):
        buf[i] ^= 0x5A
    return bytes(buf)


def _with_comment(p: Path) -> None:
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in _good_members():
            z.writestr(name, data)
        z.comment = b"exported by hand"


@pytest.mark.parametrize("name", ARCHIVES)
def test_damaged_archives(tmp_path, name):
    p = tmp_path / "b.zip"
    ARCHIVES[name](p)
    outcome = _load_outcome(p)
    assert outcome == "ok" if name.endswith("(allowed)") else outcome.startswith("refused"), outcome


def test_archive_bounds_are_checked_before_opening(tmp_path, monkeypatch):
    p = _zip(tmp_path / "b.zip", _good_members())
    monkeypatch.setattr(config, "BUNDLE_MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(BundleError, match="the archive is .* bytes, over the 1000-byte limit"):
        load_bundle(p)
    monkeypatch.setattr(config, "BUNDLE_MAX_ARCHIVE_BYTES", 1 << 30)
    monkeypatch.setattr(config, "BUNDLE_MAX_MEMBERS", 1)
    with pytest.raises(BundleError, match="2 members, over the limit of 1"):
        load_bundle(p)


# --------------------------------------------------------------------------- bundle directories


def test_symlinked_files_are_refused_not_followed(tmp_path):
    text, model = _fixture("grasp-lift")
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as fh:  # a sparse 4 GiB file: costs nothing unless someone reads it
        fh.truncate(4 << 30)
    for name, target in (("model.tflite", huge), ("manifest.json", huge), ("model.tflite", Path("/dev/zero"))):
        b = _write_dir(tmp_path, text, model, f"link-{name}-{target.name}")
        (b / name).unlink()
        (b / name).symlink_to(target)
        with pytest.raises(BundleError, match=f"{name} is a symbolic link"):
            load_bundle(b)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    text, model = _fixture("grasp-lift")
    b = _write_dir(tmp_path, text, model)
    (b / "model.tflite").unlink()
    os.mkfifo(b / "model.tflite")
    with pytest.raises(BundleError, match="model.tflite is not a regular file"):
        load_bundle(b)
    os.mkfifo(tmp_path / "bundle.zip")
    with pytest.raises(BundleError, match="not a bundle directory or .zip file"):
        load_bundle(tmp_path / "bundle.zip")


def test_oversized_files_are_refused_by_their_size(tmp_path, monkeypatch):
    text, model = _fixture("grasp-lift")
    b = _write_dir(tmp_path, text, model)
    monkeypatch.setattr(config, "BUNDLE_MAX_MODEL_BYTES", 1000)
    with pytest.raises(BundleError, match=r"model.tflite is \d+ bytes, over the 1000-byte limit"):
        load_bundle(b)
    monkeypatch.setattr(config, "BUNDLE_MAX_MANIFEST_BYTES", 100)
    with pytest.raises(BundleError, match=r"manifest.json is \d+ bytes, over the 100-byte limit"):
        load_bundle(b)


def test_a_directory_where_a_file_belongs(tmp_path):
    text, model = _fixture("grasp-lift")
    b = _write_dir(tmp_path, text, model)
    (b / "manifest.json").unlink()
    (b / "manifest.json").mkdir()
    with pytest.raises(BundleError, match="manifest.json is not a regular file"):
        load_bundle(b)


# --------------------------------------------------------------------------- models (child processes)

_CHILD = r"""
import sys
import numpy as np
from edge.errors import EdgeError
import edge.bundle
if sys.argv[2] == "no-probe":  # the loader as it was: the model goes straight into this process
    edge.bundle.probe._run_probe = lambda model, module: None
elif sys.argv[2] == "spawn":  # the probe as in a process with threads: a fresh python -c
    edge.bundle.probe._can_fork = lambda: False
from edge.bundle import load_bundle
try:
    b = load_bundle(sys.argv[1])
    m = b.model()
    rng = np.random.default_rng(0)
    for x in (np.zeros(m.input_shape[1:], np.int8), rng.integers(-128, 128, m.input_shape[1:]).astype(np.int8)):
        m.run_int8(x)
except EdgeError as exc:
    print("refused:", type(exc).__name__, str(exc)[:300])
    sys.exit(0)
print("ok")
"""

MODEL_KINDS = ("cut10", "cut30", "cut50", "cut70", "cut90", "cut-1", "flip1", "flip4", "flip16", "poke-head1",
               "poke-head2", "zero-head")
MODEL_CASES = [(b, k) for b in BUNDLES for k in MODEL_KINDS] + [("grasp-lift", "header-only"),
                                                                 ("grasp-lift", "garbage-appended")]


def mutated_model(bundle: str, kind: str) -> bytes:
    """A deterministic damaged copy of a fixture model."""
    model = bytearray(_fixture(bundle)[1])
    rng = random.Random(f"{bundle}:{kind}")
    if kind.startswith("cut"):
        return bytes(model[:-1] if kind == "cut-1" else model[: len(model) * int(kind[3:]) // 100])
    if kind.startswith("flip"):
        for _ in range(int(kind[4:])):
            model[rng.randrange(8, len(model))] ^= 1 << rng.randrange(8)
    elif kind.startswith("poke-head"):
        at = rng.randrange(8, 1024)
        model[at:at + 4] = rng.randbytes(4)
    elif kind == "zero-head":
        model[8:72] = bytes(64)
    elif kind == "header-only":
        return bytes(model[:16])
    elif kind == "garbage-appended":
        return bytes(model) + rng.randbytes(100_000)
    return bytes(model)


def write_mutated(bundle: str, kind: str, out: Path) -> Path:
    """A bundle around a damaged model, sealed (sha256, bytes, content hash) so the damage reaches the
    interpreter: only the interpreter can tell."""
    body = {k: v for k, v in _manifest(bundle).items() if k not in ("content_hash", "schema", "schema_version")}
    return write_bundle(out, body, mutated_model(bundle, kind))


def run_child(path: Path, mode: str = "probe", timeout: float = 120) -> tuple[int, str]:
    """Load ``path`` in a child process (``mode``: "probe" as shipped, "spawn" forcing the probe's
    fresh-interpreter path, "no-probe" the loader without it); (exit code, output)."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), mode],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)
    return done.returncode, (done.stdout + done.stderr)[-1500:]


def run_cases(root: Path, mode_of, workers: int = 2) -> dict:
    """Every damaged-model case in its own child process, ``workers`` at a time: case → (mode, code, output)."""
    from concurrent.futures import ThreadPoolExecutor

    paths = {case: write_mutated(*case, root / f"{i}") for i, case in enumerate(MODEL_CASES)}

    def one(item):
        i, case = item
        mode = mode_of(i)
        try:
            return case, (mode, *run_child(paths[case], mode, timeout=120))
        except subprocess.TimeoutExpired:
            return case, (mode, None, "the child hung")

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, enumerate(MODEL_CASES)))


@pytest.fixture(scope="module")
def model_outcomes(tmp_path_factory):
    # Every fourth case forces the probe's python -c path; the others fork, as a one-thread process does.
    return run_cases(tmp_path_factory.mktemp("models"), lambda i: "spawn" if i % 4 == 3 else "probe")


@pytest.mark.parametrize("bundle, kind", MODEL_CASES, ids=[f"{b}-{k}" for b, k in MODEL_CASES])
def test_damaged_model_is_refused_or_runs_and_never_crashes(model_outcomes, bundle, kind):
    mode, code, out = model_outcomes[(bundle, kind)]
    assert code == 0, f"the loader ({mode}) {'crashed' if code and code < 0 else 'failed'} (exit {code}): {out}"
    assert out.startswith(("ok", "refused: BundleError")), out


def test_the_probe_is_cached_and_check_model_false_does_not_probe(tmp_path, monkeypatch):
    import edge.bundle.probe as eb

    calls = []
    real = eb._run_probe
    monkeypatch.setattr(eb, "_run_probe", lambda model, module: calls.append(1) or real(model, module))
    monkeypatch.setattr(eb, "_PROBED", {})
    path = write_mutated("grasp-lift", "garbage-appended", tmp_path / "b")
    b = load_bundle(path, check_model=False)
    assert calls == []
    b.model()
    load_bundle(path)
    b.model()
    assert calls == [1]


_CRASH = "def probe(interpreter, model, budget):\n    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)\n"
_HANG = "def probe(interpreter, model, budget):\n    import time\n    time.sleep(30)\n"
_RAISE = "def probe(interpreter, model, budget):\n    raise MemoryError('std::bad_alloc')\n"


@pytest.mark.parametrize("fork", [True, False], ids=["fork", "spawn"])
def test_a_crash_an_error_and_a_timeout_in_the_probe_are_bundle_errors(tmp_path, monkeypatch, fork):
    import edge.bundle.probe as eb

    model = _fixture("grasp-lift")[1]
    monkeypatch.setattr(eb, "_can_fork", lambda: fork)
    monkeypatch.setattr(config, "MODEL_PROBE_TIMEOUT_S", 1.0)
    for body, match in ((_CRASH, r"crashed the TFLite interpreter \(SIGSEGV\)"),
                        (_RAISE, r"does not load: MemoryError: std::bad_alloc"),
                        (_HANG, r"did not load and run within 1 s")):
        monkeypatch.setattr(eb, "_PROBE_BODY", body)
        monkeypatch.setattr(eb, "_PROBED", {})
        with pytest.raises(BundleError, match=match):
            eb.probe_model(model, tmp_path)


def test_a_forked_probe_that_times_out_is_retried_in_a_fresh_interpreter(tmp_path, monkeypatch):
    import edge.bundle.probe as eb

    monkeypatch.setattr(eb, "_can_fork", lambda: True)
    monkeypatch.setattr(eb, "_probe_forked", lambda model, module, timeout: None)  # a deadlocked fork
    monkeypatch.setattr(eb, "_PROBED", {})
    eb.probe_model(_fixture("grasp-lift")[1], tmp_path)  # the fresh interpreter says the model is fine


# --------------------------------------------------------------------------- recordings


def _recording_outcome(call, *args, **kwargs) -> str:
    """'ok' (loaded, and valid) or 'refused' (a RecordingError, checked); warnings count as failures."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            rec = call(*args, **kwargs)
        except RecordingError as err:
            _check_message(err)
            return f"refused: {err}"
    samples = getattr(rec, "samples", getattr(rec, "features", None))
    assert samples is not None and np.isfinite(samples).all()
    if hasattr(rec, "segments"):
        assert rec.segments[0, 0] == 0 and rec.segments[-1, 1] == rec.n_samples
        assert len(rec.sample_index) == rec.n_samples and np.all(np.diff(rec.sample_index) > 0)
    return "ok"


GL_HEADER = ",".join(("id",) + GRASP_LIFT_CHANNELS)
EV_HEADER = ",".join(("id",) + GRASP_LIFT_EVENTS)


def _gl_rows(n=4, stem="subj1_series2"):
    return [f"{stem}_{i}," + ",".join(str(10 + i + c) for c in range(32)) for i in range(n)]


def _ev_rows(n=4, stem="subj1_series2"):
    return [f"{stem}_{i}," + ",".join("1" if (i + k) % 3 == 0 else "0" for k in range(6)) for i in range(n)]


def _gl(tmp_path, data=None, events=None, gz=False):
    """Write a Kaggle pair (``data``/``events``: whole texts or bytes, defaults valid) and return the data path."""
    data = GL_HEADER + "\n" + "\n".join(_gl_rows()) + "\n" if data is None else data
    events = EV_HEADER + "\n" + "\n".join(_ev_rows()) + "\n" if events is None else events
    suffix = ".csv.gz" if gz else ".csv"
    paths = tmp_path / f"subj1_series2_data{suffix}", tmp_path / f"subj1_series2_events{suffix}"
    for p, text in zip(paths, (data, events)):
        raw = text.encode() if isinstance(text, str) else text
        p.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    return paths[0]


def _row_with(cell: str, col: int = 3, i: int = 2) -> str:
    rows = _gl_rows()
    cells = rows[i].split(",")
    cells[col] = cell
    rows[i] = ",".join(cells)
    return GL_HEADER + "\n" + "\n".join(rows) + "\n"


def _ids(ids) -> str:
    return GL_HEADER + "\n" + "\n".join(f"subj1_series2_{i}," + ",".join(["1"] * 32) for i in ids) + "\n"


GRASP_LIFT = {
    "valid (allowed)": lambda t: _gl(t),
    "valid gz (allowed)": lambda t: _gl(t, gz=True),
    "BOM and CRLF (allowed)": lambda t: _gl(t, data=b"\xef\xbb\xbf" + (GL_HEADER + "\n" + "\n".join(_gl_rows())
                                                                        ).replace("\n", "\r\n").encode()),
    "wrong header": lambda t: _gl(t, data=_gl_rows()[0].replace("subj", "x") + "\n" + "\n".join(_gl_rows())),
    "reordered header": lambda t: _gl(t, data=GL_HEADER.replace("Fp1,Fp2", "Fp2,Fp1") + "\n" + "\n".join(_gl_rows())),
    "header of 10 000 columns": lambda t: _gl(t, data=",".join(f"c{i}" for i in range(10_000)) + "\n1\n"),
    "header of 10 million columns": lambda t: _gl(t, data=b"," * 10_000_000 + b"\n1\n"),
    "header line of 2 MB": lambda t: _gl(t, data=b"x" * (2 << 20)),
    "header not UTF-8": lambda t: _gl(t, data=b"\xff\xfe\xfd" + GL_HEADER.encode() + b"\n" + _gl_rows()[0].encode()),
    "header only": lambda t: _gl(t, data=GL_HEADER + "\n"),
    "empty file": lambda t: _gl(t, data=""),
    "binary garbage": lambda t: _gl(t, data=bytes(range(256)) * 100),
    "NaN cell": lambda t: _gl(t, data=_row_with("nan")),
    "inf cell": lambda t: _gl(t, data=_row_with("inf")),
    "-inf cell": lambda t: _gl(t, data=_row_with("-inf")),
    "1e999 cell": lambda t: _gl(t, data=_row_with("1e999")),
    "empty cell": lambda t: _gl(t, data=_row_with("")),
    "text cell": lambda t: _gl(t, data=_row_with("abc")),
    "cell of 1 MB": lambda t: _gl(t, data=_row_with("z" * (1 << 20))),
    "missing cell": lambda t: _gl(t, data=_row_with("1", col=32).replace(",1\n", "\n", 1)),
    "extra cell": lambda t: _gl(t, data=_row_with("1,2")),
    "line of a million cells": lambda t: _gl(t, data=_row_with(",".join(["1"] * 1_000_000))),
    "blank line inside": lambda t: _gl(t, data=GL_HEADER + "\n" + _gl_rows()[0] + "\n\n" + _gl_rows()[1] + "\n"),
    "duplicated ids": lambda t: _gl(t, data=_ids([0, 1, 1, 2]), events=EV_HEADER + "\n" + "\n".join(_ev_rows())),
    "decreasing ids": lambda t: _gl(t, data=_ids([0, 2, 1, 3])),
    "negative id": lambda t: _gl(t, data=_ids([-1, 0, 1, 2])),
    "id 1e300": lambda t: _gl(t, data=_ids([0, 1, 2, "1e300"])),
    "id 2**60": lambda t: _gl(t, data=_ids([0, 1, 2, 2**60])),
    "fractional id": lambda t: _gl(t, data=_ids([0, 1, 2, 2.5])),
    "id without number": lambda t: _gl(t, data=_ids([0, 1, 2, ""])),
    "foreign id prefix": lambda t: _gl(t, data=_gl(t).read_text().replace("subj1_series2_3", "subj9_series9_3")),
    "events with fewer rows": lambda t: _gl(t, events=EV_HEADER + "\n" + "\n".join(_ev_rows(3))),
    "events value 2": lambda t: _gl(t, events=EV_HEADER + "\n" + "\n".join(_ev_rows()).replace(",1", ",2", 1)),
    "events NaN": lambda t: _gl(t, events=EV_HEADER + "\n" + "\n".join(_ev_rows()).replace(",1", ",nan", 1)),
    "events missing": lambda t: _no_events(t),
    "truncated gzip": lambda t: _truncate(_gl(t, gz=True), 12),
    "gzip cut in half": lambda t: _truncate(_gl(t, gz=True), None),
    "corrupt gzip": lambda t: _corrupt(_gl(t, gz=True)),
    "not gzip at all": lambda t: _fake_gz(t),
    "a directory": lambda t: _dir_named(t),
    "a FIFO": lambda t: _fifo(t),
}


def _no_events(t: Path) -> Path:
    data = _gl(t)
    data.with_name("subj1_series2_events.csv").unlink()
    return data


def _truncate(p: Path, n: int | None) -> Path:
    data = p.read_bytes()
    p.write_bytes(data[:-n] if n else data[: len(data) // 2])
    return p


def _corrupt(p: Path) -> Path:
    data = bytearray(p.read_bytes())
    for i in range(12, len(data) - 8):
        data[i] ^= 0xA5
    p.write_bytes(bytes(data))
    return p


def _fake_gz(t: Path) -> Path:
    p = t / "subj1_series2_data.csv.gz"
    p.write_bytes(b"this is not gzip\n" * 10)
    return p


def _dir_named(t: Path) -> Path:
    p = t / "subj1_series2_data.csv"
    p.mkdir()
    return p


def _fifo(t: Path) -> Path:
    p = t / "subj1_series2_data.csv"
    os.mkfifo(p)
    return p


@pytest.mark.parametrize("name", GRASP_LIFT)
def test_damaged_grasp_lift(tmp_path, name):
    path = GRASP_LIFT[name](tmp_path)
    outcome = _recording_outcome(read_grasp_lift, path)
    assert outcome == "ok" if name.endswith("(allowed)") else outcome.startswith("refused"), outcome


def test_a_huge_header_is_refused_fast_with_a_short_message(tmp_path):
    """The review's case: 10 M columns cost 20 s, 1.4 GB and a 119 MB message."""
    import time

    for header, text in ((b"c," * 10_000_000, "a header line longer than 1048576 bytes"),
                         (b"c," * 10_000, "a header of 10001 columns")):
        path = _gl(tmp_path, data=header + b"\n1\n")
        t0 = time.perf_counter()
        with pytest.raises(RecordingError) as info:
            read_grasp_lift(path)
        assert time.perf_counter() - t0 < 2.0
        assert text in str(info.value) and len(str(info.value)) < 400


def test_recording_size_bounds(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RECORDING_MAX_BYTES", 64 << 10)
    big = _gl(tmp_path, data=GL_HEADER + "\n" + "\n".join(_gl_rows(3000)) + "\n")
    with pytest.raises(RecordingError, match=r"\d+ bytes, over the 65536-byte limit"):
        read_grasp_lift(big)
    # A gzip bomb: 30 KB on disk, 24 MB inflated; refused after inflating at most the bound.
    bomb = tmp_path / "bomb" / "subj1_series2_data.csv.gz"
    bomb.parent.mkdir()
    bomb.write_bytes(gzip.compress(GL_HEADER.encode() + b"\n" + b"0" * (24 << 20), mtime=0))
    assert bomb.stat().st_size < 64 << 10
    with pytest.raises(RecordingError, match="inflates to more than 65536 bytes"):
        read_grasp_lift(bomb)


MUSE_HEADER = ",".join(MUSE_COLUMNS)


def _muse(t: Path, text, name="subjectz-relaxed-1.csv") -> Path:
    p = t / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def _muse_rows(times):
    return MUSE_HEADER + "\n" + "\n".join(f"{s},1,2,3,4,5" for s in times) + "\n"


OTHER = {
    "muse valid (allowed)": lambda t: (read_muse, _muse(t, _muse_rows([1.0, 1.004, 1.008]))),
    "muse one row (allowed)": lambda t: (read_muse, _muse(t, _muse_rows([1.0]))),
    "muse wrong header": lambda t: (read_muse, _muse(t, "timestamps,TP9\n1,2\n")),
    "muse decreasing": lambda t: (read_muse, _muse(t, _muse_rows([1.0, 0.5]))),
    "muse NaN timestamp": lambda t: (read_muse, _muse(t, _muse_rows([1.0, "nan"]))),
    "muse timestamps 1e300 apart": lambda t: (read_muse, _muse(t, _muse_rows([-1e300, 1e300]))),
    "muse timestamps 1e308": lambda t: (read_muse, _muse(t, _muse_rows([-1.7e308, 1.7e308]))),
    "muse 10k-column header": lambda t: (read_muse, _muse(t, ",".join(["x"] * 10_000) + "\n1\n")),
    "muse by header sniffing": lambda t: (read_recording, _muse(t, _muse_rows([1.0, "x"]), name="rec.csv")),
    "unknown layout": lambda t: (read_recording, _muse(t, "a,b\n1,2\n", name="rec.csv")),
    "sniffing a 10M-column header": lambda t: (read_recording, _muse(t, b"," * 10_000_000 + b"\n", name="r.csv")),
    "gameemo bad cell": lambda t: (read_gameemo, _muse(t, ",".join(GAMEEMO_CHANNELS) + ",\n" + "1," * 13 + "x,\n",
                                                       name="S01G1AllChannels.csv")),
    "gameemo no trailing commas (allowed)": lambda t: (read_gameemo, _muse(
        t, ",".join(GAMEEMO_CHANNELS) + "\n" + ",".join(["1"] * 14) + "\n", name="S01G1AllChannels.csv")),
    "gameemo wrong header": lambda t: (read_gameemo, _muse(t, "a,b\n1,2\n", name="S01G1AllChannels.csv")),
    "emotions bad label": lambda t: (read_emotions_table, _muse(t, "a,b,label\n1,2,HAPPY\n", name="emotions.csv")),
    "emotions label of 1 MB": lambda t: (read_emotions_table, _muse(t, "a,b,label\n1,2," + "L" * (1 << 20) + "\n",
                                                                    name="emotions.csv")),
    "emotions no label column": lambda t: (read_emotions_table, _muse(t, "a,b\n1,2\n", name="emotions.csv")),
    "emotions NaN feature": lambda t: (read_emotions_table, _muse(t, "a,b,label\nnan,2,NEUTRAL\n",
                                                                  name="emotions.csv")),
    "emotions header only": lambda t: (read_emotions_table, _muse(t, "a,b,label\n", name="emotions.csv")),
}


@pytest.mark.parametrize("name", OTHER)
def test_damaged_muse_gameemo_emotions(tmp_path, name):
    reader, path = OTHER[name](tmp_path)
    outcome = _recording_outcome(reader, path)
    assert outcome == "ok" if name.endswith("(allowed)") else outcome.startswith("refused"), outcome


def _myo_session(folder: Path, n=5, ks=range(28)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in ks:
        (folder / f"classe_{k}.dat").write_bytes(((np.arange(n * 8) + k) % 100).astype("<i2").tobytes())
    return folder


def _myo_file(t: Path, data: bytes, name="classe_3.dat") -> Path:
    p = t / name
    p.write_bytes(data)
    return p


MYO = {
    "valid session (allowed)": lambda t: (read_myo_session, _myo_session(t / "s")),
    "odd byte count": lambda t: (read_myo_file, _myo_file(t, b"\x01" * 17)),
    "value out of range": lambda t: (read_myo_file, _myo_file(t, np.full(8, 300, "<i2").tobytes())),
    "empty file": lambda t: (read_myo_file, _myo_file(t, b"")),
    "wrong name": lambda t: (read_myo_file, _myo_file(t, bytes(16), name="classe_99.dat")),
    "missing files": lambda t: (read_myo_session, _myo_session(t / "s", ks=range(27))),
    "duplicated K": lambda t: (read_myo_session, _dup_k(_myo_session(t / "s"))),
    "misnamed .dat": lambda t: (read_myo_session, _extra(_myo_session(t / "s"), "classe_x.dat")),
    "not a folder": lambda t: (read_myo, t / "nowhere"),
    "no sessions": lambda t: (read_myo, _empty_dir(t / "e")),
    "a FIFO as a file": lambda t: (read_myo_file, _fifo_named(t, "classe_3.dat")),
}


def _dup_k(folder: Path) -> Path:
    shutil.copy(folder / "classe_1.dat", folder / "classe_01.dat")
    return folder


def _extra(folder: Path, name: str) -> Path:
    (folder / name).write_bytes(bytes(16))
    return folder


def _empty_dir(p: Path) -> Path:
    p.mkdir()
    return p


def _fifo_named(t: Path, name: str) -> Path:
    os.mkfifo(t / name)
    return t / name


@pytest.mark.parametrize("name", MYO)
def test_damaged_myo(tmp_path, name):
    reader, path = MYO[name](tmp_path)
    outcome = _recording_outcome(reader, path)
    assert outcome == "ok" if name.endswith("(allowed)") else outcome.startswith("refused"), outcome


def test_myo_bounds(tmp_path, monkeypatch):
    session = _myo_session(tmp_path / "P" / "training0", n=200)
    monkeypatch.setattr(config, "RECORDING_MAX_BYTES", 100_000)  # 28 files x 3.2 KB x 4 > 100 KB as float64
    with pytest.raises(RecordingError, match="over the 100000-byte limit"):
        read_myo(session)
    monkeypatch.setattr(config, "RECORDING_MAX_BYTES", 1 << 30)
    monkeypatch.setattr(config, "RECORDING_MAX_DIR_ENTRIES", 20)
    with pytest.raises(RecordingError, match="more than 20 entries"):
        read_myo(session)


# --------------------------------------------------------------------------- the census


def crash_census(mode: str) -> Counter:
    """Outcome of every damaged-model case, each in its own child process ('crash' = killed by a signal)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run_cases(Path(tmp), lambda i: mode)
    counts = Counter()
    for _, code, out in outcomes.values():
        counts["hang" if code is None else "crash" if code < 0 else out.split(":")[0].split()[0] if code == 0
               else f"exit {code}"] += 1
    return counts


if __name__ == "__main__":  # python -m tests.edge.test_bad_input
    print(f"{len(MODEL_CASES)} damaged models, each loaded in its own process:")
    for mode in ("no-probe", "probe", "spawn"):
        print(f"  {mode}: {dict(crash_census(mode))}")
