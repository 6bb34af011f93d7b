"""Chunked, checkpointed, resumable execution: the one runner of every reproduction.

A run is a sequence of chunks ``state, outputs = step(state, k)``. After each chunk the
carried state (a pytree) and the outputs so far are committed as one unit: a new
directory ``chunk-<k+1>`` holding ``state.eqx``, ``outputs.npz`` and, written last,
``manifest.json`` (the number of chunks done, the run's fingerprint and the SHA-256 of
both files) is built under a temporary name and renamed into place; older units are
then removed (:mod:`jaxreg_lab.store.checkpoints` reads and writes the units). A killed run therefore leaves a last unit that is complete, and
``resume=True`` verifies it (checksums, fingerprint) and continues bit-identically from
it, or refuses with one line naming the file.

Checkpoints live in ``out_dir/.checkpoint/`` (``out_dir/.checkpoint/<name>/`` for a
named sub-run, e.g. one grid point of the locality reproductions).

The fingerprint rule (:func:`jaxreg_lab.store.results.fingerprint`): the config's digest, the
precision (x64 on or off) and the package versions; a resume continues a checkpoint
only when all three are equal.

Across processes (:mod:`jaxreg.distributed`) every process takes part in every chunk
(:func:`run_reproduction` splits the runs over them), process 0 alone writes the
checkpoint, and on resume every process reads it (``out_dir`` on a file system all
processes see) and they check that they continue from the same chunk.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import Status, distributed
from jaxreg.batching import run_slices, take_runs
from jaxreg_lab.contract import EpochReproduction, EpochSetup, Final
from jaxreg_lab.store.checkpoints import CHECKPOINT as CHECKPOINT
from jaxreg_lab.store.checkpoints import CheckpointExists as CheckpointExists
from jaxreg_lab.store.checkpoints import check_resumable as check_resumable
from jaxreg_lab.store.checkpoints import checkpoints as checkpoints
from jaxreg_lab.store.checkpoints import clear_checkpoint as clear_checkpoint
from jaxreg_lab.store.checkpoints import commit_unit, load_unit, units
from jaxreg_lab.store.metrics_log import append_record, chunk_record, truncate_from
from jaxreg_lab.store.results import ResumeMismatch, as_fingerprint

__all__ = [
    "run_chunks",
    "stack_chunks",
    "checkpoints",
    "check_resumable",
    "clear_checkpoint",
    "run_reproduction",
    "run_named",
    "CheckpointExists",
    "CHECKPOINT",
]


def _progress(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", leave=False)


def _restart_clock(bar, done: int) -> None:
    """Time the bar's rate and ETA from now on, ``done`` chunks counted as already there:
    the first chunk of a call pays the compilation, which the later chunks do not."""
    bar.reset()
    bar.initial = bar.n = bar.last_print_n = done
    bar.refresh()


def run_chunks(
    step: Callable,
    state,
    num_chunks: int,
    *,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str = "",
    fingerprint="",
    name: str = "",
    stop: Callable | None = None,
    precision: str | None = None,
    on_chunk: Callable | None = None,
    log: Callable | None = None,
):
    """Run ``state, outputs = step(state, k)`` for k < num_chunks, committing a checkpoint
    after each chunk.

    With an ``out_dir``, each finished chunk also appends a line to
    ``out_dir/metrics.jsonl`` (:func:`jaxreg_lab.store.metrics_log.chunk_record`), before
    its checkpoint is committed; a start or resume at chunk k first drops this run's lines
    of chunks >= k, so the log holds every chunk once.

    Arguments:
        step: ``step(state, k) -> (state, outputs)``; ``outputs`` a dict of arrays.
        state: the initial state (a pytree; also the structure a checkpoint is read into).
        num_chunks: the number of chunks.
        out_dir: checkpoints go to ``out_dir/.checkpoint[/name]``; None: no checkpoints.
        resume: continue the checkpoint in ``out_dir`` (absent: start afresh). Without
            it, an existing checkpoint raises :class:`CheckpointExists` (it is never
            discarded silently; :func:`clear_checkpoint` discards it).
        progress, desc: a tqdm bar over chunks; its rate and ETA leave out the first chunk
            of the call (which compiles).
        fingerprint: the run's identity: a config (dataclass, mapping or string) turned
            into a fingerprint by :func:`jaxreg_lab.store.results.fingerprint`, or a fingerprint;
            it must match on resume (:class:`ResumeMismatch` otherwise).
        name: a sub-run's name (its own checkpoint directory).
        stop: ``stop(state) -> bool``, checked after each chunk: True ends the run early.
        precision: overrides the fingerprint's precision ("float32" for a run that always
            computes in float32).
        on_chunk: ``on_chunk(k, state, outputs)`` after chunk k is committed; a dict it
            returns is shown beside the progress bar.
        log: ``log(record)`` with each chunk's metrics record (the line of
            ``metrics.jsonl``), after the chunk is committed, on the writing process only
            (e.g. :mod:`jaxreg_lab.tracking`'s TensorBoard or wandb logger).

    Returns:
        ``(state, outputs, wall_time)``: the final state, the list of each chunk's outputs
        (numpy) and the seconds spent in this call.
    """
    directory = None if out_dir is None else Path(out_dir) / CHECKPOINT / name
    fp = as_fingerprint(fingerprint, precision=precision)
    outputs: list[dict] = []
    start, stopped = 0, False
    if directory is not None and units(directory):
        if not resume:
            raise CheckpointExists(
                f"{directory} holds a partial run; continue it with resume=True or remove it first (clear_checkpoint)"
            )
        state, outputs, start, stopped = load_unit(directory, state, fp, num_chunks)
    if resume and directory is not None:
        try:
            start = distributed.agree(start, f"the number of finished chunks in {directory}")
        except ValueError as e:
            raise ResumeMismatch(f"{e}; out_dir must be a directory every process sees") from None
    manifest = {"format": 1, "num_chunks": num_chunks, "fingerprint": fp}
    if out_dir is not None and distributed.is_writer():
        truncate_from(out_dir, name, start)
    bar = _progress(num_chunks, desc, progress and distributed.is_writer())
    if bar is not None:
        bar.update(start)
    t0 = time.perf_counter()
    for k in range(start, num_chunks if not stopped else start):
        state, out = step(state, k)
        out = {n: np.asarray(v) for n, v in jax.device_get(distributed.gathered(out)).items()}
        outputs.append(out)
        stopped = stop is not None and bool(stop(state))
        saved = distributed.gathered(state) if directory is not None else None  # a collective: on every process
        record = None
        if (directory is not None or log is not None) and distributed.is_writer():
            record = chunk_record(name, k, num_chunks, time.perf_counter() - t0, out)
        if directory is not None and distributed.is_writer():
            append_record(out_dir, record)
            commit_unit(directory, k + 1, saved, outputs, {**manifest, "keys": sorted(out), "stopped": stopped})
        if log is not None and record is not None:
            log(record)
        postfix = on_chunk(k, state, out) if on_chunk is not None else None
        if bar is not None:
            if postfix:
                bar.set_postfix(**postfix, refresh=False)
            if k == start:  # the first chunk: compilation plus one chunk's work
                _restart_clock(bar, k + 1)
            else:
                bar.update(1)
        if stopped:
            break
    if bar is not None:
        bar.close()
    return state, outputs, time.perf_counter() - t0


def stack_chunks(outputs: list[dict], axis: int) -> dict[str, np.ndarray]:
    """Concatenate each output over chunks along ``axis``.

    Arguments:
        outputs: the per-chunk outputs of :func:`run_chunks`, dicts with the same keys.
        axis: the axis along which the chunks follow each other (e.g. save times).

    Returns:
        ``{key: np.concatenate([o[key] for o in outputs], axis)}``.
    """
    return {k: np.concatenate([o[k] for o in outputs], axis=axis) for k in outputs[0]}


@dataclasses.dataclass(frozen=True)
class _OneRun:
    """One run's chunk of ``reproduction`` under ``config``; compares by value, so every
    run of the same reproduction and config reuses one compiled program."""

    reproduction: Any
    config: Any

    def __hash__(self) -> int:
        # a config with a table field (e.g. the sweep's optimizer_options) is not
        # hashable: equal configs then share the hash of their class, and jit's cache
        # tells them apart by equality
        try:
            return hash((self.reproduction, self.config))
        except TypeError:
            return hash((self.reproduction, type(self.config)))

    def __call__(self, inputs, state, k):
        return self.reproduction.chunk(self.config, inputs, state, k)


def _batch_of_runs(one: _OneRun, inputs, state, k):
    """``one`` for every run of a batch (leading axis), vmapped; a batch of one run is
    run unbatched (XLA's CPU backend runs batched matmuls of batch 1 slower)."""
    size = jax.tree.leaves(eqx.filter((inputs, state), eqx.is_array))[0].shape[0]
    if size == 1:
        out = one(*jax.tree.map(lambda x: x[0] if eqx.is_array(x) else x, (inputs, state)), k)
        return jax.tree.map(lambda x: x[None] if eqx.is_array(x) else x, out)
    return eqx.filter_vmap(one, in_axes=(0, 0, None))(inputs, state, k)


@eqx.filter_jit
def _chunk_of_runs(one: _OneRun, chunk_size: int, inputs, state, k):
    """``one`` for every run of a device's slice (leading axis), in one program: the
    slice vmapped at once when it has ``chunk_size`` runs, else a ``lax.map`` over its
    chunks of ``chunk_size`` runs (the slice is a whole number of them)."""
    size = jax.tree.leaves(eqx.filter((inputs, state), eqx.is_array))[0].shape[0]
    if size == chunk_size:
        return _batch_of_runs(one, inputs, state, k)
    n = size // chunk_size
    arrays, static = eqx.partition((inputs, state), eqx.is_array)
    static_out: list = []

    def body(part):
        out_arrays, out_static = eqx.partition(_batch_of_runs(one, *eqx.combine(part, static), k), eqx.is_array)
        static_out[:] = [out_static]
        return out_arrays

    split = jax.tree.map(lambda x: x.reshape(n, chunk_size, *x.shape[1:]), arrays)
    out = jax.tree.map(lambda x: x.reshape(n * chunk_size, *x.shape[2:]), jax.lax.map(body, split))
    return eqx.combine(out, static_out[0])


def _layout(runs: int, num_devices: int, chunk_size: int | None) -> tuple[int, int]:
    """``(per_device, chunk)``: the runs of each device's slice (padded) and the runs
    per vmapped program. Without a ``chunk_size`` a device's whole share is one program;
    with one, each slice is a whole number of chunks of ``min(chunk_size, runs)`` runs."""
    share = -(-runs // num_devices)
    chunk = share if chunk_size is None else min(chunk_size, runs)
    return -(-runs // (chunk * num_devices)) * chunk, chunk


def _runs_over_devices(one: _OneRun, inputs, state, k: int, runs: int, chunk_size: int | None = None):
    """Chunk ``k`` of all ``runs`` runs, split over every device of every process.

    The runs (padded with copies of run 0 to the layout of :func:`_layout`) are cut into
    one contiguous slice per device, in the global device order; each process runs the
    slices of its own devices (dispatched together, so its devices work at once), and the
    processes all-gather the results. Every device runs the same program on a slice of
    the same size (``chunk_size``: a ``lax.map`` over chunks of that many runs, see
    :class:`jaxreg_lab.contract.Setup`), so a layout of 2 processes of 1 device and one of
    1 process of 2 devices give the same bits. Implicit ODE solvers run too (they fail
    inside ``shard_map``, which :func:`jaxreg.sweep` uses).

    Each device runs its own single-device executable, not one program sharded over the
    devices as :func:`jaxreg.sweep`'s ``shard_map``. On several CPU devices
    (``--xla_force_host_platform_device_count``) a vmapped slice per device therefore does
    not hang in jaxlib's batched LAPACK kernels (``svd``, ``eigh`` under vmap), which
    deadlock the intra-op thread pool inside one sharded program (jaxlib 0.10.2; why
    ``jr.sweep`` defaults to ``chunk_size=1`` there): the driver needs no such default.
    ``tests/test_contract.py`` runs SVDs in vmapped slices of 4 runs over 2 CPU devices;
    pinned to one core (``taskset -c 0``) they finished too, where ``jr.sweep`` hung.

    Returns:
        ``(state, status, outputs)`` of all runs as NumPy arrays (leading axis ``runs``).
    """
    devices = jax.devices()
    per, chunk = _layout(runs, len(devices), chunk_size)
    pad = per * len(devices) - runs

    def padded(x):
        x = np.asarray(x)
        return np.concatenate([x, np.repeat(x[:1], pad, axis=0)]) if pad else x

    arrays, static = eqx.partition((inputs, state), eqx.is_array)
    arrays = jax.tree.map(padded, arrays)
    local = [(i, d) for i, d in enumerate(devices) if d.process_index == jax.process_index()]
    pending = []
    for i, device in local:
        part = jax.device_put(jax.tree.map(lambda x, i=i: x[i * per : (i + 1) * per], arrays), device)
        pending.append(_chunk_of_runs(one, chunk, *eqx.combine(part, static), jnp.asarray(k, jnp.int32)))
    mine = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *pending)
    if jax.process_count() > 1:
        from jax.experimental.multihost_utils import process_allgather

        mine = jax.tree.map(np.asarray, process_allgather(mine, tiled=True))
    return jax.tree.map(lambda x: x[:runs], mine)


@dataclasses.dataclass(frozen=True)
class _PerRun:
    """A per-run method of an :class:`jaxreg_lab.contract.EpochReproduction` under
    ``config``, called as ``method(config, *args)``; compares by value, so every group and
    run with the same reproduction and config reuses one compiled program."""

    reproduction: Any
    config: Any
    method: str

    def __hash__(self) -> int:
        return hash((self.reproduction, self.config, self.method))

    def __call__(self, *args):
        return getattr(self.reproduction, self.method)(self.config, *args)


def _where_runs(active, new, old):
    return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, old)


@eqx.filter_jit
def _init_runs(init: _PerRun, shared, inputs):
    return eqx.filter_vmap(lambda x: init(shared, x))(inputs)


@eqx.filter_jit
def _plan_runs(plan: _PerRun, shared, inputs, k):
    return eqx.filter_vmap(lambda x: plan(shared, x, k))(inputs)


@eqx.filter_jit
def _step_runs(step: _PerRun, shared, inputs, arrays, static, plan, active, i):
    """Step ``i`` of every run (vmapped); a stopped run (``active`` False) keeps its state."""

    def one(x, a, p, act):
        new, out = step(shared, x, eqx.combine(a, static), p, i)
        return _where_runs(act, eqx.filter(new, eqx.is_array), a), out

    return jax.vmap(one)(inputs, arrays, plan, active)


@eqx.filter_jit
def _end_runs(end: _PerRun, shared, inputs, arrays, static, k, outputs, active):
    """The end of epoch ``k`` of every run (vmapped); a stopped run keeps its state."""

    def one(x, a, o, act):
        new, status, out = end(shared, x, eqx.combine(a, static), k, o)
        return _where_runs(act, eqx.filter(new, eqx.is_array), a), status, out

    return jax.vmap(one)(inputs, arrays, outputs, active)


@eqx.filter_jit
def _finish_runs(finish: _PerRun, shared, inputs, arrays, static):
    return jax.vmap(lambda x, a: finish(shared, x, eqx.combine(a, static)))(inputs, arrays)


@dataclasses.dataclass(frozen=True, eq=False)
class _Program:
    """One compiled program of an :class:`jaxreg_lab.contract.EpochReproduction`: the
    runs ``runs`` of group ``group`` (a slice of its ``runs_per_program`` cut), on device
    ``device`` (an index into ``jax.devices()``), at flat positions ``index`` of
    ``run_shape``."""

    group: int
    runs: slice
    device: int
    index: np.ndarray


def _programs(setup: EpochSetup, num_devices: int) -> list[_Program]:
    """Every group's programs (:func:`jaxreg.batching.run_slices` of its runs), in group
    order, cut into ``num_devices`` contiguous blocks of about equal work (runs x steps
    per epoch): device d runs the programs whose middle falls in the d-th part of the
    total. The programs themselves never depend on the devices, so neither do their bits."""
    cells = [
        (g, sl, (sl.stop - sl.start) * group.num_steps)
        for g, group in enumerate(setup.groups)
        for sl in run_slices(len(group.index), group.runs_per_program)
    ]
    total = sum(w for *_, w in cells)
    out, before = [], 0
    for g, sl, w in cells:
        device = min(num_devices - 1, (2 * before + w) * num_devices // (2 * total))
        out.append(_Program(g, sl, device, np.asarray(setup.groups[g].index)[sl]))
        before += w
    return out


def _place(num_runs: int, programs: list[_Program], parts: dict[int, Any]) -> Any:
    """Per-program pytrees (leading run axis) laid out on the flat run axis (NumPy)."""
    order = sorted(parts)

    def place(*xs):
        xs = [np.asarray(x) for x in xs]
        out = np.empty((num_runs,) + xs[0].shape[1:], xs[0].dtype)
        for j, x in zip(order, xs):
            out[programs[j].index] = x
        return out

    return jax.tree.map(place, *(parts[j] for j in order))


def _run_epochs(reproduction, config, *, out_dir, resume, progress, fingerprint, log) -> dict:
    """:func:`run_reproduction` for an :class:`jaxreg_lab.contract.EpochReproduction`,
    under the config's ``PRECISION``.

    Every group's programs (``group.runs_per_program`` slices of its runs, one program
    each: :func:`_programs`) are split over every device of every process; each process
    runs its own programs, on their devices, and the processes exchange the results
    after every epoch, so that each holds every run's state, status and outputs. All
    groups advance epoch by epoch together in one :func:`run_chunks` (one checkpoint unit
    per epoch, holding every run). Each epoch, for each program of a group that still has
    a running run: the ``plan``, the ``num_steps`` steps dispatched one by one (their
    outputs stacked on a step axis after the run axis), then the ``end``; a run that is
    no longer RUNNING is frozen, a group skips its epochs once none of its runs runs (its
    outputs there NaN, or 0 for integers), and the loop ends when no run runs. A run
    still running after the last epoch is MAX_STEPS. A run's program, and so its bits,
    are the same whatever the numbers of devices and processes.
    """
    precision = getattr(type(config), "PRECISION", None)
    x64 = jax.config.jax_enable_x64 if precision is None else precision == "float64"
    with jax.enable_x64(x64):
        setup = reproduction.setup(config)
        return _run_programs(
            reproduction,
            config,
            setup,
            out_dir=out_dir,
            resume=resume,
            progress=progress,
            fingerprint=config if fingerprint is None else fingerprint,
            log=log,
        )


def _run_programs(reproduction, config, setup: EpochSetup, **run) -> dict:
    init, plan, step, end, finish = (
        _PerRun(reproduction, config, m) for m in ("init", "plan", "step", "end", "finish")
    )
    groups, runs = setup.groups, setup.num_runs
    devices = jax.devices()
    programs = _programs(setup, len(devices))
    here = jax.process_index()
    mine = [j for j, p in enumerate(programs) if devices[p.device].process_index == here]
    distributed.agree(len(programs), f"the number of programs of {reproduction.name}")
    placed: dict = {}

    def on_device(j: int):
        """Program j's device (this process's first one for another process's program)
        and its group's shared inputs and its own inputs there (placed once)."""
        p = programs[j]
        device = devices[p.device] if j in mine else jax.local_devices()[0]
        if (p.group, device.id) not in placed:
            arrays, static = eqx.partition(groups[p.group].shared, eqx.is_array)
            placed[p.group, device.id] = eqx.combine(jax.device_put(arrays, device), static)
        if ("inputs", j) not in placed:
            placed["inputs", j] = jax.device_put(take_runs(groups[p.group].inputs, p.runs), device)
        return device, placed[p.group, device.id], placed["inputs", j]

    t0 = time.perf_counter()
    # every process initializes every program: the carried state holds every run
    initial = [eqx.partition(_init_runs(init, *on_device(j)[1:]), eqx.is_array) for j in range(len(programs))]
    statics = [static for _, static in initial]

    def running_groups(status) -> list[bool]:
        return [bool(np.any(status[np.asarray(g.index)] == Status.RUNNING)) for g in groups]

    def epoch(carry, k):
        arrays, status = carry
        live = running_groups(status)
        kk = jnp.asarray(k, jnp.int32)
        local = {}
        for j in mine:
            p = programs[j]
            if not live[p.group]:
                continue
            device, shared, x = on_device(j)
            a = jax.device_put(arrays[j], device)
            act = jax.device_put(status[p.index] == Status.RUNNING, device)
            todo = _plan_runs(plan, shared, x, kk)
            outs = []
            for i in range(groups[p.group].num_steps):
                a, out = _step_runs(step, shared, x, a, statics[j], todo, act, jnp.asarray(i, jnp.int32))
                outs.append(out)
            stacked = jax.tree.map(lambda *o: jnp.stack(o, axis=1), *outs)
            local[j] = _end_runs(end, shared, x, a, statics[j], kk, stacked, act)
        done = distributed.exchanged(local)
        arrays, new_status, outputs = list(arrays), status.copy(), {}
        for j in sorted(done):
            p, (a, st, out) = programs[j], done[j]
            arrays[j] = a
            active = status[p.index] == Status.RUNNING
            new_status[p.index] = np.where(active, np.asarray(st, np.int32), status[p.index])
            for name, value in out.items():
                value = np.asarray(value)
                if name not in outputs:
                    fill = np.nan if value.dtype.kind == "f" else 0
                    outputs[name] = np.full((runs, *value.shape[1:]), fill, value.dtype)
                if outputs[name].shape[1:] != value.shape[1:]:
                    raise ValueError(
                        f"{reproduction.name}: group {groups[p.group].name} returns {name} of shape "
                        f"{value.shape[1:]} per run, another group {outputs[name].shape[1:]}"
                    )
                outputs[name][p.index] = value
        return (tuple(arrays), new_status), outputs

    def shown(k, carry, outputs):
        live = running_groups(carry[1])
        return {"running": "; ".join(g.label for g, on in zip(groups, live) if on) or "none"}

    (arrays, status), outputs, _ = run_chunks(
        epoch,
        (tuple(a for a, _ in initial), np.full(runs, Status.RUNNING, np.int32)),
        setup.num_chunks,
        desc=reproduction.name,
        stop=lambda carry: not np.any(carry[1] == Status.RUNNING),
        on_chunk=shown,
        **run,
    )
    status = np.where(status == Status.RUNNING, Status.MAX_STEPS, status).astype(np.int32)
    local = {}
    for j in mine:
        device, shared, x = on_device(j)
        local[j] = _finish_runs(finish, shared, x, jax.device_put(arrays[j], device), statics[j])
    finished = _place(runs, programs, distributed.exchanged(local))
    chunks = stack_chunks([{n: v[:, None] for n, v in out.items()} for out in outputs], axis=1)
    for name, value in chunks.items():
        if name in finished:
            raise ValueError(f"{reproduction.name}: end and finish both return an output {name!r}")
        missing = setup.num_chunks - value.shape[1]  # every run stopped early
        fill = np.full((runs, missing, *value.shape[2:]), np.nan if value.dtype.kind == "f" else 0, value.dtype)
        finished[name] = np.concatenate([value, fill], axis=1)
    wall = time.perf_counter() - t0

    def unflatten(x):
        return x.reshape(setup.run_shape + x.shape[1:])

    state = jax.tree.map(unflatten, _place(runs, programs, dict(enumerate(arrays))))
    final = Final(state=state, status=unflatten(status), data={n: unflatten(v) for n, v in finished.items()})
    arrays = reproduction.assemble(config, setup, final)
    return _results(reproduction, config, setup, final, arrays, wall)


def _results(reproduction, config, setup, final: Final, arrays: dict, wall: float) -> dict:
    """The results dict of :func:`run_reproduction`, the arrays checked against the
    reproduction's declared ``outputs``."""
    schema = reproduction.outputs(config)
    if set(arrays) != set(schema):
        raise ValueError(
            f"{reproduction.name}: assemble returned {sorted(arrays)}, its outputs declare {sorted(schema)}"
        )
    for name, dims in schema.items():
        if np.ndim(arrays[name]) != len(dims):
            raise ValueError(f"{reproduction.name}: output {name} has shape {np.shape(arrays[name])}, dims {dims}")
    return {
        "arrays": {name: (dims, np.asarray(arrays[name])) for name, dims in schema.items()},
        "coords": dict(setup.coords),
        "status": Status.names(final.status),
        "wall_time": wall,
        "extra": {**setup.extra, **reproduction.extra(config, setup, arrays)},
    }


def run_reproduction(
    reproduction,
    config,
    *,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    fingerprint=None,
    log: Callable | None = None,
) -> dict:
    """Run a :class:`jaxreg_lab.contract.Reproduction`: every chunk of every run, the
    runs split over every device of every process (one program per device), each
    chunk committed as a checkpoint unit (:func:`run_chunks`), each run's worst status
    kept, and the arrays laid out on the reproduction's declared ``outputs(config)``.
    ``setup.chunk_size`` (:class:`jaxreg_lab.contract.Setup`) cuts a device's slice of the
    runs into programs of that many runs. An
    :class:`jaxreg_lab.contract.EpochReproduction` (the CNN grids) splits its groups'
    programs over the devices instead, each program whole on one device, all groups
    advancing epoch by epoch together.

    Arguments:
        reproduction: the reproduction (a :class:`jaxreg_lab.contract.Reproduction`).
        config: its frozen ``Config``.
        out_dir: the results directory (checkpoints in ``out_dir/.checkpoint``); None:
            no checkpoints.
        resume: continue the checkpoint in ``out_dir``.
        progress: show a progress bar over chunks.
        fingerprint: the run's fingerprint when the caller computed it already
            (:func:`jaxreg_lab.store.results.fingerprint`); default: from ``config``.
        log: each chunk's metrics record, as in :func:`run_chunks`.

    Returns:
        The results dict: ``arrays`` (name -> (dims, array)), ``coords``, ``status``
        (one name per run, nested as ``run_shape``), ``wall_time`` and ``extra``
        (``setup.extra`` and the reproduction's :meth:`~jaxreg_lab.contract.Reproduction.extra`).
    """
    if isinstance(reproduction, EpochReproduction):
        run = dict(out_dir=out_dir, resume=resume, progress=progress, fingerprint=fingerprint, log=log)
        return _run_epochs(reproduction, config, **run)
    setup = reproduction.setup(config)
    runs = setup.num_runs
    one = _OneRun(reproduction, config)

    def step(carry, k):
        state, worst = carry
        state, status, outputs = _runs_over_devices(one, setup.inputs, state, k, runs, setup.chunk_size)
        return (state, jnp.maximum(worst, jnp.asarray(status, jnp.int32))), outputs

    initial = (setup.state, jnp.full(runs, Status.COMPLETED, jnp.int32))
    (state, status), outs, wall = run_chunks(
        step,
        initial,
        setup.num_chunks,
        out_dir=out_dir,
        resume=resume,
        progress=progress,
        desc=reproduction.name,
        fingerprint=config if fingerprint is None else fingerprint,
        log=log,
    )
    steps = np.sum([o.pop("steps") for o in outs], axis=0) if "steps" in outs[0] else None
    data = stack_chunks(outs, axis=1) if outs[0] else {}
    if steps is not None:
        data["steps"] = steps

    def unflatten(x):
        return np.asarray(x).reshape(setup.run_shape + np.shape(x)[1:])

    final = Final(
        state=jax.tree.map(lambda x: jnp.reshape(x, setup.run_shape + x.shape[1:]), state),
        status=unflatten(status),
        data={name: unflatten(x) for name, x in data.items()},
    )
    arrays = reproduction.assemble(config, setup, final)
    return _results(reproduction, config, setup, final, arrays, wall)


def run_named(
    module,
    config,
    *,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    fingerprint=None,
    log: Callable | None = None,
):
    """Run the reproduction of ``module`` (one of :mod:`jaxreg_lab.reproductions`): its
    ``REPRODUCTION`` through :func:`run_reproduction`.

    Arguments:
        module: the reproduction's module.
        config: its frozen ``Config``.
        out_dir, resume, progress: as in :func:`run_reproduction`.
        fingerprint: the fingerprint the caller computed.
        log: each chunk's metrics record as the chunk finishes.

    Returns:
        The results dict (see :func:`run_reproduction`).
    """
    return run_reproduction(
        module.REPRODUCTION, config, out_dir=out_dir, resume=resume, progress=progress, fingerprint=fingerprint, log=log
    )
