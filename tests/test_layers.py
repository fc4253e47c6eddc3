"""No import runs up the layers of the `novajudge` package.

Each module belongs to a layer (the longest matching prefix in `LAYERS`); it may import modules of
its own layer or of lower ones, never of a higher one. Read from the source with `ast`, so an
import inside a function counts as much as one at the top. A module that no entry covers fails
the test: whoever adds a subpackage decides where it sits.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "novajudge"

#: Bottom to top. A name is a module or subpackage below `novajudge` (the longest prefix wins).
LAYERS: tuple[tuple[str, ...], ...] = (
    # facts and vocabularies: import nothing of the package but each other
    ("__init__", "errors", "jsonl", "labels", "layout", "pricing", "verdicts", "stats", "metrics_cells",
     "parallel", "memory",
     "judge.catalog", "judge.recipe"),  # what a judge is: its model catalog and recipe templates
    # typed configuration and run requests (they read the judge catalog)
    ("config", "run_request"),
    # one stage of a run each
    ("generation", "judge"),
    ("trust",),
    ("results",),  # composes trust into the summary
    ("steps",),  # the pipeline steps the Lambda handlers adapt
    ("ops",),
    ("local",),
    ("cli",),
)  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def layer_of(module: str) -> int | None:
    """The layer index of `novajudge.<module>`, by the longest entry that is it or a prefix of it."""
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module below novajudge) for every import of the package in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from novajudge.judge import catalog` imports the module novajudge.judge.catalog
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "novajudge":
                out.append((node.lineno, "__init__"))
            elif name.startswith("novajudge."):
                out.append((node.lineno, name.removeprefix("novajudge.")))
    return out


def _target_layer(module: str) -> int | None:
    """Layer of an imported name; `a.b.Name` falls back to `a.b` when Name is not a module."""
    while module:
        layer = layer_of(module)
        if layer is not None:
            return layer
        module = module.rpartition(".")[0]
    return None


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    missing = [_module_name(p) for p in MODULES if layer_of(_module_name(p)) is None]
    assert not missing, f"add these modules to LAYERS in {Path(__file__).name}: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_no_upward_import(path: Path):
    own = layer_of(_module_name(path))
    assert own is not None
    upward = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports novajudge.{target} "
        f"(layer {LAYERS[_target_layer(target)][0]!r} is above {LAYERS[own][0]!r})"
        for line, target in imported(path)
        if (_target_layer(target) or 0) > own
    ]
    assert not upward, "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The test would fail on the import the redesign removed (trust -> results)."""
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from novajudge.results.numbers import compute\n")
    assert imported(source) == [(2, "results.numbers.compute")]
    assert _target_layer("results.numbers.compute") > layer_of("trust.position")
    assert layer_of("judge.catalog") < layer_of("config") < layer_of("judge.job")
