"""When to refit the GP's hyperparameters, and reuse of the last fit in between."""

from __future__ import annotations

import math
from typing import NamedTuple
from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:
    from optuna_gamma.gp import GaussianProcess

#: Observations up to which the hyperparameters are refitted at every suggestion, whatever the
#: noise. Refitting only from 16 on cost 0.025 of win rate against GPSampler at trial 50 on the
#: full benchmark (benchmarks/sampler/results/issue17_speed/).
ALWAYS_REFIT = 32
#: Observations up to which they are refitted at every suggestion while the last fit found noise
#: (:data:`NOISE_EVIDENT`). From 32 on for every model, the schedule tied on the noise-free suite
#: but lost on the noisy problems (16 wins, 22 losses at trial 50): with noise the
#: hyperparameters, the noise variance among them, keep moving as points arrive.
NOISY_REFIT = 64
#: The noise-to-signal variance ratio (``GPHyperparams.noise``) above which a fit counts as noisy:
#: a noise standard deviation of 1 % of the signal's. Noise-free functions fit 1e-10 to 8e-5 at
#: 32-64 observations, the suite's noisy problems 5e-4 and more.
NOISE_EVIDENT = 1e-4
#: Growth of the data since the last fit that makes the next suggestion refit.
REFIT_GROWTH = 0.125


class Fitted(NamedTuple):
    """A fitted GP and the number of observations its hyperparameters were fitted on."""

    gp: GaussianProcess
    n_fitted: int  # observations the hyperparameters were fitted on


def refit_due(n: int, n_fitted: int, noise: float = math.inf) -> bool:
    """Whether the suggestion at ``n`` observations refits the hyperparameters (warm-started);
    if not, the last ones are reused with the Cholesky factor extended by the new rows.

    At every suggestion up to ``ALWAYS_REFIT`` (32) observations, and up to ``NOISY_REFIT`` (64)
    while the last fit's noise-to-signal ratio ``noise`` is above ``NOISE_EVIDENT`` (the default,
    ``math.inf``, refits up to 64 whatever the fit found); after that
    whenever the data have grown by ``REFIT_GROWTH`` (12.5%: at 200 observations every 25th
    suggestion) since the last fit. Optimal hyperparameters move little when a few points join a
    large data set, and the fit (about 50 evidence evaluations of O(n^3) each) is most of a
    suggestion's cost at that size; with noise they keep moving longer."""
    if n <= ALWAYS_REFIT or n >= n_fitted * (1.0 + REFIT_GROWTH):
        return True
    return n <= NOISY_REFIT and noise > NOISE_EVIDENT


def recondition(gp: GaussianProcess, X: np.ndarray, y: np.ndarray) -> GaussianProcess | None:
    """``gp``'s hyperparameters on ``(X, y)``, extending its factor when its inputs are the first
    rows of ``X`` (the usual case: trials complete in order); ``None`` if that fails."""
    # Lazy by design: the model module loads scipy.linalg (not at `import optuna_gamma`).
    from optuna_gamma.gp.model import GaussianProcess

    m = gp.X.shape[0]
    try:
        if X.shape[0] >= m and np.array_equal(X[:m], gp.X):
            return gp.extended(X[m:], y)
        return GaussianProcess(X, y, gp.params, gp.settings, is_categorical=gp.is_categorical)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None
