"""One call for the summary: every trust analysis that applies to a run, as a JSON-ready block.

`novajudge.results.summarize` puts the result under `summary["trust"]`, renders it with
`render_trust_html` and draws it with `plot_trust` (both re-exported here so the caller needs one
import). Analyses that cannot run say why (`measured: false`, `reason`) instead of disappearing, so
a reader can tell "consistent" from "never checked".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from novajudge.stats import jsonable
from novajudge.trust.calibration import calibrate, load_human_labels
from novajudge.trust.criteria import most_common_criteria
from novajudge.trust.distributions import margin_distribution, score_distribution
from novajudge.trust.position import position_bias, position_bias_binary
from novajudge.trust.render import plot_trust, render_trust_html
from novajudge.verdicts import PASS_KEYS, normalise_synonyms

__all__ = ["analyse", "headline", "plot_trust", "render_trust_html"]

HumanLabels = Mapping[str, str] | str | Path
BinaryOutputs = Mapping[str, Any] | pd.DataFrame


def _binary_lists(outputs: BinaryOutputs) -> dict[str, Any]:
    """forward, backward, prompt_ids, orders from a details-like DataFrame or a mapping of lists."""
    if isinstance(outputs, pd.DataFrame):
        for column in PASS_KEYS:
            if column not in outputs.columns:
                raise ValueError(f"binary outputs: no column {column!r}")
        columns = outputs.columns
        return {"forward": outputs[PASS_KEYS[0]].tolist(),
                "backward": outputs[PASS_KEYS[1]].tolist(),
                "prompt_ids": outputs["prompt_id"].astype(str).tolist() if "prompt_id" in columns else None,
                "orders": outputs["order"].tolist() if "order" in columns else None}
    for key in ("forward", "backward"):
        if key not in outputs:
            raise ValueError(f"binary outputs: no {key!r} list")
    return {"forward": list(outputs["forward"]), "backward": list(outputs["backward"]),
            "prompt_ids": outputs.get("prompt_ids"), "orders": outputs.get("orders")}


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def headline(block: Mapping[str, Any]) -> str:
    """One sentence on the judge's position behaviour, for the report's top and the CLI."""
    position = block["position"]
    parts = []
    consistency = position["consistency"]
    binary = block.get("position_binary", {}).get("consistency", {})
    if not consistency.get("measured") and binary.get("measured"):
        parts.append(f"the judge's own forward and backward passes agreed for {binary['successes']} of "
                     f"{binary['n']} pairs ({_pct(binary['rate'])})")
    elif consistency.get("measured"):
        parts.append(f"verdicts agreed across both orders for {consistency['successes']} of "
                     f"{consistency['n']} prompts ({_pct(consistency['rate'])})")
        rate = position["reconciled"]["b_win_rate"]
        parts.append(f"reconciled B win rate {_pct(rate['rate'])}" + (
            f" [{rate['ci_low']:.0%}, {rate['ci_high']:.0%}]" if rate["rate"] is not None else ""))
    else:
        parts.append("position consistency not measured (pairs judged in one order only)")
    first = position["first_position_preference"]
    if first["rate"] is not None:
        confounded = " (confounded with model quality: model A was always shown first)" if first.get(
            "confounded") else ""
        parts.append(f"first-shown response preferred in {_pct(first['rate'])} of decided judgements"
                     f"{confounded}")
    calibration = block.get("calibration", {})
    if calibration.get("measured"):
        agreement = calibration["forward_agreement"]
        parts.append(f"agreement with humans {_pct(agreement['rate'])} (n={agreement['n']})")
    return "Judge trust: " + "; ".join(parts) + "."


def analyse(prompts: pd.DataFrame, criteria: pd.DataFrame, *, variant: str,
            human_labels: HumanLabels | None = None, binary_outputs: BinaryOutputs | None = None,
            synonyms: Mapping[str, str] | None = None, top: int = 10) -> dict[str, Any]:
    """The `summary["trust"]` block: position bias, calibration, scale use, common criteria.

    `prompts`/`criteria` are the flattened tables of docs/design.md. `human_labels` is a mapping
    prompt_id → A|B|tie or a JSONL path; `binary_outputs` the binary judge's per-pair
    `forward_output`/`backward_output` (a DataFrame with those columns and optionally `prompt_id`
    and `order`, or a mapping with `forward`, `backward` and optional `prompt_ids`, `orders`), one
    entry per judge-input row. Rubric-only figures are marked not measured for the binary judge.
    """
    if variant not in ("rubric", "binary"):
        raise ValueError(f"unknown judge variant {variant!r}; expected rubric or binary")
    block: dict[str, Any] = {"variant": variant, "position": position_bias(prompts)}
    if binary_outputs is not None:
        lists = _binary_lists(binary_outputs)
        block["position_binary"] = position_bias_binary(lists["forward"], lists["backward"],
                                                        lists["prompt_ids"], orders=lists["orders"])
    if human_labels is None:
        block["calibration"] = {"measured": False, "reason": "not measured: no human preference labels given"}
    else:
        labels = load_human_labels(human_labels) if isinstance(human_labels, str | Path) else human_labels
        block["calibration"] = {"measured": True, **calibrate(prompts, labels, criteria)}
    not_rubric = {"measured": False, "reason": "not measured: the binary judge gives no criterion scores"}
    if variant == "rubric":
        block["scores"] = {"measured": True, **score_distribution(criteria)}
        block["margins"] = margin_distribution(prompts, criteria=criteria)
        block["criteria"] = most_common_criteria(criteria, top=top, synonyms=normalise_synonyms(synonyms))
    else:
        block["scores"] = dict(not_rubric)
        block["margins"] = dict(not_rubric)
        block["criteria"] = []
    block["headline"] = headline(block)
    return jsonable(block)
