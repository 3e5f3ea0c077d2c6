"""Fixtures: build the firmware's host programs once per session, run the firmware core behind a pty."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from firmware_bridge.sim import build_host, start_arm_host


def pytest_collection_modifyitems(config, items):
    """The tests here that run the AVR binary on simavr (their ids say ``simavr``) need the cores to keep
    its ACK and watchdog deadlines in real time: they run in make test's exclusive phase (pyproject's
    markers).  The host build is a small C process and keeps them beside the other edge pass."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents and "simavr" in item.nodeid:
            item.add_marker(pytest.mark.exclusive)


@pytest.fixture(scope="session")
def host_build() -> Path:
    """``firmware_bridge/firmware/build/host``, freshly made (works on a clean clone)."""
    return build_host()


@pytest.fixture(scope="session")
def frametool(host_build):
    """A running ng_frametool: ``tool(line) -> reply line``."""
    proc = subprocess.Popen([str(host_build / "ng_frametool")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, bufsize=1)

    def ask(line: str) -> str:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    yield ask
    proc.stdin.close()
    proc.wait(timeout=5)


@pytest.fixture
def arm_host(host_build):
    """The firmware core on the host behind a fresh pty; yields the ArmHost handle."""
    host = start_arm_host(host_build)
    yield host
    host.stop()

