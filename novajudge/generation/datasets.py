"""Prompt sources: SQuAD (fetched, with a bundled offline fallback) and the user's JSONL in S3.

Every source yields `PromptItem`s with a stable `prompt_id`, so a judge-input line can always be
traced back to its question, and keeps the reference answer when there is one: the judge never sees
it, but calibration and spot checks later compare the judge's verdicts with it.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from novajudge.errors import DatasetError
from novajudge.jsonl import Limits, parse_json_line, raw_lines, read_jsonl_file
from novajudge.labels import parse_preference
from novajudge.layout import dataset_location
from novajudge.run_request import BUNDLED_SAMPLE_ROWS

BUNDLED_SQUAD = Path(__file__).resolve().parents[1] / "data" / "squad_v1.1_train_first20.jsonl"
SQUAD_ROWS_URL = "https://datasets-server.huggingface.co/rows"
SQUAD_DATASET = "rajpurkar/squad"
SQUAD_PAGE_SIZE = 100  # the rows API returns at most 100 rows per request
SOURCE_SQUAD_ONLINE = "SQuAD v1.1 train (Hugging Face datasets-server, rajpurkar/squad)"
SOURCE_SQUAD_BUNDLED = "bundled sample"
SOURCE_SQUAD_FALLBACK = "bundled sample (offline fallback)"
MAX_REPORTED_ERRORS = 5
#: Size limits of a user dataset: 1 MiB per line (a prompt is sent whole to both endpoints and to
#: the judge, whose context is a few thousand tokens) and 1 GiB of file read.
DATASET_LIMITS = Limits(max_line_bytes=1024 * 1024, max_file_bytes=1024 * 1024 * 1024)

FetchJson = Callable[[str, float], Any]


class DatasetChoice(Protocol):
    """Which dataset a run reads (`novajudge.run_request.DatasetSpec` is one)."""

    @property
    def source(self) -> str: ...

    @property
    def uri(self) -> str | None: ...


@dataclass(frozen=True)
class PromptItem:
    """One prompt for both models. `reference` is never sent to the models or the judge."""

    prompt_id: str
    prompt: str
    reference: str | None = None
    #: A human's preference between the two models' answers (A, B or tie), for calibration.
    human_preference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedDataset:
    """The items of one run and where they really came from (recorded in the generation summary)."""

    items: list[PromptItem]
    source: str
    detail: dict[str, Any] = field(default_factory=dict)


def squad_prompt(question: str, context: str) -> str:
    """A SQuAD question with its passage.

    SQuAD questions are written against one Wikipedia passage ("What is in front of the Notre Dame
    Main Building?") and are ambiguous or unanswerable without it; sending the passage makes the
    task reading comprehension for both models and lets the judge check faithfulness to the text.
    """
    return (
        "Answer the question using the passage below.\n\n"
        f"Passage:\n{context.strip()}\n\n"
        f"Question: {question.strip()}"
    )


def squad_item(row: dict[str, Any], where: str) -> PromptItem:
    """A `PromptItem` from one SQuAD row (`id`, `title`, `context`, `question`, `answers`)."""
    for name in ("id", "context", "question"):
        if not isinstance(row.get(name), str) or not row[name].strip():
            raise DatasetError(f"{where}: field {name!r} is missing or empty")
    answers = row.get("answers") or {}
    texts = answers.get("text") if isinstance(answers, dict) else None
    reference = texts[0] if isinstance(texts, list) and texts else None
    return PromptItem(
        prompt_id=row["id"],
        prompt=squad_prompt(row["question"], row["context"]),
        reference=reference,
        meta={"title": row.get("title"), "question": row["question"], "answers": texts or []},
    )


def load_bundled_squad(offset: int, count: int) -> list[PromptItem]:
    """Rows `offset`..`offset+count` of the bundled 20-row sample (fewer if it runs out)."""
    items = []
    for number, row in read_jsonl_file(BUNDLED_SQUAD, error=DatasetError):
        if number - 1 < offset:
            continue
        if len(items) >= count:
            break
        items.append(squad_item(row, f"{BUNDLED_SQUAD.name} line {number}"))
    if not items:
        raise DatasetError(
            f"offset {offset} is past the end of the bundled SQuAD sample ({BUNDLED_SQUAD.name}, "
            f"{BUNDLED_SAMPLE_ROWS} rows)"
        )
    return items


def _http_get_json(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "nova-judge-stack"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def fetch_squad(
    offset: int,
    count: int,
    *,
    fetch: FetchJson | None = None,
    timeout: float = 10.0,
    rows_url: str = SQUAD_ROWS_URL,
) -> list[PromptItem]:
    """Rows of SQuAD v1.1 train from the datasets-server rows API (`rows_url`), paged by 100."""
    fetch = fetch or _http_get_json
    items: list[PromptItem] = []
    position = offset
    while len(items) < count:
        length = min(SQUAD_PAGE_SIZE, count - len(items))
        query = urllib.parse.urlencode(
            {
                "dataset": SQUAD_DATASET,
                "config": "plain_text",
                "split": "train",
                "offset": position,
                "length": length,
            }
        )
        page = fetch(f"{rows_url}?{query}", timeout)
        rows = page.get("rows") if isinstance(page, dict) else None
        if not isinstance(rows, list):
            raise DatasetError(f"unexpected answer from {rows_url}: no 'rows' list")
        for entry in rows:
            items.append(
                squad_item(entry.get("row", {}), f"SQuAD train row {entry.get('row_idx', position)}")
            )
        if len(rows) < length:
            break  # end of the split
        position += len(rows)
    if not items:
        raise DatasetError(f"offset {offset} is past the end of SQuAD v1.1 train")
    return items[:count]


def _decoded(raw: str | bytes, number: int) -> tuple[str, str | None]:
    """A line as text, or the problem (named like the other per-line problems) when not UTF-8."""
    if isinstance(raw, str):
        return raw, None
    if number == 1:
        raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return "", f"not UTF-8 text (byte {exc.start + 1} of the line)"


def parse_user_jsonl(
    lines: Iterable[str] | Iterable[bytes], where: str, *, stop_after: int | None = None
) -> list[PromptItem]:
    """Validate the lines of a user JSONL file; all problems are reported, none skipped silently.

    Each line is an object with `prompt` (required, non-empty string), optional `id` (string or
    integer; default `line-<n>`), optional `reference` (string) and optional `preference` (a human's
    label A, B or tie, used to calibrate the judge). Blank lines are ignored. `lines` are the file's
    lines in order, as text or as UTF-8 bytes (`novajudge.jsonl.raw_lines`: then a line that is not
    UTF-8 is reported with the others), blank ones included so numbers are positions in the file.
    With `stop_after`, reading stops once that many valid prompts are in hand (a run of 20
    questions does not read a 100 MB file to its end).
    """
    items: list[PromptItem] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if stop_after is not None and len(items) >= stop_after:
            break
        line, problem = _decoded(raw, number)
        if problem is not None:
            errors.append(f"{where} line {number}: {problem}")
            continue
        if not line.strip():
            continue
        problem, item = _parse_user_line(line, number)
        if problem is None and item is not None and item.prompt_id in seen:
            problem = f"field 'id': duplicate id {item.prompt_id!r} (first on line {seen[item.prompt_id]})"
        if problem:
            errors.append(f"{where} line {number}: {problem}")
            continue
        assert item is not None
        seen[item.prompt_id] = number
        items.append(item)
    if errors:
        shown = "; ".join(errors[:MAX_REPORTED_ERRORS])
        more = f" (and {len(errors) - MAX_REPORTED_ERRORS} more)" if len(errors) > MAX_REPORTED_ERRORS else ""
        raise DatasetError(f"{len(errors)} malformed line(s): {shown}{more}")
    if not items:
        raise DatasetError(f"{where}: no prompts (the file is empty)")
    return items


def _parse_user_line(line: str, number: int) -> tuple[str | None, PromptItem | None]:
    obj, problem = parse_json_line(line)
    if problem is not None:
        return problem, None
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}", None
    prompt = obj.get("prompt")
    if "prompt" not in obj:
        return "field 'prompt' is missing", None
    if not isinstance(prompt, str) or not prompt.strip():
        return "field 'prompt' must be a non-empty string", None
    raw_id = obj.get("id", f"line-{number}")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        return "field 'id' must be a non-empty string or an integer", None
    reference = obj.get("reference")
    if reference is not None and not isinstance(reference, str):
        return "field 'reference' must be a string", None
    preference = obj.get("preference")
    label = parse_preference(preference) if preference is not None else None
    if preference is not None and label is None:
        return f"field 'preference' is {preference!r}; expected one of A, B, tie", None
    return None, PromptItem(prompt_id=str(raw_id), prompt=prompt, reference=reference, human_preference=label)


def load_dataset(
    spec: DatasetChoice,
    *,
    offset: int,
    count: int,
    s3: Any = None,
    fetch: FetchJson | None = None,
    squad_rows_url: str = SQUAD_ROWS_URL,
) -> LoadedDataset:
    """The `count` items from `offset` of the run's dataset."""
    if spec.source == "squad-sample":
        items = load_bundled_squad(offset, count)
        return LoadedDataset(items, SOURCE_SQUAD_BUNDLED, {"file": BUNDLED_SQUAD.name})
    if spec.source == "squad":
        try:
            items = fetch_squad(offset, count, fetch=fetch, rows_url=squad_rows_url)
            return LoadedDataset(items, SOURCE_SQUAD_ONLINE, {"dataset": SQUAD_DATASET, "split": "train"})
        except (OSError, ValueError, DatasetError) as exc:
            # No internet from the Lambda (VPC without NAT, outage): the run still works on the sample,
            # and says so in the summary instead of pretending it used the full dataset.
            items = load_bundled_squad(offset, count)
            return LoadedDataset(
                items, SOURCE_SQUAD_FALLBACK, {"file": BUNDLED_SQUAD.name, "fetch_error": str(exc)[:300]}
            )
    location = dataset_location(spec.uri)
    if spec.source != "s3" or location is None:  # the request model refuses these first
        raise DatasetError(
            f"dataset {spec.source!r} with uri {spec.uri!r}: expected s3://<bucket>/<key>.jsonl"
        )
    bucket, key = location
    where = f"s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as exc:  # botocore ClientError and friends: name the object and the reason
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise DatasetError(f"cannot read {where}: {code}") from None
    try:
        lines = raw_lines(body, where, error=DatasetError, limits=DATASET_LIMITS)
        read = parse_user_jsonl(lines, where, stop_after=offset + count)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()  # stop the download when we stopped reading early
    if offset >= len(read):
        raise DatasetError(f"offset {offset} is past the end of {where} ({len(read)} prompts)")
    items = read[offset : offset + count]
    # `prompts_read`: the file is read only as far as the run needs, so this is not its length.
    return LoadedDataset(items, "s3", {"uri": where, "prompts_read": len(read)})
