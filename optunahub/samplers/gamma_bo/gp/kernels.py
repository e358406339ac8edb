# generated from optuna_gamma/gp/kernels.py by tools/sync_optunahub.py; do not edit
"""Stationary ARD kernels with unit amplitude on the unit cube.

Both kernels are functions of the scaled squared distance

.. math::

    r^2(x, x') = \\sum_{d \\in \\mathrm{cont}} \\ell_d (x_d - x'_d)^2
               + \\sum_{d \\in \\mathrm{cat}} \\ell_d \\, 1[x_d \\neq x'_d],

where :math:`\\ell_d = 1 / \\lambda_d^2` is the *inverse squared lengthscale* of dimension ``d``
(automatic relevance determination, Rasmussen & Williams 2006, sec. 5.1) and categorical dimensions
(which hold a category index) use the Hamming distance, as Optuna's ``GPSampler`` does.

* ``"matern52"`` (default): :math:`k(r) = (1 + \\sqrt5 r + \\tfrac53 r^2) e^{-\\sqrt5 r}`
  (Rasmussen & Williams 2006, eq. 4.17).
* ``"rbf"``: the squared exponential :math:`k(r) = \\exp(-r^2 / 2)` of the thesis (eqs. 5-6).

Gradients are taken with respect to the squared distance :math:`s = r^2`. For the Matern kernel

.. math::

    \\frac{\\partial k}{\\partial s} = -\\tfrac56 (1 + \\sqrt5 r) e^{-\\sqrt5 r},

which is smooth at :math:`r = 0` (value :math:`-5/6`), so no :math:`1/r` appears and duplicated or
coincident points give finite gradients.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np


KernelName = Literal["matern52", "rbf"]
KERNELS: tuple[str, ...] = ("matern52", "rbf")

_SQRT5 = math.sqrt(5.0)


def check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")


def categorical_mask(is_categorical: np.ndarray | None, d: int) -> np.ndarray:
    if is_categorical is None:
        return np.zeros(d, dtype=bool)
    mask = np.asarray(is_categorical, dtype=bool).reshape(-1)
    if mask.shape != (d,):
        raise ValueError(f"is_categorical must have shape ({d},), got {mask.shape}.")
    return mask


def squared_distance(
    X1: np.ndarray,
    X2: np.ndarray,
    inv_sq_lengthscales: np.ndarray,
    is_categorical: np.ndarray | None = None,
) -> np.ndarray:
    """Scaled squared distances :math:`r^2` between the rows of ``X1`` and ``X2``.

    Args:
        X1: Points, shape ``(n1, d)``.
        X2: Points, shape ``(n2, d)``.
        inv_sq_lengthscales: :math:`\\ell`, shape ``(d,)``, positive.
        is_categorical: Boolean mask ``(d,)``; categorical dimensions use the Hamming distance.

    Returns:
        Array ``(n1, n2)`` of :math:`r^2 \\geq 0`.
    """
    X1 = np.asarray(X1, dtype=float)
    X2 = np.asarray(X2, dtype=float)
    ell = np.asarray(inv_sq_lengthscales, dtype=float)
    d = ell.shape[0]
    if X1.ndim != 2 or X2.ndim != 2 or X1.shape[1] != d or X2.shape[1] != d:
        raise ValueError(
            f"X1 and X2 must be 2-D with {d} columns, got shapes {X1.shape} and {X2.shape}."
        )
    cat = categorical_mask(is_categorical, d)
    cont = ~cat
    if cont.any():
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b on sqrt(ell)-scaled coordinates (BLAS, O(n1 n2 d)).
        w = np.sqrt(ell[cont])
        A = X1[:, cont] * w
        B = X2[:, cont] * w
        sqd = (A * A).sum(axis=1)[:, None] + (B * B).sum(axis=1)[None, :] - 2.0 * (A @ B.T)
        np.maximum(sqd, 0.0, out=sqd)
    else:
        sqd = np.zeros((X1.shape[0], X2.shape[0]))
    for j in np.flatnonzero(cat):
        sqd += ell[j] * (X1[:, j, None] != X2[None, :, j])
    return sqd


def kernel_from_sqdist(sqdist: np.ndarray, kernel: KernelName = "matern52") -> np.ndarray:
    """Unit-amplitude kernel value :math:`k` as a function of :math:`s = r^2`."""
    check_kernel(kernel)
    if kernel == "rbf":
        return np.exp(-0.5 * sqdist)
    sr = _SQRT5 * np.sqrt(sqdist)
    return (1.0 + sr + (5.0 / 3.0) * sqdist) * np.exp(-sr)


def kernel_and_derivative(
    sqdist: np.ndarray, kernel: KernelName = "matern52"
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel value :math:`k(s)` and derivative :math:`\\partial k / \\partial s` at
    :math:`s = r^2`."""
    check_kernel(kernel)
    if kernel == "rbf":
        k = np.exp(-0.5 * sqdist)
        return k, -0.5 * k
    sr = _SQRT5 * np.sqrt(sqdist)
    e = np.exp(-sr)
    k = (1.0 + sr + (5.0 / 3.0) * sqdist) * e
    dk = (-5.0 / 6.0) * (1.0 + sr) * e
    return k, dk


def kernel_matrix(
    X1: np.ndarray,
    X2: np.ndarray,
    inv_sq_lengthscales: np.ndarray,
    *,
    kernel: KernelName = "matern52",
    is_categorical: np.ndarray | None = None,
) -> np.ndarray:
    """Kernel matrix :math:`K_{ij} = k(x_i, x'_j)` with unit amplitude (:math:`k(x, x) = 1`).

    Args:
        X1: Points, shape ``(n1, d)``.
        X2: Points, shape ``(n2, d)``.
        inv_sq_lengthscales: :math:`\\ell`, shape ``(d,)``.
        kernel: ``"matern52"`` or ``"rbf"``.
        is_categorical: Boolean mask ``(d,)`` or ``None``.

    Returns:
        Array ``(n1, n2)``.
    """
    check_kernel(kernel)
    return kernel_from_sqdist(
        squared_distance(X1, X2, inv_sq_lengthscales, is_categorical), kernel
    )
