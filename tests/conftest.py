"""Settings of the test session.

- XLA CPU flags (``TEST_XLA_FLAGS``, after any of the user's, inherited by subprocesses;
  ``helpers.xla_env`` passes them on): the tests compile a few thousand small programs,
  and with the fusion emitters off and one LLVM module per program XLA compiles them in
  about three quarters of the time. Results differ from the default flags' in the last
  bits only, within every test's tolerance.
- float64 for every test (the library never enables it at import: that would change
  every user's precision as a side effect).
- JAX's persistent compilation cache in a directory of this test process, never the
  user's: the CLI runs, in-process and in subprocesses (which inherit
  ``$JAXREG_CACHE_DIR``), compile the same programs again and again.
  ``JAXREG_COMPILE_CACHE=0`` runs the tests without it.
- The library's annotations are checked at run time: jaxtyping's import hook applies
  ``@jaxtyped(typechecker=beartype)`` to every function and dataclass of ``jaxreg``
  imported after this file (pytest loads it, in each xdist worker, before any test
  module). beartype follows PEP 484's numeric tower, as static checkers do: an int passes
  for ``float``. The lab (``jaxreg_lab``) and the CLI subprocesses the tests spawn run
  unchecked. ``tests/test_typecheck.py`` fails if the hook is not in force. A test marked
  ``unchecked_types`` feeds the library ill-typed input on purpose, to test the
  ``ValueError`` a caller without the hook gets: the check is off while it runs.
"""

import atexit
import os
import shutil
import tempfile

TEST_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false", "--xla_cpu_parallel_codegen_split_count=1")
# read when JAX's CPU backend starts (the first computation, after this file)
_user_flags = os.environ.get("XLA_FLAGS", "").split()
os.environ["XLA_FLAGS"] = " ".join(_user_flags + [f for f in TEST_XLA_FLAGS if f not in _user_flags])

# the allowed CPUs split evenly among the xdist workers (two workers on two cores: one
# each): XLA's intra-op threads of one worker otherwise contend with the other worker's
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and hasattr(os, "sched_setaffinity"):
    _cpus = sorted(os.sched_getaffinity(0))
    _count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if _count <= len(_cpus):
        os.sched_setaffinity(0, set(_cpus[int(_worker[2:]) % _count :: _count]))

import jaxtyping
import pytest
from jaxtyping import install_import_hook

# installed for the whole session; a module of jaxreg imported before this line would
# escape it, which tests/test_typecheck.py catches
install_import_hook("jaxreg", "beartype.beartype(conf=beartype.BeartypeConf(is_pep484_tower=True))")

import jax

from jaxreg_lab import compile_cache as _compile_cache

jax.config.update("jax_enable_x64", True)

if not os.environ.get(_compile_cache.DIR_ENV):
    os.environ[_compile_cache.DIR_ENV] = tempfile.mkdtemp(prefix="jaxreg-test-jax-cache-")
    atexit.register(shutil.rmtree, os.environ[_compile_cache.DIR_ENV], ignore_errors=True)
if _compile_cache.enabled_by_env():
    for name, value in _compile_cache.settings(_compile_cache.cache_dir()).items():
        jax.config.update(name, value)


@pytest.fixture(autouse=True)
def _unchecked_types(request):
    """The annotation check off for a test marked ``unchecked_types``."""
    if request.node.get_closest_marker("unchecked_types") is None:
        yield
        return
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)


# The files that take longest (a module fixture running a tiny reproduction, CNN
# training, several processes), longest first: `make test` hands whole files to its two
# xdist workers in collection order (`--dist loadfile --no-loadscope-reorder`), so these
# start at once instead of leaving one worker alone with a long file at the end.
LONGEST_FILES = (
    "tests/test_repro_incremental.py",
    "tests/locality/test_reproductions.py",
    "tests/test_multiprocess.py",
    "tests/locality/test_training.py",
    "tests/test_notebooks.py",
    "tests/test_gpu_check.py",
    "tests/test_sweep.py",
)


def pytest_collection_modifyitems(config, items):
    """Run the :data:`LONGEST_FILES` first, in that order; every other file after them in
    collection order (a stable sort: the tests of a file keep their order)."""
    rank = {path: i for i, path in enumerate(LONGEST_FILES)}

    def key(item):
        path = os.path.relpath(str(item.path), str(config.rootpath)).replace(os.sep, "/")
        return rank.get(path, len(LONGEST_FILES))

    items.sort(key=key)
