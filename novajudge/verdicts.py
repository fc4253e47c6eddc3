"""The judge's output vocabulary: labels, verdicts, criterion keys, scores and the details columns.

Every reader of judge output (`novajudge.results` flattening an archive, `novajudge.trust` reading
labels, binary passes or a details table, the CLI commands on top) goes through this module, so
one raw judge text gives one verdict and one criterion name gives one key everywhere.

Two kinds of verdict are kept apart because position bias only shows when they are:
a *label* (`A>B`) names a **position** in the pair as sent; a *winner* names a **model**. For a
pair sent in order `BA`, model B sat in position A, so its label is mirrored to get the winner.

Which label counts when a text holds several (`parse_label`):

* a **string** is one judge output; its verdict is the **last** `[[label]]` in it. The judge writes
  its verdict at the end of its reasoning, and labels earlier in the text are the instructions or
  the reasoning quoting them ("[[A>B]] if A is better ..."), never the verdict;
* a **sequence** (a list/array cell, lighteval style) holds one output per pass in the order the
  judge ran them, forward pass first. Its verdict is the **first** element's: the backward pass
  saw the pair swapped, so its label names the other model and must never stand in for the
  forward verdict. The backward pass is read on its own (`PASS_KEYS`) by the position analyses.

A text with no `[[label]]` counts only when it is a label by itself (`A>B`, ` [a = b] `): a bare
`A>B` inside prose may be a comparison, not a verdict.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from novajudge.errors import InvalidRunRequest, ResultsError

#: The four preference labels the judge emits (written as `[[label]]` in its raw output), and
#: the label the flattened tables use for a judgement the judge could not make.
LABELS: tuple[str, ...] = ("A>B", "B>A", "A=B", "A=B (bothbad)")
ERROR = "error"
#: `AB`: the pair as the user gave it (model A as response_A); `BA`: sent swapped.
ORDERS: tuple[str, ...] = ("AB", "BA")
#: Verdicts: `A`/`B` name a position (as sent) or a model (winner), `tie`, `bothbad` or `error`.
WINNERS: tuple[str, ...] = ("A", "B", "tie", "bothbad", ERROR)
#: The three classes a preference can fall in once "both bad" is read as "no preference".
PREFERENCES: tuple[str, ...] = ("A", "B", "tie")
#: Label -> position verdict, and back.
LABEL_VERDICT: dict[str, str] = {
    "A>B": "A",
    "B>A": "B",
    "A=B": "tie",
    "A=B (bothbad)": "bothbad",
    ERROR: ERROR,
}
VERDICT_LABEL: dict[str, str] = {v: k for k, v in LABEL_VERDICT.items()}
#: Where the binary judge keeps the raw output of each pass in a details row: the pair as sent,
#: then the pair swapped (so a `[[A>B]]` in the backward output favours the response sent as B).
PASS_KEYS: tuple[str, str] = ("forward_output", "backward_output")

#: The flattened tables (docs/design.md, "The flattened details").
PROMPT_COLUMNS: tuple[str, ...] = (
    "row", "prompt_id", "order", "prompt", "response_A", "response_B", "label", "winner",
    "weighted_score_A", "weighted_score_B", "score_margin", "overall_justification",
)  # fmt: skip
CRITERION_COLUMNS: tuple[str, ...] = (
    "row", "prompt_id", "order", "criterion", "criterion_key", "type", "weight", "score_A", "score_B",
    "norm_A", "norm_B", "justification_A", "justification_B",
)  # fmt: skip
#: The columns every verdict reader needs from the prompts table.
VERDICT_COLUMNS: tuple[str, ...] = ("row", "prompt_id", "order", "label", "winner")
#: Numeric columns (float64 in memory and in details.parquet); `row` is int64, the rest strings.
FLOAT_COLUMNS: frozenset[str] = frozenset(
    {
        "weighted_score_A",
        "weighted_score_B",
        "score_margin",
        "weight",
        "score_A",
        "score_B",
        "norm_A",
        "norm_B",
    }
)
#: Criterion types: a 1-5 scale or a true/false check.
SCORE_TYPES: tuple[str, ...] = ("scale", "binary")

# `[[A>B]]`, `[[ a > b ]]`, `[[A=B (bothbad)]]`: the judge's bracketed verdict, spacing and case free.
_BRACKETED = re.compile(
    r"\[\[\s*(A\s*>\s*B|B\s*>\s*A|A\s*=\s*B)\s*(\(\s*both\s*bad\s*\))?\s*\]\]", re.IGNORECASE
)
_BARE = re.compile(r"\[*\s*(A\s*>\s*B|B\s*>\s*A|A\s*=\s*B)\s*(\(\s*both\s*bad\s*\))?\s*\]*", re.IGNORECASE)
_CORE = {"A>B": "A>B", "B>A": "B>A", "A=B": "A=B"}
_KNOWN = {label: label for label in LABELS} | {f"[[{label}]]": label for label in LABELS}


def cell_text(value: Any) -> str:
    """A details cell as text: None and NaN are empty, bytes are UTF-8, a list/array cell (lighteval
    writes one-element lists) is its elements, one per line."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | np.ndarray):
        return "\n".join(cell_text(v) for v in value)
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, bytes):  # a parquet binary column
        return value.decode("utf-8", "replace")
    return str(value)


