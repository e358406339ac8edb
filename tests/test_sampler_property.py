"""Property test: GammaBOSampler survives any mixed search space, at any objective scale.

Hypothesis draws 500 search spaces of 1-4 parameters (floats, log floats and stepped floats with
bounds anywhere in the finite range, integers and stepped/log integers up to the int64
extremes, categoricals of mixed types), an objective scale (ordinary, spread below 1e-12, values
near 1e300 or 1.7e308, infinities), a deterministic flag and sometimes a constraint; each space
runs a short study in each of the three predictive modes (1 start-up trial, then 3 GP
suggestions with a small acquisition budget). Every study must finish without an exception or a
numpy floating-point warning, every suggested value must pass its distribution's own check
(``distribution._contains``, which ``optuna.trial.Trial`` applies before it accepts a relative
parameter), no parameter of the relative search space may fall back to independent sampling
after the start-up trial (which is what a rejected relative value would cause), and no GP fit or
acquisition search may fail (the sampler would log it and fall back to a random point).
Hypothesis runs derandomized (fixed seed), with no example database.
"""

from __future__ import annotations

import decimal
import logging
import math
import time
from typing import Any
import warnings
import zlib

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import reject
from hypothesis import settings
from hypothesis import strategies as st
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
import pytest

from optuna_gamma import GammaBOSampler
from optuna_gamma.samplers._search_space import SearchSpace


pytestmark = pytest.mark.filterwarnings("ignore:.*range is not divisible by `step`:UserWarning")

N_SPACES = 500
MODES = ("student_t", "gaussian", "plugin")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

finite = st.floats(allow_nan=False, allow_infinity=False)
magnitudes = st.sampled_from(
    [1.0, 7.5, 1e-3, 0.0, 1e6, 1e-12, 1e15, 1e150, 1e-300, 1e300, 1.7e308]
)
widths = st.sampled_from([1.0, 3.5, 0.02, 1e3, 1e-9, 1e12, 1e300, 1.7e308, 1e-300, 0.0])


@st.composite
def float_distributions(draw: st.DrawFn) -> FloatDistribution:
    kind = draw(st.sampled_from(["plain", "step", "log"]))
    if kind == "log":
        low = draw(st.floats(min_value=1e-300, max_value=1e300))
        ratio = draw(st.sampled_from([10.0, 1e10, 1.0001, 1e300, 1.0]))
        return FloatDistribution(low, min(low * ratio, 1.7e308), log=True)
    centre = draw(st.sampled_from([1.0, -1.0])) * draw(magnitudes)
    width = draw(widths)
    low = centre - width if math.isfinite(centre - width) else -1.7e308
    high = centre + width if math.isfinite(centre + width) else 1.7e308
    low, high = max(low, -1.7e308), min(high, 1.7e308)
    if kind == "plain":
        return FloatDistribution(low, high)
    span = high - low if math.isfinite(high - low) else 1.7e308
    step = draw(st.sampled_from([0.1, 1e-4, 0.25, 1e-9, 1.0, 1e-3 * span, span / 7, span]))
    if not (math.isfinite(step) and step > 0):
        step = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's notice that it aligns high to the step
        try:
            return FloatDistribution(low, high, step=step)
        except decimal.InvalidOperation:  # Optuna's own limit (28 significant digits)
            reject()


