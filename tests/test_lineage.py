"""The final model's lineage through the carried states (torch-free: records only)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from optuna_gamma.tuner.policies.lineage import branches_off
from optuna_gamma.tuner.policies.lineage import carried_records
from optuna_gamma.tuner.policies.lineage import lineage


def _member(trial: int, parent: Any = 0) -> dict[str, Any]:
    return {"trial": trial, "value": float(trial), "params": {"lr": trial / 100}, "parent": parent}


def test_lineage_follows_the_parents_back_from_the_final_model() -> None:
    populations = [
        [_member(3), _member(1), _member(0)],  # epoch 1: three states from the initial one
        [_member(7, 2), _member(4, 0), _member(5, 1)],  # epoch 2: the best from rank 2
        [_member(9, 1), _member(8, 0)],  # epoch 3: the best from epoch 2's rank 1
    ]
    # the best of epoch 3 (trial 9) descends from epoch 2's trial 4, which descends from
    # epoch 1's best (trial 3): not the epoch-by-epoch best (3, 7, 9)
    assert [m["trial"] for m in lineage(populations, 3)] == [3, 4, 9]
    # an earlier final model: the best of epoch 2 (trial 7) from epoch 1's trial 0
    assert [m["trial"] for m in lineage(populations, 2)] == [0, 7]
    assert lineage(populations, 1) == [_member(3)]
    # records without a parent (runs recorded before populations) continue rank 0
    old = [[{"trial": 2, "value": 0.5}], [{"trial": 1, "value": 0.6}]]
    assert lineage(old, 2) == old[0] + old[1]


def test_carried_records_read_the_population_or_the_adopted_state_alone() -> None:
    population = [_member(4), _member(2, 1)]
    attrs = {"population": population, "adopted": {**population[0], "why": "best"}}
    records = carried_records(attrs)
    assert records == population and records[0] is not population[0]  # copies
    # runs recorded before populations existed carried the adopted state alone
    assert carried_records({"adopted": _member(4)}) == [_member(4)]
    assert carried_records({"population": [], "adopted": _member(4)}) == [_member(4)]
    with pytest.raises(KeyError):
        carried_records({})  # nothing adopted yet


def test_branches_off_compares_the_lineage_with_the_adopted_prefix() -> None:
    assert not branches_off([3, 4], [3, 4, 9])  # final model of epoch 2, adopted all along
    assert branches_off([3, 4, 9], [3, 7, 9])  # epoch 2's best is not an ancestor
    assert not branches_off([], [1, 2])  # no lineage (an unfinished run): nothing to show


@pytest.mark.parametrize(
    ("populations", "final", "message"),
    [
        ([[_member(0)]], 0, r"final must be an epoch in \[1, 1\], got 0"),
        ([[_member(0)]], 2, r"final must be an epoch in \[1, 1\], got 2"),
        ([[_member(0)]], True, r"final must be an epoch in \[1, 1\], got True"),
        ([[_member(0)], [_member(1, 5)]], 2, "epoch 2's state names parent 5, but epoch 1 "),
        ([[_member(0)], [_member(1, -1)]], 2, "epoch 2's state names parent -1"),
        ([[_member(0)], [_member(1, True)]], 2, "epoch 2's state names parent True, not a"),
        ([[_member(0)], [_member(1, "0")]], 2, "epoch 2's state names parent '0', not a rank"),
        ([[_member(0, 1), _member(1)]], 1, "epoch 1's state names parent 1; it starts"),
    ],
)
def test_lineage_refuses_records_that_name_no_parent(
    populations: list[list[dict[str, Any]]], final: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        lineage(populations, final)


@st.composite
def _runs(draw: st.DrawFn) -> tuple[list[list[dict[str, Any]]], int]:
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=8))
    populations = []
    number = 0
    for e, size in enumerate(sizes):
        members = []
        for _ in range(size):
            parent = 0 if e == 0 else draw(st.integers(0, sizes[e - 1] - 1))
            members.append(_member(number, parent))
            number += 1
        populations.append(members)
    return populations, draw(st.integers(1, len(sizes)))


@settings(max_examples=200, deadline=None)
@given(_runs())
def test_lineage_is_a_chain_of_carried_states_ending_at_the_final_model(
    run: tuple[list[list[dict[str, Any]]], int],
) -> None:
    populations, final = run
    chain = lineage(populations, final)
    assert len(chain) == final
    assert chain[-1] == populations[final - 1][0]  # the final model: that epoch's adopted state
    for e in range(1, final):
        # epoch e + 1's state started from the state of epoch e that precedes it in the chain
        assert chain[e - 1] is not chain[e]
        assert populations[e - 1][chain[e]["parent"]] == chain[e - 1]
    assert chain[0]["parent"] == 0
