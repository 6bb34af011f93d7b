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
