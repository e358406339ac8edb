# generated from optuna_gamma/gp/_linalg.py by tools/sync_optunahub.py; do not edit
"""Small dense linear-algebra helpers shared by the evidence and the model.

They call LAPACK through ``scipy.linalg.lapack`` directly: the matrices are small (tens to
hundreds of rows) and called thousands of times per suggestion, where the argument checking of
the ``scipy.linalg`` wrappers cost more than the factorizations.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.linalg.lapack


# Extra diagonal jitter tried in turn when a Cholesky factorization fails.
JITTERS = (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2)


def robust_cholesky(K: np.ndarray) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of ``K``, adding diagonal jitter from ``JITTERS`` if needed.

    Returns:
        ``(L, jitter)`` with ``L L^T = K + jitter I``.

    Raises:
        numpy.linalg.LinAlgError: Even the largest jitter did not make ``K`` positive definite.
    """
    n = K.shape[0]
    for jitter in JITTERS:
        A = K if jitter == 0.0 else K + jitter * np.eye(n)
        if not np.all(np.isfinite(A)):
            break
        L, info = scipy.linalg.lapack.dpotrf(A, lower=1, clean=1)
        if info == 0 and np.all(np.diag(L) > 0.0):
            return L, jitter
    raise np.linalg.LinAlgError("Cholesky factorization failed even with jitter 1e-2.")


def cho_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:math:`K^{-1} b` from the lower Cholesky factor of ``K``."""
    x, info = scipy.linalg.lapack.dpotrs(L, b, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dpotrs failed (info={info}).")
    return x


def cho_inverse(L: np.ndarray) -> np.ndarray:
    """:math:`K^{-1}` from the lower Cholesky factor (LAPACK ``potri``, then symmetrized)."""
    inv, info = scipy.linalg.lapack.dpotri(L, lower=1)
    if info != 0:
        return scipy.linalg.cho_solve((L, True), np.eye(L.shape[0]), check_finite=False)
    lower = np.tril(inv)
    return lower + np.tril(inv, -1).T


def triangular_inverse(L: np.ndarray) -> np.ndarray:
    """:math:`L^{-1}` of a lower triangular ``L`` (LAPACK ``trtri``)."""
    inv, info = scipy.linalg.lapack.dtrtri(L, lower=1)
    if info != 0:
        return scipy.linalg.solve_triangular(L, np.eye(L.shape[0]), lower=True, check_finite=False)
    return np.tril(inv)


def extend_cholesky(
    L11: np.ndarray, K21: np.ndarray, K22: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cholesky factor of ``[[K11, K21^T], [K21, K22]]`` from ``L11 = chol(K11)`` in
    :math:`O(n^2 p)` (the blocks ``L21 = K21 L11^{-T}``, ``L22 = chol(K22 - L21 L21^T)``).

    Returns:
        ``(L, L21, L22)``.

    Raises:
        numpy.linalg.LinAlgError: The Schur complement is not positive definite even with jitter.
    """
    n, p = L11.shape[0], K22.shape[0]
    X, info = scipy.linalg.lapack.dtrtrs(L11, np.ascontiguousarray(K21.T), lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dtrtrs failed (info={info}).")
    L21 = X.T
    S = K22 - L21 @ L21.T
    L22, _ = robust_cholesky(0.5 * (S + S.T))
    L = np.zeros((n + p, n + p))
    L[:n, :n] = L11
    L[n:, :n] = L21
    L[n:, n:] = L22
    return L, L21, L22
