"""Real data sets where the user has them: CIFAR-10, MNIST, Fashion-MNIST, MovieLens 100k.

Every file is read from a data directory (:func:`data_dir`: ``--data-dir``, else
``$JAXREG_DATA``, else ``~/.cache/jaxreg/data``) and checked against the MD5 its
publishers list (:data:`CHECKSUMS`) before a byte of it is parsed. Only plain binary and
text formats are read; nothing is unpickled or executed:

- CIFAR-10, the binary version: ``data_batch_1.bin`` .. ``data_batch_5.bin`` and
  ``test_batch.bin``, records of 1 label byte and 3072 pixel bytes (3 x 32 x 32, channel
  planes, rows), read straight out of the published archive ``cifar-10-binary.tar.gz``
  (never extracted; the python version's pickled batches are not read);
- MNIST and Fashion-MNIST: the IDX files (magic ``0 0 type ndim``, big-endian int32
  dims, then the values), gzipped as published or uncompressed;
- MovieLens 100k: ``u.data`` (``user item rating timestamp``, tab separated, ids from
  1), read straight out of the published archive ``ml-100k.zip``.

:func:`fetch` (``jaxreg data fetch NAME``) downloads a data set's files with a progress
bar, resumes a partial download (an HTTP Range request; a byte offset for ``file://``
URLs), verifies the checksum and renames each file into place only when it is complete.
Partial downloads wait in ``<data dir>/.partial/``, which nothing reads as data.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from jaxtyping import UInt8

from jaxreg_lab.registry import DATA_SETS
from jaxreg_lab.store import data_files
from jaxreg_lab.store.data_files import DataError as DataError

__all__ = [
    "DATASETS",
    "CHECKSUMS",
    "URLS",
    "DataError",
    "ImageData",
    "Ratings",
    "data_dir",
    "require",
    "fetch",
    "verify",
    "read_idx",
    "read_cifar_batch",
    "read_movielens_ratings",
    "load_images",
    "load_cifar10",
    "load_mnist",
    "load_movielens_100k",
    "status",
]

# The files of each data set, as paths relative to the data directory.
DATASETS: dict[str, tuple[str, ...]] = {
    "cifar10": ("cifar-10-binary.tar.gz",),
    "mnist": tuple(
        f"mnist/{f}-ubyte.gz"
        for f in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
    ),
    "fashion-mnist": tuple(
        f"fashion-mnist/{f}-ubyte.gz"
        for f in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
    ),
    "movielens-100k": ("ml-100k.zip",),
}
assert tuple(DATASETS) == DATA_SETS  # the command line's choices, read without importing numpy

# The published MD5 of every file (one table, so that tests can substitute the checksums
# of small synthetic files). Sources:
# - cifar-10-binary.tar.gz: the CIFAR-10 page, https://www.cs.toronto.edu/~kriz/cifar.html
#   ("CIFAR-10 binary version (suitable for C programs)");
# - MNIST: torchvision's torchvision/datasets/mnist.py, ``MNIST.resources``;
# - Fashion-MNIST: torchvision's torchvision/datasets/mnist.py, ``FashionMNIST.resources``
#   (the same as the table in github.com/zalandoresearch/fashion-mnist's README);
# - ml-100k.zip: GroupLens's checksum file beside the archive,
#   https://files.grouplens.org/datasets/movielens/ml-100k.zip.md5.
CHECKSUMS: dict[str, str] = {
    "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
    "mnist/train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "mnist/train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "mnist/t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "mnist/t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "fashion-mnist/train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    "ml-100k.zip": "0e33842e24a9c977be4e0107933c0723",
}

_MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's first MNIST mirror
_FASHION_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # Zalando's, as torchvision
URLS: dict[str, str] = {
    "cifar-10-binary.tar.gz": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    **{p: _MNIST_MIRROR + p.split("/")[1] for p in DATASETS["mnist"]},
    **{p: _FASHION_MIRROR + p.split("/")[1] for p in DATASETS["fashion-mnist"]},
    "ml-100k.zip": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
}

CIFAR_MEMBERS = tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)) + (
    "cifar-10-batches-bin/test_batch.bin",
)
CIFAR_RECORD = 1 + 3 * 32 * 32
MOVIELENS_MEMBER = "ml-100k/u.data"
# IDX type byte -> big-endian dtype (the IDX format of LeCun et al.'s MNIST page)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclasses.dataclass(frozen=True)
class ImageData:
    """A labelled image data set, its standard train / test split, as uint8.

    ``images`` are (n, channels, height, width), ``labels`` (n,) class indices 0..9;
    ``record`` says which files were read and their MD5 (what ``results.json`` records)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    record: dict


