"""Per-epoch and whole-training learning-rate study drivers (thesis fig. 8; DESIGN.md §4).

Importing this package does not import torch; the drivers import it when called.

Public API: :func:`tune_per_epoch` (thesis fig. 8), :func:`tune_whole` (thesis tables 8-10),
:class:`SearchSpace`, the sampler registry (:func:`parse_sampler`, :func:`make_sampler_factory`,
:data:`SAMPLER_CHOICES`, :class:`SlotNumberedSampler`), the results (:class:`PerEpochResult`,
:class:`ScheduleEntry`, :class:`WholeResult`, :func:`load_result`) and :func:`build_report`.
"""

from __future__ import annotations

from optuna_gamma.driver.per_epoch import DEFAULT_WARM_START
from optuna_gamma.driver.per_epoch import tune_per_epoch
from optuna_gamma.driver.report import build_report
from optuna_gamma.driver.results import PerEpochResult
from optuna_gamma.driver.results import ScheduleEntry
from optuna_gamma.driver.results import WholeResult
from optuna_gamma.driver.results import load_result
from optuna_gamma.driver.samplers import SAMPLER_CHOICES
from optuna_gamma.driver.samplers import SlotNumberedSampler
from optuna_gamma.driver.samplers import make_sampler_factory
from optuna_gamma.driver.samplers import parse_sampler
from optuna_gamma.driver.space import SearchSpace
from optuna_gamma.driver.whole import tune_whole


__all__ = [
    "DEFAULT_WARM_START",
    "PerEpochResult",
    "SAMPLER_CHOICES",
    "ScheduleEntry",
    "SearchSpace",
    "SlotNumberedSampler",
    "WholeResult",
    "build_report",
    "load_result",
    "make_sampler_factory",
    "parse_sampler",
    "tune_per_epoch",
    "tune_whole",
]
