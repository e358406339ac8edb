"""Adoption on the model's posterior mean (``PopulationPolicy(adopt_on="posterior")``).

An epoch's trials are ranked by their validation value, one measurement of each state on a small
split: a state that drew a lucky value is adopted over a better one. With
``adopt_on="posterior"`` they are ranked instead by the posterior mean of a GP fitted to their
values together with those of the :data:`~optuna_gamma.tuner.execution.sampling.HISTORY_EPOCHS`
epochs before, over ``(setting, age)`` with the time-varying product kernel of PB2
(:mod:`optuna_gamma.samplers._history`; Parker-Holder et al., NeurIPS 2020):

.. math::

    \\mu(x, 0) = m + k\\big((x, 0), X\\big)\\,\\big(K + \\sigma^2 I\\big)^{-1} (y - m),

the posterior mean at age 0 (the epoch being adopted) of a trial's setting ``x``, with the
hyperparameters (lengthscales, the noise ratio :math:`\\sigma^2`) fitted by maximum a posteriori
as the sampler's model is (:func:`optuna_gamma.gp.fit.fit_gp`). A value the setting's neighbours
and its own earlier epochs do not support is shrunk toward them. This is the incumbent of noisy
expected improvement (Letham et al., "Constrained Bayesian optimization with noisy experiments",
Bayesian Analysis 2019; BoTorch's ``qNoisyExpectedImprovement``), applied to the choice of the
state to continue from. The model is fitted to the values themselves (the states' levels), not
to the improvements the sampler models, because it is the states that are compared.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np
import optuna

from optuna_gamma.samplers._history import AGE_SCALE
from optuna_gamma.samplers._history import inside
from optuna_gamma.samplers._search_space import SearchSpace


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
    """The posterior mean at age 0 of each of ``trials`` (module docstring), in the objective's
    units, by trial number.

    Args:
        trials: The epoch's healthy trials (complete, finite values), age 0.
        earlier: Healthy trials of earlier epochs with their ages (``>= 1``: epochs before).
        maximize: Whether larger values are better.

    Returns:
        ``{trial number: posterior mean}``; the raw values when there is nothing to smooth (one
        observation, no tuned parameter, or all values equal).
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
        values.append(float(t.value))  # type: ignore[arg-type]
        ages.append(age / AGE_SCALE)
    n_earlier = len(rows)
    for t in trials:
        rows.append(space.encode(t.params))
        values.append(float(t.value))  # type: ignore[arg-type]
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
    return {t.number: centre + scale * sign * float(m) for t, m in zip(trials, np.asarray(loc))}
