"""Sphinx configuration of the optuna-gamma documentation (built in CI with warnings as errors:
``sphinx-build -W -b html docs docs/_build/html``)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
import shutil
import sys
import tempfile


sys.path.insert(0, os.path.abspath(".."))

project = "optuna-gamma"
author = "optuna-gamma developers"
copyright = "2026, optuna-gamma developers"
release = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
nitpicky = False
suppress_warnings = ["myst.xref_missing"]
exclude_patterns = ["_build"]
html_theme = "furo"


def _offline_mathjax() -> str:
    """MathJax 3 served from the site itself, so equations render without internet: its
    self-contained ``tex-svg.js`` (SVG output, no web fonts) from the sphinx-mathjax-offline
    package, copied into the site's ``_static/mathjax/``."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the docs need sphinx-mathjax-offline: pip install -e '.[docs]'")
    source = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "tex-svg.js"
    static = Path(tempfile.mkdtemp(prefix="optuna-gamma-docs-"))
    (static / "mathjax").mkdir()
    shutil.copy(source, static / "mathjax" / "tex-svg.js")
    return str(static)


def _figures() -> str:
    """The generated picture pages of ``docs/figures/`` (``python -m benchmarks.readme_tables``)
    with the ``plotly.min.js`` they load beside them, from the installed plotly: copied to the
    site's ``figures/``, where a page shows them in a frame; no script comes from the
    internet."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as error:
        raise RuntimeError("the docs need plotly: pip install -e '.[docs]'") from error
    extra = Path(tempfile.mkdtemp(prefix="optuna-gamma-figures-"))
    figures = extra / "figures"
    figures.mkdir()
    for page in (Path(__file__).parent / "figures").glob("*.html"):
        shutil.copy(page, figures / page.name)
    (figures / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
    return str(extra)


html_static_path = [_offline_mathjax()]
html_extra_path = [_figures()]
mathjax_path = "mathjax/tex-svg.js"
html_title = "optuna-gamma"
