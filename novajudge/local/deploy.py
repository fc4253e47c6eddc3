"""Deploy what we synthesize into the local emulator: the real templates, resolved like CloudFormation.

Why not a hand-written copy of the resources: the demo must exercise the state machine definition,
environment variables and names that users deploy, so a change to a stack shows up locally at once.
Bundling is skipped at synth (`aws:cdk:bundling-stacks: []`): handlers run from source through
`moto_patches`, found by each function's `novajudge:source` Metadata.

Resources are created through boto3 against the emulator, in dependency order. Types with no local
meaning are skipped (`SKIPPED_TYPES`, with the reason); `Ref`/`GetAtt` of a skipped resource yields a
`local-skipped-<stack>-<logical>` name (or an ARN around it), and a state machine whose definition
still holds one is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novajudge.local import moto_patches
from novajudge.local.cfn import Physical, ResolveError, Resolver, check_rules, creation_order, outputs
from novajudge.local.emulator import Emulator

#: Resource types that mean nothing in the emulator, and why they are safe to skip.
SKIPPED_TYPES: dict[str, str] = {
    "AWS::CDK::Metadata": "CDK's analytics metadata",
    "AWS::CloudFormation::CustomResource": "custom resources run provider Lambdas at deploy time",
    "Custom::S3AutoDeleteObjects": "empties the bucket on stack deletion; the emulator is discarded",
    "AWS::S3::BucketPolicy": "the emulator does not enforce resource policies",
    "AWS::Lambda::Permission": "the emulator does not enforce resource policies",
    "AWS::Logs::LogGroup": "logs of local handlers go to the demo's log file",
    "AWS::Logs::ResourcePolicy": "no CloudWatch Logs delivery locally",
    "AWS::SNS::Topic": "no notifications locally",
    "AWS::SNS::Subscription": "no notifications locally",
    "AWS::SNS::TopicPolicy": "no notifications locally",
    "AWS::CloudWatch::Alarm": "no metrics locally",
    "AWS::CloudWatch::Dashboard": "no metrics locally",
    "AWS::KMS::Key": "the emulator stores objects unencrypted",
    "AWS::KMS::Alias": "the emulator stores objects unencrypted",
    "AWS::SSM::Parameter": "not read by the pipeline at run time",
    "AWS::ApplicationAutoScaling::ScalableTarget": "no endpoint scaling locally",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "no endpoint scaling locally",
}
#: Lambda functions without `novajudge:source` Metadata are CDK helpers (custom resource providers).
HELPER_FUNCTION_REASON = "no novajudge:source Metadata: a CDK deploy-time helper, nothing to run locally"
#: Metadata the stacks put on other deploy-time helpers they know of (the teardown Provider's waiter
#: state machine, `stacks/constructs/teardown.py`): skipped like helper functions.
HELPER_MARKER = "novajudge:helper"
SKIP_MARKER = "local-skipped-"


class DeployError(RuntimeError):
    """A template could not be deployed into the emulator; the message names stack and resource."""


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: its CloudFormation name and template, in deployment order."""

    name: str
    template: dict[str, Any]


@dataclass
class Deployment:
    """What was deployed: outputs by stack, created and skipped resources, function sources."""

    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    exports: dict[str, Any] = field(default_factory=dict)
    created: list[tuple[str, str, str, str]] = field(default_factory=list)  # stack, logical, type, name
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)  # stack, logical, type, reason
    functions: dict[str, Path] = field(default_factory=dict)  # function name -> source dir
    endpoints: list[str] = field(default_factory=list)
    #: EventBridge rules: (name, event pattern, target ARNs); `novajudge.local.events` delivers to them.
    rules: list[tuple[str, dict[str, Any], list[str]]] = field(default_factory=list)

    def output(self, key: str) -> Any:
        """An output by key from whichever stack has it (keys are unique across our stacks)."""
        for values in self.outputs.values():
            if key in values:
                return values[key]
        raise KeyError(f"no stack has an output {key!r}; outputs: {self.outputs}")

    @property
    def unknown_types(self) -> list[str]:
        return sorted({t for _, _, t, reason in self.skipped if reason.startswith("not emulated")})


def project_root() -> Path:
    """The repository root (parent of `novajudge/`): `novajudge:source` paths are relative to it."""
    return Path(__file__).resolve().parents[2]


