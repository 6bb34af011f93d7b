"""Hierarchical tensor factorization (HTF) over a mode tree (Razin, Maman, Cohen, ICML 2022).

Every internal node nu of the mode tree holds a *local CP factorization*:

    T_nu = sum_z (prod_{c in children(nu)} T_c[..., z]) M_nu[z, :]

(the product is the outer product of the children's tensors, which cover disjoint modes), where a leaf's
"tensor" T_n is its matrix M_n (d_n x r) and the root's M is the output vector w_out, so T_root = W. The r'th
local component of nu is {M_c[:, r] for every child c, M_nu[r, :]}: K = |children(nu)| + 1 vectors.
"""

from __future__ import annotations

import functools
import math
import operator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from jaxreg import validation as V
from jaxreg._random import normal
from jaxreg.factorizations._base import AbstractFactorization, RateTerms, VerifyCase, concat_groups
from jaxreg.factorizations._common import checked_scale, column_norms, dense_route, take_entries
from jaxreg.factorizations.trees import TreePlan, balanced_tree, check_widths, plan_tree


def _plan(shape, tree) -> TreePlan:
    return plan_tree(balanced_tree(len(shape)) if tree is None else tree, len(shape))


class HierarchicalTensorFactorization(AbstractFactorization):
    r"""Hierarchical tensor factorization W over a mode tree (a deep non-linear CNN).

    ``tree``: nested tuples of modes (default :func:`~jaxreg.factorizations.trees.balanced_tree`:
    pool adjacent modes in pairs, an odd node carried up a level). A node's level is its
    height (leaves 0, root ``len(widths)``); a node of height h has ``widths[h-1]`` local components, so its
    children's matrices have ``widths[h-1]`` columns. For a balanced tree this means: leaves hold d_n x widths[0]
    matrices, nodes of height l hold widths[l-1] x widths[l] matrices and the root an output vector of length
    widths[-1].

    Parameters: ``leaf_matrices[n]`` (mode n), ``node_matrices[i]`` (``nodes[i]``, all
    internal nodes but the root) and ``output`` (the root's vector). Every entry is
    N(0, init_scale^2) (Razin et al. 2022's code). ``balanced=True`` then rescales
    columns top-down -- at the root every local component's K norms are set to their
    geometric mean; below it the children's columns M_c[:, r] are set to the norm of
    the row M_nu[r, :] (fixed by the parent's step, rows are never rescaled) -- so every
    local component has K equal norms, exactly.

    Local component norm sigma_{nu,r} = prod_c ||M_c[:, r]|| * ||M_nu[r, :]|| (|w_out[r]|
    at the root). For a balanced local component, under gradient flow,
    d sigma_{nu,r}/dt = K gamma_{nu,r} sigma_{nu,r}^{2-2/K},
    gamma_{nu,r} = <-grad L(W), Delta_{nu,r}> / sigma_{nu,r}, with Delta_{nu,r} the end
    tensor with every other local component of nu zeroed (Razin, Maman, Cohen,
    ICML 2022, Thm 1); unbalanced components obey Razin et al. 2021's bounds with K.

    Shapes of the interface: ``component_norms()`` are the root's local component norms
    (order r); ``rate_terms``, ``rate_sigma()``, ``balancedness()`` and
    ``component_imbalance()`` run over every node's local components, nodes in the order
    of :attr:`nodes` (``RateTerms.groups`` labels each run with its node); the
    ``local_*`` methods give the same per node as dicts.
    """

    leaf_matrices: tuple[Float[Array, "d r"], ...]
    node_matrices: tuple[Float[Array, "r_in r_out"], ...]
    output: Float[Array, " r"]
    shape: tuple[int, ...] = eqx.field(static=True)
    widths: tuple[int, ...] = eqx.field(static=True)
    plan: TreePlan = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        shape: tuple[int, ...] = (16,) * 4,
        widths: tuple[int, ...] = (64, 64),
        *,
        tree=None,
        init_scale: float | Float[Array, ""] = 1e-2,
        balanced: bool = False,
        dtype=None,
    ):
        V.prng_key("key", key)
        shape = V.shape_tuple("shape", shape)
        plan = _plan(shape, tree)
        widths = check_widths(widths, plan)
        std, dtype = checked_scale(init_scale, dtype)
        scale = jnp.asarray(std, dtype)
        leaves, nodes, out = _init_params(key, scale, shape, widths, plan, dtype, bool(balanced))
        self.leaf_matrices = tuple(leaves)
        self.node_matrices = tuple(nodes)
        self.output = out
        self.shape = shape
        self.widths = widths
        self.plan = plan

    # ------------------------------------------------------------------ structure
    @property
    def tree(self) -> tuple:
        return self.plan.tree

    @property
    def nodes(self) -> tuple[tuple[int, ...], ...]:
        """Internal nodes as sorted tuples of the modes they cover, bottom-up, root last."""
        return self.plan.nodes

    def local_orders(self) -> dict:
        """K = |children(nu)| + 1 for every internal node nu."""
        return {node: len(ch) + 1 for node, ch in zip(self.nodes, self.plan.children)}

    def _child(self, kind: str, j: int) -> Array:
        return self.leaf_matrices[j] if kind == "leaf" else self.node_matrices[j]

    # ------------------------------------------------------------------ values
    def materialize(self) -> Float[Array, "*shape"]:
        """The dense tensor W, contracted bottom-up along the tree.

        Every node's tensor is kept as a matrix X_nu (its modes' entries in row-major
        order, its output width): for children c_1 .. c_K, X_nu = (X_{c_1} kr ... kr
        X_{c_K}) M_nu with kr the row-wise Khatri-Rao product (one broadcast multiply), and
        at the root W = ((X_{c_1} kr ... kr X_{c_{K-1}}) diag(w_out)) X_{c_K}^T, so that
        every contraction is one plain matmul (on CPU about 1.2x faster per step than one
        einsum per node, whose outer products lower to batched dot_generals with
        transposes between them)."""
        mats: list = []  # per node: (matrix (prod of its modes' dims, width), modes)
        for i, ch in enumerate(self.plan.children):
            parts = [(self.leaf_matrices[j], (j,)) if kind == "leaf" else mats[j] for kind, j in ch]
            if i == self.plan.root:
                head, modes = _khatri_rao_rows(parts[:-1])
                w = (head * self.output) @ parts[-1][0].T
                modes = modes + parts[-1][1]
                w = w.reshape([self.shape[m] for m in modes])
                return jnp.transpose(w, [modes.index(m) for m in range(self.order)])
            rows, modes = _khatri_rao_rows(parts)
            mats.append((rows @ self.node_matrices[i], modes))
        raise AssertionError("unreachable")

    def _entries(self, idx: Int[Array, "k N"]) -> Float[Array, " k"]:
        """W at each multi-index row of ``idx``, contracted along the tree over the
        observed indices only: X_nu = (prod_c X_c) M_nu with X_n = M_n[i_n, :], cost
        O(k * sum_nu |children(nu)| r_in r_out); W is never formed.

        Exception (same values, different route): when W and the internal nodes' tensors
        together are no larger than one k x r gathered activation (e.g. order 4, dims
        16, widths 64, k = 2048: 65536 + 32768 <= 131072 numbers), W is contracted
        densely with matmuls and read with one scalar gather, which avoids the row
        scatter-adds of the backward pass (about 3x faster per step on CPU); see
        :func:`~jaxreg.factorizations._common.dense_route`."""
        if self._dense_route(idx.shape[0]):
            return take_entries(self.materialize(), idx, self.shape)
        return self._entries_gather(idx)

    def _dense_route(self, k: int) -> bool:
        # node i's tensor (its modes' entries x its output width) costs that times its input width
        sizes = [math.prod(self.shape[m] for m in node) for node in self.nodes]
        w_in = [self.widths[h - 1] for h in self.plan.heights]
        w_out = [self.widths[self.plan.parent_height[i] - 1] for i in range(len(self.nodes) - 1)] + [1]
        extra = sum(s * o for s, o in zip(sizes[:-1], w_out[:-1]))
        dense_flops = sum(s * i * o for s, i, o in zip(sizes, w_in, w_out))
        gather_flops = k * sum(i * o for i, o in zip(w_in, w_out))
        return dense_route(
            self.shape, k, max(self.widths), extra=extra, dense_flops=dense_flops, gather_flops=gather_flops
        )

    def _entries_gather(self, idx) -> Array:
        acts: list = []
        for i, ch in enumerate(self.plan.children):
            # the Hadamard product of the children's activations (every node has children)
            p = functools.reduce(
                operator.mul, [self.leaf_matrices[j][idx[:, j]] if kind == "leaf" else acts[j] for kind, j in ch]
            )
            if i == self.plan.root:
                return p @ self.output
            acts.append(p @ self.node_matrices[i])
        raise AssertionError("unreachable")

    def gram_norm(self) -> Float[Array, ""]:
        """||W||_F from Gram matrices up the tree, G_nu = M_nu^T (Hadamard_c G_c) M_nu,
        without materializing: O(sum_nu r^3 + sum_n d_n r^2)."""
        grams: list = []
        for i, ch in enumerate(self.plan.children):
            # the Hadamard product of the children's Gram matrices (every node has children)
            g = functools.reduce(
                operator.mul,
                [self.leaf_matrices[j].T @ self.leaf_matrices[j] if kind == "leaf" else grams[j] for kind, j in ch],
            )
            if i == self.plan.root:
                return jnp.sqrt(self.output @ g @ self.output)
            grams.append(self.node_matrices[i].T @ g @ self.node_matrices[i])
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ theory
    def _local_sq_norms(self, i: int) -> Array:
        """(K, r) squared norms of the K vectors of every local component of node i."""
        cols = [jnp.sum(self._child(kind, j) ** 2, axis=0) for kind, j in self.plan.children[i]]
        own = self.output**2 if i == self.plan.root else jnp.sum(self.node_matrices[i] ** 2, axis=1)
        return jnp.stack(cols + [own])

    def local_component_norms(self) -> dict:
        """{node: sigma_{nu,r}}: prod_c ||M_c[:, r]|| * ||M_nu[r, :]|| (|w_out[r]| at the root)."""
        out = {}
        for i, node in enumerate(self.nodes):
            cols = [column_norms(self._child(kind, j)) for kind, j in self.plan.children[i]]
            own = jnp.abs(self.output) if i == self.plan.root else jnp.sqrt(jnp.sum(self.node_matrices[i] ** 2, axis=1))
            out[node] = math.prod(cols) * own
        return out

    def component_norms(self) -> Float[Array, " r"]:
        """The root's local component norms sigma_{root,r} = prod_c ||M_c[:, r]|| |w_out[r]|."""
        return self.local_component_norms()[self.nodes[-1]]

    def rate_sigma(self) -> Float[Array, " k"]:
        """Every node's local component norms, nodes in the order of :attr:`nodes`."""
        return concat_groups(self.local_component_norms())[0]

    @property
    def rate_exponent(self) -> dict:
        """{node: 2 - 2/K} in d sigma_{nu,r}/dt = K gamma_{nu,r} sigma_{nu,r}^{2-2/K}."""
        return {node: 2.0 - 2.0 / k for node, k in self.local_orders().items()}

    def rate_terms(self, grad_w: Float[Array, "*shape"]) -> RateTerms:
        """sigma_{nu,r}, gamma_{nu,r} = <-grad L(W), Delta_{nu,r}> / sigma_{nu,r}, coefficient
        K and exponent 2 - 2/K of every local component of every node (Razin, Maman, Cohen,
        ICML 2022, Thm 1), grouped by node.

        W is linear in the row M_nu[r, :], and Delta_{nu,r} is its part through local
        component r, so <-grad L(W), Delta_{nu,r}> = sum_j M_nu[r, j] dF/dM_nu[r, j] with
        F = <-grad L(W), W(theta)>: one backward pass gives every node and r at once.

        Arguments:
            grad_w: grad L(W), of shape ``shape``.

        Returns:
            The :class:`RateTerms`; ``groups`` = ((node, r_nu), ...).
        """
        g = jax.grad(lambda m: -jnp.sum(grad_w * m.materialize()))(self)
        sigma = self.local_component_norms()
        gamma = {}
        for i, node in enumerate(self.nodes):
            if i == self.plan.root:
                inner = self.output * g.output
            else:
                inner = jnp.sum(self.node_matrices[i] * g.node_matrices[i], axis=1)
            gamma[node] = inner / sigma[node]
        flat_sigma, groups = concat_groups(sigma)
        orders = self.local_orders()
        coefficient = jnp.concatenate([jnp.full(n, float(orders[node])) for node, n in groups])
        return RateTerms(flat_sigma, concat_groups(gamma)[0], coefficient, 2.0 - 2.0 / coefficient, groups)

    def local_balancedness(self) -> dict:
        """{node: eps_{nu,r}} = max_{i,j} | ||v_i||^2 - ||v_j||^2 | over the K vectors of
        each local component (conserved under gradient flow)."""
        out = {}
        for i, node in enumerate(self.nodes):
            sq = self._local_sq_norms(i)
            out[node] = jnp.max(sq, axis=0) - jnp.min(sq, axis=0)
        return out

    def balancedness(self) -> Float[Array, " k"]:
        """:meth:`local_balancedness` of every node, nodes in the order of :attr:`nodes`."""
        return concat_groups(self.local_balancedness())[0]

    def component_imbalance(self) -> Float[Array, " k"]:
        """eps of Razin et al. 2021, Thm 2 (K for N) per local component: :meth:`balancedness`."""
        return self.balancedness()

    def conserved_quantities(self) -> dict:
        """{node: (K-1, r) array} of ||v_i||^2 - ||v_K||^2 for each local component (v_K its
        row of M_nu / entry of w_out): exactly conserved by gradient flow, since W is
        multilinear in the K vectors of a local component (Razin et al. 2022, Lemma 1)."""
        out = {}
        for i, node in enumerate(self.nodes):
            sq = self._local_sq_norms(i)
            out[node] = sq[:-1] - sq[-1:]
        return out

    @classmethod
    def verify_cases(cls) -> tuple[VerifyCase, ...]:
        return (
            VerifyCase(
                "HTF order 4",
                (4,) * 4,
                dict(widths=(6, 6), init_scale=0.3, balanced=True),
                num_observed=128,
                target_norm=16.0,
            ),
        )


