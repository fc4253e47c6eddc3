"""From generations to the judge input and the manifest that maps every judge-input line back.

Only pairs where both models answered go to the judge: a failed generation written as an error
string (what the reference notebooks did) would be judged as a real, bad answer and bias the result.
Pairs too long for the judge are left out too, and both kinds of exclusion are listed, never silent.

The manifest has one line per judge-input line (`row`, `prompt_id`, `order`, `stand_in`, the
`prompt`, `response_A` and `response_B` as sent, per-model status, latency, tokens, attempts) and
one line per excluded item (`row` null, `excluded` says why, the answers that did come back kept so
nothing is lost). See docs/design.md, "The flattened details".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from novajudge.generation.datasets import PromptItem
from novajudge.generation.endpoints import Generation

#: Judge context limit in tokens. The Nova docs disagree (one page says 12k, another 7k); we use the
#: lower figure so no record is sent that one of the documented limits would reject.
DEFAULT_CONTEXT_LIMIT_TOKENS = 7000
#: Characters per token for the estimate. English averages ~4 characters per token on modern
#: tokenizers; 3.5 over-estimates tokens, which errs on the side of excluding rather than truncating.
CHARS_PER_TOKEN = 3.5


def estimate_tokens(*texts: str) -> int:
    """A conservative token estimate (no tokenizer in the Lambda bundle): ceil(chars / 3.5)."""
    return math.ceil(sum(len(t) for t in texts) / CHARS_PER_TOKEN)


@dataclass
class ItemOutcome:
    """One prompt and what each model returned."""

    item: PromptItem
    a: Generation
    b: Generation

    @property
    def ok(self) -> bool:
        return self.a.status == "ok" and self.b.status == "ok"


@dataclass
class JudgeInputs:
    """The judge input lines, their manifest, and the ids left out (with why)."""

    judge_lines: list[dict[str, str]] = field(default_factory=list)
    manifest: list[dict[str, Any]] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)
    over_context_ids: list[str] = field(default_factory=list)
    #: Prompts never sent: their estimate is above the endpoints' `max_input_tokens`.
    over_input_ids: list[str] = field(default_factory=list)
    #: Lone surrogates replaced by U+FFFD in the models' answers, per model.
    repaired_chars: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0})

    @property
    def pairs(self) -> int:
        return len({m["prompt_id"] for m in self.manifest if m["row"] is not None})


def build_judge_inputs(
    outcomes: list[ItemOutcome],
    *,
    both_orders: bool,
    context_limit_tokens: int,
    stand_in: bool,
    models: dict[str, dict[str, str]],
    too_long: list[tuple[PromptItem, int]] = (),  # type: ignore[assignment]
    input_limit_tokens: int | None = None,
) -> JudgeInputs:
    """Lay out the judge input: for each usable pair `AB`, then `BA` (model B as response_A) if asked.

    Sending both orders lets the analysis measure and cancel the judge's position bias; the `order`
    of each row is what un-swaps the verdict later. `too_long` are the prompts that were never sent
    (estimated tokens above `input_limit_tokens`); each gets an excluded manifest line.
    """
    result = JudgeInputs()
    for item, tokens in too_long:
        result.over_input_ids.append(item.prompt_id)
        result.manifest.append(
            {
                "row": None,
                "order": None,
                "prompt_id": item.prompt_id,
                "reference": item.reference,
                "human_preference": item.human_preference,
                "stand_in": stand_in,
                "status": "not_sent",
                "excluded": "prompt_over_input_limit",
                "estimated_tokens": tokens,
                "input_limit_tokens": input_limit_tokens,
            }
        )
    for outcome in outcomes:
        for which, generation in (("A", outcome.a), ("B", outcome.b)):
            result.repaired_chars[which] += generation.repaired_chars
        item = outcome.item
        base = {
            "prompt_id": item.prompt_id,
            "reference": item.reference,
            "human_preference": item.human_preference,
            "stand_in": stand_in,
        }
        if not outcome.ok:
            result.failed_ids.append(item.prompt_id)
            result.manifest.append(
                {
                    "row": None,
                    "order": None,
                    **base,
                    "status": "failed",
                    "excluded": "generation_failed",
                    "A": _model_fields(outcome.a, models["A"], keep_text=True),
                    "B": _model_fields(outcome.b, models["B"], keep_text=True),
                }
            )
            continue
        text_a, text_b = outcome.a.text or "", outcome.b.text or ""
        tokens = estimate_tokens(item.prompt, text_a, text_b)
        if tokens > context_limit_tokens:
            result.over_context_ids.append(item.prompt_id)
            result.manifest.append(
                {
                    "row": None,
                    "order": None,
                    **base,
                    "status": "ok",
                    "excluded": "over_context",
                    "estimated_tokens": tokens,
                    "A": _model_fields(outcome.a, models["A"], keep_text=True),
                    "B": _model_fields(outcome.b, models["B"], keep_text=True),
                }
            )
            continue
        orders = [("AB", text_a, text_b)] + ([("BA", text_b, text_a)] if both_orders else [])
        for order, first, second in orders:
            row = len(result.judge_lines)
            result.judge_lines.append({"prompt": item.prompt, "response_A": first, "response_B": second})
            result.manifest.append(
                {
                    "row": row,
                    "order": order,
                    **base,
                    "status": "ok",
                    "excluded": None,
                    "estimated_tokens": tokens,
                    # as sent, so results never have to cut them back out of the judge's full_prompt
                    "prompt": item.prompt,
                    "response_A": first,
                    "response_B": second,
                    "A": _model_fields(outcome.a, models["A"], keep_text=False),
                    "B": _model_fields(outcome.b, models["B"], keep_text=False),
                }
            )
    return result


def _model_fields(generation: Generation, model: dict[str, str], *, keep_text: bool) -> dict[str, Any]:
    """Per-model columns; A and B are always the *models* (un-swapped), whatever the order."""
    fields = {**model, **generation.manifest_fields()}
    if keep_text:
        fields["text"] = generation.text
    return fields
