"""Progress of long work: a tqdm bar on a terminal, plain lines elsewhere, nothing when asked."""

import fcntl
import os
import struct
import subprocess
import sys
import termios

from edge.progress import Progress


def test_lines_when_not_a_terminal(capsys):
    seen = []
    with Progress(3, "epochs", seen.append) as p:  # pytest's stderr is no terminal
        p.start("starting")
        p.step("    epoch 1/3: loss 1.0")
        p.note("ERROR something")
    assert seen == ["starting", "    epoch 1/3: loss 1.0", "ERROR something"]
    assert capsys.readouterr().err == ""


def test_nothing_at_all_without_a_line_sink(capsys):
    with Progress(3, "epochs", None, bar=True) as p:
        p.step("x")
        p.note("y")
    assert capsys.readouterr().err == ""


def test_a_bar_instead_of_lines_and_notes_above_it(capsys):
    seen = []
    with Progress(2, "bench", seen.append, bar=True) as p:
        p.start("[bench] filter ...")
        p.step("[bench] filter: 1.0 s")
        p.note("[bench] link: ERROR no avr-gcc")
        p.step("[bench] link: 0.1 s")
    err = capsys.readouterr().err
    assert seen == []  # the bar replaced the lines
    assert "2/2" in err and "100%" in err and "[bench] link: ERROR no avr-gcc\n" in err


def test_a_terminal_gets_the_bar_by_itself():
    """On a real pseudo-terminal stderr, Progress picks the bar without being told."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal's size
    code = ("from edge.progress import Progress\n"
            "with Progress(4, 'epochs', print) as p:\n"
            "    [p.step(f'epoch {k}') for k in range(4)]\n")
    proc = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=follower, timeout=60, cwd=os.getcwd(), check=False)
    os.close(follower)
    out = b""
    try:
        while chunk := os.read(leader, 4096):
            out += chunk
    except OSError:  # EIO: the terminal's other end is closed
        pass
    os.close(leader)
    assert proc.returncode == 0 and proc.stdout == b""  # no lines: the bar
    assert b"epochs" in out and b"4/4" in out
