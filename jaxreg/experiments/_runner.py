"""Chunked, resumable execution of a vmapped computation.

A run is a sequence of chunks; after each, the carried state (a pytree) and the
outputs so far are checkpointed atomically under ``out_dir/.checkpoint``. A killed run
restarted with ``resume=True`` continues from the last complete chunk and, because the
chunking is the same, produces results identical to an uninterrupted run.

Across processes (:mod:`jaxreg.distributed`) every process runs every chunk, process 0
alone writes the checkpoint, and on resume every process reads it (``out_dir`` on a file
system all processes see) and they check that they continue from the same chunk.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from .. import distributed
from ..results import ResumeMismatch, atomic_save_npz, atomic_write_bytes

CHECKPOINT = ".checkpoint"


def _progress(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", leave=False)


def run_chunks(
    step: Callable,
    state,
    num_chunks: int,
    *,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str = "",
    fingerprint: str = "",
):
    """Run ``state, outputs = step(state, k)`` for k < num_chunks; returns (state, [outputs]).

    ``outputs`` is a dict of arrays. ``fingerprint`` (e.g. the config as JSON) must match
    on resume, so a checkpoint of another configuration is never continued.
    """
    ckpt = None if out_dir is None else Path(out_dir) / CHECKPOINT
    outputs: list[dict] = []
    start = 0
    if ckpt is not None and resume and (ckpt / "meta.json").exists():
        meta = json.loads((ckpt / "meta.json").read_text())
        if meta.get("fingerprint") != fingerprint:
            raise ResumeMismatch(f"--resume: the checkpoint in {ckpt} belongs to another configuration")
        start = int(meta["done"])
        state = eqx.tree_deserialise_leaves(io.BytesIO((ckpt / "state.eqx").read_bytes()), state)
        with np.load(ckpt / "outputs.npz") as z:
            keys = meta["keys"]
            outputs = [{k: z[f"{i}:{k}"] for k in keys} for i in range(start)]
    if resume and ckpt is not None:
        try:
            start = distributed.agree(start, f"--resume: the number of finished chunks in {ckpt}")
        except ValueError as e:
            raise ResumeMismatch(f"{e}; --out must be a directory every process sees") from None
    bar = _progress(num_chunks, desc, progress and distributed.is_writer())
    if bar is not None:
        bar.update(start)
    t0 = time.perf_counter()
    for k in range(start, num_chunks):
        state, out = step(state, k)
        out = {name: np.asarray(v) for name, v in jax.device_get(distributed.gathered(out)).items()}
        outputs.append(out)
        saved = distributed.gathered(state) if ckpt is not None else None  # a collective: on every process
        if ckpt is not None and distributed.is_writer():
            buf = io.BytesIO()
            eqx.tree_serialise_leaves(buf, saved)
            atomic_write_bytes(ckpt / "state.eqx", buf.getvalue())
            atomic_save_npz(ckpt / "outputs.npz", {f"{i}:{n}": v for i, o in enumerate(outputs) for n, v in o.items()})
            meta = {"fingerprint": fingerprint, "done": k + 1, "keys": sorted(out)}
            atomic_write_bytes(ckpt / "meta.json", json.dumps(meta).encode())
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return state, outputs, time.perf_counter() - t0


def stack_chunks(outputs: list[dict], axis: int) -> dict:
    """Concatenate each output over chunks along ``axis``."""
    return {k: np.concatenate([o[k] for o in outputs], axis=axis) for k in outputs[0]}


def clear_checkpoint(out_dir) -> None:
    if out_dir is None:
        return
    import shutil

    shutil.rmtree(Path(out_dir) / CHECKPOINT, ignore_errors=True)
