"""The two value objects of the GP: its settings (fixed by the user) and its hyperparameters
(fitted).

:class:`GPSettings` gathers everything that defines the model apart from the data and the
fitted hyperparameters; it is frozen and validated once, then passed as one object to the
evidence, the fit, the model and the sampler (instead of five keyword arguments per call).
:class:`GPHyperparams` are the kernel hyperparameters the fit returns.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import numbers
from typing import Literal

import numpy as np

from optuna_gamma.gp.kernels import KernelName
from optuna_gamma.gp.kernels import KERNELS


AcquisitionKind = Literal["ei", "pi"]
ACQUISITION_KINDS: tuple[str, ...] = ("ei", "pi")
Predictive = Literal["student_t", "gaussian", "plugin"]
PREDICTIVES: tuple[str, ...] = ("student_t", "gaussian", "plugin")
Mean = Literal["constant", "zero", "worst"]
MEANS: tuple[str, ...] = ("constant", "zero", "worst")
LengthscalePrior = Literal["dim_scaled", "optuna"]
LENGTHSCALE_PRIORS: tuple[str, ...] = ("dim_scaled", "optuna")

#: Default Gamma prior on the output precision (shape ``a0``, rate ``b0``): Gamma(1/2, 1/2), the
#: chi-square with one degree of freedom, i.e. the information of a single observation of unit
#: variance (a unit-information prior, Kass & Wasserman 1995). With standardized outputs its
#: mean precision ``a0 / b0 = 1`` matches the unit output variance, and the predictive stays
#: heavy-tailed (``dof = 2 a0 + n - 1 = n`` with the constant mean) while observations are few.
#: Chosen on the full benchmark (16 problems x 10 seeds): win rate against GPSampler at trial 50
#: 0.759 against 0.725 for (1, 1), and against GPSampler(n_startup_trials=2) at trial 12 0.594
#: against 0.544 (``benchmarks/sampler/results/ablation``); (2, 1) and (3, 3) were worse on an
#: earlier version (``benchmarks/sampler/results/prior_sweep``).
DEFAULT_PRIOR_SHAPE = 0.5
DEFAULT_PRIOR_RATE = 0.5

#: Noise ratio used when ``deterministic_objective=True`` and the lower bound of a fitted noise.
#: Smaller than Optuna's ``1e-6`` because the ratio multiplies the output scale
#: ``b_n / a_n`` (or the amplitude), which reaches 4-8 on standardized heavy-tailed data: at
#: ``1e-6`` the fits of smooth deterministic objectives sat on the bound and the GP could not
#: resolve the optimum (final regret after 40 trials, median of 16 seeds, 1e-6 -> 1e-10:
#: Branin 4.0e-4 -> 1.6e-5, Hartmann-3 2.0e-5 -> 2.6e-6, lr_wd_bs 3.4e-5 -> 6.3e-7).
MIN_NOISE = 1e-10
#: The largest noise-to-signal ratio a fit may reach.
MAX_NOISE = 10.0


#: Variance of the log-lengthscale under the ``"dim_scaled"`` prior (Hvarfner et al. 2024).
DIM_SCALED_LOG_VARIANCE = 3.0


def dim_scaled_location(d: int) -> float:
    """:math:`\\mu_D = \\sqrt2 + \\tfrac12\\log D`, the log-lengthscale location of the
    ``"dim_scaled"`` prior for ``D`` inputs (Hvarfner et al. 2024)."""
    return math.sqrt(2.0) + 0.5 * math.log(max(d, 1))


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return v


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")


@dataclass(frozen=True)
class GPSettings:
    """Everything that defines the GP apart from the data and the fitted hyperparameters.

    Attributes:
        kernel: ``"matern52"`` (ARD Matern-5/2, default) or ``"rbf"`` (ARD squared exponential,
            thesis eqs. 5-6).
        predictive: ``"student_t"`` (the Gamma-marginalized Student-t predictive),
            ``"gaussian"`` (plain GP with a fitted amplitude) or ``"plugin"`` (the Gamma
            posterior-mean variance :math:`b_n/a_n` plugged into a Gaussian).
        prior_shape: Gamma prior shape :math:`a_0 > 0` of the output precision.
        prior_rate: Gamma prior rate :math:`b_0 > 0` of the output precision.
        mean: ``"constant"``: an unknown constant mean with a flat prior, integrated out
            (:mod:`optuna_gamma.gp.model`); ``"zero"``: zero mean (the mean of the standardized
            observations); ``"worst"``: the constant equal to the worst (smallest) observation
            (De Ath, Fieldsend & Everson 2020).
        lengthscale_prior: ``"dim_scaled"`` (log-normal, scaled with the dimension; Hvarfner et
            al. 2024) or ``"optuna"`` (Optuna's ``GPSampler`` heuristic); see
            :mod:`optuna_gamma.gp.priors`.
        deterministic_objective: Fix the noise ratio at ``min_noise`` instead of fitting it.
        min_noise: The smallest noise-to-signal ratio a fit may reach (default ``MIN_NOISE``),
            in ``[MIN_NOISE, MAX_NOISE)``. A model of labels rather than of measurements needs
            more: the failure model of the sampler fits its +1/-1 labels with at least
            ``0.1`` (:mod:`optuna_gamma.samplers._failures`).

    Raises:
        ValueError: A field has a bad value (the message names it).
    """

    kernel: KernelName = "matern52"
    predictive: Predictive = "student_t"
    prior_shape: float = DEFAULT_PRIOR_SHAPE
    prior_rate: float = DEFAULT_PRIOR_RATE
    mean: Mean = "constant"
    lengthscale_prior: LengthscalePrior = "dim_scaled"
    deterministic_objective: bool = False
    min_noise: float = MIN_NOISE

    def __post_init__(self) -> None:
        _choice("kernel", self.kernel, KERNELS)
        _choice("predictive", self.predictive, PREDICTIVES)
        _choice("mean", self.mean, MEANS)
        _choice("lengthscale_prior", self.lengthscale_prior, LENGTHSCALE_PRIORS)
        object.__setattr__(self, "prior_shape", _positive("prior_shape", self.prior_shape))
        object.__setattr__(self, "prior_rate", _positive("prior_rate", self.prior_rate))
        if not isinstance(self.deterministic_objective, (bool, np.bool_)):
            raise ValueError(
                f"deterministic_objective must be a bool, got {self.deterministic_objective!r}."
            )
        object.__setattr__(self, "deterministic_objective", bool(self.deterministic_objective))
        min_noise = self.min_noise
        if (
            isinstance(min_noise, bool)
            or not isinstance(min_noise, numbers.Real)
            or not MIN_NOISE <= float(min_noise) < MAX_NOISE
        ):
            raise ValueError(
                f"min_noise must be a number in [{MIN_NOISE:g}, {MAX_NOISE:g}), got {min_noise!r}."
            )
        object.__setattr__(self, "min_noise", float(min_noise))

    @property
    def fits_amplitude(self) -> bool:
        """Whether the amplitude is a fitted hyperparameter (``"gaussian"`` mode only)."""
        return self.predictive == "gaussian"


@dataclass(frozen=True)
class GPHyperparams:
    """Kernel hyperparameters.

    Attributes:
        inv_sq_lengthscales: :math:`\\ell_d = 1 / \\lambda_d^2`, shape ``(d,)``.
        noise: :math:`\\eta^2`, the noise-to-signal ratio added to the unit-amplitude kernel.
        amplitude: :math:`\\sigma_f^2`; fitted only in ``"gaussian"`` mode, 1.0 otherwise (the
            Gamma prior on the precision plays the role of the amplitude there).
    """

    inv_sq_lengthscales: np.ndarray
    noise: float
    amplitude: float = 1.0

    @classmethod
    def default(cls, d: int, settings: GPSettings) -> GPHyperparams:
        """Start of the fit: the lengthscale prior's mode (``"dim_scaled"``: :math:`\\lambda =
        e^{\\mu_D - 3}`; ``"optuna"``: :math:`\\ell = 1`), noise ratio 0.1 (``min_noise`` if
        deterministic, and at least ``min_noise``), amplitude 1 (the standardized output
        variance)."""
        noise = settings.min_noise if settings.deterministic_objective else 0.1
        noise = max(noise, settings.min_noise)
        ell = 1.0
        if settings.lengthscale_prior == "dim_scaled":
            mode = math.exp(dim_scaled_location(d) - DIM_SCALED_LOG_VARIANCE)
            ell = mode**-2.0
        return cls(np.full(d, ell), noise, 1.0)

    def to_vector(self, settings: GPSettings) -> np.ndarray:
        """Raw vector ``[log ell (d), log noise, (log amplitude, gaussian only)]``."""
        parts = [np.log(np.asarray(self.inv_sq_lengthscales, dtype=float)), [math.log(self.noise)]]
        if settings.fits_amplitude:
            parts.append([math.log(self.amplitude)])
        return np.concatenate(parts)

    @classmethod
    def from_vector(cls, raw: np.ndarray, d: int, settings: GPSettings) -> GPHyperparams:
        """Inverse of :meth:`to_vector`."""
        raw = np.asarray(raw, dtype=float)
        amplitude = float(np.exp(raw[d + 1])) if settings.fits_amplitude else 1.0
        return cls(np.exp(raw[:d]), float(np.exp(raw[d])), amplitude)

    def check(self, d: int) -> None:
        """Raise ``ValueError`` unless the hyperparameters are valid for ``d`` inputs."""
        ell = np.asarray(self.inv_sq_lengthscales, dtype=float)
        if ell.shape != (d,):
            raise ValueError(f"inv_sq_lengthscales must have shape ({d},), got {ell.shape}.")
        if not np.all(np.isfinite(ell) & (ell > 0.0)):
            raise ValueError(f"inv_sq_lengthscales must be positive and finite, got {ell}.")
        if not (math.isfinite(self.noise) and self.noise >= 0.0):
            raise ValueError(f"noise must be non-negative and finite, got {self.noise!r}.")
        if not (math.isfinite(self.amplitude) and self.amplitude > 0.0):
            raise ValueError(f"amplitude must be positive and finite, got {self.amplitude!r}.")
