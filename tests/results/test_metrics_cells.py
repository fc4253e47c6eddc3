"""The `metrics` cell parser reads exactly what `ast.literal_eval` reads, and reads it without it.

`ast.literal_eval` is the reference: every cell below is compared with it (values and types, via
`repr`). The ordinary cells are also read with `ast.literal_eval` switched off, which proves the
fast path itself gives those answers rather than quietly handing everything to the slow one.
"""

from __future__ import annotations

import ast
import random
import warnings

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

    cells = [repr({text(): value() for _ in range(rng.randint(1, 4))}) for _ in range(1500)]
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


# ----------------------------------------------------------------------------- hand-written cells
# Cells a judge (or a person) may write that `repr` never would. The fast path must read the first
# list itself; the second list it must hand to `ast.literal_eval`, which decides (a value or an
# error). Either way the result is `ast.literal_eval`'s.

FAST_CELLS = [
    """{'q': 'He said "hi"', 'a': "it's", "both": 'x " y', 'n': None, 't': True, 'f': False}""",
    r"""{'e': 'tab\t nl\n cr\r back\\slash \' \" hex\x41\xe9 uni\u00e9\u2028 bs\b ff\f', 'end': 'a\\'}""",
    r"""{'x': '\\x41 is not A', 'u': '\\u0041 neither', 'q': "\'", 'd': '\"'}""",
    "{'Précision': {'score_A': 1.5e-07, 'score_B': -0.0}, 'ünïcødé ✓ 😀': [1, -2, 3E+5], 'Ωμέγα': 'é'}",
    "{'s': 'True, False and None: null true NaN Infinity', 'k': [True, None, False], 'True': 'key'}",
    "{\n  'spaced' :  [ 1 ,2 ] ,\n\t'nested': {'a': {'b': [{'c': []}, {}]}} }",
    "{'big': 1000000000000000000000000000001, 'neg': -7, 'inf': 1e999, 'zero': 0.0, '': \"\"}",
    "{'dup': 1, 'other': 2, 'dup': 3}",
    """{'inner': "a 'quoted' word, 'x': True", "k": 'say: "yes", then', '}': '{'}""",
]
FALLBACK_CELLS = [
    "{'t': (1, 'a'), 'empty': ()}",  # tuples
    "{'a': 1,}",  # trailing commas
    "{'l': [1, 2,], 'd': {'x': 1,},}",
    "{'x': nan}",  # repr of a NaN: not a literal, an error either way
    "{'x': inf}",
    "{'x': NaN}",  # JSON's spellings: not Python
    "{'x': Infinity}",
    "{'x': -Infinity}",
    "{'a': true}",
    "{'a': null}",
    r"{'s': 'a\/b'}",  # JSON reads a slash, Python two characters
    r"{'s': '\ud83d\ude00'}",  # JSON pairs the surrogates, Python keeps two
    r"{'s': '\U0001F600 \N{BULLET} \a\v\0'}",  # escapes JSON does not have
    "{'s': '''it's'''}",  # triple quotes
    "{'s': 'a' 'b'}",  # implicit concatenation
    "{'s': u'x', 'b': b'y'}",  # string prefixes
    "{1: 'int key', 'set': {1, 2}}",
    "{'a': +1, 'b': .5, 'c': 1_000, 'd': 0x1F, 'e': 1j}",
    "{'s': 'raw\ttab'}",  # JSON refuses raw control characters, Python keeps the tab
    "{'a': 1  # a comment\n}",
    "{'a': 'unterminated}",
    "{'s': 'lone \ud800 raw surrogate'}",
    "{'x': 'line\\\ncontinued'}",
]


def _literal(cell: str):
    """`ast.literal_eval`'s reading: the value, or the error type (as the parser reports it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes warn
        try:
            return ast.literal_eval(cell)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return ResultsError


def _parsed(cell: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return parse_metrics(["{'ok': 1}", cell], "t")[1]
        except ResultsError:
            return ResultsError


@pytest.mark.parametrize("cell", FAST_CELLS)
def test_hand_written_cells_are_read_by_the_fast_path_as_literal_eval_reads_them(cell, monkeypatch):
    expected = _literal(cell)
    assert expected is not ResultsError and isinstance(expected, dict)

    def refuse(text):
        raise AssertionError(f"literal_eval called for {text[:60]!r}")

    monkeypatch.setattr(metrics_cells.ast, "literal_eval", refuse)
    assert _same(_parsed(cell), expected)


@pytest.mark.parametrize("cell", FALLBACK_CELLS)
def test_cells_the_fast_path_cannot_prove_go_to_literal_eval(cell, monkeypatch):
    expected = _literal(cell)
    seen = []
    real = ast.literal_eval

    def recording(text):
        seen.append(text)
        return real(text)

    monkeypatch.setattr(metrics_cells.ast, "literal_eval", recording)
    got = _parsed(cell)
    assert seen == [cell.strip()]  # the fast path read the ordinary cell and left this one
    assert got is expected if expected is ResultsError else _same(got, expected)


def test_fast_path_and_fallback_agree_on_mixed_batches():
    """All the hand-written cells in one batch, shuffled among ordinary ones: each is still read
    as `ast.literal_eval` reads it (a bad cell in a batch spoils no other cell)."""
    rng = random.Random(5)
    good = [c for c in FALLBACK_CELLS if _literal(c) is not ResultsError and isinstance(_literal(c), dict)]
    cells = FAST_CELLS + good + [repr(d) for d in _cells(ORDINARY_TEXT)]
    rng.shuffle(cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _same(parse_metrics(cells, "t"), [_literal(c) for c in cells])


@pytest.mark.parametrize("digits", [18, 19, 20, 25])
def test_wide_integers_stay_integers_wherever_they_sit(digits, monkeypatch):
    """orjson reads an integer past 64 bits as a float; `ast.literal_eval` keeps it whole. The
    long-digit-run check must find the number at every byte offset (it samples every few bytes)."""
    monkeypatch.setattr(metrics_cells.ast, "literal_eval", lambda text: pytest.fail(f"literal_eval: {text}"))
    number = int("9" * digits)
    cells = [f"{{'pad': '{'x' * offset}', 'n': {number}, 'neg': -{number}}}" for offset in range(12)]
    for cell, parsed in zip(cells, parse_metrics(cells, "t"), strict=True):
        assert type(parsed["n"]) is int and parsed["n"] == number, cell
        assert parsed["neg"] == -number


def test_a_float_orjson_refuses_is_read_by_the_standard_scanner(monkeypatch):
    monkeypatch.setattr(metrics_cells.ast, "literal_eval", lambda text: pytest.fail(f"literal_eval: {text}"))
    (parsed,) = parse_metrics(["{'x': 1e999, 'y': -1e999}"], "t")
    assert parsed == {"x": float("inf"), "y": float("-inf")}
