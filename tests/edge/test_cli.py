"""The neurogrip command line: sub-commands, one-line errors with the fix, evaluate without
TensorFlow or scikit-learn, and a console without third-party log lines unless --verbose."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from edge import cli
from tests.conftest import FIXTURE_BUNDLES, REPO


def run(*args):
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, check=False)


def test_unknown_subcommand_is_one_line_with_the_fix():
    out = run("fly")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "invalid choice: 'fly'" in out.stderr and "--help" in out.stderr


@pytest.mark.parametrize("args", [("--log-max-mb", "0"), ("--log-max-mb", "nan"), ("--log-max-mb", "-1"),
                                  ("--log-keep", "0"), ("--log-keep", "-1"), ("--log-keep", "two")])
def test_log_rotation_arguments_out_of_range_are_one_line_errors(args, tmp_path):
    out = run("run", "--bundle", str(FIXTURE_BUNDLES / "grasp-lift"), "--source", "synthetic:",
              "--log", str(tmp_path / "log.jsonl"), *args)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and args[0] in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "log.jsonl").exists()


def test_info_and_bad_file(tmp_path):
    out = run("info", str(tmp_path / "missing.csv"))
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "file not found" in out.stderr


def test_synth_then_info(tmp_path):
    out = run("synth", "grasp-lift", "--out", str(tmp_path), "--subjects", "2", "--series", "1", "--trials", "2")
    assert out.returncode == 0, out.stderr
    written = out.stdout.split()
    assert written == [str(tmp_path / "subj2_series1_data.csv.gz")]
    info = run("info", written[0])
    assert info.returncode == 0 and "32 channels at 500 Hz" in info.stdout


def test_missing_extra_names_the_install_fix(monkeypatch, capsys):
    def needs_tf(args):
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["info"].set_defaults(func=needs_tf)
    assert cli.main(["info", "x"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'neurogrip[train]'" in err


def test_other_import_errors_are_not_hidden(monkeypatch):
    def broken(args):
        raise ModuleNotFoundError("No module named 'nonexistent_pkg'", name="nonexistent_pkg")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["info"].set_defaults(func=broken)
    with pytest.raises(ModuleNotFoundError):
        cli.main(["info", "x"])


# --------------------------------------------------------------------------- evaluate on the Pi side

BLOCK_WORKSTATION = textwrap.dedent("""
    import sys
    class Block:  # TensorFlow, Keras and scikit-learn cannot be imported, even where they are installed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "sklearn"):
                raise ImportError("blocked by the test: " + name)
    sys.meta_path.insert(0, Block())
""")


def test_the_evaluate_path_imports_neither_tensorflow_nor_sklearn():
    code = BLOCK_WORKSTATION + textwrap.dedent("""
        import edge.evaluation.evaluate, edge.evaluation.held_out
        import training.pipeline, training.gesture, training.train, training.metrics
        import benchmarks.decoding
        print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "sklearn"))))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


def test_evaluate_is_the_edges_own():
    # `neurogrip evaluate` and the held-out recording its --plot draws run where neither training nor any
    # workstation module (scipy included) can be imported: the Pi
    blocked = ("training", "scipy", "tensorflow", "keras", "sklearn", "matplotlib")
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r}:
                    raise ImportError("blocked by the test: " + name)
        sys.meta_path.insert(0, Block())
        from edge.evaluation.evaluate import evaluate
        from edge.evaluation.held_out import first_held_out
        result = evaluate({str(FIXTURE_BUNDLES / "grasp-lift")!r}, "synthetic", quick=True, progress=None)
        assert result["n_windows"] > 100 and first_held_out("emotion", "synthetic").n_samples > 0
        print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r})))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


