"""The final model's own schedule: its lineage through the carried states.

Each epoch carries a population of states, best first (the study's ``population`` record, written
by :mod:`~optuna_gamma.tuner.execution.adoption`), and adopts the first. A trial of the next epoch
starts from the carried state its slot names (``parent``: a rank in the previous epoch's
population, 0 = the adopted state). With the thesis's policy only the adopted state is carried, so
every epoch's adopted trial continues the previous one and the adopted settings are the final
model's schedule. With a population they are not: the best state of epoch ``e + 1`` may descend
from a state of epoch ``e`` other than the best one, so the epoch-by-epoch best settings can jump
between lineages that no model followed. The final model's schedule is its lineage, found by
following ``parent`` back from it: the settings its state was actually trained with, epoch by
epoch, as Ray Tune reports the config history of a PBT trial (and replays it with
``PopulationBasedTrainingReplay``).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any


__all__ = ["branches_off", "carried_records", "lineage"]


def carried_records(user_attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records of the states a study carried forward, best first, from its user
    attributes (``population``; the adopted one alone for runs recorded before populations
    existed).

    Raises:
        KeyError: The study has adopted nothing yet.
    """
    members = user_attrs.get("population")
    if not isinstance(members, list) or not members:
        return [dict(user_attrs["adopted"])]
    return [dict(m) for m in members]


def lineage(
    populations: Sequence[Sequence[Mapping[str, Any]]], final: int
) -> list[dict[str, Any]]:
    """The records of the final model's ancestors, epoch ``1`` to ``final``.

    Args:
        populations: ``populations[e - 1]``: the records of the states epoch ``e`` carried,
            best first (each with ``parent``, its start's rank in epoch ``e - 1``'s population;
            missing means 0, as in runs recorded before populations existed).
        final: The epoch (1-based) whose adopted state (rank 0) is the final model.

    Returns:
        One record per epoch ``1..final``: the state of the final model's lineage that epoch
        carried (the last one is the final model's own).

    Raises:
        ValueError: ``final`` is not an epoch of ``populations``, or a record names a parent
            that is not a rank of the previous epoch's population (records read from a storage
            are untrusted).
    """
    if isinstance(final, bool) or not isinstance(final, int) or not 1 <= final <= len(populations):
        raise ValueError(f"final must be an epoch in [1, {len(populations)}], got {final!r}")
    rank = 0
    chain: list[dict[str, Any]] = []
    for epoch in range(final, 0, -1):
        members = populations[epoch - 1]
        if not 0 <= rank < len(members):
            raise ValueError(
                f"epoch {epoch + 1}'s state names parent {rank}, but epoch {epoch} carried "
                f"{len(members)} state(s)"
            )
        record = dict(members[rank])
        chain.append(record)
        parent = record.get("parent", 0)
        if isinstance(parent, bool) or not isinstance(parent, int):
            raise ValueError(f"epoch {epoch}'s state names parent {parent!r}, not a rank")
        if epoch == 1 and parent != 0:
            raise ValueError(f"epoch 1's state names parent {parent!r}; it starts from rank 0")
        rank = parent
    chain.reverse()
    return chain


def branches_off(lineage_trials: Sequence[Any], adopted_trials: Sequence[Any]) -> bool:
    """Whether a lineage (its trial numbers, epoch 1 first) leaves the epochs' adopted trials,
    i.e. some epoch's best state is not an ancestor of the final model (empty: ``False``)."""
    return bool(lineage_trials) and list(lineage_trials) != list(
        adopted_trials[: len(lineage_trials)]
    )
