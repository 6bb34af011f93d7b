"""The command line's comforts: every example of every help text parses and its config
passes validation, ``--version``, ``--print-config``, dotted ``--set`` keys and
``jaxreg list --results``."""

import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from jaxreg_lab import cli, driver
from jaxreg_lab.config import UsageError, build_config, config_toml
from jaxreg_lab.reproductions import custom_sweep, matrix_dynamics

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [(command, line) for command, lines in cli.EXAMPLES.items() for line in lines]


def _subparsers(parser):
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sub.choices


def test_every_command_has_examples_and_shows_them_in_its_help():
    parser = cli._parser()
    commands = _subparsers(parser)
    assert set(cli.EXAMPLES) == set(commands)
    for name, sub in commands.items():
        text = sub.format_help()
        for line in cli.EXAMPLES[name]:
            assert f"\n  {line}" in text, (name, line)
    main_help = parser.format_help()
    shown = [line.strip() for line in main_help.split("examples:\n", 1)[1].splitlines() if line.startswith("  jaxreg")]
    assert shown and all(any(line == ex for _, ex in EXAMPLES) for line in shown), shown


@pytest.mark.parametrize("command, line", EXAMPLES, ids=[line for _, line in EXAMPLES])
def test_every_help_example_parses_and_its_config_validates(command, line, monkeypatch):
    """Each example as a shell would split it: it parses, names an existing file or
    results directory, and (reproduce, sweep) builds its config through the Config's
    own checks."""
    monkeypatch.chdir(ROOT)
    argv = shlex.split(line)
    assert argv[0] == "jaxreg" and argv[1] == command
    args = cli._parser().parse_args(argv[1:])
    if command in ("reproduce", "sweep"):
        build_config(cli._module(args.name), args)
    for path in [getattr(args, "config", None), getattr(args, "dir", None), *(getattr(args, "dirs", None) or [])]:
        if path is not None and Path(path).parts[0] == "runs":  # the default --out of a reproduce example
            assert Path(path).name in {ex.split()[2] for ex in cli.EXAMPLES["reproduce"]}, path
        elif path is not None:
            assert Path(path).exists(), path
    for path in getattr(args, "results", None) or []:
        assert Path(path).is_dir(), path


def test_no_help_suggests_a_field_its_command_rejects():
    """What the issue met: sweep's --help suggested --set depths=[1,2,3], a field only some
    reproductions have; the option's help names no field at all."""
    for name in ("reproduce", "sweep"):
        (option,) = [a for a in _subparsers(cli._parser())[name]._actions if a.dest == "set"]
        assert "depths" not in option.help and "=" not in option.help.split("(")[0]


def test_version_prints_the_installed_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxreg {metadata.version('jaxreg')}"


