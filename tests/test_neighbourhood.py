"""Explorers near their parent (:mod:`optuna_gamma.tuner.search.neighbourhood`): the projection
onto a box around the parent's setting in the unit cube of the search space, its closed forms,
its properties, and the sampler wrapper on real Optuna studies."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_gamma.samplers._search_space import SearchSpace
from optuna_gamma.tuner.policies import policy_from_record
from optuna_gamma.tuner.policies import PopulationPolicy
from optuna_gamma.tuner.search.neighbourhood import NearParentSampler
from optuna_gamma.tuner.search.neighbourhood import project


LR = FloatDistribution(1e-3, 0.5, log=True)


def test_a_log_rate_moves_by_the_radius_factor_at_most() -> None:
    # the CIFAR-10 case: an explorer from lr 0.043 proposing the range's low end
    moved = project({"lr": 0.001}, {"lr": LR}, {"lr": 0.043}, 0.1)["lr"]
    assert moved == pytest.approx(0.043 / 500**0.1, rel=1e-12)
    up = project({"lr": 0.5}, {"lr": LR}, {"lr": 0.043}, 0.1)["lr"]
    assert up == pytest.approx(0.043 * 500**0.1, rel=1e-12)
    inside = project({"lr": 0.05}, {"lr": LR}, {"lr": 0.043}, 0.1)
    assert inside == {"lr": 0.05}  # unchanged, not re-encoded
    # near the range's end the box is cut by the range
    assert project({"lr": 0.001}, {"lr": LR}, {"lr": 0.0012}, 0.1)["lr"] == 0.001


def test_linear_int_stepped_and_categorical_parameters() -> None:
    dists = {
        "momentum": FloatDistribution(0.0, 0.99),
        "batch": IntDistribution(16, 256, log=True),
        "layers": IntDistribution(1, 11),
        "wd": FloatDistribution(0.0, 1.0, step=0.1),
        "opt": CategoricalDistribution(["sgd", "adam"]),
    }
    params = {"momentum": 0.9, "batch": 256, "layers": 11, "wd": 1.0, "opt": "adam"}
    centre = {"momentum": 0.0, "batch": 16, "layers": 1, "wd": 0.0, "opt": "sgd"}
    out = project(params, dists, centre, 0.2)
    assert out["momentum"] == pytest.approx(0.2 * 0.99)
    # log int: the padded log range [log 15.5, log 256.5], 0.2 of it above the centre's cell
    lo, hi = math.log(15.5), math.log(256.5)
    centre_u = (math.log(16) - lo) / (hi - lo)
    expect = math.floor(math.exp(lo + (centre_u + 0.2) * (hi - lo)) + 0.5)
    assert out["batch"] == expect and isinstance(out["batch"], int)
    assert out["layers"] == 3  # 11 cells: the cell 0.2 above the first one's centre
    assert out["wd"] == pytest.approx(0.2)  # the 11-value grid likewise
    assert out["opt"] == "adam"  # categorical: never restricted
    for name, dist in dists.items():
        assert dist._contains(dist.to_internal_repr(out[name]))


def test_what_is_left_alone_and_bad_radii() -> None:
    # no centre value, a centre outside the range, a non-numerical centre: unchanged
    assert project({"lr": 0.001}, {"lr": LR}, {}, 0.1) == {"lr": 0.001}
    assert project({"lr": 0.001}, {"lr": LR}, {"lr": 7.0}, 0.1) == {"lr": 0.001}
    assert project({"lr": 0.001}, {"lr": LR}, {"lr": "0.04"}, 0.1) == {"lr": 0.001}
    assert project({"lr": 0.001}, {"lr": LR}, {"lr": math.nan}, 0.1) == {"lr": 0.001}
    # a parameter outside the distributions given is left alone
    assert project({"x": 3.0}, {"lr": LR}, {"x": 1.0}, 0.1) == {"x": 3.0}
    for bad in (-0.1, math.nan, "0.1", True):
        with pytest.raises(ValueError, match="radius must be a number >= 0"):
            project({}, {}, {}, bad)  # type: ignore[arg-type]
    for bad in (0, -1, 1.5, True, "0.1"):
        with pytest.raises(ValueError, match="explore_radius must be in"):
            PopulationPolicy(width=1, budget=9, explore_radius=bad)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    value=st.floats(1e-3, 0.5),
    centre=st.floats(1e-3, 0.5),
    radius=st.floats(0.0, 1.0),
    n=st.integers(-8, 300),
)
def test_the_projection_stays_in_the_box_and_is_idempotent(
    value: float, centre: float, radius: float, n: int
) -> None:
    dists = {"lr": LR, "k": IntDistribution(0, 300)}
    params = {"lr": value, "k": max(0, n)}
    centres = {"lr": centre, "k": 150}
    out = project(params, dists, centres, radius)
    space = SearchSpace(dists)
    u, c = space.encode(out), space.encode(centres)
    # continuous: inside the box (up to rounding); a grid column: within one cell of it
    assert abs(u[0] - c[0]) <= radius + 1e-9
    assert abs(u[1] - c[1]) <= radius + 1 / 301 + 1e-12
    assert project(out, dists, centres, radius) == out
    for name, dist in dists.items():
        assert dist._contains(dist.to_internal_repr(out[name]))
    if abs(space.encode(params)[0] - c[0]) <= radius:
        assert out["lr"] == value


def _study_with(centre_of, radius: float) -> optuna.Study:
    sampler = NearParentSampler(optuna.samplers.RandomSampler(seed=0), radius, centre_of)
    study = optuna.create_study(sampler=sampler)
    for i in range(60):
        kind = "explore" if i % 2 else "design"
        study.enqueue_trial({}, user_attrs={"kind": kind})
    study.optimize(
        lambda t: (
            (t.suggest_float("lr", 1e-3, 0.5, log=True) - 0.1) ** 2
            + t.suggest_int("k", 0, 300) * 0.0
        ),
        n_trials=60,
    )
    return study


def test_the_sampler_restricts_only_the_trials_with_a_centre() -> None:
    centre = {"lr": 0.043, "k": 150}

    def centre_of(trial: optuna.trial.FrozenTrial) -> dict | None:
        return centre if trial.user_attrs.get("kind") == "explore" else None

    study = _study_with(centre_of, 0.1)
    space = SearchSpace({"lr": LR, "k": IntDistribution(0, 300)})
    c = space.encode(centre)
    explorers = [t for t in study.trials if t.user_attrs["kind"] == "explore"]
    free = [t for t in study.trials if t.user_attrs["kind"] == "design"]
    assert len(explorers) == 30 and len(free) == 30
    for t in explorers:
        u = space.encode(t.params)
        assert abs(u[0] - c[0]) <= 0.1 + 1e-9 and abs(u[1] - c[1]) <= 0.1 + 1 / 301
    # the free trials are the random sampler's: most lie outside the box
    outside = [t for t in free if abs(space.encode(t.params)[0] - c[0]) > 0.1]
    assert len(outside) >= 15
    # and the explorers' values are not all on the box's edge: a proposal inside stays
    assert len({round(t.params["lr"], 12) for t in explorers}) > 5
    # what the box moved is kept for the engine (the trial's ``proposed``), read once
    sampler = study.sampler
    assert isinstance(sampler, NearParentSampler)
    moved = 0
    for t in study.trials:
        proposed = sampler.moved_proposal(study, t.number)
        assert sampler.moved_proposal(study, t.number) is None
        if t.user_attrs["kind"] == "design":
            assert proposed is None
            continue
        u = space.encode(t.params)
        if proposed is None:
            continue
        moved += 1
        assert set(proposed) <= {"lr", "k"}
        for j, name in enumerate(("lr", "k")):
            if name in proposed:  # outside the box, and now on its edge
                raw = space.encode({**t.params, name: proposed[name]})[j]
                assert abs(raw - c[j]) > 0.1
                assert abs(abs(u[j] - c[j]) - 0.1) <= (1e-9 if j == 0 else 1 / 301)
    assert 15 <= moved < 30  # random proposals: most leave the box, a few fall inside


def test_policy_records_read_old_runs_as_exploring_anywhere() -> None:
    policy = PopulationPolicy(width=1, budget=30)
    assert policy.explore_radius == 0.1
    record = policy.describe()
    assert record["explore_radius"] == 0.1
    assert policy_from_record(record, budget=30, epochs=None) == policy
    old = {k: v for k, v in record.items() if k != "explore_radius"}
    assert policy_from_record(old, budget=30, epochs=None).radius is None
    anywhere = PopulationPolicy(width=1, budget=30, explore_radius=None)
    assert "explore_radius" not in anywhere.describe() and anywhere.radius is None
    assert policy_from_record(anywhere.describe(), budget=30, epochs=None) == anywhere
    # with several at a time explorers go anywhere until the late perturbation, which is near
    # the parent; without it the record says nothing of a radius
    wide = PopulationPolicy(width=12, budget=120)
    assert wide.explore_radius == 0.1 and wide.radius is None and wide.radius_at(9) == 0.1
    assert wide.describe()["explore_radius"] == 0.1
    assert policy_from_record(wide.describe(), budget=120, epochs=None) == wide
    plain = PopulationPolicy(width=12, budget=120, late_population=False)
    assert "explore_radius" not in plain.describe()
    assert policy_from_record(plain.describe(), budget=120, epochs=None).radius_at(9) is None