def _label_of(found: re.Match[str]) -> str:
    core = _CORE[re.sub(r"\s+", "", found.group(1)).upper()]
    return "A=B (bothbad)" if core == "A=B" and found.group(2) else core


def parse_label(raw: Any) -> str | None:
    """The preference label in one raw judge output (see the module docstring for which one), or
    None when it holds none. Accepts a clean label, a bracketed one, or a text ending in one."""
    if isinstance(raw, str) and raw in _KNOWN:  # the common case: a clean label, no regex
        return _KNOWN[raw]
    if isinstance(raw, list | tuple | np.ndarray):  # one output per pass: the forward pass decides
        raw = raw[0] if len(raw) else None
    text = cell_text(raw).strip()
    if not text:
        return None
    last = None
    for last in _BRACKETED.finditer(text):  # noqa: B007 - only the last match is the verdict
        pass
    if last is not None:
        return _label_of(last)
    bare = _BARE.fullmatch(text)
    return _label_of(bare) if bare else None


def parse_labels(values: Iterable[Any]) -> list[str]:
    """`parse_label` of each value, `error` where there is none; each distinct text read once."""
    values = list(values)
    try:
        seen = {v: parse_label(v) or ERROR for v in set(values)}
    except TypeError:  # unhashable cells (lists of passes): one by one
        return [parse_label(v) or ERROR for v in values]
    return [seen[v] for v in values]


def label_verdict(raw: Any) -> str:
    """The position verdict (`A`, `B`, `tie`, `bothbad`) of a raw output; `error` when unreadable.

    A judge output we cannot read is an inference error, never silently a tie.
    """
    label = parse_label(raw)
    return ERROR if label is None else LABEL_VERDICT[label]


def swap(verdict: str) -> str:
    """Position verdict <-> model verdict for a pair sent as `BA` (A and B trade places)."""
    return {"A": "B", "B": "A"}.get(verdict, verdict)


def to_model(position_verdict: str, order: str) -> str:
    """The model that a position verdict favours, given the order the pair was sent in."""
    return swap(position_verdict) if order == "BA" else position_verdict


def preference(winner: str) -> str | None:
    """A/B/tie class of a winner (`bothbad` counts as no preference); None for errors."""
    if winner == ERROR:
        return None
    return "tie" if winner == "bothbad" else winner


