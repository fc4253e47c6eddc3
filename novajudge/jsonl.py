"""The one JSON Lines reader: every JSONL file the project reads goes through here.

Datasets, generation manifests, the judge input and human labels all come through `read_jsonl`
(or `text_lines` when a caller validates the objects itself), so every file gets the same rules:

- Lines end at `\\n` only. `str.splitlines()` also breaks at U+2028, U+2029, U+0085, `\\v`, `\\f`
  and more; those are legal *inside* a JSON string (model answers contain them), and splitting there
  cut valid lines in half. UTF-8 never has the byte 0x0A inside a multi-byte character, so the
  split is done on bytes, before decoding. A trailing `\\r` (CRLF files) is JSON whitespace.
- The input is streamed in `CHUNK_BYTES` pieces: a caller that needs 20 lines of a 100 MB file
  stops reading after them, and memory stays at about one line plus one chunk.
- A file larger than `max_file_bytes` or a line longer than `max_line_bytes` is refused with an
  error naming the file and line, instead of exhausting a 1 GB Lambda.
- Every error names the file, the line and, where there is one, the field: invalid UTF-8 (with the
  byte column), invalid JSON (with the column), nesting too deep for the parser (Python's
  `RecursionError`, e.g. 200,000 `[`), and strings holding lone surrogates (`"\\ud800"` is valid
  JSON but cannot be encoded as UTF-8, so it would break the first write further down).

This module is at the bottom of the package (like `errors`): it imports only `novajudge.errors`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from novajudge.errors import NovaJudgeError

#: Bytes read from the source at a time.
CHUNK_BYTES = 64 * 1024
#: Default per-line limit: far above any prompt or manifest line the pipeline writes (a manifest line
#: holds a prompt and two answers of at most `max_new_tokens`, 8192 tokens each), far below a
#: Lambda's memory.
DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
#: Default per-file limit (bytes actually read: a caller that stops early never reaches it).
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
#: Lone UTF-16 surrogates: what `json.loads` makes of an unpaired `\\udXXX` escape.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Shown instead of a lone surrogate when repairing text.
REPLACEMENT = "\ufffd"


class Readable(Protocol):
    """A binary source: an open file, botocore's `StreamingBody`, `io.BytesIO`."""

    def read(self, amt: int | None = ..., /) -> bytes: ...


@dataclass(frozen=True)
class Limits:
    """Size limits of one file; the defaults suit every file the pipeline itself writes."""

    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES


def _human(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


def _chunks(source: Readable | bytes | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if read is None:
        yield from source  # type: ignore[misc]
        return
    while True:
        chunk = read(CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


def raw_lines(
    source: Readable | bytes | Iterable[bytes],
    where: str,
    *,
    error: type[NovaJudgeError],
    limits: Limits = Limits(),
) -> Iterator[bytes]:
    """Every line of `source` as bytes (without its `\\n`), blank lines included, so line numbers
    are 1-based positions in the file."""
    pending = bytearray()
    total = 0
    number = 0
    for chunk in _chunks(source):
        total += len(chunk)
        if total > limits.max_file_bytes:
            raise error(
                f"{where}: larger than {_human(limits.max_file_bytes)} (the limit of this file); "
                f"split it or ask for fewer lines"
            )
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                pending += chunk[start:]
                if len(pending) > limits.max_line_bytes:
                    raise error(
                        f"{where} line {number + 1}: longer than {_human(limits.max_line_bytes)} "
                        "(the per-line limit)"
                    )
                break
            pending += chunk[start:end]
            number += 1
            if len(pending) > limits.max_line_bytes:
                raise error(
                    f"{where} line {number}: longer than {_human(limits.max_line_bytes)} (the per-line limit)"
                )
            yield bytes(pending)
            pending.clear()
            start = end + 1
    if pending:
        yield bytes(pending)


def text_lines(
    source: Readable | bytes | Iterable[bytes],
    where: str,
    *,
    error: type[NovaJudgeError],
    limits: Limits = Limits(),
) -> Iterator[str]:
    """Every line decoded as UTF-8 (blank lines included); a bad byte names the line and column.

    A UTF-8 byte-order mark at the start of the file is dropped (editors on Windows write one).
    """
    for number, raw in enumerate(raw_lines(source, where, error=error, limits=limits), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{where} line {number}: not UTF-8 text (byte {exc.start + 1} of the line)") from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text


def invalid_text_field(value: Any, path: str = "") -> str | None:
    """The path (`prompt`, `answers[2]`, `meta.title`) of the first string holding a lone surrogate
    in a parsed JSON value (keys included), or None when every string is valid Unicode."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if LONE_SURROGATE.search(item):
                return where or "(the value)"
        elif isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and LONE_SURROGATE.search(key):
                    return name
                stack.append((inner, name))
        elif isinstance(item, list):
            for index in range(len(item) - 1, -1, -1):
                stack.append((item[index], f"{where}[{index}]"))
    return None


def parse_json_line(text: str) -> tuple[Any, str | None]:
    """(value, None) for a valid JSON line, or (None, problem) naming what is wrong (and the field
    for invalid Unicode). Used by callers that collect every problem of a file before reporting."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, "not valid JSON here (nested too deeply for the parser)"
    field = invalid_text_field(value)
    if field is not None:
        return None, (
            f"field {field!r}: invalid Unicode (a lone surrogate such as \\ud800, which no UTF-8 file "
            "can hold); fix or remove that character"
        )
    return value, None


def read_jsonl(
    source: Readable | bytes | Iterable[bytes],
    where: str,
    *,
    error: type[NovaJudgeError],
    limits: Limits = Limits(),
) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; the first problem raises `error`
    naming `where`, the line and the field."""
    for number, text in enumerate(text_lines(source, where, error=error, limits=limits), start=1):
        if not text.strip():
            continue
        value, problem = parse_json_line(text)
        if problem is not None:
            raise error(f"{where} line {number}: {problem}")
        yield number, value


def read_jsonl_file(
    path: str | Path,
    *,
    error: type[NovaJudgeError],
    limits: Limits = Limits(),
) -> Iterator[tuple[int, Any]]:
    """`read_jsonl` over a local file; a file that cannot be opened is `error` too (one line)."""
    path = Path(path)
    try:
        handle: BinaryIO = path.open("rb")
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None
    with handle:
        try:
            yield from read_jsonl(handle, str(path), error=error, limits=limits)
        except OSError as exc:  # e.g. a directory on some systems, an I/O error mid-file
            raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None


def repair_text(text: str) -> tuple[str, int]:
    """`text` with every lone surrogate replaced by U+FFFD, and how many were replaced.

    For text from outside (model answers): it can then always be written as UTF-8.
    """
    repaired, count = LONE_SURROGATE.subn(REPLACEMENT, text)
    return repaired, count
