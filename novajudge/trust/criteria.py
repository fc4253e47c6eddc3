"""Criterion names: normalisation, a user synonym map, and matching `--drop`/`--weight` patterns.

The rubric judge writes its own criterion names per prompt ("Accuracy", "accuracy.",
"Factual_Accuracy"...). Re-weighting by name only works if those spellings meet in one key, and if a
user can say that two different words mean the same thing (`{"accuracy": "correctness"}`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from novajudge.errors import InvalidRunRequest

MATCH_MODES = ("exact", "substring", "regex")

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_name(name: str) -> str:
    """Lower-case, accents folded, punctuation/underscores → single spaces, trimmed.

    "Factual_Accuracy!", "factual accuracy" and " Factual-Accuracy " all become "factual accuracy".
    """
    if not isinstance(name, str):
        raise InvalidRunRequest(f"a criterion name must be a string, got {name!r}")
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", folded.casefold()).strip()


def normalise_synonyms(synonyms: Mapping[str, str] | None) -> dict[str, str]:
    """The synonym map with both sides normalised; chains (a→b, b→c) are followed to the end.

    Following chains lets a user map several spellings in steps; a cycle is a usage error because no
    canonical name can be chosen.
    """
    raw = {normalise_name(k): normalise_name(v) for k, v in (synonyms or {}).items()}
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


def canonical(name: str, synonyms: Mapping[str, str] | None = None) -> str:
    """The key a criterion is grouped under: its normalised name, mapped through the synonyms.

    `synonyms` must already be normalised (`normalise_synonyms`); it is looked up, not re-parsed,
    because this runs once per criterion row.
    """
    key = normalise_name(name)
    return (synonyms or {}).get(key, key)


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
    norm = normalise_name(pattern)
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
    out["key"] = [canonical(str(name), synonyms) for name in out["criterion"]]
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
    table = with_keys(criteria, synonyms)
    grouped = table.groupby("key", sort=True)
    rows = []
    for key, group in grouped:
        rows.append({
            "criterion": key,
            "judgements": int(group["row"].nunique()),
            "prompts": int(group["prompt_id"].nunique()),
            "mean_weight": float(pd.to_numeric(group["weight"], errors="coerce").mean()),
            "spellings": sorted({str(s) for s in group["criterion"]}),
        })
    rows.sort(key=lambda r: (-r["judgements"], r["criterion"]))
    return rows[:top] if top > 0 else rows
