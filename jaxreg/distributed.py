"""Runs across processes and hosts on JAX's own multi-controller runtime.

Every process (one per host, or one per accelerator) runs the same program. After
:func:`initialize` (``jax.distributed.initialize``), ``jax.devices()`` lists the devices
of every process and :func:`jaxreg.sweep` shards a sweep over all of them. jaxreg starts
no processes and opens no sockets itself: a launcher (``srun``, ``mpirun``, a TPU pod's
``--worker=all``) starts the processes, and JAX's coordination service connects them.

Process 0 is the writer: it alone writes results, figures and checkpoints
(:func:`is_writer`).
"""

from __future__ import annotations

import pickle

import jax
import numpy as np
from jaxtyping import PyTree

#: Seconds a process waits for all others to connect at start.
INITIALIZATION_TIMEOUT_S = 300
#: Seconds without a heartbeat after which a process counts as dead; the others then
#: stop with an error instead of waiting for it forever.
HEARTBEAT_TIMEOUT_S = 60
#: Seconds a finishing process waits for the others to finish too.
SHUTDOWN_TIMEOUT_S = 120


def parse_coordinator(address: str) -> str:
    """Check a coordinator address.

    Arguments:
        address: ``"HOST:PORT"``, a host and a port in 1..65535.

    Returns:
        ``address`` unchanged.

    Raises:
        ValueError: ``address`` is not of that form.
    """
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator must be HOST:PORT with a port in 1..65535, got {address!r}")
    return address


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    initialization_timeout: int = INITIALIZATION_TIMEOUT_S,
    heartbeat_timeout: int = HEARTBEAT_TIMEOUT_S,
    shutdown_timeout: int = SHUTDOWN_TIMEOUT_S,
) -> None:
    """Join this process to a multi-process run: ``jax.distributed.initialize``.

    Call it first, before anything that uses JAX's devices. Without arguments JAX reads
    the process layout from the environment (SLURM, Open MPI, Kubernetes, Cloud TPU);
    otherwise give all three of ``coordinator`` (process 0's ``HOST:PORT``, where JAX's
    coordination service listens), ``num_processes`` and ``process_id``. A process that
    stops sending heartbeats for ``heartbeat_timeout`` seconds counts as dead and the
    others stop with an error; a collective with a dead peer fails at once. On CPU the
    collectives run over gloo (``jax_cpu_collectives_implementation``, the default of
    jax 0.10; older versions need it set to "gloo"), connected here by a first
    collective (gloo waits only 30 s for every process at its first one).

    Arguments:
        coordinator: ``"HOST:PORT"`` of process 0, or ``None`` to detect it.
        num_processes: the number of processes N, or ``None`` to detect it.
        process_id: this process's index in 0..N-1, or ``None`` to detect it.
        initialization_timeout, heartbeat_timeout, shutdown_timeout: seconds (see the
            module constants).

    Returns:
        None; this process has joined the run (``jax.process_count()`` counts all).
    """
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError(
            "coordinator, num_processes and process_id must be given together "
            "(or none of them, to detect them from SLURM, Open MPI, Kubernetes or a TPU pod)"
        )
    if coordinator is not None and num_processes is not None and process_id is not None:
        parse_coordinator(coordinator)
        if isinstance(num_processes, bool) or not isinstance(num_processes, (int, np.integer)) or num_processes < 1:
            raise ValueError(f"num_processes must be a positive integer, got {num_processes!r}")
        if (
            isinstance(process_id, bool)
            or not isinstance(process_id, (int, np.integer))
            or not 0 <= process_id < num_processes
        ):
            raise ValueError(f"process_id must be an integer in 0..{num_processes - 1}, got {process_id!r}")
    for name, value in (
        ("initialization_timeout", initialization_timeout),
        ("heartbeat_timeout", heartbeat_timeout),
        ("shutdown_timeout", shutdown_timeout),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    jax.distributed.initialize(
        coordinator,
        num_processes,
        process_id,
        initialization_timeout=initialization_timeout,
        heartbeat_timeout_seconds=heartbeat_timeout,
        shutdown_timeout_seconds=shutdown_timeout,
    )
    if jax.process_count() > 1 and jax.default_backend() == "cpu":
        # gloo connects the processes at their first collective and gives every process
        # 30 s to arrive there; later collectives wait as long as a peer lives. Connect now,
        # while the processes are in step, not after work of uneven length (compilation,
        # a costlier share of the runs)
        agree(0, "the start")


def is_writer() -> bool:
    """Whether this process writes results, figures and checkpoints.

    Returns:
        True on process 0 (and in a single-process run), False elsewhere.
    """
    return jax.process_index() == 0


def agree(value: int, what: str) -> int:
    """Check that ``value`` is the same on every process (a collective: every process must
    call it).

    Arguments:
        value: an integer.
        what: what ``value`` is, for the error message.

    Returns:
        ``value``.

    Raises:
        ValueError: on every process, when the processes hold different values.
    """
    if jax.process_count() == 1:
        return value
    from jax.experimental.multihost_utils import process_allgather

    values = np.asarray(process_allgather(np.int64(value))).reshape(-1)
    if np.any(values != values[0]):
        raise ValueError(f"{what} differs between processes ({values.tolist()} on processes 0..{len(values) - 1})")
    return value


def gathered(tree: PyTree) -> PyTree:
    """All-gather the leaves of ``tree`` that are sharded over several processes, so that
    this process can read, save or print all of them (a collective: every process must
    call it).

    Arguments:
        tree: any pytree.

    Returns:
        ``tree`` with every array leaf that this process cannot fully address replaced by
        a NumPy array of all of it; other leaves as they are.
    """
    from jax.experimental.multihost_utils import process_allgather

    def gather(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(process_allgather(x, tiled=True))
        return x

    return jax.tree_util.tree_map(gather, tree)


def exchanged(local: dict[int, PyTree]) -> dict[int, PyTree]:
    """Every process's ``{key: pytree of arrays}`` on every process (a collective: every
    process must call it, with its own entries or none). Unlike :func:`gathered`, the
    processes' entries may differ in number, keys and shapes: each process's dict travels
    as bytes (its arrays as NumPy, pickled, padded to the longest), so that it suits
    results of uneven shares of work.

    Arguments:
        local: this process's entries; keys are unique over all processes.

    Returns:
        The union of every process's entries, this process's own as they are.
    """
    if jax.process_count() == 1:
        return local
    from jax.experimental.multihost_utils import process_allgather

    blob = np.frombuffer(pickle.dumps(jax.tree.map(np.asarray, local)), np.uint8)
    sizes = np.asarray(process_allgather(np.int64(blob.size))).reshape(-1)
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: blob.size] = blob
    blobs = np.asarray(process_allgather(padded)).reshape(len(sizes), -1)
    everyone: dict[int, PyTree] = {}
    for size, data in zip(sizes, blobs):
        everyone.update(pickle.loads(data[:size].tobytes()))
    return {**everyone, **local}
