"""`neurogrip bench --quick` runs and writes well-formed JSON (never asserts a timing)."""

import json

from edge import cli


def test_quick_bench_writes_stable_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["schema_version"] == 1 and report["quick"] is True
    assert {"cpu", "cores", "python", "libraries"} <= set(report["machine"])
    readers = report["sections"]["readers"]
    assert readers["rows"] > 0 and readers["neurogrip_s"] > 0 and readers["numpy_loadtxt_s"] > 0
    assert "### readers" in capsys.readouterr().out
