"""liblsl's configuration file, for its log level: a readable console without liblsl's INFO lines.

liblsl (the C++ library under pylsl) prints INFO lines on stderr the first time it is used
("Loaded default config", its git/build line) unless its configuration says otherwise: it reads
the file named by ``LSLAPICFG``, else the first of ``lsl_api.cfg`` (working directory),
``~/lsl_api/lsl_api.cfg`` and ``/etc/lsl_api/lsl_api.cfg``, and its ``[log] level`` (loguru's
verbosity) sets what it prints.  :func:`quiet_liblsl` points ``LSLAPICFG`` at a file with
``level = -1`` (warnings and errors), as :func:`edge.sources.lsl.import_pylsl` does before the
first import; ``neurogrip --verbose`` or a ``LSLAPICFG`` of the user's own leaves liblsl as it is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

# liblsl's log level (loguru verbosity): -2 errors, -1 warnings and errors, 0 INFO (liblsl's default).
LSL_LOG_LEVEL = -1
# Where liblsl looks for its configuration when LSLAPICFG is not set, in its order (api_config.cpp).
LSL_CONFIG_FILES = ("lsl_api.cfg", "~/lsl_api/lsl_api.cfg", "/etc/lsl_api/lsl_api.cfg")


def _sets_log_level(text: str) -> bool:
    """Whether an lsl_api.cfg text sets ``[log] level`` (read as liblsl's INI reader reads it)."""
    section = ""
    for line in text.splitlines():
        if line.startswith("[") and "]" in line:
            section = line[1:line.index("]")]
        elif section == "log" and line.partition("=")[0].strip() == "level" and "=" in line:
            return True
    return False


def quiet_liblsl() -> Path | None:
    """Have liblsl print only its warnings and errors, not its INFO lines ("Loaded default config",
    its git/build line), by pointing ``LSLAPICFG`` at a configuration whose ``[log] level`` is
    :data:`LSL_LOG_LEVEL`.  Returns that file, or None when nothing was changed.

    Nothing is changed when ``LSLAPICFG`` is already set (the user's own file, or the one a parent
    neurogrip set) or ``NEUROGRIP_VERBOSE=1`` (``neurogrip --verbose``).  A configuration the user
    keeps where liblsl looks (``lsl_api.cfg``, ``~/lsl_api/lsl_api.cfg``, ``/etc/lsl_api/lsl_api.cfg``)
    is copied with the level added, so its network settings still apply; if it sets a level itself,
    it is left alone.  liblsl reads its configuration once, at its first stream or resolve call: call
    this before (:func:`import_pylsl` does).  The file goes to a directory of this user's in the
    temporary directory; if it cannot be written, liblsl keeps its defaults.
    """
    if os.environ.get("LSLAPICFG") or os.environ.get("NEUROGRIP_VERBOSE") == "1":
        return None
    text = ""
    for name in LSL_CONFIG_FILES:
        path = Path(name).expanduser()
        if path.is_file():
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue  # liblsl skips an unreadable file too
            break
    if _sets_log_level(text):
        return None
    text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + f"[log]\nlevel = {LSL_LOG_LEVEL}\n"
    try:
        folder = Path(tempfile.gettempdir()) / f"neurogrip-{getattr(os, 'getuid', lambda: 'user')()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        st = folder.lstat()
        if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()) \
                or st.st_mode & 0o022:
            log.debug("%s is not a private folder of this user; liblsl keeps its log level", folder)
            return None
        path = folder / f"lsl_api-{hashlib.sha256(text.encode()).hexdigest()[:12]}.cfg"
        if not path.is_file() or path.read_text() != text:
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
    except OSError as exc:
        log.debug("cannot write a liblsl configuration (%s); liblsl keeps its log level", exc)
        return None
    os.environ["LSLAPICFG"] = str(path)
    return path
