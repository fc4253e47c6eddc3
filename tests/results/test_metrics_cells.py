"""The `metrics` cell parser reads exactly what `ast.literal_eval` reads, and reads it without it.

`ast.literal_eval` is the reference: every cell below is compared with it (values and types, via
`repr`). The ordinary cells are also read with `ast.literal_eval` switched off, which proves the
fast path itself gives those answers rather than quietly handing everything to the slow one.
"""

from __future__ import annotations

import ast
import random

import numpy as np
import pytest

from novajudge import metrics_cells
from novajudge.errors import ResultsError
from novajudge.metrics_cells import BATCH, iter_metrics, parse_metrics

#: Strings holding everything `repr` escapes or quotes differently.
ORDINARY_TEXT = [
    "plain", "A's answer", 'He said "no"', "both ' and \"", "line\nbreak\ttab\rreturn", "back\\slash",
    "nul\x00 bell\x07 esc\x1b del\x7f", "nbsp\xa0 sep\u2028 é ü 😀 Ω", "True, False and None",
    "\\x41 is not A", "\\'", "trailing '", '"', "'", "", "\\",
]  # fmt: skip
#: Text the fast path cannot read exactly (it looks like the rewrite's own patterns, or JSON
#: spells it otherwise): such cells must still come out as `ast.literal_eval` reads them.
TRICKY_TEXT = [
    "x: True, y", "it', 'b", "{'k': 'v'}", 'say: "yes", then', "', '", "lone \ud800 surrogate",
    "tag \U000e0001 char",
]  # fmt: skip


def _cells(texts=(*ORDINARY_TEXT, *TRICKY_TEXT)) -> list[dict]:
    """Dicts shaped like the judge's metrics, one per text, plus other literal kinds."""
    out = []
    for i, text in enumerate(texts):
        out.append({
            "predictions": "[[A>B]]", "a_scores": 1, "inference_error": 0, "weighted_score_A": 0.1 * i,
            "score_margin": -1e-05, "overall_justification": text, "flag": i % 2 == 0, "missing": None,
            "criteria_breakdown": {text or "empty": {"type": "binary", "weight": 0.5, "score_A": True,
                                                     "score_B": False, "justification_A": text}},
        })  # fmt: skip
    out.append({"numbers": [1.5, -0.0, 10**30], "nested": {"x": {"y": "z"}}, "t": True, "n": None})
    if TRICKY_TEXT[0] in texts:  # lists of strings or keywords: no judge metrics hold them
        out.append({"strings": ["a", "b"], "keywords": [True, None], "dicts": [{"y": "z"}]})
    return out


def _same(got, expected) -> bool:
    return repr(got) == repr(expected)  # True is not 1, 1.0 is not 1: types count


def test_every_cell_reads_as_literal_eval_reads_it():
    odd = ["{'a' : 1}", "{'a': 1,}", "{ 'spaced':'out' }", "{'a': +1}", "{'t': (1, 'a'), 1: [True, None]}"]
    cells = [repr(d) for d in _cells()] + odd
    expected = [ast.literal_eval(c) for c in cells]
    assert _same(parse_metrics(cells, "t"), expected)


def test_repr_cells_are_read_without_literal_eval(monkeypatch):
    def refuse(text):
        raise AssertionError(f"literal_eval called for {text[:60]!r}")

    monkeypatch.setattr(metrics_cells.ast, "literal_eval", refuse)
    ordinary = _cells(ORDINARY_TEXT)
    assert _same(parse_metrics([repr(d) for d in ordinary], "t"), ordinary)


def test_random_cells_match_literal_eval():
    rng = random.Random(11)
    pieces = ["a", "'", '"', "\\", "\n", ": ", ", ", "{", "}", "True", "None", "é", "\x01", "😀", "[", "]"]

    def text():
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))

    def value(depth=0):
        kind = rng.random()
        if depth > 2 or kind < 0.4:
            return text()
        if kind < 0.55:
            return rng.choice([True, False, None, 0, -3, 2.5, 1e-7])
        if kind < 0.85:
            return {text(): value(depth + 1) for _ in range(rng.randint(0, 3))}
        return [value(depth + 1) for _ in range(rng.randint(0, 3))]

    cells = [repr({text(): value() for _ in range(rng.randint(1, 4))}) for _ in range(3 * BATCH // 4)]
    assert _same(parse_metrics(cells, "t"), [ast.literal_eval(c) for c in cells])


def test_empty_and_dict_cells_and_batches():
    cells = [None, float("nan"), "", "  ", {"already": "parsed"}, np.str_("{'a': 1}"), b"{'b': 2}"]
    assert parse_metrics(cells, "t") == [{}, {}, {}, {}, {"already": "parsed"}, {"a": 1}, {"b": 2}]
    many = [repr({"i": i}) for i in range(2 * BATCH + 3)]
    batches = list(iter_metrics(many, "t"))
    assert [len(b) for b in batches] == [BATCH, BATCH, 3]
    assert [m["i"] for b in batches for m in b] == list(range(2 * BATCH + 3))


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("{'a': ", r"src row 1: field 'metrics' is not a Python dict literal"),
        ("{'a': true}", r"src row 1: field 'metrics' is not a Python dict literal"),  # JSON, not Python
        ("{'a': null}", r"src row 1: field 'metrics' is not a Python dict literal"),
        ("{'a': __import__('os')}", r"src row 1: field 'metrics' is not a Python dict literal"),
        ("[1, 2]", r"src row 1: field 'metrics' is a list, expected a dict literal"),
        ('"text"', r"src row 1: field 'metrics' is a str, expected a dict literal"),
    ],
)
def test_errors_name_the_source_and_row(cell, message):
    with pytest.raises(ResultsError, match=message):
        parse_metrics(["{'ok': 1}", cell, "{'ok': 2}"], "src")


def test_the_row_number_counts_across_batches():
    cells = [repr({"i": i}) for i in range(BATCH + 5)]
    cells[BATCH + 2] = "{'broken"
    with pytest.raises(ResultsError, match=rf"^t row {BATCH + 2}: "):
        parse_metrics(cells, "t")
