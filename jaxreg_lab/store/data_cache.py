"""The on-disk cache of generated locality data sets (rendered Pathfinder blocks).

Each entry is one ``.npz`` named by the SHA-256 of its (kind, version, config), written
atomically, with the SHA-256 of its bytes beside it (``<entry>.npz.sha256``); an entry
whose checksum is missing or differs (truncated, damaged, replaced) is generated afresh,
with one line on stderr. Entries are read without pickle (arrays only).
:class:`NpzCache` is the library's :class:`jaxreg.locality.DataCache`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from jaxreg.locality import LocalityData
from jaxreg_lab.store.files import CorruptFile, atomic_write_bytes, npz_bytes, read_npz, sha256

__all__ = ["NpzCache", "cache_dir"]

VERSION = 2


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where generated data sets are cached.

    Arguments:
        path: an explicit directory, or None.

    Returns:
        ``path`` if given, else $JAXREG_CACHE, else $XDG_CACHE_HOME/jaxreg, else
        ~/.cache/jaxreg.
    """
    if path is not None:
        return Path(path)
    if os.environ.get("JAXREG_CACHE"):
        return Path(os.environ["JAXREG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxreg"


def _to_arrays(d: LocalityData) -> dict:
    out = {"images": d.images, "labels": d.labels}
    if d.squares is not None:
        out["squares"] = d.squares
    out.update({f"info_{k}": v for k, v in d.info.items()})
    return out


def _from_arrays(z: dict) -> LocalityData:
    info = {k[5:]: v for k, v in z.items() if k.startswith("info_")}
    return LocalityData(z["images"], z["labels"], z.get("squares"), info)


def _checked(path: Path) -> LocalityData | None:
    """The entry at ``path`` when its bytes match the checksum beside it, else None
    (one line on stderr says why it is generated afresh)."""
    mark = path.with_name(path.name + ".sha256")
    blob = path.read_bytes()
    recorded = mark.read_text(encoding="ascii", errors="replace").strip() if mark.is_file() else None
    why = "no checksum beside it" if recorded is None else "its checksum differs" if recorded != sha256(blob) else None
    if why is None:
        try:
            data = read_npz(path, blob)
            if {"images", "labels"} <= set(data):
                return _from_arrays(data)
            why = "it lacks images or labels"
        except CorruptFile:
            why = "it cannot be read"
    print(f"jaxreg: data cache entry {path} is not used ({why}); generating it afresh", file=sys.stderr)
    return None


@dataclasses.dataclass(frozen=True)
class NpzCache:
    """Generated samples kept as ``.npz`` files in ``directory`` (default :func:`cache_dir`)."""

    directory: Path | None = None

    def path(self, kind: str, config: dict) -> Path:
        """The file of the entry (``kind``, ``config``)."""
        blob = json.dumps({"kind": kind, "version": VERSION, **config}, sort_keys=True)
        return cache_dir(self.directory) / f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}.npz"

    def __call__(self, kind: str, config: dict, make: Callable[[], LocalityData]) -> LocalityData:
        path = self.path(kind, config)
        if path.exists():
            cached = _checked(path)
            if cached is not None:
                return cached
        data = make()
        blob = npz_bytes(_to_arrays(data))
        atomic_write_bytes(path, blob)  # the entry first, then its checksum: a crash between leaves no match
        atomic_write_bytes(path.with_name(path.name + ".sha256"), sha256(blob).encode())
        return data
