# generated from optuna_gamma/samplers/_gamma_bo.py by tools/sync_optunahub.py; do not edit
"""``GammaBOSampler``: GP Bayesian optimization with a Gamma prior on the output precision."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import replace
import logging
import math
import numbers
import threading
from typing import Any
from typing import Literal
from typing import NamedTuple
from typing import TYPE_CHECKING
import zlib

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.samplers._base import _process_constraints_after_trial
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from ..gp.kernels import KernelName
from ..gp.settings import ACQUISITION_KINDS
from ..gp.settings import AcquisitionKind
from ..gp.settings import DEFAULT_PRIOR_RATE
from ..gp.settings import DEFAULT_PRIOR_SHAPE
from ..gp.settings import GPHyperparams
from ..gp.settings import GPSettings
from ..gp.settings import LengthscalePrior
from ..gp.settings import Mean
from ..gp.settings import Predictive
from ..gp.threads import limit_blas_threads
from ._failures import FAILED_STATES
from ._failures import failure_settings
from ._failures import FAILURE_TARGET
from ._failures import failure_targets
from ._failures import FailureModel
from ._failures import systematic_failures
from ._failures import unrepeated_failures
from ._failures import with_systematic_failures
from ._history import aged_acquisition
from ._history import aged_observations
from ._history import AgedObservations
from ._history import check_history
from ._history import History
from ._history import with_target
from ._noise import Incumbent
from ._noise import incumbent_of
from ._noise import INCUMBENTS
from ._noise import noise_evident
from ._noise import REPEATS
from ._noise import Repeats
from ._noise import resolve_incumbent
from ._observations import Observations
from ._optimize import optimize_acquisition
from ._optimize import OptimizerSettings
from ._parallel import conflicts
from ._parallel import fantasy_draws
from ._parallel import n_choosing
from ._refit import Fitted
from ._refit import recondition
from ._refit import refit_due
from ._search_space import SearchSpace


if TYPE_CHECKING:
    from ..gp.acquisition import Acquisition
    from ..gp.acquisition import FantasyAcquisition
    from ..gp.model import GaussianProcess


__all__ = ["GammaBOSampler"]

_logger = logging.getLogger(__name__)

#: Default exploration trade-off of EI/PI, in units of the standardized objective. 0 because the
#: Student-t tails already explore while data are few; in a first check (Hartmann-3 and Branin,
#: 30 trials, 5 seeds) xi = 0.01 left 10-30x larger median regret than xi = 0.
DEFAULT_XI = 0.0
_MAX_CONFLICT_RETRIES = 2
# Extra acquisition candidates are drawn around this many best observations.
_N_LOCAL_CENTRES = 5
# RUNNING trials of other workers numbered at most this many before the current one that have
# no parameters yet are taken as still choosing them (a logical clock: trial numbers, not time).
_MAX_IN_FLIGHT = 8
#: Resolution of a continuous parameter for the repeat guard, as a fraction of its (encoded,
#: log-scale for log=True) range: proposals closer than this to an evaluated (with
#: ``deterministic_objective=True``) or pending point count as repeats.
FLOAT_RESOLUTION = 1e-6
# Uniform random candidates tried when the acquisition cannot give an allowed point.
_N_RANDOM_FALLBACK = 256
_NUMERICAL_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)
# Joint draws of the pending points' values per suggestion (fantasy strategy).
_N_FANTASIES = 16
Parallel = Literal["fantasy", "liar"]
_PARALLEL: tuple[str, ...] = ("fantasy", "liar")
# Models kept for warm starts and factor reuse.
_MAX_CACHED_MODELS = 16

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


#: Upper bound of ``n_preliminary_samples``: the candidates are scored at once (about
#: ``n * dims`` floats per array), so a value such as ``10**12`` would end in a MemoryError.
MAX_PRELIMINARY_SAMPLES = 1 << 20


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_nonnegative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}.")
    return v


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}.")
    return bool(value)


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]


class _Snapshot(NamedTuple):
    """What one suggestion reads from the storage, once, at its start."""

    study: Study
    trial: FrozenTrial
    space: SearchSpace
    obs: Observations
    pending: np.ndarray  # encoded points of RUNNING trials (and own unwritten proposals)
    running: list[FrozenTrial]  # RUNNING trials of other workers
    known: set[int]  # numbers of the COMPLETE trials
    aged: AgedObservations | None = None  # with a history: the GP's data (age column)


def _space_key(space: SearchSpace) -> tuple[tuple[str, str], ...]:
    return tuple((n, repr(d)) for n, d in zip(space.names, space.distributions))


class GammaBOSampler(BaseSampler):
    """GP Bayesian optimization whose output precision has a Gamma conjugate prior.

    The surrogate is a GP on the unit-cube encoding of the search space with an ARD kernel of
    unit amplitude plus a noise ratio, :math:`K = K_\\theta + \\eta^2 I`, an unknown constant mean
    integrated out, and outputs ``y`` (sign-flipped so that larger is better, then standardized)
    with :math:`y \\mid m, \\tau \\sim N(m, K/\\tau)`,
    :math:`\\tau \\sim \\mathrm{Gamma}(a_0, b_0)`.
    Integrating the precision out gives a Student-t predictive with :math:`2 a_n = 2 a_0 + n - 1`
    degrees of freedom; the next point maximizes Student-t Expected Improvement (or Probability of
    Improvement). This is the "Gamma search" of the thesis "Research on Hyperparameter
    Optimization for Improving AutoML Performance" (Pukyong National University) done exactly;
    see ``docs/design.md`` §2 of the project and :mod:`optuna_gamma.gp.model` for the formulas.

    Kernel hyperparameters are fitted at every suggestion by maximizing the log marginal
    likelihood plus weak log-priors (a lengthscale prior scaled with the dimension) with
    L-BFGS-B, warm-started from the previous fit. The acquisition is maximized over the mixed
    space by Sobol candidates, then multi-start L-BFGS-B on continuous parameters (and on
    integer/step grids of more than 32 values, relaxed and rounded) and exhaustive coordinate
    search on categorical parameters and small grids (:mod:`optuna_gamma.samplers._optimize`).

    Constraints (``Trial.set_constraint`` in the objective, or ``constraints_func``): each
    constraint gets its own GP, and the acquisition is multiplied by the probability of
    feasibility under that GP's (Student-t) predictive.

    Failed trials (the objective returned NaN, or raised an error the study caught) are an
    unknown constraint, known only where trials ran (Gelbart, Snoek & Adams 2014): one more GP
    on the labels "completed" and "failed" of every evaluated point multiplies the acquisition
    by its probability of success, and a failed point is not proposed again
    (:mod:`~optuna_gamma.samplers._failures`). Without failed trials nothing changes.

    Parallel workers: trials of other workers that are RUNNING and already hold all parameters
    of the relative search space enter the model as *constant liars* (observations at their
    parameters with the worst standardized value seen so far), and proposals of this sampler
    instance that have not been written to storage yet (``n_jobs`` threads) are kept in a
    lock-protected in-process registry and used the same way. What holds: a point equal (at the
    parameters' resolution) to one pending when the suggestion starts is never proposed, and a
    proposal is checked against the storage once more before it is returned (proposed again, at
    most twice, when another process wrote the same point meanwhile). What does not: nothing
    reserves a point atomically across processes, so a point another process writes after that
    last check can be proposed again, and so can one of the trials asked before the first trial
    completes (Optuna's relative search space is empty then, and the independent sampler does
    not see pending points); small integer grids and 1-D spaces make both likelier. The
    per-epoch tuner awaits such a twin and reuses its result instead of training it twice.
    The random stream of a trial depends on
    ``(seed, trial.number)`` only, so processes that share a seed still propose different points,
    and a seed reproduces the same suggestions in any process.

    Several objectives (``create_study(directions=[...])``): one GP per objective and the exact
    log expected hypervolume improvement of their independent Student-t predictives, with the
    constraints as above and the pending points as Kriging believers
    (:mod:`~optuna_gamma.samplers._multi_objective`); ``history`` and ``target`` are
    single-objective only.

    Args:
        predictive: ``"student_t"`` (the Gamma-marginalized predictive, default), ``"gaussian"``
            (plain GP-EI with a fitted amplitude: the thesis's "Gaussian search") or ``"plugin"``
            (the Gamma posterior-mean variance :math:`b_n/a_n` plugged into a Gaussian EI: the
            thesis's literal procedure).
        acquisition: ``"ei"`` (Expected Improvement) or ``"pi"`` (Probability of Improvement).
        xi: Exploration trade-off :math:`\\xi \\ge 0` of EI/PI in units of the standardized
            objective (one unit = one standard deviation of the observed values).
        prior_shape: Gamma prior shape :math:`a_0 > 0`. The default 0.5 is weak (worth one
            pseudo-observation: a unit-information prior), keeping the predictive heavy-tailed
            while data are few.
        prior_rate: Gamma prior rate :math:`b_0 > 0`. The default 0.5 makes the prior mean
            precision :math:`a_0/b_0 = 1`, the precision of standardized outputs.
        kernel: ``"matern52"`` (ARD Matern-5/2, default) or ``"rbf"`` (ARD squared exponential,
            thesis eqs. 5-6).
        mean: The objective GP's prior mean. ``"worst"`` (default): the worst observed value
            (De Ath, Fieldsend & Everson 2020), so that far from the data the model predicts
            that value and the first dozen trials search nearer the good ones; ``"constant"``:
            an unknown constant with a flat prior, integrated out (the default before);
            ``"zero"``: zero, the average of the observations. With ``"worst"``, constraints,
            the failure model, several objectives and a ``history`` keep ``"constant"``
            (with several objectives the worst mean won DTLZ2 and lost ZDT1-2; the others
            were not measured).
        lengthscale_prior: ``"dim_scaled"`` (log-normal, scaled with the dimension; Hvarfner
            et al. 2024; default) or ``"optuna"`` (Optuna's ``GPSampler`` heuristic).
        n_startup_trials: Number of COMPLETE trials sampled at random before the GP is used
            (2, as in the thesis).
        seed: Seed (an integer >= 0) of the sampler's random streams. ``None`` draws one.
        independent_sampler: Sampler for the start-up trials and for parameters outside the
            relative search space. ``None`` samples uniformly at random (log-uniformly for
            ``log=True``), seeded per trial from ``(seed, trial.number, parameter name)``, so that
            processes sharing a seed do not repeat each other's start-up points, through the
            sampler's own encoding (valid for any distribution, where ``RandomSampler`` overflows
            on ranges wider than the largest float).
        deterministic_objective: The objective is deterministic: fix the GP noise ratio at its
            minimum (``1e-10``) and never propose a point already evaluated (whatever
            ``repeats`` says). Otherwise the noise ratio is fitted.
        repeats: Whether a point already evaluated (at the parameters' resolution: the same
            category, integer or grid value, continuous parameters within ``FLOAT_RESOLUTION``
            of their range) may be proposed again. ``"never"`` (default): a study gets distinct
            points, noisy or not (Optuna reports the best *observed* trial, whose true value a
            re-measurement cannot raise; measured in
            ``benchmarks/sampler/results/issue17_no_repeats``). ``"if_noisy"`` (the default
            before): once the fitted noise ratio is at least
            :data:`~optuna_gamma.samplers._noise.NOISE_EVIDENCE` (evidence of noise; a constant
            objective gets distinct proposals), and no longer once every repeat measured so far
            returned the value of its first measurement (the ratio was misfit, not noise);
            never with ``deterministic_objective=True``. See :mod:`~optuna_gamma.samplers._noise`.
        constraints_func: Optional ``FrozenTrial -> Sequence[float]``, called after each
            COMPLETE (or PRUNED) trial; a value ``> 0`` means violated (Optuna's convention, as
            in ``GPSampler(constraints_func=...)``). Constraints set in the objective with
            ``Trial.set_constraint`` are used as well.
        warn_independent_sampling: Log a warning when a parameter is sampled by the independent
            sampler after the start-up trials.
        n_preliminary_samples: Sobol candidates scored per suggestion (at most 2**20).
        n_local_search: Local searches (L-BFGS-B and coordinate search) per suggestion.
        parallel: How pending points (RUNNING trials of other workers, ``n_jobs`` threads) enter
            the acquisition: ``"fantasy"`` (EI averaged over joint Student-t draws of their
            values, :class:`~optuna_gamma.gp.acquisition.FantasyAcquisition`) or ``"liar"``
            (constant liar: observed at the worst value so far). PI always uses the liar.
        warp_output: Apply a Yeo-Johnson power transform (exponent by maximum likelihood) to the
            standardized objective values before the GP sees them (from 5 observations on);
            monotone, so it keeps the order of the values.
        history: Optional ``Study -> History`` (:class:`~optuna_gamma.History`): observations of
            earlier, related studies, each with its age (e.g. epochs ago), called once per
            suggestion. They enter the GP together with the study's own COMPLETE trials (age
            0); the GP gets one more input, the age divided by ``AGE_SCALE`` (10), with its own
            fitted lengthscale, so the kernel is the product
            :math:`k((x, a), (x', a')) = k_x(x, x')\\, k_a(|a - a'|)` whose correlation decays
            with the distance in age: the time-varying GP-bandit of PB2 (Parker-Holder et al.,
            NeurIPS 2020) after the time-varying GP-UCB of Bogunovic et al. (AISTATS 2016).
            The acquisition is maximized at age 0, and the EI incumbent is the best posterior
            mean at age 0 over the observed points. Observations whose parameters are not all
            in the relative search space (a name missing, a value out of range) are skipped.
            When the history and the own trials together number at least
            ``n_startup_trials``, the GP is used from the study's first trial (no random
            start-up). The repeat guard and the pending points concern the study's own trials
            only. ``None`` (or a history with no usable observation): the sampler works exactly
            as without the option. See :mod:`optuna_gamma.samplers._history`.
        target: Optional ``FrozenTrial -> float``: the value the GP models for a COMPLETE trial
            of the study (default: ``trial.value``), in the study's direction; e.g. the
            improvement over the trial's start state
            ``trial.value - trial.user_attrs["start_value"]``, so that the values of studies
            that start from different states are comparable with a ``history``.

        incumbent: The incumbent :math:`f^*` of EI/PI: ``"posterior_mean"`` (the best posterior
            mean of the objective at an observed point, so that a lucky draw of a noisy
            objective does not set the bar; Picheny et al. 2013's plug-in EI, cf. BoTorch's
            noisy EI),
            ``"observed"`` (the best observed value) or ``"auto"`` (default:
            ``"posterior_mean"`` unless ``deterministic_objective=True``). The local search
            starts from that incumbent too.
    ``history`` and ``target`` must be picklable (module-level functions or picklable callable
    objects, not lambdas) when the sampler is sent to other processes (``n_jobs`` threads need
    not; the tuner's parallel workers do).
    """

    def __init__(
        self,
        *,
        predictive: Predictive = "student_t",
        acquisition: AcquisitionKind = "ei",
        xi: float = DEFAULT_XI,
        prior_shape: float = DEFAULT_PRIOR_SHAPE,
        prior_rate: float = DEFAULT_PRIOR_RATE,
        kernel: KernelName = "matern52",
        mean: Mean = "worst",
        lengthscale_prior: LengthscalePrior = "dim_scaled",
        n_startup_trials: int = 2,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
        deterministic_objective: bool = False,
        repeats: Repeats = "never",
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
        warn_independent_sampling: bool = True,
        n_preliminary_samples: int = 512,
        n_local_search: int = 8,
        parallel: Parallel = "fantasy",
        warp_output: bool = True,
        history: Callable[[Study], History] | None = None,
        target: Callable[[FrozenTrial], float] | None = None,
        incumbent: Incumbent = "auto",
    ) -> None:
        _check_choice("acquisition", acquisition, ACQUISITION_KINDS)
        _check_choice("incumbent", incumbent, INCUMBENTS)
        _check_choice("parallel", parallel, _PARALLEL)
        _check_choice("repeats", repeats, REPEATS)
        self._repeats = repeats
        self._parallel = parallel
        self._warp_output = _check_bool("warp_output", warp_output)
        self._settings = GPSettings(
            kernel=kernel,
            predictive=predictive,
            prior_shape=prior_shape,
            prior_rate=prior_rate,
            mean=mean,
            lengthscale_prior=lengthscale_prior,
            deterministic_objective=_check_bool(
                "deterministic_objective", deterministic_objective
            ),
        )
        self._acquisition = acquisition
        self._incumbent = resolve_incumbent(incumbent, self._settings.deterministic_objective)
        self._xi = _check_nonnegative("xi", xi)
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
        if constraints_func is not None and not callable(constraints_func):
            raise ValueError(
                f"constraints_func must be callable or None, got {constraints_func!r}."
            )
        self._constraints_func = constraints_func
        self._warn_independent_sampling = _check_bool(
            "warn_independent_sampling", warn_independent_sampling
        )
        n_preliminary = _check_int("n_preliminary_samples", n_preliminary_samples, 1)
        if n_preliminary > MAX_PRELIMINARY_SAMPLES:  # memory: n x dims floats
            raise ValueError(
                f"n_preliminary_samples must be <= {MAX_PRELIMINARY_SAMPLES}, "
                f"got {n_preliminary_samples!r}."
            )
        self._optimizer_settings = OptimizerSettings(
            n_preliminary_samples=n_preliminary,
            n_local_samples=n_preliminary // 2,
            n_local_search=_check_int("n_local_search", n_local_search, 1),
        )
        for name, fn in (("history", history), ("target", target)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{name} must be callable or None, got {fn!r}.")
        self._history = history
        self._target = target
        # (study name, trial number) -> the History called for the space of a first trial.
        self._histories: dict[tuple[str, int], History] = {}

        self._intersection_search_space = IntersectionSearchSpace()
        self._lock = threading.Lock()
        # (study name, trial number) -> relative params proposed but not finished yet.
        self._pending: dict[tuple[str, int], dict[str, Any]] = {}
        # (study name, trial number) of trials whose relative sampling fell in the start-up phase.
        self._startup: set[tuple[str, int]] = set()
        # (study, search-space signature, model) -> the last GP and the number of observations
        # its hyperparameters were fitted on (warm start, refit schedule, factor reuse).
        self._fit_cache: dict[tuple[Any, ...], Fitted] = {}

    @property
    def gp_settings(self) -> GPSettings:
        """The settings of the sampler's GP (frozen)."""
        return self._settings

    # -- pickling (the lock cannot be pickled) -------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_fit_cache"] = {}  # large arrays; refitted (from the default start) when needed
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- helpers -------------------------------------------------------------------------------

    def _raise_if_multi_objective(self, study: Study) -> None:
        """Several objectives are supported (:mod:`~optuna_gamma.samplers._multi_objective`),
        but not with the single-valued ``history`` and ``target`` options."""
        if len(study.directions) > 1 and (self._history is not None or self._target is not None):
            raise ValueError(
                f"GammaBOSampler's history and target options support single-objective studies "
                f"only, got {len(study.directions)} objectives "
                f"({[d.name for d in study.directions]})."
            )

    def _trial_rng(self, trial: FrozenTrial, *extra: int) -> np.random.Generator:
        sequence = np.random.SeedSequence(self._seed, spawn_key=(trial.number, *extra))
        return np.random.default_rng(sequence)

    def _uniform(self, trial: FrozenTrial, param_name: str, dist: BaseDistribution) -> Any:
        """The default independent sampling: uniform over the distribution's values (log-uniform
        for ``log=True``), seeded from ``(seed, trial.number, param_name)``, through the same
        encoding as the GP's proposals (so valid for any distribution Optuna accepts, where
        ``RandomSampler`` overflows, e.g. for ``FloatDistribution(-1.7e308, 1.7e308)``)."""
        tag = zlib.crc32(param_name.encode("utf-8"))
        space = SearchSpace({param_name: dist})
        u = self._trial_rng(trial, 1, tag).random((1, 1))
        return space.decode(space.from_unit_cube(u)[0])[param_name]

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
            except (KeyError, ValueError, TypeError):
                continue  # parameters not known yet, or outside this space
        return space.round(np.asarray(rows, dtype=float).reshape(-1, space.dim))

    def _n_choosing(
        self, study: Study, space: SearchSpace, trial: FrozenTrial, running: list[FrozenTrial]
    ) -> int:
        """Workers still choosing (:func:`~optuna_gamma.samplers._parallel.n_choosing`)."""
        registered = {n for name, n in self._pending if name == study.study_name}
        return n_choosing(running, trial.number, registered, space.names, _MAX_IN_FLIGHT)

    def _fit(
        self,
        study: Study,
        space: SearchSpace,
        X: np.ndarray,
        y: np.ndarray,
        target: str,
        is_categorical: np.ndarray | None = None,
        noise_aware: bool = False,
        settings: GPSettings | None = None,
    ) -> GaussianProcess | None:
        """The GP of ``target`` on ``(X, y)``: hyperparameters refitted on the schedule of
        :func:`~optuna_gamma.samplers._refit.refit_due` (warm-started from the last fit), else the
        last ones reused with the Cholesky factor extended by the new rows
        (:meth:`GaussianProcess.extended`). ``is_categorical`` defaults to the space's mask
        (a history's GP has one more column, the age). ``noise_aware``: from 33 to 64
        observations refit at every suggestion only while the last fit found noise (the
        single-objective GP, where that was measured); otherwise at every suggestion up to 64
        (several objectives: on ZDT2 the schedule left 9 of 10 seeds slightly behind at trial
        50, hypervolume regret 0.0147 against 0.0142; constraints, a history). ``settings``:
        the model's, if not the sampler's (the failure model). ``mean="worst"`` is the single
        objective's (``target="objective"``); every other target gets the constant mean."""
        # Lazy by design: scipy.linalg and scipy.optimize (about 0.2 s) load on the first
        # suggestion, not at `import optuna_gamma` (tests/test_sampler_behaviour.py).
        from ..gp.fit import fit_gp
        from ..gp.model import GaussianProcess

        mask = space.is_categorical if is_categorical is None else is_categorical
        settings = self._settings if settings is None else settings
        if settings.mean == "worst" and target != "objective":
            settings = replace(settings, mean="constant")
        key = (study.study_name, _space_key(space), target)
        cached = self._fit_cache.pop(key, None)
        n = len(X)
        gp = None
        noise = cached.gp.params.noise if cached is not None and noise_aware else math.inf
        if cached is not None and not refit_due(n, cached.n_fitted, noise):
            gp = recondition(cached.gp, X, y)
        if gp is None:
            init = None if cached is None else cached.gp.params
            try:
                gp = fit_gp(X, y, settings, is_categorical=mask, init=init)
            except _NUMERICAL_ERRORS as error:
                _logger.warning(f"GP fit failed ({error!r}); using the previous hyperparameters.")
                params = init or GPHyperparams.default(X.shape[1], settings)
                try:
                    gp = GaussianProcess(X, y, params, settings, is_categorical=mask)
                except _NUMERICAL_ERRORS as error2:
                    _logger.warning(f"GP fallback failed too ({error2!r}); sampling at random.")
                    return None
            n_fitted = n
        else:
            assert cached is not None
            n_fitted = cached.n_fitted
        self._fit_cache[key] = Fitted(gp, n_fitted)
        while len(self._fit_cache) > _MAX_CACHED_MODELS:  # oldest first (insertion order)
            self._fit_cache.pop(next(iter(self._fit_cache)))
        return gp

    def _acquisition_function(
        self,
        gp: GaussianProcess,
        obs: Observations,
        best: float | None,
        constraint_models: list[tuple[GaussianProcess, float]],
        pending: np.ndarray,
        rng: np.random.Generator,
    ) -> Acquisition | FantasyAcquisition:
        """The log acquisition over the incumbent ``best``, given the pending points (fantasies
        or constant liars)."""
        # Lazy by design, as in `_fit`: the acquisition module loads scipy.special.
        from ..gp.acquisition import Acquisition
        from ..gp.acquisition import FantasyAcquisition
        from ..gp.acquisition import Feasibility
        from ..gp.model import Fantasies

        constraints = [Feasibility(c, t) for c, t in constraint_models]
        if len(pending) > 0 and self._parallel == "fantasy" and self._acquisition == "ei":
            draws = fantasy_draws(gp, pending, rng, _N_FANTASIES)
            return FantasyAcquisition(
                Fantasies(gp, pending, draws),
                best=best,
                draws=draws,
                xi=self._xi,
                constraints=constraints,
            )
        if len(pending) > 0:
            # Constant liar: the pending points "observed" at the worst value seen so far,
            # with the hyperparameters fitted on the real observations.
            gp = gp.with_observations(pending, np.full(len(pending), float(obs.y.min())))
        return Acquisition(
            gp, kind=self._acquisition, best=best, xi=self._xi, constraints=constraints
        )

    def _random_point(
        self,
        space: SearchSpace,
        rng: np.random.Generator,
        exclude: Callable[..., np.ndarray],
        fallback: np.ndarray | None = None,
    ) -> np.ndarray:
        """A uniformly random point that ``exclude`` allows. When none of the random points is
        allowed (a small space whose every point was evaluated or is pending), ``fallback``
        (the acquisition's choice, then a repeat it ranked first) if given, else the first
        random point."""
        X = space.from_unit_cube(rng.random((_N_RANDOM_FALLBACK, space.dim)))
        allowed = np.flatnonzero(~exclude(X))
        if len(allowed) > 0:
            return X[allowed[0]]
        return X[0] if fallback is None else fallback

    def _propose(
        self,
        space: SearchSpace,
        gp: GaussianProcess | None,
        obs: Observations,
        constraint_models: list[tuple[GaussianProcess, float]],
        pending: np.ndarray,
        rng: np.random.Generator,
        trial: FrozenTrial,
        aged: AgedObservations | None = None,
    ) -> np.ndarray:
        """Encoded proposal; a uniformly random point if the model or optimizer failed. With a
        history, ``gp`` is the aged GP of ``aged`` (:mod:`~optuna_gamma.samplers._history`)."""
        exclude = self._exclusion(space, obs, pending, None if aged is not None else gp)
        chosen: np.ndarray | None = None
        if gp is not None and self._acquisition == "ei" and gp.dof <= 1.0:
            # EI needs more than one degree of freedom (e.g. a single observation with the
            # prior a0 = 1/2): one more point at random, as in the start-up phase.
            gp = None
        elif gp is not None:
            try:
                acq: Any
                if aged is None:
                    index, best = incumbent_of(gp, obs, self._incumbent)
                    acq = self._acquisition_function(
                        gp, obs, best, constraint_models, pending, rng
                    )
                    centres = obs.X[obs.ranked()]
                    warm = obs.X[[obs.incumbent_index() if index is None else index]]
                else:
                    n_fantasies = _N_FANTASIES if self._parallel == "fantasy" else 0
                    acq, centres = aged_acquisition(
                        gp,
                        aged,
                        constraint_models,
                        pending,
                        rng,
                        kind=self._acquisition,
                        xi=self._xi,
                        fantasies=n_fantasies,
                    )
                    warm = centres[:1]
                x, _ = optimize_acquisition(
                    acq,
                    space,
                    rng=rng,
                    warm_starts=warm,
                    local_centres=centres[:_N_LOCAL_CENTRES],
                    exclude=exclude,
                    settings=self._optimizer_settings,
                )
                if not exclude(x[None])[0]:
                    return x
                chosen = x
            except _NUMERICAL_ERRORS as error:
                _logger.warning(
                    f"Acquisition optimization failed in Trial#{trial.number} ({error!r}); "
                    "a uniformly random point is used instead."
                )
        return self._random_point(space, rng, exclude, fallback=chosen)

    def _exclusion(
        self,
        space: SearchSpace,
        obs: Observations,
        pending: np.ndarray,
        gp: GaussianProcess | None,
        values: np.ndarray | None = None,
    ) -> Callable[[np.ndarray], np.ndarray]:
        """The repeat guard: points equal (at the parameters' resolution) to a pending one or
        to an evaluated one, unless ``repeats="if_noisy"`` and ``gp`` has evidence of noise
        (:func:`~optuna_gamma.samplers._noise.noise_evident`: a fitted noise ratio that repeats
        measured so far do not contradict; never for a deterministic objective). ``values``:
        the observed values, ``(n,)`` or ``(n, m)`` (default ``obs.y``)."""
        reference = pending
        if self._repeats == "never" or not noise_evident(
            gp, obs.X, obs.y if values is None else values
        ):
            reference = np.vstack([obs.X, pending])
        if len(obs.failed) > 0:  # a failed point is never proposed again
            reference = np.vstack([reference, obs.failed])

        def exclude(X: np.ndarray) -> np.ndarray:
            return space.matches(X, reference, FLOAT_RESOLUTION)

        return exclude

    def _failure_model(
        self, study: Study, space: SearchSpace, obs: Observations
    ) -> FailureModel | None:
        """The failure model where trials failed (:mod:`~optuna_gamma.samplers._failures`);
        ``None`` without failures (or when its fit failed)."""
        if len(obs.failed) == 0:
            return None
        Xf, g, threshold = failure_targets(obs.X, obs.failed)
        gp = self._fit(
            study, space, Xf, g, FAILURE_TARGET, settings=failure_settings(self._settings)
        )
        if gp is None:
            return None
        return FailureModel(gp, threshold, systematic_failures(gp, threshold, len(obs.X)))

    def _constraint_models(
        self,
        study: Study,
        space: SearchSpace,
        obs: Observations,
        failure: FailureModel | None = None,
    ) -> list[tuple[GaussianProcess, float]]:
        """One GP per constraint, and the ``failure`` model (:meth:`_failure_model`) while some
        failure is systematic, with the feasibility threshold of each."""
        models = []
        for i, name in enumerate(obs.constraint_names):
            Xc, g, threshold = obs.constraint_targets(i)
            if len(g) == 0:
                continue
            gp = self._fit(study, space, Xc, g, target=f"constraint:{name}")
            if gp is not None:
                models.append((gp, threshold))
        if failure is not None and failure.informative:
            models.append((failure.gp, failure.threshold))
        return models

    # -- BaseSampler API -----------------------------------------------------------------------

    def reseed_rng(self) -> None:
        self._seed = _fresh_seed()
        if self._independent_sampler is not None:
            self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._raise_if_multi_objective(study)
        space = {
            name: dist
            for name, dist in self._intersection_search_space.calculate(study).items()
            if not dist.single()
        }
        if not space and self._history is not None:
            # No trial of the study tells the space yet: the history's distributions do.
            history = check_history(self._history(study))
            with self._lock:
                self._histories[(study.study_name, trial.number)] = history
            space = {n: d for n, d in (history.distributions or {}).items() if not d.single()}
        return space

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._raise_if_multi_objective(study)
        with self._lock:  # the history called for this trial's space, if any
            history = self._histories.pop((study.study_name, trial.number), None)
        if len(study.directions) > 1:
            from ._multi_objective import sample_relative_multi

            return sample_relative_multi(self, study, trial, search_space)
        search_space = {n: d for n, d in search_space.items() if not d.single()}
        if not search_space:
            return {}
        # One suggestion at a time per sampler (so n_jobs threads see each other's proposals),
        # with single-threaded BLAS: thousands of tiny BLAS calls (GP fit, L-BFGS-B) run faster
        # without thread-pool overhead and oversubscription.
        with self._lock, limit_blas_threads():
            trials = study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING, *FAILED_STATES)
            )
            complete = with_target(
                [t for t in trials if t.state == TrialState.COMPLETE], self._target
            )
            running = [
                t for t in trials if t.state == TrialState.RUNNING and t.number != trial.number
            ]
            space = SearchSpace(search_space)
            snap = _Snapshot(
                study=study,
                trial=trial,
                space=space,
                obs=Observations.from_trials(
                    space,
                    complete,
                    study.direction,
                    warp_output=self._warp_output,
                    failed=unrepeated_failures(trials),
                ),
                pending=self._pending_points(study, space, trial, running),
                running=running,
                known={t.number for t in complete},
                aged=self._aged(study, space, complete, history),
            )
            n_history = 0 if snap.aged is None else snap.aged.n_history
            n_model = snap.obs.n + n_history
            if len(complete) + n_history < max(self._n_startup_trials, 1) or n_model == 0:
                params = self._startup_params(snap)
            else:
                params = space.decode(self._suggest(snap))
            if params:
                self._pending[(study.study_name, trial.number)] = params
        return params

    def _aged(
        self,
        study: Study,
        space: SearchSpace,
        complete: list[FrozenTrial],
        history: History | None,
    ) -> AgedObservations | None:
        """The GP's data with the history (``None`` without one, or when it has no observation
        in ``space``). The history is called once per suggestion: here, unless
        ``infer_relative_search_space`` called it already (``history``)."""
        if self._history is None:
            return None
        if history is None:
            history = check_history(self._history(study))
        return aged_observations(
            space, complete, history, study.direction, warp_output=self._warp_output
        )

    def _startup_params(self, snap: _Snapshot) -> dict[str, Any]:
        """Start-up phase: with the default independent sampler, a uniformly random point of the
        relative space that the repeat guard allows; else ``{}`` (the independent sampler)."""
        self._startup.add((snap.study.study_name, snap.trial.number))
        if self._independent_sampler is not None or (len(snap.pending) == 0 and snap.obs.n == 0):
            return {}
        # No model yet, so no evidence of noise: evaluated points are excluded too.
        exclude = self._exclusion(snap.space, snap.obs, snap.pending, None)
        rng = self._trial_rng(snap.trial, 2)
        return snap.space.decode(self._random_point(snap.space, rng, exclude))

    def _suggest(self, snap: _Snapshot) -> np.ndarray:
        """The encoded proposal, from the snapshot of the trials taken by ``sample_relative``."""
        study, trial, space, obs = snap.study, snap.trial, snap.space, snap.obs
        rng = self._trial_rng(trial)
        aged = snap.aged
        # The failure model first: its systematic failures enter the objective's data.
        failure = self._failure_model(study, space, obs)
        if aged is None:
            X, y = obs.X, obs.y
            if failure is not None:
                X, y = with_systematic_failures(X, y, obs.failed, failure.systematic)
            gp = self._fit(study, space, X, y, target="objective", noise_aware=True)
        else:
            mask = aged.is_categorical
            gp = self._fit(study, space, aged.X, aged.y, "objective:history", is_categorical=mask)
        constraint_models = (
            self._constraint_models(study, space, obs, failure) if obs.constrained else []
        )
        taken = snap.pending

        def propose() -> np.ndarray:
            return self._propose(space, gp, obs, constraint_models, taken, rng, trial, aged)

        # Earlier trials of other workers that are still choosing their parameters will most
        # likely take the points this model ranks first: take those as pending too (the
        # greedy batch), so that simultaneous workers do not collide.
        for _ in range(self._n_choosing(study, space, trial, snap.running)):
            taken = np.vstack([taken, propose()[None]])
        x = propose()
        for _ in range(_MAX_CONFLICT_RETRIES):
            # Another process may have written the same point while we computed: then
            # treat that point as pending too and propose again.
            if not conflicts(study, trial, space, x, snap.known, FLOAT_RESOLUTION):
                break
            taken = np.vstack([taken, x[None]])
            x = propose()
        return x

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._raise_if_multi_objective(study)
        sampler = self._independent_sampler
        in_startup = (study.study_name, trial.number) in self._startup
        if self._warn_independent_sampling and not in_startup:
            n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if n_complete >= max(self._n_startup_trials, 1):
                _logger.warning(
                    _INDEPENDENT_SAMPLING_WARNING.format(
                        param_name=param_name,
                        trial_number=trial.number,
                        independent_sampler_name=(
                            "uniform random sampling"
                            if sampler is None
                            else sampler.__class__.__name__
                        ),
                    )
                )
        if sampler is None:
            return self._uniform(trial, param_name, param_distribution)
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
            self._histories.pop((study.study_name, trial.number), None)
        if self._constraints_func is not None:
            # Optuna's own helper (as GPSampler and TPESampler use it): calls constraints_func
            # for COMPLETE and PRUNED trials and stores the values where Trial.constraints and
            # every constrained sampler read them. Not public API (optuna.samplers._base).
            _process_constraints_after_trial(self._constraints_func, study, trial, state)
        if self._independent_sampler is not None:
            self._independent_sampler.after_trial(study, trial, state, values)
