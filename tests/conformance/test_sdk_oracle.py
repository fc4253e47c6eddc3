"""The SageMaker Python SDK as the oracle of our `create_training_job` request.

The AWS notebooks start the Nova judge with the SDK: `PyTorch(training_recipe=<official recipe>,
recipe_overrides=..., image_uri=..., role=..., instance_type=..., output_path=...)` then
`fit(inputs={"train": ...}, wait=False)`. Here the SDK does exactly that against a Session whose
SageMaker client is a stub recording the CreateTrainingJob request, with fake credentials and every
socket connection refused (and recorded), so nothing reaches AWS or the network. The recipe is a
local file written from the official recipe (official_sources.py), so the SDK never looks up or
clones the recipe repository.

Our request (`novajudge.steps.start_judge.plan_judge_job`, what the start_judge Lambda sends with boto3)
must equal the SDK's on every field that matters. The few deliberate differences are listed in
`DELIBERATE`, with their reasons, and each one is itself checked; the negative controls show that
changing any other field of ours makes the comparison fail.
"""

from __future__ import annotations

import copy
import posixpath
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import official_sources as src
import pytest
import yaml
from fake_aws import fake_credentials

from novajudge.judge.job import JudgePlan
from novajudge.run_request import RunState
from novajudge.steps.environment import StartJudgeEnvironment
from novajudge.steps.start_judge import plan_judge_job

pytestmark = pytest.mark.filterwarnings("ignore:register_new_resolver:UserWarning")

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/NovaJudge-Storage-JudgeRole"
BUCKET = "novajudge-oracle-bucket"
SDK_BUCKET = "sdk-default-bucket"
#: One run per official recipe: (variant, model, instance type). The instance types are the ones the
#: sources name for each (p5 for the rubric judge and Nova Pro, the samples' g5 for Micro/Lite).
CASES = {
    ("rubric", "nova-lite-2"): "ml.p5.48xlarge",
    ("binary", "nova-micro"): "ml.g5.12xlarge",
    ("binary", "nova-lite"): "ml.g6.12xlarge",
    ("binary", "nova-pro"): "ml.p5.48xlarge",
}
MAX_RUNTIME = 14400
RECIPE_DIR = "/opt/ml/input/data/recipe"

#: Where our request deliberately differs from the SDK's, and why. Each is checked in `compare`.
DELIBERATE = {
    "StoppingCondition.MaxRuntimeInSeconds": (
        "ours is judge_max_runtime_seconds (default 14,400 s) instead of the SDK's 24 h default, "
        "so a stuck job stops billing after 4 hours"
    ),
    "InputDataConfig[recipe].S3Uri": (
        "the recipe lives under the run's own prefix (runs/<id>/recipe/), not in the SDK's default "
        "bucket under a dated key, so everything of a run is in one place"
    ),
    "HyperParameters.sagemaker_recipe_local_path (file name)": (
        "ours is <variant>_judge.yaml, fixed, so a retried start_judge uploads the same object; the "
        "SDK appends a random suffix to the recipe's name. The folder is the same."
    ),
    "InputDataConfig[*].InputMode": (
        "ours states File on every channel; the SDK leaves it out on `train`, which then inherits "
        "AlgorithmSpecification.TrainingInputMode (File): the same mode"
    ),
}


@dataclass(frozen=True)
class SdkJob:
    request: dict[str, Any]
    uploaded_recipe: dict[str, Any]
    uploaded_key_prefix: str
    recipe_stem: str


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Any]]:
    """Fake credentials and region; every socket connect refused and recorded."""
    attempts: list[Any] = []

    def refuse(_sock: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError(f"network access in an offline test: {address}")

    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            **fake_credentials(REGION),
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            "HOME": str(tmp_path_factory.mktemp("home")),  # no ~/.aws or ~/.config/sagemaker is read
        }.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            mp.delenv(name, raising=False)
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        yield attempts


def _official_image(variant: str) -> str:
    tag = src.FORGE_IMAGE_TAG["nova_2" if variant == "rubric" else "nova_1"]
    return f"{src.FORGE_IMAGE_ACCOUNTS[REGION]}.dkr.ecr.{REGION}.amazonaws.com/{src.EVAL_REPOSITORY}:{tag}"


