"""The details parquet's `metrics` cells -> dicts: one parser, fast at 100,000 rows, never `eval`.

The judge writes each row's `metrics` as a Python dict literal (`str()` of a dict: single quotes,
`True`/`False`/`None`). `ast.literal_eval` reads that safely but slowly (it builds and walks a
syntax tree in Python: ~95 µs a cell, most of a large summary's time). So a group of cells is
translated into JSON with whole-group operations and read by a C JSON parser, and the
translation is exact by construction, so nothing needs checking afterwards:

1. escapes: `\\\\`, `\\'`, `\\"` are set aside first (left to right, as Python's tokenizer pairs
   them), so every quote character left is a string delimiter or the other kind of quote inside a
   string;
2. strings: Python's rule (a string opened by `'` ends at the next `'`, by `"` at the next `"`)
   is followed over the quote positions only, for all cells of the group at once with numpy (one
   step per string of the longest cell); delimiters become `"`, a `"` inside a `'...'` string
   becomes `\\"`, and the escapes Python and JSON spell differently are rewritten (`\\'` -> `'`,
   `\\xhh` -> `\\u00hh`);
3. outside strings: `True`/`False`/`None` become `true`/`false`/`null`; a cell holding JSON's
   own `true`/`false`/`null` outside a string goes to `ast.literal_eval`, and the scanner refuses
   `NaN`/`Infinity`, so no JSON word is accepted where Python would refuse it (any other bare
   word outside a string is no JSON, so the scanner refuses it too);
4. each cell is read by orjson on its own (by the standard library's C scanner when it holds a
   long run of digits, or orjson refuses it); a cell the scanner cannot read whole is read by
   `ast.literal_eval`, which decides, and names the row if it cannot.

Why the result is `ast.literal_eval`'s: every JSON text the scanner accepts is then a Python literal
with the same value. JSON's grammar (objects with string keys, arrays, strings, numbers,
`true`/`false`/`null`) is a subset of Python's literals; its numbers are Python's numbers (the
standard scanner reads them with `float()`/`int()`, orjson rounds floats correctly too and holds
integers of up to 64 bits exactly, which is why a long digit run skips it); its whitespace is
Python's; duplicate keys keep the first position and the last value in all three. What JSON spells
or reads otherwise is kept out before the scanner sees it: `\\/` (a slash in JSON, two characters in
Python) and `\\u` surrogate escapes (JSON pairs `\\ud83d\\ude00` into one character, Python keeps
two), raw surrogates (Python cannot compile them), and the placeholder characters \\x00, \\x02-\\x05
(Python source cannot hold \\x00; the others only in strings, where JSON refuses raw control
characters anyway). Tuples, sets, trailing commas, `+1`, `.5`, `1_000`, `0x1F`, `1j`, `nan`, string
prefixes, implicit concatenation, `\\a`/`\\v`/`\\0`/`\\N{...}`/`\\U...` escapes and line
continuations are not JSON (or leave a letter outside a string), so such cells go to
`ast.literal_eval`.
`tests/results/test_metrics_cells.py` checks this against `ast.literal_eval` on tricky cells;
`benchmarks/bench_summarize.py` measures the time.
"""

from __future__ import annotations

import ast
import gc
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import orjson

from novajudge.errors import ResultsError
from novajudge.verdicts import cell_text

#: Cells decoded together and handed on as one batch. Small, so the caller reads a batch's dicts
#: while they are still in the CPU's cache: 50 instead of 2,000 made a slice of the summary ~20 %
#: faster (most of the time spent taking the criteria out of freshly decoded dicts is memory).
BATCH = 50
#: Cells translated together: numpy's per-call cost is shared by more cells (one step per string
#: of the longest cell), while the translated text stays a few tens of MB.
GROUP = 20_000
#: Strings per cell followed by the vectorised scan; a cell with more goes to `ast.literal_eval`.
MAX_STRINGS = 4096