def test_evaluate_grasp_lift_runs_in_the_edge_environment(tmp_path, capsys):
    report = tmp_path / "eval.json"
    assert cli.main(["evaluate", str(FIXTURE_BUNDLES / "grasp-lift"), "--data", "synthetic", "--quick",
                     "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["task"] == "grasp-lift" and result["n_windows"] > 100
    assert 0.0 <= result["int8"]["auc"] <= 1.0 and len(result["int8"]["auc_per_label"]) == 6
    assert "[evaluate] int8 auc" in capsys.readouterr().out


def test_evaluate_gesture_runs_in_the_edge_environment(shared_data, tmp_path, capsys):
    session = shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "Test0"
    report = tmp_path / "eval.json"
    assert cli.main(["evaluate", str(FIXTURE_BUNDLES / "gesture"), "--data", str(session),
                     "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["task"] == "gesture" and list(result["sessions"]) == ["Male1/Test0"]
    assert 0.0 <= result["int8"]["accuracy"] <= 1.0
    assert "[evaluate] int8 accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("argv, says", [
    (["evaluate", str(FIXTURE_BUNDLES / "grasp-lift"), "--data", "/nonexistent-folder"], "not a directory"),
    (["evaluate", str(FIXTURE_BUNDLES / "gesture"), "--data", "synthetic"], "not a directory"),  # another task's data
    (["evaluate", str(FIXTURE_BUNDLES / "emotion"), "--data", str(REPO / "tests")], "no Muse"),
    (["evaluate", "/nonexistent-bundle", "--data", "synthetic"], "no such bundle"),
    (["run", "--bundle", str(FIXTURE_BUNDLES / "grasp-lift"), "--source", "synthetic:", "--arm",
      "/dev/ttyNEUROGRIP-NONE", "--duration", "1"], "/dev/ttyNEUROGRIP-NONE"),
    (["run", "--bundle", str(FIXTURE_BUNDLES / "gesture"), "--source", "synthetic:", "--arm", "none",
      "--duration", "1"], "lacks channel"),  # an EMG bundle on an EEG stream
])
def test_common_mistakes_are_one_line_with_the_fix(argv, says, capsys):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err, err


def test_a_path_that_cannot_be_written_is_one_line(monkeypatch, capsys):
    def writes(args):
        open("/nonexistent-folder/report.json", "w")  # noqa: SIM115 - raises

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["info"].set_defaults(func=writes)
    assert cli.main(["info", "x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/nonexistent-folder/report.json: No such file or directory" in err


def test_calibrate_refuses_an_existing_out_even_a_dangling_link_before_any_work(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("someone's file")
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "nowhere")  # exists() says False: the path is taken all the same
    for out in (taken, dangling):
        # the session does not exist either: the refusal comes first, before anything is read
        assert cli.main(["calibrate", "--bundle", str(FIXTURE_BUNDLES / "gesture"), "--data",
                         str(tmp_path / "no-session"), "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "already exists" in err and "--overwrite" in err, err
    assert taken.read_text() == "someone's file" and dangling.is_symlink() and not (tmp_path / "nowhere").exists()


def test_the_help_speaks_of_eeg_and_emg():
    out = run("--help")
    assert out.returncode == 0 and "EEG or EMG in, arm motion out" in out.stdout
    assert "run" in out.stdout and "EEG or EMG source" in out.stdout
    assert "EMG" in cli.__doc__.split("\n\n")[0]


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="the edge environment's case")
def test_train_without_tensorflow_says_so_before_reading_data(capsys):
    # the edge environment has no TensorFlow: the missing extra is named before any data is read
    assert cli.main(["train", "--task", "grasp-lift", "--data", "/nonexistent-folder", "--out", "/tmp/x"]) == 3
    assert "pip install 'neurogrip[train]'" in capsys.readouterr().err


# --------------------------------------------------------------------------- a console a person can read

def test_verbose_is_a_global_option(monkeypatch):
    seen = []
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(cli, "quiet_third_party", lambda verbose: seen.append(("quiet", verbose)))
    monkeypatch.delenv(cli.VERBOSE_ENV, raising=False)
    choices = parser._subparsers._group_actions[0].choices
    choices["info"].set_defaults(func=lambda args: seen.append(("info", args.verbose)))
    choices["stream"].set_defaults(func=lambda args: seen.append(("stream", args.verbose, args.player_args)))
    cli.main(["--verbose", "info", "x"])
    cli.main(["info", "x"])
    cli.main(["--verbose", "stream", "rec.csv", "--loop"])
    assert seen == [("quiet", True), ("info", True), ("quiet", False), ("info", False),
                    ("quiet", True), ("stream", True, ["rec.csv", "--loop"])]


NATIVE_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796169261.426656   18373 port.cc:153] oneDNN custom operations are on.\n"
    "W0000 00:00:1796169262.000001   18373 tf_tfl_flatbuffer_helpers.cc:365] Ignored output_format.\n"
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8\n"
    "E0000 00:00:1796169263.000001   18373 some.cc:1] a real error stays\n"
)


def _native_noise(verbose: bool, crash: bool = False):
    """A child running `neurogrip` whose sub-command writes TF/TFLite-style lines on fd 2 from below Python."""
    code = textwrap.dedent(f"""
        import os, sys
        from edge import cli
        def noisy(args):
            os.write(2, {NATIVE_LINES!r}.encode())
            print("[train] our progress", flush=True)
            print("our warning", file=sys.stderr, flush=True)
            if {crash!r}:
                os.write(2, b"F0000 00:00:1.0 1 x.cc:1] Check failed: the crash message\\n")
                os.abort()
            return 0
        cli._require_modules = lambda *names: None
        parser = cli.build_parser()
        cli.build_parser = lambda: parser
        parser._subparsers._group_actions[0].choices["train"].set_defaults(func=noisy)
        argv = (["--verbose"] if {verbose!r} else []) + ["train", "--task", "emotion", "--data", "x", "--out", "y"]
        sys.exit(cli.main(argv))
    """)
    env = {k: v for k, v in os.environ.items() if k != cli.VERBOSE_ENV}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO,
                          env=env, timeout=60)


def test_third_party_native_lines_are_dropped_unless_verbose():
    out = _native_noise(verbose=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "[train] our progress\n"
    assert out.stderr.splitlines() == ["E0000 00:00:1796169263.000001   18373 some.cc:1] a real error stays",
                                       "our warning"]
    verbose = _native_noise(verbose=True)
    assert verbose.returncode == 0 and verbose.stderr == NATIVE_LINES + "our warning\n"


def test_a_native_crash_message_still_reaches_the_console():
    out = _native_noise(verbose=False, crash=True)
    assert out.returncode != 0
    assert "Check failed: the crash message" in out.stderr and "oneDNN" not in out.stderr


LSL_RUN = textwrap.dedent("""
    import time, uuid
    from edge.sources.lsl import import_pylsl
    pylsl = import_pylsl()
    name = "neurogrip-test-" + uuid.uuid4().hex[:8]
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 2, 100, "float32", name))
    found = pylsl.resolve_bypred(f"name='{name}'", 1, 10)
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(10)
    for _ in range(10):
        outlet.push_sample([1.0, 2.0])
        time.sleep(0.01)
    _, ts = inlet.pull_chunk(timeout=2.0)
    print(len(ts) > 0)
""")


@pytest.mark.parametrize("case", ["default", "verbose", "own config"])
def test_liblsl_info_lines_only_when_asked_for(case, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", cli.VERBOSE_ENV)}
    if case == "verbose":
        env[cli.VERBOSE_ENV] = "1"
    elif case == "own config":  # the user's own file is used as it is (here: INFO)
        (tmp_path / "mine.cfg").write_text("[log]\nlevel = 0\n")
        env["LSLAPICFG"] = str(tmp_path / "mine.cfg")
    out = subprocess.run([sys.executable, "-c", LSL_RUN], capture_output=True, text=True, check=False, cwd=tmp_path,
                         env={**env, "PYTHONPATH": str(REPO)}, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]
    assert ("INFO|" in out.stderr) == (case != "default"), out.stderr


def test_a_users_liblsl_config_is_kept_with_the_quiet_level(tmp_path, monkeypatch):
    from edge.sources import lsl_config

    monkeypatch.delenv("LSLAPICFG", raising=False)
    monkeypatch.delenv(cli.VERBOSE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lsl_api.cfg").write_text("[lab]\nKnownPeers = {10.0.0.2}\n[log]\nfile = /tmp/x.log\n")
    path = lsl_config.quiet_liblsl()
    assert path is not None and os.environ["LSLAPICFG"] == str(path)
    text = path.read_text()
    assert "KnownPeers = {10.0.0.2}" in text and "file = /tmp/x.log" in text and text.endswith("[log]\nlevel = -1\n")
    monkeypatch.delenv("LSLAPICFG")
    (tmp_path / "lsl_api.cfg").write_text("[log]\nlevel = 2\n")  # the user chose a level: liblsl reads it as is
    assert lsl_config.quiet_liblsl() is None and "LSLAPICFG" not in os.environ
