"""The binary judge's two passes per pair, from a details table.

The flattened tables keep one label per judged row; the binary judge also records the raw output
of each pass (`forward_output`: pair as sent, `backward_output`: pair swapped), either as columns
or inside the `metrics` cell. Those two outputs are a position-bias check the judge ran for free,
so the summary should use them. `novajudge.results.parse.flatten` hands them over as columns
(`Flattened.passes`), read from the same parse of the `metrics` cells as the tables; a raw
details table without the columns is read here with the same parser.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from novajudge.errors import ResultsError
from novajudge.metrics_cells import parse_metrics
from novajudge.verdicts import PASS_KEYS


def binary_outputs_from_details(details: pd.DataFrame | None,
                                prompts: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """`{forward, backward, prompt_ids, orders}` for `analyse(binary_outputs=...)`, or None if absent.

    `details` is a details table (row i = judge-input line i) with `forward_output` and
    `backward_output` columns, or the judge's raw table with its `metrics` cells; `prompts` the
    flattened prompts table, whose `row`, `prompt_id` and `order` give each line its prompt and the
    order it was sent in. None when no row carries either output (e.g. a rubric run).
    """
    if details is None:
        return None
    n = len(details)
    if all(k in details.columns for k in PASS_KEYS):
        forward, backward = details[PASS_KEYS[0]].tolist(), details[PASS_KEYS[1]].tolist()
    elif "metrics" in details.columns:
        parsed = parse_metrics(details["metrics"].tolist(), "details")
        if not any(k in m for m in parsed for k in PASS_KEYS):
            return None
        forward = [m.get(PASS_KEYS[0]) for m in parsed]
        backward = [m.get(PASS_KEYS[1]) for m in parsed]
    else:
        return None
    ids: list[str] | None = None
    orders: list[str] | None = None
    if prompts is not None:
        missing = sorted(set(range(n)) - set(prompts["row"]))
        if missing:
            raise ResultsError(f"prompts table: no row {missing[0]} for details row {missing[0]}")
        by_row = prompts.set_index("row").loc[range(n)]
        ids = by_row["prompt_id"].astype(str).tolist()
        orders = by_row["order"].astype(str).tolist()
    return {"forward": forward, "backward": backward, "prompt_ids": ids, "orders": orders}
