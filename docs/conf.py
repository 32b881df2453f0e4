"""Sphinx configuration of the documentation, built by scripts/docs and by Read the Docs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

project = "authgear-django"
author = "authgear-django developers"
copyright = "authgear-django developers"

# The version is written only in pyproject.toml; read it back from the installed metadata.
try:
    release = version("authgear-django")
except PackageNotFoundError:  # building from a checkout that was never installed
    release = "0.0.0+unknown"
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinxcontrib.mermaid",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
# conformance.md is shown through reference/conformance.md (it stays where links expect it).
exclude_patterns = ["_build", "conformance.md", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Anchors for headings down to ####, so settings (#### `AUTHGEAR_…`) can be linked to.
myst_heading_anchors = 4
myst_fence_as_directive = ["mermaid"]

html_theme = "furo"
html_title = f"authgear-django {release}"
html_static_path: list[str] = []
pygments_style = "sphinx"

# Tall sequence diagrams: let the height follow the width instead of the 500px default box.
mermaid_height = "auto"
