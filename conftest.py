"""Collection set-up for the whole repository (tests/ and the doctests in src/)."""

from __future__ import annotations

from importlib.util import find_spec

# The app's page module imports Gradio, an optional extra: without it, its doctests (and
# its import) are skipped rather than failing collection.
collect_ignore_glob = [] if find_spec("gradio") else ["src/pixcolor/app/_page.py"]