_SEPARATOR = "\x00"  # between cells in a batch; Python source cannot hold it
_PLACEHOLDERS = ("\x02", "\x03", "\x04", "\x05")  # set-aside escapes; a cell holding one is not translated
_SINGLE, _DOUBLE, _INNER_DOUBLE = ord("'"), ord('"'), 5
_ZERO, _NINE = ord("0"), ord("9")
#: A cell with a run of digits this long or longer is read by the standard scanner, not orjson:
#: every run of 2 * DIGIT_STEP (18) digits is found (an integer past 64 bits has 19 or more), and
#: only runs of DIGIT_STEP + 1 (10) or more are (a float's repr has at most 17 digits in a row).
DIGIT_STEP = 9
_UNSAFE_ESCAPE = re.compile(r"\\/|\\u[dD][89a-fA-F]")  # spelled or read otherwise by JSON
_KEYWORDS = {b"True": b"true", b"False": b"false", b"None": b"null"}
_JSON_WORDS = (b"true", b"false", b"null")  # JSON reads them, Python does not (NaN, Infinity: below)
_UNSAFE_ESCAPE_BYTES = re.compile(_UNSAFE_ESCAPE.pattern.encode())


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is JSON, not Python")


#: The C scanner: one value at an index, strict strings; JSON's NaN and Infinity refused.
_SCAN = json.JSONDecoder(parse_constant=_refuse).scan_once


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unsafe(text: str) -> bool:
    """A cell the translation must not touch: see the module docstring."""
    return (
        _SEPARATOR in text
        or any(p in text for p in _PLACEHOLDERS)
        or bool(_UNSAFE_ESCAPE.search(text.replace("\\\\", "\x02")))
        or (not text.isascii() and _has_surrogate(text))
    )


def _strings(b: np.ndarray, seps: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, ...]:
    """Byte positions of the opening and closing delimiters of every string and of the `"` inside
    `'...'` strings, following Python's rule for all cells at once; a cell with an unterminated
    string (or more than `MAX_STRINGS`) is marked in `bad`."""
    qpos = np.flatnonzero((b == _SINGLE) | (b == _DOUBLE))
    qtype = b[qpos]
    nxt = np.full(qpos.size, qpos.size, dtype=np.int32)  # the next quote of the same kind
    for kind in (_SINGLE, _DOUBLE):
        same = np.flatnonzero(qtype == kind).astype(np.int32)
        nxt[same[:-1]] = same[1:]
    # Each cell's quotes are qpos[first[c]:stop[c]]; small per-cell arrays, not per-quote ones.
    stop = np.append(np.searchsorted(qpos, seps), qpos.size).astype(np.int32)
    first = np.append(0, stop[:-1]).astype(np.int32)
    cells = np.flatnonzero(first < stop)
    cur, limit = first[cells], stop[cells]
    opening = np.zeros(qpos.size, dtype=bool)  # marked per quote: in order without a sort
    closing = np.zeros(qpos.size, dtype=bool)
    for _ in range(MAX_STRINGS):  # one string of every cell still scanning per step
        if not cur.size:
            break
        end = nxt[cur]
        ok = end < limit
        if not ok.all():
            bad[cells[~ok]] = True  # unterminated
            cur, end, cells, limit = cur[ok], end[ok], cells[ok], limit[ok]
        opening[cur] = True
        closing[end] = True
        cur = end + 1
        more = cur < limit
        if not more.all():
            cur, cells, limit = cur[more], cells[more], limit[more]
    else:
        bad[cells] = True
    return qpos[opening], qpos[closing], qpos[~(opening | closing) & (qtype == _DOUBLE)]