@st.composite
def int_distributions(draw: st.DrawFn) -> IntDistribution:
    spans = st.sampled_from([5, 31, 1000, 2**31, 2**62, 2**64, 1, 0]) | st.integers(0, 10**9)
    if draw(st.booleans()):
        low = draw(st.sampled_from([1, 2, 100, 10**9]) | st.integers(1, 1000))
        return IntDistribution(low, min(low + draw(spans), INT64_MAX), log=True)
    low = draw(
        st.sampled_from([0, -10, 7, -(2**31), -(2**62), INT64_MIN]) | st.integers(-(10**6), 10**6)
    )
    high = min(low + draw(spans), INT64_MAX)
    span = high - low
    step = draw(st.sampled_from([1, 2, 3, 1000, max(span // 3, 1), max(span, 1)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's notice that it aligns high to the step
        return IntDistribution(low, high, step=step)


def _distinct(choices: list[Any]) -> list[Any]:
    out: list[Any] = []
    for c in choices:
        if not any(type(c) is type(o) and c == o for o in out) and not any(
            c == o
            for o in out
            if isinstance(o, (bool, int, float)) and isinstance(c, (bool, int, float))
        ):
            out.append(c)
    return out


categorical_distributions = (
    st.lists(
        st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3), finite),
        min_size=1,
        max_size=8,
    )
    .map(_distinct)
    .map(lambda cs: CategoricalDistribution(cs))
)

distributions = st.one_of(float_distributions(), int_distributions(), categorical_distributions)

# (offset, scale, with infinities): values are offset + scale * h, h in [0, 1)
SCALES = [
    (0.0, 1.0, False),
    (5.0, 1e-13, False),
    (0.0, 1e-14, False),
    (1e300, 1e299, False),
    (-1.6e308, 1e307, False),
    (1.6e308, 1e307, False),
    (0.0, 1.0, True),
]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    space = draw(st.lists(distributions, min_size=1, max_size=4))
    return {
        "space": {f"p{i}": d for i, d in enumerate(space)},
        "scale": draw(st.sampled_from(SCALES)),
        "deterministic": draw(st.booleans()),
        "constrained": draw(st.integers(0, 4)) == 0,
    }


class _Recording(GammaBOSampler):
    """Records which (trial, parameter) went to independent sampling."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[int, str]] = []

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        self.calls.append((trial.number, name))
        return super().sample_independent(study, trial, name, dist)


def _objective(
    space: dict[str, BaseDistribution], scale: tuple[float, float, bool], constrained: bool
) -> Any:
    offset, factor, infinities = scale

    def objective(trial: optuna.Trial) -> float:
        params = {}
        for name, dist in space.items():
            if isinstance(dist, CategoricalDistribution):
                params[name] = trial.suggest_categorical(name, dist.choices)
            elif isinstance(dist, IntDistribution):
                params[name] = trial.suggest_int(
                    name, dist.low, dist.high, step=dist.step, log=dist.log
                )
            else:
                assert isinstance(dist, FloatDistribution), dist
                params[name] = trial.suggest_float(
                    name, dist.low, dist.high, step=dist.step, log=dist.log
                )
        h = zlib.crc32(repr(sorted(params.items())).encode()) / 2**32
        if constrained:
            trial.set_constraint("c", h - 0.5)
        if infinities and trial.number % 3 == 2:
            return math.inf if h > 0.5 else -math.inf
        return offset + factor * h

    return objective


STATS: dict[str, Any] = {
    "spaces": 0,
    "studies": 0,
    "trials": 0,
    "params": 0,
    "seconds": 0.0,
    "kinds": {},
}


def _kind(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return "categorical"
    if dist.single():
        return "single"
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    name = "int" if isinstance(dist, IntDistribution) else "float"
    if dist.log:
        return f"log {name}"
    if dist.step is None:
        return (
            "float (wider than the largest float)"
            if not math.isfinite(dist.high - dist.low)
            else name
        )
    size = SearchSpace({"x": dist}).sizes[0]
    assert size is not None
    kind = "stepped float" if name == "float" else "int"
    width = "> 2**31" if size > 2**31 else "<= 32" if size <= 32 else "33..2**31"
    return f"{kind}, {width} values"


class _Fallbacks(logging.Handler):
    """Collects the sampler's warnings (a failed fit or acquisition search falls back)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@settings(
    max_examples=N_SPACES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(cases())
def test_any_search_space_in_every_mode(case: dict[str, Any]) -> None:
    t0 = time.process_time()
    fallbacks = _Fallbacks()
    logging.getLogger("optuna_gamma").addHandler(fallbacks)
    space = case["space"]
    relative = {n for n, d in space.items() if not d.single()}
    for mode in MODES:
        sampler = _Recording(
            predictive=mode,
            seed=1,
            n_startup_trials=1,
            deterministic_objective=case["deterministic"],
            n_preliminary_samples=32,
            n_local_search=2,
            warn_independent_sampling=False,
        )
        study = optuna.create_study(sampler=sampler)
        with warnings.catch_warnings():
            # a numpy overflow / invalid-value / division warning fails the example
            warnings.simplefilter("error", RuntimeWarning)
            warnings.filterwarnings("ignore", message="Non-finite objective values .* clipped")
            study.optimize(_objective(space, case["scale"], case["constrained"]), n_trials=4)
        trials = study.get_trials()
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 4, mode
        for t in trials:
            for name, dist in space.items():
                value = t.params[name]
                assert dist._contains(dist.to_internal_repr(value)), (mode, name, dist, value)
                if isinstance(dist, IntDistribution):
                    assert type(value) is int
                elif isinstance(dist, FloatDistribution):
                    assert type(value) is float
        late = [(n, p) for n, p in sampler.calls if n >= 1 and p in relative]
        assert not late, (mode, late)  # every relative value was accepted by the trial
        STATS["studies"] += 1
        STATS["trials"] += len(trials)
        STATS["params"] += len(trials) * len(space)
    logging.getLogger("optuna_gamma").removeHandler(fallbacks)
    assert not fallbacks.messages  # no GP fit or acquisition search failed (no random fallback)
    STATS["spaces"] += 1
    STATS["seconds"] += time.process_time() - t0
    for dist in space.values():
        STATS["kinds"][_kind(dist)] = STATS["kinds"].get(_kind(dist), 0) + 1


def test_property_test_ran_every_space() -> None:
    """Runs after the property test (file order): it did draw N_SPACES spaces x 3 modes."""
    if STATS["spaces"] == 0:
        return  # the property test was deselected
    assert STATS["spaces"] == N_SPACES and STATS["studies"] == 3 * N_SPACES
    print(f"\nproperty test: {STATS}")
