"""Make the repository importable when `novajudge` is not installed into the venv (`pip install -e`).

`make setup` installs it editable; a bare `.venv/bin/pytest tests/trust` in a fresh checkout does
not, and the trust tests should not depend on which of the two ran first.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
