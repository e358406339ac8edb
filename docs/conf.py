"""Sphinx configuration of the optuna-gamma documentation (built in CI with warnings as errors:
``sphinx-build -W -b html docs docs/_build/html``)."""

from __future__ import annotations

import os
import sys


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
html_title = "optuna-gamma"
