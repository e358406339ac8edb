"""Errors of the tuner that are not bad arguments (those are :class:`ValueError`), and the
check that a part of it has the packages of the ``torch`` extra it needs."""

from __future__ import annotations

import importlib.util


__all__ = ["AllTrialsDivergedError", "MissingExtraError", "TunerError", "require_extra"]

#: The module each package of the ``torch`` extra installs, and the package's name.
_PACKAGES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "sklearn": "scikit-learn",
    "plotly": "plotly",
}


class TunerError(RuntimeError):
    """The environment stops the run: a storage that cannot be opened or written, a device that
    is not there, a run directory in use. The message is one line that names the cause; the
    results stored so far are kept, and the same call resumes once the cause is fixed."""


class AllTrialsDivergedError(TunerError):
    """Every trial of a study diverged, so there is no state to adopt."""


class MissingExtraError(ImportError):
    """A part of the tuner needs a package of the ``torch`` extra that is not installed (the
    sampler alone, ``pip install optuna-gamma``, brings none of them)."""


def require_extra(what: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` before any work if one of ``modules`` is missing.

    The modules are looked up, not imported (``importlib.util.find_spec``), so the check costs
    nothing where they are installed.

    Args:
        what: What needs them, as the caller knows it (``"this command"``,
            ``"ThesisTrainer"``).
        modules: Module names among ``torch``, ``torchvision``, ``sklearn``, ``plotly``.

    Raises:
        MissingExtraError: One line naming the missing packages and the install command.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    names = [_PACKAGES.get(m, m) for m in missing]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    verb = "is" if len(names) == 1 else "are"
    raise MissingExtraError(
        f"{what} needs {listed}, which {verb} not installed: pip install 'optuna-gamma[torch]'",
        name=missing[0],
    )
