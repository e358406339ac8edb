"""``GammaBOSampler``: GP Bayesian optimization with a Gamma prior on the output precision."""

from __future__ import annotations

from collections.abc import Sequence
import datetime
import logging
import math
import numbers
import threading
from typing import Any
from typing import TYPE_CHECKING
import warnings
import zlib

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.samplers import RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_gamma.gp import Acquisition
from optuna_gamma.gp import DEFAULT_PRIOR_RATE
from optuna_gamma.gp import DEFAULT_PRIOR_SHAPE
from optuna_gamma.gp import fit_gp
from optuna_gamma.gp import GaussianProcess
from optuna_gamma.gp import GPHyperparams
from optuna_gamma.gp import limit_blas_threads
from optuna_gamma.gp import MIN_NOISE
from optuna_gamma.samplers._optimize import optimize_acquisition
from optuna_gamma.samplers._search_space import SearchSpace


if TYPE_CHECKING:
    from optuna.study import Study


__all__ = ["GammaBOSampler"]

_logger = logging.getLogger(__name__)

_PREDICTIVES = ("student_t", "gaussian", "plugin")
_ACQUISITIONS = ("ei", "pi")
_KERNELS = ("matern52", "rbf")
#: Default exploration trade-off of EI/PI, in units of the standardized objective. 0 because the
#: Student-t tails already explore while data are few; in a first check (Hartmann-3 and Branin,
#: 30 trials, 5 seeds) xi = 0.01 left 10-30x larger median regret than xi = 0.
DEFAULT_XI = 0.0
_STD_EPS = 1e-12
_MAX_CONFLICT_RETRIES = 2
# Extra acquisition candidates are drawn around this many best observations.
_N_LOCAL_CENTRES = 5
# RUNNING trials of other workers without parameters are taken as still choosing them (and get a
# constant liar at the point they will most likely choose) for this long after their start.
_IN_FLIGHT_SECONDS = 120.0
_MAX_IN_FLIGHT = 8
_NUMERICAL_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)

_INDEPENDENT_SAMPLING_WARNING = (
    "The parameter `{param_name}` in Trial#{trial_number} is sampled independently "
    "using `{independent_sampler_name}` instead of `GammaBOSampler`, potentially degrading the "
    "optimization performance. This fallback happened because dynamic search space is not "
    "supported by GammaBOSampler. You can suppress this warning by setting "
    "`warn_independent_sampling` to `False` in the constructor of `GammaBOSampler` if this "
    "independent sampling is intended behavior."
)


def _check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}.")
    return v


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}.")
    return bool(value)


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]


