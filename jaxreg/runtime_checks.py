"""Whether the compiled flow and descent programs check values at run time.

By default they do not: every argument whose value is known when a run is set up (save
times, the observed indices of a :class:`jaxreg.tasks.Problem`, tolerances) is checked
before anything is traced, and failures inside a run are reported per run in
``Trajectory.status``. A run-time check (``equinox.error_if``, and the ones diffrax
inserts for its save times) is a host callback, and JAX's persistent compilation cache
never stores a program that holds one: with the checks off, a second identical run loads
every program instead of compiling it.

``JAXREG_RUNTIME_CHECKS=1`` (read when a program is traced, i.e. at the call of
:func:`jaxreg.gradient_flow` and of :func:`jaxreg.gradient_descent`) keeps them, for
debugging values that are only known inside a program (e.g. indices or save times
computed under ``jit``); those programs compile on every run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

ENV = "JAXREG_RUNTIME_CHECKS"
_LOCK = threading.RLock()


def requested() -> bool:
    """True when ``$JAXREG_RUNTIME_CHECKS`` is 1, true, yes or on (read at each call)."""
    return os.environ.get(ENV, "0").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def traced_without_checks(checks: bool) -> Iterator[None]:
    """Within the block (entered while a program is traced), ``equinox.error_if`` with a
    traced condition adds nothing to the program, unless ``checks``.

    equinox reads its error mode from a module attribute (``EQX_ON_ERROR``, set from the
    environment at import) and diffrax calls ``equinox.error_if`` with no way to pass
    another mode. The block replaces equinox's compiled error check with the identity
    and restores it on exit; it never goes through the jit cache of that check, so calls
    outside the block keep their checks. A condition known at trace time still raises at
    once (equinox resolves those before its compiled check). A lock keeps two threads
    from interleaving the replacement; code that another thread traces meanwhile, and a
    jitted function first traced inside the block (its trace is cached), goes without
    its checks too.

    Arguments:
        checks: keep the run-time checks (the block does nothing).

    Yields:
        Nothing.
    """
    import jax.core
    from equinox import _errors

    compiled = getattr(_errors, "branched_error_if_impl_jit", None)
    if checks or compiled is None:  # an equinox without that attribute keeps its checks
        yield
        return

    def unchecked(x, pred, index, msgs, *, on_error):
        if isinstance(pred, jax.core.Tracer) or isinstance(index, jax.core.Tracer):
            return x
        return _errors.branched_error_if_impl(x, pred, index, msgs, on_error=on_error)

    with _LOCK:
        _errors.branched_error_if_impl_jit = unchecked
        try:
            yield
        finally:
            _errors.branched_error_if_impl_jit = compiled
