"""Maximization of an acquisition function over a mixed continuous/grid/categorical space.

The search works on the encoded unit cube of
:class:`~optuna_gamma.samplers._search_space.SearchSpace` and needs only two vectorized calls
from the acquisition: ``acq(X) -> (m,)`` and
``acq.value_and_grad(X) -> ((m,), (m, d))``.

1. *Global phase.* ``n_preliminary_samples`` scrambled Sobol points (seeded from the caller's
   generator), mapped so that every categorical choice and grid value is equally likely,
   ``n_local_samples`` Gaussian perturbations of the ``local_centres`` (the best observations),
   and the warm starts (the incumbent) are scored in one call.
2. *Local phase.* The best ``n_local_search`` distinct points (warm starts always included) are
   improved jointly, alternating

   * L-BFGS-B on the continuous columns (and on grid columns with more than ``max_exhaustive``
     values, relaxed to the interval) for all starts at once: the objective is the sum of the
     starts' acquisition values, whose gradient is block-separable, so one SciPy call with one
     vectorized acquisition evaluation per iteration optimizes every start (the batching used by
     BoTorch's ``gen_candidates_scipy``); a start's new position is kept only if its own value
     improved;
   * exhaustive coordinate search on each categorical column and each grid column with at most
     ``max_exhaustive`` values (every value of the column, for all starts, in one call),

   until no coordinate changes and the continuous step gains less than ``tol`` (at most
   ``max_rounds`` rounds; one round when there is no discrete column). The joint call stops after
   ``lbfgs_maxiter`` (20) iterations: a block-separable sum converges only as fast as its
   slowest start, so running it to convergence spent most of the suggestion time on starts that
   end up discarded (and stopped some starts short of their maximum). Then the best
   ``n_polish`` (1) start is polished on its own to convergence, with up to ``polish_maxiter``
   iterations (as Optuna's GPSampler runs one L-BFGS-B per start). The L-BFGS-B coordinates are
   scaled by the GP's lengthscales when the acquisition gives them (``z = x / lengthscale``, the
   preconditioning of Optuna's GPSampler).
3. *Rounding.* Relaxed grid columns are snapped by a neighbourhood search over the
   ``2 * neighbourhood + 1`` grid values around the relaxed position (arithmetic on the grid
   index: a grid is never enumerated); the best point found anywhere (local or global phase)
   that the ``exclude`` predicate allows (the repeat guard) is returned, already on the grid.

The knobs named above (``n_preliminary_samples`` ... ``tol``) are the fields of one frozen,
validated :class:`OptimizerSettings` passed to :func:`optimize_acquisition`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
import numbers
import threading
from typing import Any
from typing import Protocol

import numpy as np

from optuna_gamma.samplers._search_space import SearchSpace


# scipy.stats (for its Sobol engine) takes about 0.3 s to import, scipy.optimize about 0.1 s:
# both are imported on first use (lazy by design; `import optuna_gamma` loads neither).
_sobol_lock = threading.Lock()
# Line-search steps per L-BFGS-B iteration (scipy's default 20). At a converged start the
# log-acquisition is flat to rounding and the line search fails anyway ("ABNORMAL"): with 20
# steps such a failure cost 17-39 acquisition evaluations per polish on clustered histories.
_MAX_LINE_SEARCH = 6
# Points of the final pool matched against the repeat guard at first (then 4x as many each time).
_EXCLUDE_CHUNK = 16


__all__ = ["AcquisitionLike", "OptimizerSettings", "optimize_acquisition"]


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


@dataclass(frozen=True)
class OptimizerSettings:
    """The tuning knobs of :func:`optimize_acquisition` (frozen, validated once), as
    :class:`~optuna_gamma.gp.settings.GPSettings` is for the GP.

    Attributes:
        n_preliminary_samples: Sobol points scored in the global phase (rounded up to a power
            of two internally, then truncated).
        n_local_samples: Candidates drawn around ``local_centres`` (split evenly between them).
        n_local_search: Number of local searches (warm starts included).
        max_exhaustive: Grid columns with at most this many values (and all categorical columns)
            are searched exhaustively; larger grids are relaxed to the interval.
        neighbourhood: Half-width, in grid values, of the final snapping search on relaxed grids.
        max_rounds: Maximum number of (continuous, discrete) alternations per local search.
        lbfgs_maxiter: Iteration limit of each joint L-BFGS-B call over all starts.
        polish_maxiter: Iteration limit of the final L-BFGS-B polish of the best start(s).
        n_polish: Number of best starts polished (one L-BFGS-B call each) at the end.
        tol: Stop when the continuous step improves the best value by less than this.

    Raises:
        ValueError: A field has a bad value (the message names it).
    """

    n_preliminary_samples: int = 1024
    n_local_samples: int = 256
    n_local_search: int = 8
    max_exhaustive: int = 32
    neighbourhood: int = 2
    max_rounds: int = 5
    lbfgs_maxiter: int = 20
    polish_maxiter: int = 100
    n_polish: int = 1
    tol: float = 1e-4

    def __post_init__(self) -> None:
        _check_int("n_preliminary_samples", self.n_preliminary_samples, 1)
        _check_int("n_local_search", self.n_local_search, 1)
        for name in (
            "n_local_samples",
            "max_exhaustive",
            "neighbourhood",
            "max_rounds",
            "lbfgs_maxiter",
            "polish_maxiter",
            "n_polish",
        ):
            _check_int(name, getattr(self, name), 0)
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0.0:
            raise ValueError(f"tol must be a real number >= 0, got {tol!r}.")


#: The default settings (the sampler makes its own from its arguments).
DEFAULT_OPTIMIZER_SETTINGS = OptimizerSettings()


class AcquisitionLike(Protocol):
    """What the optimizer needs from an acquisition function (larger is better)."""

    def __call__(self, X: np.ndarray) -> np.ndarray: ...

    def value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _safe(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.where(np.isnan(values), -np.inf, values)


def sobol_engine(d: int, rng: np.random.Generator) -> Any:
    """A scrambled ``scipy.stats.qmc.Sobol`` engine of ``d`` dimensions drawn from ``rng``."""
    from scipy.stats import qmc

    with _sobol_lock:  # the engine's initialization is not thread-safe (cf. Optuna's _gp)
        try:
            return qmc.Sobol(d, scramble=True, rng=rng)
        except TypeError:  # SciPy < 1.15 (the newest for Python 3.9 is 1.13) calls it `seed`
            return qmc.Sobol(d, scramble=True, seed=rng)


def _sobol(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    sampler = sobol_engine(d, rng)
    return sampler.random_base2(max(0, math.ceil(math.log2(max(n, 1)))))[:n]


def _sample_around(
    space: SearchSpace, centres: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian perturbations of ``centres`` at mixed scales, snapped to the representable set.

    Numerical columns move by ``N(0, s^2)`` with ``s`` drawn from ``{0.01, 0.05, 0.2}`` per point
    (in unit-cube units); each categorical column is redrawn uniformly with probability 0.2.
    The maxima of EI near good observations are narrow in several dimensions and rarely hit by a
    space-filling design alone (cf. BoTorch's ``sample_around_best``).
    """
    index = rng.integers(len(centres), size=n)
    X = centres[index].astype(float)
    scale = rng.choice(np.array([0.01, 0.05, 0.2]), size=(n, 1))
    numerical = ~space.is_categorical
    X[:, numerical] += scale * rng.standard_normal((n, int(numerical.sum())))
    for j in np.flatnonzero(space.is_categorical):
        n_choices = space.sizes[j]
        assert n_choices is not None
        redraw = rng.random(n) < 0.2
        X[redraw, j] = rng.integers(n_choices, size=int(redraw.sum()))
    return space.round(X)


