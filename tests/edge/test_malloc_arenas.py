"""One malloc arena for the service (issue 13, docs/soak.md): liblsl starts new threads at every
re-connection, and with a second arena their churn fragmented its heap, so the soak's RSS grew at
each producer restart.  ``serve`` caps the arenas (edge/config.py MALLOC_ARENAS) before any source
opens; glibc's ``malloc_info`` lists the arenas a process has, which is what these tests count."""

from __future__ import annotations

import importlib
import platform
import subprocess
import sys

import pytest

from edge import config
from edge.errors import SourceError
from tests.conftest import FIXTURE_BUNDLES, REPO

_PROBE = """
import ctypes, sys, threading
from edge.runtime.serve import limit_malloc_arenas
if sys.argv[1] == "capped" and not limit_malloc_arenas():
    sys.exit("mallopt(M_ARENA_MAX) failed")
together = threading.Barrier(4)  # all alive at once: an exited thread's arena would be reused
broken = []
def work():  # > 512 bytes: malloc, not pymalloc; each new thread's first malloc picks its arena
    keep = [bytearray(4000) for _ in range(200)]
    try:
        together.wait(30)
    except threading.BrokenBarrierError as exc:
        broken.append(exc)
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
if broken:
    sys.exit("the four threads were not alive together")
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
fp = libc.fopen(sys.argv[2].encode(), b"w")
if not fp:
    sys.exit(f"cannot write {sys.argv[2]}")
libc.malloc_info(0, fp)
libc.fclose(fp)
print(open(sys.argv[2]).read().count("<heap nr="))
"""

serve_mod = importlib.import_module("edge.runtime.serve")  # edge.runtime.serve is also the function
needs_glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="not glibc: mallopt does not apply")


@needs_glibc
def test_the_capped_process_has_one_arena_after_four_threads_allocated(tmp_path):
    def arenas(mode):
        run = subprocess.run([sys.executable, "-c", _PROBE, mode, str(tmp_path / f"{mode}.xml")], check=False,
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    assert config.MALLOC_ARENAS == 1  # a second arena is what fragmented (docs/soak.md)
    assert arenas("capped") == 1
    assert arenas("uncapped") > 1  # so the probe can tell: each new thread got its own


def test_serve_caps_the_arenas_before_it_opens_the_source(monkeypatch):
    calls = []
    monkeypatch.setattr(serve_mod, "limit_malloc_arenas", lambda: calls.append("cap") or True)

    def no_source(spec):
        calls.append("open")
        raise SourceError("stop here")

    monkeypatch.setattr(serve_mod, "open_source", no_source)
    with pytest.raises(SourceError):
        serve_mod.serve(FIXTURE_BUNDLES / "gesture", "lsl:name=x", "none", install_signals=False)
    assert calls == ["cap", "open"]
