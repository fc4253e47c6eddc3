"""The functions' environments: read once, typed, checked, and exactly what docs/design.md lists."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from design_doc import lambda_environment

from novajudge.errors import ConfigError, JudgeConfigError
from novajudge.generation.endpoints import RetryPolicy
from novajudge.steps.environment import (
    ChunkEnvironment,
    CleanupEnvironment,
    GenerateEnvironment,
    StartJudgeEnvironment,
    SummarizeEnvironment,
    TeardownEnvironment,
)

GENERATE_REQUIRED = {
    "BUCKET_NAME": "bucket-1",
    "ENDPOINT_A_NAME": "ep-a",
    "ENDPOINT_B_NAME": "ep-b",
    "MODEL_A_ID": "org/model-a",
    "MODEL_B_ID": "org/model-b",
}
CLASSES = {
    "prepare": GenerateEnvironment,
    "generate": ChunkEnvironment,
    "start_judge": StartJudgeEnvironment,
    "summarize": SummarizeEnvironment,
    "cleanup": CleanupEnvironment,
    "teardown": TeardownEnvironment,
}


class Recording(Mapping[str, str]):
    """An environment that remembers every name asked for, whether it was set or not."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.values[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return self.values.get(key, default)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return key in self.values

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("an environment class must ask for its variables by name")

    def __len__(self) -> int:
        return len(self.values)


@pytest.mark.parametrize("function", sorted(CLASSES))
def test_each_class_reads_exactly_what_the_design_lists(function: str) -> None:
    environ = Recording(
        {
            **GENERATE_REQUIRED,
            "JUDGE_ROLE_ARN": "arn:aws:iam::1:role/j",
            "AWS_REGION": "x",
            "STATE_MACHINE_ARN": "arn:aws:states:x:1:stateMachine:m",
            "JUDGE_JOB_STACK_TAG": "NovaJudge-Pipeline",
        }
    )
    CLASSES[function].from_environ(environ)
    documented = {
        name
        for name, (reader, _) in lambda_environment()[function].items()
        if CLASSES[function].__name__ in reader
    }
    assert environ.asked == documented


def test_generate_environment_values() -> None:
    env = GenerateEnvironment.from_environ(
        {
            **GENERATE_REQUIRED,
            "RUN_DEFAULTS": '{"questions": 7}',
            "NOVAJUDGE_READ_TIMEOUT_SECONDS": "12.5",
            "NOVAJUDGE_RETRY_MAX_ATTEMPTS": "2",
            "NOVAJUDGE_RETRY_BASE_SECONDS": "0.5",
            "NOVAJUDGE_RETRY_MAX_SECONDS": "3",
            "NOVAJUDGE_RETRY_SEED": "9",
            "JUDGE_CONTEXT_LIMIT_TOKENS": "900",
            "NOVAJUDGE_SQUAD_ROWS_URL": "http://127.0.0.1:9/rows",
            "NOVAJUDGE_STAND_IN": "yes",
        }
    )
    assert (env.bucket, env.endpoint_a, env.endpoint_b) == ("bucket-1", "ep-a", "ep-b")
    assert (env.model_a, env.model_b) == ("org/model-a", "org/model-b")
    assert env.run_defaults == {"questions": 7} and env.read_timeout_seconds == 12.5
    assert env.retry == RetryPolicy(max_attempts=2, base_delay=0.5, max_delay=3.0, seed=9)
    assert env.context_limit_tokens == 900 and env.squad_rows_url == "http://127.0.0.1:9/rows"
    assert env.stand_in is True
    defaults = GenerateEnvironment.from_environ(GENERATE_REQUIRED)
    assert defaults.run_defaults == {} and defaults.read_timeout_seconds == 70.0
    assert defaults.retry == RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=20.0, seed=0)
    assert defaults.context_limit_tokens == 7000 and defaults.stand_in is False
    assert defaults.squad_rows_url == "https://datasets-server.huggingface.co/rows"


def test_missing_generate_variables_are_all_named() -> None:
    partial = {k: v for k, v in GENERATE_REQUIRED.items() if k not in ("ENDPOINT_B_NAME", "MODEL_A_ID")}
    with pytest.raises(
        ConfigError, match=r"^generate function environment is missing ENDPOINT_B_NAME, MODEL_A_ID$"
    ):
        GenerateEnvironment.from_environ({**partial, "MODEL_A_ID": "  "})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NOVAJUDGE_RETRY_MAX_ATTEMPTS", "three", "NOVAJUDGE_RETRY_MAX_ATTEMPTS='three' is not an integer"),
        ("NOVAJUDGE_RETRY_MAX_ATTEMPTS", "0", "NOVAJUDGE_RETRY_MAX_ATTEMPTS='0' must be at least 1"),
        ("NOVAJUDGE_READ_TIMEOUT_SECONDS", "soon", "NOVAJUDGE_READ_TIMEOUT_SECONDS='soon' is not a number"),
        ("NOVAJUDGE_RETRY_BASE_SECONDS", "-1", "NOVAJUDGE_RETRY_BASE_SECONDS='-1' must be at least 0"),
        ("JUDGE_CONTEXT_LIMIT_TOKENS", "7.5", "JUDGE_CONTEXT_LIMIT_TOKENS='7.5' is not an integer"),
        ("RUN_DEFAULTS", "[1, 2]", "RUN_DEFAULTS must be a JSON object"),
    ],
)
def test_malformed_generate_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"environment variable {message}"):
        GenerateEnvironment.from_environ({**GENERATE_REQUIRED, name: value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("TRUE", True), (" yes ", True), ("0", False), ("", False), ("on", False)],
)
def test_stand_in_words(value: str, expected: bool) -> None:
    assert SummarizeEnvironment.from_environ({"NOVAJUDGE_STAND_IN": value}).stand_in is expected
    assert (
        GenerateEnvironment.from_environ({**GENERATE_REQUIRED, "NOVAJUDGE_STAND_IN": value}).stand_in
        is expected
    )


