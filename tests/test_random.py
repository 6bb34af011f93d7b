"""jaxreg._random.normal draws jax.random.normal's values bit for bit from one compiled
program per size class."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg._random import _flat_normal, normal, size_class

# scalar, empty, ND, size classes 16 and 32, one above 2^16
SHAPES = [(), (1,), (3, 4), (17,), (2, 3, 4, 5), (0, 3), (70_001,)]


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_equals_jax_random_normal_bit_for_bit(dtype):
    for seed, shape in enumerate(SHAPES):
        key = jax.random.key(seed)
        got, want = normal(key, shape, dtype), jax.random.normal(key, shape, dtype)
        assert got.shape == shape and got.dtype == want.dtype
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    raw = jax.random.PRNGKey(3)  # a legacy uint32 key
    np.testing.assert_array_equal(normal(raw, (4, 5), dtype), jax.random.normal(raw, (4, 5), dtype))


def test_one_program_per_size_class():
    """Shapes of one class share a compiled program: 9 to 16 values are one class."""
    _flat_normal.clear_cache()
    for shape in [(3, 4), (2, 7), (16,), (9,), (2, 2, 3)]:
        normal(jax.random.key(0), shape, jnp.float64)
    assert _flat_normal._cache_size() == 1
    normal(jax.random.key(0), (17,), jnp.float64)
    assert _flat_normal._cache_size() == 2


def test_size_class():
    assert [size_class(n) for n in (0, 1, 2, 3, 5, 16, 17, 65_536)] == [1, 1, 2, 4, 8, 16, 32, 65_536]
    for n in (65_537, 100_000, 3_000_001):
        c = size_class(n)
        assert n <= c <= n * (1 + 1 / 16), n  # above 2^16: at most 1/16 more values
    assert size_class(65_537) == size_class(69_632) == 69_632


def test_traced_keys_and_other_prngs_draw_directly():
    keys = jax.random.split(jax.random.key(5), 3)
    got = jax.vmap(lambda k: normal(k, (3, 5), jnp.float64))(keys)
    np.testing.assert_array_equal(got, jax.vmap(lambda k: jax.random.normal(k, (3, 5), jnp.float64))(keys))
    rbg = jax.random.key(5, impl="rbg")  # its i-th value is not a function of i alone
    np.testing.assert_array_equal(normal(rbg, (3, 5), jnp.float64), jax.random.normal(rbg, (3, 5), jnp.float64))