def test_version_imports_no_jax():
    code = (
        "import sys\nfrom jaxreg_lab import cli\n"
        "try:\n    cli.main(['--version'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "LOADED []" in done.stdout, done.stderr[-2000:]


def test_print_config_prints_toml_that_reads_back_to_the_same_config(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(driver, "run_named", lambda *a, **k: pytest.fail("computed"))
    out = tmp_path / "never"
    argv = ["reproduce", "matrix-dynamics", "--size", "paper", "--set", "depth=4", "--seeds", "2"]
    assert cli.main([*argv, "--out", str(out), "--print-config"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    table = tomllib.loads(text)
    assert table["depth"] == 4 and table["seeds"] == 2 and table["shape"] == [100, 100]
    saved = tmp_path / "c.toml"
    saved.write_text(text)
    args = SimpleNamespace(size="small", config=saved, set=[], seeds=None)
    expected = matrix_dynamics.Config.preset("paper", depth=4, seeds=2)
    assert build_config(matrix_dynamics, args) == expected


def test_print_config_of_a_sweep_writes_tables_and_unset_fields(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(driver, "run_named", lambda *a, **k: pytest.fail("computed"))
    argv = ["sweep", "--config", "examples/sweep_cp_adam.toml", "--set", "optimizer_options.b2=0.99", "--print-config"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "# depth is unset (None)" in text
    table = tomllib.loads(text)
    assert table["optimizer_options"] == {"b1": 0.8, "b2": 0.99} and table["model"] == "cp"
    assert set(table) == {f for f in custom_sweep.Config.__dataclass_fields__} - {"depth"}


def test_config_toml_writes_every_kind_of_value():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class C:
        a: float = 3.0
        b: float = 1e-7
        c: tuple = (1, 2)
        d: dict = dataclasses.field(default_factory=lambda: {"x y": 'q"uote', "n": {"k": True}})
        e: str = "s"
        f: float = float("inf")

    table = tomllib.loads(config_toml(C()))
    assert table == {"a": 3.0, "b": 1e-7, "c": [1, 2], "d": {"x y": 'q"uote', "n": {"k": True}}, "e": "s", "f": 1e999}
    assert isinstance(table["a"], float)


def _args(**kw):
    return SimpleNamespace(**{"size": "small", "config": None, "set": [], "seeds": None, **kw})


def test_dotted_set_changes_one_entry_of_a_table():
    toml = ROOT / "examples" / "sweep_cp_adam.toml"  # optimizer_options = {b1 = 0.8}
    config = build_config(custom_sweep, _args(config=toml, set=["optimizer_options.b2=0.99"]))
    assert config.optimizer_options == {"b1": 0.8, "b2": 0.99}
    config = build_config(custom_sweep, _args(set=["model_options.depth=4"]))
    assert config.model_options == {"depth": 4}
    # the same as the inline table the issue found working
    assert config == build_config(custom_sweep, _args(set=["model_options={depth=4}"]))
    # a later dotted key adds to an earlier one; the last word on one entry wins
    config = build_config(
        custom_sweep, _args(config=toml, set=["optimizer_options.b1=0.5", "optimizer_options.b1=0.7"])
    )
    assert config.optimizer_options == {"b1": 0.7}


@pytest.mark.parametrize(
    "module, text, fragment",
    [
        (matrix_dynamics, "depth.x=3", "depth is not a table"),
        (matrix_dynamics, "nope.x=3", "unknown field"),
        (custom_sweep, "model_options.depth.x=1", "model_options.depth is not a table"),
    ],
)
def test_dotted_set_on_a_non_table_is_one_line(module, text, fragment):
    sets = ["model_options.depth=4", text] if text.startswith("model_options") else [text]
    with pytest.raises(UsageError, match=fragment) as e:
        build_config(module, _args(set=sets))
    assert "\n" not in str(e.value) and "--set" in str(e.value)


def test_list_results_says_what_each_saved_result_shows(capsys):
    shipped = ROOT / "docs" / "results"
    assert cli.main(["list", "--results", str(shipped / "matrix-dynamics"), str(shipped / "ht-rank")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{shipped / 'matrix-dynamics'}: matrix-dynamics (small; 3 seed)"
    assert out[1].startswith("  shows: singular-value dynamics of deep matrix completion under exact gradient flow")
    assert out[2] == "  runs: 3 completed; claims: 4 claims: 3 hold, 1 does not (as expected)"
    assert out[3] == f"{shipped / 'ht-rank'}: ht-rank (small; 2 init_scale x 3 seed)"
    assert len(out) == 6


def test_list_results_of_a_folder_lists_each_results_directory_and_imports_no_jax():
    code = (
        "import sys\nfrom jaxreg_lab import cli\n"
        f"assert cli.main(['list', '--results', {str(ROOT / 'docs' / 'results')!r}]) == 0\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "LOADED []" in done.stdout, done.stderr[-2000:]
    shown = [line.split(":")[0] for line in done.stdout.splitlines() if not line.startswith((" ", "LOADED"))]
    expected = sorted(p.name for p in (ROOT / "docs" / "results").iterdir() if (p / "results.json").is_file())
    assert [Path(s).name for s in shown] == expected


def test_list_results_of_a_missing_directory_is_one_line(tmp_path, capsys):
    assert cli.main(["list", "--results", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--results" in err


def test_list_results_names_a_corrupt_results_file_and_lists_the_rest(tmp_path, capsys):
    import shutil

    good = tmp_path / "good"
    shutil.copytree(ROOT / "docs" / "results" / "matrix-dynamics", good)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    assert cli.main(["list", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'bad'}: unreadable (")
    assert out[1] == f"{good}: matrix-dynamics (small; 3 seed)"
