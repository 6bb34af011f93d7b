"""The ``jaxreg`` command line: ``jaxreg reproduce NAME``, ``jaxreg sweep``, ``jaxreg plot DIR``,
``jaxreg list``, ``jaxreg verify``, ``jaxreg samples``, ``jaxreg --version``.

float64 is enabled here, at program start (never at ``import jaxreg``), and so is JAX's
persistent compilation cache (:mod:`jaxreg_lab.compile_cache`). ``jaxreg --help``,
``jaxreg --version`` and ``jaxreg list`` (``--results`` too) import no JAX: they read
:mod:`jaxreg_lab.registry` and ``results.json`` files.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

from jaxreg_lab.config import UsageError, build_config, config_toml
from jaxreg_lab.registry import DATA_SETS, DEFAULT_SIZE, NAMES, REPRODUCTIONS, SIZES
from jaxreg_lab.store.out import prepare_out, writable_out

DESCRIPTION = """Implicit regularization in factorization models, in JAX: run the registered
reproductions of the papers, any model x task x optimizer sweep, and the theorem checks."""
# Every command's examples, shown under its --help (and the first few under jaxreg --help);
# tests/test_cli_help.py parses each one and builds its config, so none can go stale. A
# path is a file of the repository or runs/NAME, where `jaxreg reproduce NAME` (and
# `make demo`) write.
EXAMPLES = {
    "list": ("jaxreg list", "jaxreg list --results docs/results"),
    "reproduce": (
        "jaxreg reproduce matrix-dynamics --size tiny",
        "jaxreg reproduce matrix-dynamics --set depth=4 --set init_scale=1e-4",
        "jaxreg reproduce matrix-completion-depth --set 'depths=[2,3]' --seeds 2",
        "jaxreg reproduce matrix-dynamics --size paper --print-config",
        "jaxreg reproduce matrix-dynamics --out runs/md --tensorboard runs/tb",
    ),
    "sweep": (
        "jaxreg sweep --config examples/sweep_matrix_flow.toml",
        "jaxreg sweep --config examples/sweep_matrix_flow.toml --set 'init_scales=[1e-3,1e-2]' --seeds 2",
        "jaxreg sweep --config examples/sweep_matrix_flow.toml --set model_options.depth=4",
        "jaxreg sweep --config examples/sweep_cp_adam.toml --set optimizer_options.b1=0.9 --print-config",
    ),
    "plot": ("jaxreg plot runs/matrix-dynamics",),
    "check": ("jaxreg check docs/results/matrix-dynamics docs/results/tensor-dynamics",),
    "export": ("jaxreg export docs/results/matrix-dynamics --format netcdf --out md.nc",),
    "samples": ("jaxreg samples --out samples.png --seed 1",),
    "verify": ("jaxreg verify",),
    "data": ("jaxreg data list", "jaxreg data fetch mnist --data-dir data"),
}


def _examples(commands) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for c in commands for line in EXAMPLES[c])


EPILOG = (
    _examples(("list",))
    + "\n"
    + "\n".join(f"  {EXAMPLES[c][0]}" for c in ("reproduce", "sweep", "plot"))
    + "\n\n'jaxreg COMMAND --help' describes each command's options, with examples."
)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are a :class:`UsageError` (one line, exit code 2)."""

    def error(self, message):
        raise UsageError(message)


def _cache_option(parser) -> None:
    parser.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="compile every program afresh instead of reusing JAX's persistent compilation cache "
        "($JAXREG_CACHE_DIR or ~/.cache/jaxreg/jax; JAXREG_COMPILE_CACHE=0 also turns it off)",
    )