@dataclasses.dataclass(frozen=True)
class Ratings:
    """Ratings as three aligned arrays: ``users`` and ``items`` (0-based ids) and
    ``ratings`` (1..5), in the file's order; ``record`` as in :class:`ImageData`."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    record: dict


# ---------------------------------------------------------------- where the files are
def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data directory.

    Arguments:
        path: an explicit directory (``--data-dir``), or None.

    Returns:
        ``path`` if given, else ``$JAXREG_DATA``, else ``~/.cache/jaxreg/data``.
    """
    if path is not None and str(path):
        return Path(path).expanduser()
    if os.environ.get("JAXREG_DATA"):
        return Path(os.environ["JAXREG_DATA"]).expanduser()
    return Path.home() / ".cache" / "jaxreg" / "data"


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose from {sorted(DATASETS)}")


def _how_to_get(name: str, rel: str, root: Path) -> str:
    return (
        f"run `jaxreg data fetch {name} --data-dir {root}`, or download {URLS[rel]} "
        f"(MD5 {CHECKSUMS[rel]}) to {root / rel}"
    )


def _uncompressed(rel: str) -> str | None:
    """The uncompressed IDX file standing for a gzipped one (None for other files)."""
    return rel[: -len(".gz")] if rel.endswith("-ubyte.gz") else None


def _present(root: Path, rel: str) -> Path | None:
    """The file holding ``rel`` in ``root``: itself, or for an IDX file its uncompressed form."""
    if (root / rel).is_file():
        return root / rel
    raw = _uncompressed(rel)
    return root / raw if raw is not None and (root / raw).is_file() else None


def require(name: str, path: str | os.PathLike | None = None) -> Path:
    """Check, without reading them, that every file of data set ``name`` is in the data
    directory (what a run checks before any compute).

    Arguments:
        name: a key of :data:`DATASETS`.
        path: the data directory (see :func:`data_dir`).

    Returns:
        The data directory; raises :class:`DataError` naming the first missing file and
        how to get it.
    """
    _check_name(name)
    root = data_dir(path)
    for rel in DATASETS[name]:
        if _present(root, rel) is None:
            raise DataError(f"{name}: {rel} is not in the data directory {root}; {_how_to_get(name, rel, root)}")
    return root


# ---------------------------------------------------------------- checksums
def verify(name: str, rel: str, root: Path) -> tuple[Path, str]:
    """Check one file of data set ``name`` against its published MD5.

    An uncompressed IDX file (no published checksum exists for it) is accepted where its
    gzipped form is absent; its MD5 is recorded, and :func:`read_idx` checks its size
    against its header.

    Arguments:
        name: the data set.
        rel: the file, relative to ``root`` (a key of :data:`CHECKSUMS`).
        root: the data directory.

    Returns:
        (the file's path, its MD5); raises :class:`DataError` when it is missing or its
        MD5 differs from the published one.
    """
    path = _present(root, rel)
    if path is None:
        raise DataError(f"{name}: {rel} is not in the data directory {root}; {_how_to_get(name, rel, root)}")
    got = data_files.md5sum(path)
    if path == root / rel and got != CHECKSUMS[rel]:
        raise DataError(
            f"{path}: MD5 {got} differs from the published {CHECKSUMS[rel]} (a corrupt, truncated or other "
            f"file); delete it and {_how_to_get(name, rel, root)}"
        )
    return path, got


def _record(name: str, files: dict[str, str]) -> dict:
    return {"name": name, "files": {rel: f"md5:{md5}" for rel, md5 in files.items()}}


