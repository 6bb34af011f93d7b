"""The real data sets without a network: small synthetic files in each standard format
read back exactly, one clear error per corrupt, truncated or wrong-checksum file, and a
``file://`` download interrupted and resumed (jaxreg_lab.datasets, ``jaxreg data``)."""

import gzip
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jaxreg_lab import cli, datasets, registry
from jaxreg_lab.datasets import DataError
from jaxreg_lab.store import data_files

RNG = np.random.default_rng(0)


def _idx(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    header = bytes([0, 0, type_byte, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _publish(monkeypatch, root: Path, rel: str, data: bytes) -> Path:
    """Write ``data`` at ``root / rel`` and make its MD5 the published one."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    monkeypatch.setitem(datasets.CHECKSUMS, rel, _md5(data))
    return path


def _mnist_files(n_train=5, n_test=3):
    x_tr, x_te = (RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (n_train, n_test))
    y_tr, y_te = (RNG.integers(0, 10, n, dtype=np.uint8) for n in (n_train, n_test))
    return (x_tr, y_tr, x_te, y_te), [gzip.compress(_idx(a)) for a in (x_tr, y_tr, x_te, y_te)]


def _cifar_archive(per_batch=2):
    images = RNG.integers(0, 256, (6, per_batch, 3, 32, 32), dtype=np.uint8)
    labels = RNG.integers(0, 10, (6, per_batch), dtype=np.uint8)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, x, y in zip(datasets.CIFAR_MEMBERS, images, labels, strict=True):
            data = np.concatenate([y[:, None], x.reshape(per_batch, -1)], axis=1).tobytes()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return images, labels, buf.getvalue()


def _movielens_zip(rows):
    text = "".join("\t".join(str(v) for v in row) + "\n" for row in rows).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(datasets.MOVIELENS_MEMBER, text)
    return buf.getvalue()


def test_the_command_line_names_every_data_set():
    assert tuple(datasets.DATASETS) == registry.DATA_SETS
    assert set(datasets.CHECKSUMS) == set(datasets.URLS) == {f for fs in datasets.DATASETS.values() for f in fs}


def test_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXREG_DATA", str(tmp_path / "env"))
    assert datasets.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert datasets.data_dir() == tmp_path / "env"
    monkeypatch.delenv("JAXREG_DATA")
    assert datasets.data_dir() == Path.home() / ".cache" / "jaxreg" / "data"


@pytest.mark.parametrize("type_byte,dtype", [(0x08, np.uint8), (0x0B, np.int16), (0x0D, np.float32)])
def test_idx_read_back_exactly_gzipped_or_not(type_byte, dtype):
    array = RNG.normal(size=(3, 4, 5)).__mul__(50).astype(dtype)
    raw = _idx(array, type_byte)
    for data in (raw, gzip.compress(raw)):
        back = datasets.read_idx(data)
        assert back.dtype == dtype and back.dtype.isnative and np.array_equal(back, array)


@pytest.mark.parametrize(
    "data,message",
    [
        (_idx(np.zeros((2, 3), np.uint8))[:-1], r"truncated: 17 bytes, the header \(2, 3\) needs 18"),
        (_idx(np.zeros((2, 3), np.uint8)) + b"\0", "longer than its header says"),
        (_idx(np.zeros((4, 3), np.uint8))[:9], "truncated IDX header"),
        (b"PK\x03\x04rest", "not an IDX file"),
        (gzip.compress(_idx(np.zeros((2, 3), np.uint8)))[:-6], "not a readable gzip file"),
    ],
    ids=["truncated", "too long", "truncated header", "not IDX", "broken gzip"],
)
def test_idx_errors_are_one_line(data, message):
    with pytest.raises(DataError, match=message) as e:
        datasets.read_idx(data)
    assert "\n" not in str(e.value)


def test_mnist_files_read_back_exactly(monkeypatch, tmp_path):
    arrays, files = _mnist_files()
    for rel, data in zip(datasets.DATASETS["fashion-mnist"], files, strict=True):
        _publish(monkeypatch, tmp_path, rel, data)
    got = datasets.load_mnist("fashion-mnist", tmp_path)
    for want, have in zip(arrays, (got.train_images[:, 0], got.train_labels, got.test_images[:, 0], got.test_labels)):
        assert np.array_equal(want, have)
    assert got.train_images.shape == (5, 1, 28, 28)
    assert got.record == {
        "name": "fashion-mnist",
        "files": {rel: "md5:" + _md5(d) for rel, d in zip(datasets.DATASETS["fashion-mnist"], files)},
    }


def test_uncompressed_idx_is_read_and_its_md5_recorded(monkeypatch, tmp_path):
    arrays, files = _mnist_files()
    rels = datasets.DATASETS["mnist"]
    for rel, data in zip(rels, files, strict=True):
        _publish(monkeypatch, tmp_path, rel, data)
    raw = gzip.decompress(files[0])
    (tmp_path / rels[0]).unlink()
    (tmp_path / rels[0][:-3]).write_bytes(raw)
    got = datasets.load_mnist("mnist", tmp_path)
    assert np.array_equal(got.train_images[:, 0], arrays[0])
    assert got.record["files"][rels[0]] == "md5:" + _md5(raw)
    assert dict((r, s) for _, r, s in datasets.status(tmp_path))[rels[0]] == "uncompressed (no published checksum)"


def test_cifar10_batches_read_back_exactly(monkeypatch, tmp_path):
    images, labels, archive = _cifar_archive()
    _publish(monkeypatch, tmp_path, "cifar-10-binary.tar.gz", archive)
    got = datasets.load_cifar10(tmp_path)
    assert np.array_equal(got.train_images, images[:5].reshape(10, 3, 32, 32))
    assert np.array_equal(got.train_labels, labels[:5].ravel())
    assert np.array_equal(got.test_images, images[5]) and np.array_equal(got.test_labels, labels[5])
    assert got.record["files"] == {"cifar-10-binary.tar.gz": "md5:" + _md5(archive)}


def test_cifar10_batch_errors():
    with pytest.raises(DataError, match="not a whole number of 3073-byte records"):
        datasets.read_cifar_batch(bytes(3073 * 2 - 1))
    bad = bytearray(3073 * 2)
    bad[3073] = 10
    with pytest.raises(DataError, match="record 1 has label 10"):
        datasets.read_cifar_batch(bytes(bad))


def test_cifar10_archive_without_a_batch(monkeypatch, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(datasets.CIFAR_MEMBERS[0])
        info.size = 3073
        tar.addfile(info, io.BytesIO(bytes(3073)))
    _publish(monkeypatch, tmp_path, "cifar-10-binary.tar.gz", buf.getvalue())
    with pytest.raises(DataError, match="the archive lacks cifar-10-batches-bin/data_batch_2.bin"):
        datasets.load_cifar10(tmp_path)


def test_movielens_ratings_read_back_exactly(monkeypatch, tmp_path):
    rows = [(196, 242, 3, 881250949), (186, 302, 3, 891717742), (22, 377, 1, 878887116), (1, 1, 5, 1)]
    _publish(monkeypatch, tmp_path, "ml-100k.zip", _movielens_zip(rows))
    got = datasets.load_movielens_100k(tmp_path)
    want = np.asarray(rows)
    assert np.array_equal(got.users, want[:, 0] - 1) and np.array_equal(got.items, want[:, 1] - 1)
    assert np.array_equal(got.ratings, want[:, 2])


@pytest.mark.parametrize(
    "text,message",
    [
        (b"1\t2\t3\t9\n4\t5\n", "line 2 is not four tab-separated integers"),
        (b"1\t2\t6\t0\n", "line 1 has rating 6"),
        (b"0\t2\t3\t0\n", "start at 1"),
    ],
)
def test_movielens_errors(text, message):
    with pytest.raises(DataError, match=message):
        datasets.read_movielens_ratings(text)


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_damaged_file_fails_its_checksum_in_one_line(monkeypatch, tmp_path, damage):
    arrays, files = _mnist_files()
    rels = datasets.DATASETS["mnist"]
    for rel, data in zip(rels, files, strict=True):
        _publish(monkeypatch, tmp_path, rel, data)
    path = tmp_path / rels[2]
    data = path.read_bytes()
    path.write_bytes(data[:-10] if damage == "truncated" else data[:20] + bytes([data[20] ^ 1]) + data[21:])
    with pytest.raises(DataError) as e:
        datasets.load_mnist("mnist", tmp_path)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{path}: MD5 ")
    assert f"differs from the published {datasets.CHECKSUMS[rels[2]]}" in message
    assert "jaxreg data fetch mnist" in message


def test_the_real_checksums_reject_a_synthetic_file(tmp_path):
    _, _, archive = _cifar_archive()
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(archive)
    with pytest.raises(DataError, match="differs from the published c32a1d4ab5d03f1284b67883e8d87530"):
        datasets.load_cifar10(tmp_path)


def test_require_names_the_missing_file_and_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as e:
        datasets.require("movielens-100k", tmp_path)
    assert str(e.value) == (
        f"movielens-100k: ml-100k.zip is not in the data directory {tmp_path}; run `jaxreg data fetch "
        f"movielens-100k --data-dir {tmp_path}`, or download {datasets.URLS['ml-100k.zip']} (MD5 "
        f"{datasets.CHECKSUMS['ml-100k.zip']}) to {tmp_path / 'ml-100k.zip'}"
    )


# ---------------------------------------------------------------- downloading
def _serve(monkeypatch, tmp_path, name="mnist"):
    """Synthetic files of ``name`` under tmp_path/server, served by file:// URLs with their
    MD5s published; returns {rel: bytes}."""
    _, files = _mnist_files(n_train=40, n_test=20)
    served = {}
    for rel, data in zip(datasets.DATASETS[name], files, strict=True):
        source = tmp_path / "server" / rel
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(data)
        monkeypatch.setitem(datasets.CHECKSUMS, rel, _md5(data))
        monkeypatch.setitem(datasets.URLS, rel, source.as_uri())
        served[rel] = data
    return served


class _Dropping(io.RawIOBase):
    """A stream that fails after ``limit`` bytes, as a dropped connection does."""

    def __init__(self, stream, limit):
        self.stream, self.left = stream, limit

    def read(self, n=-1):
        if self.left <= 0:
            raise ConnectionResetError("connection reset by peer")
        block = self.stream.read(min(n, self.left))
        self.left -= len(block)
        return block

    def close(self):
        self.stream.close()
        super().close()


def test_fetch_interrupted_then_resumed_yields_the_verified_file(monkeypatch, tmp_path):
    served = _serve(monkeypatch, tmp_path)
    data_dir = tmp_path / "data"
    monkeypatch.setattr(data_files, "CHUNK_BYTES", 64)
    real_open = data_files._open
    offsets = []

    def dropping_open(url, offset):
        offsets.append(offset)
        stream, total, start = real_open(url, offset)
        return _Dropping(stream, 200), total, start

    monkeypatch.setattr(data_files, "_open", dropping_open)
    first = datasets.DATASETS["mnist"][0]
    with pytest.raises(DataError) as e:
        datasets.fetch("mnist", data_dir, progress=False, echo=lambda _: None)
    part = data_dir / ".partial" / (first.replace("/", "--") + ".part")
    assert str(e.value).startswith(f"could not download {data_dir / first} from file://")
    assert f"200 bytes kept in {part}" in str(e.value) and "\n" not in str(e.value)
    assert part.stat().st_size == 200 and not (data_dir / first).exists()

    def spying_open(url, offset):
        offsets.append(offset)
        return real_open(url, offset)

    monkeypatch.setattr(data_files, "_open", spying_open)
    lines = []
    paths = datasets.fetch("mnist", data_dir, progress=False, echo=lines.append)
    assert offsets == [0, 200, 0, 0, 0]  # the first file resumed at its 200 bytes, the others from scratch
    assert [p.read_bytes() for p in paths] == list(served.values())
    assert all(line.endswith("downloaded, MD5 verified") for line in lines)
    assert not (data_dir / ".partial").exists()
    assert len(datasets.load_mnist("mnist", data_dir).train_labels) == 40
    # a second fetch verifies what is there and downloads nothing
    lines.clear()
    datasets.fetch("mnist", data_dir, progress=False, echo=lines.append)
    assert len(offsets) == 5 and all(line.endswith("already there, MD5 verified") for line in lines)


def test_fetch_with_a_wrong_checksum_leaves_nothing(monkeypatch, tmp_path):
    _serve(monkeypatch, tmp_path)
    first = datasets.DATASETS["mnist"][0]
    monkeypatch.setitem(datasets.CHECKSUMS, first, "0" * 32)
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as e:
        datasets.fetch("mnist", data_dir, progress=False, echo=lambda _: None)
    assert "differs from the published 00000000000000000000000000000000, so it was deleted" in str(e.value)
    assert f"put train-images-idx3-ubyte.gz with that MD5 in {data_dir / 'mnist'}" in str(e.value)
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_cli_fetch_offline_prints_one_line_and_leaves_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(datasets.URLS, "ml-100k.zip", (tmp_path / "nowhere" / "ml-100k.zip").as_uri())
    data_dir = tmp_path / "data"
    assert cli.main(["data", "fetch", "movielens-100k", "--data-dir", str(data_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(
        f"jaxreg: error: could not download {data_dir / 'ml-100k.zip'} from file:"
    )
    assert err.endswith(f"put ml-100k.zip (MD5 {datasets.CHECKSUMS['ml-100k.zip']}) in {data_dir}")
    assert not data_dir.exists() or [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_cli_fetch_and_list(monkeypatch, tmp_path, capsys):
    _serve(monkeypatch, tmp_path, "fashion-mnist")
    data_dir = tmp_path / "data"
    assert cli.main(["data", "fetch", "fashion-mnist", "--data-dir", str(data_dir), "--no-progress"]) == 0
    assert capsys.readouterr().out.count("downloaded, MD5 verified") == 4
    assert cli.main(["data", "list", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count(" verified") == 4 and out.count(" missing") == 6
    assert cli.main(["data", "fetch", "imagenet"]) == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def test_the_docs_list_every_file_with_its_checksum_and_source():
    """docs/datasets.md, where a user without a network looks, agrees with the table the
    reader checks against."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "datasets.md").read_text()
    rows = {line.split("|")[2].strip(" `"): line for line in page.splitlines() if line.count("|") == 5}
    for rel, md5 in datasets.CHECKSUMS.items():
        assert f"`{md5}`" in rows[rel], rel
        url = datasets.URLS[rel]
        assert url.rsplit("/", 1)[0] in page, url


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``body`` with HTTP Range support (206 Partial Content); the first
    ``drop_once`` requests send only ``drop_after`` bytes of what they announce, then
    close, as a dropped connection does."""

    body = b""
    drop_after = 0
    drop_once = 0
    ignore_range = False
    ranges: list

    def do_GET(self):  # noqa: N802 (the handler's required name)
        start = 0
        header = self.headers.get("Range")
        if header and not self.ignore_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
        type(self).ranges.append(header)
        data = self.body[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if type(self).drop_once:
            type(self).drop_once -= 1
            data = data[: self.drop_after]
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("ignore_range", [False, True], ids=["resumed", "server ignores Range: from the start"])
def test_http_download_dropped_then_resumed_with_a_range_request(monkeypatch, tmp_path, ignore_range):
    body = gzip.compress(_idx(RNG.integers(0, 256, (30, 28, 28), dtype=np.uint8)))
    fields = {"body": body, "drop_after": 1000, "drop_once": 1, "ranges": [], "ignore_range": ignore_range}
    handler = type("Handler", (_RangeHandler,), fields)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rel = datasets.DATASETS["mnist"][0]
        monkeypatch.setitem(datasets.DATASETS, "mnist", (rel,))
        monkeypatch.setitem(datasets.URLS, rel, f"http://127.0.0.1:{server.server_address[1]}/{rel}")
        monkeypatch.setitem(datasets.CHECKSUMS, rel, _md5(body))
        with pytest.raises(DataError, match="1000 bytes kept in .*run the fetch again to resume"):
            datasets.fetch("mnist", tmp_path, progress=False, echo=lambda _: None)
        assert not (tmp_path / rel).exists()
        (path,) = datasets.fetch("mnist", tmp_path, progress=False, echo=lambda _: None)
    finally:
        server.shutdown()
        server.server_close()
    assert handler.ranges == [None, "bytes=1000-"]
    assert path.read_bytes() == body and not (tmp_path / ".partial").exists()