def _run_options(parser, *, config_required: bool, config_help: str) -> None:
    """The options shared by ``reproduce`` and ``sweep``."""
    parser.add_argument("--seeds", type=int, default=None, metavar="S", help="number of seeds (overrides the config)")
    parser.add_argument(
        "--config", type=Path, default=None, required=config_required, metavar="FILE.toml", help=config_help
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one config field, typed as in TOML (a number, true/false, a string, [1, 2]); "
        "a dotted TABLE.KEY sets one entry of a table field; repeatable; applied after --config "
        "(--print-config shows the fields)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (preset, --config, --set, --seeds) as TOML and exit, computing nothing",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="results directory (default runs/NAME)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in --out (a finished one: nothing to do)"
    )
    parser.add_argument(
        "--force", action="store_true", help="discard a partial run or finished results in --out and start afresh"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (e.g. for logs and batch jobs)")
    parser.add_argument("--float32", action="store_true", help="run in float32 (default float64)")
    _cache_option(parser)
    t = parser.add_argument_group("tracking (every run also writes metrics.jsonl, a line per chunk, in --out)")
    t.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help="log each chunk's metrics to TensorBoard "
        "event files in DIR (needs the tensorboard extra: pip install 'jaxreg[tensorboard]')",
    )
    t.add_argument(
        "--wandb",
        default=None,
        metavar="PROJECT",
        help="log each chunk's metrics to a Weights & Biases run of "
        "PROJECT (needs the wandb extra: pip install 'jaxreg[wandb]'; WANDB_MODE=offline works without a network)",
    )
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

    from jaxreg import distributed

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
    p = _Parser(
        prog="jaxreg", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"jaxreg {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name, **kw):
        return sub.add_parser(
            name, epilog=_examples((name,)), formatter_class=argparse.RawDescriptionHelpFormatter, **kw
        )

    r = command("reproduce", help="run a named reproduction, save results, plot them")
    r.add_argument("name", metavar="NAME", help="reproduction name (see `jaxreg list`)")
    r.add_argument(
        "--size",
        default=DEFAULT_SIZE,
        choices=SIZES,
        help="preset: tiny (seconds, for tests), small (the default, for a CPU), paper (the published settings)",
    )
    _run_options(r, config_required=False, config_help="TOML file overriding config fields")
    r.add_argument("--data-dir", type=Path, default=None, metavar="DIR", help=_DATA_DIR_HELP)
    sw = command("sweep", help="any model x task x optimizer over seeds and init scales (TOML config)")
    _run_options(
        sw, config_required=True, config_help="TOML file: fields of jaxreg_lab.reproductions.custom_sweep.Config"
    )
    sw.set_defaults(size=DEFAULT_SIZE, name="sweep")
    pl = command("plot", help="redraw figures from saved results (no recomputation)")
    pl.add_argument("dir", type=Path, metavar="DIR", help="a results directory written by reproduce or sweep")
    ch = command(
        "check",
        help="judge the saved results' claims again from their arrays (exit 1 when a claim expected to hold "
        "does not, or the recorded claims disagree with the arrays)",
    )
    ch.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="results directories")
    ch.add_argument(
        "--write", action="store_true", help="record the claims judged now in results.json (the arrays are unchanged)"
    )
    li = command("list", help="list the reproductions (what each shows, its paper) or, with --results, saved results")
    li.add_argument(
        "--results",
        type=Path,
        nargs="*",
        default=None,
        metavar="DIR",
        help="list saved results instead: each DIR a results directory or a folder of them "
        "(none given: runs/ and docs/results/); what each shows, its settings, runs and claims",
    )
    sa = command("samples", help="draw Is-Same-Class and Pathfinder samples (the small presets) to a PNG")
    sa.add_argument("--out", type=Path, default=Path("locality_samples.png"), help="PNG path")
    sa.add_argument("--seed", type=int, default=0, help="PRNG seed of the samples")
    _cache_option(sa)
    v = command("verify", help="check the theorems on random problems, a line per check (exit 1 on a failure)")
    _cache_option(v)
    e = command("export", help="write saved results as one xarray Dataset (netCDF file or Zarr store)")
    e.add_argument("dir", type=Path, help="a results directory (written by reproduce or sweep)")
    e.add_argument("--format", choices=("netcdf", "zarr"), required=True, help="netcdf (netCDF3) or zarr (needs zarr)")
    e.add_argument("--out", type=Path, default=None, help="file or store to write (default: DIR.nc or DIR.zarr)")
    e.add_argument("--force", action="store_true", help="replace an existing --out")
    da = command("data", help="the real data sets (CIFAR-10, MNIST, Fashion-MNIST, MovieLens 100k)")
    dsub = da.add_subparsers(
        dest="data_command", required=True, metavar="ACTION", parser_class=_Parser, help="fetch or list"
    )
    fe = dsub.add_parser("fetch", help="download a data set, resuming a partial download, and verify its MD5")
    fe.add_argument("dataset", choices=DATA_SETS, metavar="NAME", help=f"one of {', '.join(DATA_SETS)}")
    dl = dsub.add_parser("list", help="each data set's files in the data directory: verified, missing or not")
    for q in (fe, dl):
        q.add_argument("--data-dir", type=Path, default=None, metavar="DIR", help=_DATA_DIR_HELP)
    fe.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