# ---------------------------------------------------------------- the formats
def read_idx(source: bytes | Path) -> np.ndarray:
    """An IDX file's array (the format of the MNIST and Fashion-MNIST files).

    Layout: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions n, n big-endian int32 sizes, then
    the values, big-endian, in C order. Gzipped input (magic 1f 8b) is decompressed first.

    Arguments:
        source: the file's bytes, or its path.

    Returns:
        The array, shape the header's sizes, in native byte order; raises
        :class:`DataError` on a bad header or a size that does not match it.
    """
    label = str(source) if isinstance(source, Path) else "IDX data"
    data = data_files.read_file(source) if isinstance(source, Path) else bytes(source)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{label}: not a readable gzip file ({e})") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_TYPES:
        raise DataError(f"{label}: not an IDX file (its first bytes are {data[:4].hex() or 'missing'})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{label}: truncated IDX header ({len(data)} bytes, {header} needed for {ndim} dims)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">i4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = header + dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(f"{label}: {what}: {len(data)} bytes, the header {shape} needs {expected}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_cifar_batch(data: bytes, label: str = "CIFAR-10 batch") -> tuple[UInt8[np.ndarray, "n 3 32 32"], np.ndarray]:
    """A CIFAR-10 binary batch: records of one label byte (0..9) and 3072 pixel bytes (the
    red, green and blue 32 x 32 planes, each row-major).

    Arguments:
        data: the batch file's bytes.
        label: the file's name in errors.

    Returns:
        (images (n, 3, 32, 32) uint8, labels (n,) uint8); raises :class:`DataError` when
        the size is not a whole number of records or a label exceeds 9.
    """
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise DataError(f"{label}: {len(data)} bytes is not a whole number of {CIFAR_RECORD}-byte records")
    records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise DataError(f"{label}: record {int(np.argmax(labels > 9))} has label {labels.max()}, not 0..9")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def read_movielens_ratings(data: bytes, label: str = "u.data") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MovieLens ``u.data``: one rating a line, ``user item rating timestamp`` separated by
    tabs, ids from 1, ratings 1..5.

    Arguments:
        data: the file's bytes.
        label: the file's name in errors.

    Returns:
        (users, items, ratings) int arrays in the file's order, ids made 0-based; raises
        :class:`DataError` on a line without four integers or a rating outside 1..5.
    """
    lines = data.decode("ascii", errors="replace").splitlines()
    rows = np.zeros((len(lines), 4), np.int64)
    for i, line in enumerate(lines):
        fields = line.split("\t")
        if len(fields) != 4 or not all(f.strip().isdigit() for f in fields):
            raise DataError(f"{label}: line {i + 1} is not four tab-separated integers: {line[:60]!r}")
        rows[i] = [int(f) for f in fields]
    if not len(rows):
        raise DataError(f"{label}: no ratings")
    if rows[:, :2].min() < 1:
        raise DataError(f"{label}: user and item ids start at 1, found 0")
    bad = (rows[:, 2] < 1) | (rows[:, 2] > 5)
    if bad.any():
        raise DataError(f"{label}: line {int(np.argmax(bad)) + 1} has rating {rows[bad][0, 2]}, not 1..5")
    return rows[:, 0] - 1, rows[:, 1] - 1, rows[:, 2]


# ---------------------------------------------------------------- the data sets
def load_mnist(name: str = "mnist", path: str | os.PathLike | None = None) -> ImageData:
    """MNIST or Fashion-MNIST (``name`` "mnist" or "fashion-mnist"): the 60,000 training
    and 10,000 test images (28 x 28, one channel) and their labels, verified.

    Arguments:
        name: "mnist" or "fashion-mnist".
        path: the data directory (see :func:`data_dir`).

    Returns:
        An :class:`ImageData` of (n, 1, 28, 28) uint8 images.
    """
    if name not in ("mnist", "fashion-mnist"):
        raise DataError(f"name must be 'mnist' or 'fashion-mnist', got {name!r}")
    root = data_dir(path)
    arrays, md5s = [], {}
    for rel in DATASETS[name]:
        file, md5s[rel] = verify(name, rel, root)
        arrays.append(read_idx(file))
    train_x, train_y, test_x, test_y = arrays
    for images, labels, rel in ((train_x, train_y, DATASETS[name][0]), (test_x, test_y, DATASETS[name][2])):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or images.dtype != np.uint8:
            raise DataError(f"{root / rel}: images {images.shape} {images.dtype} do not match labels {labels.shape}")
    return ImageData(train_x[:, None], train_y, test_x[:, None], test_y, _record(name, md5s))


def load_cifar10(path: str | os.PathLike | None = None) -> ImageData:
    """CIFAR-10's binary batches, read out of the verified archive: the 50,000 training
    images (data_batch_1..5, in order) and the 10,000 test images (test_batch).

    Arguments:
        path: the data directory (see :func:`data_dir`).

    Returns:
        An :class:`ImageData` of (n, 3, 32, 32) uint8 images.
    """
    root = data_dir(path)
    rel = DATASETS["cifar10"][0]
    file, md5 = verify("cifar10", rel, root)
    members = data_files.archive_members(file, CIFAR_MEMBERS)
    batches = [read_cifar_batch(members[m], f"{file}:{m}") for m in CIFAR_MEMBERS]
    train = batches[:-1]
    return ImageData(
        np.concatenate([b[0] for b in train]),
        np.concatenate([b[1] for b in train]),
        batches[-1][0],
        batches[-1][1],
        _record("cifar10", {rel: md5}),
    )


def load_images(name: str, path: str | os.PathLike | None = None) -> ImageData:
    """:func:`load_cifar10` for "cifar10", :func:`load_mnist` for "mnist" and "fashion-mnist"."""
    return load_cifar10(path) if name == "cifar10" else load_mnist(name, path)


def load_movielens_100k(path: str | os.PathLike | None = None) -> Ratings:
    """MovieLens 100k's ``u.data`` read out of the verified ``ml-100k.zip``: 100,000
    ratings of 1682 movies by 943 users.

    Arguments:
        path: the data directory (see :func:`data_dir`).

    Returns:
        :class:`Ratings`.
    """
    root = data_dir(path)
    rel = DATASETS["movielens-100k"][0]
    file, md5 = verify("movielens-100k", rel, root)
    data = data_files.archive_members(file, [MOVIELENS_MEMBER])[MOVIELENS_MEMBER]
    users, items, ratings = read_movielens_ratings(data, f"{file}:{MOVIELENS_MEMBER}")
    return Ratings(users, items, ratings, _record("movielens-100k", {rel: md5}))


def status(path: str | os.PathLike | None = None) -> list[tuple[str, str, str]]:
    """(data set, file, state) for every file: "verified", "missing", "uncompressed (no
    published checksum)" or "MD5 differs from the published one".

    Arguments:
        path: the data directory (see :func:`data_dir`).

    Returns:
        One row a file, in :data:`DATASETS` order.
    """
    root = data_dir(path)
    rows = []
    for name, files in DATASETS.items():
        for rel in files:
            file = _present(root, rel)
            if file is None:
                state = "missing"
            elif file != root / rel:
                state = "uncompressed (no published checksum)"
            else:
                state = (
                    "verified" if data_files.md5sum(file) == CHECKSUMS[rel] else "MD5 differs from the published one"
                )
            rows.append((name, rel, state))
    return rows


# ---------------------------------------------------------------- downloading
def fetch(
    name: str, path: str | os.PathLike | None = None, *, progress: bool = True, echo: Callable[[str], None] = print
) -> list[Path]:
    """Download data set ``name`` into the data directory.

    Each file downloads to ``<data dir>/.partial/`` first (continuing what an interrupted
    download left there), is checked against its published MD5 and only then renamed to
    its place (:func:`jaxreg_lab.store.data_files.download`); a file already in place and
    verified is kept.

    Arguments:
        name: a key of :data:`DATASETS`.
        path: the data directory (see :func:`data_dir`).
        progress: show a progress bar per file.
        echo: where the one-line reports go.

    Returns:
        The paths of the data set's files. Raises :class:`DataError` (one line: the file,
        and where to put it) when a download fails (the partial file is kept to resume)
        or its MD5 differs (the partial file is deleted).
    """
    _check_name(name)
    root = data_dir(path)
    out = []
    for rel in DATASETS[name]:
        dest = root / rel
        if dest.is_file():
            verify(name, rel, root)
            echo(f"{dest}: already there, MD5 verified")
        else:
            part = root / ".partial" / (rel.replace("/", "--") + ".part")
            hint = f"put {dest.name} (MD5 {CHECKSUMS[rel]}) in {dest.parent}"
            data_files.download(URLS[rel], dest, CHECKSUMS[rel], part, progress=progress, hint=hint)
            echo(f"{dest}: downloaded, MD5 verified")
        out.append(dest)
    return out