def check_prompts(prompts: pd.DataFrame, source: str = "prompts table") -> pd.DataFrame:
    """Validate a prompts table and return a copy with string ids and every label read by `parse_label`.

    Errors name the table, the judge-input `row` and the field, so a malformed details.parquet is
    found at its source rather than as a wrong percentage. Labels are re-read here so a table
    written by hand (raw judge text in `label`) gives the same verdicts as one we flattened.
    """
    missing = [c for c in VERDICT_COLUMNS if c not in prompts.columns]
    if missing:
        raise ResultsError(
            f"{source}: missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(VERDICT_COLUMNS)} (see docs/design.md)"
        )
    out = prompts.copy()
    out["prompt_id"] = pd.Series(list(map(str, out["prompt_id"].tolist())), index=out.index, dtype=object)
    out["label"] = parse_labels(out["label"].to_numpy(object))
    for field, allowed in (("order", ORDERS), ("winner", WINNERS)):
        bad = out[~out[field].isin(allowed)]
        if not bad.empty:
            first = bad.iloc[0]
            raise ResultsError(
                f"{source}: row {first['row']}: field {field!r} is {first[field]!r}; "
                f"allowed: {', '.join(allowed)}"
            )
    dup = out[out.duplicated(["prompt_id", "order"], keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        rows = ", ".join(str(r) for r in dup[dup["prompt_id"] == first["prompt_id"]]["row"])
        raise ResultsError(
            f"{source}: prompt_id {first['prompt_id']!r} has more than one {first['order']} judgement "
            f"(rows {rows})"
        )
    return out


# ----------------------------------------------------------------------------- criterion names

_NON_WORD = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=8192)
def criterion_key(name: str) -> str:
    """The key that merges spellings of one criterion: "Factual-Accuracy", "factual accuracy!" and
    "Factual_Accuracy" are all `factual_accuracy`; "Précision" is `precision`.

    Case folded, accents folded (NFKD, combining marks dropped, then NFC so other scripts keep their
    letters), every run of other characters one `_`. Letters are never turned into `_`: a key made
    of letters outside ASCII stays made of them.
    """
    if not isinstance(name, str):
        raise InvalidRunRequest(f"a criterion name must be a string, got {name!r}")
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    return _NON_WORD.sub("_", unicodedata.normalize("NFC", folded).casefold()).strip("_")


def normalise_synonyms(synonyms: Mapping[str, str] | None) -> dict[str, str]:
    """A user's synonym map with both sides as keys; chains (a->b, b->c) are followed to the end.

    Following chains lets a user map several spellings in steps; a cycle is a usage error because no
    canonical name can be chosen.
    """
    raw = {criterion_key(k): criterion_key(v) for k, v in (synonyms or {}).items()}
    resolved: dict[str, str] = {}
    for start in raw:
        seen = [start]
        current = raw[start]
        while current in raw and raw[current] != current:
            if current in seen:
                raise InvalidRunRequest(f"synonym map has a cycle: {' → '.join([*seen, current])}")
            seen.append(current)
            current = raw[current]
        resolved[start] = current
    return resolved


def criterion_keys(names: Iterable[Any], synonyms: Mapping[str, str] | None = None) -> list[str]:
    """The key of each name, mapped through `synonyms` (already `normalise_synonyms`-ed).

    Computed once per distinct name: a run has a handful of names over many criterion rows, so the
    keys of the distinct names are looked up for each row (a string caches its hash: one dict
    lookup per row, in C through `map`).
    """
    names = names if isinstance(names, list) else list(names)
    distinct = dict.fromkeys(names)
    if not set(map(type, distinct)) <= {str}:  # the distinct names decide: one pass fewer
        names = list(map(str, names))
        distinct = dict.fromkeys(names)
    table = {n: criterion_key(n) for n in distinct}
    if synonyms:
        table = {n: synonyms.get(k, k) for n, k in table.items()}
    return list(map(table.__getitem__, names))


# ----------------------------------------------------------------------------- scores

_BINARY_VALUES: dict[Any, float] = {
    True: 1.0, False: 0.0,  # also 1, 0, 1.0, 0.0: equal keys in a dict
    "true": 1.0, "yes": 1.0, "pass": 1.0, "1": 1.0, "1.0": 1.0,
    "false": 0.0, "no": 0.0, "fail": 0.0, "0": 0.0, "0.0": 0.0,
}  # fmt: skip


def _binary(value: Any) -> float:
    if isinstance(value, str):
        value = value.strip().casefold()
    try:
        return _BINARY_VALUES.get(value, math.nan)
    except TypeError:  # unhashable
        return math.nan


def normalise_scores(
    values: Sequence[Any], kinds: Sequence[str], where: Callable[[int], str], *, required: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Raw criterion scores -> (scores, normalised scores), both float arrays.

    A 1-5 `scale` score s normalises to (s - 1) / 4, a `binary` one (true/false, yes/no, pass/fail,
    1/0) to 1.0 / 0.0: the judge's own rule for its weighted scores. Anything else (a 7 on a 1-5
    scale, "maybe", an unknown type) raises `ResultsError` naming `where(i)` for the first bad entry,
    because silently clipping it would change the verdicts computed from it. An absent score (None,
    NaN) is an error when `required`, else NaN in both arrays.
    """
    kinds_arr = np.asarray(kinds, dtype=object)
    is_binary = kinds_arr == "binary"
    unknown = np.flatnonzero(~is_binary & (kinds_arr != "scale"))
    if unknown.size:
        i = int(unknown[0])
        raise ResultsError(f"{where(i)}: expected type 'scale' or 'binary', got {kinds_arr[i]!r}")
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        # Already numbers (a flattened table's score columns): a binary 1.0/0.0 is its own value,
        # exactly as the mapping below reads a number; the range check decides the rest.
        raw = pd.Series(values)
        scores = values.astype(np.float64)
        absent = np.isnan(scores)
    else:
        raw = pd.Series(list(values), dtype=object)
        absent = raw.isna().to_numpy()
        scores = _scores_of(raw, is_binary)
    in_range = np.where(is_binary, np.isin(scores, (0.0, 1.0)), (scores >= 1.0) & (scores <= 5.0))
    bad = np.flatnonzero(~in_range if required else ~absent & ~in_range)
    if bad.size:
        i = int(bad[0])
        expected = "a binary score (true/false)" if is_binary[i] else "a 1-5 scale score"
        raise ResultsError(f"{where(i)}: expected {expected}, got {raw.iloc[i]!r}")
    scores[absent] = np.nan
    norms = np.where(is_binary, scores, (scores - 1.0) / 4.0)
    return scores, norms


def _scores_of(raw: pd.Series, is_binary: np.ndarray) -> np.ndarray:
    """Score cells of any type as numbers: scale ones read as numbers, binary ones by spelling."""
    scores = np.full(len(raw), np.nan)
    if (~is_binary).any():
        scale_values = raw[~is_binary]
        numbers = pd.to_numeric(scale_values, errors="coerce").to_numpy(dtype=np.float64)
        scores[~is_binary] = numbers
    if is_binary.any():
        # Most binary scores are bools: one vectorised lookup, then the odd spellings one by one.
        binary_values = raw[is_binary]
        try:
            mapped = np.array(binary_values.map(_BINARY_VALUES), dtype=np.float64)
        except TypeError:  # an unhashable cell
            mapped = np.full(len(binary_values), np.nan)
        odd = np.flatnonzero(np.isnan(mapped))
        mapped[odd] = [_binary(v) for v in binary_values.iloc[odd]]
        scores[is_binary] = mapped
    return scores