def _unique_rows(X: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, index = np.unique(X, axis=0, return_index=True)
    index = np.sort(index)
    return X[index], values[index]


def _first_distinct(X: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` distinct rows of ``X`` (in order of first occurrence) and their values.

    Deduplicates a growing prefix (``4 k`` rows, then 4x as many) instead of all of ``X``: the
    result is the same, and ``np.unique`` over the whole candidate pool (777 rows) took 0.30 ms
    of every suggestion (0.04 ms this way) while its first few dozen rows almost always hold
    ``k`` distinct ones.
    """
    size = 4 * k
    while True:
        rows, row_values = _unique_rows(X[:size], values[:size])
        if len(rows) >= k or size >= len(X):
            return rows[:k], row_values[:k]
        size *= 4


def _lbfgsb_batch(
    acquisition: AcquisitionLike,
    X: np.ndarray,
    values: np.ndarray,
    columns: np.ndarray,
    maxiter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Jointly maximize the acquisition of every row of ``X`` over ``columns`` with L-BFGS-B.

    If the acquisition has ``lengthscales`` (the GP's, one per column), the search runs in the
    scaled coordinates ``z = x / lengthscale`` (bounds ``[0, 1 / lengthscale]``), where a
    stationary kernel's acquisition has about the same curvature along every axis, so that
    L-BFGS-B converges in fewer iterations (the preconditioning of Optuna's ``GPSampler``).
    """
    m, k = X.shape[0], len(columns)
    finite = np.isfinite(values)
    if not finite.any():
        return X, values
    base = X[finite]
    lengthscales = getattr(acquisition, "lengthscales", None)
    scale = np.ones(k) if lengthscales is None else np.asarray(lengthscales, dtype=float)[columns]
    scale = np.where(np.isfinite(scale) & (scale > 0.0), scale, 1.0)
    upper = np.tile(1.0 / scale, base.shape[0])
    tiled = np.tile(scale, base.shape[0])
    every_column = np.array_equal(columns, np.arange(X.shape[1]))

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        # At every evaluation; when every column is searched (all continuous) no copy is needed.
        moved = np.clip(z * tiled, 0.0, 1.0).reshape(-1, k)
        if every_column:
            Xz = moved
        else:
            Xz = base.copy()
            Xz[:, columns] = moved
        v, g = acquisition.value_and_grad(Xz)
        v = np.asarray(v, dtype=float)
        g = np.asarray(g, dtype=float)
        if not every_column:
            g = g[:, columns]
        if not (np.isfinite(v).all() and np.isfinite(g).all()):
            # Tell L-BFGS-B to step back (a large, finite value).
            return 1e300, np.zeros(z.shape)
        return -float(v.sum()), -g.ravel() * tiled

    from scipy.optimize import minimize

    z0 = base[:, columns].ravel() / tiled
    try:
        res = minimize(
            fun,
            np.clip(z0, 0.0, upper),
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(np.zeros(z0.size), upper)),
            options={"maxiter": maxiter, "maxls": _MAX_LINE_SEARCH},
        )
        x = np.clip(res.x * tiled, 0.0, 1.0)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return X, values
    proposal = base.copy()
    proposal[:, columns] = x.reshape(-1, k)
    new_values = _safe(acquisition(proposal))
    improved = new_values > values[finite]
    X = X.copy()
    values = values.copy()
    rows = np.flatnonzero(finite)[improved]
    X[rows] = proposal[improved]
    values[rows] = new_values[improved]
    assert values.shape == (m,)
    return X, values


def _coordinate_sweep(
    acquisition: AcquisitionLike,
    X: np.ndarray,
    values: np.ndarray,
    column: int,
    choices: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Set ``column`` of every row to the value in ``choices`` that maximizes the acquisition."""
    m, n_choices = X.shape[0], len(choices)
    trial = np.repeat(X, n_choices, axis=0)
    trial[:, column] = np.tile(choices, m)
    scores = _safe(acquisition(trial)).reshape(m, n_choices)
    best = np.argmax(scores, axis=1)
    best_scores = scores[np.arange(m), best]
    improved = best_scores > values
    if not improved.any():
        return X, values, False
    X = X.copy()
    values = values.copy()
    X[improved, column] = choices[best[improved]]
    values[improved] = best_scores[improved]
    return X, values, True


def _neighbourhood_snap(
    acquisition: AcquisitionLike,
    X: np.ndarray,
    space: SearchSpace,
    column: int,
    radius: int,
) -> np.ndarray:
    """Snap ``column`` to the best of the grid values nearest to each row's relaxed position."""
    m = X.shape[0]
    options = space.neighbours(column, X[:, column], radius)  # (m, w)
    trial = np.repeat(X, options.shape[1], axis=0)
    trial[:, column] = options.ravel()
    scores = _safe(acquisition(trial)).reshape(m, options.shape[1])
    X = X.copy()
    X[:, column] = options[np.arange(m), np.argmax(scores, axis=1)]
    return X


def optimize_acquisition(
    acquisition: AcquisitionLike,
    space: SearchSpace,
    *,
    rng: np.random.Generator,
    warm_starts: np.ndarray | None = None,
    local_centres: np.ndarray | None = None,
    exclude: Callable[[np.ndarray], np.ndarray] | None = None,
    settings: OptimizerSettings = DEFAULT_OPTIMIZER_SETTINGS,
) -> tuple[np.ndarray, float]:
    """Maximize ``acquisition`` over the encoded mixed space.

    Args:
        acquisition: Vectorized acquisition (see :class:`AcquisitionLike`); larger is better.
        space: The encoded search space (gives the grids and categorical columns).
        rng: Generator that seeds the Sobol scrambling; the result is a deterministic function
            of the generator's state and the acquisition.
        warm_starts: ``(k, d)`` encoded points that always start a local search (the incumbent).
        local_centres: ``(k, d)`` encoded points (e.g. the best observations) around which
            ``settings.n_local_samples`` extra candidates are drawn in the global phase.
        exclude: Vectorized predicate ``(m, d) -> (m,) bool`` of points that must not be
            returned (e.g. already evaluated ones); the best point found that it allows is
            returned, or the best overall if it allows none of the points scored.
        settings: The search's tuning knobs (:class:`OptimizerSettings`).

    Returns:
        ``(x, value)``: the best encoded point (on the grid, categorical indices integral) and its
        acquisition value.
    """
    d = space.dim
    if d == 0:
        raise ValueError("The search space has no dimension to optimize.")
    n_preliminary_samples = settings.n_preliminary_samples
    n_local_samples = settings.n_local_samples
    n_local_search = settings.n_local_search
    max_exhaustive = settings.max_exhaustive
    polish_maxiter, n_polish, tol = settings.polish_maxiter, settings.n_polish, settings.tol
    relaxed = [
        j
        for j, size in enumerate(space.sizes)
        if size is None or (space.is_grid(j) and size > max_exhaustive)
    ]
    exhaustive = [j for j in range(d) if j not in relaxed]
    relaxed_grids = [j for j in relaxed if space.is_grid(j)]
    continuous = np.asarray(relaxed, dtype=int)
    choices = {j: space.grid_values(j) for j in exhaustive}

    candidates = space.from_unit_cube(_sobol(d, n_preliminary_samples, rng))
    if local_centres is not None and len(local_centres) > 0 and n_local_samples > 0:
        around = _sample_around(space, np.atleast_2d(local_centres), n_local_samples, rng)
        candidates = np.vstack([candidates, around])
    n_warm = 0
    if warm_starts is not None and len(warm_starts) > 0:
        warm = space.round(np.atleast_2d(np.asarray(warm_starts, dtype=float)))
        n_warm = len(warm)
        candidates = np.vstack([warm, candidates])
    scores = _safe(acquisition(candidates))

    # Starts: the warm starts, then the best distinct candidates.
    ranked = n_warm + np.argsort(-scores[n_warm:], kind="stable")
    order = np.concatenate([np.arange(n_warm), ranked])
    starts, start_values = _first_distinct(candidates[order], scores[order], n_local_search)
    keep = np.isfinite(start_values)
    X, values = starts[keep], start_values[keep]

    if len(X) > 0:
        for _ in range(settings.max_rounds):
            before = float(values.max())
            changed = False
            if len(continuous) > 0:
                X, values = _lbfgsb_batch(
                    acquisition, X, values, continuous, settings.lbfgs_maxiter
                )
            for j in exhaustive:
                X, values, moved = _coordinate_sweep(acquisition, X, values, j, choices[j])
                changed = changed or moved
            if not exhaustive:
                break  # nothing discrete to alternate with; the polish below converges the best
            if not changed and (len(continuous) == 0 or float(values.max()) - before < tol):
                break
        if len(continuous) > 0 and polish_maxiter > 0 and n_polish > 0:
            for i in np.argsort(-values, kind="stable")[:n_polish]:
                # one call per start: each stops at its own convergence
                Xi, vi = _lbfgsb_batch(
                    acquisition, X[[i]], values[[i]], continuous, polish_maxiter
                )
                X[i], values[i] = Xi[0], vi[0]
        for j in relaxed_grids:
            X = _neighbourhood_snap(acquisition, X, space, j, settings.neighbourhood)
        X = space.round(X)
        values = _safe(acquisition(X))

    # The best point found anywhere (local or global phase) that is not excluded.
    pool = np.vstack([X, candidates])
    pool_values = np.concatenate([values, scores])
    i = _best_allowed(pool, pool_values, exclude)
    return pool[i].copy(), float(pool_values[i])


def _best_allowed(
    pool: np.ndarray,
    values: np.ndarray,
    exclude: Callable[[np.ndarray], np.ndarray] | None,
) -> int:
    """Index of the largest value whose point ``exclude`` allows (the first such index on ties),
    or of the largest value overall if it allows none.

    The predicate is asked about the points in order of decreasing value, a few at a time, and
    stops at the first allowed one: usually the best point is allowed, so matching the whole
    pool (about 800 points against every observation) was wasted work.
    """
    best = int(np.argmax(values))
    if exclude is None:
        return best
    order = np.argsort(-values, kind="stable")  # ties keep the pool order, as argmax does
    start, size = 0, _EXCLUDE_CHUNK
    while start < len(order):
        chunk = order[start : start + size]
        allowed = np.flatnonzero(~exclude(pool[chunk]))
        if len(allowed) > 0:
            return int(chunk[allowed[0]])
        start += size
        size *= 4  # a mostly excluded pool (a converged study) is matched in a few calls
    return best
