"""Verdict vocabulary shared by the trust analyses: labels as sent vs winners in model terms.

Position bias only shows when the two are kept apart: a label (`A>B`) names a *position* in the
pair as sent; a winner names a *model*. For a pair sent in order `BA`, model B sat in position A.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from novajudge.errors import ResultsError

ORDERS = ("AB", "BA")
WINNERS = ("A", "B", "tie", "bothbad", "error")
#: The three classes a preference can fall in once "both bad" is read as "no preference".
PREFERENCES = ("A", "B", "tie")

_LABEL_TO_POSITION = {"A>B": "A", "B>A": "B", "A=B": "tie", "A=B (bothbad)": "bothbad", "error": "error"}
_RAW = re.compile(r"\[*\s*(A\s*>\s*B|B\s*>\s*A|A\s*=\s*B)\s*\]*\s*(\(\s*bothbad\s*\))?", re.IGNORECASE)

PROMPT_COLUMNS = ("row", "prompt_id", "order", "label", "winner")


def parse_label(raw: object) -> str:
    """A judge preference (clean or raw, e.g. `[[B>A]]`, `A=B (bothbad)`) → position verdict.

    Returns `A`, `B`, `tie`, `bothbad` or `error`. Anything unrecognised is `error`: a judge output
    we cannot read is an inference error, never silently a tie.
    """
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return "error"
    text = str(raw).strip()
    if text in _LABEL_TO_POSITION:
        return _LABEL_TO_POSITION[text]
    found = _RAW.search(text)
    if not found:
        return "error"
    core = re.sub(r"\s+", "", found.group(1)).upper()
    if core == "A=B":
        return "bothbad" if found.group(2) else "tie"
    return "A" if core == "A>B" else "B"


def swap(verdict: str) -> str:
    """Position verdict ↔ model verdict for a pair sent as `BA` (A and B trade places)."""
    return {"A": "B", "B": "A"}.get(verdict, verdict)


def to_model(position_verdict: str, order: str) -> str:
    """The model that a position verdict favours, given the order the pair was sent in."""
    return swap(position_verdict) if order == "BA" else position_verdict


def preference(winner: str) -> str | None:
    """A/B/tie class of a winner (`bothbad` counts as no preference); None for errors."""
    if winner == "error":
        return None
    return "tie" if winner == "bothbad" else winner


def check_prompts(prompts: pd.DataFrame, source: str = "prompts table") -> pd.DataFrame:
    """Validate the flattened prompts table and return it with clean string columns.

    Errors name the table, the judge-input `row` and the field, so a malformed details.parquet is
    found at its source rather than as a wrong percentage.
    """
    missing = [c for c in PROMPT_COLUMNS if c not in prompts.columns]
    if missing:
        raise ResultsError(f"{source}: missing column(s) {', '.join(missing)}; "
                           f"expected {', '.join(PROMPT_COLUMNS)} (see docs/design.md)")
    out = prompts.copy()
    out["prompt_id"] = out["prompt_id"].astype(str)
    for field, allowed in (("order", ORDERS), ("winner", WINNERS)):
        bad = out[~out[field].isin(allowed)]
        if not bad.empty:
            first = bad.iloc[0]
            raise ResultsError(f"{source}: row {first['row']}: field {field!r} is {first[field]!r}; "
                               f"allowed: {', '.join(allowed)}")
    dup = out[out.duplicated(["prompt_id", "order"], keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        rows = ", ".join(str(r) for r in dup[dup["prompt_id"] == first["prompt_id"]]["row"])
        raise ResultsError(f"{source}: prompt_id {first['prompt_id']!r} has more than one "
                           f"{first['order']} judgement (rows {rows})")
    return out
