"""The docs site renders its equations offline (issue 15, point 9): MathJax is served from the
site itself, and headless Chromium with every non-file request blocked shows typeset math."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest


REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def test_equations_render_with_the_network_blocked(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(REPO / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    page_file = out / "sampler.html"  # the sampler's math
    assert "cdn.jsdelivr" not in page_file.read_text(encoding="utf-8")
    blocked: list[str] = []
    with sync_api.sync_playwright() as p:
        from test_dashboard import CHROMIUM_ARGS

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
            page.goto(page_file.as_uri())
            n_math = page.locator(".math").count()  # Sphinx's math spans and blocks
            page.wait_for_function(
                f"document.querySelectorAll('mjx-container svg').length >= {n_math}",
                timeout=120_000,
            )
            typeset = page.locator("mjx-container").count()
        finally:
            browser.close()
    assert n_math >= 10 and typeset >= n_math  # every equation typeset by the local MathJax
    assert not [u for u in blocked if "mathjax" in u.lower()]
