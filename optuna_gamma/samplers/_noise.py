"""What the sampler does with observation noise: the incumbent and when a repeat is allowed.

Two decisions concern the noise (the second, with ``repeats="if_noisy"``, follows from the
fitted noise ratio :math:`\\eta^2` of the objective's GP):

* **The incumbent** :math:`f^*` of EI/PI. With ``incumbent="posterior_mean"`` it is the largest
  posterior mean of the latent objective at the (feasible) observed points, not the largest
  observed value, so that a lucky draw of a noisy objective does not become the bar every
  candidate must clear: the "plug-in" EI of Picheny et al. 2013 ("A benchmark of kriging-based
  infill criteria for noisy optimization"), the deterministic counterpart of BoTorch's noisy EI,
  which integrates over the incumbent's posterior (Letham et al. 2019). Optuna 5.1's
  ``GPSampler`` uses the best observed value (``optuna/samplers/_gp/sampler.py``). For a noise
  ratio near 0 the posterior mean at an observation is the observation, so the two agree.
* **Repeats.** By default (``repeats="never"``) a point already evaluated is not proposed again,
  noise or not. Optuna reports the trial with the best *observed* value
  (``study.best_trial``). A re-measurement of that trial's point cannot raise its true value
  (a higher draw makes a trial with the same parameters the best one), and one of another point
  takes over only on a draw above every value so far, which favours the lucky draws the
  posterior-mean incumbent guards against. What a repeat buys is information for the model,
  and on the benchmark's noisy problems it did not pay for its trial: the rule below spent
  18 % of the trials of the six noisy HPOBench tables on repeats (up to 31 of 50 in one study)
  and one trial per study on most noise-free tables, and never re-proposing an evaluated point
  won 0.562 of the 120 pairs on those tables and 0.531 of all 270 noisy pairs against it, with
  the noise-free sets even (0.484-0.509; ``benchmarks/sampler/results/issue17_no_repeats``).
  On those tables TPE repeated no point and ``GPSampler(n_startup_trials=2)`` 0-2 per study
  (medians), so a study no longer fills with copies where theirs do not.
* **Repeats when noisy** (``repeats="if_noisy"``, the rule before). A point already evaluated
  is proposed again only when the model has evidence of
  noise: the objective is not declared deterministic and the fitted noise ratio is at least
  :data:`NOISE_EVIDENCE`. The noise prior (``Gamma(1.1, 30)``, :mod:`optuna_gamma.gp.priors`)
  has its mode at :math:`0.1/30 \\approx 0.0033`; a fit three times above that is the data's
  doing. Without that evidence a re-measurement cannot tell the model anything new, so the
  repeat guard excludes evaluated points as it does for ``deterministic_objective=True``: a
  constant objective gets distinct proposals.
* **Repeats that agreed.** The fitted ratio can also stand for model misfit: ripples shorter than
  the fitted lengthscales (Ackley's or Schwefel's plateaus) look like noise to a stationary GP.
  A re-measurement answers the question directly. Once points have been measured twice and
  every repeat returned the value of its first measurement, the objective evidently is not
  noisy there and a further repeat cannot tell the model anything: repeats stop
  (:func:`replicates_agree`). A repeat that returned a different value is noise observed
  directly, and repeats stay allowed. Without this, a study on Schwefel's function measured its
  incumbent 29 times in a row with the same result
  (``benchmarks/sampler/results/issue17_repeats``).
"""

from __future__ import annotations

from typing import Literal
from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:
    from optuna_gamma.gp import GaussianProcess
    from optuna_gamma.samplers._observations import Observations


Repeats = Literal["never", "if_noisy"]
#: When an evaluated point may be proposed again (module docstring).
REPEATS: tuple[str, ...] = ("never", "if_noisy")

Incumbent = Literal["auto", "observed", "posterior_mean"]
INCUMBENTS: tuple[str, ...] = ("auto", "observed", "posterior_mean")
#: An incumbent once ``"auto"`` is resolved (:func:`resolve_incumbent`).
ResolvedIncumbent = Literal["observed", "posterior_mean"]

