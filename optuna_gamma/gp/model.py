"""The conditioned GP and its predictive: a GP whose output precision has a Gamma conjugate prior.

Model (``docs/design.md`` §2, thesis eqs. 14-15; Shah, Wilson & Ghahramani 2014,
"Student-t processes as alternatives to Gaussian processes"): with a unit-amplitude kernel
:math:`k_\\theta` (:mod:`optuna_gamma.gp.kernels`) and noise-to-signal ratio :math:`\\eta^2`,

.. math::

    K = K_\\theta + \\eta^2 I, \\qquad y \\mid m, \\tau \\sim N(m \\mathbf 1, K / \\tau), \\qquad
    \\tau \\sim \\mathrm{Gamma}(a_0, b_0) \\ \\text{(shape, rate)}.

The mean ``m`` is 0 (``GPSettings.mean = "zero"``), the worst observation (``"worst"``, below)
or an unknown constant with a flat prior (``"constant"``, the default), integrated out exactly
(Bayesian kriging with a constant trend: O'Hagan 1978, "Curve fitting and optimal design for
prediction"; Santner, Williams & Notz 2003, sec. 4.1). With :math:`\\beta = K^{-1}\\mathbf 1`,
:math:`c = \\mathbf 1^\\top K^{-1}\\mathbf 1`,
the generalized-least-squares mean :math:`\\hat m = \\mathbf 1^\\top K^{-1} y / c`, residuals
:math:`r = y - \\hat m \\mathbf 1`, :math:`\\alpha = K^{-1} r`, :math:`Q = r^\\top K^{-1} r` and
:math:`n' = n - 1` (``"zero"``: :math:`\\hat m = 0`, :math:`n' = n`, no :math:`c` terms),
conjugacy gives :math:`\\tau \\mid y \\sim \\mathrm{Gamma}(a_n, b_n)`,
:math:`a_n = a_0 + n'/2`, :math:`b_n = b_0 + Q/2`, and the latent :math:`f(x)` is Student-t with
:math:`\\nu = 2 a_n` degrees of freedom,

.. math::

    \\mu(x) = \\hat m + k_x^\\top \\alpha, \\qquad
    s^2(x) = \\frac{b_n}{a_n}\\Big(1 - k_x^\\top K^{-1} k_x
             + \\frac{(1 - k_x^\\top \\beta)^2}{c}\\Big),

the last term being the uncertainty of the mean. Why a constant mean: with a zero mean at the
average of the standardized observations, the model predicts that average far from the data;
when good values are rare (a narrow basin, e.g. Hartmann-6) that average is better than most
observations, so EI sends the search to the corners of the box. The GLS mean weighs clustered
observations (those around the incumbent) less, so far from the data the model predicts about the
typical value of the space (Hartmann-6, 10 seeds x 50 trials: median final regret 0.12 -> 0.001).

``"worst"`` fixes the mean at the smallest observation, :math:`m_0 = \\min_i y_i` (``y`` is
larger-is-better), and conditions :math:`y - m_0` as the zero mean does (:math:`\\hat m = m_0`,
:math:`n' = n`, no :math:`c` terms): far from the data the model predicts the worst value seen,
so expected improvement comes only from the predictive scale there and the search stays nearer
the good observations (De Ath, Fieldsend & Everson 2020, "What do you mean? The role of the mean
function in Bayesian optimisation", GECCO: the worst observed value as the constant mean
converged fastest of the eight mean functions compared). Like the GLS mean it depends on the
data, so the hyperparameters are fitted with it held fixed (empirical Bayes).

Predictive modes (:attr:`GPSettings.predictive <optuna_gamma.gp.settings.GPSettings>`):

* ``"student_t"``: the Student-t above (``dof = 2 a_n``).
* ``"plugin"``: same location and scale, used as a Gaussian (``dof = inf``): the Gamma
  posterior-mean variance :math:`b_n / a_n` plugged in (the thesis's literal procedure).
* ``"gaussian"``: a plain GP, :math:`y \\sim N(m\\mathbf 1, A K)` with a fitted amplitude
  :math:`A` (Rasmussen & Williams 2006, eqs. 2.25-2.26); :math:`s^2 = A(\\dots)`.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from optuna_gamma.gp import _linalg
from optuna_gamma.gp.kernels import categorical_mask
from optuna_gamma.gp.kernels import kernel_and_derivative
from optuna_gamma.gp.kernels import kernel_from_sqdist
from optuna_gamma.gp.kernels import kernel_matrix
from optuna_gamma.gp.settings import GPHyperparams
from optuna_gamma.gp.settings import GPSettings
from optuna_gamma.gp.threads import limit_blas_threads


# Floor of the posterior variance ratio (keeps the predictive scale positive).
_MIN_VAR = 1e-12
# Work arrays of predict() hold at most this many entries (32 MiB of float64).
_MAX_BLOCK_ENTRIES = 1 << 22


def check_data(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float copies of ``X (n, d)`` and ``y (n,)`` (``ValueError`` naming the fault)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n, d), got shape {X.shape}.")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}.")
    if X.shape[0] == 0:
        raise ValueError("at least one observation is needed, got X with 0 rows.")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains non-finite values.")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains non-finite values.")
    return X, y


@dataclass(frozen=True)
class Conditioning:
    """``y`` conditioned on ``K`` (shared by the evidence and the predictive).

    Attributes:
        L: Lower Cholesky factor of ``K + jitter I``.
        jitter: Diagonal jitter the factorization needed (usually 0).
        alpha: :math:`K^{-1}(y - \\hat m \\mathbf 1)`.
        beta: :math:`K^{-1}\\mathbf 1` (``None`` for a fixed mean: zero or the worst).
        beta_sum: :math:`c = \\mathbf 1^\\top K^{-1}\\mathbf 1` (1 for a fixed mean).
        mean: :math:`\\hat m` (0 for the zero mean, :math:`\\min_i y_i` for the worst).
        quad: :math:`Q = (y - \\hat m)^\\top K^{-1}(y - \\hat m) \\ge 0`.
        n_eff: :math:`n' = n - 1` (constant mean) or ``n``.
    """

    L: np.ndarray
    jitter: float
    alpha: np.ndarray
    beta: np.ndarray | None
    beta_sum: float
    mean: float
    quad: float
    n_eff: int

    @classmethod
    def of(cls, K: np.ndarray, y: np.ndarray, settings: GPSettings) -> Conditioning:
        """Factorize ``K`` (with jitter if needed) and condition ``y`` on it."""
        L, jitter = _linalg.robust_cholesky(K)
        return cls.from_factor(L, jitter, y, settings)

    @classmethod
    def from_factor(
        cls, L: np.ndarray, jitter: float, y: np.ndarray, settings: GPSettings
    ) -> Conditioning:
        """Condition ``y`` on the factor ``L`` of ``K``."""
        n = y.shape[0]
        if settings.mean != "constant":
            shift = float(y.min()) if settings.mean == "worst" else 0.0
            r = y - shift
            alpha = _linalg.cho_solve(L, r)
            return cls(L, jitter, alpha, None, 1.0, shift, max(float(r @ alpha), 0.0), n)
        alpha = _linalg.cho_solve(L, y)
        beta = _linalg.cho_solve(L, np.ones(n))
        beta_sum = float(beta.sum())
        mean = float(alpha.sum()) / beta_sum
        alpha = alpha - mean * beta
        quad = max(float((y - mean) @ alpha), 0.0)
        return cls(L, jitter, alpha, beta, beta_sum, mean, quad, n - 1)

    @property
    def logdet(self) -> float:
        """:math:`\\log|K|`."""
        return 2.0 * float(np.log(np.diag(self.L)).sum())


@dataclass(frozen=True)
class OutputScale:
    """The Gamma posterior of the precision and what the predictive takes from it.

    Attributes:
        a_n: :math:`a_0 + n'/2` (``nan`` in ``"gaussian"`` mode).
        b_n: :math:`b_0 + Q/2` (``nan`` in ``"gaussian"`` mode).
        variance_factor: :math:`b_n / a_n`, or the amplitude in ``"gaussian"`` mode.
        dof: :math:`2 a_n` for ``"student_t"``, ``inf`` otherwise.
    """

    a_n: float
    b_n: float
    variance_factor: float
    dof: float

    @classmethod
    def of(cls, cond: Conditioning, params: GPHyperparams, settings: GPSettings) -> OutputScale:
        if settings.predictive == "gaussian":
            return cls(math.nan, math.nan, float(params.amplitude), math.inf)
        a_n = settings.prior_shape + 0.5 * cond.n_eff
        b_n = settings.prior_rate + 0.5 * cond.quad
        dof = 2.0 * a_n if settings.predictive == "student_t" else math.inf
        return cls(a_n, b_n, b_n / a_n, dof)


class GaussianProcess:
    """A GP conditioned on data, with cached factors for fast predictions.

    Build it with :func:`~optuna_gamma.gp.fit.fit_gp`, or directly from given hyperparameters
    (e.g. to condition on extra "fantasy" observations with the hyperparameters of a fit, see
    :meth:`with_observations`).

    Args:
        X: Training inputs ``(n, d)`` in the unit cube (categorical dims: category index).
        y: Training outputs ``(n,)`` (standardized), larger is better.
        params: Hyperparameters (``params.amplitude`` is used in ``"gaussian"`` mode only).
        settings: The model's settings.
        is_categorical: Boolean mask ``(d,)``; categorical dimensions use the Hamming distance.

    Attributes:
        X, y, params, settings, is_categorical: As given (validated).
        mean: The (GLS) constant mean :math:`\\hat m`, 0 for the zero mean.
        a_n, b_n, dof, variance_factor: See :class:`OutputScale`.
        jitter: Extra diagonal jitter the Cholesky factorization needed (usually 0).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        params: GPHyperparams,
        settings: GPSettings | None = None,
        *,
        is_categorical: np.ndarray | None = None,
        _factor: tuple[np.ndarray, float, np.ndarray | None] | None = None,
    ) -> None:
        self.settings = GPSettings() if settings is None else settings
        self.X, self.y = check_data(X, y)
        n, d = self.X.shape
        params.check(d)
        self.params = params
        self.is_categorical = categorical_mask(is_categorical, d)
        ell = np.asarray(params.inv_sq_lengthscales, dtype=float)
        cont = ~self.is_categorical
        self._all_cont = bool(cont.all())
        self._cont_idx = np.flatnonzero(cont)
        self._cat_idx = np.flatnonzero(self.is_categorical)
        self._cat_ell = ell[self._cat_idx]
        self._w = np.sqrt(ell[cont])
        self._two_ell = 2.0 * ell[cont]
        self._Xc = self.X[:, cont]
        self._A = self._Xc * self._w
        self._A_sq = (self._A * self._A).sum(axis=1)
        with limit_blas_threads():
            if _factor is None:
                K = self.kernel(self.X)
                K[np.diag_indices(n)] += params.noise
                self._cond = Conditioning.of(K, self.y, self.settings)
            else:
                self._cond = Conditioning.from_factor(
                    _factor[0], _factor[1], self.y, self.settings
                )
        scale = OutputScale.of(self._cond, params, self.settings)
        self.a_n, self.b_n = scale.a_n, scale.b_n
        self.dof, self.variance_factor = scale.dof, scale.variance_factor
        self.mean = self._cond.mean
        self.jitter = self._cond.jitter
        self._L_inv_T: np.ndarray | None = None if _factor is None else _factor[2]

    # -- kernels against the training points -------------------------------------------------

    def _sqdist(self, Xq: np.ndarray) -> np.ndarray:
        """Scaled squared distances ``(m, n)`` from ``Xq`` to the training points."""
        if self._cont_idx.size:
            B = (Xq if self._all_cont else Xq[:, self._cont_idx]) * self._w
            sqd = (B * B).sum(axis=1)[:, None] + self._A_sq - 2.0 * (B @ self._A.T)
            np.maximum(sqd, 0.0, out=sqd)
        else:
            sqd = np.zeros((Xq.shape[0], self.X.shape[0]))
        for j, e in zip(self._cat_idx, self._cat_ell):
            sqd += e * (Xq[:, j, None] != self.X[None, :, j])
        return sqd

    def kernel(self, Xq: np.ndarray) -> np.ndarray:
        """Unit-amplitude kernel matrix ``(m, n)`` between ``Xq`` and the training points."""
        return kernel_from_sqdist(self._sqdist(Xq), self.settings.kernel)

    def _check_query(self, Xq: np.ndarray) -> np.ndarray:
        Xq = np.asarray(Xq, dtype=float)
        if Xq.ndim != 2 or Xq.shape[1] != self.X.shape[1]:
            raise ValueError(
                f"query points must have shape (m, {self.X.shape[1]}), got {Xq.shape}."
            )
        return Xq

    @property
    def _linv_t(self) -> np.ndarray:
        """:math:`L^{-T}`, computed on first use (the evidence alone never needs it)."""
        if self._L_inv_T is None:
            self._L_inv_T = np.ascontiguousarray(_linalg.triangular_inverse(self._cond.L).T)
        return self._L_inv_T

    # -- predictive ----------------------------------------------------------------------------

    def _variance_ratio(self, Kq: np.ndarray, U: np.ndarray) -> np.ndarray:
        """``1 - |L^{-1} k|^2 (+ (1 - k^T beta)^2 / c)``, unfloored."""
        var = 1.0 - (U * U).sum(axis=1)
        if self._cond.beta is not None:
            var += (1.0 - Kq @ self._cond.beta) ** 2 / self._cond.beta_sum
        return var

    @limit_blas_threads()
    def predict(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive location and scale of the latent :math:`f` at ``Xq`` ``(m, d)``.

        Two matrix products per block of query points (blocks keep the ``(m, n)`` work arrays
        small), with the cached :math:`\\alpha` and :math:`L^{-1}`.
        """
        Xq = self._check_query(Xq)
        m, n = Xq.shape[0], self.X.shape[0]
        block = max(1, _MAX_BLOCK_ENTRIES // max(n, 1))
        loc = np.empty(m)
        var = np.empty(m)
        for start in range(0, m, block):
            rows = slice(start, start + block)
            Kq = self.kernel(Xq[rows])
            loc[rows] = self.mean + Kq @ self._cond.alpha
            var[rows] = self._variance_ratio(Kq, Kq @ self._linv_t)
        np.maximum(var, _MIN_VAR, out=var)
        return loc, np.sqrt(self.variance_factor * var)

    @limit_blas_threads()
    def predict_and_grad(
        self, Xq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Location, scale and their gradients w.r.t. ``Xq``.

        With :math:`G_{ij} = \\partial k / \\partial s` at :math:`s = r^2(x_i, x_j)` and
        :math:`\\partial s_{ij} / \\partial x_{id} = 2 \\ell_d (x_{id} - x_{jd})` (continuous
        dims), :math:`\\nabla \\mu = \\sum_j \\alpha_j G_{ij} \\nabla s_{ij}` and
        :math:`\\nabla \\mathrm{var} = -2 \\sum_j w_{ij} G_{ij} \\nabla s_{ij}` with
        :math:`w = K^{-1} k_x + \\beta (1 - \\beta^\\top k_x) / c`; categorical columns of the
        gradients are zero.

        Returns:
            ``(loc (m,), scale (m,), dloc_dX (m, d), dscale_dX (m, d))``.
        """
        Xq = self._check_query(Xq)
        m, d = Xq.shape
        Kq, G = kernel_and_derivative(self._sqdist(Xq), self.settings.kernel)
        loc = self.mean + Kq @ self._cond.alpha
        U = Kq @ self._linv_t  # rows: L^{-1} k
        raw_var = self._variance_ratio(Kq, U)
        clipped = raw_var <= _MIN_VAR
        var = np.where(clipped, _MIN_VAR, raw_var)
        scale = np.sqrt(self.variance_factor * var)
        if not self._all_cont:
            dloc = np.zeros((m, d))
            dscale = np.zeros((m, d))
        if self._cont_idx.size:
            V = U @ self._linv_t.T  # rows: K^{-1} k
            if self._cond.beta is not None:
                resid = (1.0 - Kq @ self._cond.beta) / self._cond.beta_sum
                V = V + resid[:, None] * self._cond.beta[None, :]
            Xqc = Xq if self._all_cont else Xq[:, self._cont_idx]
            A1 = G * self._cond.alpha
            g_loc = self._two_ell * (Xqc * A1.sum(axis=1)[:, None] - A1 @ self._Xc)
            A2 = G * V
            dvar = -2.0 * self._two_ell * (Xqc * A2.sum(axis=1)[:, None] - A2 @ self._Xc)
            coef = np.where(clipped, 0.0, 0.5 * self.variance_factor / scale)
            g_scale = coef[:, None] * dvar
            if self._all_cont:
                dloc, dscale = g_loc, g_scale
            else:
                dloc[:, self._cont_idx] = g_loc
                dscale[:, self._cont_idx] = g_scale
        return loc, scale, dloc, dscale

    @limit_blas_threads()
    def joint_predict(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint predictive location ``(m,)`` and scale matrix ``(m, m)`` of :math:`f(X_q)`.

        The scale matrix is ``variance_factor * C`` with the posterior correlation
        :math:`C = K_{qq} - K_{qX} K^{-1} K_{Xq} + u u^\\top / c`, :math:`u = 1 - K_{qX}\\beta`;
        with ``dof`` degrees of freedom it is a multivariate Student-t (Gaussian if infinite).
        """
        Xq = self._check_query(Xq)
        Kq = self.kernel(Xq)
        loc = self.mean + Kq @ self._cond.alpha
        U = Kq @ self._linv_t
        C = self._query_kernel(Xq) - U @ U.T
        if self._cond.beta is not None:
            u = 1.0 - Kq @ self._cond.beta
            C += np.outer(u, u) / self._cond.beta_sum
        C = 0.5 * (C + C.T)
        return loc, self.variance_factor * C

    def _query_kernel(self, Xq: np.ndarray) -> np.ndarray:
        """Unit-amplitude kernel matrix ``(m, m)`` among the query points."""
        return kernel_matrix(
            Xq,
            Xq,
            self.params.inv_sq_lengthscales,
            kernel=self.settings.kernel,
            is_categorical=self.is_categorical,
        )

    def leave_one_out(self) -> tuple[np.ndarray, np.ndarray]:
        """Location and scale of each training output predicted from all the others.

        Closed form, with these hyperparameters and output scale (no refit): with
        :math:`P = K^{-1} - \\beta\\beta^\\top / c` (:math:`K^{-1}` for the zero mean), the
        prediction of :math:`y_i` from the other outputs, the constant mean integrated out
        again, has location :math:`y_i - (P y)_i / P_{ii} = y_i - \\alpha_i / P_{ii}` and
        variance ratio :math:`1 / P_{ii}` (an observation's, the noise included): Rasmussen &
        Williams 2006, eq. 5.12, for the zero mean; Dubrule 1983, "Cross validation of kriging
        in a unique neighborhood", with the unknown mean. The worst mean stays the full data's
        (:math:`\\min_i y_i`, not that of the other points).

        Returns:
            ``(loc (n,), scale (n,))``, ``scale = sqrt(variance_factor / P_ii)``.
        """
        p_diag = (self._linv_t * self._linv_t).sum(axis=1)  # (K^{-1})_ii
        if self._cond.beta is not None:
            p_diag = p_diag - self._cond.beta**2 / self._cond.beta_sum
        p_diag = np.maximum(p_diag, np.finfo(float).tiny)
        return self.y - self._cond.alpha / p_diag, np.sqrt(self.variance_factor / p_diag)

    def with_observations(self, X_new: np.ndarray, y_new: np.ndarray) -> GaussianProcess:
        """This GP's hyperparameters conditioned on the training data plus ``(X_new, y_new)``.

        The Cholesky factor is extended in :math:`O(n^2 p)` instead of refactorized (used for
        the pending points of parallel workers).
        """
        y_new = np.atleast_1d(np.asarray(y_new, dtype=float))
        return self.extended(X_new, np.concatenate([self.y, y_new]))

    def extended(self, X_new: np.ndarray, y: np.ndarray) -> GaussianProcess:
        """A GP with these hyperparameters on the inputs ``X`` plus ``X_new`` and the outputs
        ``y`` (all ``n + p`` of them, which may differ from this GP's, e.g. re-standardized).

        The kernel matrix depends on the inputs and hyperparameters only, so its Cholesky factor
        (and :math:`L^{-1}`, if computed) is extended in :math:`O(n^2 p)` instead of being
        refactorized in :math:`O(n^3)`: block :math:`L_{21} = K_{21} L_{11}^{-T}`,
        :math:`L_{22} = \\mathrm{chol}(K_{22} - L_{21} L_{21}^\\top)`, and
        :math:`(L^{-1})_{21} = -L_{22}^{-1} L_{21} L_{11}^{-1}`.
        """
        X_new = np.atleast_2d(np.asarray(X_new, dtype=float)).reshape(-1, self.X.shape[1])
        X_all = np.vstack([self.X, X_new])
        if len(X_new) == 0:
            return GaussianProcess(
                X_all,
                y,
                self.params,
                self.settings,
                is_categorical=self.is_categorical,
                _factor=(self._cond.L, self._cond.jitter, self._L_inv_T),
            )
        factor: tuple[np.ndarray, float, np.ndarray | None] | None
        with limit_blas_threads():
            K21 = self.kernel(X_new)
            K22 = self._query_kernel(X_new)
            K22[np.diag_indices(len(X_new))] += self.params.noise + self._cond.jitter
            try:
                L, L21, L22 = _linalg.extend_cholesky(self._cond.L, K21, K22)
            except np.linalg.LinAlgError:
                factor = None
            else:
                linv_t = None
                if self._L_inv_T is not None:
                    n, p = self.X.shape[0], len(X_new)
                    A = self._L_inv_T.T  # L11^{-1}
                    L22_inv = _linalg.triangular_inverse(L22)
                    L_inv = np.zeros((n + p, n + p))
                    L_inv[:n, :n] = A
                    L_inv[n:, :n] = -L22_inv @ (L21 @ A)
                    L_inv[n:, n:] = L22_inv
                    linv_t = np.ascontiguousarray(L_inv.T)
                factor = (L, self._cond.jitter, linv_t)
        return GaussianProcess(
            X_all,
            y,
            self.params,
            self.settings,
            is_categorical=self.is_categorical,
            _factor=factor,
        )


class Fantasies:
    """A GP conditioned, with its own hyperparameters, on each of ``S`` joint draws of the latent
    function at pending points (Snoek, Larochelle & Adams 2012, "Practical Bayesian optimization
    of machine learning algorithms", sec. 3.3).

    All draws share the augmented inputs, so one Cholesky factor (extended from the GP's) and the
    predictive correlation serve every draw; each draw has its own mean, residuals and Gamma
    posterior :math:`b_n` (the Student-t conditioning on a draw is exact: conditioning a
    multivariate t on some coordinates gives a t with :math:`p` more degrees of freedom).

    Args:
        gp: The GP fitted on the observations.
        X_pending: Pending points ``(p, d)``.
        draws: Values of :math:`f` at the pending points, ``(S, p)``.
    """

    def __init__(self, gp: GaussianProcess, X_pending: np.ndarray, draws: np.ndarray) -> None:
        draws = np.atleast_2d(np.asarray(draws, dtype=float))
        self.base = gp.with_observations(X_pending, draws[0])
        self.n_draws = draws.shape[0]
        cond = self.base._cond
        y_all = np.concatenate([np.repeat(gp.y[None, :], self.n_draws, axis=0), draws], axis=1)
        conds = [Conditioning.from_factor(cond.L, cond.jitter, y, gp.settings) for y in y_all]
        scales = [OutputScale.of(c, gp.params, gp.settings) for c in conds]
        self.alphas = np.stack([c.alpha for c in conds], axis=1)  # (n + p, S)
        self.means = np.array([c.mean for c in conds])  # (S,)
        self.variance_factors = np.array([s.variance_factor for s in scales])  # (S,)
        self.dof = scales[0].dof

    @limit_blas_threads()
    def predict(self, Xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Locations and scales ``(m, S)`` of :math:`f(X_q)` under each draw."""
        base = self.base
        Xq = base._check_query(Xq)
        Kq = base.kernel(Xq)
        var = np.maximum(base._variance_ratio(Kq, Kq @ base._linv_t), _MIN_VAR)
        loc = self.means[None, :] + Kq @ self.alphas
        return loc, np.sqrt(var[:, None] * self.variance_factors[None, :])

    @limit_blas_threads()
    def predict_and_grad(
        self, Xq: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(loc (m, S), scale (m, S), dloc (m, S, d), dscale (m, S, d))``."""
        base = self.base
        Xq = base._check_query(Xq)
        m, d = Xq.shape
        # the draws share the predictive correlation: its scale (and gradient) at unit factor
        unit = GaussianProcess.__new__(GaussianProcess)
        unit.__dict__.update(base.__dict__)
        unit.variance_factor = 1.0
        _, s1, _, ds1 = unit.predict_and_grad(Xq)
        Kq, G = kernel_and_derivative(base._sqdist(Xq), base.settings.kernel)
        loc = self.means[None, :] + Kq @ self.alphas
        root = np.sqrt(self.variance_factors)
        scale = s1[:, None] * root[None, :]
        dscale = ds1[:, None, :] * root[None, :, None]
        dloc = np.zeros((m, self.n_draws, d))
        if base._cont_idx.size:
            Xqc = Xq if base._all_cont else Xq[:, base._cont_idx]
            # d loc_s / dx = 2 ell (x sum_j G_j a_js - sum_j G_j a_js x_j)
            GA = G @ self.alphas  # (m, S)
            GX = np.einsum("mn,ns,nd->msd", G, self.alphas, base._Xc)  # (m, S, k)
            g = base._two_ell * (Xqc[:, None, :] * GA[:, :, None] - GX)
            if base._all_cont:
                dloc = g
            else:
                dloc[:, :, base._cont_idx] = g
        return loc, scale, dloc, dscale
