"""Runs as the user sees them: a run id is the Step Functions execution name.

Keeping the two equal (docs/design.md: the generate Lambda defaults `run_id` to the execution name)
means `novajudge status RUN_ID` needs no lookup table: the execution ARN is the state machine ARN
with `:stateMachine:` → `:execution:` plus `:<run_id>`, and the run's objects live under
`runs/<run_id>/` in the bucket.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from novajudge.config import Settings
from novajudge.errors import InvalidRunRequest
from novajudge.layout import RESULT_FILES, RunLayout, dataset_location
from novajudge.ops.aws import OpsError, UsageProblem, error_code
from novajudge.run_request import RUN_ID_MAX_LENGTH, RUN_ID_PATTERN, validate_run

DATASET_CHOICES = ("squad", "squad-sample", "s3://<bucket>/<key>.jsonl")


def new_run_id(now: datetime | None = None, *, prefix: str = "run") -> str:
    """`<prefix>-YYYYmmdd-HHMMSS-mmm` (UTC): sortable, readable, distinct for runs started side by
    side, and valid as execution name, S3 prefix and part of the judge job's name."""
    now = now or datetime.now(UTC)
    return now.strftime(f"{prefix}-%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}"


def check_run_id(run_id: str) -> str:
    """Refuse a run id that cannot be an S3 prefix, execution name and training-job name part."""
    if not run_id or len(run_id) > RUN_ID_MAX_LENGTH or not RUN_ID_PATTERN.match(run_id):
        raise UsageProblem(
            f"run id {run_id!r} is not allowed: use 1-{RUN_ID_MAX_LENGTH} letters and digits with '-' "
            "between them (it becomes the execution name, an S3 prefix and part of the judge job name)"
        )
    return run_id


def dataset_spec(dataset: str) -> dict[str, str]:
    """The execution input's `dataset` object for the `--dataset` option."""
    if dataset in ("squad", "squad-sample"):
        return {"source": dataset}
    if dataset.startswith("s3://"):
        if dataset_location(dataset) is None:
            raise UsageProblem(f"--dataset {dataset!r}: expected s3://<bucket>/<key>.jsonl")
        return {"source": "s3", "uri": dataset}
    raise UsageProblem(f"--dataset {dataset!r}: expected one of {', '.join(DATASET_CHOICES)}")


def build_input(
    settings: Settings,
    *,
    run_id: str,
    questions: int | None = None,
    offset: int | None = None,
    dataset: str | None = None,
    judge: str | None = None,
    poll_seconds: int | None = None,
    both_orders: bool | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """The execution input, validated exactly as the generate Lambda will validate it.

    `novajudge.run_request.validate_run` is the generate function's own validator, called with the
    deployment's defaults, judge time limit and (once known) `bucket`, so a request the function
    would refuse is refused here, before an execution (and its endpoint time) exists.
    """
    check_run_id(run_id)
    raw: dict[str, Any] = {"run_id": run_id}
    if questions is not None:
        raw["questions"] = questions
    if offset is not None:
        raw["offset"] = offset
    if dataset is not None:
        raw["dataset"] = dataset_spec(dataset)
    if judge is not None:
        raw["judge"] = {"variant": judge}
    if poll_seconds is not None:
        raw["poll_seconds"] = poll_seconds
    if both_orders is not None:
        raw["both_orders"] = both_orders
    try:
        validate_run(
            raw,
            defaults=settings.run_defaults(),
            bucket=bucket,
            judge_max_runtime_seconds=settings.judge_max_runtime_seconds,
            endpoint_polls=settings.endpoint_max_polls(),
        )
    except InvalidRunRequest as exc:
        raise UsageProblem(str(exc)) from None
    return raw


def check_dataset_readable(s3: Any, uri: str) -> None:
    """HeadObject the user's dataset so a typo fails now, not inside the generate Lambda."""
    location = dataset_location(uri)
    if location is None:
        raise UsageProblem(f"--dataset {uri!r}: expected s3://<bucket>/<key>.jsonl")
    try:
        head = s3.head_object(Bucket=location[0], Key=location[1])
    except ClientError as exc:
        code = error_code(exc)
        why = {
            "404": "no such object",
            "NoSuchKey": "no such object",
            "NoSuchBucket": "no such bucket",
            "403": "access denied",
        }.get(code, code or str(exc))
        raise UsageProblem(f"--dataset {uri}: cannot read it ({why})") from None
    if head.get("ContentLength", 1) == 0:
        raise UsageProblem(f"--dataset {uri}: the object is empty")


def execution_arn(state_machine_arn: str, run_id: str) -> str:
    """The ARN of the execution named `run_id` (no API call)."""
    if ":stateMachine:" not in state_machine_arn:
        raise OpsError(f"not a state machine ARN: {state_machine_arn!r}")
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{run_id}"


def console_url(region: str, exec_arn: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{exec_arn}"
    )


@dataclass(frozen=True)
class Run:
    """One execution, in the CLI's words."""

    run_id: str
    execution_arn: str
    status: str
    started: datetime
    stopped: datetime | None = None
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def execution_name(self) -> str:
        """The execution's name: the run id, or `<run_id>-resume-<stamp>` for a resumed run."""
        return self.execution_arn.rsplit(":", 1)[-1]

    def duration_seconds(self, now: datetime | None = None) -> float:
        end = self.stopped or now or datetime.now(UTC)
        return max(0.0, (end - self.started).total_seconds())


def _loads(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def describe_run(sfn: Any, state_machine_arn: str, run_id: str) -> Run:
    """The run `run_id` as its newest execution shows it; `UsageProblem` when no execution has that name.

    A resumed run has later executions, `<run_id>-resume-<stamp>` (`resume_run`): status, output
    and the execution to stop or follow are the newest one's, while `input` stays the request the
    run was started with (a resume's own input only says "resume").
    """
    check_run_id(run_id)
    original = _describe_execution(sfn, execution_arn(state_machine_arn, run_id), run_id)
    newest = original
    if original["status"] != "RUNNING":  # a resume can only start once the run stopped
        resumed = _newest_resume(sfn, state_machine_arn, run_id, since=original["startDate"])
        if resumed is not None:
            newest = _describe_execution(sfn, resumed, run_id)
    return Run(
        run_id=run_id,
        execution_arn=newest["executionArn"],
        status=newest["status"],
        started=newest["startDate"],
        stopped=newest.get("stopDate"),
        input=_loads(original.get("input")),
        output=_loads(newest.get("output")),
        error=newest.get("error"),
        cause=newest.get("cause"),
    )


def _describe_execution(sfn: Any, arn: str, run_id: str) -> dict[str, Any]:
    try:
        return dict(sfn.describe_execution(executionArn=arn))
    except ClientError as exc:
        if error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            raise UsageProblem(
                f"no run {run_id!r} (no execution of that name); see `novajudge runs`"
            ) from None
        raise OpsError(f"cannot describe run {run_id!r}: {exc}") from None


def _newest_resume(sfn: Any, state_machine_arn: str, run_id: str, *, since: datetime) -> str | None:
    """The ARN of the run's newest resume execution, if any. Executions are listed newest first,
    so the listing stops at the first resume of the run or at the first execution older than the
    run itself (usually within the first page)."""
    for ex in _executions(sfn, state_machine_arn, 100, f"cannot list the executions of run {run_id!r}"):
        if ex["name"] != run_id and run_of_execution(ex["name"]) == run_id:
            return str(ex["executionArn"])
        if ex["startDate"] < since:
            return None
    return None


def _executions(sfn: Any, state_machine_arn: str, page_size: int, problem: str) -> Iterator[dict[str, Any]]:
    """The state machine's executions as Step Functions lists them (newest first), page by page;
    `OpsError` starting with `problem` when a page cannot be read."""
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "maxResults": page_size}
    while True:
        try:
            page = sfn.list_executions(**kwargs)
        except ClientError as exc:
            raise OpsError(f"{problem}: {exc}") from None
        yield from page.get("executions", [])
        token = page.get("nextToken")
        if not token:
            return
        kwargs["nextToken"] = token


def run_of_execution(name: str) -> str:
    """The run an execution belongs to: its own name, or the part before `-resume-<stamp>`."""
    head, mark, stamp = name.rpartition(RESUME_MARK)
    return head if mark and stamp.isdigit() else name


def run_exists(sfn: Any, s3: Any, state_machine_arn: str, bucket: str, run_id: str) -> bool:
    """True when an execution of that name or the run's `request.json` marker already exists."""
    try:
        describe_run(sfn, state_machine_arn, run_id)
        return True
    except UsageProblem:
        pass
    return _request_recorded(s3, RunLayout(bucket, run_id))


def _request_recorded(s3: Any, layout: RunLayout) -> bool:
    """Whether the run's `request.json` exists: the run was claimed, by this or another execution."""
    try:
        s3.head_object(Bucket=layout.bucket, Key=layout.request_key)
        return True
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey"):
            return False
        raise OpsError(f"cannot check {layout.uri(layout.prefix)}: {exc}") from None


def start_run(sfn: Any, state_machine_arn: str, run_id: str, execution_input: Mapping[str, Any]) -> str:
    """Start the execution named `run_id`; returns its ARN."""
    try:
        return str(
            sfn.start_execution(
                stateMachineArn=state_machine_arn, name=run_id, input=json.dumps(execution_input)
            )["executionArn"]
        )
    except ClientError as exc:
        if error_code(exc) == "ExecutionAlreadyExists":
            raise UsageProblem(f"run {run_id!r} already exists; choose another --run-id") from None
        raise OpsError(f"cannot start run {run_id!r}: {exc}") from None


#: Between a run id and the stamp in the names of the run's later executions.
RESUME_MARK = "-resume-"


def resume_execution_name(run_id: str, now: datetime | None = None) -> str:
    """`<run_id>-resume-YYYYmmddHHMMSS`: a new execution of an existing run (names are unique)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    return f"{run_id}{RESUME_MARK}{stamp}"[:80]


def resume_run(sfn: Any, s3: Any, state_machine_arn: str, bucket: str, run_id: str) -> str:
    """Start a new execution that resumes run `run_id`; returns its ARN.

    The run must exist (its `request.json`) and have no execution still running: two executions
    writing one run's outcomes at once would ask the endpoints twice for the same items.
    """
    check_run_id(run_id)
    layout = RunLayout(bucket, run_id)
    if not _request_recorded(s3, layout):
        raise UsageProblem(
            f"run {run_id!r} has nothing to resume: {layout.uri(layout.request_key)} is missing"
        )
    try:
        running = sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING")["executions"]
    except ClientError as exc:
        raise OpsError(f"cannot list runs: {exc}") from None
    for execution in running:
        if run_of_execution(execution["name"]) == run_id:
            raise UsageProblem(f"run {run_id!r} is still running ({execution['name']}); stop it first")
    name = resume_execution_name(run_id)
    try:
        return str(
            sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=name,
                input=json.dumps({"run_id": run_id, "resume": True}),
            )["executionArn"]
        )
    except ClientError as exc:
        raise OpsError(f"cannot resume run {run_id!r}: {exc}") from None


def list_runs(sfn: Any, state_machine_arn: str, limit: int = 20) -> list[Run]:
    """The newest `limit` runs, newest first (paginating as needed)."""
    listed = _executions(sfn, state_machine_arn, min(max(limit, 1), 1000), "cannot list runs")
    runs = [
        Run(
            run_id=ex["name"],
            execution_arn=ex["executionArn"],
            status=ex["status"],
            started=ex["startDate"],
            stopped=ex.get("stopDate"),
        )
        for ex in itertools.islice(listed, max(limit, 0))
    ]
    runs.sort(key=lambda r: r.started, reverse=True)
    return runs


def latest_run(sfn: Any, state_machine_arn: str) -> Run:
    runs = list_runs(sfn, state_machine_arn, limit=1)
    if not runs:
        raise UsageProblem("no runs yet; start one with `novajudge start`")
    return describe_run(sfn, state_machine_arn, run_of_execution(runs[0].run_id))


# -- the run's objects ---------------------------------------------------------------------------


def read_json_object(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """A JSON object from S3, or None when it is not there (yet)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404", "AccessDenied"):
            return None
        raise OpsError(f"cannot read s3://{bucket}/{key}: {exc}") from None
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise OpsError(f"s3://{bucket}/{key} is not valid JSON: {exc}") from None
    return value if isinstance(value, dict) else None


def read_summary(s3: Any, bucket: str, run_id: str) -> dict[str, Any] | None:
    return read_json_object(s3, bucket, RunLayout(bucket, run_id).results_key("summary.json"))


def headline(summary: Mapping[str, Any] | None) -> str | None:
    if not summary:
        return None
    value = summary.get("headline")
    return str(value) if value else None


def winner_and_rate(summary: Mapping[str, Any] | None) -> tuple[str | None, float | None]:
    """The verdict (with the model's name) and B's win rate over decided judgements.

    Keys as documented in `novajudge.results.summarize` (schema_version 1): `verdict`, `models`,
    `ours.win_rate_b_decided`; the judge's own `judge.winrate` when ours is missing.
    """
    if not summary:
        return None, None
    verdict = summary.get("verdict")
    models = summary.get("models") or {}
    winner = f"{verdict} ({models[verdict]})" if verdict in models else (str(verdict) if verdict else None)
    rate = (summary.get("ours") or {}).get("win_rate_b_decided")
    if rate is None:
        rate = (summary.get("judge") or {}).get("winrate")
    return winner, float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) else None


def download_results(
    s3: Any, bucket: str, run_id: str, out_dir: Path, names: tuple[str, ...] = RESULT_FILES
) -> tuple[list[Path], list[str]]:
    """Download the run's result files into `out_dir`; returns (written files, missing names)."""
    layout = RunLayout(bucket, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    missing: list[str] = []
    for name in names:
        target = out_dir / name
        try:
            s3.download_file(bucket, layout.results_key(name), str(target))
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey"):
                missing.append(name)
                continue
            raise OpsError(f"cannot download {layout.uri(layout.results_key(name))}: {exc}") from None
        written.append(target)
    return written, missing


# -- execution history ---------------------------------------------------------------------------


def history(sfn: Any, exec_arn: str, *, newest_first: bool = False, limit: int | None = None) -> list[dict]:
    """Execution history events (all pages unless `limit`)."""
    events: list[dict] = []
    kwargs: dict[str, Any] = {"executionArn": exec_arn, "reverseOrder": newest_first}
    if limit:
        kwargs["maxResults"] = limit
    while True:
        try:
            page = sfn.get_execution_history(**kwargs)
        except ClientError as exc:
            raise OpsError(f"cannot read the history of {exec_arn}: {exc}") from None
        events.extend(page.get("events", []))
        token = page.get("nextToken")
        if not token or (limit and len(events) >= limit):
            break
        kwargs["nextToken"] = token
    events.sort(key=lambda e: e["id"], reverse=newest_first)
    return events[:limit] if limit else events


def current_state(sfn: Any, exec_arn: str) -> str | None:
    """The state the execution entered last (what it is doing now)."""
    for event in history(sfn, exec_arn, newest_first=True, limit=25):
        details = event.get("stateEnteredEventDetails")
        if details:
            return str(details.get("name"))
    return None
