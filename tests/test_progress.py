"""Progress reports: the chunk bar's ETA leaves out compilation, and ``jaxreg verify``
prints each check as it finishes."""

import io
import time

import jax
import pytest
from tqdm import tqdm

import jaxreg as jr
from jaxreg_lab import cli
from jaxreg_lab import driver as runner


def test_chunk_rate_and_eta_leave_out_the_first_chunk(monkeypatch):
    """A first chunk of 1 s (compilation) and later chunks of 0.05 s: the bar's rate is
    that of the later chunks, so its ETA does not count the compilation again per chunk."""
    bars = []

    class Bar(tqdm):
        def close(self):
            self.rate_at_end = self.format_dict["rate"]
            super().close()

    def progress(total, desc, enabled):
        bars.append(Bar(total=total, desc=desc, file=io.StringIO(), mininterval=0))
        return bars[-1]

    monkeypatch.setattr(runner, "_progress", progress)

    def step(state, k):
        time.sleep(1.0 if k == 0 else 0.05)
        return state, {}

    runner.run_chunks(step, 0, 6, progress=True)
    (bar,) = bars
    assert bar.n == 6
    rate = bar.rate_at_end  # chunks per second, over the chunks after the first
    assert 12 < rate < 25, rate


def test_verify_prints_and_flushes_each_check_as_it_finishes(monkeypatch):
    from jaxreg_lab import verify

    class Out(io.StringIO):
        flushed: list[str] = []

        def flush(self):
            self.flushed.append(self.getvalue())

    out = Out()
    monkeypatch.setattr("sys.stdout", out)

    def fake_verify(echo=print):
        echo("matrix depth 2  1e-12  1e-13  ok")
        assert out.flushed[-1].endswith("ok\n")  # on screen before the next check starts
        echo("cp order 3  1e-12  1e-13  ok")
        return True

    monkeypatch.setattr(verify, "verify", fake_verify)
    assert cli.main(["verify"]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("checking") and lines[1:] == [
        "matrix depth 2  1e-12  1e-13  ok",
        "cp order 3  1e-12  1e-13  ok",
    ]


@pytest.mark.unchecked_types  # wrong type on purpose: the library's own ValueError
def test_progress_meter_must_be_a_diffrax_meter():
    kp, km = jax.random.split(jax.random.key(0))
    problem = jr.tasks.matrix_completion(kp, (4, 4), 1, 8)
    model = jr.MatrixFactorization(km, (4, 4), 2, init_scale=1e-2)
    with pytest.raises(ValueError, match="progress_meter"):
        jr.gradient_flow(problem.loss, model, 1.0, progress_meter="tqdm")
