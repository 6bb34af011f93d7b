"""Tracking: the per-chunk ``metrics.jsonl`` of every run (one line per chunk, each chunk
once after a crash and ``--resume``), the TensorBoard event files of ``--tensorboard``
read back, wandb in offline mode, and the one-line error when an extra is missing."""

import json
import struct
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg_lab import cli, driver
from jaxreg_lab.driver import run_chunks
from jaxreg_lab.store import checkpoints as checkpoint_store
from jaxreg_lab.store.metrics_log import METRICS_LOG, chunk_record, read_records, truncate_from
from jaxreg_lab.store.results import foreign_entries, load_results, save_results


def _step(state, k):
    """A run of 2 runs whose loss after chunk k is (k, 10 k) at 3 saves, the last one NaN
    for run 1 at chunk 2."""
    loss = jnp.stack([jnp.full(3, k, float), jnp.full(3, 10.0 * k)])
    loss = loss.at[1, -1].set(jnp.where(k == 2, jnp.nan, loss[1, -1]))
    return state + 1, {"loss": loss, "steps": jnp.asarray([k, k]), "vector": jnp.zeros((2, 3, 4))}


def _chunks(out):
    return [(r["name"], r["chunk"]) for r in read_records(out)]


def test_every_chunk_appends_one_line_with_its_metrics(tmp_path):
    run_chunks(_step, jnp.zeros(()), 4, out_dir=tmp_path, progress=False, fingerprint="fp")
    records = read_records(tmp_path)
    assert [r["chunk"] for r in records] == [0, 1, 2, 3] and {r["num_chunks"] for r in records} == {4}
    last = records[3]["metrics"]
    assert last["loss"] == {"last": [3.0, 30.0], "min": 3.0, "median": 16.5, "max": 30.0}
    assert last["steps"]["last"] == [3, 3] and "vector" not in last  # more than one value per save: not logged
    assert records[2]["metrics"]["loss"] == {"last": [2.0, None], "min": 2.0, "median": 2.0, "max": 2.0}
    text = (tmp_path / METRICS_LOG).read_text()
    assert text.endswith("\n") and "NaN" not in text and len(text.splitlines()) == 4


def test_a_crash_between_a_line_and_its_checkpoint_leaves_each_chunk_once(tmp_path, monkeypatch):
    """Chunk 2's line is written, then the process dies before its checkpoint: the resume
    computes chunk 2 again and the log still holds chunks 0..4 once each, in order."""
    real = checkpoint_store.commit_unit
    calls = []

    def dying(directory, done, *a, **k):
        calls.append(done)
        if done == 3:
            raise KeyboardInterrupt
        return real(directory, done, *a, **k)

    monkeypatch.setattr(driver, "commit_unit", dying)
    with pytest.raises(KeyboardInterrupt):
        run_chunks(_step, jnp.zeros(()), 5, out_dir=tmp_path, progress=False, fingerprint="fp")
    assert [c for _, c in _chunks(tmp_path)] == [0, 1, 2]  # chunk 2 logged, not committed
    monkeypatch.undo()
    state, _, _ = run_chunks(_step, jnp.zeros(()), 5, out_dir=tmp_path, progress=False, fingerprint="fp", resume=True)
    assert int(state) == 5
    assert [c for _, c in _chunks(tmp_path)] == [0, 1, 2, 3, 4]
    fresh = tmp_path / "fresh"
    run_chunks(_step, jnp.zeros(()), 5, out_dir=fresh, progress=False, fingerprint="fp")
    strip = lambda rs: [{k: v for k, v in r.items() if k != "wall_s"} for r in rs]
    assert strip(read_records(tmp_path)) == strip(read_records(fresh))


def test_a_cut_last_line_is_skipped_and_other_sub_runs_are_kept(tmp_path):
    log = tmp_path / METRICS_LOG
    lines = [chunk_record(n, k, 3, 0.0, {"x": np.ones(2)}) for n in ("a", "b") for k in range(3)]
    log.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"name": "b", "chu')
    assert len(read_records(tmp_path)) == 6
    truncate_from(tmp_path, "a", 1)
    assert _chunks(tmp_path) == [("a", 0), ("b", 0), ("b", 1), ("b", 2)]
    assert log.read_text().endswith("}\n")


