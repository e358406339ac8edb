"""The OptunaHub copy of the sampler, ``optunahub/samplers/gamma_bo/``: in sync with the package
(``tools/sync_optunahub.py --check``), loadable by ``optunahub`` where ``optuna_gamma`` cannot be
imported, suggesting exactly what the package's sampler suggests, and its ``example.py`` runs.
No network: ``load_module`` is served from a pre-filled OptunaHub cache."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import types

import optuna
import pytest
from threadpoolctl import threadpool_limits

from optuna_gamma import GammaBOSampler


REPO = Path(__file__).resolve().parents[1]
HUB = REPO / "optunahub" / "samplers" / "gamma_bo"
TOOL = REPO / "tools" / "sync_optunahub.py"


def _optunahub_or_skip() -> None:
    spec = importlib.util.find_spec("optunahub")
    # The repo's own optunahub/ folder is a namespace package when the repo root is on sys.path.
    if spec is None or spec.origin in (None, "namespace"):
        msg = "optunahub is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            raise RuntimeError(msg)
        pytest.skip(msg)


def _load_tool() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("sync_optunahub", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# Run in a subprocess with `python -I` from a temporary directory: a meta-path finder refuses
# `optuna_gamma` (it is installed in editable mode in the development environment), so only the
# folder's own copy can serve the sampler.
BLOCK = r"""
import sys


class _NoOptunaGamma:
    def find_spec(self, name, path=None, target=None):
        if name == "optuna_gamma" or name.startswith("optuna_gamma."):
            raise ModuleNotFoundError(f"blocked: {name}", name=name)
        return None


sys.meta_path.insert(0, _NoOptunaGamma())
try:
    import optuna_gamma  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("optuna_gamma is importable")
"""

# Two objectives: a 2-D quadratic (the improvement test) and a mixed space (float, log float,
# int, categorical) for the equality test.
OBJECTIVES = r"""
import math


def sphere(trial):
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", -5.0, 5.0)
    return (x - 1.0) ** 2 + (y + 0.5) ** 2


def mixed(trial):
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", 1e-3, 10.0, log=True)
    n = trial.suggest_int("n", -4, 4)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    penalty = {"a": 1.0, "b": 0.0, "c": 2.0}[c]
    return (x - 1.0) ** 2 + math.log10(y) ** 2 + 0.5 * (n - 2) ** 2 + penalty
"""


def _trials(sampler_class: type, objectives: dict[str, object]) -> dict[str, list[list[object]]]:
    out: dict[str, list[list[object]]] = {}
    for name in ("sphere", "mixed"):
        study = optuna.create_study(sampler=sampler_class(seed=0))
        study.optimize(objectives[name], n_trials=10)  # type: ignore[arg-type]
        out[name] = [[t.params, t.value] for t in study.trials]
    return out


LOAD_AND_RUN = (
    BLOCK
    + OBJECTIVES
    + r"""
import json

import optuna
import optunahub
from threadpoolctl import threadpool_limits

# One BLAS thread on both sides, as in the test's own process: the comparison is float for
# float, and this keeps it so whatever else (Optuna, NumPy) does with more threads.
threadpool_limits(limits=1)
optuna.logging.set_verbosity(optuna.logging.WARNING)
module = optunahub.load_local_module(package="samplers/gamma_bo", registry_root=sys.argv[1])
assert module.__name__ == "optunahub_registry.package.samplers.gamma_bo", module.__name__
assert module.GammaBOSampler.__module__.startswith(module.__name__ + ".")
out = {}
for name, objective in (("sphere", sphere), ("mixed", mixed)):
    study = optuna.create_study(sampler=module.GammaBOSampler(seed=0))
    study.optimize(objective, n_trials=10)
    out[name] = [[t.params, t.value] for t in study.trials]
