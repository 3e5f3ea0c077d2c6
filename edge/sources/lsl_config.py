"""Importing pylsl, and liblsl's configuration file: its log level and its isolation settings.

:func:`import_pylsl` configures liblsl, then imports pylsl, turning a missing module or library
into a :class:`SourceError` that says how to install it.

liblsl (the C++ library under pylsl) reads one configuration file, once per process, at its first
stream or resolve call: the file named by ``LSLAPICFG`` if it is readable, else the first of
``lsl_api.cfg`` (working directory), ``~/lsl_api/lsl_api.cfg`` and ``/etc/lsl_api/lsl_api.cfg``.

- Log level: liblsl prints INFO lines on stderr ("Loaded default config", its git/build line) unless
  its ``[log] level`` (loguru's verbosity) says otherwise.  :func:`quiet_liblsl` points ``LSLAPICFG``
  at a copy of that file with ``level = -1`` (warnings and errors), as
  :func:`edge.sources.lsl.import_pylsl` does before the first import; ``neurogrip --verbose`` or a
  ``LSLAPICFG`` of the user's own leaves liblsl as it is.
- Isolation (docs/security.md): ``[multicast] ResolveScope = machine`` sends liblsl's stream queries
  to this machine only (a producer on the same Pi), and ``[lab] SessionID`` is a word both ends must
  share for a stream to be found at all.  The ``lsl:`` options ``scope=`` and ``session=`` add them
  to that copy (:func:`configure_liblsl`); the producer must use the same SessionID, most simply by
  both reading ``/etc/lsl_api/lsl_api.cfg``.  Neither is authentication: they keep other set-ups'
  streams apart, they do not stop a process that copies them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import sys
import tempfile
from pathlib import Path

from edge.config import LSL_CONFIG_MAX_BYTES
from edge.errors import SourceError, SourceSpecError

log = logging.getLogger(__name__)

# liblsl's log level (loguru verbosity): -2 errors, -1 warnings and errors, 0 INFO (liblsl's default).
LSL_LOG_LEVEL = -1
# Where liblsl looks for its configuration when LSLAPICFG is not set, in its order (api_config.cpp).
LSL_CONFIG_FILES = ("lsl_api.cfg", "~/lsl_api/lsl_api.cfg", "/etc/lsl_api/lsl_api.cfg")
# ResolveScope values liblsl accepts (api_config.cpp); any other makes liblsl reject the whole file.
LSL_SCOPES = ("machine", "link", "site", "organization", "global")
SCOPE = ("multicast", "ResolveScope")
SESSION = ("lab", "SessionID")
# What liblsl uses when its file does not say (api_config.cpp).
LSL_DEFAULTS = {SCOPE: "site", SESSION: "default"}
# liblsl pastes the SessionID into its queries between single quotes, unescaped: keep it to a plain word.
_SESSION_WORD = re.compile(r"[A-Za-z0-9._-]{1,64}")

_in_force: dict[tuple[str, str], str] | None = None  # ResolveScope, SessionID of this process, once set


def check_isolation(scope, session) -> tuple[str | None, str | None]:
    """The ``scope=`` and ``session=`` options of an ``lsl:`` spec, checked (None: liblsl's file decides)."""
    if scope is not None and scope not in LSL_SCOPES:
        raise SourceSpecError(f"scope={scope!r} is not a liblsl ResolveScope; write one of {', '.join(LSL_SCOPES)} "
                              "(machine: streams of this machine only)")
    if session is not None and not (isinstance(session, str) and _SESSION_WORD.fullmatch(session)):
        raise SourceSpecError(f"session={session!r} must be 1 to 64 letters, digits, '.', '_' or '-' "
                              "(liblsl's SessionID, shared with the producer)")
    return scope, session


def _ini_get(text: str, section: str, key: str) -> str | None:
    """``[section] key``'s value in an lsl_api.cfg text, read as liblsl's INI reader reads it."""
    current = ""
    for line in text.splitlines():
        if line.startswith("[") and "]" in line:
            current = line[1:line.index("]")]
        elif current == section and "=" in line and not line.startswith(";"):
            k, _, v = line.partition("=")
            if k.strip() == key:
                return v.strip()
    return None


def _ini_set(text: str, values: dict[tuple[str, str], str]) -> str:
    """``text`` with ``values`` set: their old lines go (liblsl refuses a file with a key twice) and
    each section is appended at the end (liblsl reads a section given twice as one)."""
    kept, current = [], ""
    for line in text.splitlines():
        if line.startswith("[") and "]" in line:
            current = line[1:line.index("]")]
        elif "=" in line and not line.startswith(";") and (current, line.partition("=")[0].strip()) in values:
            continue
        kept.append(line)
    out = "\n".join(kept).rstrip("\n")
    for section in dict.fromkeys(s for s, _ in values):
        block = "".join(f"{k} = {v}\n" for (s, k), v in values.items() if s == section)
        out = (out + "\n\n" if out.strip() else "") + f"[{section}]\n{block}".rstrip("\n")
    return out + "\n"


def _config_text() -> tuple[Path | None, str]:
    """The file liblsl will read and its text (``(None, "")``: none, liblsl's defaults)."""
    candidates = [os.environ["LSLAPICFG"]] if os.environ.get("LSLAPICFG") else []
    for name in candidates + list(LSL_CONFIG_FILES):
        path = Path(name).expanduser()
        try:
            if not path.is_file():
                continue
            size = path.stat().st_size
            if size > LSL_CONFIG_MAX_BYTES:
                raise SourceError(f"{path} is {size} bytes, more than a liblsl configuration needs "
                                  f"(at most {LSL_CONFIG_MAX_BYTES}); fix or remove it")
            with path.open("rb") as f:
                return path, f.read(LSL_CONFIG_MAX_BYTES).decode(errors="replace")
        except OSError:
            continue  # liblsl skips an unreadable file too
    return None, ""


def quiet_liblsl(settings: dict[tuple[str, str], str] | None = None) -> Path | None:
    """Have liblsl print only its warnings and errors, not its INFO lines ("Loaded default config",
    its git/build line), by pointing ``LSLAPICFG`` at a configuration whose ``[log] level`` is
    :data:`LSL_LOG_LEVEL`; ``settings`` (``(section, key) → value``) are set in it as well.  Returns
    that file, or None when nothing was changed.

    Without ``settings``, nothing is changed when ``LSLAPICFG`` is already set (the user's own file,
    or the one a parent neurogrip set) or ``NEUROGRIP_VERBOSE=1`` (``neurogrip --verbose``); with
    them, that file is copied with them added (and its log level kept).  A configuration the user
    keeps where liblsl looks (``lsl_api.cfg``, ``~/lsl_api/lsl_api.cfg``, ``/etc/lsl_api/lsl_api.cfg``)
    is copied with the level added, so its network settings still apply; if it sets a level itself,
    it is left alone.  liblsl reads its configuration once, at its first stream or resolve call: call
    this before (:func:`import_pylsl` does).  The file goes to a directory of this user's in the
    temporary directory; if it cannot be written, liblsl keeps its defaults, unless ``settings`` were
    asked for: then :class:`SourceError`.
    """
    own = bool(os.environ.get("LSLAPICFG"))
    verbose = os.environ.get("NEUROGRIP_VERBOSE") == "1"
    settings = dict(settings or {})
    if (own or verbose) and not settings:
        return None
    _, text = _config_text()
    if not own and not verbose and _ini_get(text, "log", "level") is None:
        settings["log", "level"] = str(LSL_LOG_LEVEL)
    settings = {k: v for k, v in settings.items() if _ini_get(text, *k) != v}
    if not settings:
        return None
    text = _ini_set(text, settings)
    try:
        folder = Path(tempfile.gettempdir()) / f"neurogrip-{getattr(os, 'getuid', lambda: 'user')()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        st = folder.lstat()
        if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()) \
                or st.st_mode & 0o022:
            raise OSError(f"{folder} is not a private folder of this user")
        path = folder / f"lsl_api-{hashlib.sha256(text.encode()).hexdigest()[:12]}.cfg"
        if not path.is_file() or path.read_text() != text:
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
    except OSError as exc:
        if set(settings) - {("log", "level")}:
            raise SourceError(f"cannot write the liblsl configuration with {settings} ({exc}); set them in "
                              "/etc/lsl_api/lsl_api.cfg instead (docs/security.md)") from exc
        log.debug("cannot write a liblsl configuration (%s); liblsl keeps its log level", exc)
        return None
    os.environ["LSLAPICFG"] = str(path)
    return path


