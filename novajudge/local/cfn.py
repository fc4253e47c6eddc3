"""A small resolver of CloudFormation intrinsics over a synthesized template.

Why: the emulator deploys exactly what `cdk synth` produced (no hand-written copy of the
resources), so every property value has to be resolved the way CloudFormation would: references to
resources created earlier, pseudo parameters, mappings, conditions and imports from stacks deployed
before. Only what CDK emits for this project is supported; anything else raises `ResolveError`
naming the function and the path, so a new construct fails loudly rather than deploying garbage.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Returned for `Ref: AWS::NoValue`; removed from the enclosing dict or list.
NO_VALUE = object()

_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


class ResolveError(ValueError):
    """An intrinsic could not be resolved; the message names the path in the template."""


@dataclass
class Physical:
    """A created (or deliberately skipped) resource: what `Ref` and `Fn::GetAtt` return."""

    ref: str
    attrs: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False


@dataclass
class Resolver:
    """Resolves values of one template; `physical` grows as the deployer creates resources."""

    template: Mapping[str, Any]
    stack_name: str
    region: str
    account_id: str
    exports: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    physical: dict[str, Physical] = field(default_factory=dict)

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        return "aws-us-gov" if self.region.startswith("us-gov-") else "aws"

    @property
    def url_suffix(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"

    def pseudo(self, name: str) -> Any:
        values = {
            "AWS::Partition": self.partition,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:"
            f"stack/{self.stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise ResolveError(f"unknown pseudo parameter {name}")
        return values[name]

    # -- resolution ---------------------------------------------------------------------------------

    def resolve(self, value: Any, path: str = "$") -> Any:
        """Resolve every intrinsic in `value` (recursively); plain values come back unchanged."""
        if isinstance(value, list):
            items = [self.resolve(v, f"{path}[{i}]") for i, v in enumerate(value)]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._intrinsic(key, arg, path)
        out = {}
        for key, item in value.items():
            resolved = self.resolve(item, f"{path}.{key}")
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def _intrinsic(self, fn: str, arg: Any, path: str) -> Any:
        where = f"{fn} at {path} in {self.stack_name}"
        if fn == "Ref":
            return self._ref(arg, where)
        if fn == "Fn::GetAtt":
            logical, attr = (
                arg.split(".", 1) if isinstance(arg, str) else (arg[0], self.resolve(arg[1], path))
            )
            return self._get_att(logical, attr, where)
        if fn == "Fn::Join":
            delim, items = arg
            parts = self.resolve(items, path)
            return self.resolve(delim, path).join(_text(p, where) for p in parts)
        if fn == "Fn::Sub":
            return self._sub(arg, path, where)
        if fn == "Fn::Select":
            index, items = self.resolve(arg[0], path), self.resolve(arg[1], path)
            try:
                return items[int(index)]
            except (IndexError, ValueError, TypeError) as exc:
                raise ResolveError(f"{where}: cannot select {index!r} of {items!r}") from exc
        if fn == "Fn::Split":
            delim, text = self.resolve(arg[0], path), self.resolve(arg[1], path)
            return _text(text, where).split(delim)
        if fn == "Fn::ImportValue":
            name = self.resolve(arg, path)
            if name not in self.exports:
                raise ResolveError(f"{where}: no stack exports {name!r} (deploy its stack first)")
            return self.exports[name]
        if fn == "Fn::FindInMap":
            return self._find_in_map(arg, path, where)
        if fn == "Fn::If":
            cond, when_true, when_false = arg
            return self.resolve(when_true if self.condition(cond) else when_false, path)
        if fn == "Condition":
            return self.condition(arg)
        if fn in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not"):
            return self._condition_expr({fn: arg}, path)
        if fn == "Fn::Base64":
            return base64.b64encode(_text(self.resolve(arg, path), where).encode()).decode()
        if fn == "Fn::GetAZs":
            return [f"{self.region}{s}" for s in "abc"]
        if fn == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg, path), separators=(",", ":"))
        raise ResolveError(f"{where}: intrinsic function not supported by the local emulator")

    def _ref(self, name: str, where: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        params = self.template.get("Parameters", {})
        if name in params:
            if name in self.parameters:
                return self.parameters[name]
            if "Default" in params[name]:
                return params[name]["Default"]
            raise ResolveError(f"{where}: parameter {name} has no value and no default")
        return self._physical(name, where).ref

    def _get_att(self, logical: str, attr: str, where: str) -> Any:
        phys = self._physical(logical, where)
        if phys.skipped:
            # A well-formed ARN naming the skipped resource, so IAM policies stay valid documents.
            service = phys.attrs.get("_service", "local")
            return f"arn:{self.partition}:{service}:{self.region}:{self.account_id}:{phys.ref}"
        if attr not in phys.attrs:
            raise ResolveError(f"{where}: {logical} has no attribute {attr} locally ({sorted(phys.attrs)})")
        return phys.attrs[attr]

    def _physical(self, logical: str, where: str) -> Physical:
        if logical not in self.physical:
            if logical in self.template.get("Resources", {}):
                raise ResolveError(f"{where}: {logical} is not created yet (dependency order)")
            raise ResolveError(f"{where}: no resource or parameter named {logical}")
        return self.physical[logical]

    def _sub(self, arg: Any, path: str, where: str) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1], path))

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name], where)
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                return _text(self._get_att(logical, attr, where), where)
            return _text(self._ref(name, where), where)

        return _SUB_VAR.sub(repl, text)

    def _find_in_map(self, arg: list[Any], path: str, where: str) -> Any:
        name, top, second = (self.resolve(a, path) for a in arg[:3])
        default = arg[3].get("DefaultValue") if len(arg) > 3 and isinstance(arg[3], dict) else None
        try:
            return self.template["Mappings"][name][top][second]
        except KeyError as exc:
            if default is not None:
                return self.resolve(default, path)
            raise ResolveError(f"{where}: mapping {name} has no [{top}][{second}]") from exc

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise ResolveError(f"no condition named {name} in {self.stack_name}")
        return bool(self._condition_expr(conditions[name], f"Conditions.{name}"))

    def _condition_expr(self, expr: Any, path: str) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, arg),) = expr.items()
            if fn == "Fn::Equals":
                left, right = (self.resolve(a, path) for a in arg)
                return left == right
            if fn == "Fn::And":
                return all(self._condition_expr(a, path) for a in arg)
            if fn == "Fn::Or":
                return any(self._condition_expr(a, path) for a in arg)
            if fn == "Fn::Not":
                return not self._condition_expr(arg[0], path)
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Contains":  # Rules only
                values, value = (self.resolve(a, path) for a in arg)
                return value in values
        return self.resolve(expr, path)


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ResolveError(f"{where}: expected a string, got {value!r}")


# -- dependency order ------------------------------------------------------------------------------


def references(value: Any) -> set[str]:
    """Logical ids a value refers to (Ref, Fn::GetAtt, ${X} and ${X.Attr} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg.split(".", 1)[0] if isinstance(arg, str) else arg[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                local = set() if isinstance(arg, str) else set(arg[1])
                for var in _SUB_VAR.findall(text):
                    if not var.startswith("!") and var not in local:
                        found.add(var.split(".", 1)[0])
                if not isinstance(arg, str):
                    found |= references(arg[1])
            else:
                found |= references(arg)
    return {name for name in found if not name.startswith("AWS::")}


def creation_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids so that each comes after what it references or DependsOn (stable, by name)."""
    deps: dict[str, set[str]] = {}
    for logical, res in resources.items():
        depends_on = res.get("DependsOn", [])
        depends = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        deps[logical] = (references(res.get("Properties", {})) | depends) & set(resources)
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(resources):
        ready = sorted(name for name in resources if name not in done and deps[name] <= done)
        if not ready:
            cycle = sorted(set(resources) - done)
            raise ResolveError(f"circular references between {', '.join(cycle)}")
        order.extend(ready)
        done.update(ready)
    return order


def check_rules(resolver: Resolver) -> tuple[list[str], list[str]]:
    """Evaluate the template's Rules like CloudFormation before creating anything.

    Returns (failed assertion descriptions, rules skipped). A rule reading an SSM-typed parameter
    (CDK's `CheckBootstrapVersion`) is skipped: there is no bootstrap stack in the emulator.
    """
    params = resolver.template.get("Parameters", {})
    ssm_params = {n for n, p in params.items() if str(p.get("Type", "")).startswith("AWS::SSM::Parameter")}
    failed: list[str] = []
    skipped: list[str] = []
    for name, rule in resolver.template.get("Rules", {}).items():
        if references(rule) & ssm_params:
            skipped.append(name)
            continue
        path = f"Rules.{name}"
        if "RuleCondition" in rule and not resolver._condition_expr(rule["RuleCondition"], path):
            continue
        for assertion in rule.get("Assertions", []):
            if not resolver._condition_expr(assertion["Assert"], path):
                failed.append(f"{name}: {assertion.get('AssertDescription', 'assertion failed')}")
    return failed, skipped


def outputs(resolver: Resolver, names: Iterable[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stack's Outputs (by key) and Exports (by export name), resolved."""
    values: dict[str, Any] = {}
    exports: dict[str, Any] = {}
    for key, out in resolver.template.get("Outputs", {}).items():
        if names is not None and key not in names:
            continue
        if "Condition" in out and not resolver.condition(out["Condition"]):
            continue
        value = resolver.resolve(out["Value"], f"Outputs.{key}")
        values[key] = value
        if "Export" in out:
            exports[resolver.resolve(out["Export"]["Name"], f"Outputs.{key}.Export")] = value
    return values, exports
