"""The docs site works offline (issue 15, point 9): MathJax and plotly.js are served from the
site itself, and headless Chromium with every non-file request blocked shows typeset math and
the generated picture of docs/figures/ (issue 14) inside its page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import subprocess
import sys
from typing import Any

import pytest


REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs built once for this module's tests (asked for after ``offline_page``, so that
    a machine without Chromium skips before building)."""
    out = tmp_path_factory.mktemp("docs") / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(REPO / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture()
def offline_page() -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page that may load ``file:`` URLs only, and the URLs it was refused."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    from test_dashboard import CHROMIUM_ARGS

    blocked: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def only_files(route) -> None:  # noqa: ANN001
                if route.request.url.startswith("file:"):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", only_files)
            yield page, blocked
        finally:
            browser.close()


def test_equations_render_with_the_network_blocked(
    offline_page: tuple[Any, list[str]], site: Path
) -> None:
    page, blocked = offline_page
    page_file = site / "sampler.html"  # the sampler's math
    assert "cdn.jsdelivr" not in page_file.read_text(encoding="utf-8")
    page.goto(page_file.as_uri())
    n_math = page.locator(".math").count()  # Sphinx's math spans and blocks
    page.wait_for_function(
        f"document.querySelectorAll('mjx-container svg').length >= {n_math}",
        timeout=120_000,
    )
    typeset = page.locator("mjx-container").count()
    assert n_math >= 10 and typeset >= n_math  # every equation typeset by the local MathJax
    assert not [u for u in blocked if "mathjax" in u.lower()]


def test_the_picture_of_when_it_pays_draws_with_the_network_blocked(
    offline_page: tuple[Any, list[str]], site: Path
) -> None:
    page, blocked = offline_page
    assert (site / "figures" / "plotly.min.js").stat().st_size > 1_000_000
    page.goto((site / "when-it-pays.html").as_uri())
    frame = page.frame_locator("iframe[src='figures/when-it-pays.html']")
    frame.locator(".main-svg").first.wait_for(timeout=120_000)
    titles = frame.locator(".annotation-text").all_text_contents()
    assert {"MNIST-500", "Fashion-MNIST 1,000", "CIFAR-10 5,000"} <= set(titles)
    assert frame.locator(".scatterlayer .trace").count() >= 4 * 5  # 5-6 methods per task
    legend = " ".join(frame.locator(".legendtext").all_text_contents())
    for method in ("default policy, serial", "PB2", "PBT", "untuned training"):
        assert method in legend
    assert blocked == []  # plotly.js from the site, nothing else asked for
