"""Describe the machine a benchmark ran on (every report carries this)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata


def describe() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    libs = {}
    for dist in ("numpy", "scipy", "pylsl", "pyserial", "tflite-runtime", "ai-edge-litert", "tensorflow-cpu"):
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0],
            "platform": platform.platform(), "libraries": libs}
