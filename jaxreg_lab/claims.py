"""Claims: the papers' statements, checked by the machine against saved results.

A :class:`Claim` is one published statement a reproduction is named for (or the control
that rules out its confound). It carries the published value or qualitative statement and
its source, the quantity we compute from the saved arrays (``measure``, one value per
seed) and the rule that decides it (``op threshold``). :func:`evaluate` judges it on every
seed and overall, e.g. "holds in 3/3 seeds"; a claim that does not hold is recorded as not
holding, with the values that show why, never dropped.

``jaxreg reproduce`` writes the records into ``results.json`` (key ``claims``) and prints
:func:`table` after the summary; ``jaxreg check DIR`` evaluates them again from the saved
arrays (:func:`compare`) and exits 1 when they disagree with the recorded ones or when a
claim expected to hold does not.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jaxreg_lab.store.results import as_json

__all__ = [
    "Claim",
    "evaluate",
    "evaluate_all",
    "table",
    "compare",
    "claims_of",
    "select",
    "coordinate_index",
    "at_default",
]

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
NEEDS = ("all", "majority")
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# two evaluations of one claim on the same arrays agree to round-off of the reductions
_RTOL = 1e-9


@dataclasses.dataclass(frozen=True, kw_only=True)
class Claim:
    """One published statement, decided on the saved arrays.

    Attributes:
        id: a short kebab-case name, unique within its reproduction (e.g. ``depth-3-beats-nuclear``).
        statement: the claim in one sentence, as we test it.
        source: where it is published, e.g. "Arora et al. 2019, Fig. 2".
        paper: the published value or qualitative statement.
        quantity: what ``measure`` computes, in words (it heads the "ours" column).
        measure: ``measure(results) -> values``: one value per seed (a 1-D array; a
            scalar for a claim without seeds). NaN marks a seed where the quantity is
            undefined; it counts as not holding.
        op, threshold: the rule ``value op threshold`` (``op`` one of ``<``, ``<=``, ``>``, ``>=``, ``==``).
        need: ``"all"``: the claim holds when every seed holds; ``"majority"``: when more
            than half do.
        expected: whether the claim is expected to hold at the shipped settings;
            ``jaxreg check`` fails on an expected claim that does not hold. A claim that we
            know fails here is kept with ``expected=False`` and its measured reason in
            ``note``.
        note: why it does not hold, or a caveat of the measurement (shown beside the verdict).
    """

    id: str
    statement: str
    source: str
    paper: str
    quantity: str
    measure: Callable[[Any], Any]
    op: str
    threshold: float
    need: str = "all"
    expected: bool = True
    note: str = ""

    def __post_init__(self):
        if not _ID.match(self.id):
            raise ValueError(f"claim id must be kebab-case (a-z, 0-9, -), got {self.id!r}")
        if self.op not in OPS:
            raise ValueError(f"claim {self.id}: op must be one of {sorted(OPS)}, got {self.op!r}")
        if self.need not in NEEDS:
            raise ValueError(f"claim {self.id}: need must be one of {NEEDS}, got {self.need!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"claim {self.id}: threshold must be finite, got {self.threshold}")

    @property
    def rule(self) -> str:
        """The rule as text, e.g. ``"> 1.2"``."""
        return f"{self.op} {self.threshold:g}"


def coordinate_index(coords: Sequence, value) -> int | None:
    """The index of ``value`` among a dimension's coordinates, floats compared to a
    relative 1e-12 (coordinates read back from JSON may differ in the last bits).

    Arguments:
        coords: the coordinates.
        value: the value looked for.

    Returns:
        The first matching index, or None.
    """
    for i, c in enumerate(coords):
        if c == value or (isinstance(c, float) and isinstance(value, float) and math.isclose(c, value, rel_tol=1e-12)):
            return i
    return None


def select(results, name: str, *, seed_dim: str = "seed", **where) -> np.ndarray:
    """A saved array with its seed dimension first and named coordinates picked.

    Arguments:
        results: loaded results.
        name: the array's name.
        seed_dim: the name of the seed dimension (moved first when present).
        **where: ``dim=value`` picks, by coordinate value, the index of ``value`` along
            ``dim`` (e.g. ``depth=3, init_scale=1e-4``); the dimension is dropped.

    Returns:
        The array, seed axis first, the picked dimensions removed, the others in order.
    """
    arr = np.asarray(results[name])
    dims = list(results.dims[name])
    for dim, value in where.items():
        if dim not in dims:
            raise KeyError(f"array {name} has no dimension {dim!r} (dims {dims})")
        index = coordinate_index(results.coords[dim], value)
        if index is None:
            raise KeyError(f"{dim}={value!r} is not among the coordinates {list(results.coords[dim])}")
        arr = np.take(arr, index, axis=dims.index(dim))
        dims.remove(dim)
    if seed_dim in dims:
        arr = np.moveaxis(arr, dims.index(seed_dim), 0)
    return arr


def _value(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def evaluate(claim: Claim, results) -> dict:
    """Judge ``claim`` on every seed of ``results``.

    Arguments:
        claim: the :class:`Claim`.
        results: loaded results (:class:`jaxreg_lab.store.results.Results`).

    Returns:
        The record saved in ``results.json``: the claim's texts and rule, ``values`` (one
        per seed; None where undefined), ``holds`` (per seed), ``seeds_holding``,
        ``seeds``, ``holds_overall`` and ``verdict`` (e.g. "holds in 3/3 seeds").
    """
    values = np.asarray(claim.measure(results), dtype=float)
    per_seed = values.ndim == 1
    values = np.atleast_1d(values)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"claim {claim.id}: measure must return one value per seed, got shape {values.shape}")
    compare_ = OPS[claim.op]
    holds = [bool(math.isfinite(v) and compare_(float(v), claim.threshold)) for v in values]
    k, n = sum(holds), len(holds)
    overall = k == n if claim.need == "all" else 2 * k > n
    unit = "seeds" if per_seed else "runs"
    if not per_seed:
        verdict = "holds" if overall else "does not hold"
    elif overall:
        verdict = f"holds in {k}/{n} {unit}"
    else:
        verdict = f"does not hold: {k}/{n} {unit}" + (" (needs a majority)" if claim.need == "majority" else "")
    return {
        "id": claim.id,
        "statement": claim.statement,
        "source": claim.source,
        "paper": claim.paper,
        "quantity": claim.quantity,
        "rule": claim.rule,
        "need": claim.need,
        "per_seed": per_seed,
        "values": [_value(v) for v in values],
        "holds": holds,
        "seeds_holding": k,
        "seeds": n,
        "holds_overall": overall,
        "expected": claim.expected,
        "verdict": verdict,
        "note": claim.note,
    }


def evaluate_all(claims: Sequence[Claim], results) -> list[dict]:
    """:func:`evaluate` of every claim, in order.

    Arguments:
        claims: the reproduction's claims (ids unique).
        results: loaded results.

    Returns:
        The list of records.
    """
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"claim ids must be unique, got {ids}")
    return [evaluate(c, results) for c in claims]


def _fmt(v) -> str:
    return "nan" if v is None else f"{v:.3g}"


def table(records: Sequence[Mapping]) -> str:
    """The claims table printed after a summary: claim | paper | ours, per seed | verdict.

    Arguments:
        records: the claim records (:func:`evaluate`).

    Returns:
        The table as text, one block per claim ("no claims declared" when empty).
    """
    if not records:
        return "claims: none declared"
    lines = ["claims (claim | paper | ours, per seed | verdict):"]
    for r in records:
        ours = " / ".join(_fmt(v) for v in r["values"])
        mark = "" if r["holds_overall"] == r["expected"] else "  << UNEXPECTED"
        lines.append(f"- {r['id']}: {r['statement']}")
        lines.append(f"    paper ({r['source']}): {r['paper']}")
        lines.append(f"    ours: {r['quantity']} = {ours}  (rule {r['rule']})")
        lines.append(f"    verdict: {r['verdict']}{mark}" + (f"; {r['note']}" if r.get("note") else ""))
    return "\n".join(lines)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=_RTOL, abs_tol=1e-300)


def compare(saved: Sequence[Mapping] | None, now: Sequence[Mapping], *, judge_expected: bool = True) -> list[str]:
    """What is wrong with saved claims against a fresh evaluation on the same arrays.

    Arguments:
        saved: the records in ``results.json`` (None: none were saved).
        now: the records :func:`evaluate_all` gives now.
        judge_expected: also report a claim expected to hold that does not (the
            expectations are declared for the default preset, see :func:`at_default`).

    Returns:
        One line per problem: a claim missing from the saved records or no longer
        declared, a text, value or verdict that differs, or (``judge_expected``) a claim
        expected to hold that does not. Empty when all is well.
    """
    problems = []
    saved_by_id = {r["id"]: r for r in (saved or [])}
    if saved is None and now:
        problems.append("results.json records no claims (run `jaxreg check DIR --write` to record them)")
    for r in now:
        if judge_expected and r["expected"] and not r["holds_overall"]:
            problems.append(f"{r['id']}: expected to hold, but {r['verdict']} (values {r['values']})")
        s = saved_by_id.pop(r["id"], None)
        if s is None:
            if saved is not None:
                problems.append(f"{r['id']}: declared but not recorded in results.json")
            continue
        for key in ("statement", "source", "paper", "quantity", "rule", "need", "expected", "verdict", "holds"):
            if s.get(key) != r[key]:
                problems.append(f"{r['id']}: recorded {key} {s.get(key)!r} differs from the arrays' {r[key]!r}")
        sv, nv = s.get("values") or [], r["values"]
        if len(sv) != len(nv) or not all(_same(a, b) for a, b in zip(sv, nv)):
            problems.append(f"{r['id']}: recorded values {sv} differ from the arrays' {nv}")
    for cid in saved_by_id:
        problems.append(f"{cid}: recorded in results.json but no longer declared")
    return problems


def with_field_defaults(config_cls, saved: Mapping) -> dict:
    """A saved config with every field it lacks set to the field's default in
    ``config_cls`` (as JSON): results made before a field was added ran as its default
    runs, since a field is added with a default that keeps the earlier behaviour (a
    preset may set another value: that value is not what the older run used).

    Arguments:
        config_cls: the reproduction's ``Config`` class (a dataclass).
        saved: the saved config (``results.config``).

    Returns:
        The saved fields, then the missing ones at their defaults.
    """
    out = dict(saved)
    if not dataclasses.is_dataclass(config_cls):
        return out
    for field in dataclasses.fields(config_cls):
        if field.name not in out and field.default is not dataclasses.MISSING:
            out[field.name] = as_json(field.default)
    return out


def at_default(module, results) -> bool:
    """Whether ``results`` ran at the default ("small") preset of ``module``'s ``Config``,
    the settings a claim's ``expected`` verdict is declared for.

    Arguments:
        module: the reproduction's module (its ``Config``).
        results: loaded results.

    Returns:
        True when the saved config, its missing fields at their defaults
        (:func:`with_field_defaults`), equals ``Config.preset("small")`` field by field; a
        saved field the ``Config`` no longer has is not at the default.
    """
    return with_field_defaults(module.Config, results.config) == as_json(module.Config.preset("small"))


def claims_of(module) -> tuple[Claim, ...]:
    """The claims a reproduction module declares: its ``REPRODUCTION.claims()`` where it
    follows the contract, else its module-level ``CLAIMS``.

    Arguments:
        module: a module of :mod:`jaxreg_lab.reproductions`.

    Returns:
        The claims (possibly empty).
    """
    reproduction = getattr(module, "REPRODUCTION", None)
    if reproduction is not None:
        return tuple(reproduction.claims())
    return tuple(getattr(module, "CLAIMS", ()))
