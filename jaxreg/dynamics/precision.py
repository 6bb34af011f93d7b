"""A warning when a flow asks for more accuracy than its floating-point type resolves."""

from __future__ import annotations

import functools
import warnings

import equinox as eqx
import jax
import numpy as np

from jaxreg.validation import is_traced


class PrecisionWarning(UserWarning):
    """A flow runs in a floating-point type (float32 when float64 is off) whose relative
    spacing eps exceeds the tolerances it was given: the step-size controller cannot meet
    them. Issued once per process and message, through the warnings filters (so
    ``warnings.simplefilter("ignore", jr.PrecisionWarning)`` silences it)."""


def warn_if_unresolvable(function: str, dtype, rtol, atol, model) -> None:
    """Warn (:class:`PrecisionWarning`) when ``function`` integrates in ``dtype`` with
    rtol < eps, or atol < eps * max |theta(0)|, eps = ``jnp.finfo(dtype).eps`` (float32:
    1.2e-7), the spacing of the numbers near the initial parameters theta(0); a traced
    tolerance or model is not checked. Nothing for float64.

    Arguments:
        function: the public function's name, for the message.
        dtype: the parameters' floating-point type.
        rtol, atol: the step-size controller's tolerances.
        model: theta(0).
    """
    eps = float(np.finfo(dtype).eps)
    if eps <= float(np.finfo(np.float64).eps):
        return
    coarse = False
    if not is_traced(rtol):
        coarse = float(rtol) < eps
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    if not coarse and not is_traced(atol):
        if not any(is_traced(x) for x in leaves):
            scale = max(float(np.max(np.abs(np.asarray(x)), initial=0.0)) for x in leaves)
            coarse = float(atol) < eps * scale
    if coarse:
        name = np.dtype(dtype).name
        _warn_once(
            f"{function} runs in {name}, whose relative spacing {eps:.1e} is coarser than its rtol or atol "
            f"asks (the step-size controller cannot meet them): enable float64 at program start with "
            f'jax.config.update("jax_enable_x64", True), or loosen rtol and atol (shown once)'
        )


@functools.cache
def _warn_once(message: str) -> None:
    """Issue ``message`` as a :class:`PrecisionWarning` the first time only. The warnings
    module's own ``"once"`` is not enough: its registries are cleared whenever any code
    changes the filters (``warnings.catch_warnings``, as tracing does), so it would warn
    on every flow."""
    # stacklevel 4: the caller of gradient_flow (this, warn_if_unresolvable, gradient_flow)
    warnings.warn(message, PrecisionWarning, stacklevel=4)
