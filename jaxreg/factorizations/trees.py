"""Mode trees of hierarchical tensor factorizations (Razin, Maman, Cohen, ICML 2022).

A mode tree over the modes 0..N-1 is written as nested tuples whose leaves are the
modes, e.g. ``((0, 1), (2, 3))``: every tuple is an internal node, covering the union
of the modes below it; the outermost tuple is the root. A node's *height* is 0 for a
leaf and 1 + the largest height of its children otherwise; the tree's depth is the
root's height. :class:`TreePlan` is the static, validated form the models use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jaxreg import validation as V


def balanced_tree(order: int, pool_size: int = 2) -> tuple:
    """The default mode tree: pool ``pool_size`` adjacent nodes, level by level.

    Starting from the leaves 0..order-1, each level groups consecutive nodes by
    ``pool_size``; a last group of at least two nodes pools into a smaller node, and a
    last node left alone is carried up to the next level unchanged (no single-child
    node is created, so every node covers a distinct set of modes). E.g.
    ``balanced_tree(4) == ((0, 1), (2, 3))``, ``balanced_tree(3) == ((0, 1), 2)``,
    ``balanced_tree(6, 3) == ((0, 1, 2), (3, 4, 5))``. Razin, Maman, Cohen (ICML 2022) pool
    pairs of adjacent modes, as a CNN pools adjacent regions.

    Arguments:
        order: the number of modes N.
        pool_size: the number of nodes pooled into their parent, at least 2.

    Returns:
        The mode tree, nested tuples of the mode indices 0..N-1 (``(0,)`` for N = 1).
    """
    order = V.positive_int("order", order)
    pool_size = V.positive_int("pool_size", pool_size)
    if pool_size < 2:
        raise ValueError(f"pool_size must be at least 2, got {pool_size}")
    level: list = list(range(order))
    if order == 1:
        return (0,)
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), pool_size):
            group = level[i : i + pool_size]
            nxt.append(tuple(group) if len(group) > 1 else group[0])
        level = nxt
    root = level[0]
    return root if isinstance(root, tuple) else (root,)


def _normalize(tree, name: str):
    """Lists -> tuples; ints stay leaves; anything else is an error naming ``name``."""
    if isinstance(tree, bool):
        raise ValueError(f"{name} must be nested tuples of mode indices, got {tree!r}")
    if isinstance(tree, (int, np.integer)):
        return int(tree)
    if isinstance(tree, Sequence) and not isinstance(tree, str):
        if len(tree) == 0:
            raise ValueError(f"{name} has an empty node: every node needs at least one child")
        return tuple(_normalize(c, name) for c in tree)
    raise ValueError(f"{name} must be nested tuples of mode indices, got {tree!r}")


def _modes(tree) -> tuple[int, ...]:
    if isinstance(tree, int):
        return (tree,)
    return tuple(m for c in tree for m in _modes(c))


def _height(tree) -> int:
    return 0 if isinstance(tree, int) else 1 + max(_height(c) for c in tree)


@dataclass(frozen=True)
class TreePlan:
    """A validated mode tree, flattened bottom-up.

    ``nodes[i]``: the sorted modes covered by internal node i; nodes are ordered by
    height, then left to right, so the root is last. ``children[i]``: the children of
    node i in tree order, as ``("leaf", mode)`` or ``("node", j)``. ``heights[i]``:
    node i's height. ``parent_height[i]`` (non-root nodes) and ``leaf_parent_height[n]``
    (mode n): the height of the parent, which fixes the number of columns of the
    node's matrix: ``widths[parent_height - 1]``.
    """

    tree: tuple
    order: int
    nodes: tuple[tuple[int, ...], ...]
    children: tuple[tuple[tuple[str, int], ...], ...]
    heights: tuple[int, ...]
    parent_height: tuple[int, ...]
    leaf_parent_height: tuple[int, ...]

    @property
    def depth(self) -> int:
        return self.heights[-1]

    @property
    def root(self) -> int:
        return len(self.nodes) - 1


def plan_tree(tree, order: int, name: str = "tree") -> TreePlan:
    """Validate ``tree`` as a mode tree over range(order) and flatten it.

    Raises ``ValueError`` naming ``name`` if the leaves are not a partition of
    range(order) (missing, repeated or out-of-range modes), a node is empty, or a node
    has a single child that is itself an internal node (the two would cover the same
    modes and could not be told apart).
    """
    tree = _normalize(tree, name)
    if isinstance(tree, int):
        tree = (tree,)
    modes = _modes(tree)
    if len(set(modes)) != len(modes):
        repeated = sorted({m for m in modes if modes.count(m) > 1})
        raise ValueError(f"{name} repeats modes {repeated}: its leaves must be a partition of range({order})")
    if sorted(modes) != list(range(order)):
        raise ValueError(
            f"{name} covers modes {sorted(modes)}: its leaves must be exactly range({order}) "
            f"(one leaf per mode of the tensor), got {tree!r}"
        )

    found: list[tuple] = []  # (height, position, subtree)

    def visit(t):
        if isinstance(t, int):
            return
        if len(t) == 1 and not isinstance(t[0], int):
            raise ValueError(f"{name} has a node with a single child node {t[0]!r}: both would cover the same modes")
        for c in t:
            visit(c)
        found.append((_height(t), len(found), t))

    visit(tree)
    found.sort(key=lambda x: (x[0], x[1]))
    subtrees = [f[2] for f in found]
    index = {id(t): i for i, t in enumerate(subtrees)}
    nodes = tuple(tuple(sorted(_modes(t))) for t in subtrees)
    children = tuple(tuple(("leaf", c) if isinstance(c, int) else ("node", index[id(c)]) for c in t) for t in subtrees)
    heights = tuple(f[0] for f in found)
    parent_height = [0] * len(subtrees)
    leaf_parent_height = [0] * order
    for i, ch in enumerate(children):
        for kind, j in ch:
            if kind == "leaf":
                leaf_parent_height[j] = heights[i]
            else:
                parent_height[j] = heights[i]
    return TreePlan(tree, order, nodes, children, heights, tuple(parent_height), tuple(leaf_parent_height))


def check_widths(widths, plan: TreePlan, name: str = "widths") -> tuple[int, ...]:
    """``widths`` as a tuple of positive ints with one entry per tree level below the root."""
    if isinstance(widths, (int, np.integer)) or not isinstance(widths, Sequence):
        raise ValueError(f"{name} must be a tuple of positive integers (one per tree level), got {widths!r}")
    out = tuple(V.positive_int(f"{name}[{i}]", w) for i, w in enumerate(widths))
    if len(out) != plan.depth:
        raise ValueError(
            f"{name} must have {plan.depth} entries, one per level of the mode tree {plan.tree!r} "
            f"below the root, got {len(out)}: {widths!r}"
        )
    return out


def ht_degrees_of_freedom(shape: Sequence[int], widths: Sequence[int], plan: TreePlan) -> int:
    """Dimension of the set of tensors of the largest HT rank an HTF of ``widths`` reaches.

    Each node t gets the largest rank k_t its matricization can have in the model: at
    most prod(d of t's modes), prod(d of the other modes), the node's number of local
    components and its matrix's number of columns (leaves: d_n and their matrix's
    columns), then reduced until k_t <= prod(k_c) over t's children and k_c <= k_t
    prod(k_c') over c's siblings c'. The manifold of tensors of HT rank (k_t) has
    dimension (Uschmajew and Vandereycken 2013)

        sum_{leaves n} d_n k_n + sum_{internal t} k_t prod_{c child of t} k_c - sum_{t != root} k_t^2,

    with k_root = 1; at most prod(shape), which it equals when every rank is full.

    Arguments:
        shape: the tensor's dimensions d_n.
        widths: the model's widths, one per tree level below the root.
        plan: the mode tree.

    Returns:
        The dimension, an int.
    """
    total = math.prod(shape)

    def size(modes):
        return math.prod(shape[m] for m in modes)

    leaf = [
        min(d, size([m for m in range(len(shape)) if m != n]), widths[plan.leaf_parent_height[n] - 1])
        for n, d in enumerate(shape)
    ]
    node = [
        1
        if i == plan.root
        else min(size(nu), total // size(nu), widths[plan.heights[i] - 1], widths[plan.parent_height[i] - 1])
        for i, nu in enumerate(plan.nodes)
    ]

    def rank(kind, j):
        return leaf[j] if kind == "leaf" else node[j]

    def set_rank(kind, j, k):
        (leaf if kind == "leaf" else node)[j] = k

    changed = True
    while changed:
        changed = False
        for i, children in enumerate(plan.children):
            ks = [rank(*c) for c in children]
            if i != plan.root and node[i] > math.prod(ks):
                node[i], changed = math.prod(ks), True
            for a, c in enumerate(children):
                cap = node[i] * math.prod(k for b, k in enumerate(ks) if b != a)
                if rank(*c) > cap:
                    set_rank(*c, cap)
                    ks[a], changed = cap, True
    dim = sum(d * k for d, k in zip(shape, leaf))
    dim += sum(node[i] * math.prod(rank(*c) for c in ch) for i, ch in enumerate(plan.children))
    dim -= sum(k * k for k in leaf) + sum(k * k for i, k in enumerate(node) if i != plan.root)
    return min(dim, total)