class GammaBOSampler(BaseSampler):
    """GP Bayesian optimization whose output precision has a Gamma conjugate prior.

    The surrogate is a zero-mean GP on the unit-cube encoding of the search space with an ARD
    kernel of unit amplitude plus a noise ratio, :math:`K = K_\\theta + \\eta^2 I`, and outputs
    ``y`` (sign-flipped so that larger is better, then standardized) with
    :math:`y \\mid \\tau \\sim N(0, K/\\tau)`, :math:`\\tau \\sim \\mathrm{Gamma}(a_0, b_0)`.
    Integrating the precision out gives a Student-t predictive with :math:`2 a_n = 2 a_0 + n`
    degrees of freedom, location :math:`k_x^\\top K^{-1} y` and scale
    :math:`\\sqrt{(b_n/a_n)(k(x,x) - k_x^\\top K^{-1} k_x)}`, where
    :math:`b_n = b_0 + y^\\top K^{-1} y / 2`; the next point maximizes Student-t Expected
    Improvement (or Probability of Improvement). This is the "Gamma search" of the thesis
    "Research on Hyperparameter Optimization for Improving AutoML Performance" (Pukyong National
    University) done exactly; see ``DESIGN.md`` §2 of the project for the formulas.

    Kernel hyperparameters :math:`\\theta, \\eta` are fitted at every suggestion by maximizing the
    (Student-t or Gaussian) log marginal likelihood plus weak log-priors with L-BFGS-B,
    warm-started from the previous fit. The acquisition is maximized over the mixed space by Sobol candidates,
    then joint multi-start L-BFGS-B on continuous parameters and exhaustive coordinate search on
    categorical and small integer/step grids (see :mod:`optuna_gamma.samplers._optimize`).

    Parallel workers: trials of other workers that are RUNNING and already hold all parameters of
    the relative search space enter the model as *constant liars* (observations at their
    parameters with the worst standardized value seen so far), and proposals of this sampler
    instance that have not been written to storage yet (``n_jobs`` threads) are kept in a
    lock-protected in-process registry and used the same way. The random stream of a trial
    depends on ``(seed, trial.number)`` only, so processes that share a seed still propose
    different points, and a seed reproduces the same suggestions in any process.

    Args:
        predictive: ``"student_t"`` (the Gamma-marginalized predictive, default), ``"gaussian"``
            (plain GP-EI with a fitted amplitude: the thesis's "Gaussian search") or ``"plugin"``
            (the Gamma posterior-mean variance :math:`b_n/a_n` plugged into a Gaussian EI: the
            thesis's literal procedure).
        acquisition: ``"ei"`` (Expected Improvement) or ``"pi"`` (Probability of Improvement).
        xi: Exploration trade-off :math:`\\xi \\ge 0` of EI/PI in units of the standardized
            objective (one unit = one standard deviation of the observed values).
        prior_shape: Gamma prior shape :math:`a_0 > 0`. The default 1.0 is weak (worth two
            pseudo-observations), keeping the predictive heavy-tailed while data are few.
        prior_rate: Gamma prior rate :math:`b_0 > 0`. The default 1.0 makes the prior mean
            precision :math:`a_0/b_0 = 1`, the precision of standardized outputs.
        kernel: ``"matern52"`` (ARD Matern-5/2, default) or ``"rbf"`` (ARD squared exponential,
            thesis eqs. 5-6).
        n_startup_trials: Number of COMPLETE trials sampled by ``independent_sampler`` before the
            GP is used (2, as in the thesis).
        seed: Seed (an integer >= 0) of the sampler's random streams. ``None`` draws one.
        independent_sampler: Sampler for the start-up trials and for parameters outside the
            relative search space. ``None`` uses a :class:`~optuna.samplers.RandomSampler` seeded
            per trial from ``(seed, trial.number, parameter name)``, so that processes sharing a
            seed do not repeat each other's start-up points.
        deterministic_objective: Fix the GP noise ratio at its minimum (``1e-10``).
        warn_independent_sampling: Log a warning when a parameter is sampled by the independent
            sampler after the start-up trials.
        n_preliminary_samples: Sobol candidates scored per suggestion.
        n_local_search: Local searches (L-BFGS-B and coordinate search) per suggestion.
    """

    def __init__(
        self,
        *,
        predictive: str = "student_t",
        acquisition: str = "ei",
        xi: float = DEFAULT_XI,
        prior_shape: float = DEFAULT_PRIOR_SHAPE,
        prior_rate: float = DEFAULT_PRIOR_RATE,
        kernel: str = "matern52",
        n_startup_trials: int = 2,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
        deterministic_objective: bool = False,
        warn_independent_sampling: bool = True,
        n_preliminary_samples: int = 512,
        n_local_search: int = 8,
    ) -> None:
        _check_choice("predictive", predictive, _PREDICTIVES)
        _check_choice("acquisition", acquisition, _ACQUISITIONS)
        _check_choice("kernel", kernel, _KERNELS)
        self._predictive = predictive
        self._acquisition = acquisition
        self._kernel = kernel
        self._xi = _check_positive("xi", xi, allow_zero=True)
        self._prior_shape = _check_positive("prior_shape", prior_shape)
        self._prior_rate = _check_positive("prior_rate", prior_rate)
        self._n_startup_trials = _check_int("n_startup_trials", n_startup_trials, 0)
        if seed is not None:
            seed = _check_int("seed", seed, 0)
        self._seed = _fresh_seed() if seed is None else seed
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise ValueError(
                f"independent_sampler must be an optuna.samplers.BaseSampler or None, got "
                f"{independent_sampler!r}."
            )
        self._independent_sampler = independent_sampler
        self._deterministic = _check_bool("deterministic_objective", deterministic_objective)
        self._warn_independent_sampling = _check_bool(
            "warn_independent_sampling", warn_independent_sampling
        )
        self._n_preliminary_samples = _check_int("n_preliminary_samples", n_preliminary_samples, 1)
        self._n_local_search = _check_int("n_local_search", n_local_search, 1)

        self._intersection_search_space = IntersectionSearchSpace()
        self._lock = threading.Lock()
        # (study name, trial number) -> relative params proposed but not finished yet.
        self._pending: dict[tuple[str, int], dict[str, Any]] = {}
        # (study name, trial number) of trials whose relative sampling fell in the start-up phase.
        self._startup: set[tuple[str, int]] = set()
        # Search-space signature -> hyperparameters of the last fit (warm start).
        self._fit_cache: dict[tuple[tuple[str, str], ...], GPHyperparams] = {}

    # -- pickling (the lock cannot be pickled) -------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _raise_if_multi_objective(study: Study) -> None:
        if len(study.directions) > 1:
            raise ValueError(
                f"GammaBOSampler supports single-objective studies only, got "
                f"{len(study.directions)} objectives ({[d.name for d in study.directions]})."
            )

    def _trial_rng(self, trial: FrozenTrial, *extra: int) -> np.random.Generator:
        sequence = np.random.SeedSequence(self._seed, spawn_key=(trial.number, *extra))
        return np.random.default_rng(sequence)

    def _independent_for(self, trial: FrozenTrial, param_name: str) -> BaseSampler:
        if self._independent_sampler is not None:
            return self._independent_sampler
        tag = zlib.crc32(param_name.encode("utf-8"))
        seed = int(self._trial_rng(trial, 1, tag).integers(2**32))
        return RandomSampler(seed=seed)

    def _complete_and_running(
        self, study: Study, trial: FrozenTrial
    ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        running = [t for t in trials if t.state == TrialState.RUNNING and t.number != trial.number]
        return complete, running

    def _observations(
        self, study: Study, space: SearchSpace, complete: list[FrozenTrial]
    ) -> tuple[np.ndarray, np.ndarray]:
        rows, values = [], []
        for t in complete:
            try:
                rows.append(space.encode(t.params))
            except (KeyError, ValueError):
                continue  # a trial outside this search space
            values.append(t.value)
        X = np.asarray(rows, dtype=float).reshape(-1, space.dim)
        sign = -1.0 if study.direction == StudyDirection.MINIMIZE else 1.0
        return X, _standardize(sign * np.asarray(values, dtype=float))

    def _pending_points(
        self, study: Study, space: SearchSpace, trial: FrozenTrial, running: list[FrozenTrial]
    ) -> np.ndarray:
        """Encoded parameters of running trials (constant liars); prunes stale registry entries."""
        name = study.study_name
        running_numbers = {t.number for t in running}
        for key in [k for k in self._pending if k[0] == name]:
            if key[1] not in running_numbers and key[1] != trial.number:
                del self._pending[key]
        self._startup = {k for k in self._startup if k[0] != name or k[1] in running_numbers}
        rows = []
        for t in running:
            params = dict(self._pending.get((name, t.number), {}))
            params.update(t.params)
            try:
                rows.append(space.encode(params))
            except (KeyError, ValueError):
                continue  # parameters not known yet, or outside this space
        return np.asarray(rows, dtype=float).reshape(-1, space.dim)

    def _n_unknown_in_flight(
        self, study: Study, space: SearchSpace, trial: FrozenTrial, running: list[FrozenTrial]
    ) -> int:
        """Recent RUNNING trials numbered before ``trial`` whose parameters are not known yet."""
        now = datetime.datetime.now()
        count = 0
        for t in running:
            if t.number > trial.number or (study.study_name, t.number) in self._pending:
                continue
            if all(name in t.params for name in space.names):
                continue
            started = t.datetime_start
            if started is None or (now - started).total_seconds() > _IN_FLIGHT_SECONDS:
                continue  # probably a trial of a worker that died
            count += 1
        return min(count, _MAX_IN_FLIGHT)

    def _fit(self, space: SearchSpace, X: np.ndarray, y: np.ndarray) -> GaussianProcess | None:
        key = tuple((n, repr(d)) for n, d in zip(space.names, space.distributions))
        init = self._fit_cache.get(key)
        kwargs: dict[str, Any] = dict(
            kernel=self._kernel,
            predictive=self._predictive,
            prior_shape=self._prior_shape,
            prior_rate=self._prior_rate,
            is_categorical=space.is_categorical,
        )
        try:
            gp = fit_gp(X, y, deterministic_objective=self._deterministic, init=init, **kwargs)
        except _NUMERICAL_ERRORS as error:
            _logger.warning(f"GP fit failed ({error!r}); using the previous hyperparameters.")
            params = init or GPHyperparams(
                inv_sq_lengthscales=np.ones(space.dim),
                noise=MIN_NOISE if self._deterministic else 0.1,
            )
            try:
                gp = GaussianProcess(X, y, params, **kwargs)
            except _NUMERICAL_ERRORS as error2:
                _logger.warning(f"GP fallback failed too ({error2!r}); sampling at random.")
                return None
        self._fit_cache[key] = gp.params
        return gp

    def _maximize(
        self,
        gp: GaussianProcess,
        space: SearchSpace,
        y: np.ndarray,
        pending: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Maximize the acquisition of ``gp`` conditioned on constant liars at ``pending``."""
        X = gp.X
        if len(pending) > 0:
            # Constant liar: the pending points "observed" at the worst value seen so far,
            # with the hyperparameters fitted on the real observations.
            gp = GaussianProcess(
                np.vstack([X, pending]),
                np.concatenate([y, np.full(len(pending), y.min())]),
                gp.params,
                kernel=gp.kernel,
                predictive=gp.predictive,
                prior_shape=gp.prior_shape,
                prior_rate=gp.prior_rate,
                is_categorical=gp.is_categorical,
            )
        kind: Any = self._acquisition
        acq = Acquisition(gp, kind=kind, best=float(y.max()), xi=self._xi)
        x, _ = optimize_acquisition(
            acq,
            space,
            rng=rng,
            warm_starts=X[[int(np.argmax(y))]],
            local_centres=X[np.argsort(-y, kind="stable")[:_N_LOCAL_CENTRES]],
            n_preliminary_samples=self._n_preliminary_samples,
            n_local_samples=self._n_preliminary_samples // 2,
            n_local_search=self._n_local_search,
        )
        return x

    def _propose(
        self,
        space: SearchSpace,
        gp: GaussianProcess | None,
        y: np.ndarray,
        pending: np.ndarray,
        rng: np.random.Generator,
        trial: FrozenTrial,
    ) -> np.ndarray:
        """Encoded proposal; a uniformly random point if the model or optimizer failed."""
        if gp is not None:
            try:
                return self._maximize(gp, space, y, pending, rng)
            except _NUMERICAL_ERRORS as error:
                _logger.warning(
                    f"Acquisition optimization failed in Trial#{trial.number} ({error!r}); "
                    "a uniformly random point is used instead."
                )
        return space.from_unit_cube(rng.random((1, space.dim)))[0]

    @staticmethod
    def _conflicts(study: Study, trial: FrozenTrial, params: dict[str, Any]) -> bool:
        """Whether a RUNNING trial of another worker already holds exactly ``params``."""
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number != trial.number and all(
                k in t.params and t.params[k] == v for k, v in params.items()
            ):
                return True
        return False

    # -- BaseSampler API -----------------------------------------------------------------------

    def reseed_rng(self) -> None:
        self._seed = _fresh_seed()
        if self._independent_sampler is not None:
            self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._raise_if_multi_objective(study)
        return {
            name: dist
            for name, dist in self._intersection_search_space.calculate(study).items()
            if not dist.single()
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._raise_if_multi_objective(study)
        search_space = {n: d for n, d in search_space.items() if not d.single()}
        if not search_space:
            return {}
        # One suggestion at a time per sampler (so n_jobs threads see each other's proposals),
        # with single-threaded BLAS: thousands of tiny BLAS calls (GP fit, L-BFGS-B) run faster
        # without thread-pool overhead and oversubscription.
        with self._lock, limit_blas_threads():
            complete, running = self._complete_and_running(study, trial)
            if len(complete) < max(self._n_startup_trials, 1):
                self._startup.add((study.study_name, trial.number))
                return {}
            space = SearchSpace(search_space)
            X, y = self._observations(study, space, complete)
            if len(X) == 0:
                return {}
            pending = self._pending_points(study, space, trial, running)
            rng = self._trial_rng(trial)
            gp = self._fit(space, X, y)
            # Earlier trials of other workers that are still choosing their parameters will most
            # likely take the points this model ranks first: take those as pending too (the
            # greedy constant-liar batch), so that simultaneous workers do not collide.
            for _ in range(self._n_unknown_in_flight(study, space, trial, running)):
                x = self._propose(space, gp, y, pending, rng, trial)
                pending = np.vstack([pending, x[None]])
            params = space.decode(self._propose(space, gp, y, pending, rng, trial))
            for _ in range(_MAX_CONFLICT_RETRIES):
                # Another process may have written the same point while we computed: then
                # treat that point as pending too and propose again.
                if not self._conflicts(study, trial, params):
                    break
                pending = np.vstack([pending, space.encode(params)[None]])
                params = space.decode(self._propose(space, gp, y, pending, rng, trial))
            self._pending[(study.study_name, trial.number)] = params
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._raise_if_multi_objective(study)
        sampler = self._independent_for(trial, param_name)
        in_startup = (study.study_name, trial.number) in self._startup
        if self._warn_independent_sampling and not in_startup:
            n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if n_complete >= max(self._n_startup_trials, 1):
                _logger.warning(
                    _INDEPENDENT_SAMPLING_WARNING.format(
                        param_name=param_name,
                        trial_number=trial.number,
                        independent_sampler_name=sampler.__class__.__name__,
                    )
                )
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if self._independent_sampler is not None:
            self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            self._pending.pop((study.study_name, trial.number), None)
            self._startup.discard((study.study_name, trial.number))
        if self._independent_sampler is not None:
            self._independent_sampler.after_trial(study, trial, state, values)


def _standardize(values: np.ndarray) -> np.ndarray:
    """Clip non-finite values to the finite range (with a warning), then standardize."""
    values = np.array(values, dtype=float)
    finite = np.isfinite(values)
    if not finite.all():
        lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
        warnings.warn(
            f"{int((~finite).sum())} non-finite objective value(s) clipped to the range of the "
            f"finite values [{lo}, {hi}] for the GP (the trials themselves are unchanged).",
            RuntimeWarning,
            stacklevel=3,
        )
        values = np.where(np.isposinf(values), hi, np.where(finite, values, lo))
    std = float(values.std())
    return (values - values.mean()) / (std if std > _STD_EPS else 1.0)
