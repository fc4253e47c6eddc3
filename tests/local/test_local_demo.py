"""The demo's own pieces: run ids, the execution input contract, the state table, output routing."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime

from novajudge.local.demo import (
    DemoOptions,
    ExecutionView,
    _ThreadRouter,
    execution_input,
    main_path,
)
from novajudge.ops.runs import new_run_id
from novajudge.run_request import RUN_ID_PATTERN, parse_run_request

DEFINITION = {
    "StartAt": "Gen",
    "States": {
        "Gen": {
            "Type": "Task",
            "Next": "Wait",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "GenFailed"}],
        },
        "Wait": {"Type": "Wait", "SecondsPath": "$.p", "Next": "Check"},
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.s", "StringEquals": "ok", "Next": "Done"}],
            "Default": "Wait",
        },
        "Done": {"Type": "Pass", "End": True},
        "GenFailed": {"Type": "Fail"},
    },
}


def test_default_run_ids_are_valid_and_distinct() -> None:
    a = new_run_id(datetime(2026, 11, 23, 9, 50, 1, 123000, tzinfo=UTC), prefix="demo")
    b = new_run_id(datetime(2026, 11, 23, 9, 50, 1, 124000, tzinfo=UTC), prefix="demo")
    assert a == "demo-20261123-095001-123" and a != b
    assert RUN_ID_PATTERN.match(a)
    # the operating commands' own ids: same rule, their prefix
    assert new_run_id(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)) == "run-20260102-030405-006"


def test_execution_input_is_accepted_by_the_real_request_parser() -> None:
    payload = execution_input(DemoOptions(questions=3, judge="binary", poll_seconds=1), "demo-x")
    request = parse_run_request(payload, execution_name="demo-x")
    assert (request.run_id, request.questions, request.poll_seconds) == ("demo-x", 3, 1)
    assert request.dataset.source == "squad-sample" and request.judge.variant == "binary"


def test_main_path_and_view() -> None:
    assert main_path(DEFINITION) == ["Gen", "Wait", "Check", "Done"]
    view = ExecutionView(main_path(DEFINITION))
    now = datetime.now(UTC)

    def entered(kind: str, name: str) -> dict:
        return {"type": f"{kind}StateEntered", "timestamp": now, "stateEnteredEventDetails": {"name": name}}

    def exited(kind: str, name: str) -> dict:
        return {"type": f"{kind}StateExited", "timestamp": now, "stateExitedEventDetails": {"name": name}}

    events = [
        entered("Task", "Gen"),
        {
            "type": "LambdaFunctionFailed",
            "timestamp": now,
            "lambdaFunctionFailedEventDetails": {"error": "GenerationFailed"},
        },
        exited("Task", "Gen"),
        entered("Fail", "GenFailed"),
    ]
    view.update(events)
    assert view.rows["Gen"].status == "error caught" and view.rows["Gen"].note == "GenerationFailed"
    assert view.failed_state == "GenFailed" and view.rows["Wait"].status == "pending"
    assert view.table("t").row_count == 5


def test_router_keeps_main_thread_output_and_diverts_the_rest() -> None:
    terminal, log = io.StringIO(), io.StringIO()
    router = _ThreadRouter(terminal, log)
    router.write("main\n")
    worker = threading.Thread(target=lambda: router.write("worker\n"))
    worker.start()
    worker.join()
    assert terminal.getvalue() == "main\n" and log.getvalue() == "worker\n"
