"""Names of the public API that scripts outside the repository rely on."""

import subprocess
import sys


def test_locality_is_reachable_right_after_import():
    """``jr.locality.grad_change_penalty`` works after a bare ``import jaxreg as jr`` (a fresh
    interpreter, so no other test has imported the subpackage already)."""
    code = "import jaxreg as jr; print(jr.locality.grad_change_penalty.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "grad_change_penalty"


def test_unknown_attribute_is_an_attribute_error():
    import jaxreg as jr

    try:
        jr.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("jr.no_such_name did not raise")


def test_import_is_lazy_and_names_keep_their_meaning():
    """``import jaxreg`` loads no JAX (the CLI's help and list stay fast); every public name
    loads on first use, and ``jr.sweep`` stays the function after the submodule
    ``jaxreg.sweep`` is imported by library code."""
    code = (
        "import sys, jaxreg as jr\n"
        "assert 'jax' not in sys.modules, 'import jaxreg loaded jax'\n"
        "import jaxreg.experiments\n"
        "assert callable(jr.sweep) and jr.sweep.__module__ == 'jaxreg.sweep', jr.sweep\n"
        "from jaxreg import MatrixFactorization, sweep\n"
        "assert sweep is jr.sweep and MatrixFactorization is jr.MatrixFactorization\n"
        "missing = [n for n in jr.__all__ if getattr(jr, n, None) is None]\n"
        "assert not missing and set(jr.__all__) <= set(dir(jr)), missing\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