def test_saved_results_keep_the_log_and_it_is_not_a_foreign_file(tmp_path):
    out = tmp_path / "r"
    run_chunks(_step, jnp.zeros(()), 2, out_dir=out, progress=False, fingerprint="fp")
    assert foreign_entries(out) == []
    before = (out / METRICS_LOG).read_bytes()
    save_results(out, "demo", {"x": (("seed",), np.arange(2.0))}, coords={"seed": [0, 1]})
    assert (out / METRICS_LOG).read_bytes() == before and load_results(out).name == "demo"


def _events(directory):
    """Every scalar (tag, step, value) of the TensorBoard event files under ``directory``,
    read from their TFRecord framing (length, crc, Event proto, crc)."""
    from tensorboardX.proto import event_pb2

    scalars = []
    for path in sorted(directory.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i : i + 8])
            event = event_pb2.Event.FromString(data[i + 12 : i + 12 + length])
            i += 12 + length + 4
            scalars += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    return scalars


TINY = ["reproduce", "matrix-dynamics", "--size", "tiny", "--no-progress"]


def test_a_cli_run_writes_the_log_and_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboardX")
    out, tb = tmp_path / "run", tmp_path / "tb"
    assert cli.main([*TINY, "--out", str(out), "--tensorboard", str(tb)]) == 0
    records = read_records(out)
    assert [r["chunk"] for r in records] == [0, 1, 2, 3]  # the tiny preset's 4 chunks, then saved
    saved = load_results(out)
    per_chunk = saved.coords["time"][9::10]  # 40 saves, 10 per chunk
    assert len(per_chunk) == 4
    np.testing.assert_allclose(
        [r["metrics"]["reconstruction_error"]["last"][0] for r in records],
        saved["reconstruction_error"][0, 9::10],
        rtol=1e-12,
    )
    scalars = _events(tb)
    loss = sorted((step, value) for tag, step, value in scalars if tag == "loss/median")
    assert [s for s, _ in loss] == [1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in loss], saved["loss"][0, 9::10], rtol=1e-6)  # float32 in the events
    assert {"steps/max", "reconstruction_error/min"} <= {tag for tag, _, _ in scalars}


@pytest.mark.parametrize("option, value, extra", [("--tensorboard", "tb", "tensorboard"), ("--wandb", "p", "wandb")])
def test_a_missing_extra_is_one_line_naming_it_before_compute(option, value, extra, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, {"tensorboard": "tensorboardX", "wandb": "wandb"}[extra], None)
    monkeypatch.setattr(driver, "run_named", lambda *a, **k: pytest.fail("computed before refusing"))
    assert cli.main([*TINY, "--out", str(tmp_path / "o"), option, str(tmp_path / value)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and f"jaxreg[{extra}]" in err, err


def _wandb_records(path):
    """The records of a wandb run file (``run-*.wandb``): a 7-byte header (":W&B", magic,
    version), then LevelDB-log blocks of 32 KiB whose records (crc32 4 bytes, length 2,
    type 1: full, first, middle, last) carry the pieces of each protobuf ``Record``."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, i, block = [], b"", 7, 32768
    while i + 7 <= len(data):
        if block - i % block < 7:  # a block's tail too short for a header is padding
            i += block - i % block
            continue
        length, kind = struct.unpack("<HB", data[i + 4 : i + 7])
        piece, i = data[i + 7 : i + 7 + length], i + 7 + length
        if kind == 0:
            break
        pending = piece if kind in (1, 2) else pending + piece
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def test_wandb_offline_logs_each_record(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from jaxreg_lab.tracking import WandbLog

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    log = WandbLog("jaxreg-test", "demo", {"depth": 3})
    for k in range(3):
        log(chunk_record("", k, 3, 0.0, {"loss": np.asarray([1.0 / (k + 1), 2.0])}))
    log.close()
    (run_file,) = tmp_path.rglob("run-*.wandb")
    records = _wandb_records(run_file)
    history = [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    assert [h["chunk"] for h in history] == [1, 2, 3]
    assert [h["loss/min"] for h in history] == pytest.approx([1.0, 0.5, 1 / 3])
    assert all(h["loss/max"] == 2.0 for h in history)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.project == "jaxreg-test" and run.display_name == "demo"
    assert {item.key: json.loads(item.value_json) for item in run.config.update}["depth"] == 3
