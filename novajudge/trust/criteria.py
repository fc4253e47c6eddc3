"""Criterion names as users write them: a synonym file, and `--drop`/`--weight` patterns.

The rubric judge writes its own criterion names per prompt ("Accuracy", "accuracy.",
"Factual_Accuracy"...). `novajudge.verdicts.criterion_key` makes those spellings meet in one key;
here a user can add that two different words mean the same thing (`{"accuracy": "correctness"}`)
and pick criteria by name, substring or regular expression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from novajudge.errors import InvalidRunRequest
from novajudge.verdicts import criterion_key, criterion_keys, normalise_synonyms

MATCH_MODES = ("exact", "substring", "regex")


def load_synonyms(path: str | Path) -> dict[str, str]:
    """Read a JSON object {"name": "canonical name", ...}; errors name the file and the bad entry."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRunRequest(f"{path}: cannot read the synonym file ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise InvalidRunRequest(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise InvalidRunRequest(f"{path}: expected a JSON object of name → canonical name")
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidRunRequest(f"{path}: entry {key!r} must map to a non-empty string, got {value!r}")
    return normalise_synonyms(data)


def pattern_matcher(pattern: str, mode: str, synonyms: Mapping[str, str] | None = None):
    """A predicate on canonical keys for one user pattern.

    exact: the pattern, normalised and mapped through the synonyms, equals the key;
    substring: the normalised pattern occurs in the key; regex: `re.search` on the key
    (case-insensitive), so users write patterns against the normalised form shown in the tables.
    """
    if mode not in MATCH_MODES:
        raise InvalidRunRequest(f"unknown match mode {mode!r}; allowed: {', '.join(MATCH_MODES)}")
    if mode == "regex":
        try:
            rx = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise InvalidRunRequest(f"invalid regular expression {pattern!r}: {exc}") from exc
        return lambda key: rx.search(key) is not None
    norm = criterion_key(pattern)
    if not norm:
        raise InvalidRunRequest(f"criterion pattern {pattern!r} is empty after normalisation")
    if mode == "exact":
        target = (synonyms or {}).get(norm, norm)
        return lambda key: key == target
    return lambda key: norm in key


def matching_keys(pattern: str, keys: Iterable[str], mode: str,
                  synonyms: Mapping[str, str] | None = None) -> list[str]:
    """The canonical keys among `keys` that `pattern` selects, sorted."""
    match = pattern_matcher(pattern, mode, synonyms)
    return sorted({k for k in keys if match(k)})


def with_keys(criteria: pd.DataFrame, synonyms: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A copy of the criteria table with `key` = the canonical name of `criterion`.

    The stored `criterion_key` is not reused: it is normalised without the user's synonyms.
    """
    if "criterion" not in criteria.columns:
        raise InvalidRunRequest("the criteria table has no 'criterion' column")
    out = criteria.copy()
    out["key"] = criterion_keys(out["criterion"].tolist(), synonyms)
    return out


def most_common_criteria(criteria: pd.DataFrame, top: int = 10,
                         synonyms: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """The `top` most frequent criteria (by canonical key) with counts and mean weights.

    `judgements` counts the judged rows (one per order) that used the criterion, `prompts` the
    distinct prompt ids; `spellings` lists how the judge wrote it, so a user sees what a `--drop`
    would catch. Ties in frequency are broken by name so the list is stable.
    """
    if criteria.empty:
        return []
    needed = [c for c in ("criterion", "row", "prompt_id", "weight") if c in criteria.columns]
    table = with_keys(criteria[needed], synonyms)  # only the columns counted: the copy is smaller
    table = table.assign(weight=pd.to_numeric(table["weight"], errors="coerce"),
                         criterion=table["criterion"].astype(str))
    grouped = table.groupby("key", sort=True)
    judgements, prompts = grouped["row"].nunique(), grouped["prompt_id"].nunique()
    mean_weight, spellings = grouped["weight"].mean(), grouped["criterion"].unique()
    rows = [{"criterion": key, "judgements": int(judgements[key]), "prompts": int(prompts[key]),
             "mean_weight": float(mean_weight[key]), "spellings": sorted(spellings[key])}
            for key in judgements.index]
    rows.sort(key=lambda r: (-r["judgements"], r["criterion"]))
    return rows[:top] if top > 0 else rows
