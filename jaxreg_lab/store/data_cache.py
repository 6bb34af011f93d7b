"""The on-disk cache of generated locality data sets (rendered Pathfinder blocks).

Each entry is one ``.npz`` named by the SHA-256 of its (kind, version, config), written
atomically; :class:`NpzCache` is the library's :class:`jaxreg.locality.DataCache`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxreg.locality import LocalityData
from jaxreg_lab.store.files import atomic_save_npz

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


def _from_arrays(z) -> LocalityData:
    info = {k[5:]: z[k] for k in z.files if k.startswith("info_")}
    return LocalityData(z["images"], z["labels"], z["squares"] if "squares" in z.files else None, info)


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
            with np.load(path, allow_pickle=False) as z:
                return _from_arrays(z)
        data = make()
        atomic_save_npz(path, _to_arrays(data))
        return data