def _our_plan(variant: str, model: str, instance_type: str) -> JudgePlan:
    run = RunState.model_validate(
        {
            "run_id": "exp-042",
            "judge": {"variant": variant, "instance_type": instance_type},
            "bucket": BUCKET,
            "created_at": "2026-11-23T09:58:12Z",
            "model_a": "Qwen/Qwen2.5-1.5B-Instruct",
            "model_b": "Qwen/Qwen2.5-7B-Instruct",
            "endpoint_a": "novajudge-model-a",
            "endpoint_b": "novajudge-model-b",
        }
    )
    env = StartJudgeEnvironment(
        role_arn=ROLE_ARN,
        region=REGION,
        instance_types={"rubric": None, "binary": None},
        binary_model=model if variant == "binary" else "nova-micro",
        max_runtime_seconds=MAX_RUNTIME,
    )
    return plan_judge_job(run, env)


@pytest.fixture(scope="module")
def plans() -> dict[tuple[str, str], JudgePlan]:
    return {case: _our_plan(*case, instance_type) for case, instance_type in CASES.items()}


@pytest.fixture(scope="module")
def sdk_jobs(
    offline: list[Any], plans: dict[tuple[str, str], JudgePlan], tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], SdkJob]:
    """Each case started the notebooks' way through the real SDK, recorded by a stub client."""
    import boto3
    import sagemaker.telemetry.telemetry_logging as telemetry
    from sagemaker.pytorch import PyTorch
    from sagemaker.session import Session

    class StubSageMaker:
        def __init__(self) -> None:
            self.sent: list[dict[str, Any]] = []

        def create_training_job(self, **request: Any) -> dict[str, Any]:
            self.sent.append(request)
            return {"TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/x"}

    class RecordingSession(Session):
        """Uploads are recorded instead of sent; the default bucket is fixed (no STS call)."""

        client_type = StubSageMaker

        def __init__(self, client: StubSageMaker) -> None:
            self.uploads: list[tuple[str, str, str]] = []
            super().__init__(boto_session=boto3.Session(region_name=REGION), sagemaker_client=client)

        def default_bucket(self) -> str:
            return SDK_BUCKET

        def upload_data(
            self, path: str, bucket: str | None = None, key_prefix: str = "data", **_: Any
        ) -> str:
            self.uploads.append((Path(path).read_text(), bucket or SDK_BUCKET, key_prefix))
            return f"s3://{bucket}/{key_prefix}/{posixpath.basename(path)}"

    # `fit` would send a telemetry GET (after an STS call) to AWS; record it instead. Opting out through
    # an SDK config file works too but makes every config lookup re-validate it (~10 s per job).
    telemetry_calls: list[Any] = []
    folder = tmp_path_factory.mktemp("official-recipes")
    jobs: dict[tuple[str, str], SdkJob] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(telemetry, "_send_telemetry_request", lambda *args, **kw: telemetry_calls.append(args))
        for case, instance_type in CASES.items():
            jobs[case] = _start_with_sdk(case, instance_type, plans[case], folder, PyTorch, RecordingSession)
    assert len(telemetry_calls) == len(CASES)  # the patch was in the path fit() really takes
    assert offline == [], f"the SDK tried to reach the network: {offline}"
    return jobs


def _start_with_sdk(
    case: tuple[str, str], instance_type: str, plan: JudgePlan, folder: Path, pytorch: Any, session_type: Any
) -> SdkJob:
    """What a notebook does: the official recipe, the run name as an override, then fit(wait=False)."""
    variant, _model = case
    url, official = src.OFFICIAL_RECIPES[case]
    stem = posixpath.basename(url).removesuffix(".yaml")
    recipe_path = folder / f"{stem}.yaml"
    recipe_path.write_text(yaml.safe_dump(official))
    train = next(c for c in plan.request["InputDataConfig"] if c["ChannelName"] == "train")
    client = session_type.client_type()
    session = session_type(client)
    estimator = pytorch(
        training_recipe=str(recipe_path),
        recipe_overrides={"run": {"name": plan.job_name}},
        image_uri=_official_image(variant),
        role=ROLE_ARN,
        instance_type=instance_type,
        output_path=plan.request["OutputDataConfig"]["S3OutputPath"],
        sagemaker_session=session,
    )
    estimator.fit(
        inputs={"train": train["DataSource"]["S3DataSource"]["S3Uri"]}, wait=False, job_name=plan.job_name
    )
    ((text, _bucket, key_prefix),) = session.uploads
    (request,) = client.sent
    return SdkJob(request, yaml.safe_load(text), key_prefix, stem)