def _khatri_rao_rows(parts) -> tuple[Array, tuple[int, ...]]:
    """Row-wise Khatri-Rao product of matrices (p_c, z) in order: the (prod p_c, z) matrix
    with row (i_1, ..., i_K) (row-major) = prod_c X_c[i_c, :], and the concatenated modes."""
    out, modes = parts[0]
    for x, m in parts[1:]:
        out = (out[:, None, :] * x[None, :, :]).reshape(-1, x.shape[-1])
        modes = modes + m
    return out, modes


def _param_shapes(shape, widths, plan: TreePlan):
    leaf = [(d, widths[plan.leaf_parent_height[n] - 1]) for n, d in enumerate(shape)]
    node = [(widths[plan.heights[i] - 1], widths[plan.parent_height[i] - 1]) for i in range(len(plan.nodes) - 1)]
    return leaf, node, widths[plan.depth - 1]


def _init_params(key, init_scale, shape, widths, plan, dtype, balanced):
    """All matrices N(0, init_scale^2), optionally balanced. The draws compile once per
    size class (:func:`jaxreg._random.normal`), the scaling and balance once per shape."""
    leaf_shapes, node_shapes, out_len = _param_shapes(shape, widths, plan)
    keys = jax.random.split(key, len(leaf_shapes) + len(node_shapes) + 1)
    draws = tuple(normal(k, s, dtype) for k, s in zip(keys, leaf_shapes + node_shapes + [(out_len,)]))
    return _scale_and_balance(init_scale, draws, len(leaf_shapes), plan, balanced)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _scale_and_balance(init_scale, draws, num_leaves, plan, balanced):
    draws = [init_scale * d for d in draws]
    leaves, nodes, out = draws[:num_leaves], draws[num_leaves:-1], draws[-1]
    if balanced:
        leaves, nodes, out = _balance_top_down(plan, leaves, nodes, out)
    return tuple(leaves), tuple(nodes), out


