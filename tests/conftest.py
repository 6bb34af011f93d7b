"""float64 for every test (the library never enables it at import: that would change every user's
precision as a side effect)."""

import jax

jax.config.update("jax_enable_x64", True)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``--dist loadgroup``), the tests of a module that share a
    module-scoped fixture (e.g. a reproduction's tiny run) go to one worker: split across
    workers, that fixture would run once on each of them."""
    import pytest

    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        fixturedefs = info.name2fixturedefs.values() if info is not None else ()
        if any(str(d.scope) in ("module", "Scope.Module") for defs in fixturedefs for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
