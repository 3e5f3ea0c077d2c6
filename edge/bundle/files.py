"""A bundle's files: the content hash, writing a bundle, and reading one with every read bounded.

Every read is bounded before it is made, by the numbers of the ``bounds`` section of
:mod:`edge.config` (read at call time):

* a bundle directory holds two regular files (three when signed).  A symbolic link is refused,
  not followed (a bundle is copied with its files: ``cp -rL``), as is anything but a regular file
  (a FIFO would block the read); each file's size is checked with ``stat`` and the read stops at
  the bound;
* a ``.zip``: its own size, then its end-of-archive record (member count, central-directory
  size, no zip64) before :mod:`zipfile` parses anything; then no member twice, none outside the
  bundle (absolute or ``..``), none a link or encrypted, declared sizes (each and in total)
  within the bounds, and each member read in chunks that stop at its bound, so a zip bomb is
  refused after at most the bound has been inflated;
* the manifest is parsed by :func:`edge.bundle.schema.parse_manifest` (size, UTF-8, nesting, no
  key twice) and checked by :func:`edge.bundle.schema.validate`;
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

from edge import config
from edge.bundle.rules import clip
from edge.bundle.schema import MANIFEST_FILE, MODEL_FILE, SCHEMA, SCHEMA_VERSION, SIGNATURE_FILE, validate
from edge.errors import BundleError


def canonical_json(obj) -> bytes:
    """The byte form hashed for ``content_hash``: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(manifest: dict, model: bytes) -> str:
    body = {k: v for k, v in manifest.items() if k != "content_hash"}
    h = hashlib.sha256(canonical_json(body))
    h.update(model)
    return "sha256:" + h.hexdigest()


def build_bundle(manifest: dict, model: bytes, where=".") -> tuple[dict, bytes]:
    """The manifest a bundle of ``model`` carries, sealed: ``schema``, ``schema_version``,
    ``model.file/bytes/sha256`` and ``content_hash`` filled in, validated (:func:`edge.bundle.schema.validate`);
    returns it with the exact bytes of its ``manifest.json``.  Hashes and validates once."""
    m = json.loads(json.dumps(manifest))  # a deep, JSON-clean copy
    m["schema"], m["schema_version"] = SCHEMA, SCHEMA_VERSION
    m.setdefault("model", {}).update(file=MODEL_FILE, bytes=len(model), sha256=hashlib.sha256(model).hexdigest())
    m["content_hash"] = content_hash(m, model)
    validate(m, where)
    return m, json.dumps(m, indent=1, sort_keys=True).encode()


def write_files(out, raw_manifest: bytes, model: bytes, raw_signature: bytes | None = None, *,
                archive: bool | None = None) -> Path:
    """Write a bundle's files as given: a directory, or a ``.zip`` when ``out`` ends in .zip or ``archive``.

    A directory's old ``signature.json`` is removed unless a new one is given: a signature of what was
    there before no longer applies.  Returns the path written.
    """
    out = Path(out)
    if archive or (archive is None and out.suffix == ".zip"):
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(MANIFEST_FILE, raw_manifest)
            z.writestr(MODEL_FILE, model)
            if raw_signature is not None:
                z.writestr(SIGNATURE_FILE, raw_signature)
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / SIGNATURE_FILE).unlink(missing_ok=True)
    (out / MODEL_FILE).write_bytes(model)
    (out / MANIFEST_FILE).write_bytes(raw_manifest)
    if raw_signature is not None:
        (out / SIGNATURE_FILE).write_bytes(raw_signature)
    return out


def write_bundle(out, manifest: dict, model: bytes, *, archive: bool | None = None) -> Path:
    """Write an unsigned bundle directory (or a ``.zip`` when ``out`` ends in .zip or ``archive``).

    Fills in ``schema``, ``schema_version``, ``model.file/bytes/sha256`` and ``content_hash``;
    returns the path written.  Refuses a manifest that :func:`edge.bundle.schema.validate` rejects.
    To write and load in one pass (signed or not), use :func:`edge.bundle.loader.seal`.
    """
    _, raw_manifest = build_bundle(manifest, model, out)
    return write_files(out, raw_manifest, model, archive=archive)


def _too_big(where, what: str, size, limit: int, fix: str = "re-export the bundle") -> None:
    raise BundleError(where, f"{what} is {size} bytes, over the {limit}-byte limit", fix)


def _read_capped(fh, limit: int, where, what: str) -> bytes:
    """Read ``fh`` to its end in chunks, refusing it as soon as more than ``limit`` bytes came."""
    parts, n, chunk = [], 0, config.BUNDLE_READ_CHUNK_BYTES
    while True:
        part = fh.read(min(chunk, limit + 1 - n))
        if not part:
            return b"".join(parts)
        parts.append(part)
        n += len(part)
        if n > limit:
            _too_big(where, what, f"more than {limit}", limit)


_LIMITS = {MANIFEST_FILE: "BUNDLE_MAX_MANIFEST_BYTES", MODEL_FILE: "BUNDLE_MAX_MODEL_BYTES",
           SIGNATURE_FILE: "BUNDLE_MAX_SIGNATURE_BYTES"}


def _limit(name: str) -> int:
    return getattr(config, _LIMITS[name])


