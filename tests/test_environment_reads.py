"""One reader per environment variable, and none in the steps or behind the handlers' backs.

Read from the source (the `ast` of every module of `novajudge/` and `lambdas/`): a variable read in
two modules is a fact with two owners (two defaults, two parsers); a step reading `os.environ`
itself could not be called with the environment a test or the emulator chooses.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "novajudge").rglob("*.py"), *(ROOT / "lambdas").glob("*/handler.py")])


def _is_environ(node: ast.AST) -> bool:
    """`os.environ`, or a parameter named `environ` (a Mapping handed down from `os.environ`)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` assignments (variable names kept in constants)."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _name(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.JoinedStr):  # f"PREFIX_{which}" -> "PREFIX_*"
        return "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)
    return None  # a loop variable: saving and restoring the whole environment, not reading a fact


def reads(path: Path) -> set[str]:
    """The environment variables `path` reads by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = _constants(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        key: ast.AST | None = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            owner = node.func.value
            if (node.func.attr in ("get", "setdefault") and _is_environ(owner)) or (
                node.func.attr == "getenv" and isinstance(owner, ast.Name) and owner.id == "os"
            ):
                key = node.args[0]
        if isinstance(node, ast.Call) and len(node.args) > 1 and _is_environ(node.args[0]):
            key = node.args[1]  # a reading helper: `_number(environ, "NAME", ...)`
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            key = node.slice
        if key is not None and (name := _name(key, constants)):
            names.add(name)
    return names


def test_every_variable_has_one_reader() -> None:
    readers: dict[str, list[str]] = defaultdict(list)
    for path in SOURCES:
        for name in reads(path):
            readers[name].append(str(path.relative_to(ROOT)))
    shared = {name: where for name, where in readers.items() if len(where) > 1}
    assert not shared, shared
    # The scan sees what it must: the steps' variables live in one module.
    environment = "novajudge/steps/environment.py"
    for name in (
        "BUCKET_NAME",
        "NOVAJUDGE_READ_TIMEOUT_SECONDS",
        "NOVAJUDGE_STAND_IN",
        "AWS_REGION",
        "TMPDIR",
    ):
        assert readers[name] == [environment], (name, readers[name])


def test_steps_and_handlers_never_read_os_environ_themselves() -> None:
    for path in SOURCES:
        rel = path.relative_to(ROOT).parts
        if rel[0] != "lambdas" and rel[:2] != ("novajudge", "steps"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        handed_over = {
            id(arg)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "from_environ"
            for arg in node.args
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_environ(node):
                assert id(node) in handed_over, f"{'/'.join(rel)}:{node.lineno} reads os.environ"
