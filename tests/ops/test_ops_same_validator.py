"""`novajudge start` and the generate function accept and refuse the same run requests.

One table of requests; each goes to the CLI (`novajudge start`, in moto: exit 0 and an execution,
or exit 2 and nothing started) and, as the execution input the CLI would send, to the generate
function's validation (`build_run` with the environment the stack gives it). The two verdicts must
agree; the expected verdict is written out by hand for each row.
"""

from __future__ import annotations

from typing import Any

import pytest
from ops_helpers import Deployed
from typer.testing import CliRunner

from novajudge.cli.app import _register, app
from novajudge.errors import InvalidRunRequest
from novajudge.steps.environment import GenerateEnvironment
from novajudge.steps.generate import build_run

_register()

BUCKET = "novajudge-storage-bucket"  # the `deployed` fixture's evaluation bucket


def _s3(uri: str) -> dict[str, Any]:
    return {"dataset": {"source": "s3", "uri": uri}}


OURS = f"s3://{BUCKET}"
# (CLI options, the same request as execution input, accepted?)
CASES: list[tuple[tuple[str, ...], dict[str, Any], bool]] = [
    ((), {}, True),
    (("-n", "5", "--offset", "3"), {"questions": 5, "offset": 3}, True),
    (("-n", "0"), {"questions": 0}, False),
    (("--offset", "-1"), {"offset": -1}, False),
    (("--judge", "binary"), {"judge": {"variant": "binary"}}, True),
    (("--dataset", "squad-sample", "-n", "20"),
     {"dataset": {"source": "squad-sample"}, "questions": 20}, True),
    (("--dataset", "squad-sample", "--offset", "15", "-n", "10"),
     {"dataset": {"source": "squad-sample"}, "offset": 15, "questions": 10}, False),
    (("--dataset", f"{OURS}/datasets/p.jsonl"), _s3(f"{OURS}/datasets/p.jsonl"), True),
    (("--dataset", f"{OURS}/datasets/sub/p.jsonl"),
     _s3(f"{OURS}/datasets/sub/p.jsonl"), True),
    (("--dataset", "s3://other-bucket/datasets/p.jsonl"),
     _s3("s3://other-bucket/datasets/p.jsonl"), False),
    (("--dataset", f"{OURS}/uploads/p.jsonl"), _s3(f"{OURS}/uploads/p.jsonl"), False),
    (("--dataset", f"{OURS}/datasets/../runs/p.jsonl"),
     _s3(f"{OURS}/datasets/../runs/p.jsonl"), False),
    (("--dataset", f"{OURS}/datasets//p.jsonl"), _s3(f"{OURS}/datasets//p.jsonl"), False),
    (("--dataset", f"{OURS}/datasets/./p.jsonl"), _s3(f"{OURS}/datasets/./p.jsonl"), False),
    (("--poll-seconds", "0"), {"poll_seconds": 0}, False),
    (("--poll-seconds", "5"), {"poll_seconds": 5}, False),  # 14,400 s judge limit: over the budget
    (("--poll-seconds", "6"), {"poll_seconds": 6}, True),
    (("--poll-seconds", "3601"), {"poll_seconds": 3601}, False),
]  # fmt: skip


@pytest.mark.parametrize(("args", "request_input", "accepted"), CASES)
def test_cli_and_lambda_agree(
    deployed: Deployed, args: tuple[str, ...], request_input: dict[str, Any], accepted: bool
) -> None:
    s3 = deployed.client("s3")
    for key in ("datasets/p.jsonl", "datasets/sub/p.jsonl"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"prompt": "x"}\n')
    settings = deployed.settings
    env = GenerateEnvironment(
        bucket=BUCKET,
        endpoint_a=settings.endpoint_name("A"),
        endpoint_b=settings.endpoint_name("B"),
        model_a=settings.model_a_id,
        model_b=settings.model_b_id,
        run_defaults=settings.run_defaults(),
        max_input_tokens=settings.max_input_tokens,
        judge_max_runtime_seconds=settings.judge_max_runtime_seconds,
    )
    try:
        build_run({"input": {"run_id": "same", **request_input}, "execution_name": "same"}, env)
        lambda_accepts = True
    except InvalidRunRequest:
        lambda_accepts = False

    result = CliRunner().invoke(app, ["start", "--run-id", "same", *args])
    cli_accepts = result.exit_code == 0
    assert result.exit_code in (0, 2), result.output
    assert (cli_accepts, lambda_accepts) == (accepted, accepted), result.output
    assert len(deployed.executions()) == (1 if accepted else 0)
