# generated from optuna_gamma/samplers/_parallel.py by tools/sync_optunahub.py; do not edit
"""What parallel workers need: fantasies of pending points, workers still choosing, conflicts.

None of it reads a clock: a suggestion depends on the storage's state (and the seed) only.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
import math
from typing import TYPE_CHECKING

import numpy as np
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from ._optimize import sobol_engine
from ._search_space import SearchSpace


if TYPE_CHECKING:
    from optuna.study import Study

    from ..gp import GaussianProcess


def fantasy_draws(
    gp: GaussianProcess, X: np.ndarray, rng: np.random.Generator, n_draws: int
) -> np.ndarray:
    """``n_draws`` quasi-random joint draws ``(S, p)`` of :math:`f(X)` from the GP's
    predictive (multivariate Student-t with ``gp.dof`` degrees of freedom, or Gaussian): scrambled
    Sobol points mapped through the normal quantile (and, for the Student-t, the chi-square
    quantile of the mixing variable, ``f = mu + L z / sqrt(w)``, ``w ~ chi2_nu / nu``)."""
    # Lazy by design: scipy.special and scipy.linalg load on the first suggestion, not at
    # `import optuna_gamma`.
    from scipy.special import gammaincinv
    from scipy.special import ndtri

    from ..gp._linalg import robust_cholesky

    loc, cov = gp.joint_predict(X)
    p = len(loc)
    L, _ = robust_cholesky(cov + 1e-12 * np.eye(p))
    u = np.clip(sobol_engine(p + 1, rng).random(n_draws), 1e-12, 1.0 - 1e-12)
    z = ndtri(u[:, :p])
    draws = loc[None, :] + z @ L.T
    if math.isfinite(gp.dof):
        half = 0.5 * gp.dof
        w = gammaincinv(half, u[:, p]) / half
        draws = loc[None, :] + (draws - loc[None, :]) / np.sqrt(w)[:, None]
    return draws


def n_choosing(
    running: Iterable[FrozenTrial],
    number: int,
    registered: set[int],
    names: Sequence[str],
    window: int,
) -> int:
    """RUNNING trials of other workers, numbered just before trial ``number``, without
    parameters (and not this process's own, ``registered``).

    Such a worker is most likely computing its suggestion from the same data right now. The
    window is counted in trial numbers (at most ``window`` before ``number``), not in time: a
    suggestion depends on the storage's state only, and a trial left RUNNING by a dead worker
    drops out of the window as new trials are created.
    """
    return sum(
        1
        for t in running
        if number - window <= t.number < number
        and t.number not in registered
        and not all(name in t.params for name in names)
    )


def conflicts(
    study: Study,
    trial: FrozenTrial,
    space: SearchSpace,
    x: np.ndarray,
    known: set[int],
    resolution: float,
) -> bool:
    """Whether another worker took the point ``x`` while this one computed it: a RUNNING
    trial of another worker holds it, or a trial that was not among the completed ones of
    this suggestion's snapshot (``known``) has completed with it meanwhile."""
    states = (TrialState.RUNNING, TrialState.COMPLETE)
    for t in study.get_trials(deepcopy=False, states=states):
        if t.number == trial.number or (t.state == TrialState.COMPLETE and t.number in known):
            continue
        try:
            other = space.round(space.encode(t.params)[None])
        except (KeyError, ValueError, TypeError):
            continue
        if space.matches(x[None], other, resolution)[0]:
            return True
    return False
