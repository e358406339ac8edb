"""Generate the OptunaHub copy of the sampler, ``optunahub/samplers/gamma_bo/``, from the package.

OptunaHub loads a registry package with ``optunahub.load_local_module`` /
``optunahub.load_module`` as the module ``optunahub_registry.package.samplers.gamma_bo``, from its
folder alone: ``optuna_gamma`` is not installed there. The folder therefore holds a copy of the
torch-free modules ``GammaBOSampler`` needs, with every ``from optuna_gamma...`` import rewritten
to a relative one. The package's root ``optuna_gamma/__init__.py`` becomes the folder's
``__init__.py`` (it re-exports ``GammaBOSampler``).

Which modules: the closure of ``optuna_gamma/__init__.py`` under its ``optuna_gamma`` imports (at
module level, inside functions and under ``TYPE_CHECKING`` alike), widened to every module of each
subpackage it reaches (``optuna_gamma.gp``'s ``__init__`` imports its modules by name at run time).
Reaching ``optuna_gamma.tuner`` (the torch side) is an error. Besides the modules, ``LICENSE`` is
copied verbatim and ``requirements.txt`` written from ``[project] dependencies`` of
``pyproject.toml``. ``README.md`` and ``example.py`` are written by hand and never touched.

Usage (from anywhere)::

    python tools/sync_optunahub.py           # (re)write the generated files, delete stale ones
    python tools/sync_optunahub.py --check   # exit 1 and name the stale files, write nothing
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterable
from pathlib import Path
import re
import sys


REPO = Path(__file__).resolve().parents[1]
PACKAGE = "optuna_gamma"
DEST = Path("optunahub") / "samplers" / "gamma_bo"
TOOL = "tools/sync_optunahub.py"
# Subpackages that must never be copied: the torch side.
FORBIDDEN = ("optuna_gamma.tuner",)
# Files in the destination that are written by hand: required, never overwritten.
HAND_WRITTEN = ("README.md", "example.py")
_IGNORED_PARTS = {"__pycache__", ".pytest_cache"}


def header(source: str) -> str:
    """The first line of a generated file made from ``source`` (a path relative to the repo)."""
    return f"# generated from {source} by {TOOL}; do not edit\n"


def _is_generated(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return first.startswith("# generated from ") and f"by {TOOL}; do not edit" in first


def _module_of(path: Path, repo: Path) -> tuple[str, ...]:
    """``optuna_gamma/gp/fit.py`` -> ``("optuna_gamma", "gp", "fit")``; ``__init__`` drops out."""
    parts = path.relative_to(repo).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def _package_of(path: Path, repo: Path) -> tuple[str, ...]:
    """The package a module's relative imports are resolved against."""
    return path.relative_to(repo).parent.parts