def synthesize(overrides: Mapping[str, Any] | None = None, outdir: str | None = None) -> list[StackTemplate]:
    """Synthesize the app in-process (bundling skipped) and return the stacks in dependency order.

    The context is what `cdk synth` would pass: `cdk.json`'s context, then `overrides` (like
    `-c key=value`). The project root goes on `sys.path` because `stacks/` is not an installed
    package (the `novajudge` console script does not run from the repository root).
    """
    import os
    import sys

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    root = project_root()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from stacks.app_builder import build_app

    cdk_json = root / "cdk.json"
    context = json.loads(cdk_json.read_text()).get("context", {}) if cdk_json.is_file() else {}
    context = {**context, "aws:cdk:bundling-stacks": [], **dict(overrides or {})}
    app = build_app(context=context, outdir=outdir)
    assembly = app.synth()
    by_id = {stack.id: stack for stack in assembly.stacks}
    ordered: list[StackTemplate] = []
    seen: set[str] = set()

    def visit(stack: Any) -> None:
        if stack.id in seen:
            return
        seen.add(stack.id)
        for dep in stack.dependencies:
            if dep.id in by_id:
                visit(by_id[dep.id])
        ordered.append(StackTemplate(stack.stack_name, stack.template))

    for stack in sorted(assembly.stacks, key=lambda s: s.id):
        visit(stack)
    return ordered


