r"""Adoption on the model's posterior mean (``PopulationPolicy(adopt_on="posterior")``).

An epoch's trials are ranked by their validation value, one measurement of each state on a small
split: a state whose last epoch drew a lucky value is adopted over a better one. With
``adopt_on="posterior"`` a trial is ranked instead by its start state's value plus the posterior
mean of its epoch's improvement,

.. math::

    \hat v = v_{\text{start}} + \mu(x, 0), \qquad
    \mu(x, 0) = m + k\big((x, 0), X\big)\,\big(K + \sigma^2 I\big)^{-1} (\Delta - m),

where :math:`\Delta` are the improvements over their start states of the epoch's trials and of
the :data:`~optuna_gamma.tuner.execution.sampling.HISTORY_EPOCHS` epochs before it, and the GP
is the sampler's time-varying model over ``(setting, age)`` (the product kernel of PB2,
:mod:`optuna_gamma.samplers._history`; Parker-Holder et al., NeurIPS 2020), its hyperparameters
(lengthscales, the noise ratio :math:`\sigma^2`) fitted by maximum a posteriori
(:func:`optuna_gamma.gp.fit.fit_gp`). An improvement that the setting's neighbours and the
earlier epochs do not support is shrunk toward them. This is the incumbent of noisy expected
improvement (Letham et al., "Constrained Bayesian optimization with noisy experiments",
Bayesian Analysis 2019; BoTorch's ``qNoisyExpectedImprovement``), applied to the choice of the
state to continue from. The model is of the improvement, as the sampler's, because a state's
value depends on the state it started from, which its setting does not identify: a GP of the
values themselves over (setting, age) ranked states trained further behind states that were
ahead, and lost 12 points on MNIST-500 with 12 at a time (docs/when-it-pays.md).
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np
import optuna

from optuna_gamma.samplers._history import AGE_SCALE
from optuna_gamma.samplers._history import inside
from optuna_gamma.samplers._search_space import SearchSpace
from optuna_gamma.tuner.execution.sampling import improvement


__all__ = ["posterior_values"]


def _space(trials: Sequence[optuna.trial.FrozenTrial]) -> SearchSpace | None:
    """The tuned (not single-valued) parameters of the epoch's trials, or ``None`` if none."""
    dists = {n: d for n, d in trials[0].distributions.items() if not d.single()}
    return SearchSpace(dists) if dists else None


def posterior_values(
    trials: Sequence[optuna.trial.FrozenTrial],
    earlier: Sequence[tuple[optuna.trial.FrozenTrial, int]],
    *,
    maximize: bool,
) -> dict[int, float]:
    """Each of ``trials``' start value plus the posterior mean at age 0 of its improvement
    (module docstring), in the objective's units, by trial number.

    Args:
        trials: The epoch's healthy trials (complete, finite values), age 0. A trial's start
            value is its user attribute ``start_value`` (without one, its improvement is its
            value: :func:`~optuna_gamma.tuner.execution.sampling.improvement`).
        earlier: Healthy trials of earlier epochs with their ages (``>= 1``: epochs before).
        maximize: Whether larger values are better.

    Returns:
        ``{trial number: start value + posterior mean}``; the raw values when there is nothing
        to smooth (one observation, no tuned parameter, or all improvements equal).
    """
    raw = {t.number: float(t.value) for t in trials}  # type: ignore[arg-type]
    if not trials:
        return raw
    space = _space(trials)
    if space is None:
        return raw
    rows: list[np.ndarray] = []
    values: list[float] = []
    ages: list[float] = []
    for t, age in earlier:
        if not all(
            n in t.params and inside(d, t.params[n])
            for n, d in zip(space.names, space.distributions)
        ):
            continue  # a trial outside the epoch's search space
        try:
            rows.append(space.round(space.encode(t.params)))
        except (KeyError, ValueError, TypeError, OverflowError):
            continue  # a trial outside the epoch's search space
        values.append(improvement(t))
        ages.append(age / AGE_SCALE)
    n_earlier = len(rows)
    for t in trials:
        rows.append(space.encode(t.params))
        values.append(improvement(t))
        ages.append(0.0)
    v = np.asarray(values, dtype=float)
    if v.size < 2 or not np.all(np.isfinite(v)):
        return raw
    sign = 1.0 if maximize else -1.0
    centre, scale = float(np.mean(v)), float(np.std(v))
    if not scale > 0.0 or not math.isfinite(scale):
        return raw
    # Lazy by design: the GP's fit loads scipy.optimize.
    from optuna_gamma.gp.fit import fit_gp

    X = np.column_stack([np.asarray(rows, dtype=float), np.asarray(ages, dtype=float)])
    y = sign * (v - centre) / scale
    mask = np.append(np.asarray(space.is_categorical, dtype=bool), False)
    gp = fit_gp(X, y, is_categorical=mask)
    loc, _ = gp.predict(X[n_earlier:])  # the epoch's own trials, at age 0
    return {
        t.number: raw[t.number] - improvement(t) + centre + scale * sign * float(m)
        for t, m in zip(trials, np.asarray(loc))
    }