def _file_of(module: tuple[str, ...], repo: Path) -> Path | None:
    base = repo.joinpath(*module)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _package_imports(tree: ast.AST, path: Path, repo: Path) -> Iterable[tuple[int, str]]:
    """``(line, module)`` for every import of ``optuna_gamma`` (absolute) in a module's tree; a
    ``from optuna_gamma.x import y`` yields ``optuna_gamma.x`` and, when ``y`` is a submodule,
    ``optuna_gamma.x.y`` too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    raise SystemExit(
                        f"{path.relative_to(repo)}:{node.lineno}: `import {alias.name}` cannot "
                        "be made relative; use `from ... import ...`"
                    )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == PACKAGE or node.module.startswith(PACKAGE + "."):
                yield node.lineno, node.module
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    if _file_of(tuple(sub.split(".")), repo) is not None:
                        yield node.lineno, sub


def modules_to_copy(repo: Path = REPO) -> list[Path]:
    """The source files to copy, sorted (see the module docstring)."""
    root = repo / PACKAGE / "__init__.py"
    todo = [root]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        module = ".".join(_module_of(path, repo))
        if module.startswith(FORBIDDEN):
            raise SystemExit(f"the sampler's copy would include the torch side: {module}")
        # Every parent package, and (below the root) every sibling module of the package.
        package = _package_of(path, repo)
        for i in range(1, len(package) + 1):
            init = repo.joinpath(*package[:i], "__init__.py")
            if init.is_file():
                todo.append(init)
        if len(package) > 1:
            todo.extend(sorted(repo.joinpath(*package).glob("*.py")))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in _package_imports(tree, path, repo):
            found = _file_of(tuple(target.split(".")), repo)
            if found is None:
                raise SystemExit(f"{path.relative_to(repo)}:{line}: cannot find {target}")
            todo.append(found)
    return sorted(seen)


def _relative(package: tuple[str, ...], target: tuple[str, ...]) -> str:
    common = 0
    while common < min(len(package), len(target)) and package[common] == target[common]:
        common += 1
    if common == 0:
        raise ValueError(f"{'.'.join(target)} is outside {package[0]}")
    return "." * (len(package) - common + 1) + ".".join(target[common:])


_FROM = re.compile(r"^(\s*from\s+)(" + PACKAGE + r"(?:\.[A-Za-z_][\w.]*)?)(\s+import\b)")


def rewrite(path: Path, repo: Path = REPO) -> str:
    """The generated text of one module: the header, then the source with its absolute
    ``optuna_gamma`` imports made relative."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    package = _package_of(path, repo)
    tree = ast.parse(text, filename=str(path))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
            continue
        if not (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
            continue
        i = node.lineno - 1
        match = _FROM.match(lines[i])
        if match is None or match.group(2) != node.module:
            raise SystemExit(
                f"{path.relative_to(repo)}:{node.lineno}: cannot rewrite this import "
                "(write `from optuna_gamma.x import y` on one line)"
            )
        rel = _relative(package, tuple(node.module.split(".")))
        lines[i] = match.group(1) + rel + match.group(3) + lines[i][match.end() :]
    body = "".join(lines)
    if not body.endswith("\n"):
        body += "\n"
    return header(path.relative_to(repo).as_posix()) + body


def _requirements(repo: Path) -> str:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    with (repo / "pyproject.toml").open("rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    return header("pyproject.toml ([project] dependencies)") + "".join(
        f"{d}\n" for d in dependencies
    )


def expected_files(repo: Path = REPO) -> dict[str, bytes]:
    """Every generated file of the destination: its path relative to it, and its content."""
    out: dict[str, bytes] = {}
    for path in modules_to_copy(repo):
        rel = path.relative_to(repo / PACKAGE).as_posix()
        out[rel] = rewrite(path, repo).encode("utf-8")
    out["LICENSE"] = (repo / "LICENSE").read_bytes()
    out["requirements.txt"] = _requirements(repo).encode("utf-8")
    return out


def _present(dest: Path) -> list[str]:
    if not dest.is_dir():
        return []
    return sorted(
        p.relative_to(dest).as_posix()
        for p in dest.rglob("*")
        if p.is_file()
        and not _IGNORED_PARTS.intersection(p.relative_to(dest).parts)
        and p.suffix != ".pyc"
    )


def stale(repo: Path = REPO, dest: Path | None = None) -> list[str]:
    """What differs from what would be generated, one line per file: ``changed: X``,
    ``missing: X``, ``not generated: X`` (a file the generator would not write: delete it, or
    list it in ``HAND_WRITTEN``), ``missing hand-written file: X``. Empty when in sync."""
    dest = repo / DEST if dest is None else dest
    expected = expected_files(repo)
    problems = []
    for rel, content in sorted(expected.items()):
        path = dest / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif path.read_bytes() != content:
            problems.append(f"changed: {rel}")
    for rel in _present(dest):
        if rel not in expected and rel not in HAND_WRITTEN:
            problems.append(f"not generated: {rel}")
    for rel in HAND_WRITTEN:
        if not (dest / rel).is_file():
            problems.append(f"missing hand-written file: {rel}")
    return problems


def sync(repo: Path = REPO, dest: Path | None = None) -> list[str]:
    """Write the generated files that differ and delete generated files no longer generated;
    returns the paths written or deleted. Hand-written files are never touched."""
    dest = repo / DEST if dest is None else dest
    expected = expected_files(repo)
    done = []
    for rel, content in sorted(expected.items()):
        path = dest / rel
        if path.is_file() and path.read_bytes() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        done.append(f"wrote {rel}")
    for rel in _present(dest):
        if rel not in expected and rel not in HAND_WRITTEN and _is_generated(dest / rel):
            (dest / rel).unlink()
            done.append(f"deleted {rel}")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 naming the stale files; write nothing"
    )
    parser.add_argument(
        "--dest", type=Path, default=None, help=f"destination folder (default: {DEST})"
    )
    args = parser.parse_args(argv)
    dest = None if args.dest is None else args.dest.resolve()
    shown = DEST.as_posix() if dest is None else str(dest)
    if args.check:
        problems = stale(REPO, dest)
        for line in problems:
            print(f"{shown}: {line}")
        if problems:
            print(f"{shown} is out of date: run python {TOOL}", file=sys.stderr)
            return 1
        print(f"{shown} is in sync with {PACKAGE}/")
        return 0
    for line in sync(REPO, dest):
        print(f"{shown}: {line}")
    left = stale(REPO, dest)
    for line in left:
        print(f"{shown}: {line}", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
