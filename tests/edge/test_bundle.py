"""edge.bundle: round trip and every refusal, with real int8 models and no TensorFlow."""

import json
import shutil
import zipfile

import numpy as np
import pytest

from edge.bundle import SCHEMA_VERSION, content_hash, load_bundle, write_bundle
from edge.errors import BundleError
from tests.conftest import FIXTURE_BUNDLES

GL = FIXTURE_BUNDLES / "grasp-lift"
EMO = FIXTURE_BUNDLES / "emotion"


def _copy(tmp_path, src=GL):
    dst = tmp_path / "b"
    shutil.copytree(src, dst)
    return dst


def _manifest(path):
    return json.loads((path / "manifest.json").read_text())


def test_fixture_bundles_load_and_describe_the_model():
    for path, task, n_ch in ((GL, "grasp-lift", 32), (EMO, "emotion", 4)):
        b = load_bundle(path)
        assert b.task == task and len(b.channels) == n_ch
        model = b.model()
        if b.window.get("features"):  # the emotion bundle's model takes window features
            from edge.model.inputs import n_features

            f = b.window["features"]
            assert model.input_shape == (1, n_features(b.window["length"], n_ch, f["fs"], f["bands"]))
            assert b.model_input(np.zeros((2, b.window["length"], n_ch))).shape == (2, model.input_shape[1])
        else:
            assert model.input_shape == (1, b.window["length"], n_ch)
        assert model.output_shape == (1, len(b.labels))
        assert b.content_hash.startswith("sha256:")
        assert b.signal_chain().fs == b.fs
        assert b.decision_policy().labels == tuple(b.labels)


def test_round_trip_directory_and_zip_is_identical(tmp_path):
    b = load_bundle(GL)
    body = {k: v for k, v in b.manifest.items() if k not in ("content_hash", "schema", "schema_version")}
    d = write_bundle(tmp_path / "d", body, b.model_bytes)
    z = write_bundle(tmp_path / "b.zip", body, b.model_bytes)
    for p in (d, z):
        again = load_bundle(p)
        assert again.content_hash == b.content_hash
        assert again.manifest == b.manifest
        assert again.model_bytes == b.model_bytes


def test_truncated_model_is_refused(tmp_path):
    p = _copy(tmp_path)
    data = (p / "model.tflite").read_bytes()
    (p / "model.tflite").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="truncated copy"):
        load_bundle(p)


def test_truncated_manifest_is_refused(tmp_path):
    p = _copy(tmp_path)
    text = (p / "manifest.json").read_text()
    (p / "manifest.json").write_text(text[: len(text) // 2])
    with pytest.raises(BundleError, match="not valid JSON.*truncated"):
        load_bundle(p)


def test_truncated_archive_is_refused(tmp_path):
    b = load_bundle(GL)
    z = tmp_path / "b.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("manifest.json", json.dumps(b.manifest))
        f.writestr("model.tflite", b.model_bytes)
    data = z.read_bytes()
    z.write_bytes(data[: len(data) - 200])
    with pytest.raises(BundleError, match="truncated"):
        load_bundle(z)


def test_edited_manifest_fails_the_content_hash(tmp_path):
    p = _copy(tmp_path)
    m = _manifest(p)
    m["decision"]["thresholds"] = [0.01] * len(m["labels"])
    (p / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="content hash mismatch"):
        load_bundle(p)


def test_replaced_model_fails_its_sha256(tmp_path):
    p = _copy(tmp_path)
    data = bytearray((p / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (p / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match its sha256"):
        load_bundle(p)


@pytest.mark.parametrize("version, fix", [(SCHEMA_VERSION + 1, "upgrade neurogrip"), (0, "re-export")])
def test_unknown_schema_version_is_refused_even_with_a_valid_hash(tmp_path, version, fix):
    p = _copy(tmp_path)
    m = _manifest(p)
    m["schema_version"] = version
    m["content_hash"] = content_hash(m, (p / "model.tflite").read_bytes())
    (p / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=f"unknown manifest schema_version {version}.*{fix}"):
        load_bundle(p)


def test_model_whose_tensors_disagree_with_the_manifest_is_refused(tmp_path):
    b = load_bundle(GL)
    body = {k: v for k, v in b.manifest.items() if k not in ("content_hash", "schema", "schema_version")}
    body = json.loads(json.dumps(body))
    body["window"]["length"] += 10
    body["model"]["input"]["shape"][1] += 10
    out = write_bundle(tmp_path / "wrong", body, b.model_bytes)  # consistent manifest, wrong model
    with pytest.raises(BundleError, match=r"input tensor is int8 \[1, 50, 32\] but the manifest says int8 \[1, 60"):
        load_bundle(out)
    assert load_bundle(out, check_model=False).window["length"] == 60


def test_quantisation_mismatch_is_refused(tmp_path):
    b = load_bundle(GL)
    body = json.loads(json.dumps({k: v for k, v in b.manifest.items() if k != "content_hash"}))
    body["model"]["output"]["scale"] *= 2
    out = write_bundle(tmp_path / "q", body, b.model_bytes)
    with pytest.raises(BundleError, match="output quantisation"):
        load_bundle(out)


def test_model_that_is_not_tflite_is_refused(tmp_path):
    b = load_bundle(GL)
    body = json.loads(json.dumps({k: v for k, v in b.manifest.items() if k != "content_hash"}))
    out = write_bundle(tmp_path / "junk", body, b"not a flatbuffer at all" * 10)
    with pytest.raises(BundleError, match="does not load"):
        load_bundle(out)


def test_missing_files_and_paths(tmp_path):
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "nope")
    p = _copy(tmp_path)
    (p / "model.tflite").unlink()
    with pytest.raises(BundleError, match="model.tflite is missing"):
        load_bundle(p)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(task="sleep"), "task 'sleep'"),
    (lambda m: m["signal"].update(channels=["Fp1", "Fp1"]), "distinct"),
    (lambda m: m["window"].update(channel_scale=[1.0]), "channel_scale"),
    (lambda m: m["model"].update(activation="softmax"), "does not fit decision mode"),
    (lambda m: m.pop("decision"), "no 'decision'"),
    (lambda m: m["signal"]["chain"]["filter"].update(format="float-biquad"), "signal.chain is not usable"),
])
def test_structural_errors_name_the_problem(tmp_path, edit, match):
    p = _copy(tmp_path)
    m = _manifest(p)
    edit(m)
    m["content_hash"] = content_hash(m, (p / "model.tflite").read_bytes())
    (p / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=match):
        load_bundle(p)


def test_bundle_error_is_an_edge_error_and_a_value_error():
    from edge.errors import EdgeError

    assert issubclass(BundleError, EdgeError) and issubclass(BundleError, ValueError)


def test_int8_outputs_are_probabilities_of_the_right_shape():
    b = load_bundle(EMO)
    model = b.model()
    x = np.zeros(model.input_shape[1:], np.int8)
    out = model.run_int8(x)
    assert out.dtype == np.int8 and out.shape == (3,)
