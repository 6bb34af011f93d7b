"""Fixtures for the locality tests.

The project's top-level conftest switches float64 on for every test; the CNN tests run in
float32 (as training does) unless they request the ``x64`` fixture."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _float32_by_default():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def x64(_float32_by_default):
    """Run one test in float64 (the autouse fixture restores the setting afterwards)."""
    jax.config.update("jax_enable_x64", True)
    yield


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Never write generated data sets to the user's cache directory."""
    monkeypatch.setenv("JAXREG_CACHE", str(tmp_path / "cache"))