#: Noise-to-signal ratio :math:`\\eta^2` from which the fitted noise counts as evidence that
#: re-measuring a point can be worth a trial (module docstring). Measured fits (seed 1): a
#: constant objective 1e-10, Branin and Hartmann-6 after 12 trials 0.003 and 0.0015 (the prior's
#: mode) and after 40 trials 3e-7 and 3e-8; Branin with Student-t noise after 40 trials 0.05.
NOISE_EVIDENCE = 0.01


def resolve_incumbent(incumbent: Incumbent, deterministic_objective: bool) -> ResolvedIncumbent:
    """``"observed"`` or ``"posterior_mean"``: ``"auto"`` is the latter unless the objective is
    deterministic (where the two agree up to the noise floor and the former is the old default).
    """
    if incumbent == "auto":
        return "observed" if deterministic_objective else "posterior_mean"
    return incumbent


#: Two measurements of one point agree when their values (in the GP's standardized units, where
#: the observations' standard deviation is 1) differ by at most this much: the rounding of a
#: deterministic objective evaluated at parameters equal to the last digit, far below any noise
#: that :data:`NOISE_EVIDENCE` lets through (a noise standard deviation of at least 0.1).
AGREEMENT_TOLERANCE = 1e-9


def replicates_agree(X: np.ndarray, values: np.ndarray) -> bool:
    """Whether some point was measured more than once and every repeat agreed with it.

    Args:
        X: Encoded parameters ``(n, d)``. Points are the same when these are equal (the
            sampler's own repeats are exact copies).
        values: Their values in the GP's standardized units, ``(n,)`` or ``(n, m)`` for ``m``
            objectives; two measurements agree when every value differs by at most
            :data:`AGREEMENT_TOLERANCE`.

    Returns:
        ``True`` when at least one point was measured twice and all repeats agreed; ``False``
        when no point was measured twice (no evidence either way) or some repeat differed
        (noise seen directly).
    """
    if len(X) < 2:
        return False
    values = np.asarray(values, dtype=float).reshape(len(X), -1)
    _, group, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    group = group.reshape(-1)
    repeated = counts[group] > 1
    if not repeated.any():
        return False
    rows, V = group[repeated], values[repeated]
    high = np.full((len(counts), V.shape[1]), -np.inf)
    low = np.full((len(counts), V.shape[1]), np.inf)
    np.maximum.at(high, rows, V)
    np.minimum.at(low, rows, V)
    spread = (high - low)[counts > 1]
    return bool(np.all(spread <= AGREEMENT_TOLERANCE))


def noise_evident(
    gp: GaussianProcess | None, X: np.ndarray | None = None, values: np.ndarray | None = None
) -> bool:
    """Whether ``gp`` has evidence of observation noise (a repeat may be worth a trial).

    Args:
        gp: The objective's GP (``None``: no model, no evidence).
        X: The encoded observed points, with ``values`` (as in :func:`replicates_agree`). When
            given, repeats that all agreed overrule the fitted noise ratio.
        values: The observed values in the GP's units.
    """
    if gp is None or gp.settings.deterministic_objective:
        return False
    if float(gp.params.noise) < NOISE_EVIDENCE:
        return False
    return X is None or values is None or not replicates_agree(X, values)


def incumbent_of(
    gp: GaussianProcess, obs: Observations, incumbent: ResolvedIncumbent
) -> tuple[int | None, float | None]:
    """The incumbent's index in ``obs`` and its value :math:`f^*` in the GP's units.

    Args:
        gp: The objective's GP, fitted on ``obs``.
        obs: The observations.
        incumbent: ``"observed"`` (the best feasible observed value) or ``"posterior_mean"``
            (the best posterior mean of the latent objective at a feasible observed point).

    Returns:
        ``(index, best)``; ``(None, None)`` when no observation is feasible.
    """
    best_index = obs.best_index()
    if best_index is None:
        return None, None
    if incumbent == "observed":
        return best_index, float(obs.y[best_index])
    rows = np.flatnonzero(obs.feasible)
    loc, _ = gp.predict(obs.X[rows])
    i = int(np.argmax(loc))
    return int(rows[i]), float(loc[i])
