"""The bundle a Pi's service runs: a symlink switched atomically, the previous one kept for rollback.

The systemd unit runs ``/opt/neurogrip/bundle`` (:data:`edge.config.BUNDLE_LINK`,
``$NEUROGRIP_BUNDLE_LINK``).  That path is a symlink into a store of bundles next to it
(``bundles/NAME-HASH``), and ``bundle.previous`` points at the one it replaced:

* :func:`install_bundle` (``neurogrip install-bundle B``, ``neurogrip calibrate ... --install``)
  loads the bundle as the service would (signature and all: what the service would refuse is never
  installed), copies it into the store, points ``bundle.previous`` at the current one and switches
  ``bundle`` with one ``rename`` — a service starting at any moment reads either the old bundle or
  the new one, never a half-copied one;
* :func:`rollback` (``neurogrip rollback``) swaps the two links back.

The running service keeps the bundle it loaded; ``systemctl restart neurogrip`` starts the new one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge import config
from edge.errors import BundleError

LINK_ENV = "NEUROGRIP_BUNDLE_LINK"
PREVIOUS_SUFFIX = ".previous"


def bundle_link() -> Path:
    """The link the service runs (``$NEUROGRIP_BUNDLE_LINK``, else :data:`edge.config.BUNDLE_LINK`)."""
    return Path(os.environ.get(LINK_ENV) or config.BUNDLE_LINK)


def _point(link: Path, target: Path) -> None:
    """Make ``link`` a symlink to ``target`` in one rename (atomic on one file system)."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _store(link: Path) -> Path:
    return link.with_name(link.name + "s")  # /opt/neurogrip/bundle -> /opt/neurogrip/bundles


def install_bundle(src, link: Path | None = None) -> tuple[Path, Path | None]:
    """Install the bundle at ``src`` as the one the service runs; returns (installed, previous or None).

    Raises
    ------
    BundleError
        The bundle does not load here (the message is the loader's), or the link is in the way.
    """
    from edge.bundle.loader import load_bundle

    link = bundle_link() if link is None else Path(link)
    bundle = load_bundle(src)  # with this machine's trust store: refused here means refused by the service
    store = _store(link)
    store.mkdir(parents=True, exist_ok=True)
    name = Path(src).name.removesuffix(".zip")
    target = store / f"{name}-{bundle.content_hash[7:19]}{'.zip' if Path(src).suffix == '.zip' else ''}"
    # The name covers the content hash, not signature.json: a copy already there is reused only if it
    # is the same files (a re-signed bundle, after a key rotation, is copied again).
    if target.exists() and not _same_files(Path(src), target):
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    if not target.exists():
        tmp = store / f".{target.name}.{os.getpid()}.tmp"
        try:
            if Path(src).is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(src, tmp, symlinks=False)
            else:
                shutil.copyfile(src, tmp)
            load_bundle(tmp)  # the copy is whole and loads, before it takes the name
            os.replace(tmp, target)
        except (OSError, shutil.Error) as exc:
            raise BundleError(target, f"could not be copied into the store ({exc})",
                              f"check the space and permissions of {store}") from None
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
    previous = None
    if link.is_symlink():
        previous = Path(os.readlink(link))
        if previous.resolve() == target.resolve():
            return target, _previous(link)  # already the one: nothing to switch
    elif link.exists():
        raise BundleError(link, "is a real file or directory, not the link this command manages",
                          f"move it into {store} and run this again (docs/deploy-pi.md)")
    if previous is not None:
        _point(link.with_name(link.name + PREVIOUS_SUFFIX), previous)
    _point(link, target)
    return target, previous


def _same_files(src: Path, target: Path) -> bool:
    """Whether two bundles (directories, or .zip files) hold the same bytes."""
    def files(p: Path) -> dict[str, bytes]:
        if p.is_dir():
            return {f.name: f.read_bytes() for f in sorted(p.iterdir()) if f.is_file()}
        return {"": p.read_bytes()}
    try:
        return files(src) == files(target)
    except OSError:
        return False


def _previous(link: Path) -> Path | None:
    prev = link.with_name(link.name + PREVIOUS_SUFFIX)
    return Path(os.readlink(prev)) if prev.is_symlink() else None


def rollback(link: Path | None = None) -> tuple[Path, Path]:
    """Swap the service's bundle with the previous one; returns (now running, now previous).

    Raises
    ------
    BundleError
        No previous bundle to go back to, or it no longer loads.
    """
    from edge.bundle.loader import load_bundle

    link = bundle_link() if link is None else Path(link)
    previous = _previous(link)
    if previous is None or not link.is_symlink():
        raise BundleError(link, "has no previous bundle to go back to",
                          "install one with 'neurogrip install-bundle BUNDLE' (or calibrate --install) first")
    load_bundle(previous)
    current = Path(os.readlink(link))
    _point(link.with_name(link.name + PREVIOUS_SUFFIX), current)
    _point(link, previous)
    return previous, current