def scope_in_force(scope: str | None = None) -> tuple[str, str]:
    """The ``ResolveScope`` liblsl would use in a new process given a spec's ``scope=`` (None: its
    file decides), and where it comes from — without configuring anything (``neurogrip doctor``)."""
    if scope is not None:
        return check_isolation(scope, None)[0], "the source spec's scope="
    path, text = _config_text()
    value = _ini_get(text, *SCOPE)
    if value is not None:
        return value, str(path)
    return LSL_DEFAULTS[SCOPE], "liblsl's default" + (f" ({path} does not set it)" if path else "")


def configure_liblsl(scope: str | None = None, session: str | None = None) -> dict[str, str]:
    """Configure liblsl for this process before its first use: the quiet log level
    (:func:`quiet_liblsl`) and, if given, ``ResolveScope`` and ``SessionID``.

    The first call decides, since liblsl reads its file once per process; a later call that asks for
    other values raises :class:`SourceSpecError`.  Returns the ``ResolveScope`` and ``SessionID``
    liblsl uses (from its file, else its defaults).
    """
    global _in_force
    scope, session = check_isolation(scope, session)
    want = {k: v for k, v in ((SCOPE, scope), (SESSION, session)) if v is not None}
    if _in_force is None:
        quiet_liblsl(want)
        _, text = _config_text()
        _in_force = {k: _ini_get(text, *k) or default for k, default in LSL_DEFAULTS.items()}
    clash = {k: v for k, v in want.items() if _in_force[k] != v}
    if clash:
        (section, key), value = next(iter(clash.items()))
        raise SourceSpecError(f"liblsl already runs with {key} = {_in_force[section, key]} in this process (it "
                              f"reads its configuration once), so {key} = {value} cannot apply; set it in "
                              "/etc/lsl_api/lsl_api.cfg (docs/security.md), or open this source in a process "
                              "of its own")
    return {key: value for (_, key), value in _in_force.items()}


