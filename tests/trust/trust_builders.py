"""Builders for the flattened prompts/criteria tables (docs/design.md) used by the trust tests."""

from __future__ import annotations

import pandas as pd

LABEL = {"A": "A>B", "B": "B>A", "tie": "A=B", "bothbad": "A=B (bothbad)", "error": "error"}


def swap(v: str) -> str:
    return {"A": "B", "B": "A"}.get(v, v)


def prompt_row(row: int, pid: str, order: str, position_verdict: str, margin: float | None = None) -> dict:
    """One prompts-table row from the verdict *as sent* (position); winner is un-swapped."""
    winner = swap(position_verdict) if order == "BA" else position_verdict
    return {"row": row, "prompt_id": pid, "order": order, "prompt": f"q {pid}", "response_A": "x",
            "response_B": "y", "label": LABEL[position_verdict], "winner": winner,
            "weighted_score_A": None, "weighted_score_B": None, "score_margin": margin,
            "overall_justification": ""}


def prompts_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def crit_row(row: int, pid: str, order: str, name: str, weight: float, a: float, b: float,
             kind: str = "scale") -> dict:
    def norm(s):
        """What results would store; None where the raw score is not a plain number/bool."""
        if kind == "scale":
            return (s - 1) / 4 if isinstance(s, int | float) else None
        return float(s) if isinstance(s, bool) else None
    return {"row": row, "prompt_id": pid, "order": order, "criterion": name, "criterion_key": name.lower(),
            "type": kind, "weight": weight, "score_A": a, "score_B": b, "norm_A": norm(a),
            "norm_B": norm(b), "justification_A": "", "justification_B": ""}
