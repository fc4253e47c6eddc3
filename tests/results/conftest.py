"""Keep matplotlib off any display (the package is importable through pyproject's `pythonpath`)."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
