"""Small readers of synthesized CloudFormation templates, shared by the infra tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Resources of `resource_type`, by logical id."""
    return {k: v for k, v in template.get("Resources", {}).items() if v["Type"] == resource_type}


def one_of_type(template: dict[str, Any], resource_type: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    """The single resource of `resource_type` whose logical id starts with `prefix`."""
    found = {k: v for k, v in of_type(template, resource_type).items() if k.startswith(prefix)}
    assert len(found) == 1, f"expected one {resource_type} starting {prefix!r}, found {sorted(found)}"
    return next(iter(found.items()))


def mapping(template: dict[str, Any], prefix: str) -> tuple[str, dict[str, dict[str, str]]]:
    """The single Mappings entry whose logical id starts with `prefix`."""
    found = {k: v for k, v in template.get("Mappings", {}).items() if k.startswith(prefix)}
    assert len(found) == 1, f"expected one mapping starting {prefix!r}, found {sorted(found)}"
    return next(iter(found.items()))


def statements(policy_holder: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of every inline policy of an AWS::IAM::Role's properties."""
    for policy in policy_holder.get("Policies", []):
        stmts = policy["PolicyDocument"]["Statement"]
        yield from stmts if isinstance(stmts, list) else [stmts]


def find_key(node: Any, key: str) -> list[Any]:
    """Every value under `key` anywhere in a template (or part of one), depth first."""
    if isinstance(node, dict):
        found = [node[key]] if key in node else []
        return found + [x for v in node.values() for x in find_key(v, key)]
    if isinstance(node, list):
        return [x for v in node for x in find_key(v, key)]
    return []


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


Intrinsic = Callable[[Any], str]


def resolve_intrinsics(
    value: Any,
    *,
    ref: Intrinsic,
    get_att: Intrinsic,
    import_value: Intrinsic | None = None,
    find_in_map: Intrinsic | None = None,
) -> str:
    """A template string as text: `Fn::Join` joined part by part, every other intrinsic function
    handed to its callback (with the function's argument); one without a callback fails the test."""
    handlers = {
        "Ref": ref,
        "Fn::GetAtt": get_att,
        "Fn::ImportValue": import_value,
        "Fn::FindInMap": find_in_map,
    }

    def text(part: Any) -> str:
        if isinstance(part, str):
            return part
        if isinstance(part, dict) and len(part) == 1:
            ((fn, arg),) = part.items()
            if fn == "Fn::Join":
                return arg[0].join(text(p) for p in arg[1])
            handler = handlers.get(fn)
            if handler is not None:
                return handler(arg)
        raise AssertionError(f"unexpected template value {part!r}")

    return text(value)


def join_text(value: Any) -> str:
    """Render a string or `Fn::Join` as text, intrinsics shown as `{Ref:X}` / `{GetAtt:X.Y}` / `{Map:M}`."""
    return resolve_intrinsics(
        value,
        ref=lambda name: f"{{Ref:{name}}}",
        get_att=lambda attr: "{GetAtt:" + ".".join(attr) + "}",
        find_in_map=lambda args: f"{{Map:{args[0]}}}",
    )


def nag_violations(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(construct path, rule id) of every violation in a CDK validation report."""
    return [
        (construct["constructPath"], violation["ruleName"])
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


def evaluation_machines(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The evaluation state machine by logical id (not the teardown Provider's waiter, a CDK helper)."""
    return {
        k: v
        for k, v in of_type(template, "AWS::StepFunctions::StateMachine").items()
        if k.startswith("Evaluation")
    }
