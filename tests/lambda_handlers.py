"""Import a Lambda handler the way the tests need it: by file, under a name of its own.

All three functions' modules are called `handler`; importing them by path under `nj_handler_<name>`
lets one test session hold all three, as the pipeline and the least-privilege tests do.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_handler(name: str) -> ModuleType:
    """`lambdas/<name>/handler.py` as module `nj_handler_<name>` (imported once per session)."""
    module_name = f"nj_handler_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, REPO / "lambdas" / name / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