def _balance_top_down(plan: TreePlan, leaves, nodes, out):
    """Rescale columns only, root first: exact balance of every local component."""
    leaves, nodes = list(leaves), list(nodes)

    def children_cols(i):
        return [(kind, j, (leaves if kind == "leaf" else nodes)[j]) for kind, j in plan.children[i]]

    for i in reversed(range(len(plan.nodes))):
        ch = children_cols(i)
        cols = [column_norms(a) for _, _, a in ch]
        if i == plan.root:
            sq = jnp.stack(cols + [jnp.abs(out)])
            common = jnp.exp(jnp.mean(jnp.log(sq), axis=0))
            out = jnp.where(out >= 0, 1.0, -1.0).astype(out.dtype) * common
        else:
            common = jnp.sqrt(jnp.sum(nodes[i] ** 2, axis=1))
        for (kind, j, a), c in zip(ch, cols):
            (leaves if kind == "leaf" else nodes)[j] = a * (common / c)[None, :]
    return leaves, nodes, out


def ht_target(
    key: PRNGKeyArray, shape: tuple[int, ...], rank, *, tree=None, norm: float | None = None, dtype=None
) -> HierarchicalTensorFactorization:
    """An HT-rank-``rank`` target W* on ``tree`` (Razin, Maman, Cohen, ICML 2022): N(0, 1)
    matrices, the output vector scaled so ||W*||_F = ``norm`` (by ``gram_norm``, W unformed).

    Arguments:
        key, shape, tree, dtype: as in :class:`HierarchicalTensorFactorization`.
        rank: an int (every level) or one int per tree level (the model's ``widths``).
        norm: ||W*||_F (default sqrt(prod(shape)): entry RMS 1).

    Returns:
        The :class:`HierarchicalTensorFactorization` whose ``materialize()`` is W*.
    """
    shape = V.shape_tuple("shape", shape)
    plan = _plan(shape, tree)
    if isinstance(rank, (int, np.integer)) and not isinstance(rank, bool):
        rank = (V.positive_int("rank", rank),) * plan.depth
    widths = check_widths(rank, plan, name="rank")
    norm = math.sqrt(math.prod(shape)) if norm is None else V.positive_float("norm", norm)
    model = HierarchicalTensorFactorization(key, shape, widths, tree=plan.tree, init_scale=1.0, dtype=dtype)
    return eqx.tree_at(lambda m: m.output, model, _rescale_output(model, norm))


@eqx.filter_jit
def _rescale_output(model, norm):
    return model.output * (norm / model.gram_norm())
