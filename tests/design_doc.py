"""Readers of docs/design.md for the tests that hold the code to it.

A uniquely named module (not `conftest`), importable from every test folder (`tests/` is on
pytest's `pythonpath`).
"""

from __future__ import annotations

import re
from pathlib import Path

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"


def section(title: str, text: str | None = None) -> str:
    """The body of the `## <title>` section (up to the next `## `)."""
    text = DESIGN.read_text(encoding="utf-8") if text is None else text
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"docs/design.md has no section '## {title}'"
    return match.group(1)


def lambda_environment() -> dict[str, dict[str, tuple[str, str]]]:
    """function -> variable -> (read by, default / set by), from "## Lambda environment".

    One `### <function> (...)` table per function; a row may name several variables.
    """
    body = section("Lambda environment")
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    for match in re.finditer(r"^### (\w+)[^\n]*\n(.*?)(?=^### |\Z)", body, flags=re.M | re.S):
        rows: dict[str, tuple[str, str]] = {}
        for line in match.group(2).splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 3 or cells[0] in ("variable", "---"):
                continue
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                rows[name] = (cells[1], cells[2])
        tables[match.group(1)] = rows
    return tables
