"""The reproductions on the real data sets, without a network: small synthetic files in
the standard formats (their MD5s substituted for the published ones) run through
``jaxreg reproduce``, and ``results.json`` records the data used and its checksum; a
paper preset whose data are missing stops before any compute with one line."""

import gzip
import io
import json
import tarfile

import numpy as np
import pytest
from test_datasets import _idx, _md5, _publish

from jaxreg_lab import cli, datasets
from jaxreg_lab.reproductions import tensor_rank_complexity as trc

RNG = np.random.default_rng(1)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data directory named by $JAXREG_DATA."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("JAXREG_DATA", str(root))
    return root


def _write_mnist(monkeypatch, root, name="mnist", n_train=48, n_test=24):
    images = [RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (n_train, n_test)]
    labels = [np.arange(n, dtype=np.uint8) % 10 for n in (n_train, n_test)]
    files = [gzip.compress(_idx(a)) for a in (images[0], labels[0], images[1], labels[1])]
    for rel, data in zip(datasets.DATASETS[name], files, strict=True):
        _publish(monkeypatch, root, rel, data)
    return {rel: "md5:" + _md5(data) for rel, data in zip(datasets.DATASETS[name], files)}


@pytest.mark.parametrize(
    "name,size,missing",
    [
        ("tensor-rank-complexity", "paper", "mnist/train-images-idx3-ubyte.gz"),
        ("locality-is-same-class", "paper", "cifar-10-binary.tar.gz"),
        ("matrix-dynamics-depth", "paper", "ml-100k.zip"),
    ],
)
def test_a_paper_preset_without_its_data_stops_before_compute(
    name, size, missing, data_dir, tmp_path, capsys, monkeypatch
):
    """The check comes before the results directory is prepared (which --force would
    empty) and before anything runs."""

    def reached(*args, **kwargs):
        raise AssertionError("the run went on without its data")

    monkeypatch.setattr(cli, "prepare_out", reached)
    out = tmp_path / "run"
    assert cli.main(["reproduce", name, "--size", size, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{missing} is not in the data directory {data_dir}" in err
    assert "jaxreg data fetch" in err
    assert not out.exists()


def test_image_tensor_entries_as_the_paper_builds_them():
    """Pixels scaled to [0, 1], times levels - 1, rounded: 127 -> 0 and 128 -> 1 at 2 levels."""
    images = np.zeros((2, 1, 28, 28), np.uint8)
    images[0, 0, 0, 0], images[0, 0, 0, 1], images[1, 0, 27, 27] = 127, 128, 255
    idx, values = trc.image_tensor_entries(images, np.array([6, 3]), 1, 2, 6, (2.0, 0.0))
    assert idx.shape == (2, 784) and idx.sum() == 2
    assert idx[0, 0] == 0 and idx[0, 1] == 1 and idx[1, -1] == 1 and values.tolist() == [2.0, 0.0]
    images[0, 0, 1, :2] = 255  # the first 2 x 2 block: 127, 128, 255, 255, mean 191.25
    pooled, _ = trc.image_tensor_entries(images, np.array([6, 3]), 2, 3, 6, (2.0, 0.0))
    assert pooled.shape == (2, 196) and pooled[0, 0] == 2 and pooled[0, 1:].sum() == 0  # 191.25 / 255 * 2 = 1.5 -> 2
    assert pooled[1, -1] == 0  # 255 / 4 / 255 * 2 = 0.5 rounds half to even, as torch.round: 0


def test_tensor_rank_complexity_on_mnist_files_records_them(monkeypatch, data_dir, tmp_path, capsys):
    files = _write_mnist(monkeypatch, data_dir)
    out = tmp_path / "run"
    argv = ["reproduce", "tensor-rank-complexity", "--size", "tiny", "--out", str(out), "--no-progress"]
    sets = ["dataset=mnist", "pool=7", "levels=2", "num_train=40", "ranks=[1, 2]", "num_epochs=20", "num_saves=2"]
    assert cli.main(argv + [a for s in sets for a in ("--set", s)]) in (0, 1)
    meta = json.loads((out / "results.json").read_text())
    assert meta["config"]["dataset"] == "mnist"
    assert meta["data"] == {"name": "mnist", "files": files}
    assert "saved" in capsys.readouterr().out


def _write_cifar(monkeypatch, root):
    """Four images a batch, two of class 0 and two of class 1 (pairs of either label exist)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in datasets.CIFAR_MEMBERS:
            records = RNG.integers(0, 256, (4, 3073), dtype=np.uint8)
            records[:, 0] = [0, 0, 1, 1]
            info = tarfile.TarInfo(member)
            info.size = records.size
            tar.addfile(info, io.BytesIO(records.tobytes()))
    _publish(monkeypatch, root, "cifar-10-binary.tar.gz", buf.getvalue())
    return {"cifar-10-binary.tar.gz": "md5:" + _md5(buf.getvalue())}


def test_is_same_class_sets_up_cifar10(monkeypatch, data_dir):
    """CIFAR-10's training images make the training pairs and its test images the test
    pairs, in colour, for a network with three input channels."""
    import jax

    from jaxreg.locality.data import is_same_class
    from jaxreg_lab.locality.configs import IsSameClassConfig
    from jaxreg_lab.locality.grids import is_same_class_sources

    files = _write_cifar(monkeypatch, data_dir)
    (train, test), record = is_same_class_sources("cifar10")
    assert record == {"name": "cifar10", "files": files}
    assert train[0].shape == (20, 3, 32, 32) and test[0].shape == (4, 3, 32, 32) and train[0].max() <= 1.0
    data = is_same_class(jax.random.key(0), 6, 0, canvas=(32, 64), source=test)
    assert data.images.shape == (6, 3, 32, 64) and data.info["source"].max() < 4
    config = IsSameClassConfig.preset("paper")
    assert config.dataset == "cifar10" and config.image_side * config.scale == 32
    assert dict(config.model_spec().kwargs)["in_channels"] == 3
    assert "in_channels" not in dict(IsSameClassConfig.preset("small").model_spec().kwargs)


@pytest.mark.slow
def test_is_same_class_on_cifar10_files_records_them(monkeypatch, data_dir, tmp_path):
    files = _write_cifar(monkeypatch, data_dir)
    out = tmp_path / "run"
    sets = [
        "dataset=cifar10",
        "canvas=[32, 64]",
        "distances=[0]",
        "lambdas=[0.0]",
        "seeds=[0]",
        "num_train=32",
        "num_test=8",
        "max_epochs=1",
        "width=4",
    ]
    argv = ["reproduce", "locality-is-same-class", "--size", "tiny", "--out", str(out), "--no-progress"]
    assert cli.main(argv + [a for s in sets for a in ("--set", s)]) in (0, 1)
    meta = json.loads((out / "results.json").read_text())
    assert meta["config"]["dataset"] == "cifar10"
    assert meta["data"] == {"name": "cifar10", "files": files}


def test_is_same_class_pairs_colour_images():
    """The library pairs any labelled images: channels kept, each image in its square."""
    import jax

    from jaxreg.locality.data import is_same_class

    images = RNG.random((6, 3, 4, 4)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2])
    data = is_same_class(jax.random.key(0), 20, 3, scale=2, canvas=(10, 24), source=(images, labels))
    assert data.images.shape == (20, 3, 10, 24)
    (top, left, a, _), (_, right, _, _) = data.squares[0]
    up = np.kron(images, np.ones((1, 1, 2, 2), np.float32))
    src = data.info["source"]
    assert a == 8 and right == left + 8 + 3
    assert np.array_equal(data.images[:, :, top : top + a, left : left + a], up[src[:, 0]])
    assert np.array_equal(data.images[:, :, top : top + a, right : right + a], up[src[:, 1]])
    assert np.array_equal(data.labels, (labels[src[:, 0]] == labels[src[:, 1]]).astype(np.int32))


def _write_movielens(monkeypatch, root, n=300):
    """Random ratings spanning all 943 users and 1682 movies (the first two rows)."""
    from test_datasets import _movielens_zip

    users = np.concatenate([[943, 1], RNG.integers(1, 944, n - 2)])
    items = np.concatenate([[1682, 1], RNG.integers(1, 1683, n - 2)])
    rows = np.stack([users, items, RNG.integers(1, 6, n), np.zeros(n, int)], axis=1)
    archive = _movielens_zip(rows)
    _publish(monkeypatch, root, "ml-100k.zip", archive)
    return rows, {"name": "movielens-100k", "files": {"ml-100k.zip": "md5:" + _md5(archive)}}


def test_matrix_dynamics_depth_sets_up_movielens(monkeypatch, data_dir):
    from jaxreg_lab.reproductions import matrix_dynamics_depth as mdd

    rows, record = _write_movielens(monkeypatch, data_dir)
    config = mdd.Config.preset("paper", num_observed=200, seeds=2, depths=(1,), t1=(10.0,))
    setup = mdd.REPRODUCTION.setup(config)
    assert setup.extra == {"data": record}
    problems = setup.inputs
    assert problems.shape == (943, 1682) and problems.train.values.shape == (2, 200)
    assert problems.test.values.shape == (2, 100)
    for s in range(2):  # each seed's split holds every rating once
        idx = np.concatenate([problems.train.indices[s], problems.test.indices[s]])
        vals = np.concatenate([problems.train.values[s], problems.test.values[s]])
        got = sorted(zip(idx[:, 0].tolist(), idx[:, 1].tolist(), vals.tolist()))
        assert got == sorted(
            zip((rows[:, 0] - 1).tolist(), (rows[:, 1] - 1).tolist(), rows[:, 2].astype(float).tolist())
        )
    assert not np.array_equal(problems.train.indices[0], problems.train.indices[1])
    assert "test_error" in mdd.REPRODUCTION.outputs(config) and "reconstruction_error" not in mdd.REPRODUCTION.outputs(
        config
    )


@pytest.mark.slow
def test_matrix_dynamics_depth_on_movielens_files_records_them(monkeypatch, data_dir, tmp_path, capsys):
    _, record = _write_movielens(monkeypatch, data_dir)
    out = tmp_path / "run"
    sets = ["dataset=movielens-100k", "shape=[943, 1682]", "num_observed=200", "depths=[2]", "t1=[50.0]"]
    sets += ["num_saves=2", "num_chunks=1", "rank=2", "top=3"]
    argv = ["reproduce", "matrix-dynamics-depth", "--size", "tiny", "--out", str(out), "--no-progress"]
    assert cli.main(argv + [a for s in sets for a in ("--set", s)]) in (0, 1)
    meta = json.loads((out / "results.json").read_text())
    assert meta["data"] == record
    assert "test_error" in meta["dims"] and "reconstruction_error" not in meta["dims"]
    assert "test error" in capsys.readouterr().out


def test_ratings_completion_splits_the_ratings():
    import jax

    from jaxreg_lab.reproductions.matrix_dynamics_depth import ratings_completion

    users, items, ratings = np.array([0, 1, 2, 0]), np.array([1, 0, 2, 2]), np.array([5, 4, 3, 1])
    problem = ratings_completion(jax.random.key(0), users, items, ratings, (3, 3), 3)
    idx = np.concatenate([problem.train.indices, problem.test.indices])
    vals = np.concatenate([problem.train.values, problem.test.values])
    assert problem.train.size == 3 and problem.test.size == 1 and problem.target is None
    assert sorted(zip(idx[:, 0], idx[:, 1], vals)) == sorted(zip(users, items, ratings.astype(float)))


def test_chunked_evaluation_equals_the_whole(monkeypatch):
    """MNIST's 60,000 images at order 784 are evaluated in chunks: the same mean."""
    import jax
    import jax.numpy as jnp

    factors = jax.random.normal(jax.random.key(0), (6, 2, 5))
    x = jax.nn.one_hot(jax.random.randint(jax.random.key(1), (24, 6), 0, 2), 2)
    y = jnp.arange(24.0)
    blocks = jnp.asarray(trc.rank_blocks((2, 3)))

    def errors(x, y):
        return (trc.block_predictions(factors, x, blocks) - y[:, None]) ** 2

    whole = trc._chunked_mean(errors, x, y, factors)
    monkeypatch.setattr(trc, "EVAL_LIMIT", 6 * 5 * 7)  # chunks of 6 images (the largest divisor of 24 up to 7)
    np.testing.assert_allclose(trc._chunked_mean(errors, x, y, factors), whole, rtol=1e-6)
    np.testing.assert_allclose(whole, jnp.mean(errors(x, y), axis=0))