def test_start_judge_environment() -> None:
    env = StartJudgeEnvironment.from_environ(
        {
            "JUDGE_ROLE_ARN": " arn:aws:iam::1:role/judge ",
            "AWS_DEFAULT_REGION": "us-west-2",  # outside Lambda, where AWS_REGION may be unset
            "JUDGE_INSTANCE_TYPE_RUBRIC": "ml.p5.48xlarge",
            "BINARY_JUDGE_MODEL": "nova-pro",
            "JUDGE_MAX_RUNTIME_SECONDS": "7200",
        }
    )
    assert (env.role_arn, env.region, env.max_runtime_seconds) == (
        "arn:aws:iam::1:role/judge",
        "us-west-2",
        7200,
    )
    assert env.instance_types == {"rubric": "ml.p5.48xlarge", "binary": None}
    assert (env.model_key("binary"), env.model_key("rubric")) == ("nova-pro", "nova-lite-2")
    both = StartJudgeEnvironment.from_environ(
        {"JUDGE_ROLE_ARN": "r", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-west-2"}
    )
    assert both.region == "us-east-1" and both.max_runtime_seconds == 14400
    assert both.model_key("binary") == "nova-micro"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AWS_REGION": "us-east-1"}, "start_judge function environment is missing JUDGE_ROLE_ARN"),
        ({"JUDGE_ROLE_ARN": "r"}, "no AWS region: set AWS_REGION"),
        (
            {"JUDGE_ROLE_ARN": "r", "AWS_REGION": "us-east-1", "JUDGE_MAX_RUNTIME_SECONDS": "0"},
            "JUDGE_MAX_RUNTIME_SECONDS='0' must be at least 1",
        ),
    ],
)
def test_start_judge_environment_problems_are_judge_config_errors(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(JudgeConfigError, match=message):
        StartJudgeEnvironment.from_environ(environ)


def test_summarize_environment() -> None:
    assert SummarizeEnvironment.from_environ({"TMPDIR": "/scratch"}) == SummarizeEnvironment(
        "/scratch", False
    )
    assert SummarizeEnvironment.from_environ({}) == SummarizeEnvironment(None, False)


def test_per_run_generate_needs_no_endpoint_names_and_derives_them_from_the_run() -> None:
    import hashlib

    environ = {k: v for k, v in GENERATE_REQUIRED.items() if not k.startswith("ENDPOINT_")}
    with pytest.raises(ConfigError, match=r"missing ENDPOINT_A_NAME, ENDPOINT_B_NAME$"):
        GenerateEnvironment.from_environ(environ)
    env = GenerateEnvironment.from_environ({**environ, "RUN_ENDPOINT_PREFIX": "novajudge"})
    digest = hashlib.md5(b"run-7").hexdigest()
    assert env.endpoints_of("run-7") == (f"novajudge-{digest}-a", f"novajudge-{digest}-b")
    persistent = GenerateEnvironment.from_environ(GENERATE_REQUIRED)
    assert persistent.endpoints_of("run-7") == ("ep-a", "ep-b")


def test_cleanup_environment() -> None:
    with pytest.raises(ConfigError, match=r"^cleanup function environment is missing BUCKET_NAME$"):
        CleanupEnvironment.from_environ({"AWS_REGION": "eu-west-1"})
    env = CleanupEnvironment.from_environ({"BUCKET_NAME": "b", "AWS_REGION": "eu-west-1"})
    assert (env.bucket, env.region, env.run_endpoints("r")) == ("b", "eu-west-1", ())
    per_run = CleanupEnvironment.from_environ(
        {"BUCKET_NAME": "b", "AWS_DEFAULT_REGION": "us-east-1", "RUN_ENDPOINT_PREFIX": "nj"}
    )
    assert [name[-2:] for name in per_run.run_endpoints("r")] == ["-a", "-b"]
    assert all(name.startswith("nj-") and len(name) == 3 + 32 + 2 for name in per_run.run_endpoints("r"))