_DATA_DIR_HELP = "where the real data sets are (default $JAXREG_DATA, else ~/.cache/jaxreg/data)"


def _data(args) -> int:
    """``jaxreg data fetch NAME`` and ``jaxreg data list`` (no JAX needed)."""
    from jaxreg_lab import datasets

    if args.data_command == "fetch":
        try:
            datasets.fetch(args.dataset, args.data_dir, progress=not args.no_progress)
        except KeyboardInterrupt:
            print("jaxreg: interrupted; run the same fetch again to resume", file=sys.stderr)
            return 130
        return 0
    print(f"data directory: {datasets.data_dir(args.data_dir)}")
    for name, rel, state in datasets.status(args.data_dir):
        print(f"{name:<15} {rel:<42} {state}")
    return 0


def _version() -> str:
    """The installed distribution's version (``jaxreg --version``), read without importing JAX."""
    from importlib import metadata

    try:
        return metadata.version("jaxreg")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def _list(args) -> int:
    """``jaxreg list``: the name, what it shows and the paper of each reproduction, a line
    each; with ``--results``, the saved results instead (:func:`_list_results`)."""
    if args.results is not None:
        return _list_results(args.results)
    width = max(len(r.name) for r in REPRODUCTIONS)
    for r in REPRODUCTIONS:
        print(f"{r.name:<{width}}  {r.description} ({r.reference})")
    return 0


def _list_results(roots: list[Path]) -> int:
    """``jaxreg list --results [DIR...]``: for every results directory found (a DIR that
    holds ``results.json``, or the results directories directly under it; no DIR: ``runs/``
    and ``docs/results/``), what it shows (its reproduction's line of the registry), its
    size and grid, how its runs ended and the verdict of its recorded claims. Reads
    ``results.json`` only (no arrays, no JAX)."""
    from jaxreg_lab.docs import headline
    from jaxreg_lab.store.files import read_json
    from jaxreg_lab.store.results import META, results_dirs

    described = {r.name: r.description for r in REPRODUCTIONS}
    described["sweep"] = "a model x task x optimizer sweep (jaxreg sweep)"
    if not roots:
        roots = [p for p in (Path("runs"), Path("docs/results")) if p.is_dir()]
    found = []
    for root in roots:
        if (root / META).is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(results_dirs(root).values())
        else:
            raise UsageError(f"--results: {root} is not a directory")
    if not found:
        print("no saved results found" + (f" in {', '.join(map(str, roots))}" if roots else ""))
        return 0
    for path in found:
        try:
            meta = read_json(path / META)
        except ValueError as e:  # a corrupt results.json: named, and the others still listed
            print(f"{path}: unreadable ({e})")
            continue
        name = str(meta.get("name", "?"))
        coords = meta.get("coords") or {}
        grid = " x ".join(f"{len(coords[d])} {d}" for d in _grid_dims(meta) if isinstance(coords.get(d), list))
        status = [str(x) for x in meta.get("status") or []]
        ended = ", ".join(f"{status.count(x)} {x}" for x in dict.fromkeys(status)) or "no status recorded"
        print(f"{path}: {name} ({meta.get('size', 'size not recorded')}; {grid or 'no grid'})")
        print(f"  shows: {described.get(name, 'an unregistered reproduction')}")
        print(f"  runs: {ended}; claims: {headline(meta.get('claims'))}")
    return 0


