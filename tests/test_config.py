"""Bad configuration fails synth with one line naming the key and the value, before any spend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from novajudge.config import Settings
from novajudge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

RUBRIC_ON_G5 = ({"judge_instance_type": "ml.g5.12xlarge"}, "judge_instance_type", "'ml.g5.12xlarge'", "p5")


@pytest.mark.parametrize(
    ("values", "key", "shown", "hint"),
    [
        # Qwen2.5-1.5B has 2 key/value heads: TGI cannot shard it over 4 GPUs.
        ({"model_a_num_gpus": "4"}, "model_a_num_gpus", "4", "one of [1, 2]"),
        ({"model_b_num_gpus": "3"}, "model_b_num_gpus", "3", "one of [1, 2, 4]"),
        ({"model_b_num_gpus": "8"}, "model_b_num_gpus", "8", "at most 4"),
        # The rubric judge (Nova 2 Lite) does not run on g5.
        RUBRIC_ON_G5,
        (
            {"judge_variant": "binary", "judge_instance_type": "ml.p4d.24xlarge"},
            "judge_instance_type",
            "'ml.p4d.24xlarge'",
            "binary judge",
        ),
        ({"retain_bucket": "maybe"}, "retain_bucket", "'maybe'", "boolean"),
        ({"judge_variant": "pairwise"}, "judge_variant", "'pairwise'", "'rubric' or 'binary'"),
        ({"endpoint_instance_type": "ml.t2.medium"}, "endpoint_instance_type", "'ml.t2.medium'", "g5.12x"),
        ({"max_input_tokens": "9000"}, "max_input_tokens", "9000", "less than max_total_tokens"),
    ],
)
def test_bad_value_gives_one_line_naming_key_and_value(
    values: dict[str, str], key: str, shown: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping(values)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"invalid configuration: {key}={shown}: ")
    assert hint in message


def test_unknown_key_is_named_with_the_known_ones() -> None:
    expected = r"^unknown configuration key 'retain_buckets'; known keys: "
    with pytest.raises(ConfigError, match=expected) as caught:
        Settings.from_mapping({"retain_buckets": "true"})
    assert "\n" not in str(caught.value)
    assert "retain_bucket," in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("false", False), ("True", True), ("0", False)]
)
def test_retain_bucket_accepts_the_strings_the_cdk_cli_passes(text: str, expected: bool) -> None:
    assert Settings.from_mapping({"retain_bucket": text}).retain_bucket is expected


def test_defaults_are_the_cdk_json_values() -> None:
    """cdk.json documents the defaults; they must be the Settings defaults, not drift from them."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    for name, field in Settings.model_fields.items():
        assert name in context, f"cdk.json lacks {name}"
        assert context[name] == field.default, name


def _env() -> dict[str, str]:
    quiet = {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_CLI_TELEMETRY": "1"}
    return {**os.environ, **quiet}


def test_app_py_exits_non_zero_with_the_one_line(tmp_path: Path) -> None:
    # The CDK CLI hands context to the app through CDK_CONTEXT_JSON; emulate it directly.
    env = {**_env(), "CDK_CONTEXT_JSON": json.dumps({"model_a_num_gpus": "4"}), "CDK_OUTDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert lines == [
        "error: invalid configuration: model_a_num_gpus=4: expected one of [1, 2]: "
        "Qwen/Qwen2.5-1.5B-Instruct has 2 key/value heads and TGI shards them"
    ]
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not (ROOT / "node_modules" / ".bin" / "cdk").exists(), reason="CDK CLI not installed")
def test_cdk_synth_exits_non_zero_with_the_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            "npx",
            "--no-install",
            "cdk",
            "synth",
            "--quiet",
            "--no-notices",
            "-o",
            str(tmp_path / "out"),
            "-c",
            "model_a_num_gpus=4",
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "error: invalid configuration: model_a_num_gpus=4: expected one of [1, 2]" in output


def test_history_budget_counts_the_per_run_endpoint_wait() -> None:
    """Issue 14's leftover: the per-run endpoint wait loop's events count too.

    By hand, with per-run defaults: model B (7B) gets a 300 + 40 × 7 = 580 → 600 s health check, so
    endpoints may take 900 + 600 = 1,500 s; polled every 2 s that is 750 passes × 16 events (Wait 2,
    two describe Tasks 5 + 5, Pass 2, Choice 2) = 12,000. With a 14,400 s judge, polls of 10 s add
    (1,440 + 1) × 9 = 12,969: 12,969 + 12,000 + 1,000 = 25,969 > 25,000, refused; 11 s add
    (1,310 + 1) × 9 = 11,799: 24,799, fits. The least poll is ceil(14,400 / ((25,000 − 1,000 −
    12,000) // 9 − 1 = 1,332)) = 11. Persistent endpoints have no such loop: 10 s fits there.
    """
    from novajudge.config import history_budget_problem

    base = {"endpoints_mode": "per_run", "endpoint_poll_seconds": 2, "judge_max_runtime_seconds": 14400}
    assert Settings.from_mapping({**base, "poll_seconds": 11}).endpoint_max_polls() == 750
    refused = r"poll_seconds=10: .*after 750 endpoint polls .*use poll_seconds ≥ 11"
    with pytest.raises(ConfigError, match=refused):
        Settings.from_mapping({**base, "poll_seconds": 10})
    persistent = Settings.from_mapping({**base, "endpoints_mode": "persistent", "poll_seconds": 10})
    assert persistent.poll_seconds == 10
    assert history_budget_problem(10, 14400, 750) is not None
    assert history_budget_problem(11, 14400, 750) is None
    assert history_budget_problem(10, 14400, 0) is None
    # Polled every second the endpoints alone take 1,500 × 16 = 24,000 events: no room for a judge.
    with pytest.raises(ConfigError, match=r"endpoint wait alone .*1500 polls"):
        Settings.from_mapping({**base, "endpoint_poll_seconds": 1, "poll_seconds": 3600})


def test_per_model_concurrency_defaults_reach_the_run_defaults() -> None:
    """64 each (docs/design.md, "Generation throughput"), carried to the generate function as the
    run's defaults, and settable apart (A and B saturate at different points)."""
    from novajudge.config import Settings

    assert (Settings().concurrency_a, Settings().concurrency_b) == (64, 64)
    generation = Settings.from_mapping({"concurrency_a": "96", "concurrency_b": "12"}).run_defaults()[
        "generation"
    ]
    assert (generation["concurrency_a"], generation["concurrency_b"]) == (96, 12)
