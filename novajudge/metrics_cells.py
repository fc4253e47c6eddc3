"""The details parquet's `metrics` cells -> dicts: one parser, fast at 100,000 rows, never `eval`.

The judge writes each row's `metrics` as a Python dict literal (`str()` of a dict: single quotes,
`True`/`False`/`None`). `ast.literal_eval` reads that safely but slowly: it builds and walks a
syntax tree in Python, most of a large summary's time. So a batch of cells is first read as JSON:

1. rewrite: the batch is joined and turned into JSON text with a fixed series of `str.replace`
   calls (quote delimiters by their context, `True` -> `true`, `\\x` -> `\\u00`...), C speed;
2. parse: one `json.loads` for the whole batch;
3. verify: a cell's JSON value is kept only if `repr(value) == cell`, i.e. only if printing it
   back gives the cell's exact text. `ast.literal_eval` of that text is then that same value, so
   nothing the rewrite could get wrong (a quote or a `True` inside a string, hand-written
   spacing, a merged cell) survives: such a cell is simply not verified;
4. every cell not verified is read with `ast.literal_eval`, which decides, and names the row if
   it cannot.

The result is always exactly what `ast.literal_eval` gives (`tests/results` checks it on every
escape `repr` writes); only the time differs: see `benchmarks/bench_summarize.py`.
"""

from __future__ import annotations

import ast
import gc
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from novajudge.errors import ResultsError
from novajudge.verdicts import cell_text

#: Cells rewritten and parsed together: bounds the memory of one batch's decoded dicts.
BATCH = 2000

# Python literal text -> JSON text, in this order. A dict's `repr` puts a string's delimiters
# after `{`, `, `, `: ` and before `: `, `, `, `}`; it double-quotes a string only when the string
# holds a `'` and no `"`. So: escape every `"` and restore the delimiters of "..." strings (only
# where the batch has a `"`), turn the delimiters of '...' strings into `"`, the keywords into
# JSON's, and (only where the batch has a backslash) the escapes JSON spells otherwise. Where a
# string's content happens to match one of these contexts, or a list holds strings or keywords
# (`[`/`]` contexts are left out: the judge's metrics hold none, and each pass costs a scan of the
# batch), the result is wrong or no JSON, and verification (step 3) rejects it.
_DOUBLE_QUOTED: tuple[tuple[str, str], ...] = (
    ('"', '\\"'),
    *((f'{before}\\"', f'{before}"') for before in ("{", ", ", ": ")),
    *((f'\\"{after}', f'"{after}') for after in (": ", ", ", "}")),
)
_SINGLE_QUOTED_AND_KEYWORDS: tuple[tuple[str, str], ...] = (
    *((f"{before}'", f'{before}"') for before in ("{", ", ", ": ")),
    *((f"'{after}", f'"{after}') for after in (": ", ", ", "}")),
    (": True", ": true"),
    (": False", ": false"),
    (": None", ": null"),
)
_ESCAPES: tuple[tuple[str, str], ...] = (
    ("\\\\", "\x02"),  # an escaped backslash, set aside so `\\x41` is not read as `\x41`
    ("\\'", "'"),
    ("\\x", "\\u00"),
    ("\x02", "\\\\"),
)


def _fast(texts: list[str]) -> list[Any]:
    """The JSON reading of each text where `repr` gives the text back, else `_UNREAD`."""
    joined = "\n".join(texts)  # a repr never holds a raw line break: the cells stay apart
    steps = _SINGLE_QUOTED_AND_KEYWORDS
    if '"' in joined:
        steps = _DOUBLE_QUOTED + steps
    if "\\" in joined:
        steps = steps + _ESCAPES
    for old, new in steps:
        joined = joined.replace(old, new)
    values = _json(f"[{joined.replace(chr(10), ',')}]")
    if not isinstance(values, list) or len(values) != len(texts):
        # One odd cell spoils a batch: read the cells one by one, still without literal_eval.
        pieces = joined.split("\n")
        values = [_json(p) for p in pieces] if len(pieces) == len(texts) else [_UNREAD] * len(texts)
    return [v if v is not _UNREAD and repr(v) == t else _UNREAD for v, t in zip(values, texts, strict=True)]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _UNREAD


_UNREAD = object()


def _slow(text: str, where: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ResultsError(f"{where}: field 'metrics' is not a Python dict literal ({exc})") from None


def iter_metrics(cells: Sequence[Any] | np.ndarray, source: str) -> Iterator[list[dict[str, Any]]]:
    """The `metrics` cells as dicts, in batches of `BATCH` rows (row order kept).

    A dict cell passes through; an empty cell is `{}`. Errors name `source` and the row:
    "`<source>` row 7: field 'metrics' is not a Python dict literal (...)".
    """
    for start in range(0, len(cells), BATCH):
        chunk = [
            c.strip() if type(c) is str else c if isinstance(c, dict) else cell_text(c).strip()
            for c in cells[start : start + BATCH]
        ]
        todo = [i for i, c in enumerate(chunk) if isinstance(c, str) and c]
        parsed: list[Any] = [c if isinstance(c, dict) else {} for c in chunk]
        # A batch allocates a few hundred thousand objects at once, all alive until it is done:
        # the cyclic collector would walk them again and again for nothing.
        collecting = gc.isenabled()
        gc.disable()
        try:
            values = _fast([chunk[i] for i in todo]) if todo else []
        finally:
            if collecting:
                gc.enable()
        for i, value in zip(todo, values, strict=True):
            where = f"{source} row {start + i}"
            value = _slow(chunk[i], where) if value is _UNREAD else value
            if not isinstance(value, dict):
                raise ResultsError(
                    f"{where}: field 'metrics' is a {type(value).__name__}, expected a dict literal"
                )
            parsed[i] = value
        yield parsed


def parse_metrics(cells: Sequence[Any] | np.ndarray, source: str) -> list[dict[str, Any]]:
    """All `metrics` cells as dicts (see `iter_metrics`), for tables small enough to hold at once."""
    return [m for batch in iter_metrics(cells, source) for m in batch]
