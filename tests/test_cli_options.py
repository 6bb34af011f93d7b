"""The command line's own surface: help, ``list``, ``--size`` choices, ``--set`` overrides,
and that ``jaxreg --help`` / ``jaxreg list`` import no JAX."""

import argparse
import subprocess
import sys
from types import SimpleNamespace

import pytest

from jaxreg_lab import cli, driver
from jaxreg_lab import registry as _registry
from jaxreg_lab.config import UsageError, build_config, parse_set
from jaxreg_lab.reproductions import EXPERIMENTS, custom_sweep, matrix_dynamics


@pytest.mark.parametrize("argv", [["--help"], ["reproduce", "--help"], ["list"]])
def test_help_and_list_import_no_jax(argv):
    """A fresh interpreter: the CLI answers without loading jax (what made them take seconds)."""
    code = (
        "import sys\nfrom jaxreg_lab import cli\n"
        f"try:\n    code = cli.main({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
        "assert code == 0, code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'numpy', 'equinox'))\n"
        "print('LOADED', loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED []" in done.stdout, done.stdout[-500:]


def test_list_prints_each_full_description_and_reference(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(_registry.REPRODUCTIONS)
    for line, r in zip(lines, _registry.REPRODUCTIONS, strict=True):
        assert line.split()[0] == r.name
        assert line.endswith(f"{r.description} ({r.reference})")


def test_registry_matches_the_experiment_modules():
    """The jax-free registry names each module by its NAME, in order, and every preset
    accepts exactly the registered sizes."""
    assert list(EXPERIMENTS) == list(_registry.NAMES)
    for name, module in EXPERIMENTS.items():
        assert module.NAME == name
        assert module.__name__.rsplit(".", 1)[1] == _registry.REPRODUCTIONS[_registry.NAMES.index(name)].module
    for module in (*EXPERIMENTS.values(), custom_sweep):
        for size in _registry.SIZES:
            module.Config.preset(size)
        with pytest.raises(ValueError, match="size"):
            module.Config.preset("huge")


def _subparsers(parser):
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_every_option_has_help_and_no_markup():
    parser = cli._parser()
    text = parser.format_help()
    for name, sub in _subparsers(parser).items():
        text += sub.format_help()
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    assert "``" not in text and ":func:" not in text and ":mod:" not in text
    size = next(a for a in _subparsers(parser)["reproduce"]._actions if a.dest == "size")
    assert tuple(size.choices) == _registry.SIZES


@pytest.mark.parametrize(
    "text, value",
    [
        ("depth=3", 3),
        ("init_scale=1e-4", 1e-4),
        ("balanced=true", True),
        ("depths=[1, 2, 3]", [1, 2, 3]),
        ('model="cp"', "cp"),
        ("optimizer=adam", "adam"),  # not a TOML value: the text as written
        ("shape = [4,5]", [4, 5]),
    ],
)
def test_set_values_are_typed_as_toml(text, value):
    field, parsed = parse_set(text)
    assert field == text.split("=")[0].strip()
    assert parsed == value and type(parsed) is type(value)


def _args(**kw):
    return SimpleNamespace(**{"size": "tiny", "config": None, "set": [], "seeds": None, **kw})


def test_set_overrides_config_file_and_preset(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("depth = 4\ninit_scale = 1e-3\n")
    config = build_config(matrix_dynamics, _args(config=toml, set=["depth=2", "shape=[20, 21]"]))
    tiny = matrix_dynamics.Config.preset("tiny")
    assert config.depth == 2 and config.init_scale == 1e-3 and config.shape == (20, 21)
    assert config.t1 == tiny.t1 and config.num_saves == tiny.num_saves


@pytest.mark.parametrize(
    "sets, fragments",
    [
        (["depthh=3"], ("--set", "depthh")),
        (["depth=0"], ("depth",)),
        (["depth=3.5"], ("depth",)),
        (["init_scale=true"], ("init_scale",)),
        (["depth"], ("--set", "FIELD=VALUE")),
    ],
)
def test_bad_set_is_one_line_naming_the_field_before_compute(sets, fragments, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(driver, "run_named", lambda *a, **k: pytest.fail("computed before refusing"))
    argv = ["reproduce", "matrix-dynamics", "--size", "tiny", "--out", str(tmp_path / "o")]
    assert cli.main([*argv, *(x for s in sets for x in ("--set", s))]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("jaxreg: error:"), err
    for fragment in fragments:
        assert fragment in err, err
    with pytest.raises(UsageError):
        build_config(matrix_dynamics, _args(set=sets))


def test_bad_size_and_name_are_one_line_errors(capsys):
    assert cli.main(["reproduce", "matrix-dynamics", "--size", "huge"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--size" in err and "'paper'" in err
    assert cli.main(["reproduce", "no-such-thing"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown reproduction" in err and "matrix-dynamics" in err


def test_a_writability_probe_is_not_a_foreign_file(tmp_path):
    """Processes of one --distributed run check the same --out at once: one's probe file
    must not make the other refuse the directory as holding a user's files."""
    from jaxreg_lab.store import PROBE_PREFIX
    from jaxreg_lab.store.results import foreign_entries

    (tmp_path / f"{PROBE_PREFIX}abc123").write_bytes(b"")
    (tmp_path / "results.json").write_text("{}")
    assert foreign_entries(tmp_path) == []
    (tmp_path / "notes.txt").write_text("mine")
    assert foreign_entries(tmp_path) == ["notes.txt"]
