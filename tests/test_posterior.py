"""Adoption on the posterior mean (``PopulationPolicy(adopt_on="posterior")``): the ranking's
model on constructed cases (a lucky value is shrunk, affine equivariance, the direction,
nothing to smooth) and a real run that records it (scikit-learn digits)."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
import pytest

from optuna_gamma.tuner.execution.posterior import posterior_values
from optuna_gamma.tuner.policies import policy_from_record
from optuna_gamma.tuner.policies import PopulationPolicy


LR = {"lr": FloatDistribution(1e-3, 0.5, log=True)}


def _trial(
    number: int, lr: float, value: float, dists=LR, start: float | None = None
) -> optuna.trial.FrozenTrial:
    attrs = {} if start is None else {"start_value": start}
    t = optuna.trial.create_trial(
        params={"lr": lr}, distributions=dists, value=value, user_attrs=attrs
    )
    t.number = number
    return t


def _race(lucky: float = 0.90) -> tuple[list, list]:
    """Setting 0.05 improves steadily to 0.88; 0.004 and its neighbours sit near 0.66-0.69,
    but 0.004 now draws ``lucky``, above 0.05's value."""
    earlier, n = [], 100
    for age in (4, 3, 2, 1):
        for lr, level in ((0.05, 0.86), (0.004, 0.66), (0.006, 0.665), (0.003, 0.655)):
            earlier.append((_trial(n, lr, level - 0.02 * age), age))
            n += 1
    own = [_trial(0, 0.05, 0.88), _trial(1, 0.004, lucky), _trial(2, 0.006, 0.685)]
    own.append(_trial(3, 0.003, 0.675))
    return own, earlier


def test_a_lucky_value_its_neighbours_and_history_do_not_support_is_shrunk() -> None:
    own, earlier = _race()
    raw = {t.number: t.value for t in own}
    post = posterior_values(own, earlier, maximize=True)
    assert max(raw, key=raw.__getitem__) == 1  # by value the lucky draw would be adopted
    assert max(post, key=post.__getitem__) == 0  # by the posterior mean, the steady setting
    assert post[1] < raw[1] - 0.1  # shrunk toward its neighbours and its own history
    assert abs(post[0] - raw[0]) < 0.03  # a value the model supports barely moves
    # the epoch's own neighbours alone (no history) already shrink the lucky value
    alone = posterior_values(own, [], maximize=True)
    assert alone[1] < raw[1] - 0.05


def test_the_improvement_is_smoothed_and_the_start_state_kept() -> None:
    """A state far ahead whose setting improves it little is not overtaken by a state behind
    whose last epoch drew a lucky improvement its setting's history does not support; and the
    state's own start value is kept (a value model over settings would pool the states)."""
    earlier, n = [], 100
    for age in (3, 2, 1):
        for lr, gain in ((0.05, 0.01), (0.004, 0.02), (0.006, 0.021), (0.003, 0.019)):
            earlier.append((_trial(n, lr, 0.5 + gain, start=0.5), age))
            n += 1
    own = [
        _trial(0, 0.05, 0.82, start=0.81),  # far ahead, its usual +0.01
        _trial(1, 0.004, 0.90, start=0.60),  # behind, a lucky +0.30
        _trial(2, 0.006, 0.62, start=0.60),
        _trial(3, 0.003, 0.618, start=0.60),
    ]
    post = posterior_values(own, earlier, maximize=True)
    raw = {t.number: t.values[0] for t in own}
    assert max(post, key=post.__getitem__) == 0 and raw[1] > raw[0]  # the value would pick 1
    assert post[1] < 0.70  # start 0.60 plus a shrunk improvement
    assert 0.81 < post[0] < 0.87  # its start plus a modest improvement
    # states that start apart stay apart: the same setting's trials from two start states
    twins = [_trial(0, 0.01, 0.71, start=0.70), _trial(1, 0.01, 0.41, start=0.40)]
    twins.append(_trial(2, 0.1, 0.52, start=0.5))
    post = posterior_values(twins, earlier, maximize=True)
    assert post[0] - post[1] == pytest.approx(0.30, abs=1e-9)