# -- the comparison --------------------------------------------------------------------------------------


def _channels(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    mode = request["AlgorithmSpecification"]["TrainingInputMode"]
    channels = {}
    for channel in request.get("InputDataConfig", []):
        normal = copy.deepcopy(channel)
        normal.setdefault("InputMode", mode)  # what the API does with a channel that names none
        channels[normal.pop("ChannelName")] = normal
    return channels


def _diff(ours: Any, theirs: Any, path: str = "") -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        for key in sorted(set(ours) | set(theirs)):
            if key not in ours or key not in theirs:
                found.append(f"{path}{key}: only in {'ours' if key in ours else 'the SDK'}")
            else:
                found += _diff(ours[key], theirs[key], f"{path}{key}.")
        return found
    return [] if ours == theirs else [f"{path.rstrip('.')}: ours {ours!r}, SDK {theirs!r}"]


def compare(ours: dict[str, Any], sdk: SdkJob, *, run_prefix: str) -> list[str]:
    """Every difference between our request and the SDK's, except the checked deliberate ones."""
    ours, theirs = copy.deepcopy(ours), copy.deepcopy(sdk.request)
    problems: list[str] = []
    # Deliberate: max runtime (ours configured, the SDK's default).
    if ours.get("StoppingCondition", {}).get("MaxRuntimeInSeconds") != MAX_RUNTIME:
        problems.append("StoppingCondition.MaxRuntimeInSeconds: not the configured runtime")
    if theirs.get("StoppingCondition", {}).get("MaxRuntimeInSeconds") != src.SDK_DEFAULT_MAX_RUN_SECONDS:
        problems.append("StoppingCondition.MaxRuntimeInSeconds: the SDK default moved")
    for request in (ours, theirs):
        request.get("StoppingCondition", {}).pop("MaxRuntimeInSeconds", None)
    # Deliberate: the recipe's file name; the folder (the recipe channel's mount) must agree.
    ours_path = ours.get("HyperParameters", {}).pop("sagemaker_recipe_local_path", "")
    sdk_path = theirs.get("HyperParameters", {}).pop("sagemaker_recipe_local_path", "")
    if posixpath.dirname(ours_path) != RECIPE_DIR or posixpath.dirname(sdk_path) != RECIPE_DIR:
        problems.append(f"sagemaker_recipe_local_path folder: ours {ours_path!r}, SDK {sdk_path!r}")
    if not re.fullmatch(rf"{re.escape(sdk.recipe_stem)}_\w+\.yaml", posixpath.basename(sdk_path)):
        problems.append(f"sagemaker_recipe_local_path: unexpected SDK file name {sdk_path!r}")
    if not re.fullmatch(r"(rubric|binary)_judge\.yaml", posixpath.basename(ours_path)):
        problems.append(f"sagemaker_recipe_local_path: unexpected file name {ours_path!r}")
    # Channels by name, InputMode normalised; the recipe channel's location is ours by design.
    our_channels, sdk_channels = _channels(ours), _channels(theirs)
    for channels, expected in (
        (our_channels, f"{run_prefix}recipe/"),
        (sdk_channels, f"s3://{SDK_BUCKET}/{sdk.uploaded_key_prefix}"),
    ):
        source = channels.get("recipe", {}).get("DataSource", {}).get("S3DataSource", {})
        if source.pop("S3Uri", None) != expected:
            problems.append(f"InputDataConfig[recipe].S3Uri: expected {expected}")
    ours.pop("InputDataConfig", None)
    theirs.pop("InputDataConfig", None)
    problems += _diff(our_channels, sdk_channels, "InputDataConfig.")
    problems += _diff(ours, theirs)
    return problems


@pytest.mark.parametrize("case", sorted(CASES))
def test_our_request_equals_the_sdks(
    case: tuple[str, str], plans: dict[tuple[str, str], JudgePlan], sdk_jobs: dict[tuple[str, str], SdkJob]
) -> None:
    plan, sdk = plans[case], sdk_jobs[case]
    assert compare(plan.request, sdk, run_prefix=f"s3://{BUCKET}/runs/exp-042/") == []
    # The fields that matter, spelled out so a reader sees what "equal" covered.
    for key in ("HyperParameters", "ResourceConfig", "AlgorithmSpecification", "ProfilerConfig"):
        assert key in sdk.request and key in plan.request, key
    assert set(sdk.request["HyperParameters"]) == set(src.SDK_NOVA_HYPERPARAMETERS)
    assert sdk.request["ResourceConfig"]["InstanceCount"] == src.DOCS_REPLICAS
    assert sdk.request["ResourceConfig"]["VolumeSizeInGB"] == src.SDK_DEFAULT_VOLUME_GB


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_recipe_we_upload_is_the_one_the_sdk_uploads(
    case: tuple[str, str], plans: dict[tuple[str, str], JudgePlan], sdk_jobs: dict[tuple[str, str], SdkJob]
) -> None:
    """The SDK merged the official recipe with the notebooks' run-name override; ours must match."""
    assert yaml.safe_load(plans[case].rendered.text) == sdk_jobs[case].uploaded_recipe


def test_every_deliberate_difference_has_a_reason() -> None:
    assert all(len(reason) > 40 for reason in DELIBERATE.values())
    readme = (Path(__file__).resolve().parents[2] / "recipes" / "README.md").read_text()
    for words in ("14,400", "86,400", "<variant>_judge.yaml", "InputMode: File"):
        assert words in readme, words


# -- negative controls: a changed field of ours is caught ------------------------------------------------


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(request: dict[str, Any]) -> None:
        node = request
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda request: request.pop(key)


def _rename_train(request: dict[str, Any]) -> None:
    next(c for c in request["InputDataConfig"] if c["ChannelName"] == "train")["ChannelName"] = "training"


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "hyperparameter model_type": _set(["HyperParameters", "model_type"], "amazon.nova-pro-v1:0:300k"),
    "hyperparameter base_model": _set(["HyperParameters", "base_model"], "nova-pro/prod"),
    "recipe mount folder": _set(
        ["HyperParameters", "sagemaker_recipe_local_path"], "/opt/ml/input/data/train/rubric_judge.yaml"
    ),
    "extra hyperparameter": _set(["HyperParameters", "sagemaker_program"], "train.py"),
    "image tag": _set(
        ["AlgorithmSpecification", "TrainingImage"],
        f"{src.FORGE_IMAGE_ACCOUNTS[REGION]}.dkr.ecr.{REGION}.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V3",
    ),
    "input mode": _set(["AlgorithmSpecification", "TrainingInputMode"], "FastFile"),
    "instance count": _set(["ResourceConfig", "InstanceCount"], 2),
    "instance type": _set(["ResourceConfig", "InstanceType"], "ml.p4d.24xlarge"),
    "volume size": _set(["ResourceConfig", "VolumeSizeInGB"], 100),
    "max runtime": _set(["StoppingCondition", "MaxRuntimeInSeconds"], 86400),
    "output path": _set(["OutputDataConfig", "S3OutputPath"], f"s3://{BUCKET}/elsewhere/"),
    "profiler": _drop("ProfilerConfig"),
    "remote debug": _set(["RemoteDebugConfig", "EnableRemoteDebug"], True),
    "role": _set(["RoleArn"], "arn:aws:iam::123456789012:role/other"),
    "channel name": _rename_train,
    "channel distribution": _set(
        ["InputDataConfig", 1, "DataSource", "S3DataSource", "S3DataDistributionType"], "ShardedByS3Key"
    ),
    "extra field": _set(["EnableNetworkIsolation"], True),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_negative_control_a_changed_field_fails_the_comparison(
    mutation: str, plans: dict[tuple[str, str], JudgePlan], sdk_jobs: dict[tuple[str, str], SdkJob]
) -> None:
    case = ("rubric", "nova-lite-2")
    ours = copy.deepcopy(plans[case].request)
    assert ours["InputDataConfig"][1]["ChannelName"] == "train"  # the index the distribution mutation uses
    MUTATIONS[mutation](ours)
    assert compare(ours, sdk_jobs[case], run_prefix=f"s3://{BUCKET}/runs/exp-042/") != []


def test_negative_control_a_changed_recipe_value_is_seen(
    plans: dict[tuple[str, str], JudgePlan], sdk_jobs: dict[tuple[str, str], SdkJob]
) -> None:
    case = ("binary", "nova-micro")
    ours = yaml.safe_load(plans[case].rendered.text)
    ours["inference"]["top_k"] = -1  # the value one docs page shows
    assert ours != sdk_jobs[case].uploaded_recipe
