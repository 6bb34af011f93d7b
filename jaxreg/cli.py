"""The ``jaxreg`` command line: ``jaxreg reproduce NAME``, ``jaxreg plot DIR``.

float64 is enabled here, at program start (never at ``import jaxreg``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
import tomllib
from pathlib import Path


class UsageError(Exception):
    """A bad argument: printed as one line, exit code 2."""


def _run_options(parser, *, config_required: bool, config_help: str) -> None:
    """The options shared by ``reproduce`` and ``sweep``."""
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (overrides the config)")
    parser.add_argument("--config", type=Path, default=None, required=config_required, help=config_help)
    parser.add_argument("--out", type=Path, default=None, help="results directory (default runs/NAME)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in --out (a finished one: nothing to do)"
    )
    parser.add_argument(
        "--force", action="store_true", help="discard a partial run or finished results in --out and start afresh"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--float32", action="store_true", help="run in float32 (default float64)")
    d = parser.add_argument_group("across processes (JAX's multi-controller runtime; process 0 writes)")
    d.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run: jax.distributed.initialize(), which detects SLURM, Open MPI, "
        "Kubernetes and TPU pods, or takes the three options below",
    )
    d.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address (with --distributed)")
    d.add_argument("--num-processes", type=int, default=None, metavar="N", help="number of processes")
    d.add_argument("--process-id", type=int, default=None, metavar="I", help="this process's index, 0..N-1")


def _distributed(args) -> None:
    """``jax.distributed.initialize`` for ``--distributed`` (before any use of a device)."""
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed:
        if any(v is not None for v in explicit):
            raise UsageError("--coordinator, --num-processes and --process-id need --distributed")
        return
    import jax

    from . import distributed

    if jax.distributed.is_initialized():  # e.g. a second main() in the same process
        return
    try:
        distributed.initialize(*explicit)
    except ValueError as e:
        raise UsageError(
            str(e)
            .replace("coordinator", "--coordinator")
            .replace("num_processes", "--num-processes")
            .replace("process_id", "--process-id")
        ) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxreg", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reproduce", help="run a named reproduction, save results, plot them")
    r.add_argument("name", help="reproduction name (see `jaxreg list`)")
    r.add_argument("--size", default="small", help="tiny | small (default) | paper")
    _run_options(r, config_required=False, config_help="TOML file overriding config fields")
    sw = sub.add_parser("sweep", help="any model x task x optimizer over seeds and init scales (TOML config)")
    _run_options(sw, config_required=True, config_help="TOML file: fields of jaxreg.experiments.custom_sweep.Config")
    sw.set_defaults(size="small", name="sweep")
    pl = sub.add_parser("plot", help="redraw figures from saved results (no recomputation)")
    pl.add_argument("dir", type=Path)
    sub.add_parser("list", help="list the reproductions")
    sa = sub.add_parser("samples", help="draw Is-Same-Class and Pathfinder samples (the small presets) to a PNG")
    sa.add_argument("--out", type=Path, default=Path("locality_samples.png"), help="PNG path")
    sa.add_argument("--seed", type=int, default=0, help="PRNG seed of the samples")
    sub.add_parser("verify", help="check the theorems on random problems (exit 1 on a failure)")
    return p


def _config(module, args):
    try:
        config = module.Config.preset(args.size)
    except ValueError as e:
        raise UsageError(str(e)) from None
    overrides = {}
    if args.config is not None:
        overrides = _read_toml(args.config)
        fields = {f.name for f in dataclasses.fields(module.Config)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise UsageError(f"--config: unknown field(s) {unknown} for {module.NAME}; known: {sorted(fields)}")
    if args.seeds is not None:
        if args.seeds <= 0:
            raise UsageError(f"--seeds must be a positive integer, got {args.seeds}")
        overrides["seeds"] = args.seeds
    try:
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return dataclasses.replace(config, **fixed)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


def _read_toml(path: Path) -> dict:
    """The table of a TOML file, or a :class:`UsageError` naming ``--config`` and the fault."""
    if not path.exists():
        raise UsageError(f"--config: no such file {path}")
    if not path.is_file():
        raise UsageError(f"--config: {path} is not a file")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UsageError(f"--config: {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise UsageError(f"--config: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--config: malformed TOML in {path}: {e}") from None


def _module(name: str):
    """The module behind a reproduction name, or the custom sweep."""
    from .experiments import EXPERIMENTS

    if name == "sweep":
        from .experiments import custom_sweep

        return custom_sweep
    if name not in EXPERIMENTS:
        raise UsageError(f"unknown reproduction {name!r}; choose from {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def _writable_out(out: Path) -> Path:
    """``--out`` checked before any compute: not under /proc or /sys, not a file, and
    writable (a probe file is created and removed in it or in its nearest existing
    ancestor, whose sibling directories hold the temporary results)."""
    resolved = out.resolve()
    if resolved.parts[1:2] in (("proc",), ("sys",), ("dev",)):
        raise UsageError(f"--out: {out} is under /{resolved.parts[1]}, not a place for results")
    if resolved.exists() and not resolved.is_dir():
        raise UsageError(f"--out: {out} is a file, not a directory")
    probe_dir = resolved.parent
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    for d in {probe_dir, resolved} if resolved.exists() else {probe_dir}:
        if not d.is_dir():
            raise UsageError(f"--out: {d} is not a directory")
        try:
            fd, probe = tempfile.mkstemp(dir=d, prefix=".jaxreg-probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise UsageError(f"--out: cannot write in {d} ({e.strerror or e})") from None
    return resolved


def _prepare_out(out: Path, fingerprint: dict, args) -> bool:
    """Decide, before any compute, what a run into ``out`` may do; returns True when the
    results there are already complete for this very run (``--resume``)."""
    from . import results as R
    from .runner import check_resumable, checkpoints, clear_checkpoint

    R.recover_dir(out)
    if not out.exists():
        if args.resume:
            raise UsageError(f"--resume: no run to resume in {out}")
        return False
    foreign = R.foreign_entries(out)
    if foreign:
        raise UsageError(
            f"--out: {out} holds files that are not jaxreg results ({', '.join(foreign[:3])}); "
            "choose an empty or new directory"
        )
    if args.force:
        clear_checkpoint(out)
        return False
    has_results = (out / R.META).exists()
    units = checkpoints(out)
    if args.resume:
        if units:
            try:
                check_resumable(out, fingerprint)
            except R.ResumeMismatch as e:
                raise UsageError(f"--resume: {e}") from None
            return False
        if has_results:
            why = R.fingerprint_mismatch(R.read_json(out / R.META).get("fingerprint"), fingerprint)
            if why:
                raise UsageError(f"--resume: {out} holds finished results that cannot be continued: {why}")
            R.load_results(out)  # complete and readable, or one line naming the file
            return True
        raise UsageError(f"--resume: no run to resume in {out}")
    if units:
        raise UsageError(f"--out: {out} holds a partial run; --resume continues it, --force discards it")
    if has_results:
        raise UsageError(f"--out: {out} holds finished results; --force replaces them")
    return False


def _reproduce(args) -> int:
    from .results import fingerprint, load_results, save_results

    module = _module(args.name)
    config = _config(module, args)
    out = _writable_out(args.out or Path("runs") / args.name)
    fp = fingerprint(config)
    if _prepare_out(out, fp, args):
        print(f"{out}: already complete ({module.NAME}, {fp['precision']}); nothing recomputed")
        return 0
    t0 = time.perf_counter()
    from .distributed import is_writer

    res = module.run(config, out_dir=out, resume=args.resume, progress=not args.no_progress)
    wall = time.perf_counter() - t0
    ok = all(s in ("completed", "converged") for s in (res.get("status") or []))
    if not is_writer():  # across processes only process 0 writes and reports
        return 0 if ok else 1
    save_results(
        out,
        module.NAME,
        res["arrays"],
        coords=res.get("coords"),
        config=config,
        wall_time=wall,
        status=res.get("status"),
        extra={"size": args.size, **res.get("extra", {})},  # e.g. a claim's per-seed verdicts
        fingerprint=fp,
        figures=module.plot,
    )
    results = load_results(out)
    print(module.summary(results))
    figures = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".pdf"))
    print(f"\nsaved {out}/ ({', '.join(figures)}) in {wall:.1f} s")
    return 0 if ok else 1


def _plot(args) -> int:
    from .results import load_results

    results = load_results(args.dir)
    try:
        module = _module(results.name)
    except UsageError:
        raise UsageError(f"{args.dir}: results of unknown reproduction {results.name!r}") from None
    paths = module.plot(results, args.dir)
    print(module.summary(results))
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


def _refused() -> tuple[type[Exception], ...]:
    from .results import CorruptFile, ResultsError, ResumeMismatch
    from .runner import CheckpointExists

    return CorruptFile, ResultsError, ResumeMismatch, CheckpointExists


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if vars(args).get("resume") and vars(args).get("force"):
        print("jaxreg: error: --resume and --force exclude each other", file=sys.stderr)
        return 2
    import jax

    x64 = jax.config.jax_enable_x64
    try:
        jax.config.update("jax_enable_x64", not vars(args).get("float32"))
        if args.command in ("reproduce", "sweep"):
            _distributed(args)
            return _reproduce(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "samples":
            from .locality.report import plot_samples

            if args.seed < 0:
                raise UsageError(f"--seed must be >= 0, got {args.seed}")
            print("wrote", plot_samples(args.out, jax.random.key(args.seed)))
            return 0
        if args.command == "verify":
            from .verify import verify

            return 0 if verify() else 1
        from .experiments import EXPERIMENTS

        for name, module in EXPERIMENTS.items():
            print(f"{name:32s} {(module.__doc__ or '').strip().splitlines()[0]}")
        return 0
    except UsageError as e:
        print(f"jaxreg: error: {e}", file=sys.stderr)
        return 2
    except jax.errors.JaxRuntimeError as e:
        if not getattr(args, "distributed", False):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(
            f"jaxreg: error: process {jax.process_index()} stopped, a collective across processes failed "
            f"(another process died?): {first}; continue with --resume",
            file=sys.stderr,
        )
        return 1
    except _refused() as e:  # a corrupt file, a checkpoint of another run: one line naming it
        print(f"jaxreg: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxreg: interrupted; continue with --resume", file=sys.stderr)
        return 130
    finally:  # the precision is this command's; an in-process caller gets its own back
        jax.config.update("jax_enable_x64", x64)


if __name__ == "__main__":
    sys.exit(main())
