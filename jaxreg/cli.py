"""The ``jaxreg`` command line: ``jaxreg reproduce NAME``, ``jaxreg plot DIR``.

float64 is enabled here, at program start (never at ``import jaxreg``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
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
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--float32", action="store_true", help="run in float32 (default float64)")
    d = parser.add_argument_group("across processes (JAX's multi-controller runtime; process 0 writes)")
    d.add_argument("--distributed", action="store_true",
                   help="join a multi-process run: jax.distributed.initialize(), which detects SLURM, Open MPI, "
                        "Kubernetes and TPU pods, or takes the three options below")
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
        raise UsageError(str(e).replace("coordinator", "--coordinator").replace("num_processes", "--num-processes")
                         .replace("process_id", "--process-id")) from None


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


def _reproduce(args) -> int:
    from .results import load_results, save_results

    module = _module(args.name)
    if getattr(module, "FLOAT32", False):  # e.g. CNN training: float32 whatever --float32 says
        import jax

        jax.config.update("jax_enable_x64", False)
    config = _config(module, args)
    out = args.out or Path("runs") / args.name
    if args.resume and not out.exists():
        raise UsageError(f"--resume: no run to resume in {out}")
    t0 = time.perf_counter()
    from .distributed import is_writer
    from .results import ResumeMismatch

    try:
        res = module.run(config, out_dir=out, resume=args.resume, progress=not args.no_progress)
    except ResumeMismatch as e:
        raise UsageError(str(e)) from None
    wall = time.perf_counter() - t0
    ok = all(s in ("completed", "converged") for s in (res.get("status") or []))
    if not is_writer():  # across processes only process 0 writes and reports
        return 0 if ok else 1
    save_results(out, module.NAME, res["arrays"], coords=res.get("coords"), config=config, wall_time=wall,
                 status=res.get("status"), extra={"size": args.size})
    from .experiments._runner import clear_checkpoint

    clear_checkpoint(out)
    results = load_results(out)
    paths = module.plot(results, out)
    print(module.summary(results))
    print(f"\nsaved {out}/ ({', '.join(p.name for p in paths)}) in {wall:.1f} s")
    return 0 if ok else 1


def _plot(args) -> int:
    from .results import load_results

    try:
        results = load_results(args.dir)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    try:
        module = _module(results.name)
    except UsageError:
        raise UsageError(f"{args.dir}: results of unknown reproduction {results.name!r}") from None
    paths = module.plot(results, args.dir)
    print(module.summary(results))
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        import jax

        if not getattr(args, "float32", False):
            jax.config.update("jax_enable_x64", True)
        if args.command in ("reproduce", "sweep"):
            _distributed(args)
            return _reproduce(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "samples":
            from .locality.data import plot_samples

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
        print(f"jaxreg: error: process {jax.process_index()} stopped, a collective across processes failed "
              f"(another process died?): {first}; continue with --resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("jaxreg: interrupted; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
