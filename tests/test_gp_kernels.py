"""Kernels: closed forms, Hamming distance on categorical dims, derivatives vs finite
differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optuna_gamma.gp.kernels import kernel_and_derivative
from optuna_gamma.gp.kernels import kernel_from_sqdist
from optuna_gamma.gp.kernels import kernel_matrix
from optuna_gamma.gp.kernels import KernelName
from optuna_gamma.gp.kernels import squared_distance


CAT = np.array([False, True, False])


def _points(rng: np.random.Generator, n: int) -> np.ndarray:
    X = rng.random((n, 3))
    X[:, 1] = rng.integers(0, 3, n)
    return X


def test_squared_distance_matches_loop() -> None:
    rng = np.random.default_rng(0)
    X1, X2 = _points(rng, 6), _points(rng, 5)
    ell = np.array([2.0, 0.7, 5.0])
    got = squared_distance(X1, X2, ell, CAT)
    for i in range(6):
        for j in range(5):
            ref = ell[0] * (X1[i, 0] - X2[j, 0]) ** 2 + ell[2] * (X1[i, 2] - X2[j, 2]) ** 2
            ref += ell[1] * float(X1[i, 1] != X2[j, 1])
            assert got[i, j] == pytest.approx(ref, abs=1e-12)


def test_squared_distance_is_zero_on_duplicates_and_nonnegative() -> None:
    rng = np.random.default_rng(1)
    X = _points(rng, 8)
    X[3] = X[5]
    S = squared_distance(X, X, np.array([1e3, 1.0, 1e3]), CAT)
    assert np.all(S >= 0.0)
    assert S[3, 5] == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(np.diag(S), 0.0, atol=1e-9)


@pytest.mark.parametrize("r", [0.0, 0.3, 1.0, 2.5])
def test_closed_forms(r: float) -> None:
    s = np.array([r * r])
    matern = (1 + math.sqrt(5) * r + 5 * r * r / 3) * math.exp(-math.sqrt(5) * r)
    assert kernel_from_sqdist(s, "matern52")[0] == pytest.approx(matern, rel=1e-14)
    # thesis eqs. 5-6: squared exponential exp(-r^2 / 2)
    assert kernel_from_sqdist(s, "rbf")[0] == pytest.approx(math.exp(-0.5 * r * r), rel=1e-14)


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
def test_unit_amplitude_symmetric_psd(kernel: KernelName) -> None:
    rng = np.random.default_rng(2)
    X = _points(rng, 30)
    K = kernel_matrix(X, X, np.array([3.0, 1.0, 0.5]), kernel=kernel, is_categorical=CAT)
    assert np.allclose(np.diag(K), 1.0)
    assert np.allclose(K, K.T)
    assert np.linalg.eigvalsh(K).min() > -1e-10


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
def test_derivative_wrt_squared_distance(kernel: KernelName) -> None:
    s = np.array([0.0, 1e-12, 1e-4, 0.2, 1.0, 7.0])
    _, dk = kernel_and_derivative(s, kernel)
    assert np.all(np.isfinite(dk))
    h = 1e-7
    k_plus = kernel_from_sqdist(s + h, kernel)
    fd = (k_plus - kernel_from_sqdist(s, kernel)) / h
    # one-sided at s = 0 (the function is smooth in s there)
    assert np.allclose(dk, fd, rtol=1e-4, atol=1e-5)
    if kernel == "matern52":
        assert dk[0] == pytest.approx(-5.0 / 6.0)


def test_bad_input() -> None:
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="kernel"):
        kernel_matrix(X, X, np.ones(2), kernel="cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="columns"):
        squared_distance(X, np.zeros((3, 3)), np.ones(2))
    with pytest.raises(ValueError, match="is_categorical"):
        squared_distance(X, X, np.ones(2), np.array([True]))
