"""EI / PI: Monte Carlo, stable logs in the far tail, gradients vs finite differences."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from optuna_gamma.gp import Acquisition
from optuna_gamma.gp import Feasibility
from optuna_gamma.gp import GaussianProcess
from optuna_gamma.gp import GPHyperparams
from optuna_gamma.gp import GPSettings
from optuna_gamma.gp.acquisition import _log_ei_and_grads
from optuna_gamma.gp.acquisition import _log_pi_and_grads
from optuna_gamma.gp.acquisition import expected_improvement
from optuna_gamma.gp.acquisition import log_expected_improvement
from optuna_gamma.gp.acquisition import log_probability_of_improvement
from optuna_gamma.gp.acquisition import probability_of_improvement


DOFS = [1.5, 3.0, 7.0, 40.0, 3000.0, math.inf]


@pytest.mark.parametrize("dof", [4.0, 9.0, math.inf])
def test_ei_and_pi_against_monte_carlo(dof: float) -> None:
    rng = np.random.default_rng(0)
    m = 1_000_000
    eps = rng.standard_normal(m) if math.isinf(dof) else rng.standard_t(dof, m)
    best, xi = 0.3, 0.05
    for loc, scale in [(0.0, 1.0), (0.5, 0.2), (-1.0, 0.7)]:
        f = loc + scale * eps
        imp = np.maximum(f - best - xi, 0.0)
        ei = expected_improvement(np.array([loc]), np.array([scale]), best, xi=xi, dof=dof)[0]
        assert abs(ei - imp.mean()) < 5 * imp.std() / math.sqrt(m)
        hit = f > best + xi
        pi = probability_of_improvement(np.array([loc]), np.array([scale]), best, xi=xi, dof=dof)[
            0
        ]
        assert abs(pi - hit.mean()) < 5 * math.sqrt(pi * (1 - pi) / m) + 1e-12


def test_student_t_ei_explores_more_than_gaussian() -> None:
    """Heavier tails: for a point below the incumbent (z < 0) Student-t EI and PI are larger."""
    loc, scale = np.array([-2.0, -5.0]), np.array([1.0, 1.0])
    for dof in (3.0, 10.0):
        assert np.all(
            expected_improvement(loc, scale, 0.0, dof=dof) > expected_improvement(loc, scale, 0.0)
        )
        assert np.all(
            probability_of_improvement(loc, scale, 0.0, dof=dof)
            > probability_of_improvement(loc, scale, 0.0)
        )


def test_gaussian_ei_closed_form_at_zero() -> None:
    # z = 0: EI = s * phi(0), PI = 1/2; Student-t: EI = s * nu / (nu - 1) * t_nu(0)
    assert expected_improvement(np.array([1.0]), np.array([2.0]), 1.0)[0] == pytest.approx(
        2 * stats.norm.pdf(0)
    )
    assert expected_improvement(np.array([1.0]), np.array([2.0]), 1.0, dof=5.0)[
        0
    ] == pytest.approx(2 * 5 / 4 * stats.t.pdf(0, 5))
    assert probability_of_improvement(np.array([1.0]), np.array([2.0]), 1.0, dof=5.0)[0] == 0.5


@pytest.mark.parametrize("dof", DOFS)
def test_logs_equal_log_of_plain_where_finite(dof: float) -> None:
    z = np.linspace(-30.0, 8.0, 400)
    scale = np.full_like(z, 0.7)
    loc = 0.2 + z * scale
    ei = expected_improvement(loc, scale, 0.2, dof=dof)
    pi = probability_of_improvement(loc, scale, 0.2, dof=dof)
    ok = ei > 1e-250
    assert ok.sum() > 100
    assert np.allclose(
        log_expected_improvement(loc, scale, 0.2, dof=dof)[ok],
        np.log(ei[ok]),
        rtol=1e-7,
        atol=1e-9,
    )
    ok = pi > 1e-250
    assert np.allclose(
        log_probability_of_improvement(loc, scale, 0.2, dof=dof)[ok],
        np.log(pi[ok]),
        rtol=1e-7,
        atol=1e-9,
    )


@pytest.mark.parametrize("dof", DOFS)
def test_logs_finite_and_monotone_far_in_the_tail(dof: float) -> None:
    z = -np.logspace(-2, 9, 300)[::-1]  # from -1e9 up to -0.01
    z = np.concatenate([z, np.linspace(0.0, 40.0, 50)])
    one = np.ones_like(z)
    for fn in (log_expected_improvement, log_probability_of_improvement):
        v = fn(z, one, 0.0, dof=dof)
        assert np.all(np.isfinite(v))
        assert np.all(np.diff(v[:300]) > 0), fn.__name__  # strictly increasing for z < 0
        assert np.all(np.diff(v) >= 0), fn.__name__  # log PI saturates at 0 for large z
    extreme = np.array([-1e300, -1e150, 1e150, 1e300])
    for grads_fn in (_log_ei_and_grads, _log_pi_and_grads):
        assert all(np.all(np.isfinite(a)) for a in grads_fn(extreme, np.ones(4), 0.0, 0.0, dof))
    if dof >= 1000:  # where plain EI underflows, the log still carries signal
        assert expected_improvement(np.array([-1e6]), np.array([1.0]), 0.0, dof=dof)[0] == 0.0


@pytest.mark.parametrize("dof", DOFS)
@pytest.mark.parametrize("z", [-3e5, -2000.0, -150.0, -30.0, -3.0, -0.5, 0.0, 0.7, 6.0])
def test_log_partials_match_finite_differences(dof: float, z: float) -> None:
    """d log EI / d loc and d log EI / d scale (and PI), also where EI itself underflows."""
    loc, scale = np.array([z * 0.9]), np.array([0.9])
    for fn in (_log_ei_and_grads, _log_pi_and_grads):
        v, d_loc, d_scale = fn(loc, scale, 0.0, 0.0, dof)
        h = 1e-6 * max(1.0, abs(loc[0]))
        fd_loc = (fn(loc + h, scale, 0.0, 0.0, dof)[0] - fn(loc - h, scale, 0.0, 0.0, dof)[0]) / (
            2 * h
        )
        hs = 1e-6 * scale[0]
        fd_s = (fn(loc, scale + hs, 0.0, 0.0, dof)[0] - fn(loc, scale - hs, 0.0, 0.0, dof)[0]) / (
            2 * hs
        )
        # finite differences of a value of size |v| carry an error of about eps*|v|/h
        tol = 1e-5 * max(1.0, abs(v[0]) * 1e-16 / h * 1e6)
        assert d_loc[0] == pytest.approx(fd_loc[0], rel=tol, abs=1e-8), fn.__name__
        assert d_scale[0] == pytest.approx(fd_s[0], rel=tol, abs=1e-8), fn.__name__


def _assert_gradient_matches_finite_differences(
    acq: Any, Xq: np.ndarray, grad: np.ndarray, columns: Any, h: float = 1e-6
) -> None:
    for j in columns:
        Xp, Xm = Xq.copy(), Xq.copy()
        Xp[:, j] += h
        Xm[:, j] -= h
        np.testing.assert_allclose(grad[:, j], (acq(Xp) - acq(Xm)) / (2 * h), rtol=1e-4, atol=1e-4)


def _gp(predictive: str) -> GaussianProcess:
    rng = np.random.default_rng(3)
    X = rng.random((15, 3))
    X[:, 2] = rng.integers(0, 4, 15)
    y = np.cos(4 * X[:, 0]) - X[:, 1] + 0.2 * X[:, 2]
    y = (y - y.mean()) / y.std()
    params = GPHyperparams(np.array([4.0, 2.0, 0.8]), 1e-3, 0.9)
    return GaussianProcess(
        X,
        y,
        params,
        GPSettings(predictive=predictive),  # type: ignore[arg-type]
        is_categorical=np.array([False, False, True]),
    )


@pytest.mark.parametrize("predictive", ["student_t", "gaussian", "plugin"])
@pytest.mark.parametrize("kind", ["ei", "pi"])
def test_acquisition_value_and_gradient(predictive: str, kind: str) -> None:
    gp = _gp(predictive)
    best = float(gp.y.max())
    acq = Acquisition(gp, kind=kind, best=best, xi=0.01)  # type: ignore[arg-type]
    rng = np.random.default_rng(4)
    Xq = rng.random((9, 3))
    Xq[:, 2] = rng.integers(0, 4, 9)
    Xq[0] = gp.X[int(np.argmin(gp.y))]  # on a bad observed point: EI tiny, log finite
    value, grad = acq.value_and_grad(Xq)
    assert value.shape == (9,) and grad.shape == (9, 3)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert np.allclose(value, acq(Xq))
    loc, scale = gp.predict(Xq)
    plain = (log_expected_improvement if kind == "ei" else log_probability_of_improvement)(
        loc, scale, best, xi=0.01, dof=gp.dof
    )
    assert np.allclose(value, plain)
    assert np.all(grad[:, 2] == 0.0)
    _assert_gradient_matches_finite_differences(acq, Xq, grad, columns=range(2))


def test_bad_input_raises_value_error() -> None:
    one = np.ones(1)
    with pytest.raises(ValueError, match="dof"):
        expected_improvement(one, one, 0.0, dof=1.0)
    with pytest.raises(ValueError, match="dof"):
        probability_of_improvement(one, one, 0.0, dof=0.0)
    with pytest.raises(ValueError, match="scale"):
        log_expected_improvement(one, np.zeros(1), 0.0)
    with pytest.raises(ValueError, match="best"):
        expected_improvement(one, one, math.nan)
    with pytest.raises(ValueError, match="kind"):
        Acquisition(_gp("student_t"), kind="ucb", best=0.0)  # type: ignore[arg-type]


def test_feasibility_terms_are_student_t_probabilities_with_gradients() -> None:
    """With constraints the log acquisition adds log P(g >= t) per constraint, the Student-t CDF
    of each constraint GP's own predictive (checked by Monte Carlo), and the gradient matches
    finite differences; with no feasible incumbent only the feasibility terms count."""
    gp = _gp("student_t")
    rng = np.random.default_rng(11)
    g1 = GaussianProcess(
        gp.X,
        gp.X[:, 0] - 0.5,
        GPHyperparams(np.array([2.0, 1.0, 1.0]), 1e-3),
        is_categorical=gp.is_categorical,
    )
    g2 = GaussianProcess(
        gp.X,
        np.sin(3 * gp.X[:, 1]),
        GPHyperparams(np.array([1.0, 3.0, 1.0]), 1e-2),
        GPSettings(predictive="gaussian"),
        is_categorical=gp.is_categorical,
    )
    cons = [Feasibility(g1, 0.1), Feasibility(g2, -0.2)]
    acq = Acquisition(gp, best=float(gp.y.max()), constraints=cons)
    Xq = rng.random((6, 3))
    Xq[:, 2] = rng.integers(0, 4, 6)
    value, grad = acq.value_and_grad(Xq)
    loc, scale = gp.predict(Xq)
    expected = log_expected_improvement(loc, scale, float(gp.y.max()), dof=gp.dof)
    m = 400_000
    for c in cons:
        cl, cs = c.gp.predict(Xq)
        p = probability_of_improvement(cl, cs, c.threshold, dof=c.gp.dof)
        eps = rng.standard_normal(m) if math.isinf(c.gp.dof) else rng.standard_t(c.gp.dof, m)
        for i in range(2):
            mc = np.mean(cl[i] + cs[i] * eps >= c.threshold)
            assert abs(mc - p[i]) < 5 * math.sqrt(p[i] * (1 - p[i]) / m) + 1e-9
        expected = expected + np.log(p)
    np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-9)
    _assert_gradient_matches_finite_differences(acq, Xq, grad, columns=range(2))
    only = Acquisition(gp, best=None, constraints=cons)
    np.testing.assert_allclose(
        only(Xq),
        expected - log_expected_improvement(loc, scale, float(gp.y.max()), dof=gp.dof),
        rtol=1e-9,
        atol=1e-9,
    )
    with pytest.raises(ValueError, match="None only when"):
        Acquisition(gp, best=None)


@pytest.mark.parametrize("predictive", ["student_t", "gaussian"])
def test_fantasy_acquisition_is_the_mean_ei_over_conditioned_gps(predictive: str) -> None:
    """Each draw's model equals a GP built from scratch on the observations plus that draw; the
    value is log of the mean EI over draws with the per-draw incumbent max(f*, max draw), and the
    gradient matches finite differences."""
    from optuna_gamma.gp.acquisition import FantasyAcquisition
    from optuna_gamma.gp.model import Fantasies

    gp = _gp(predictive)
    rng = np.random.default_rng(21)
    pending = rng.random((2, 3))
    pending[:, 2] = [1.0, 3.0]
    loc, cov = gp.joint_predict(pending)
    draws = loc + rng.standard_normal((5, 2)) @ np.linalg.cholesky(cov).T
    fant = Fantasies(gp, pending, draws)
    best = float(gp.y.max())
    acq = FantasyAcquisition(fant, best=best, draws=draws, xi=0.01)
    Xq = rng.random((7, 3))
    Xq[:, 2] = rng.integers(0, 4, 7)
    eis = []
    for s in range(5):
        ref = GaussianProcess(
            np.vstack([gp.X, pending]),
            np.concatenate([gp.y, draws[s]]),
            gp.params,
            gp.settings,
            is_categorical=gp.is_categorical,
        )
        l_ref, s_ref = ref.predict(Xq)
        l_f, s_f = fant.predict(Xq)
        # Extended factor against a fresh one: they round differently, by about
        # n * eps * cond(K) (17 points, noise 1e-3: cond(K) < 2e4, so ~1e-10); 1e-8 holds on
        # any BLAS.
        np.testing.assert_allclose(l_f[:, s], l_ref, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(s_f[:, s], s_ref, rtol=1e-8, atol=1e-8)
        eis.append(
            expected_improvement(l_ref, s_ref, max(best, draws[s].max()), xi=0.01, dof=ref.dof)
        )
    np.testing.assert_allclose(acq(Xq), np.log(np.mean(eis, axis=0)), rtol=1e-8)
    value, grad = acq.value_and_grad(Xq)
    # two code paths (with and without the gradient) over the same factor: a few roundings
    np.testing.assert_allclose(value, acq(Xq), rtol=1e-10, atol=1e-12)
    assert np.all(grad[:, 2] == 0.0)
    _assert_gradient_matches_finite_differences(acq, Xq, grad, columns=range(2))


def test_fantasy_draws_follow_the_joint_student_t_predictive() -> None:
    """The sampler's quasi-random draws at pending points have the joint predictive's mean and
    covariance (a multivariate t with dof nu has covariance nu / (nu - 2) times its scale)."""
    from optuna_gamma.samplers._parallel import fantasy_draws

    gp = _gp("student_t")
    rng = np.random.default_rng(5)
    pending = rng.random((3, 3))
    pending[:, 2] = 0.0
    loc, scale_matrix = gp.joint_predict(pending)
    draws = fantasy_draws(gp, pending, np.random.default_rng(0), 2**14)
    nu = gp.dof
    np.testing.assert_allclose(
        draws.mean(axis=0), loc, atol=0.02 * np.sqrt(np.diag(scale_matrix)).max()
    )
    np.testing.assert_allclose(np.cov(draws.T), nu / (nu - 2) * scale_matrix, rtol=0.05, atol=1e-3)
