# generated from optuna_gamma/samplers/_observations.py by tools/sync_optunahub.py; do not edit
"""What the GP sees of a study: encoded parameters, standardized values, constraints.

Standardization works at any finite scale. Values are first divided by a power of two (exact)
so that the largest magnitude is below 2, then centred on their mean and divided by their
standard deviation. So objectives whose spread is below 1e-12, or whose values lie near 1e300
or 1.7e308, are standardized without overflow and without being taken for constant; only values
that are all equal are (the GP then sees zeros). Non-finite values are clipped to the range of
the finite ones, with a ``RuntimeWarning``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
import warnings

import numpy as np
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from ._search_space import SearchSpace


@dataclass(frozen=True)
class Standardization:
    """The affine map ``y = ((v / power - centre) - centre_low) / scale`` that
    :func:`standardize` applied: ``power`` is a power of two (so dividing by it is exact and
    cannot overflow), and the centre is kept as two floats (their sum is the mean to about twice
    the float precision, which matters when the spread is near the float spacing).
    """

    power: float
    centre: float
    centre_low: float
    scale: float

    def apply(self, values: np.ndarray | float) -> np.ndarray:
        v = np.asarray(values, dtype=float) / self.power
        return ((v - self.centre) - self.centre_low) / self.scale


def standardize(values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, Standardization]:
    """Robustly standardize finite-or-infinite values (module docstring).

    Returns:
        ``(y, transform)``: ``y`` has mean 0 and standard deviation 1 (all zeros if every value
        is equal), and ``transform.apply`` maps further values the same way.
    """
    v = np.array(values, dtype=float)
    finite = np.isfinite(v)
    if not finite.all():
        lo, hi = (v[finite].min(), v[finite].max()) if finite.any() else (0.0, 0.0)
        # One fixed text, so Python's warning filter says it once rather than at every trial.
        warnings.warn(
            "Non-finite objective values (inf) are clipped to the range of the finite values "
            "for the GP; the trials themselves are unchanged.",
            RuntimeWarning,
            stacklevel=3,
        )
        v = np.where(np.isposinf(v), hi, np.where(finite, v, lo))
    if v.size == 0:
        return v, Standardization(1.0, 0.0, 0.0, 1.0)
    peak = float(np.max(np.abs(v)))
    # 2**(e-1) <= peak < 2**e; dividing by 2**(e-1) is exact and cannot overflow (e <= 1024)
    power = 1.0 if peak == 0.0 else math.ldexp(1.0, math.frexp(peak)[1] - 1)
    u = v / power  # exact, |u| < 2
    centre = float(np.mean(u))
    d = u - centre
    # second pass: the mean of the residuals (small numbers, computed precisely) removes the
    # rounding error of the first mean, which matters when the spread is near the float spacing
    shift = float(np.mean(d))
    d -= shift
    spread = float(np.sqrt(np.mean(d * d)))
    scale = spread if spread > 0.0 else 1.0
    return d / scale, Standardization(power, centre, shift, scale)


#: Below this many observations the output is not warped (a power transform of 2-4 points is
#: not identifiable).
MIN_WARP_OBSERVATIONS = 5


#: From this many observations on, the scale the warp is applied at is chosen by likelihood too
#: (:func:`warp`, ``choose_scale``). The robust scale comes from the quartiles, whose sampling
#: error is large in a small sample; below this the warp works on the standardized values, as it
#: did before the scale was chosen (measured: choosing it from 5 observations on lost on the
#: noisy problems, benchmarks/sampler/results/issue17_warp_scale/).
MIN_SCALE_OBSERVATIONS = 20

# Yeo-Johnson exponents searched (a grid, then a parabolic refinement around its best point).
_YJ_GRID = np.linspace(-3.0, 5.0, 81)

# The scales tried between the standard deviation and the robust scale: std / 2**k, k >= 1.
_MAX_HALVINGS = 12


def yeo_johnson(y: np.ndarray, lam: np.ndarray | float) -> np.ndarray:
    """The Yeo-Johnson transform of ``y`` for each exponent in ``lam`` (shape ``lam.shape +
    y.shape``): :math:`((y+1)^\\lambda - 1)/\\lambda` for :math:`y \\ge 0` and
    :math:`-((1-y)^{2-\\lambda} - 1)/(2-\\lambda)` for :math:`y < 0` (logarithms at
    :math:`\\lambda = 0` resp. 2), written with ``expm1``/``log1p`` for accuracy."""
    lam = np.asarray(lam, dtype=float)[..., None]
    y = np.asarray(y, dtype=float)
    pos = y >= 0.0
    lp = np.log1p(np.where(pos, y, 0.0))  # log(1 + y) on the positive side
    ln = np.log1p(np.where(pos, 0.0, -y))  # log(1 - y) on the negative side
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = np.where(np.abs(lam) < 1e-12, lp, np.expm1(lam * lp) / lam)
        two = 2.0 - lam
        b = np.where(np.abs(two) < 1e-12, -ln, -np.expm1(two * ln) / two)
    return np.where(pos, a, b)


def _yeo_johnson_llf(y: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Profile log-likelihood of the exponents (Yeo & Johnson 2000): the Gaussian log-likelihood
    of the transformed data at its MLE variance plus the log-Jacobian."""
    z = yeo_johnson(y, lam)
    var = z.var(axis=-1)
    jac = np.sum(np.sign(y) * np.log1p(np.abs(y)))
    with np.errstate(divide="ignore"):
        return -0.5 * y.shape[0] * np.log(var) + (np.asarray(lam) - 1.0) * jac


