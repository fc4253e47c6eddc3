"""EventBridge delivery of Step Functions status changes, which moto's interpreter does not emit.

Why: the cleanup function runs when an execution fails, times out or is aborted, through an
EventBridge rule (stacks/pipeline_stack.py). moto 5.2.5 records the rule but its Step Functions
never publishes "Step Functions Execution Status Change" events, so the emulator does what
EventBridge would: build the event AWS documents for the execution's end
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html), match it against each
deployed rule's pattern, and invoke the Lambda targets with it (the real handler, in-process).
A stand-in for the delivery, not for the rule: the pattern and the targets are the template's.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from novajudge.local.deploy import Deployment
from novajudge.local.emulator import Emulator


def status_change_event(emu: Emulator, execution: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge event of an execution's status, from its DescribeExecution answer."""

    def millis(value: Any) -> int | None:
        return int(value.timestamp() * 1000) if isinstance(value, datetime) else None

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": emu.account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": emu.region,
        "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "startDate": millis(execution.get("startDate")),
            "stopDate": millis(execution.get("stopDate")),
            "input": execution.get("input"),
            "output": execution.get("output"),
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        },
    }


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge matching for the pattern forms the stacks use: nested objects of value lists."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(
            key in event and matches(sub, event[key]) for key, sub in pattern.items()
        )
    if isinstance(pattern, list):
        return event in pattern
    return bool(pattern == event)


def deliver_status_change(emu: Emulator, deployment: Deployment, execution_arn: str) -> list[Any]:
    """Deliver the end of `execution_arn` to every matching rule's Lambda targets; their answers."""
    execution = emu.client("stepfunctions").describe_execution(executionArn=execution_arn)
    event = status_change_event(emu, execution)
    answers: list[Any] = []
    lam = emu.client("lambda")
    for _name, pattern, target_arns in deployment.rules:
        if not matches(pattern, event):
            continue
        for arn in target_arns:
            if ":function:" not in arn:
                continue
            response = lam.invoke(FunctionName=arn, Payload=json.dumps(event).encode())
            payload = json.loads(response["Payload"].read() or b"null")
            answers.append({"function_error": response.get("FunctionError"), "payload": payload})
    return answers