def _outside_strings(b: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bytes outside every string (about a fifth of a cell: brackets, separators, numbers and
    keywords) and where each sits in `b`, so the keywords are searched for in those alone."""
    starts = np.concatenate(([0], closes + 1))
    lengths = np.concatenate((opens, [b.size])) - starts
    offsets = np.cumsum(lengths) - lengths
    where = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
    return b[where], where


def _find_all(b: np.ndarray, word: bytes) -> np.ndarray:
    """Where `word` starts in `b` (one vectorised pass for its first byte, then the candidates)."""
    at = np.flatnonzero(b[: max(b.size - len(word) + 1, 0)] == word[0])
    for k in range(1, len(word)):
        at = at[b[at + k] == word[k]]
    return at


def _translate(texts: list[str]) -> tuple[list[str | None], np.ndarray]:
    """Each cell as JSON text (None where the cell is left to `ast.literal_eval`), and which cells
    hold a run of 10 or more digits (read by the exact scanner, see `_read`)."""
    try:
        data = _SEPARATOR.join(texts).encode("utf-8")  # quotes, letters, controls: one byte each
    except UnicodeEncodeError:
        data = b""  # a raw surrogate somewhere
    if data:
        control = np.frombuffer(data, dtype=np.uint8)
        control = control[control < 6]
        if (control >= 2).any() or control.size - np.count_nonzero(control) != len(texts) - 1:
            data = b""  # a placeholder or a separator inside a cell
    if data and b"\\" in data:  # escape pairs first, left to right, as Python's tokenizer reads them
        data = data.replace(b"\\\\", b"\x02").replace(b"\\'", b"\x03").replace(b'\\"', b"\x04")
        if _UNSAFE_ESCAPE_BYTES.search(data):
            data = b""
    if not data:  # rare: translate the others, leave these cells to literal_eval
        unsafe = [_unsafe(t) for t in texts]
        keep = [i for i, u in enumerate(unsafe) if not u]
        out: list[str | None] = [None] * len(texts)
        wide = np.zeros(len(texts), dtype=bool)
        if keep and len(keep) < len(texts):
            pieces, kept_wide = _translate([texts[i] for i in keep])
            for i, piece in zip(keep, pieces, strict=True):
                out[i] = piece
            wide[keep] = kept_wide
        return out, wide
    buf = bytearray(data)
    b = np.frombuffer(buf, dtype=np.uint8)
    seps = np.flatnonzero(b == 0)
    bad = np.zeros(len(texts), dtype=bool)
    wide = np.zeros(len(texts), dtype=bool)
    wide[np.searchsorted(seps, _digit_runs(b))] = True
    opens, closes, inner_double = _strings(b, seps, bad)
    b[opens] = _DOUBLE
    b[closes] = _DOUBLE
    b[inner_double] = _INNER_DOUBLE
    outside, where = _outside_strings(b, opens, closes)
    for word in (*_JSON_WORDS, *_KEYWORDS):  # outside strings only; JSON's own words first
        if word not in data:
            continue
        found = _find_all(outside, word)
        # A word is found whole: its bytes must be adjacent in the cell, not split by a string.
        found = found[where[found + len(word) - 1] - where[found] == len(word) - 1]
        at = where[found]
        if word in _KEYWORDS:
            for k, byte in enumerate(_KEYWORDS[word]):
                b[at + k] = byte
        else:
            bad[np.searchsorted(seps, at)] = True
    del b, data, outside, where
    text = buf.decode("utf-8")
    del buf
    if "\x05" in text:
        text = text.replace("\x05", '\\"')
    if "\\" in text or "\x02" in text:
        text = text.replace("\\x", "\\u00").replace("\x02", "\\\\").replace("\x03", "'")
        text = text.replace("\x04", '\\"')
    pieces = [None if not_ok else piece for piece, not_ok in zip(text.split(_SEPARATOR), bad, strict=True)]
    return pieces, wide


def _digit_runs(b: np.ndarray) -> np.ndarray:
    """Where runs of digits start that may be long (see `DIGIT_STEP`): a run of 2 * step digits
    covers two consecutive multiples of the step, so only every step-th byte is looked at first,
    then the step + 1 bytes from each candidate."""
    step = DIGIT_STEP
    sampled = b[::step]
    digit = (sampled >= _ZERO) & (sampled <= _NINE)
    starts = np.flatnonzero(digit[:-1] & digit[1:]) * step
    if not starts.size:
        return starts
    window = b[np.minimum(starts[:, None] + np.arange(step + 1), b.size - 1)]
    return starts[((window >= _ZERO) & (window <= _NINE)).all(axis=1)]


def _read(piece: str | None, wide: bool = False) -> Any:
    """The value of one translated cell, or `_UNREAD` when neither reader can read all of it.

    orjson first (about twice as fast as the standard library's C scanner on these cells); it
    refuses what it cannot hold (1e999, deep nesting) and those go to the standard scanner. A cell
    with a long digit run goes to the standard scanner at once: orjson would silently read an
    integer wider than 64 bits as a float, where `ast.literal_eval` keeps the integer.
    """
    if piece is None:
        return _UNREAD
    if not wide:
        try:
            return orjson.loads(piece)
        except orjson.JSONDecodeError:
            pass
    try:
        value, end = _SCAN(piece, 0)
    except (StopIteration, ValueError, RecursionError):
        return _UNREAD
    return value if end == len(piece) else _UNREAD


_UNREAD = object()


def _slow(text: str, where: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ResultsError(f"{where}: field 'metrics' is not a Python dict literal ({exc})") from None


def iter_metrics(
    cells: Sequence[Any] | np.ndarray, source: str, first_row: int = 0
) -> Iterator[list[dict[str, Any]]]:
    """The `metrics` cells as dicts, in batches of `BATCH` rows (row order kept).

    A dict cell passes through; an empty cell is `{}`. Errors name `source` and the row, counted
    from `first_row` (the cells may be a slice of the details):
    "`<source>` row 7: field 'metrics' is not a Python dict literal (...)".

    One thread on purpose: translating the next group on a second thread was measured slower
    (the translation's Python parts and the reading contend for the GIL); the summary reads slices
    of rows in two processes instead (`novajudge.results.parse.flatten`).
    """
    for group in range(0, len(cells), GROUP):
        chunk, pieces, wide = _translated_group(cells, group)
        for start in range(0, len(chunk), BATCH):
            yield _batch(chunk, pieces, wide, start, first_row + group, source)
        del chunk, pieces


def _translated_group(
    cells: Sequence[Any] | np.ndarray, group: int
) -> tuple[list[Any], list[str | None], np.ndarray]:
    """The cells of the group from `group`: stripped, translated, and which are wide."""
    chunk = [
        c.strip() if type(c) is str else c if isinstance(c, dict) else cell_text(c).strip()
        for c in cells[group : group + GROUP]
    ]
    todo = [i for i, c in enumerate(chunk) if isinstance(c, str) and c]
    pieces: list[str | None] = [None] * len(chunk)
    wide = np.zeros(len(chunk), dtype=bool)
    if todo:
        translated, todo_wide = _translate([chunk[i] for i in todo])
        for i, piece in zip(todo, translated, strict=True):
            pieces[i] = piece
        wide[todo] = todo_wide
    return chunk, pieces, wide


def _batch(
    chunk: list[Any], pieces: list[str | None], wide: np.ndarray, start: int, group: int, source: str
) -> list[Any]:
    """Rows `start` to `start + BATCH` of a group, decoded; the cells not read go to `_slow`."""
    # A batch allocates a few hundred thousand objects at once, all alive until it is done: the
    # cyclic collector would walk them again and again for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        stop = start + BATCH
        values = [_read(p, w) for p, w in zip(pieces[start:stop], wide[start:stop].tolist(), strict=True)]
    finally:
        if collecting:
            gc.enable()
    parsed: list[Any] = []
    for i, value in enumerate(values, start=start):
        if type(value) is dict:  # the common case: read by the fast path
            parsed.append(value)
            continue
        cell = chunk[i]
        if not isinstance(cell, str) or not cell:
            parsed.append(cell if isinstance(cell, dict) else {})
            continue
        where = f"{source} row {group + i}"
        value = _slow(cell, where) if value is _UNREAD else value
        if not isinstance(value, dict):
            raise ResultsError(
                f"{where}: field 'metrics' is a {type(value).__name__}, expected a dict literal"
            )
        parsed.append(value)
    return parsed


def parse_metrics(cells: Sequence[Any] | np.ndarray, source: str) -> list[dict[str, Any]]:
    """All `metrics` cells as dicts (see `iter_metrics`), for tables small enough to hold at once."""
    return [m for batch in iter_metrics(cells, source) for m in batch]