def _grid_dims(meta) -> list[str]:
    """The grid of the saved arrays: every dimension that comes before or is ``seed`` in
    some array's dimensions (e.g. depth x seed), in order of first appearance; the axes
    after it (time, components) are each run's own."""
    grid: dict[str, None] = {}
    for dims in (meta.get("dims") or {}).values():
        if "seed" in dims:
            grid.update(dict.fromkeys(dims[: list(dims).index("seed") + 1]))
    return list(grid)


def _export(args) -> int:
    from jaxreg_lab.store.dataset import export

    try:
        print(f"wrote {export(args.dir, args.format, args.out, force=args.force)}")
    except ImportError as e:
        raise UsageError(f"--format {args.format}: {e}") from None
    except FileExistsError as e:
        raise UsageError(f"--out: {e}; --force replaces it") from None
    return 0


def _module(name: str):
    """The module behind a reproduction name, or the custom sweep."""
    from jaxreg_lab.reproductions import EXPERIMENTS

    if name == "sweep":
        from jaxreg_lab.reproductions import custom_sweep

        return custom_sweep
    return EXPERIMENTS[name]  # main checked the name against the registry


def _reproduce(args) -> int:
    from jaxreg_lab.claims import claims_of, evaluate_all
    from jaxreg_lab.store.results import fingerprint, load_results, save_results

    module = _module(args.name)
    config = build_config(module, args)
    if args.print_config:
        print(config_toml(config), end="")
        return 0
    _require_data(config, vars(args).get("data_dir"))
    out = writable_out(args.out or Path("runs") / args.name)
    fp = fingerprint(config)
    if prepare_out(out, fp, args):
        print(f"{out}: already complete ({module.NAME}, {fp['precision']}); nothing recomputed")
        return 0
    t0 = time.perf_counter()
    from jaxreg.distributed import is_writer

    res = _run_tracked(module, config, out, fp, args)
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
        extra={"size": args.size, **(res.get("extra") or {})},
        fingerprint=fp,
        figures=module.plot,
        claims=functools.partial(evaluate_all, claims_of(module)),
    )
    results = load_results(out)
    _print_summary(module, results)
    figures = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".pdf"))
    print(f"\nsaved {out}/ ({', '.join(figures)}) in {wall:.1f} s")
    return 0 if ok else 1


def _run_tracked(module, config, out: Path, fp: dict, args) -> dict:
    """``run_named`` with the trackers of ``--tensorboard`` / ``--wandb`` (built first, on
    the writing process only, and closed however the run ends)."""
    from jaxreg.distributed import is_writer
    from jaxreg_lab.driver import run_named
    from jaxreg_lab.store.results import as_json
    from jaxreg_lab.tracking import trackers

    logs = trackers(args, module.NAME, as_json(config)) if is_writer() else []

    def log(record):
        for tracker in logs:
            tracker(record)

    try:
        return run_named(
            module,
            config,
            out_dir=out,
            resume=args.resume,
            progress=not args.no_progress,
            fingerprint=fp,
            log=log if logs else None,
        )
    finally:
        for tracker in logs:
            tracker.close()


def _require_data(config, data_dir) -> None:
    """A config whose ``dataset`` is a real data set stops here, before any compute, when a
    file of it is missing (one line: how to get it); ``--data-dir`` is passed on to the
    run as ``$JAXREG_DATA`` (see :func:`main`)."""
    from jaxreg_lab import datasets

    name = getattr(config, "dataset", None)
    if name in datasets.DATASETS:
        datasets.require(name, data_dir)


def _print_summary(module, results) -> None:
    """The reproduction's summary table, how many of its runs reached their stop
    criterion (and which of them at a high error, where the module declares its
    ``HIGH_ERROR``), then the claims table (as recorded in ``results.json``)."""
    from jaxreg_lab.claims import table
    from jaxreg_lab.reproductions._results import status_report

    print(module.summary(results) + "\n" + status_report(results, getattr(module, "HIGH_ERROR", None)))
    if "claims" in results.meta:
        print("\n" + table(results.meta["claims"]))


