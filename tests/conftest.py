"""Shared test set-up: makes the tests folder importable (``from test_training import ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
