"""The model bundle: the only thing that crosses from the workstation to the Pi (docs/architecture.md).

One package, layered from the bottom: :mod:`~edge.bundle.rules` and :mod:`~edge.bundle.schema` (the
manifest, written as data), :mod:`~edge.bundle.files` (the content hash, writing, reading with every
read bounded), :mod:`~edge.bundle.probe` (the model run once in a child process),
:mod:`~edge.bundle.keys`, :mod:`~edge.bundle.signature`, :mod:`~edge.bundle.device_trust` and
:mod:`~edge.bundle.trust` (who may have made a bundle), :mod:`~edge.bundle.loader` (a validated
:class:`Bundle`), then what uses a loaded bundle: :mod:`~edge.bundle.signing` (sign, verify),
:mod:`~edge.bundle.installed` (the bundle the service runs) and :mod:`~edge.bundle.commands` (the
``keygen``, ``sign`` and ``verify`` sub-commands).  This face hands on the names most callers need.
"""

from edge.bundle.files import canonical_json, content_hash, write_bundle
from edge.bundle.loader import Bundle, load_bundle, validate_manifest
from edge.bundle.probe import probe_model
from edge.bundle.schema import MANIFEST_FILE, MODEL_FILE, SCHEMA, SCHEMA_VERSION

__all__ = ["MANIFEST_FILE", "MODEL_FILE", "SCHEMA", "SCHEMA_VERSION", "Bundle", "canonical_json", "content_hash",
           "load_bundle", "probe_model", "validate_manifest", "write_bundle"]