assert not [m for m in sys.modules if m.split(".")[0] in ("optuna_gamma", "torch")]
print(json.dumps(out))
"""
)


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-I", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_the_folder_is_in_sync_with_the_package() -> None:
    tool = _load_tool()
    assert tool.stale() == [], "run python tools/sync_optunahub.py"
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--check"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every module is a generated copy; the hand-written files are there.
    copied = {p.relative_to(HUB).as_posix() for p in HUB.rglob("*.py")} - {"example.py"}
    assert {"__init__.py", "samplers/_gamma_bo.py", "gp/model.py", "gp/fit.py"} <= copied
    for rel in copied:
        text = (HUB / rel).read_text(encoding="utf-8")
        assert text.startswith(f"# generated from optuna_gamma/{rel} by tools/sync_optunahub.py")
        assert not re.search(r"^\s*(from|import)\s+optuna_gamma\b", text, re.MULTILINE), rel
    assert not any(p.parts[0] == "tuner" for p in map(Path, copied))


def test_check_names_stale_files_and_sync_repairs_them_but_not_hand_written_ones(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "gamma_bo"
    shutil.copytree(HUB, dest, ignore=shutil.ignore_patterns("__pycache__"))
    readme = (dest / "README.md").read_bytes() + b"\nlocal edit\n"
    (dest / "README.md").write_bytes(readme)
    with (dest / "gp" / "model.py").open("a", encoding="utf-8") as f:
        f.write("# hand edit\n")
    (dest / "samplers" / "_refit.py").unlink()
    (dest / "samplers" / "_old.py").write_text(
        "# generated from optuna_gamma/samplers/_old.py by tools/sync_optunahub.py; do not edit\n"
    )
    (dest / "requirements.txt").write_text("optuna\n")

    check = [sys.executable, str(TOOL), "--check", "--dest", str(dest)]
    proc = subprocess.run(check, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "changed: gp/model.py" in proc.stdout
    assert "missing: samplers/_refit.py" in proc.stdout
    assert "not generated: samplers/_old.py" in proc.stdout
    assert "changed: requirements.txt" in proc.stdout
    assert "README.md" not in proc.stdout  # hand-written: its content is not checked

    proc = subprocess.run(check[:2] + check[3:], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deleted samplers/_old.py" in proc.stdout
    assert (dest / "README.md").read_bytes() == readme
    proc = subprocess.run(check, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rel in ("gp/model.py", "samplers/_refit.py", "requirements.txt", "LICENSE"):
        assert (dest / rel).read_bytes() == (HUB / rel).read_bytes()


def test_requirements_and_license_follow_the_package() -> None:
    reqs = (HUB / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert {"optuna>=4.0", "numpy>=1.23", "scipy>=1.9"} <= set(reqs)
    assert not any(r.startswith("torch") for r in reqs)
    assert (HUB / "LICENSE").read_bytes() == (REPO / "LICENSE").read_bytes()
    front = (HUB / "README.md").read_text(encoding="utf-8").split("---\n")[1]
    keys = {line.split(":")[0] for line in front.splitlines() if ":" in line}
    assert {"author", "title", "description", "tags", "optuna_versions", "license"} <= keys
    assert "sampler" in front.split("tags:")[1].splitlines()[0]


def test_readme_documents_the_signature_and_every_argument() -> None:
    """The hand-written README's API entry is the sampler's signature, defaults included, and
    each argument has its bullet (the entry once kept a default after it had changed)."""
    import inspect

    readme = (HUB / "README.md").read_text(encoding="utf-8")
    params = inspect.signature(GammaBOSampler).parameters
    shown = ", ".join(f"{name}={p.default!r}".replace("'", '"') for name, p in params.items())
    assert f"- `GammaBOSampler(*, {shown})`" in readme
    bullets = set(re.findall(r"^  - `(\w+)`", readme, flags=re.M))
    bullets |= {
        name
        for line in re.findall(r"^  - (`\w+`(?:, `\w+`)+):", readme, flags=re.M)
        for name in re.findall(r"`(\w+)`", line)
    }
    assert set(params) <= bullets, sorted(set(params) - bullets)


def test_load_local_module_without_optuna_gamma_matches_the_package(tmp_path: Path) -> None:
    _optunahub_or_skip()
    hub = json.loads(_run(["-c", LOAD_AND_RUN, str(REPO / "optunahub")], cwd=tmp_path))

    objectives: dict[str, object] = {}
    exec(OBJECTIVES, objectives)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with threadpool_limits(limits=1):  # as the subprocess runs (LOAD_AND_RUN)
        package = json.loads(json.dumps(_trials(GammaBOSampler, objectives)))
    # Same seed, same code: the very same suggestions and values, float for float.
    assert hub == package

    best = min(value for _, value in hub["sphere"])
    random = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    random.optimize(objectives["sphere"], n_trials=10)  # type: ignore[arg-type]
    assert best < 0.05 and best < random.best_value / 5, (best, random.best_value)


@pytest.mark.parametrize("how", ["load_module", "local"])
def test_example_runs(tmp_path: Path, how: str) -> None:
    _optunahub_or_skip()
    env = dict(os.environ)
    if how == "load_module":
        # `optunahub.load_module("samplers/gamma_bo")` finds the package in its cache and does
        # not download it: the cache holds this folder, where the registry would put it.
        cache = tmp_path / "cache"
        target = cache / "github.com/optuna/optunahub-registry/main/package/samplers/gamma_bo"
        shutil.copytree(HUB, target, ignore=shutil.ignore_patterns("__pycache__"))
        env["OPTUNAHUB_CACHE_HOME"] = str(cache)
        args = ["-c", BLOCK + "\nimport runpy\nrunpy.run_path(sys.argv[1], run_name='__main__')"]
        args.append(str(target / "example.py"))
    else:
        args = ["-c", BLOCK + "\nimport runpy\nrunpy.run_path(sys.argv[1], run_name='__main__')"]
        args += [str(HUB / "example.py"), "--local"]
    out = _run(args, cwd=tmp_path, env=env)
    best = float(out.split("best value ")[1].split()[0])
    assert best < 0.45, out  # Branin's minimum is 0.397887
