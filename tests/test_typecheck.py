"""The library's jaxtyping annotations are checked while the tests run.

tests/conftest.py installs jaxtyping's import hook with beartype on ``jaxreg``; these
tests fail if it is not in force (not installed, or installed after the library was
imported), since then nothing checks an annotation and a wrong call goes through or fails
elsewhere with an error that is no TypeCheckError.
"""

import jax.numpy as jnp
import pytest
from jaxtyping import TypeCheckError

from jaxreg import metrics, validation


def test_wrong_shape_is_rejected_by_the_annotation():
    # effective_rank takes Float[Array, "m n"]; unchecked, a vector reaches the SVD and
    # fails there with a ValueError
    with pytest.raises(TypeCheckError, match="m n"):
        metrics.effective_rank(jnp.ones(4))


def test_wrong_dtype_is_rejected_by_the_annotation():
    # unchecked, an integer matrix is promoted to float by the SVD and goes through
    with pytest.raises(TypeCheckError):
        metrics.effective_rank(jnp.eye(3, dtype=jnp.int32))


def test_a_well_typed_call_passes():
    assert float(metrics.effective_rank(jnp.eye(3))) == pytest.approx(3.0)


def test_an_int_passes_for_float():
    # PEP 484's numeric tower, as the static checker has it: bytes_needed is a float
    validation.fits_in_memory("n", 1, 8)
    with pytest.raises(TypeCheckError, match="bytes_needed"):
        validation.fits_in_memory("n", 1, "8")


@pytest.mark.unchecked_types
def test_the_marker_turns_the_check_off():
    # unchecked, the vector reaches the SVD, which refuses it with its own TypeError
    with pytest.raises(TypeError, match="svd") as raised:
        metrics.effective_rank(jnp.ones(4))
    assert not isinstance(raised.value, TypeCheckError)
