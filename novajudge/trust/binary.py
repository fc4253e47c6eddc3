"""The binary judge's two passes per pair, pulled out of its raw details table.

The flattened tables keep one label per judged row; the binary judge also records the raw output
of each pass (`forward_output`: pair as sent, `backward_output`: pair swapped), either as columns
or inside the `metrics` cell (a Python dict literal). Those two outputs are a position-bias check
the judge ran for free, so the summary should use them.
"""

from __future__ import annotations

import ast
from typing import Any

import pandas as pd

from novajudge.errors import ResultsError

_KEYS = ("forward_output", "backward_output")


def _metrics(cell: Any, row: int) -> dict[str, Any]:
    if isinstance(cell, dict):
        return cell
    if cell is None or (isinstance(cell, float) and pd.isna(cell)) or not str(cell).strip():
        return {}
    try:
        value = ast.literal_eval(str(cell))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ResultsError(f"details row {row}: field 'metrics' is not a Python dict literal ({exc})"
                           ) from None
    if not isinstance(value, dict):
        raise ResultsError(f"details row {row}: field 'metrics' is a {type(value).__name__}, expected a dict")
    return value


def binary_outputs_from_details(details: pd.DataFrame,
                                prompts: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """`{forward, backward, prompt_ids, orders}` for `analyse(binary_outputs=...)`, or None if absent.

    `details` is the judge's raw details table (row i = judge-input line i); `prompts` the
    flattened prompts table, whose `row`, `prompt_id` and `order` give each line its prompt and the
    order it was sent in. None when no row carries either output (e.g. a rubric run).
    """
    n = len(details)
    if all(k in details.columns for k in _KEYS):
        forward, backward = details[_KEYS[0]].tolist(), details[_KEYS[1]].tolist()
    elif "metrics" in details.columns:
        parsed = [_metrics(cell, i) for i, cell in enumerate(details["metrics"].tolist())]
        if not any(k in m for m in parsed for k in _KEYS):
            return None
        forward = [m.get(_KEYS[0]) for m in parsed]
        backward = [m.get(_KEYS[1]) for m in parsed]
    else:
        return None
    ids: list[str] | None = None
    orders: list[str] | None = None
    if prompts is not None:
        by_row = prompts.set_index("row")
        missing = sorted(set(range(n)) - set(by_row.index))
        if missing:
            raise ResultsError(f"prompts table: no row {missing[0]} for details row {missing[0]}")
        ids = [str(by_row.at[i, "prompt_id"]) for i in range(n)]
        orders = [str(by_row.at[i, "order"]) for i in range(n)]
    return {"forward": forward, "backward": backward, "prompt_ids": ids, "orders": orders}
