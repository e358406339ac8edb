"""Gamma-conjugate GP: evidence vs dense densities, gradients vs finite differences, predictive
closed forms and Monte Carlo, the Gaussian limit, and the robustness of the fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from optuna_gamma.gp import (
    MIN_NOISE,
    GaussianProcess,
    GPHyperparams,
    fit_gp,
    kernel_matrix,
    log_marginal_likelihood,
    log_marginal_likelihood_and_grad,
)
from optuna_gamma.gp.model import (
    hyperparams_from_vector,
    hyperparams_to_vector,
    log_prior,
    log_prior_and_grad,
)

CAT = np.array([False, False, True])
KERNELS = ["matern52", "rbf"]
MODES = ["student_t", "gaussian", "plugin"]
A0, B0 = 1.5, 0.7


def _data(seed: int = 0, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3))
    X[:, 2] = rng.integers(0, 3, n)
    X[n - 1] = X[2]  # duplicate row
    y = np.sin(5 * X[:, 0]) + X[:, 2] * 0.3 + 0.1 * rng.standard_normal(n)
    return X, (y - y.mean()) / y.std()


PARAMS = GPHyperparams(np.array([2.0, 0.5, 1.3]), 0.05, 1.7)


def _dense_K(X: np.ndarray, params: GPHyperparams, kernel: str) -> np.ndarray:
    K = kernel_matrix(X, X, params.inv_sq_lengthscales, kernel=kernel, is_categorical=CAT)  # type: ignore[arg-type]
    return K + params.noise * np.eye(len(X))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
def test_lml_equals_dense_density(kernel: str, predictive: str) -> None:
    X, y = _data()
    lml = log_marginal_likelihood(
        X, y, PARAMS, kernel=kernel, predictive=predictive, prior_shape=A0, prior_rate=B0,  # type: ignore[arg-type]
        is_categorical=CAT,
    )
    K = _dense_K(X, PARAMS, kernel)
    n = len(y)
    if predictive == "gaussian":
        ref = stats.multivariate_normal(np.zeros(n), PARAMS.amplitude * K).logpdf(y)
    else:
        # Integrating tau ~ Gamma(a0, b0) out of N(0, K / tau) gives a multivariate Student-t
        # with 2 a0 degrees of freedom and shape (b0 / a0) K.
        ref = stats.multivariate_t(np.zeros(n), (B0 / A0) * K, df=2 * A0).logpdf(y)
        # ... and it equals DESIGN.md's closed form term by term.
        a_n, b_n = A0 + n / 2, B0 + 0.5 * y @ np.linalg.solve(K, y)
        closed = (
            math.lgamma(a_n) - math.lgamma(A0) + A0 * math.log(B0) - a_n * math.log(b_n)
            - n / 2 * math.log(2 * math.pi) - 0.5 * np.linalg.slogdet(K)[1]
        )
        assert closed == pytest.approx(ref, rel=1e-10)
    assert lml == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
def test_lml_gradient_matches_finite_differences(kernel: str, predictive: str) -> None:
    X, y = _data(1)
    kw = dict(kernel=kernel, predictive=predictive, prior_shape=A0, prior_rate=B0, is_categorical=CAT)
    _, grad = log_marginal_likelihood_and_grad(X, y, PARAMS, **kw)  # type: ignore[arg-type]
    raw = hyperparams_to_vector(PARAMS, predictive)  # type: ignore[arg-type]
    assert grad.shape == raw.shape == (5 if predictive == "gaussian" else 4,)
    h = 1e-6
    for i in range(raw.size):
        e = np.zeros_like(raw)
        e[i] = h
        fp = log_marginal_likelihood(X, y, hyperparams_from_vector(raw + e, 3, predictive), **kw)  # type: ignore[arg-type]
        fm = log_marginal_likelihood(X, y, hyperparams_from_vector(raw - e, 3, predictive), **kw)  # type: ignore[arg-type]
        assert grad[i] == pytest.approx((fp - fm) / (2 * h), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("predictive", ["student_t", "gaussian"])
def test_log_prior_gradient(predictive: str) -> None:
    raw = hyperparams_to_vector(PARAMS, predictive)  # type: ignore[arg-type]
    _, grad = log_prior_and_grad(PARAMS, predictive)  # type: ignore[arg-type]
    for i in range(raw.size):
        e = np.zeros_like(raw)
        e[i] = 1e-6
        fp = log_prior(hyperparams_from_vector(raw + e, 3, predictive), predictive)  # type: ignore[arg-type]
        fm = log_prior(hyperparams_from_vector(raw - e, 3, predictive), predictive)  # type: ignore[arg-type]
        assert grad[i] == pytest.approx((fp - fm) / 2e-6, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
def test_predictive_matches_dense_closed_form(kernel: str, predictive: str) -> None:
    X, y = _data(2)
    gp = GaussianProcess(
        X, y, PARAMS, kernel=kernel, predictive=predictive, prior_shape=A0, prior_rate=B0,  # type: ignore[arg-type]
        is_categorical=CAT,
    )
    rng = np.random.default_rng(5)
    Xq = np.vstack([rng.random((6, 3)), X[:2]])
    Xq[:6, 2] = rng.integers(0, 3, 6)
    K = _dense_K(X, PARAMS, kernel)
    Kq = kernel_matrix(Xq, X, PARAMS.inv_sq_lengthscales, kernel=kernel, is_categorical=CAT)  # type: ignore[arg-type]
    Kinv = np.linalg.inv(K)
    loc_ref = Kq @ Kinv @ y
    var_ref = 1.0 - np.einsum("ij,jk,ik->i", Kq, Kinv, Kq)
    n = len(y)
    if predictive == "gaussian":
        factor, dof = PARAMS.amplitude, math.inf
    else:
        a_n, b_n = A0 + n / 2, B0 + 0.5 * y @ Kinv @ y
        assert gp.a_n == pytest.approx(a_n) and gp.b_n == pytest.approx(b_n)
        factor = b_n / a_n
        dof = 2 * a_n if predictive == "student_t" else math.inf
    assert gp.dof == dof
    loc, scale = gp.predict(Xq)
    assert np.allclose(loc, loc_ref, atol=1e-8)
    assert np.allclose(scale, np.sqrt(factor * var_ref), rtol=1e-6, atol=1e-9)
    assert np.all(scale > 0)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
def test_predict_and_grad_matches_finite_differences(kernel: str, predictive: str) -> None:
    X, y = _data(3)
    gp = GaussianProcess(X, y, PARAMS, kernel=kernel, predictive=predictive, is_categorical=CAT)  # type: ignore[arg-type]
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


def test_student_t_predictive_against_monte_carlo() -> None:
    """Sample tau from its *prior*, weight by the likelihood of y (importance sampling, which also
    checks the conjugate update), then f | tau, y; compare with Student-t(2 a_n, loc, scale)."""
    X, y = _data(4, n=5)
    params = GPHyperparams(np.array([3.0, 1.0, 0.5]), 0.02)
    a0, b0 = 2.0, 1.5
    gp = GaussianProcess(X, y, params, prior_shape=a0, prior_rate=b0, is_categorical=CAT)
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


def test_student_t_tends_to_gaussian_as_prior_shape_grows() -> None:
    from optuna_gamma.gp import expected_improvement

    X, y = _data(5)
    amp = 0.8
    rng = np.random.default_rng(1)
    Xq = rng.random((20, 3))
    Xq[:, 2] = rng.integers(0, 3, 20)
    g = GaussianProcess(X, y, GPHyperparams(PARAMS.inv_sq_lengthscales, PARAMS.noise, amp),
                        predictive="gaussian", is_categorical=CAT)
    loc_g, scale_g = g.predict(Xq)
    ei_g = expected_improvement(loc_g, scale_g, y.max())
    errs = []
    for a0 in (1e1, 1e2, 1e3, 1e4):
        t = GaussianProcess(X, y, PARAMS, predictive="student_t", prior_shape=a0,
                            prior_rate=a0 * amp, is_categorical=CAT)
        loc_t, scale_t = t.predict(Xq)
        assert np.allclose(loc_t, loc_g)
        ei_t = expected_improvement(loc_t, scale_t, y.max(), dof=t.dof)
        errs.append((np.max(np.abs(scale_t / scale_g - 1)), np.max(np.abs(ei_t - ei_g))))
    errs_arr = np.array(errs)
    assert np.all(np.diff(errs_arr, axis=0) < 0)  # monotone convergence
    assert errs_arr[-1, 0] < 1e-3 and errs_arr[-1, 1] < 1e-3


def _fit_objective(gp: GaussianProcess) -> float:
    return gp.log_marginal_likelihood() + log_prior(gp.params, gp.predictive)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("predictive", MODES)
def test_fit_improves_over_init(kernel: str, predictive: str) -> None:
    X, y = _data(6, n=20)
    init = GPHyperparams(np.array([0.01, 50.0, 0.2]), 0.5, 3.0)
    gp = fit_gp(X, y, kernel=kernel, predictive=predictive, is_categorical=CAT, init=init)  # type: ignore[arg-type]
    start = GaussianProcess(X, y, init, kernel=kernel, predictive=predictive, is_categorical=CAT)  # type: ignore[arg-type]
    assert _fit_objective(gp) > _fit_objective(start) + 1.0
    assert gp.log_marginal_likelihood() > start.log_marginal_likelihood()
    if predictive != "gaussian":
        assert gp.params.amplitude == 1.0


@pytest.mark.parametrize("predictive", ["student_t", "gaussian"])
def test_fit_recovers_lengthscale(predictive: str) -> None:
    """Data drawn from a known GP: x0 relevant (ell = 20), x1 irrelevant."""
    rng = np.random.default_rng(7)
    ells = []
    for _ in range(3):
        X = rng.random((60, 2))
        K = kernel_matrix(X, X, np.array([20.0, 1e-8])) + 1e-4 * np.eye(60)
        f = np.linalg.cholesky(K) @ rng.standard_normal(60)
        y = (f - f.mean()) / f.std()
        gp = fit_gp(X, y, predictive=predictive)  # type: ignore[arg-type]
        ells.append(gp.params.inv_sq_lengthscales)
    med = np.median(np.array(ells), axis=0)
    assert 20.0 / 4 < med[0] < 20.0 * 4
    assert med[1] < med[0] / 20


@pytest.mark.parametrize("predictive", MODES)
def test_fit_survives_degenerate_data(predictive: str) -> None:
    rng = np.random.default_rng(8)
    cases = {
        "n=1": (rng.random((1, 2)), np.zeros(1)),
        "constant": (rng.random((6, 2)), np.zeros(6)),
        "duplicates": (np.repeat(rng.random((3, 2)), 4, axis=0), np.repeat([-1.0, 0.2, 0.8], 4)),
        "duplicates, different y": (np.zeros((4, 2)), np.array([-1.0, 1.0, -1.0, 1.0])),
        "huge y": (rng.random((5, 2)), 1e8 * rng.standard_normal(5)),
    }
    for name, (X, y) in cases.items():
        for det in (False, True):
            gp = fit_gp(X, y, predictive=predictive, deterministic_objective=det)  # type: ignore[arg-type]
            loc, scale, dloc, dscale = gp.predict_and_grad(rng.random((4, 2)))
            ok = [np.all(np.isfinite(a)) for a in (loc, scale, dloc, dscale)]
            assert all(ok) and np.all(scale > 0), name
            assert np.isfinite(gp.log_marginal_likelihood()), name
            if det:
                assert gp.params.noise == MIN_NOISE, name


def test_fit_deterministic_noise_and_bad_init() -> None:
    X, y = _data(9)
    gp = fit_gp(X, y, is_categorical=CAT, deterministic_objective=True)
    assert gp.params.noise == MIN_NOISE
    bad = GPHyperparams(np.array([np.nan, 1.0, 1.0]), 0.1)
    gp2 = fit_gp(X, y, is_categorical=CAT, init=bad)  # ignored, falls back to the default start
    assert np.all(np.isfinite(gp2.params.inv_sq_lengthscales))
    warm = fit_gp(X, y, is_categorical=CAT, init=gp2.params)
    assert _fit_objective(warm) >= _fit_objective(gp2) - 1e-6


def test_bad_input_raises_value_error() -> None:
    X, y = _data()
    with pytest.raises(ValueError, match="predictive"):
        fit_gp(X, y, predictive="cauchy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prior_shape"):
        fit_gp(X, y, prior_shape=0.0)
    with pytest.raises(ValueError, match="prior_rate"):
        fit_gp(X, y, prior_rate=-1.0)
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
    gp = fit_gp(X, y, is_categorical=cat)
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
    from threadpoolctl import threadpool_info, threadpool_limits

    from optuna_gamma.gp import limit_blas_threads

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
    assert np.allclose(loc, loc_b, rtol=1e-12, atol=1e-14)
    assert np.allclose(scale, scale_b, rtol=1e-12, atol=1e-14)
    loc0, scale0 = gp.predict(np.zeros((0, 3)))
    assert loc0.shape == scale0.shape == (0,)


def test_student_t_evidence_profiles_out_the_amplitude() -> None:
    """As a0, b0 -> 0 the Student-t evidence equals the Gaussian evidence at the maximum-likelihood
    amplitude A*(theta) = y^T K^-1 y / n up to a theta-independent constant, and b_n / a_n = A*:
    the Gamma posterior plays the role of the amplitude GPSampler fits (no amplitude is missing)."""
    X, y = _data(8, n=15)
    a0 = b0 = 1e-10
    rng = np.random.default_rng(3)
    diffs = []
    for _ in range(5):
        params = GPHyperparams(np.exp(rng.uniform(-2.0, 2.0, 3)), float(np.exp(rng.uniform(-6, -1))))
        K = _dense_K(X, params, "matern52")
        amp = float(y @ np.linalg.solve(K, y)) / len(y)
        lml_t = log_marginal_likelihood(
            X, y, params, predictive="student_t", prior_shape=a0, prior_rate=b0, is_categorical=CAT
        )
        lml_g = log_marginal_likelihood(
            X, y, GPHyperparams(params.inv_sq_lengthscales, params.noise, amp),
            predictive="gaussian", is_categorical=CAT,
        )
        diffs.append(lml_t - lml_g)
        gp = GaussianProcess(X, y, params, predictive="student_t", prior_shape=a0, prior_rate=b0,
                             is_categorical=CAT)
        assert gp.variance_factor == pytest.approx(amp, rel=1e-6)
    # The constant: lgamma(n/2) - lgamma(a0) + a0 log b0 + n/2 + (n/2) log(2/n), a0 = b0 -> 0.
    n = len(y)
    const = (math.lgamma(n / 2) - math.lgamma(a0) + a0 * math.log(b0) + n / 2
             + (n / 2) * math.log(2 / n))
    assert np.allclose(diffs, const, rtol=0, atol=1e-5)
