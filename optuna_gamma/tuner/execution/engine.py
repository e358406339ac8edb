"""The engine behind :func:`~optuna_gamma.tuner.tune_per_epoch` and
:func:`~optuna_gamma.tuner.tune_whole` (docs/design.md §3-§4).

One :class:`Engine` holds a run: the user's trainer, the validated search space, the settings,
the storage and the artifact store. A *study* of the run is a set of trials that all start from
the same training state and train the same epochs: in per-epoch mode the study
``"{run}/epoch-{e:03d}"`` trains epoch ``e`` from the state adopted in epoch ``e - 1`` (the
thesis's fig. 8); in whole mode the study ``"{run}/whole"`` trains epochs ``1..E`` from the
initial state. Every study runs through :meth:`optuna.study.Study.optimize`, so Optuna's tell,
FAIL-on-exception and callbacks apply, and a trial:

1. restores the study's start state, takes its hyperparameters (:class:`~.space.ParamSpace`),
   and, if the same point at each parameter's resolution was already trained in this study,
   completes with that trial's result and ``reused_from`` = its number (no wasted trials);
2. otherwise sets the optimizer hyperparameters, trains the epochs (each under the epoch's seed,
   the same for all trials), evaluates on the validation split, uploads the trained state to the
   artifact store and returns the objective: the unclipped kappa by default, with the clipped
   one recorded as ``kappa_clipped``;
3. a diverged trial (a non-finite metric, a loss beyond 10 times the start's) is COMPLETE with
   a finite value just beyond the objective's worst healthy value (one spread below the worst
   value so far where the objective has no bound; :func:`~.scoring.diverged_value`), so the
   sampler learns the region is bad without the healthy trials' differences being squashed.

After ``T`` complete trials the study's best trial (``study.best_trial``, the one
optuna-dashboard shows; the best healthy one if that diverged) is adopted: its state is loaded
and checked (and recomputed from the start state if it is unreadable), recorded in the study's
user attribute ``adopted``, and the other trials' states are deleted unless kept on request.

Resume: the serial engine holds the run lock, so every RUNNING trial it finds belongs to a dead
process: it is told FAIL and re-enqueued once with the same parameters. Samplers are rebuilt
for each trial from a seed derived from (run seed, study, completed trials)
(:class:`~.samplers.ReseededSampler`), so a resumed run proposes what an uninterrupted one
would, and on a CPU the schedule and the final weights are bit-identical.

The engine sets the run up and coordinates its parts, each a module of its own: the run's
studies (:mod:`.studies`), the training (:mod:`.training`), the trials' start states
(:mod:`.start_states`), one trial (:mod:`.trials`, scored by :mod:`.scoring`), the policy's
plan of a study (:mod:`.planning`), the samplers (:mod:`.sampling`), adoption
(:mod:`.adoption`), dead trials retried (:mod:`.retries`) and the progress view (:mod:`.live`).
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.config import TunerConfig
from optuna_gamma.tuner.execution.adoption import Adoption
from optuna_gamma.tuner.execution.live import Progress
from optuna_gamma.tuner.execution.manifest import RunManifest
from optuna_gamma.tuner.execution.manifest import trainer_spec
from optuna_gamma.tuner.execution.planning import enqueue_next_slot
from optuna_gamma.tuner.execution.planning import StudyPlanner
from optuna_gamma.tuner.execution.retries import fail_stale
from optuna_gamma.tuner.execution.runtime import resolve_device
from optuna_gamma.tuner.execution.runtime import torch_threads
from optuna_gamma.tuner.execution.sampling import Sampling
from optuna_gamma.tuner.execution.start_states import StartStates
from optuna_gamma.tuner.execution.studies import RunStudies
from optuna_gamma.tuner.execution.training import Training
from optuna_gamma.tuner.execution.trials import optimize
from optuna_gamma.tuner.execution.trials import TrialRunner
from optuna_gamma.tuner.frontend import from_cli
from optuna_gamma.tuner.frontend import widen_hint
from optuna_gamma.tuner.persistence.identity import identity_fields
from optuna_gamma.tuner.persistence.identity import objective_code
from optuna_gamma.tuner.persistence.identity import prepare_run
from optuna_gamma.tuner.persistence.identity import resolve_run_name
from optuna_gamma.tuner.persistence.identity import sampler_code
from optuna_gamma.tuner.persistence.runfiles import crash_point
from optuna_gamma.tuner.persistence.runfiles import default_run_dir
from optuna_gamma.tuner.persistence.runfiles import run_lock
from optuna_gamma.tuner.persistence.runfiles import RunPaths
from optuna_gamma.tuner.persistence.states import open_artifact_store
from optuna_gamma.tuner.persistence.states import StateStore
from optuna_gamma.tuner.persistence.storage import open_storage
from optuna_gamma.tuner.persistence.storage import storage_file
from optuna_gamma.tuner.policies import make_policy
from optuna_gamma.tuner.policies import Policy
from optuna_gamma.tuner.policies import ThesisPolicy
from optuna_gamma.tuner.search.objectives import resolve_objective
from optuna_gamma.tuner.search.samplers import SamplerPlan
from optuna_gamma.tuner.search.space import in_distribution
from optuna_gamma.tuner.search.space import ParamSpace
from optuna_gamma.tuner.search.space import SpaceLike
from optuna_gamma.tuner.trainer import check_hyperparameters
from optuna_gamma.tuner.trainer import check_trainer
from optuna_gamma.tuner.trainer import persistent_loaders
from optuna_gamma.tuner.trainer import trainer_defaults


if TYPE_CHECKING:
    from optuna_gamma.tuner.trainer import Trainer


__all__ = ["Engine"]

_logger = get_logger(__name__)


class Engine:
    """One run of the tuner (see the module docstring).

    Its parts exist once :meth:`opened`: :attr:`studies`, :attr:`training`, :attr:`starts`,
    :attr:`trials`, :attr:`planner`, :attr:`sampling`, :attr:`adoption` and :attr:`progress`.

    Args:
        trainer: The user's :class:`~optuna_gamma.tuner.trainer.Trainer`.
        space: The search space; ``None`` takes ``trainer.search_space()``.
        config: The settings.
        mode: ``"per-epoch"`` or ``"whole"``.
        role: ``"serial"`` (this process trains every trial, holding the run lock),
            ``"coordinator"`` (holds the lock, prepares the run and finalizes it while workers
            train; :mod:`~optuna_gamma.tuner.execution.workers`) or ``"worker"`` (trains trials
            next to other workers, without the lock).

    Raises:
        ValueError: Any bad argument, found before any work starts.
    """

    studies: RunStudies
    training: Training
    starts: StartStates
    trials: TrialRunner
    planner: StudyPlanner
    sampling: Sampling
    adoption: Adoption
    progress: Progress

    def __init__(
        self,
        trainer: Trainer,
        space: SpaceLike | None,
        config: TunerConfig,
        mode: str,
        role: str = "serial",
    ) -> None:
        if role not in ("serial", "coordinator", "worker"):
            raise ValueError(f"role must be 'serial', 'coordinator' or 'worker', got {role!r}")
        if not isinstance(config, TunerConfig):
            raise ValueError(f"config must be a TunerConfig, got {type(config).__name__}")
        check_trainer(trainer)
        if space is None:
            get_space = getattr(trainer, "search_space", None)
            space = get_space() if callable(get_space) else None
            if space is None:
                raise ValueError(
                    "no search space: pass space=... or give the trainer a search_space()"
                )
        self.trainer = trainer
        self.config = config
        self.mode = mode
        self.role = role
        self.space = ParamSpace.of(space)
        self.objective = resolve_objective(config.objective)
        self.device = resolve_device(config.device)
        #: The trainer's own values of non-optimizer hyperparameters (``default_hyperparameters``).
        self.own_defaults = trainer_defaults(trainer)
        persistent = persistent_loaders(trainer)
        #: The loaders named so far (those ``build`` makes are looked for after it).
        self._persistent = set(persistent)
        self._warn_persistent(persistent)
        if config.deterministic is None:
            self.deterministic = (
                self.device.type == "cpu"
                and bool(getattr(trainer, "deterministic", True))
                and not persistent
            )
        else:
            self.deterministic = config.deterministic
        self._given_space = self.space
        self.plan = self._sampler_plan()
        self.space = self.plan.space  # ``fixed`` samplers fix ``lr``
        for name, value in self.own_defaults.items():
            dist = self.space.distributions.get(name)
            if dist is None or in_distribution(dist, value) or role == "worker":
                continue
            if from_cli() and name == "batch_size":  # the command's own --batch-size
                _logger.info(
                    f"--batch-size {value} is not among the batch sizes tuned: epoch 1's "
                    "untuned candidate takes a sampled one"
                )
            else:
                _logger.warning(
                    f"the trainer's own {name}={value!r} (default_hyperparameters()) lies "
                    f"outside the search space ({dist}): the untuned candidate of epoch 1 "
                    f"takes a sampled {name}"
                )
        self.policy: Policy = (
            make_policy(
                config, thesis_trials=self.plan.trials_per_epoch, fixed_plan=self.plan.thesis_only
            )
            if mode == "per-epoch"
            else ThesisPolicy(trials=self.plan.trials_per_epoch, epochs=1)
        )
        self.run_plan = self.policy.plan
        self.config = config = resolve_run_name(config, self)
        self.paths = RunPaths(
            config.run_dir if config.run_dir is not None else default_run_dir(str(config.run))
        )
        self.storage: Any = None
        self.storage_text = ""
        self.artifacts_text = ""
        self.store: StateStore | None = None

    # ------------------------------------------------------------------ set-up
    @contextlib.contextmanager
    def opened(self) -> Iterator[Engine]:
        """Open storage and artifact store, build the trainer's state and the engine's parts;
        the serial driver and the coordinator also lock the run directory (a worker never
        does)."""
        cfg = self.config
        with contextlib.ExitStack() as stack:
            if self.role != "worker":
                self.paths.ensure_writable()
                stack.enter_context(run_lock(self.paths))
            stack.enter_context(torch_threads(cfg.num_threads))
            heartbeat = None
            if self.role in ("worker", "coordinator"):
                heartbeat = (
                    cfg.heartbeat_interval,
                    cfg.grace_period or 3 * cfg.heartbeat_interval,
                )
            self.storage, self.storage_text = open_storage(
                cfg.storage, self.paths.default_storage, heartbeat
            )
            store, self.artifacts_text = open_artifact_store(cfg.artifacts, self.paths.artifacts)
            self.store = StateStore(store, self.artifacts_text)
            epochs = self.epochs_per_trial if self.mode == "whole" else self.n_epochs
            self.training = Training.build(self.trainer, cfg.seed, self.device, epochs)
            if self.role != "worker":
                self.training.warn_if_left()
            self._check_built_loaders()
            self._check_space_on_optimizer()
            stack.callback(self.training.leave)
            self._assemble(self.store)
            prepare_run(self)
            self._warn_partial_default()
            yield self

    def _sampler_plan(self) -> SamplerPlan:
        cfg = self.config
        return SamplerPlan(
            cfg.sampler,
            self._given_space,
            cfg.trials_per_epoch,
            cfg.n_startup_trials,
            self.deterministic,
        )

    def _warn_persistent(self, loaders: list[str]) -> None:
        if loaders and self.role != "worker":
            _logger.warning(
                f"the trainer's DataLoader {', '.join(loaders)} keeps its worker processes "
                "across epochs (persistent_workers=True): they are seeded once, so their random "
                "augmentations differ between the trials of an epoch and a resumed run differs "
                "from an uninterrupted one; persistent_workers=False makes every trial draw the "
                "same numbers (the tuner treats this training as not deterministic)"
            )

    def _check_built_loaders(self) -> None:
        """Loaders that ``build`` made (not there before it) count as those of ``__init__``:
        named, and the training is then not deterministic (the samplers are made again)."""
        late = [p for p in persistent_loaders(self.trainer) if p not in self._persistent]
        if not late:
            return
        self._persistent.update(late)
        self._warn_persistent(late)
        if self.config.deterministic is None and self.deterministic:
            self.deterministic = False
            self.plan = self._sampler_plan()

    def _check_space_on_optimizer(self) -> None:
        """Refuse, before any study exists, a search space whose values the optimizer cannot
        take (``betas`` as a number, ``eps[0]``, string choices for ``momentum``): each choice
        of a categorical, the low end of a range, each fixed value is checked (not where the
        trainer applies hyperparameters itself)."""
        if callable(getattr(self.trainer, "apply_hyperparameters", None)):
            return
        optimizer = self.training.state.optimizer
        for name, dist in self.space.distributions.items():
            values: Sequence[Any] = []
            if isinstance(dist, CategoricalDistribution):
                values = dist.choices
            elif isinstance(dist, (FloatDistribution, IntDistribution)):
                values = [dist.low]
            for value in values:
                check_hyperparameters(optimizer, {name: value})
        check_hyperparameters(optimizer, self.space.fixed)

    def _warn_partial_default(self) -> None:
        """Name the tuned hyperparameters that epoch 1's untuned candidate has no value of its
        own for (neither an optimizer setting nor in ``default_hyperparameters()``): that
        candidate then trains with sampled values and no longer stands for the untuned
        training the policy races against the sampler's proposals."""
        if self.role == "worker" or self.mode != "per-epoch":
            return
        try:
            if "adopted" in self.studies.load(1).user_attrs:
                return  # epoch 1 is done (a resumed or finished run): its race is history
        except KeyError:  # no study of epoch 1 yet (a new run)
            pass
        point = self.planner.default_point()
        # whether the policy races an untuned candidate (with nothing of its own known, none
        # is made: asked with a full point)
        full = {name: point.get(name) for name in self.space.distributions}
        if not any(slot.kind == "default" for slot in self.policy.slots(1, [], full)):
            return
        own = self.planner.own_values()
        for name, value in own.items():
            if name in point or name in self.own_defaults or value is None:
                continue  # (the trainer's own defaults outside the space: warned above)
            dist = self.space.distributions[name]
            fix = "add it to the choices"
            if isinstance(dist, (FloatDistribution, IntDistribution)):
                fix = widen_hint(name, "high" if value > dist.high else "low") + " to include it"
            _logger.warning(
                f"the optimizer's own {name}={value!r} (as build() made it) lies outside the "
                f"search space ({dist}): epoch 1's untuned candidate takes a sampled {name}, "
                f"so the run does not race your untuned training; {fix}"
            )
        missing = [
            name for name, value in own.items() if value is None and name not in self.own_defaults
        ]
        if missing:
            names = ", ".join(missing)
            example = ", ".join(f"{name!r}: ..." for name in missing)
            so = "its untuned candidate trains with sampled ones" if point else "it has none"
            _logger.warning(
                f"epoch 1 cannot race your untuned training: the trainer has no value of its "
                f"own for {names} (not a setting of the optimizer's parameter groups, not in "
                f"its default_hyperparameters()), so {so}; give the trainer "
                f"default_hyperparameters() returning {{{example}}}"
            )

    def _assemble(self, store: StateStore) -> None:
        """Build the parts that run the studies (the storage and the state are open)."""
        cfg = self.config
        # A storage file inside the run directory moves with it (and its lock with it): the
        # directory's path is then no part of the run's identity, so a moved run resumes.
        held = storage_file(self.paths.default_storage if cfg.storage is None else cfg.storage)
        self.studies = RunStudies(
            self.storage,
            str(cfg.run),
            self.mode,
            self.objective,
            self.run_plan,
            self.role,
            store,
            paths_may_move=held is not None and self.paths.root in held.parents,
        )
        self.starts = StartStates(
            self.studies, store, self.training, self.objective, self.epochs_of
        )
        self.trials = TrialRunner(
            self.training,
            self.starts,
            store,
            self.space,
            self.objective,
            self.epochs_of,
            worker=self.role == "worker",
            keep_states=cfg.keep_trial_states,
        )
        self.planner = StudyPlanner(
            self.policy,
            self.plan,
            self.space,
            self.studies,
            self.training.initial,
            cfg.seed,
            cfg.warm_start,
            self.own_defaults,
        )
        self.sampling = Sampling(self.plan, self.policy, self.studies, cfg.seed)
        self.adoption = Adoption(
            self.policy,
            self.objective,
            self.space,
            store,
            self.storage,
            self.starts,
            keep_states=cfg.keep_trial_states,
        )
        self.progress = Progress(
            self.studies, self.n_epochs, self.objective.metric_name, cfg.progress
        )

    def manifest(self) -> RunManifest:
        """What the studies of this run record about it
        (:mod:`~optuna_gamma.tuner.execution.manifest`; its identity keys are checked on resume),
        with the run's length: ``epochs_total`` (the number of studies) and, in whole mode,
        ``epochs_per_trial``."""
        describe = getattr(self.trainer, "describe", None)
        return RunManifest.from_config(
            self.config,
            mode=self.mode,
            sampler=self.plan.name,
            trials_per_epoch=getattr(self.policy, "width", self.plan.trials_per_epoch),
            objective=self.objective.name,
            space=self.space.to_dict(),
            epochs_total=1 if self.mode == "whole" else self.n_epochs,
            epochs_per_trial=self.epochs_per_trial if self.mode == "whole" else None,
            run_dir=str(self.paths.root),
            artifacts=self.artifacts_text,
            policy=self.policy.describe(),
            plan=tuple(self.run_plan.trials),
            trainer=dict(describe()) if callable(describe) else type(self.trainer).__name__,
            trainer_spec=trainer_spec(self.trainer, self.config.trainer_ref),
            device=str(self.device),
            deterministic=self.deterministic,
            objective_code=objective_code(self.objective),
            sampler_code=sampler_code(self.plan),
            **identity_fields(self.trainer, self.training.initial, self.config),
        )

    def run_record(self) -> dict[str, Any]:
        """:meth:`manifest` as the studies store it (a JSON-safe dict)."""
        return self.manifest().to_record()

    @property
    def n_epochs(self) -> int:
        """Studies of the run: the policy's epochs (1 in whole mode)."""
        return self.run_plan.epochs

    @property
    def epochs_per_trial(self) -> int:
        """Epochs one trial trains: 1 per epoch, ``epochs`` in whole mode."""
        return (self.config.epochs or 1) if self.mode == "whole" else 1

    def trials_of(self, epoch: int) -> int:
        """Complete trials study ``epoch`` needs before adoption."""
        return self.run_plan.trials[epoch - 1]

    def epochs_of(self, epoch: int) -> list[int]:
        """The epochs a trial of study ``epoch`` trains."""
        return list(range(1, self.epochs_per_trial + 1)) if self.mode == "whole" else [epoch]

    # ------------------------------------------------------------------ one study
    def prepare_study(self, epoch: int, study: optuna.Study) -> dict[str, Any]:
        """Record the study's start, fail dead trials (serial driver and coordinator only: they
        hold the run lock), and enqueue the policy's planned slots, grid points or the warm start
        once. Returns the start record."""
        start = self.starts.start_record(study, epoch)
        if self.role != "worker":
            fail_stale(study, self.space)
        self.planner.queue(study, epoch, all_slots=self.role != "serial")
        if not study.user_attrs.get("prepared"):
            study.set_user_attr("prepared", True)
        return start

    def run_study(self, epoch: int, study: optuna.Study) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run study ``epoch`` to ``T`` complete trials in this process and adopt its best trial.

        Returns:
            (the ``adopted`` record, the adopted snapshot)
        """
        self.prepare_study(epoch, study)
        # This process holds the run lock, so the study's COMPLETE trials change only through
        # it: keep them here instead of asking the storage before every trial.
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        sampler = self.sampling.sampler_for(epoch, slot_of=lambda _study, _trial: len(done))
        study = optuna.load_study(
            study_name=study.study_name, storage=self.storage, sampler=sampler
        )

        def objective(trial: optuna.Trial) -> float:
            return self.trials.run(study, trial, done, epoch)

        def after(study_: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
            crash_point("after_tell")
            if frozen.state == TrialState.COMPLETE:
                done.append(frozen)
            self.progress.trial_finished()

        slots = self.planner.planned_slots(epoch)
        while len(done) < self.trials_of(epoch):
            if slots is None:
                optimize(study, objective, self.trials_of(epoch) - len(done), after)
            else:
                enqueue_next_slot(study, slots)
                optimize(study, objective, 1, after)
        return self.adoption.adopt(study, epoch)
