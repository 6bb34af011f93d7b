"""float64 for every test (the library never enables it at import: that would change every user's
precision as a side effect), and JAX's persistent compilation cache in a directory of this
test process, never the user's: the CLI runs, in-process and in subprocesses (which inherit
``$JAXREG_CACHE_DIR``), compile the same programs again and again. ``JAXREG_COMPILE_CACHE=0``
runs the tests without it."""

import atexit
import os
import shutil
import tempfile

import jax

from jaxreg import _compile_cache

jax.config.update("jax_enable_x64", True)

if not os.environ.get(_compile_cache.DIR_ENV):
    os.environ[_compile_cache.DIR_ENV] = tempfile.mkdtemp(prefix="jaxreg-test-jax-cache-")
    atexit.register(shutil.rmtree, os.environ[_compile_cache.DIR_ENV], ignore_errors=True)
if _compile_cache.enabled_by_env():
    for name, value in _compile_cache.settings(_compile_cache.cache_dir()).items():
        jax.config.update(name, value)
