"""PyTorch baselines of the throughput cases (benchmark-only; jaxreg never imports torch).

Every function takes the parameters as a list of tensors in jaxreg's layout, so that all
implementations can start from jaxreg's own initial parameters and be checked against it:
  matrix: [W_1, W_2, W_3] with W = W_3 W_2 W_1 (100 x 100 each);
  cp:     [A_1, ..., A_4], A_n of shape (10, R), W = sum_r (x)_n A_n[:, r];
  htf:    [M_1, ..., M_4 (leaves, 16 x 64), M_{01}, M_{23} (64 x 64), w_out (64,)],
          tree ((0, 1), (2, 3)).
A leading seed axis is allowed wherever a function says "batched".

Three styles:
  authors: one seed, the forward pass of the authors' public code
    matrix: roosephu/deep_matrix_factorization main.py (``get_e2e`` chains the nn.Linear
      layers into the end-to-end matrix, ``get_train_loss`` indexes it at (us, vs));
    cp: noamrazin/imp_reg_in_tf tensor_factorization/models/tensor_factorizations.py
      (``TensorCPFactorization.forward``: the whole tensor from one einsum,
      common/utils/tensor.py ``reconstruct_parafac``, then indexed);
    htf: asafmaman101/imp_reg_htf tensor_factorization/models/ht_tensor_factorization.py
      (``forward`` on one-hot inputs: per level an einsum 'bod,odr->bor' with the
      stacked factors, product pooling of adjacent modes, a linear output layer).
  dense: jaxreg's algorithm (``entries`` on the dense route): build W (or its balanced
    matricization) with matmuls, read the observed entries with one flat gather; batched.
  lookup: per-observation row lookups (the gather route), one seed: the previous
    benchmark's baseline, kept as context.
"""

from __future__ import annotations

import numpy as np
import torch


def flat_indices(idx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Row-major flat index of every multi-index row of ``idx``."""
    return np.ravel_multi_index(tuple(idx.T), shape).astype(np.int64)


def _khatri_rao(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row (i, j) = a[i] * b[j]; batched over leading axes."""
    return (a[..., :, None, :] * b[..., None, :, :]).flatten(-3, -2)


def dense_w(case: str, ws: list[torch.Tensor]) -> torch.Tensor:
    """W (matrix) or a matricization of it whose row-major flattening is W's; batched."""
    if case == "matrix":
        return ws[2] @ (ws[1] @ ws[0])
    if case == "cp":
        return _khatri_rao(ws[0], ws[1]) @ _khatri_rao(ws[2], ws[3]).transpose(-1, -2)
    x01 = _khatri_rao(ws[0], ws[1]) @ ws[4]
    x23 = _khatri_rao(ws[2], ws[3]) @ ws[5]
    return (x01 * ws[6][..., None, :]) @ x23.transpose(-1, -2)


def dense_predict(case: str, ws: list[torch.Tensor], flat: torch.Tensor) -> torch.Tensor:
    """The observed entries via W, batched: (..., k)."""
    w = dense_w(case, ws)
    return w.flatten(-2)[..., flat]


def authors_e2e(ws: list[torch.Tensor]) -> torch.Tensor:
    """W^T, the end-to-end matrix as the authors' ``get_e2e`` chains their layers
    (weight = fc.weight.t(), then weight = fc(weight) for every further layer)."""
    e2e = ws[0].t()
    for w in ws[1:]:
        e2e = e2e @ w.t()
    return e2e


def authors_predict(case: str, ws: list[torch.Tensor], data: dict) -> torch.Tensor:
    """The observed entries as the authors' code computes them (one seed)."""
    idx = data["idx"]
    if case == "matrix":
        return authors_e2e(ws)[idx[:, 1], idx[:, 0]]  # e2e = W^T
    if case == "cp":
        tensor = torch.einsum("az,bz,cz,dz->abcd", *ws[:4])
        return tensor[idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3]]
    acts = torch.einsum("bod,odr->bor", data["one_hot"], torch.stack(ws[:4]))
    acts = acts.unflatten(1, (2, 2)).prod(dim=2)
    acts = torch.einsum("bod,odr->bor", acts, torch.stack(ws[4:6]))
    return acts.prod(dim=1) @ ws[6]


def lookup_predict(case: str, ws: list[torch.Tensor], data: dict) -> torch.Tensor:
    """The observed entries by per-observation row lookups (one seed)."""
    idx = data["idx"]
    if case == "matrix":
        left = ws[2] @ ws[1]
        return (left[idx[:, 0]] * ws[0][:, idx[:, 1]].t()).sum(-1)
    if case == "cp":
        prod = ws[0][idx[:, 0]]
        for n in range(1, 4):
            prod = prod * ws[n][idx[:, n]]
        return prod.sum(-1)
    x01 = (ws[0][idx[:, 0]] * ws[1][idx[:, 1]]) @ ws[4]
    x23 = (ws[2][idx[:, 2]] * ws[3][idx[:, 3]]) @ ws[5]
    return (x01 * x23) @ ws[6]


def torch_data(idx: np.ndarray, values: np.ndarray, shape: tuple[int, ...], dtype=np.float32) -> dict:
    """Observed indices and values (in ``dtype``) as torch tensors."""
    idx_t = torch.from_numpy(idx.astype(np.int64))
    return {
        "idx": idx_t,
        "flat": torch.from_numpy(flat_indices(idx, shape)),
        "y": torch.from_numpy(np.array(values, dtype)),
        "one_hot": torch.nn.functional.one_hot(idx_t, max(shape)).to(torch.from_numpy(np.zeros(0, dtype)).dtype),
    }