def _results_module(path):
    """The loaded results in ``path`` and the module of their reproduction."""
    from jaxreg_lab.store.results import load_results

    results = load_results(path)
    if results.name != "sweep" and results.name not in NAMES:
        raise UsageError(f"{path}: results of unknown reproduction {results.name!r}")
    return results, _module(results.name)


def _check(args) -> int:
    """``jaxreg check DIR...``: each directory's claims judged again from its arrays."""
    from jaxreg_lab.claims import at_default, claims_of, compare, evaluate_all, table
    from jaxreg_lab.store.results import write_claims

    failed = 0
    for path in args.dirs:
        results, module = _results_module(path)
        now = evaluate_all(claims_of(module), results)
        if args.write:
            write_claims(path, now)
            saved = now
        else:
            saved = results.meta.get("claims")
        default = at_default(module, results)
        problems = compare(saved, now, judge_expected=default)
        print(f"{path} ({results.name}):\n{table(now)}")
        if not default:
            print("  (settings other than the default preset: the verdicts are reported, not held to expectations)")
        for line in problems:
            print(f"  PROBLEM: {line}")
        print(f"  {'FAILED' if problems else 'ok'}: {len(now)} claims, {len(problems)} problems\n")
        failed += bool(problems)
    return 1 if failed else 0


def _plot(args) -> int:
    results, module = _results_module(args.dir)
    paths = module.plot(results, args.dir)
    _print_summary(module, results)
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


def _refused() -> tuple[type[Exception], ...]:
    from jaxreg_lab.driver import CheckpointExists
    from jaxreg_lab.store.results import CorruptFile, ResultsError, ResumeMismatch

    return CorruptFile, ResultsError, ResumeMismatch, CheckpointExists


def _samples(args, jax) -> int:
    from jaxreg_lab.locality.report import plot_samples

    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    print("wrote", plot_samples(args.out, jax.random.key(args.seed)))
    return 0


def _verify() -> int:
    from jaxreg_lab.verify import verify

    print("checking each model's rate identity and conservation laws (the first checks compile)", flush=True)
    return 0 if verify(echo=lambda line: print(line, flush=True)) else 1


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
        if vars(args).get("resume") and vars(args).get("force"):
            raise UsageError("--resume and --force exclude each other")
        if args.command == "reproduce" and args.name not in NAMES:
            raise UsageError(f"unknown reproduction {args.name!r}; choose from {sorted(NAMES)} (see jaxreg list)")
    except UsageError as e:
        print(f"jaxreg: error: {e}", file=sys.stderr)
        return 2
    if args.command == "list":  # no JAX needed
        try:
            return _list(args)
        except UsageError as e:
            print(f"jaxreg: error: {e}", file=sys.stderr)
            return 2
    if args.command == "data":
        try:
            return _data(args)
        except UsageError as e:
            print(f"jaxreg: error: {e}", file=sys.stderr)
            return 2
    import jax

    from jaxreg_lab.compile_cache import compile_cache

    x64 = jax.config.jax_enable_x64
    data_env = os.environ.get("JAXREG_DATA")
    try:
        jax.config.update("jax_enable_x64", not vars(args).get("float32"))
        with compile_cache(not vars(args).get("no_compile_cache")):
            if args.command in ("reproduce", "sweep"):
                _distributed(args)
                if vars(args).get("data_dir") is not None:
                    os.environ["JAXREG_DATA"] = str(args.data_dir)
                return _reproduce(args)
            if args.command == "plot":
                return _plot(args)
            if args.command == "check":
                return _check(args)
            if args.command == "export":
                return _export(args)
            return _samples(args, jax) if args.command == "samples" else _verify()
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
    finally:  # the precision and the data directory are this command's; an in-process caller gets its own back
        jax.config.update("jax_enable_x64", x64)
        if data_env is None:
            os.environ.pop("JAXREG_DATA", None)
        else:
            os.environ["JAXREG_DATA"] = data_env


if __name__ == "__main__":
    sys.exit(main())