def _read_dir(path: Path) -> tuple[bytes, bytes, bytes | None]:
    out = []
    for name in (MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE):
        p, limit = path / name, _limit(name)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            if name == SIGNATURE_FILE:  # optional: edge.bundle.trust decides whether an unsigned bundle loads
                out.append(None)
                continue
            raise BundleError(path, f"{name} is missing", "copy the whole bundle directory again") from None
        except OSError as exc:
            raise BundleError(path, f"{name} cannot be read ({exc.strerror})", "check its permissions") from None
        if stat.S_ISLNK(st.st_mode):
            raise BundleError(path, f"{name} is a symbolic link; a bundle holds its own files",
                              "copy the bundle with its files, not links to them (cp -rL)")
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(path, f"{name} is not a regular file", "copy the whole bundle directory again")
        if st.st_size > limit:
            _too_big(path, name, st.st_size, limit)
        try:  # O_NOFOLLOW/O_NONBLOCK: no link or FIFO swapped in since lstat() is followed or waited on
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise BundleError(path, f"{name} cannot be read ({exc.strerror})", "copy the whole bundle again") from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BundleError(path, f"{name} is not a regular file", "copy the whole bundle directory again")
            out.append(_read_capped(fh, limit, path, name))
    return out[0], out[1], out[2]


_EOCD = b"PK\x05\x06"          # end of central directory record (22 bytes + comment)


_ZIP64_LOCATOR = b"PK\x06\x07"  # zip64 end of central directory locator (20 bytes)


def _check_zip_directory(fh, size: int, path: Path) -> None:
    """Read the archive's end record the way zipfile finds it and bound what zipfile will read."""
    def refuse(problem):
        raise BundleError(path, f"not a readable bundle archive ({problem}); it may be truncated",
                          "copy it again and compare its size with the original")

    if size < 22:
        refuse("too short for a zip archive")
    tail_len = min(size, 22 + (1 << 16))
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    if tail[-22:-18] == _EOCD and tail[-2:] == b"\0\0":
        at = len(tail) - 22
    else:
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            refuse("no end-of-archive record")
    _, _, _, _, n_members, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", tail[at:at + 22])
    if n_members == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset) or tail[max(0, at - 20):at][:4] == _ZIP64_LOCATOR:
        raise BundleError(path, "the archive is a zip64 archive, which a bundle never is", "re-export the bundle")
    if n_members > config.BUNDLE_MAX_MEMBERS:
        raise BundleError(path, f"the archive has {n_members} members, over the limit of "
                                f"{config.BUNDLE_MAX_MEMBERS}", "re-export the bundle")
    if cd_size > config.BUNDLE_MAX_ZIP_DIRECTORY_BYTES:
        _too_big(path, "the archive's directory", cd_size, config.BUNDLE_MAX_ZIP_DIRECTORY_BYTES)
    fh.seek(0)


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
        return f"a member outside the bundle ({clip(repr(name))})"
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"a symbolic link {clip(repr(name))}"
    if info.flag_bits & 0x1:
        return f"an encrypted member {clip(repr(name))}"
    return None


def _read_zip(path: Path, size: int) -> tuple[bytes, bytes, bytes | None]:
    if size > config.BUNDLE_MAX_ARCHIVE_BYTES:
        _too_big(path, "the archive", size, config.BUNDLE_MAX_ARCHIVE_BYTES)
    try:
        with open(path, "rb") as fh:
            _check_zip_directory(fh, size, path)
            with zipfile.ZipFile(fh) as z:
                infos = z.infolist()
                if len(infos) > config.BUNDLE_MAX_MEMBERS:
                    raise BundleError(path, f"the archive has {len(infos)} members, over the limit of "
                                            f"{config.BUNDLE_MAX_MEMBERS}", "re-export the bundle")
                by_name = {}
                for info in infos:
                    problem = _member_problem(info)
                    if problem is None and info.filename in by_name:
                        problem = f"the member {clip(repr(info.filename))} twice"
                    if problem:
                        raise BundleError(path, f"the archive has {problem}", "re-export the bundle")
                    by_name[info.filename] = info
                for name in (MANIFEST_FILE, MODEL_FILE):
                    info = by_name.get(name)
                    if info is None:
                        raise BundleError(path, f"the archive has no {name}", "re-export the bundle")
                    if info.file_size > _limit(name):
                        _too_big(path, name, info.file_size, _limit(name))
                signature = by_name.get(SIGNATURE_FILE)  # optional, like the directory's
                if signature is not None and signature.file_size > _limit(SIGNATURE_FILE):
                    _too_big(path, SIGNATURE_FILE, signature.file_size, _limit(SIGNATURE_FILE))
                total = sum(i.file_size for i in infos)
                total_limit = sum(_limit(name) for name in _LIMITS)
                if total > total_limit:
                    _too_big(path, "the archive's content", total, total_limit)
                out = []
                for name in (MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE):
                    if name not in by_name:  # only the signature may be missing here
                        out.append(None)
                        continue
                    with z.open(by_name[name]) as member:
                        out.append(_read_capped(member, _limit(name), path, name))
                return out[0], out[1], out[2]
    except BundleError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError, NotImplementedError,
            ValueError, zlib.error, struct.error) as exc:
        raise BundleError(path, f"not a readable bundle archive ({clip(str(exc))}); it may be truncated",
                          "copy it again and compare its size with the original") from None


def read_files(path: Path) -> tuple[bytes, bytes, bytes | None]:
    """(manifest.json, model.tflite, signature.json or None), each read within its bound."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        raise BundleError(path, "no such bundle", "pass the directory or .zip written by 'neurogrip train --out'") \
            from None
    if stat.S_ISDIR(st.st_mode):
        return _read_dir(path)
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(path, "not a bundle directory or .zip file", "pass the directory or .zip written by "
                                                                      "'neurogrip train --out'")
    return _read_zip(path, st.st_size)