LIBLSL_FIX = ("on a 64-bit Raspberry Pi `pip install pylsl` brings no liblsl: install liblsl from the "
              "liblsl releases .deb (https://github.com/sccn/liblsl/releases) or build it, and set "
              "PYLSL_LIB=/path/to/liblsl.so")


def use_bundled_liblsl() -> Path | None:
    """Point pylsl at the liblsl that ``deploy/install.sh`` puts into this environment
    (``lib/neurogrip/liblsl.so``: pip's pylsl carries none on aarch64), unless ``PYLSL_LIB`` is set.
    Call before pylsl is imported; returns the library used, or None."""
    bundled = Path(sys.prefix) / "lib" / "neurogrip" / "liblsl.so"
    if not os.environ.get("PYLSL_LIB") and bundled.is_file():
        os.environ["PYLSL_LIB"] = str(bundled)
        return bundled
    return None


def import_pylsl(scope: str | None = None, session: str | None = None):
    """Import pylsl, turning a missing module or a missing liblsl into a SourceError with the fix.

    liblsl is configured first (:func:`~edge.sources.lsl_config.configure_liblsl`): its INFO lines
    kept out of the console and, if given, its ResolveScope and SessionID."""
    configure_liblsl(scope, session)
    use_bundled_liblsl()
    try:
        import pylsl
    except ModuleNotFoundError as exc:
        raise SourceError(f"the Python module pylsl is not installed ({exc}); install it with "
                          f"pip install 'neurogrip[edge]'; {LIBLSL_FIX}") from exc
    except (ImportError, RuntimeError, OSError) as exc:  # pylsl raises RuntimeError when liblsl is missing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"pylsl cannot load liblsl ({first}); {LIBLSL_FIX}") from exc
    return pylsl


def lsl_errors(pylsl) -> tuple[type, type]:
    """pylsl's (TimeoutError, LostError); their module moved between pylsl versions."""
    for mod in (pylsl, getattr(pylsl, "util", None), getattr(pylsl, "pylsl", None)):
        if mod is not None and hasattr(mod, "LostError") and hasattr(mod, "TimeoutError"):
            return mod.TimeoutError, mod.LostError
    return RuntimeError, RuntimeError  # both derive from RuntimeError in every pylsl
