"""Position bias: does the judge's verdict survive swapping which response it reads first?

Each prompt is judged twice when `both_orders` is on: once as sent (AB) and once swapped (BA). An
unbiased judge names the same *model* both times. The plain view (AB only) is what a single-order
run would report; the reconciled view only counts a win when both orders agree, turning
position-dependent verdicts into ties instead of letting them inflate either model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd

from novajudge.stats import mean_with_interval, proportion
from novajudge.verdicts import (
    ERROR,
    LABEL_VERDICT,
    ORDERS,
    VERDICT_COLUMNS,
    VERDICT_LABEL,
    check_prompts,
    label_verdict,
    preference,
    swap,
    to_model,
)

NOT_MEASURED_NO_BA = "not measured: no pair was judged in the swapped (BA) order"


def _counts(values: Sequence[str], keys: Sequence[str]) -> dict[str, int]:
    counted = Counter(values)
    return {k: counted[k] for k in keys}


def _win_rate(counts: dict[str, int]) -> dict[str, object]:
    """B's share of decided verdicts (ties and errors excluded), as the judge's own `winrate`."""
    return proportion(counts["B"], counts["A"] + counts["B"])


#: A reconciled prompt's outcome for model B (MT-Bench: an order-inconsistent prompt is a tie).
_RECONCILED_B = {"B": 1.0, "A": 0.0, "tie": 0.5, "bothbad": 0.5, "inconsistent": 0.5}
#: A judged order's lean in position terms: +1 first shown preferred, -1 second, 0 neither.
_LEAN = {"A": 1, "B": -1, "tie": 0, "bothbad": 0}
#: Prompt ids listed in the summary per list (flips, prompts judged in one order only), the first
#: by id; the counts beside them are complete, and details.parquet holds every row.
MAX_LISTED = 100


def reconcile(ab_winner: str, ba_winner: str) -> str:
    """One verdict per prompt from its two judgements, both already in model terms.

    A model wins only when both orders name it; `inconsistent` when they name different things
    (a position-inconsistent tie); `bothbad` only when both said both bad; `error` if either failed.
    """
    if ERROR in (ab_winner, ba_winner):
        return ERROR
    if ab_winner == ba_winner:
        return ab_winner
    if preference(ab_winner) == preference(ba_winner):  # tie vs bothbad: both "no preference"
        return "tie"
    return "inconsistent"


def position_bias(prompts: pd.DataFrame) -> dict[str, object]:
    """Plain and reconciled views, consistency and first-position preference of the prompts table.

    Input: the flattened prompts table (`row`, `prompt_id`, `order`, `label`, `winner`). Output is
    JSON-ready. Figures that need the BA order say `measured: false` with the reason when it is
    absent, rather than reporting 0 or 1.
    """
    table = check_prompts(prompts)
    ab = table[table["order"] == "AB"]
    ba = table[table["order"] == "BA"]
    plain_counts = _counts(ab["winner"].tolist(), ("A", "B", "tie", "bothbad", ERROR))
    plain = {"judgements": len(ab), "counts": plain_counts, "b_win_rate": _win_rate(plain_counts)}

    ab_by_id = dict(zip(ab["prompt_id"].tolist(), ab["winner"].tolist(), strict=True))
    ba_by_id = dict(zip(ba["prompt_id"].tolist(), ba["winner"].tolist(), strict=True))
    both = sorted(set(ab_by_id) & set(ba_by_id))
    only_ab, only_ba = sorted(set(ab_by_id) - set(ba_by_id)), sorted(set(ba_by_id) - set(ab_by_id))
    missing = {
        "only_ab": len(only_ab),
        "only_ba": len(only_ba),
        "only_ab_ids": only_ab[:MAX_LISTED],
        "only_ba_ids": only_ba[:MAX_LISTED],
    }

    # First position = position A as sent. Counted over the decided judgements of the prompts
    # judged in both orders (each model first equally often); over all of them when there is no BA.
    scope = table[table["prompt_id"].isin(both)] if both else table
    positions = Counter(map(LABEL_VERDICT.__getitem__, scope["label"].tolist()))
    first = proportion(positions["A"], positions["A"] + positions["B"])
    first["confounded"] = ba.empty
    first["note"] = (
        "only AB judgements: model A was always first, so this mixes position with model quality"
        if ba.empty else "over the decided judgements of prompts judged in both orders; 0.5 is neutral"
    )

    result: dict[str, object] = {
        "plain": plain,
        "first_position_preference": first,
        "missing_order": missing,
    }
    if ba.empty or not both:
        reason = NOT_MEASURED_NO_BA if ba.empty else "not measured: no prompt was judged in both orders"
        result["reconciled"] = {"measured": False, "reason": reason}
        result["consistency"] = {"measured": False, "reason": reason}
        result["flips"], result["flips_total"] = [], 0
        return result

    # Per prompt in both orders, in C: each (AB winner, BA winner) pair looked up in the tables of
    # `reconcile` and of the lean, computed once for the few pairs there are.
    pairs = list(zip(map(ab_by_id.__getitem__, both), map(ba_by_id.__getitem__, both), strict=True))
    verdict_of = {pair: reconcile(*pair) for pair in set(pairs)}
    verdicts = list(map(verdict_of.__getitem__, pairs))
    rec_counts = _counts(verdicts, ("A", "B", "tie", "bothbad", "inconsistent", ERROR))
    valid_verdicts = [v for v in verdicts if v != ERROR]
    points = list(map(_RECONCILED_B.__getitem__, valid_verdicts))
    rate = mean_with_interval(points)
    total = sum(points)  # B wins + half of the ties: a whole or a half number
    rate["successes"] = int(total) if float(total).is_integer() else total
    rate["method"] = ("(B wins + (ties + both-bad + order-inconsistent) / 2) / prompts judged validly in "
                      "both orders; an inconsistent prompt is a tie (MT-Bench), never dropped")
    result["reconciled"] = {
        "measured": True,
        "prompts": len(both),
        "counts": rec_counts,
        "b_win_rate": rate,
    }
    consistency = proportion(len(valid_verdicts) - rec_counts["inconsistent"], len(valid_verdicts))
    consistency["measured"] = True
    # Among inconsistent prompts: which position did the two orders lean to, together? Position
    # verdicts: in AB the first shown is model A, in BA it is model B.
    lean_of = {(ab, ba): _LEAN.get(ab, 0) + _LEAN.get(swap(ba), 0) for ab, ba in verdict_of}
    side_of = {pair: (lean > 0) - (lean < 0) for pair, lean in lean_of.items()}  # 1 first, -1 second
    leans = Counter(side_of[pair] for pair, v in zip(pairs, verdicts, strict=True) if v == "inconsistent")
    first_lean, second_lean = leans[1], leans[-1]
    inconsistent = rec_counts["inconsistent"]
    consistency["inconsistent"] = inconsistent
    consistency["leaned_first"] = int(first_lean)
    consistency["leaned_second"] = int(second_lean)
    consistency["leaned_neither"] = int(inconsistent - first_lean - second_lean)
    result["consistency"] = consistency
    # Prompts whose verdict changed with the order: the ones a reader should look at. The first
    # MAX_LISTED by prompt id: a large run has tens of thousands, which would make the summary
    # megabytes; every one is in details.parquet (the prompt ids whose AB and BA winners differ).
    flipped = [pid for pid, v in zip(both, verdicts, strict=True) if v == "inconsistent"]
    result["flips_total"] = len(flipped)
    result["flips"] = [
        {"prompt_id": pid, "ab": ab_by_id[pid], "ba": ba_by_id[pid]} for pid in flipped[:MAX_LISTED]
    ]
    return result


def binary_prompts_table(forward: Sequence[object], backward: Sequence[object],
                         prompt_ids: Sequence[str] | None = None, *, orders: Sequence[str] | None = None,
                         backward_as_shown: bool = True) -> pd.DataFrame:
    """The binary judge's per-pair forward/backward outputs as a prompts table (two rows per pair).

    `forward[i]` is the raw preference with pair i as sent; `backward[i]` with pair i swapped. With
    `backward_as_shown` (the default) the backward label names positions as the judge saw them, so
    `A>B` there means the response sent as B won; set it to False if a judge version reports the
    backward verdict in the as-sent terms. `orders[i]` is the order pair i was sent in (default
    AB): for a `BA` pair the forward pass showed model B first. Each pair becomes one synthetic
    prompt (id `prompt_id/order` when orders are given, so both-order runs stay distinct) with an
    AB and a BA judgement in model terms, which is what `position_bias` expects.
    """
    n = len(forward)
    if len(backward) != n:
        raise ValueError(f"forward ({n}) and backward ({len(backward)}) outputs differ in length")
    ids = [str(p) for p in prompt_ids] if prompt_ids is not None else [str(i) for i in range(n)]
    sent = list(orders) if orders is not None else ["AB"] * n
    if len(ids) != n or len(sent) != n:
        raise ValueError(f"{len(ids)} prompt ids and {len(sent)} orders for {n} judged pairs")
    if orders is not None:
        ids = [f"{pid}/{order}" for pid, order in zip(ids, sent, strict=True)]
    other = dict(zip(ORDERS, reversed(ORDERS), strict=True))
    rows = []
    for i, (fwd, bwd, pid, order) in enumerate(zip(forward, backward, ids, sent, strict=True)):
        if order not in other:
            raise ValueError(f"pair {i}: order {order!r}; expected AB or BA")
        f_shown = label_verdict(fwd)
        b = label_verdict(bwd)
        b_shown = b if backward_as_shown else swap(b)
        for shown, shown_order in ((f_shown, order), (b_shown, other[order])):
            rows.append({"row": i, "prompt_id": pid, "order": shown_order, "label": VERDICT_LABEL[shown],
                         "winner": to_model(shown, shown_order)})
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


def position_bias_binary(forward: Sequence[object], backward: Sequence[object],
                         prompt_ids: Sequence[str] | None = None, *, orders: Sequence[str] | None = None,
                         backward_as_shown: bool = True) -> dict[str, object]:
    """`position_bias` computed from the binary judge's forward and backward outputs.

    Here every judged pair counts as one prompt: the judge itself ran it in both orders.
    """
    result = position_bias(binary_prompts_table(forward, backward, prompt_ids, orders=orders,
                                                backward_as_shown=backward_as_shown))
    result["source"] = "binary judge forward_output/backward_output"
    return result