@pytest.mark.parametrize(("scale", "shift"), [(1.0, 0.0), (3.0, -2.0), (1e-3, 5.0)])
def test_posterior_is_affine_equivariant_and_respects_the_direction(
    scale: float, shift: float
) -> None:
    own, earlier = _race()
    base = posterior_values(own, earlier, maximize=True)

    def moved(t, sign=1.0):  # the values and the start values moved alike
        start = t.user_attrs.get("start_value")
        new = None if start is None else sign * (scale * start + shift)
        return _trial(t.number, t.params["lr"], sign * (scale * t.value + shift), start=new)

    post = posterior_values(
        [moved(t) for t in own], [(moved(t), a) for t, a in earlier], maximize=True
    )
    for n, m in base.items():
        assert post[n] == pytest.approx(scale * m + shift, rel=1e-6, abs=1e-9)
    # minimizing the negated values ranks (and values) the same, negated
    neg = posterior_values(
        [moved(t, -1.0) for t in own], [(moved(t, -1.0), a) for t, a in earlier], maximize=False
    )
    for n, m in base.items():
        assert neg[n] == pytest.approx(-(scale * m + shift), rel=1e-6, abs=1e-9)


def test_nothing_to_smooth_gives_the_raw_values() -> None:
    one = [_trial(0, 0.01, 0.5)]
    assert posterior_values(one, [], maximize=True) == {0: 0.5}
    equal = [_trial(0, 0.01, 0.5), _trial(1, 0.1, 0.5)]
    assert posterior_values(equal, [], maximize=True) == {0: 0.5, 1: 0.5}
    fixed = {"lr": CategoricalDistribution([0.01])}  # a single choice: nothing is tuned
    untuned = [_trial(0, 0.01, 0.5, fixed), _trial(1, 0.01, 0.7, fixed)]
    assert posterior_values(untuned, [], maximize=False) == {0: 0.5, 1: 0.7}
    # an earlier trial outside the epoch's space is left out, not an error
    own, earlier = _race()
    stray = _trial(999, 0.01, 0.0, {"lr": FloatDistribution(1e-4, 1.0, log=True)})
    stray.params["lr"] = 0.9
    assert posterior_values(own, [*earlier, (stray, 1)], maximize=True) == pytest.approx(
        posterior_values(own, earlier, maximize=True)
    )


def test_the_setting_is_validated_and_recorded() -> None:
    with pytest.raises(ValueError, match="adopt_on must be 'value' or 'posterior', got 'mean'"):
        PopulationPolicy(width=4, epochs=3, adopt_on="mean")
    policy = PopulationPolicy(width=4, epochs=3, adopt_on="posterior")
    record = policy.describe()
    assert record["adopt_on"] == "posterior"
    assert policy_from_record(record, budget=None, epochs=3).describe() == record
    # the default is not recorded: runs stored before the setting existed resume unchanged
    assert "adopt_on" not in PopulationPolicy(width=4, epochs=3).describe()
    old = PopulationPolicy(width=4, epochs=3).describe()
    assert policy_from_record(old, budget=None, epochs=3).adopt_on == "value"


def test_a_run_ranked_by_the_posterior_mean_records_it(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from optuna.trial import TrialState

    from optuna_gamma.tuner import get_storage
    from optuna_gamma.tuner import ThesisTrainer
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    digits = ThesisTrainer("digits")

    policy = PopulationPolicy(width=4, epochs=3, adopt_on="posterior")
    cfg = TunerConfig(run="post", run_dir=str(tmp_path / "post"), policy=policy, seed=3)
    res = tune_per_epoch(digits, None, cfg)
    assert res.policy["adopt_on"] == "posterior"
    storage = get_storage(str(tmp_path / "post" / "journal.log"))
    for e in (1, 2, 3):
        study = optuna.load_study(study_name=f"post/epoch-{e:03d}", storage=storage)
        population = study.user_attrs["population"]
        means = [m["posterior_mean"] for m in population]
        assert means == sorted(means, reverse=True) and len(means) == 3

        # the recorded means are the model's, refitted here from the stored trials: this
        # epoch's and the (up to 4) epochs' before, with their ages
        def complete(epoch: int) -> list[optuna.trial.FrozenTrial]:
            s = optuna.load_study(study_name=f"post/epoch-{epoch:03d}", storage=storage)
            return s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

        earlier = [(t, e - b) for b in range(1, e) for t in complete(b)]
        refit = posterior_values(complete(e), earlier, maximize=True)
        assert means == [refit[m["trial"]] for m in population]
        assert {m["trial"] for m in population} == set(
            sorted(refit, key=lambda n: (-refit[n], n))[:3]
        )
        adopted = study.user_attrs["adopted"]
        assert adopted["trial"] == population[0]["trial"]
        assert adopted["why"].startswith("best posterior mean of 4 trials")