def _profile_llf(x: np.ndarray) -> np.ndarray:
    """:func:`_yeo_johnson_llf` over the exponent grid, non-finite values as ``-inf``."""
    llf = _yeo_johnson_llf(x, _YJ_GRID)
    return np.where(np.isfinite(llf), llf, -np.inf)


def _choose_scale(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y - loc) / s`` for the location and scale under which the Yeo-Johnson transform fits
    best: the mean and standard deviation, or the median with a scale from the standard
    deviation down to the robust one (interquartile range / 1.349) in halvings, compared by the
    profile likelihood of the values themselves (the transform's Jacobian and ``-n log s``).

    The Yeo-Johnson family is not scale-invariant: it bends the values at the scale of 1. On
    standardized values with a heavy tail (Goldstein-Price: 3 to 1e6) the standard deviation is
    the tail's, every good value lies within a few thousandths of a unit of the others, where
    the transform is almost linear, and the GP sees a flat plateau with the tail beside it. At
    the robust scale the good values spread over units, and the tail is what gets compressed
    (the two-parameter Box-Cox family of Box & Cox 1964 chooses its shift by likelihood the same
    way). Without a heavy tail every candidate fits about alike, so the warp stays nearly the
    one of the standardized values (within 0.02 on Gaussian samples of 40). Returns it with its
    :func:`_profile_llf`, which :func:`warp` goes on with.
    """
    n = len(y)
    q1, median, q3 = np.percentile(y, [25.0, 50.0, 75.0])
    robust = float(q3 - q1) / 1.349
    std = float(y.std())
    candidates = [(float(y.mean()), std)]
    if robust > 0.0 and robust < std:
        scale = std / 2.0
        for _ in range(_MAX_HALVINGS):
            if scale <= robust:
                break
            candidates.append((float(median), scale))
            scale /= 2.0
        candidates.append((float(median), robust))
    best, best_x, best_llf = -np.inf, y, None
    for loc, scale in candidates:
        x = (y - loc) / scale
        llf = _profile_llf(x)
        value = float(np.max(llf)) - n * math.log(scale)
        if value > best:
            best, best_x, best_llf = value, x, llf
    return best_x, _profile_llf(y) if best_llf is None else best_llf


def warp(y: np.ndarray, *, choose_scale: bool = False) -> np.ndarray:
    """Yeo-Johnson power transform with the maximum-likelihood exponent, then standardized
    (output warping; Yeo & Johnson 2000, as HEBO warps its outputs, Cowen-Rivers et al. 2022).

    The transform is monotone, so the order of the observations (and so the incumbent) is kept;
    a heavy tail of bad values (e.g. Rosenbrock's 1e5 far from its valley) is compressed, so the
    GP's amplitude and lengthscales follow the region that matters instead of the worst values.
    The exponent maximizes the profile likelihood over [-3, 5] (a grid of step 0.1, then one
    parabolic step). With ``choose_scale`` and at least :data:`MIN_SCALE_OBSERVATIONS` values,
    the location and scale the transform is applied at are chosen by likelihood as well
    (:func:`_choose_scale`). Returns ``y`` unchanged when the data are too few or constant, or
    the transform is not finite.
    """
    y = np.asarray(y, dtype=float)
    if len(y) < MIN_WARP_OBSERVATIONS or not np.ptp(y) > 0:
        return y
    if choose_scale and len(y) >= MIN_SCALE_OBSERVATIONS:
        y, llf = _choose_scale(y)
    else:
        llf = _profile_llf(y)
    i = int(np.argmax(llf))
    lam = float(_YJ_GRID[i])
    if 0 < i < len(_YJ_GRID) - 1 and np.all(np.isfinite(llf[i - 1 : i + 2])):
        f0, f1, f2 = llf[i - 1 : i + 2]
        den = f0 - 2.0 * f1 + f2
        if den < 0.0:  # concave: the vertex of the parabola through the three points
            lam += 0.5 * (_YJ_GRID[1] - _YJ_GRID[0]) * (f0 - f2) / den
    with np.errstate(all="ignore"):
        z = yeo_johnson(y, lam)
    if not (np.all(np.isfinite(z)) and np.ptp(z) > 0):
        return y
    z = z - z.mean()
    spread = float(z.std())
    return z / spread if spread > 0 else y


def constraints_of(trial: FrozenTrial) -> dict[str, float]:
    """A trial's constraint values (``Trial.set_constraint`` or a sampler's ``constraints_func``;
    ``FrozenTrial.constraints`` in Optuna >= 5, the ``"constraints"`` system attribute before)."""
    if not any(str(key).startswith("constraints") for key in trial.system_attrs):
        return {}  # the usual case, without building the property's dict
    found = getattr(trial, "constraints", None)
    if isinstance(found, dict):
        return {str(k): float(v) for k, v in found.items()}
    legacy = trial.system_attrs.get("constraints")
    if legacy is None:
        return {}
    return {str(i): float(c) for i, c in enumerate(legacy)}


def constraint_matrix(
    cons: Sequence[dict[str, float]],
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The constraint names (sorted), the ``(n, k)`` matrix of each trial's values (NaN where a
    trial lacks one) and whether each trial is feasible (every value ``<= 0``)."""
    names = tuple(sorted({k for c in cons for k in c}))
    C = np.array([[c.get(k, math.nan) for k in names] for c in cons], dtype=float)
    C = C.reshape(len(cons), len(names))
    feasible = np.all(C <= 0.0, axis=1) if names else np.ones(len(cons), dtype=bool)
    return names, C, feasible


@dataclass(frozen=True)
class Observations:
    """The completed trials of the relative search space, as the GP sees them.

    Attributes:
        X: Encoded parameters ``(n, d)``.
        y: Standardized (and, with ``warp_output``, Yeo-Johnson warped) objective values
            ``(n,)``, larger is better.
        constraint_names: Names of the constraints (sorted); empty if unconstrained.
        constraints: ``(n, k)`` constraint values (``nan`` where a trial lacks one); feasible
            where ``<= 0``.
        feasible: ``(n,)`` True where every constraint is known and ``<= 0``.
        failed: ``(k, d)`` encoded points of the failed trials
            (:mod:`~optuna_gamma.samplers._failures`); empty if none failed.
    """

    X: np.ndarray
    y: np.ndarray
    constraint_names: tuple[str, ...]
    constraints: np.ndarray
    feasible: np.ndarray
    failed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @classmethod
    def from_trials(
        cls,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        direction: StudyDirection,
        *,
        warp_output: bool = True,
        failed: Sequence[FrozenTrial] = (),
    ) -> Observations:
        """The COMPLETE ``trials`` in ``space`` (others are skipped), and the points of the
        ``failed`` trials."""
        from ._failures import failed_points

        rows, values, cons = [], [], []
        for t in trials:
            if t.value is None:
                continue
            try:
                rows.append(space.encode(t.params))
            except (KeyError, ValueError, TypeError):
                continue  # a trial outside this search space
            values.append(t.value)
            cons.append(constraints_of(t))
        X = np.asarray(rows, dtype=float).reshape(-1, space.dim)
        sign = -1.0 if direction == StudyDirection.MINIMIZE else 1.0
        y, _ = standardize(sign * np.asarray(values, dtype=float))
        if warp_output:
            y = warp(y, choose_scale=True)
        names, C, feasible = constraint_matrix(cons)
        return cls(X, y, names, C, feasible, failed_points(space, failed))

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @property
    def constrained(self) -> bool:
        """Whether the acquisition has constraints: a constraint's values, or failed trials."""
        return bool(self.constraint_names) or len(self.failed) > 0

    def best_index(self) -> int | None:
        """Index of the best feasible observation (``None`` if none is feasible)."""
        if not self.feasible.any():
            return None
        return int(np.flatnonzero(self.feasible)[np.argmax(self.y[self.feasible])])

    def incumbent_index(self) -> int:
        """The best feasible observation, else the one with the least constraint violation."""
        best = self.best_index()
        if best is not None:
            return best
        violation = np.nan_to_num(self.constraints, nan=np.inf).clip(min=0.0).max(axis=1)
        return int(np.argmin(violation))

    def ranked(self) -> np.ndarray:
        """Indices from best to worst: feasible ones first, by value."""
        return np.lexsort((-self.y, ~self.feasible))

    def constraint_targets(self, i: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Training data of constraint ``i``: rows with a value, ``g = -c`` standardized (larger
        is more feasible), and the feasibility threshold (``c = 0``) in ``g``'s units."""
        c = self.constraints[:, i]
        rows = ~np.isnan(c)
        g, transform = standardize(-c[rows])
        threshold = float(transform.apply(0.0))
        return self.X[rows], g, threshold
