"""Gamma-conjugate GP: evidence vs dense densities (and the integral over the constant mean),
gradients vs finite differences, predictive closed forms, quadrature and Monte Carlo, the
Gaussian limit, settings validation and the robustness of the fit."""

from __future__ import annotations

from dataclasses import replace
import json
import math
from pathlib import Path
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from scipy import integrate
from scipy import stats

from optuna_gamma.gp import fit_gp
from optuna_gamma.gp import GaussianProcess
from optuna_gamma.gp import GPHyperparams
from optuna_gamma.gp import GPSettings
from optuna_gamma.gp import log_marginal_likelihood
from optuna_gamma.gp.fit import log_marginal_likelihood_and_grad
from optuna_gamma.gp.kernels import kernel_matrix
from optuna_gamma.gp.kernels import KernelName
from optuna_gamma.gp.priors import log_prior
from optuna_gamma.gp.priors import log_prior_and_grad
from optuna_gamma.gp.settings import LengthscalePrior
from optuna_gamma.gp.settings import Mean
from optuna_gamma.gp.settings import MIN_NOISE
from optuna_gamma.gp.settings import Predictive


CAT = np.array([False, False, True])
KERNELS = ["matern52", "rbf"]
MODES = ["student_t", "gaussian", "plugin"]
MEANS = ["constant", "zero", "worst"]
#: The fixed mean of each mode that has one (the constant mean, integrated out, has none).
FIXED_MEAN = {"zero": lambda y: 0.0, "worst": lambda y: float(np.min(y))}
A0, B0 = 1.5, 0.7


def _settings(**kw: Any) -> GPSettings:
    base: dict[str, Any] = dict(prior_shape=A0, prior_rate=B0)
    base.update(kw)
    return GPSettings(**base)


def _data(seed: int = 0, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3))
    X[:, 2] = rng.integers(0, 3, n)
    X[n - 1] = X[2]  # duplicate row
    y = np.sin(5 * X[:, 0]) + X[:, 2] * 0.3 + 0.1 * rng.standard_normal(n) + 0.4
    return X, (y - y.mean()) / y.std() + 0.3


PARAMS = GPHyperparams(np.array([2.0, 0.5, 1.3]), 0.05, 1.7)


def _dense_K(X: np.ndarray, params: GPHyperparams, kernel: KernelName) -> np.ndarray:
    K = kernel_matrix(X, X, params.inv_sq_lengthscales, kernel=kernel, is_categorical=CAT)
    return K + params.noise * np.eye(len(X))


def _log_density_given_mean(y: np.ndarray, m: float, K: np.ndarray, predictive: str) -> float:
    """log p(y | m): N(m, A K) (gaussian) or the Student-t from integrating tau out."""
    n = len(y)
    if predictive == "gaussian":
        return float(stats.multivariate_normal(np.full(n, m), PARAMS.amplitude * K).logpdf(y))
    # Integrating tau ~ Gamma(a0, b0) out of N(m, K / tau) gives a multivariate Student-t with
    # 2 a0 degrees of freedom and shape (b0 / a0) K.
    return float(stats.multivariate_t(np.full(n, m), (B0 / A0) * K, df=2 * A0).logpdf(y))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
