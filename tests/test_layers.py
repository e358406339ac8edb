"""The package's layering contract, read from the import statements (an import-linter in
a few lines; issue 18).

* The sampler side (``optuna_gamma/__init__.py``, ``optuna_gamma/gp``,
  ``optuna_gamma/samplers``) imports neither the tuner nor torch.
* The tuner's parts import downward only, in the order of :data:`LAYERS` (lowest first); a
  part may import its own layer's modules except where a sub-package would import a sibling
  sub-package of the same layer.
* Nothing imports the CLI except ``python -m optuna_gamma``.

Imports under ``if TYPE_CHECKING:`` are not counted (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "optuna_gamma"
T = "optuna_gamma.tuner"

#: The tuner's layers, lowest first: a module imports only from its own layer and those below.
#: Each entry is a module or a sub-package of ``optuna_gamma.tuner``.
LAYERS: list[set[str]] = [
    {"errors", "_logging", "frontend", "trainer", "trainer_ref"},
    {"persistence"},
    {"search", "policies", "results"},
    {"config", "reporting"},
    {"builtin"},
    {"execution"},
    {"tune"},
    {"__init__", "cli"},
]

#: The sub-packages; every module of the tuner is in one of them or in the tuner's own folder.
SUBPACKAGES = {"persistence", "search", "policies", "reporting", "builtin", "execution"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The ``optuna_gamma``/``torch`` modules ``path`` imports outside ``TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in ("optuna_gamma", "torch", "torchvision")}


def _existing(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _part(module: str) -> str | None:
    """The tuner part (a :data:`LAYERS` entry) that ``module`` belongs to."""
    if module == T:
        return "__init__"
    if not module.startswith(T + "."):
        return None
    return module[len(T) + 1 :].split(".")[0]


def _layer(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    raise AssertionError(f"tuner part {part!r} is in no layer of the contract")


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_tuner_part_is_in_the_contract() -> None:
    parts = {_part(_module_name(p)) for p in MODULES} - {None}
    for part in parts:
        _layer(str(part))
    folders = {p.name for p in (PACKAGE / "tuner").iterdir() if (p / "__init__.py").is_file()}
    assert folders == SUBPACKAGES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_follow_the_layers(path: Path) -> None:
    me = _module_name(path)
    imported = {m for m in _imports(path) if m.startswith("optuna_gamma") and _existing(m)}
    if not me.startswith(T) and me != "optuna_gamma.__main__":  # the sampler side
        assert not {m for m in _imports(path) if not m.startswith("optuna_gamma")}, me
        assert not {m for m in imported if m.startswith(T)}, f"{me} imports the tuner"
        return
    for other in imported:
        if other == f"{T}.cli":
            assert me == "optuna_gamma.__main__", f"{me} imports the CLI"
        mine, theirs = _part(me), _part(other)
        if mine is None or theirs is None or mine == theirs:
            continue
        assert _layer(theirs) < _layer(mine) or (
            _layer(theirs) == _layer(mine) and not (mine in SUBPACKAGES and theirs in SUBPACKAGES)
        ), f"{me} ({mine}) imports {other} ({theirs}), which is not below it"


def test_the_contract_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(f"from {T}.execution.engine import Engine\n")
    imported = _imports(bad)
    assert f"{T}.execution.engine" in imported
    assert _layer(str(_part(f"{T}.execution.engine"))) > _layer("persistence")