def placeholder_zip() -> bytes:
    """Lambda needs some code; ours comes from source via the patch, so this only says so."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README.txt", "novajudge local emulator: this function runs from its source folder\n")
    return buf.getvalue()


def _generated_name(stack: str, logical: str, max_len: int, lower: bool = False) -> str:
    """CloudFormation-like `<stack>-<logical>-<suffix>`, deterministic so runs are reproducible."""
    suffix = hashlib.sha256(f"{stack}/{logical}".encode()).hexdigest()[:12].upper()
    head = f"{stack}-{logical}"[: max_len - len(suffix) - 1]
    name = f"{head}-{suffix}"
    return name.lower() if lower else name


class _StackDeployer:
    def __init__(self, emu: Emulator, stack: StackTemplate, deployment: Deployment, root: Path) -> None:
        self.emu = emu
        self.stack = stack
        self.deployment = deployment
        self.root = root
        self.resolver = Resolver(
            template=stack.template,
            stack_name=stack.name,
            region=emu.region,
            account_id=emu.account_id,
            exports=deployment.exports,
        )
        self.arn_prefix = f"arn:{self.resolver.partition}"

    def props(self, logical: str) -> dict[str, Any]:
        res = self.stack.template["Resources"][logical]
        return self.resolver.resolve(res.get("Properties", {}), f"Resources.{logical}.Properties")

    def run(self) -> None:
        failed, skipped_rules = check_rules(self.resolver)
        if failed:
            raise DeployError(
                f"{self.stack.name}: template rules failed in {self.emu.region}: " + "; ".join(failed)
            )
        for rule in skipped_rules:
            self.deployment.skipped.append(
                (self.stack.name, rule, "Rule", "reads an SSM parameter (CDK bootstrap)")
            )
        resources = self.stack.template.get("Resources", {})
        for logical in creation_order(resources):
            res = resources[logical]
            rtype = res["Type"]
            if "Condition" in res and not self.resolver.condition(res["Condition"]):
                continue
            creator = getattr(self, "_" + rtype.replace("::", "_"), None)
            reason = SKIPPED_TYPES.get(rtype) or (
                SKIPPED_TYPES["AWS::CloudFormation::CustomResource"] if rtype.startswith("Custom::") else None
            )
            if rtype == "AWS::Lambda::Function" and "novajudge:source" not in res.get("Metadata", {}):
                reason = HELPER_FUNCTION_REASON
            if HELPER_MARKER in res.get("Metadata", {}):
                reason = (
                    f"{HELPER_MARKER} Metadata ({res['Metadata'][HELPER_MARKER]}): nothing to run locally"
                )
            if creator is None and reason is None:
                reason = "not emulated: unknown to novajudge.local.deploy"
            if reason is not None:
                skipped_name = f"{SKIP_MARKER}{self.stack.name}-{logical}"
                if rtype == "AWS::StepFunctions::StateMachine":  # its Ref is an ARN (IAM resources)
                    region, account = self.emu.region, self.emu.account_id
                    skipped_name = f"{self.arn_prefix}:states:{region}:{account}:stateMachine:{skipped_name}"
                self.resolver.physical[logical] = Physical(
                    skipped_name,
                    {"_service": rtype.split("::")[1].lower() if rtype.startswith("AWS::") else "custom"},
                    skipped=True,
                )
                self.deployment.skipped.append((self.stack.name, logical, rtype, reason))
                continue
            try:
                physical = creator(logical, res)
            except ResolveError as exc:
                raise DeployError(f"{self.stack.name}/{logical} ({rtype}): {exc}") from exc
            except Exception as exc:
                raise DeployError(
                    f"{self.stack.name}/{logical} ({rtype}): {type(exc).__name__}: {exc}"
                ) from exc
            self.resolver.physical[logical] = physical
            self.deployment.created.append((self.stack.name, logical, rtype, physical.ref))
        values, exports = outputs(self.resolver)
        self.deployment.outputs[self.stack.name] = values
        self.deployment.exports.update(exports)

    # -- S3 -----------------------------------------------------------------------------------------

    def _AWS_S3_Bucket(self, logical: str, res: dict[str, Any]) -> Physical:
        props = self.props(logical)
        name = props.get("BucketName") or _generated_name(self.stack.name, logical, 63, lower=True)
        self.emu.client("s3").create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            self.emu.client("s3").put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        arn = f"{self.arn_prefix}:s3:::{name}"
        suffix = self.resolver.url_suffix
        return Physical(
            name,
            {
                "Arn": arn,
                "DomainName": f"{name}.s3.{suffix}",
                "RegionalDomainName": f"{name}.s3.{self.emu.region}.{suffix}",
                "DualStackDomainName": f"{name}.s3.dualstack.{self.emu.region}.{suffix}",
                "WebsiteURL": f"http://{name}.s3-website-{self.emu.region}.{suffix}",
            },
        )

    # -- IAM ----------------------------------------------------------------------------------------

    def _AWS_IAM_Role(self, logical: str, res: dict[str, Any]) -> Physical:
        props = self.props(logical)
        name = props.get("RoleName") or _generated_name(self.stack.name, logical, 64)
        iam = self.emu.client("iam")
        role = iam.create_role(
            RoleName=name,
            Path=props.get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
            Description=props.get("Description", ""),
        )["Role"]
        for policy in props.get("Policies", []):
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps(policy["PolicyDocument"]),
            )
        for arn in props.get("ManagedPolicyArns", []):
            try:
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            except iam.exceptions.NoSuchEntityException:
                # moto knows most AWS managed policies; an unknown one has no effect locally anyway.
                self.deployment.skipped.append(
                    (
                        self.stack.name,
                        f"{logical}:{arn}",
                        "ManagedPolicyAttachment",
                        "managed policy unknown to the emulator",
                    )
                )
        return Physical(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _AWS_IAM_Policy(self, logical: str, res: dict[str, Any]) -> Physical:
        props = self.props(logical)
        name = props.get("PolicyName") or logical
        for role in props.get("Roles", []):
            self.emu.client("iam").put_role_policy(
                RoleName=role, PolicyName=name, PolicyDocument=json.dumps(props["PolicyDocument"])
            )
        return Physical(name, {"Id": name})

    def _AWS_IAM_ManagedPolicy(self, logical: str, res: dict[str, Any]) -> Physical:
        props = self.props(logical)
        iam = self.emu.client("iam")
        name = props.get("ManagedPolicyName") or _generated_name(self.stack.name, logical, 128)
        arn = iam.create_policy(
            PolicyName=name, Path=props.get("Path", "/"), PolicyDocument=json.dumps(props["PolicyDocument"])
        )["Policy"]["Arn"]
        for role in props.get("Roles", []):
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        return Physical(arn, {"PolicyArn": arn})

    # -- Lambda -------------------------------------------------------------------------------------

    def _AWS_Lambda_Function(self, logical: str, res: dict[str, Any]) -> Physical:
        props = self.props(logical)
        name = props.get("FunctionName") or _generated_name(self.stack.name, logical, 64)
        source = self.root / res["Metadata"]["novajudge:source"]
        handler = props.get("Handler", "handler.handler")
        if not (source / (handler.rpartition(".")[0].replace(".", "/") + ".py")).is_file():
            raise DeployError(f"{self.stack.name}/{logical}: handler {handler!r} not found under {source}")
        env = dict(props.get("Environment", {}).get("Variables", {}))
        env["NOVAJUDGE_STAND_IN"] = "1"  # design.md: set only by the local emulator
        created = self.emu.client("lambda").create_function(
            FunctionName=name,
            Runtime=props.get("Runtime", "python3.12"),
            Role=props["Role"],
            Handler=handler,
            Code={"ZipFile": placeholder_zip()},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
            Environment={"Variables": {k: str(v) for k, v in env.items()}},
            Description=props.get("Description", ""),
        )
        moto_patches.registry.functions[name] = moto_patches.LambdaSource(source, handler)
        self.deployment.functions[name] = source
        return Physical(name, {"Arn": created["FunctionArn"]})

    # -- SageMaker ----------------------------------------------------------------------------------

    def _AWS_SageMaker_Model(self, logical: str, res: dict[str, Any]) -> Physical:
        props = self.props(logical)
        name = props.get("ModelName") or _generated_name(self.stack.name, logical, 63)
        kwargs: dict[str, Any] = {"ModelName": name, "ExecutionRoleArn": props["ExecutionRoleArn"]}
        for key in ("PrimaryContainer", "Containers", "VpcConfig", "EnableNetworkIsolation"):
            if key in props:
                kwargs[key] = props[key]
        arn = self.emu.client("sagemaker").create_model(**kwargs)["ModelArn"]
        return Physical(arn, {"ModelName": name})

    def _AWS_SageMaker_EndpointConfig(self, logical: str, res: dict[str, Any]) -> Physical:
        props = self.props(logical)
        name = props.get("EndpointConfigName") or _generated_name(self.stack.name, logical, 63)
        variants = [
            {
                k: v
                for k, v in variant.items()
                if k
                in {
                    "VariantName",
                    "ModelName",
                    "InitialInstanceCount",
                    "InstanceType",
                    "InitialVariantWeight",
                    "ContainerStartupHealthCheckTimeoutInSeconds",
                    "ServerlessConfig",
                    "RoutingConfig",
                    "ModelDataDownloadTimeoutInSeconds",
                    "VolumeSizeInGB",
                }
            }
            for variant in props["ProductionVariants"]
        ]
        arn = self.emu.client("sagemaker").create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=variants
        )["EndpointConfigArn"]
        return Physical(arn, {"EndpointConfigName": name})

    def _AWS_SageMaker_Endpoint(self, logical: str, res: dict[str, Any]) -> Physical:
        props = self.props(logical)
        name = props.get("EndpointName") or _generated_name(self.stack.name, logical, 63)
        arn = self.emu.client("sagemaker").create_endpoint(
            EndpointName=name, EndpointConfigName=props["EndpointConfigName"]
        )["EndpointArn"]
        self.deployment.endpoints.append(name)
        return Physical(arn, {"EndpointName": name})

    # -- EventBridge ---------------------------------------------------------------------------------

    def _AWS_Events_Rule(self, logical: str, res: dict[str, Any]) -> Physical:
        """Created in moto's EventBridge too; Step Functions in moto emits no status-change events,
        so `novajudge.local.events.deliver_status_change` matches and delivers them."""
        props = self.props(logical)
        name = props.get("Name") or _generated_name(self.stack.name, logical, 64)
        pattern = props.get("EventPattern") or {}
        events = self.emu.client("events")
        arn = events.put_rule(
            Name=name, EventPattern=json.dumps(pattern), State=props.get("State", "ENABLED")
        )["RuleArn"]
        target_arns = [str(t["Arn"]) for t in props.get("Targets", [])]
        if target_arns:
            events.put_targets(
                Rule=name, Targets=[{"Id": str(t["Id"]), "Arn": str(t["Arn"])} for t in props["Targets"]]
            )
        self.deployment.rules.append((name, pattern, target_arns))
        return Physical(name, {"Arn": arn})

    # -- Step Functions -----------------------------------------------------------------------------

    def _AWS_StepFunctions_StateMachine(self, logical: str, res: dict[str, Any]) -> Physical:
        props = self.props(logical)
        name = props.get("StateMachineName") or _generated_name(self.stack.name, logical, 80)
        if "Definition" in props:
            definition = json.dumps(props["Definition"])
        elif "DefinitionString" in props:
            definition = props["DefinitionString"]
        else:
            raise DeployError(f"{self.stack.name}/{logical}: DefinitionS3Location is not supported locally")
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        if SKIP_MARKER in definition:
            start = definition.index(SKIP_MARKER)
            raise DeployError(
                f"{self.stack.name}/{logical}: the definition refers to a skipped resource "
                f"({definition[start : start + 80]!r}); see novajudge.local.deploy.SKIPPED_TYPES"
            )
        json.loads(definition)  # fail here, not in the interpreter, if resolution broke the JSON
        kwargs: dict[str, Any] = {"name": name, "definition": definition, "roleArn": props["RoleArn"]}
        if props.get("StateMachineType"):
            kwargs["type"] = props["StateMachineType"]
        arn = self.emu.client("stepfunctions").create_state_machine(**kwargs)["stateMachineArn"]
        return Physical(arn, {"Arn": arn, "Name": name, "StateMachineRevisionId": "local"})


def deploy(emu: Emulator, stacks: list[StackTemplate], root: Path | None = None) -> Deployment:
    """Create every stack's resources in the emulator, in order; returns outputs and what was skipped."""
    deployment = Deployment()
    for stack in stacks:
        _StackDeployer(emu, stack, deployment, root or project_root()).run()
    return deployment