@pytest.mark.parametrize("mean", MEANS)
def test_lml_equals_dense_density(kernel: KernelName, predictive: Predictive, mean: Mean) -> None:
    X, y = _data()
    settings = _settings(kernel=kernel, predictive=predictive, mean=mean)
    lml = log_marginal_likelihood(X, y, PARAMS, settings, is_categorical=CAT)
    K = _dense_K(X, PARAMS, kernel)
    if mean in FIXED_MEAN:
        m0 = FIXED_MEAN[mean](y)
        ref = _log_density_given_mean(y, m0, K, predictive)
        if predictive != "gaussian":
            # ... and it equals docs/design.md's closed form term by term.
            n, r = len(y), y - m0
            a_n, b_n = A0 + n / 2, B0 + 0.5 * r @ np.linalg.solve(K, r)
            closed = (
                math.lgamma(a_n)
                - math.lgamma(A0)
                + A0 * math.log(B0)
                - a_n * math.log(b_n)
                - n / 2 * math.log(2 * math.pi)
                - 0.5 * np.linalg.slogdet(K)[1]
            )
            assert closed == pytest.approx(ref, rel=1e-10)
    else:
        # The constant mean has a flat prior: p(y) = integral of p(y | m) dm (quadrature).
        centre = float(np.sum(np.linalg.solve(K, y)) / np.sum(np.linalg.solve(K, np.ones(len(y)))))
        peak = _log_density_given_mean(y, centre, K, predictive)
        integral, _ = integrate.quad(
            lambda m: math.exp(_log_density_given_mean(y, m, K, predictive) - peak),
            centre - 50,
            centre + 50,
            points=[centre],
            limit=200,
            epsabs=0,
            epsrel=1e-11,
        )
        ref = peak + math.log(integral)
    assert lml == pytest.approx(ref, rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
@pytest.mark.parametrize("mean", MEANS)
def test_lml_gradient_matches_finite_differences(
    kernel: KernelName, predictive: Predictive, mean: Mean
) -> None:
    X, y = _data(1)
    settings = _settings(kernel=kernel, predictive=predictive, mean=mean)
    _, grad = log_marginal_likelihood_and_grad(X, y, PARAMS, settings, is_categorical=CAT)
    raw = PARAMS.to_vector(settings)
    assert grad.shape == raw.shape == (5 if predictive == "gaussian" else 4,)
    h = 1e-6
    for i in range(raw.size):
        e = np.zeros_like(raw)
        e[i] = h
        fp = log_marginal_likelihood(
            X, y, GPHyperparams.from_vector(raw + e, 3, settings), settings, is_categorical=CAT
        )
        fm = log_marginal_likelihood(
            X, y, GPHyperparams.from_vector(raw - e, 3, settings), settings, is_categorical=CAT
        )
        assert grad[i] == pytest.approx((fp - fm) / (2 * h), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("predictive", ["student_t", "gaussian"])
@pytest.mark.parametrize("lengthscale_prior", ["dim_scaled", "optuna"])
def test_log_prior_gradient(predictive: Predictive, lengthscale_prior: LengthscalePrior) -> None:
    settings = GPSettings(predictive=predictive, lengthscale_prior=lengthscale_prior)
    raw = PARAMS.to_vector(settings)
    _, grad = log_prior_and_grad(PARAMS, settings)
    for i in range(raw.size):
        e = np.zeros_like(raw)
        e[i] = 1e-6
        fp = log_prior(GPHyperparams.from_vector(raw + e, 3, settings), settings)
        fm = log_prior(GPHyperparams.from_vector(raw - e, 3, settings), settings)
        assert grad[i] == pytest.approx((fp - fm) / 2e-6, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("d", [1, 2, 6, 10])
def test_dim_scaled_lengthscale_prior_is_the_log_normal_of_hvarfner_et_al(d: int) -> None:
    """The penalty is the LogNormal(sqrt2 + log(d)/2, 3) log density of the lengthscale
    lambda = ell^(-1/2) (up to a constant); it peaks at exp(mu - 3) ~ 0.2 sqrt(d)."""
    settings = GPSettings(lengthscale_prior="dim_scaled")
    mu = math.sqrt(2) + 0.5 * math.log(d)
    lams = np.array([0.05, 0.3, 1.0, 4.0])
    values = []
    for lam in lams:
        p = GPHyperparams(np.full(d, lam**-2.0), 0.1)
        values.append(log_prior(p, settings) - (0.1 * math.log(0.1) - 3.0))
    ref = d * stats.lognorm(s=math.sqrt(3), scale=math.exp(mu)).logpdf(lams)
    np.testing.assert_allclose(np.diff(values), np.diff(ref), rtol=1e-10)
    peak = math.exp(mu - 3)
    assert peak == pytest.approx(0.2048 * math.sqrt(d), rel=1e-3)
    grid = np.linspace(math.log(peak) - 1, math.log(peak) + 1, 2001)
    pen = [log_prior(GPHyperparams(np.full(d, math.exp(-2 * g)), 0.1), settings) for g in grid]
    assert grid[int(np.argmax(pen))] == pytest.approx(math.log(peak), abs=1e-3)
    if d == 1:  # weak: a lengthscale of 1 costs about 0.4 nats against the peak
        gap = log_prior(GPHyperparams(np.full(1, peak**-2.0), 0.1), settings) - log_prior(
            GPHyperparams(np.ones(1), 0.1), settings
        )
        assert gap == pytest.approx(0.42, abs=0.01)


def _dense_predictive(
    X: np.ndarray,
    y: np.ndarray,
    Xq: np.ndarray,
    params: GPHyperparams,
    kernel: KernelName,
    mean: Mean,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """loc, unit variance ratio, quadratic form and n' of the dense closed form."""
    K = _dense_K(X, params, kernel)
    Kq = kernel_matrix(Xq, X, params.inv_sq_lengthscales, kernel=kernel, is_categorical=CAT)
    Kinv = np.linalg.inv(K)
    one = np.ones(len(y))
    if mean in FIXED_MEAN:
        m, extra, n_eff = FIXED_MEAN[mean](y), np.zeros(len(Xq)), len(y)
    else:
        c = one @ Kinv @ one
        m = float(one @ Kinv @ y / c)
        extra = (1.0 - Kq @ Kinv @ one) ** 2 / c
        n_eff = len(y) - 1
    r = y - m
    loc = m + Kq @ Kinv @ r
    var = 1.0 - np.einsum("ij,jk,ik->i", Kq, Kinv, Kq) + extra
    return loc, var, float(r @ Kinv @ r), n_eff


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
@pytest.mark.parametrize("mean", MEANS)
def test_predictive_matches_dense_closed_form(
    kernel: KernelName, predictive: Predictive, mean: Mean
) -> None:
    X, y = _data(2)
    settings = _settings(kernel=kernel, predictive=predictive, mean=mean)
    gp = GaussianProcess(X, y, PARAMS, settings, is_categorical=CAT)
    rng = np.random.default_rng(5)
    Xq = np.vstack([rng.random((6, 3)), X[:2]])
    Xq[:6, 2] = rng.integers(0, 3, 6)
    loc_ref, var_ref, quad, n_eff = _dense_predictive(X, y, Xq, PARAMS, kernel, mean)
    if predictive == "gaussian":
        factor, dof = PARAMS.amplitude, math.inf
    else:
        a_n, b_n = A0 + n_eff / 2, B0 + 0.5 * quad
        assert gp.a_n == pytest.approx(a_n) and gp.b_n == pytest.approx(b_n)
        factor = b_n / a_n
        dof = 2 * a_n if predictive == "student_t" else math.inf
    assert gp.dof == dof
    loc, scale = gp.predict(Xq)
    assert np.allclose(loc, loc_ref, atol=1e-8)
    assert np.allclose(scale, np.sqrt(factor * var_ref), rtol=1e-6, atol=1e-9)
    assert np.all(scale > 0)


def test_constant_mean_predictive_integrates_the_mean_out() -> None:
    """Student-t predictive with the constant mean: its CDF equals the integral over m of the
    predictive given m (a Student-t with 2 a0 + n dof) against the posterior of m (quadrature)."""
    X, y = _data(4, n=7)
    params = GPHyperparams(np.array([3.0, 1.0, 0.5]), 0.02)
    settings = _settings()
    gp = GaussianProcess(X, y, params, settings, is_categorical=CAT)
    xq = np.array([[0.37, 0.81, 1.0]])
    loc, scale = gp.predict(xq)
    K = _dense_K(X, params, "matern52")
    Kinv = np.linalg.inv(K)
    kq = kernel_matrix(xq, X, params.inv_sq_lengthscales, is_categorical=CAT)[0]
    n = len(y)
    var0 = 1.0 - kq @ Kinv @ kq

    def log_post_m(m: float) -> float:
        return _log_density_given_mean(y, m, K, "student_t")

    def given_m(m: float) -> stats.rv_continuous:
        r = y - m
        a_n, b_n = A0 + n / 2, B0 + 0.5 * r @ Kinv @ r
        return stats.t(df=2 * a_n, loc=m + kq @ Kinv @ r, scale=math.sqrt(b_n / a_n * var0))

    ref = stats.t(df=gp.dof, loc=loc[0], scale=scale[0])
    peak = log_post_m(gp.mean)
    norm, _ = integrate.quad(
        lambda m: math.exp(log_post_m(m) - peak),
        gp.mean - 40,
        gp.mean + 40,
        points=[gp.mean],
        limit=200,
    )
    for q in (0.05, 0.3, 0.5, 0.8, 0.97):
        x_q = ref.ppf(q)
        p, _ = integrate.quad(
            lambda m: math.exp(log_post_m(m) - peak) * given_m(m).cdf(x_q),
            gp.mean - 40,
            gp.mean + 40,
            points=[gp.mean],
            limit=200,
        )
        assert p / norm == pytest.approx(q, abs=1e-7)


def test_worst_mean_predicts_the_worst_observation_far_from_the_data() -> None:
    """De Ath et al. (2020): with the mean fixed at the worst observation, the model predicts
    that value far from the data (the GLS mean predicts about the typical value there), with
    the full predictive scale, so expected improvement far away is smaller than near the data."""
    from optuna_gamma.gp.acquisition import expected_improvement

    X, y = _data(4)
    worst = GaussianProcess(X, y, PARAMS, _settings(mean="worst"), is_categorical=CAT)
    const = GaussianProcess(X, y, PARAMS, _settings(mean="constant"), is_categorical=CAT)
    far = np.array([[60.0, -60.0, 1.0]])
    loc, scale = worst.predict(far)
    assert worst.mean == float(np.min(y)) and loc[0] == pytest.approx(np.min(y), abs=1e-12)
    assert scale[0] == pytest.approx(math.sqrt(worst.b_n / worst.a_n), rel=1e-9)
    assert worst.dof == pytest.approx(2 * A0 + len(y))  # no degree of freedom for the mean
    loc_c, _ = const.predict(far)
    assert np.min(y) < loc_c[0] < np.max(y)
    # At the data the fixed mean leaves the fit: the interpolant passes near every value.
    near, _ = worst.predict(X[:3])
    assert np.allclose(near, y[:3], atol=0.3)
    ei_far = expected_improvement(loc, scale, float(np.max(y)), dof=worst.dof)[0]
    ei_c = expected_improvement(loc_c, const.predict(far)[1], float(np.max(y)), dof=const.dof)[0]
    assert ei_far < ei_c


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
@pytest.mark.parametrize("mean", MEANS)
def test_predict_and_grad_matches_finite_differences(
    kernel: str, predictive: str, mean: str
) -> None:
    X, y = _data(3)
    gp = GaussianProcess(
        X,
        y,
        PARAMS,
        _settings(kernel=kernel, predictive=predictive, mean=mean),
        is_categorical=CAT,
    )
    rng = np.random.default_rng(6)
    Xq = rng.random((7, 3))
    Xq[:, 2] = rng.integers(0, 3, 7)
    Xq[0] = X[4]  # exactly on a training point (r = 0)
    loc, scale, dloc, dscale = gp.predict_and_grad(Xq)
    loc2, scale2 = gp.predict(Xq)
    assert np.allclose(loc, loc2) and np.allclose(scale, scale2)
    assert np.all(np.isfinite(dloc)) and np.all(np.isfinite(dscale))
    assert np.all(dloc[:, 2] == 0.0) and np.all(dscale[:, 2] == 0.0)
    h = 1e-6
    for j in range(2):
        Xp, Xm = Xq.copy(), Xq.copy()
        Xp[:, j] += h
        Xm[:, j] -= h
        (lp, sp), (lm, sm) = gp.predict(Xp), gp.predict(Xm)
        assert np.allclose(dloc[:, j], (lp - lm) / (2 * h), rtol=1e-5, atol=1e-6)
        assert np.allclose(dscale[:, j], (sp - sm) / (2 * h), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mean", MEANS)
def test_joint_predict_and_extra_observations(mean: Mean) -> None:
    """joint_predict's diagonal is predict's scale^2; with_observations (Cholesky extension)
    equals a GP built from scratch on the augmented data."""
    X, y = _data(7)
    settings = _settings(mean=mean)
    gp = GaussianProcess(X, y, PARAMS, settings, is_categorical=CAT)
    rng = np.random.default_rng(8)
    Xq = rng.random((5, 3))
    Xq[:, 2] = rng.integers(0, 3, 5)
    loc, cov = gp.joint_predict(Xq)
    loc1, scale1 = gp.predict(Xq)
    assert np.allclose(loc, loc1) and np.allclose(np.diag(cov), scale1**2)
    assert np.all(np.linalg.eigvalsh(cov) > -1e-12)
    y_new = rng.standard_normal(5)
    ext = gp.with_observations(Xq, y_new)
    ref = GaussianProcess(
        np.vstack([X, Xq]), np.concatenate([y, y_new]), PARAMS, settings, is_categorical=CAT
    )
    Xt = rng.random((6, 3))
    Xt[:, 2] = rng.integers(0, 3, 6)
    # The extended and the fresh factor round differently: a Cholesky solve's error is about
    # n * eps * cond(K) (noise 0.05: cond(K) < 300, so ~1e-12 relative to |y| ~ 1); 1e-9 leaves
    # a factor 1000 for any BLAS, also for values near 0 (atol on the output scale).
    for a, b in zip(ext.predict(Xt), ref.predict(Xt)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    assert ext.dof == ref.dof and ext.b_n == pytest.approx(ref.b_n, rel=1e-12, nan_ok=True)
    # extended(): all outputs replaced (e.g. re-standardized), the factor and L^-1 extended
    y_all = rng.standard_normal(len(y) + 5)
    ext2 = gp.extended(Xq, y_all)
    ref2 = GaussianProcess(np.vstack([X, Xq]), y_all, PARAMS, settings, is_categorical=CAT)
    assert ext2._L_inv_T is not None  # extended from gp's (computed by predict above)
    for a, b in zip(ext2.predict_and_grad(Xt), ref2.predict_and_grad(Xt)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)  # as above


def test_student_t_predictive_against_monte_carlo() -> None:
    """Zero mean: sample tau from its *prior*, weight by the likelihood of y (importance
    sampling, which also checks the conjugate update), then f | tau, y; compare with
    Student-t(2 a_n, loc, scale)."""
    X, y = _data(4, n=5)
    params = GPHyperparams(np.array([3.0, 1.0, 0.5]), 0.02)
    a0, b0 = 2.0, 1.5
    gp = GaussianProcess(
        X, y, params, GPSettings(prior_shape=a0, prior_rate=b0, mean="zero"), is_categorical=CAT
    )
    xq = np.array([[0.37, 0.81, 1.0]])
    loc, scale = gp.predict(xq)
    K = _dense_K(X, params, "matern52")
    kq = kernel_matrix(xq, X, params.inv_sq_lengthscales, is_categorical=CAT)[0]
    mu = kq @ np.linalg.solve(K, y)
    var = 1.0 - kq @ np.linalg.solve(K, kq)
    quad = y @ np.linalg.solve(K, y)
    rng = np.random.default_rng(0)
    m = 400_000
    tau = rng.gamma(a0, 1.0 / b0, m)
    logw = 0.5 * len(y) * np.log(tau) - 0.5 * tau * quad
    w = np.exp(logw - logw.max())
    w /= w.sum()
    f = mu + np.sqrt(var / tau) * rng.standard_normal(m)
    ess = 1.0 / np.sum(w * w)
    assert ess > 0.2 * m
    ref = stats.t(df=gp.dof, loc=loc[0], scale=scale[0])
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        x_q = ref.ppf(q)
        p_hat = np.sum(w * (f <= x_q))
        assert abs(p_hat - q) < 5 * math.sqrt(q * (1 - q) / ess)
    mean_hat = np.sum(w * f)
    sd = ref.std()
    assert abs(mean_hat - loc[0]) < 5 * sd / math.sqrt(ess)
    # direct sampling from the conjugate posterior agrees too
    tau_post = rng.gamma(gp.a_n, 1.0 / gp.b_n, m)
    f_post = mu + np.sqrt(var / tau_post) * rng.standard_normal(m)
    for q in (0.1, 0.5, 0.9):
        assert abs(np.mean(f_post <= ref.ppf(q)) - q) < 5 * math.sqrt(q * (1 - q) / m)


@pytest.mark.parametrize("mean", MEANS)
def test_student_t_tends_to_gaussian_as_prior_shape_grows(mean: Mean) -> None:
    from optuna_gamma.gp.acquisition import expected_improvement

    X, y = _data(5)
    amp = 0.8
    rng = np.random.default_rng(1)
    Xq = rng.random((20, 3))
    Xq[:, 2] = rng.integers(0, 3, 20)
    g = GaussianProcess(
        X,
        y,
        GPHyperparams(PARAMS.inv_sq_lengthscales, PARAMS.noise, amp),
        GPSettings(predictive="gaussian", mean=mean),
        is_categorical=CAT,
    )
    loc_g, scale_g = g.predict(Xq)
    ei_g = expected_improvement(loc_g, scale_g, y.max())
    errs = []
    for a0 in (1e1, 1e2, 1e3, 1e4):
        t = GaussianProcess(
            X,
            y,
            PARAMS,
            GPSettings(prior_shape=a0, prior_rate=a0 * amp, mean=mean),
            is_categorical=CAT,
        )
        loc_t, scale_t = t.predict(Xq)
        assert np.allclose(loc_t, loc_g)
        ei_t = expected_improvement(loc_t, scale_t, y.max(), dof=t.dof)
        errs.append((np.max(np.abs(scale_t / scale_g - 1)), np.max(np.abs(ei_t - ei_g))))
    errs_arr = np.array(errs)
    assert np.all(np.diff(errs_arr, axis=0) < 0)  # monotone convergence
    assert errs_arr[-1, 0] < 1e-3 and errs_arr[-1, 1] < 1e-3


def _evidence(gp: GaussianProcess) -> float:
    """Log evidence of ``gp``'s data under its hyperparameters (:mod:`~optuna_gamma.gp.fit`)."""
    return log_marginal_likelihood(
        gp.X, gp.y, gp.params, gp.settings, is_categorical=gp.is_categorical
    )


def _fit_objective(gp: GaussianProcess) -> float:
    return _evidence(gp) + log_prior(gp.params, gp.settings)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
def test_fit_improves_over_init(kernel: KernelName, predictive: Predictive) -> None:
    X, y = _data(6, n=20)
    settings = GPSettings(kernel=kernel, predictive=predictive)
    init = GPHyperparams(np.array([0.01, 50.0, 0.2]), 0.5, 3.0)
    gp = fit_gp(X, y, settings, is_categorical=CAT, init=init)
    start = GaussianProcess(X, y, init, settings, is_categorical=CAT)
    assert _fit_objective(gp) > _fit_objective(start) + 1.0
    assert _evidence(gp) > _evidence(start)
    if predictive != "gaussian":
        assert gp.params.amplitude == 1.0


@pytest.mark.parametrize("predictive", ["student_t", "gaussian"])
@pytest.mark.parametrize("mean", MEANS)
def test_fit_recovers_lengthscale(predictive: Predictive, mean: Mean) -> None:
    """Data drawn from a known GP: x0 relevant (ell = 20), x1 irrelevant."""
    rng = np.random.default_rng(7)
    ells = []
    for _ in range(3):
        X = rng.random((60, 2))
        K = kernel_matrix(X, X, np.array([20.0, 1e-8])) + 1e-4 * np.eye(60)
        f = np.linalg.cholesky(K) @ rng.standard_normal(60)
        y = (f - f.mean()) / f.std()
        gp = fit_gp(X, y, GPSettings(predictive=predictive, mean=mean))
        ells.append(gp.params.inv_sq_lengthscales)
    med = np.median(np.array(ells), axis=0)
    assert 20.0 / 4 < med[0] < 20.0 * 4
    assert med[1] < med[0] / 20


@pytest.mark.parametrize("predictive", MODES)
@pytest.mark.parametrize("mean", MEANS)
def test_fit_survives_degenerate_data(predictive: Predictive, mean: Mean) -> None:
    rng = np.random.default_rng(8)
    cases = {
        "n=1": (rng.random((1, 2)), np.zeros(1)),
        "n=1, y=3": (rng.random((1, 2)), np.full(1, 3.0)),
        "constant": (rng.random((6, 2)), np.zeros(6)),
        "duplicates": (np.repeat(rng.random((3, 2)), 4, axis=0), np.repeat([-1.0, 0.2, 0.8], 4)),
        "duplicates, different y": (np.zeros((4, 2)), np.array([-1.0, 1.0, -1.0, 1.0])),
        "huge y": (rng.random((5, 2)), 1e8 * rng.standard_normal(5)),
    }
    for name, (X, y) in cases.items():
        for det in (False, True):
            settings = GPSettings(predictive=predictive, mean=mean, deterministic_objective=det)
            gp = fit_gp(X, y, settings)
            loc, scale, dloc, dscale = gp.predict_and_grad(rng.random((4, 2)))
            ok = [np.all(np.isfinite(a)) for a in (loc, scale, dloc, dscale)]
            assert all(ok) and np.all(scale > 0), name
            assert np.isfinite(_evidence(gp)), name
            if det:
                assert gp.params.noise == MIN_NOISE, name


@pytest.mark.parametrize("n", [10, 30])  # two starts (n <= 16) and one (warm) start
def test_fit_computes_the_evidence_once_per_point(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """L-BFGS-B evaluates its start again and the fit re-evaluates its result: both come from
    the fit's memo, so no hyperparameter vector is computed twice, and the result is unchanged
    (the returned fit's objective is the best the optimizer saw)."""
    import optuna_gamma.gp.fit as fit_module

    seen: list[bytes] = []
    original = fit_module._evidence

    def counted(data: Any, params: GPHyperparams, *args: Any, **kwargs: Any) -> Any:
        seen.append(np.concatenate([params.inv_sq_lengthscales, [params.noise]]).tobytes())
        return original(data, params, *args, **kwargs)

    monkeypatch.setattr(fit_module, "_evidence", counted)
    X, y = _data(6, n=n)
    init = GPHyperparams(np.array([0.5, 2.0, 1.0]), 0.05)
    gp = fit_gp(X, y, is_categorical=CAT, init=init)
    assert len(seen) >= 4
    assert len(set(seen)) == len(seen)
    monkeypatch.setattr(fit_module, "_evidence", original)
    start = GaussianProcess(X, y, init, GPSettings(), is_categorical=CAT)
    assert _fit_objective(gp) >= _fit_objective(start)


def test_fit_deterministic_noise_and_bad_init() -> None:
    X, y = _data(9)
    gp = fit_gp(X, y, GPSettings(deterministic_objective=True), is_categorical=CAT)
    assert gp.params.noise == MIN_NOISE
    bad = GPHyperparams(np.array([np.nan, 1.0, 1.0]), 0.1)
    gp2 = fit_gp(X, y, is_categorical=CAT, init=bad)  # ignored, falls back to the default start
    assert np.all(np.isfinite(gp2.params.inv_sq_lengthscales))
    warm = fit_gp(X, y, is_categorical=CAT, init=gp2.params)
    assert _fit_objective(warm) >= _fit_objective(gp2) - 1e-6


def test_fit_keeps_the_noise_above_min_noise() -> None:
    """Noise-free data: the fit's noise goes to its lower bound, ``min_noise`` when raised;
    with ``deterministic_objective`` the noise is fixed there."""
    X, y = _data(9)
    assert fit_gp(X, y, GPSettings(), is_categorical=CAT).params.noise < 1e-3
    floor = GPSettings(min_noise=0.1)
    assert fit_gp(X, y, floor, is_categorical=CAT).params.noise >= 0.1
    assert GPHyperparams.default(3, floor).noise == pytest.approx(0.1)
    fixed = fit_gp(X, y, replace(floor, deterministic_objective=True), is_categorical=CAT)
    assert fixed.params.noise == 0.1


@pytest.mark.parametrize("mean", MEANS)
def test_leave_one_out_equals_the_gp_refitted_without_each_point(mean: Mean) -> None:
    """The closed form (Dubrule 1983; R&W eq. 5.12) against a GP conditioned on the other
    points with the same hyperparameters: the location, and the variance ratio of an
    observation (the latent's plus the noise). The worst mean is held at the full data's."""
    X, y = _data(4)
    settings = _settings(mean=mean)
    gp = GaussianProcess(X, y, PARAMS, settings, is_categorical=CAT)
    loc, scale = gp.leave_one_out()
    # A fixed mean m0 is a zero mean on y - m0.
    shift = float(np.min(y)) if mean == "worst" else 0.0
    others = replace(settings, mean="zero") if mean == "worst" else settings
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        other = GaussianProcess(X[keep], y[keep] - shift, PARAMS, others, is_categorical=CAT)
        loc_i, scale_i = other.predict(X[[i]])
        loc_i = loc_i + shift
        ratio = scale_i[0] ** 2 / other.variance_factor + PARAMS.noise
        assert loc[i] == pytest.approx(loc_i[0], rel=1e-9, abs=1e-9)
        assert scale[i] ** 2 / gp.variance_factor == pytest.approx(ratio, rel=1e-9)


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        ({"predictive": "cauchy"}, "'cauchy'"),
        ({"kernel": "matern32"}, "'matern32'"),
        ({"mean": "linear"}, "'linear'"),
        ({"lengthscale_prior": "gamma"}, "'gamma'"),
        ({"prior_shape": 0.0}, "0.0"),
        ({"prior_rate": -1.0}, "-1.0"),
        ({"prior_rate": math.inf}, "inf"),
        ({"prior_shape": "1"}, "'1'"),
        ({"deterministic_objective": 1}, "1"),
        ({"min_noise": 0.0}, "0.0"),
        ({"min_noise": 10.0}, "10.0"),
        ({"min_noise": math.nan}, "nan"),
        ({"min_noise": True}, "True"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, Any], bad: str) -> None:
    with pytest.raises(ValueError, match=f"{next(iter(kwargs))}.*{bad}"):
        GPSettings(**kwargs)


def test_settings_are_frozen_and_hashable() -> None:
    s = GPSettings()
    with pytest.raises(AttributeError):
        s.kernel = "rbf"  # type: ignore[misc]
    assert replace(s, kernel="rbf").kernel == "rbf" and hash(s) == hash(GPSettings())


def test_bad_input_raises_value_error() -> None:
    X, y = _data()
    with pytest.raises(ValueError, match="y must have shape"):
        fit_gp(X, y[:-1])
    with pytest.raises(ValueError, match="non-finite"):
        fit_gp(X, np.where(y > 0, np.nan, y))
    with pytest.raises(ValueError, match="at least one"):
        fit_gp(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="inv_sq_lengthscales"):
        log_marginal_likelihood(X, y, GPHyperparams(np.ones(2), 0.1))
    gp = fit_gp(X, y, is_categorical=CAT)
    with pytest.raises(ValueError, match="query points"):
        gp.predict(np.zeros((2, 2)))


@pytest.mark.parametrize("mask", [[False, False], [True, True], [True, False]])
def test_all_continuous_all_categorical_and_mixed(mask: list[bool]) -> None:
    rng = np.random.default_rng(10)
    cat = np.array(mask)
    X = rng.random((10, 2))
    X[:, cat] = rng.integers(0, 3, (10, int(cat.sum())))
    y = rng.standard_normal(10)
    gp = fit_gp(X, y, GPSettings(mean="zero"), is_categorical=cat)
    Xq = rng.random((5, 2))
    Xq[:, cat] = rng.integers(0, 3, (5, int(cat.sum())))
    loc, scale, dloc, dscale = gp.predict_and_grad(Xq)
    K = kernel_matrix(X, X, gp.params.inv_sq_lengthscales, is_categorical=cat)
    K += gp.params.noise * np.eye(10)
    Kq = kernel_matrix(Xq, X, gp.params.inv_sq_lengthscales, is_categorical=cat)
    assert np.allclose(loc, Kq @ np.linalg.solve(K, y))
    var = 1 - np.einsum("ij,ji->i", Kq, np.linalg.solve(K, Kq.T))
    assert np.allclose(scale, np.sqrt(gp.variance_factor * var))
    assert np.all(dloc[:, cat] == 0.0) and np.all(dscale[:, cat] == 0.0)
    if not cat.all():
        assert np.any(dloc[:, ~cat] != 0.0)


def test_limit_blas_threads_is_reentrant_and_restores() -> None:
    from threadpoolctl import threadpool_info
    from threadpoolctl import threadpool_limits

    from optuna_gamma.gp.threads import limit_blas_threads

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(2, user_api="blas"):  # a known outer state, even on a 1-core box
        before = blas_threads()
        assert before and set(before) == {2}
        with limit_blas_threads():
            with limit_blas_threads():
                assert set(blas_threads()) == {1}
            assert set(blas_threads()) == {1}  # the inner exit does not restore early
        assert blas_threads() == before


def test_limit_blas_threads_covers_scipys_blas_when_it_is_first(tmp_path: Path) -> None:
    """A fresh process whose first limit comes before scipy.linalg is loaded: SciPy's own
    OpenBLAS (a second library beside NumPy's in the wheels) is limited too."""
    script = """
import json
from threadpoolctl import threadpool_info, threadpool_limits
from optuna_gamma.gp.threads import limit_blas_threads
with limit_blas_threads():
    pass
import scipy.linalg
threadpool_limits(2, user_api="blas")  # a known outer state for every BLAS library loaded
with limit_blas_threads():
    inside = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
print(json.dumps([inside, after]))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    inside, after = json.loads(proc.stdout)
    assert inside and set(inside) == {1}
    assert set(after) == {2}


def test_predict_in_blocks_and_empty_query(monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna_gamma.gp.model as model

    X, y = _data(11)
    gp = GaussianProcess(X, y, PARAMS, is_categorical=CAT)
    rng = np.random.default_rng(12)
    Xq = rng.random((50, 3))
    Xq[:, 2] = rng.integers(0, 3, 50)
    loc, scale = gp.predict(Xq)
    monkeypatch.setattr(model, "_MAX_BLOCK_ENTRIES", 7 * len(X))  # blocks of 7 rows
    loc_b, scale_b = gp.predict(Xq)
    # Other block sizes may take other BLAS kernels (another summation order): each entry then
    # moves by up to n * eps * sum|k_i alpha_i| (~1e-13 here), so compare at 1e-11, not bit-wise.
    assert np.allclose(loc, loc_b, rtol=1e-11, atol=1e-11)
    assert np.allclose(scale, scale_b, rtol=1e-11, atol=1e-11)
    loc0, scale0 = gp.predict(np.zeros((0, 3)))
    assert loc0.shape == scale0.shape == (0,)


@pytest.mark.parametrize("mean", MEANS)
def test_student_t_evidence_profiles_out_the_amplitude(mean: Mean) -> None:
    """As a0, b0 -> 0 the Student-t evidence equals the Gaussian evidence at the maximum-likelihood
    amplitude A*(theta) = Q / n' up to a theta-independent constant, and b_n / a_n = A*: the Gamma
    posterior plays the role of the amplitude GPSampler fits (no amplitude is missing)."""
    X, y = _data(8, n=15)
    a0 = b0 = 1e-10
    rng = np.random.default_rng(3)
    diffs = []
    n_eff = len(y) - (mean == "constant")
    for _ in range(5):
        params = GPHyperparams(
            np.exp(rng.uniform(-2.0, 2.0, 3)), float(np.exp(rng.uniform(-6, -1)))
        )
        K = _dense_K(X, params, "matern52")
        gp = GaussianProcess(
            X,
            y,
            params,
            GPSettings(prior_shape=a0, prior_rate=b0, mean=mean),
            is_categorical=CAT,
        )
        r = y - gp.mean
        amp = float(r @ np.linalg.solve(K, r)) / n_eff
        lml_t = log_marginal_likelihood(
            X,
            y,
            params,
            GPSettings(prior_shape=a0, prior_rate=b0, mean=mean),
            is_categorical=CAT,
        )
        lml_g = log_marginal_likelihood(
            X,
            y,
            GPHyperparams(params.inv_sq_lengthscales, params.noise, amp),
            GPSettings(predictive="gaussian", mean=mean),
            is_categorical=CAT,
        )
        diffs.append(lml_t - lml_g)
        assert gp.variance_factor == pytest.approx(amp, rel=1e-6)
    # The constant: lgamma(n'/2) - lgamma(a0) + a0 log b0 + n'/2 + (n'/2) log(2/n'), a0 = b0 -> 0.
    const = (
        math.lgamma(n_eff / 2)
        - math.lgamma(a0)
        + a0 * math.log(b0)
        + n_eff / 2
        + (n_eff / 2) * math.log(2 / n_eff)
    )
    assert np.allclose(diffs, const, rtol=0, atol=1e-5)
