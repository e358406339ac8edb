"""The front door stays true: README examples run, links resolve, the package map equals the
folders, and every generated table equals what ``benchmarks.readme_tables`` computes from the
results. (The docs site itself is built with warnings as errors by ``.ci/run``.)"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
import re

import pytest


ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _package_map() -> str:
    return README[README.index("## Package map") :]


def test_readme_sampler_example_runs_and_prints_what_it_says() -> None:
    block = re.search(r"## The sampler\n\n```python\n(.*?)```", README, re.S)
    assert block is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.group(1), "README-sampler-example", "exec"), {})
    params, value = out.getvalue().rsplit("}", 1)
    x = float(params.split(":")[1])
    # The comment in the example says "x ~ -0.359, value ~ 0.500".
    assert abs(x - (-0.359)) < 5e-3
    assert abs(float(value) - 0.500) < 5e-3


def test_readme_and_docs_links_resolve() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_package_map_names_every_module_and_only_existing_paths() -> None:
    table = _package_map()
    paths = re.findall(r"^\| `([^`]+)`", table, re.M)
    assert paths, "no rows in the package map"
    for p in paths:
        assert (ROOT / p).exists(), f"the package map names {p}, which does not exist"
    for module in sorted((ROOT / "optuna_gamma").rglob("*.py")):
        rel = module.relative_to(ROOT).as_posix()
        if module.name == "__init__.py" and module.parent.name not in ("optuna_gamma", "gp"):
            continue
        folder = module.parent.relative_to(ROOT).as_posix() + "/"
        assert rel in table or f"`{module.name}`" in table or folder in table, (
            f"{rel} is missing from the README's package map"
        )
    for folder in ("benchmarks", "examples", "tests", "docs", "optunahub", "tools"):
        assert f"`{folder}/" in table, f"{folder}/ is missing from the README's package map"


def test_generated_tables_equal_the_results(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import readme_tables

    assert readme_tables.main(["--check"]) == 0, capsys.readouterr().err
    pages = "".join(
        (readme_tables.ROOT / t).read_text(encoding="utf-8") for t in readme_tables.TARGETS
    )
    for name in readme_tables.TABLES:  # each table is shown somewhere (the README or a page)
        assert f"<!-- table:{name} -->" in pages
    assert "<!-- table:policy-headline -->" in README


def test_the_picture_shows_every_method_and_task_as_the_headline_table_does() -> None:
    """docs/figures/when-it-pays.html (issue 14: "a picture of test accuracy against compute
    for every method and task") draws the cells of the policy headline: its serial default and
    12-at-a-time default, PB2 and PBT are the table's medians, at the compute they spent."""
    from benchmarks import readme_tables

    fig = readme_tables.policy_figure_object()
    panels = [a.text for a in fig.layout.annotations]
    assert len(panels) == len(readme_tables._TASKS) == 4
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in readme_tables.policy_headline().splitlines()[2:]
    ]
    axes = ["x", "x2", "x3", "x4"]
    for i, task in enumerate(readme_tables._TASKS.values()):
        traces = {t.name: t for t in fig.data if t.xaxis == axes[i]}
        assert set(traces) >= {
            "default policy, serial (final model: average)",
            "default policy, 12 at a time",
            "PB2 (12 members)",
            "PBT (12 members)",
            "untuned training",
        }
        untuned = traces["untuned training"]
        assert list(untuned.customdata) == [10.0, 120.0]
        serial, wide = (r for r in rows if r[0] == task)
        for row, name in (
            (serial, "default policy, serial (final model: average)"),
            (wide, "default policy, 12 at a time"),
        ):
            trace = traces[name]
            assert list(trace.customdata) == [120.0]  # the budget, spent exactly
            assert f"{trace.y[0]:.1f}" == row[3]  # the table's "default policy %"
        assert f"{traces['PB2 (12 members)'].y[0]:.1f}" == serial[4]
        assert f"{traces['PBT (12 members)'].y[0]:.1f}" == serial[5]
        assert f"{untuned.y[1]:.1f}" == serial[6].split()[0]  # 120 epochs
        assert f"{untuned.y[0]:.1f}" == wide[6].split()[0]  # 10 epochs
        # side by side at the same compute, never on top of each other
        xs = [t.x[-1] for t in traces.values()]
        assert len(set(xs)) == len(xs)


def test_a_stale_table_is_found_and_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import readme_tables

    page = tmp_path / "README.md"
    page.write_text(
        "x\n<!-- table:sampler-headline -->\n| old |\n<!-- /table:sampler-headline -->\n"
    )
    monkeypatch.setattr(readme_tables, "ROOT", tmp_path)
    monkeypatch.setattr(readme_tables, "TARGETS", ("README.md",))
    assert readme_tables.main(["--check"]) == 1
    assert "| old |" in page.read_text()
    assert readme_tables.main([]) == 0
    text = page.read_text()
    assert "| old |" not in text and "win rate @12" in text
    assert readme_tables.main(["--check"]) == 0
