"""The neurogrip command line: sub-commands, one-line errors with the fix."""

import subprocess
import sys

import pytest

from edge import cli


def run(*args):
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, check=False)


def test_unknown_subcommand_is_one_line_with_the_fix():
    out = run("fly")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "invalid choice: 'fly'" in out.stderr and "--help" in out.stderr


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
