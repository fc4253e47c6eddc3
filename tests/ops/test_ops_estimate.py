"""`novajudge estimate`: numbers against a hand calculation, deployed-endpoint detection, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from ops_helpers import ACCOUNT, REGION, Deployed
from typer.testing import CliRunner

from novajudge.cli.app import _register, app
from novajudge.ops import estimate as est
from novajudge.pricing import load_prices

_register()
runner = CliRunner()

#: Round prices so the hand calculation below is easy to follow.
PRICES = {
    "sagemaker": {
        "real_time_inference": {"ml.g5.12xlarge": {"hourly": 10.0, "estimate": False}},
        "training": {
            "ml.p5.48xlarge": {"hourly": 60.0, "estimate": False},
            "ml.g5.12xlarge": {"hourly": 12.0, "estimate": False},
        },
    }
}


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(PRICES))
    return path


def deploy_endpoints(deployed: Deployed) -> None:
    """Two InService endpoints on ml.g5.12xlarge (moto's enum of instance types predates g5, so
    the config is created with another type and switched in moto's backend)."""
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[ACCOUNT][REGION]
    sm = boto3.client("sagemaker", region_name=REGION)
    for which in ("A", "B"):
        name = deployed.settings.endpoint_name(which)
        sm.create_model(
            ModelName=f"{name}-model",
            ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/endpoint",
            PrimaryContainer={"Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/tgi:1"},
        )
        sm.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{name}-model",
                    "InstanceType": "ml.g4dn.12xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        backend.endpoint_configs[f"{name}-config"].production_variants[0]["InstanceType"] = "ml.g5.12xlarge"
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def test_hand_calculation_rubric_both_orders(deployed: Deployed, prices_file: Path) -> None:
    # cdk.json: concurrency_a/b 64, max_new_tokens 500, endpoints ml.g5.12xlarge (1 instance each),
    # rubric judge on ml.p5.48xlarge. Assumed 20 ms/token alone, β = 0.094: an answer alone 10 s.
    # 20 questions never fill the window: a batch of 20, 10 × (1 + 0.094 × 19) = 27.86 s, one round.
    # Endpoints: 2 × 10/h = 20/h → 20 × 27.86/3600 = 0.1548 during generation (0.5 min).
    # Judge: 40 lines at 6 lines/min = 6.667 min + 15 min start-up = 21.667 min × 60/h = 21.667.
    # Endpoints while the judge runs: 20/h × 21.667 min = 7.2222.
    # Total left up: 21.667 + 0.1548 + 7.2222 = 29.044; endpoints down after generation: 21.821.
    deploy_endpoints(deployed)
    result = runner.invoke(
        app,
        ["estimate", "--questions", "20", "--judge", "rubric", "--both-orders", "--prices", str(prices_file)],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "40 judge-input lines" in out
    assert "0.5 min" in out and "0.15 USD" in out
    # 20 in flight (of 64; 38 keep answers under 45 s): 20 / 27.86 s = 0.72 answers/s.
    assert (
        "model A: 20 in flight (concurrency_a=64; 38 keep answers under the latency mark) over 1 "
        "instance(s), 27.9 s per answer, 0.72 answers/s → 0.5 min" in out
    )
    assert "settles near" not in out  # 20 questions never reach the latency back-off
    assert "21.7 min" in out and "21.67 USD" in out and "7.22 USD" in out
    assert "total: 29.04 USD with the endpoints up for the whole run" in out
    assert "21.82 USD if you run `novajudge endpoints down`" in out
    # Per-run endpoints: 20/h × (600 s start-up + 27.86 s) = 3.4881; + judge 21.667 = 25.155.
    assert "endpoints_mode=per_run: 25.15 USD per run" in out and "3.49 USD), 0 USD/h between runs" in out
    assert "endpoints_mode=persistent: the endpoints burn 20.00 USD/h while deployed" in out
    assert "endpoint novajudge-model-a: InService" in out
    assert "hourly burn now: 20.00 USD/h" in out
    assert "assumptions (not measured): the judge handles 6 lines/min on ml.p5.48xlarge" in out
    assert "a token takes 20 ms for a request served alone" in out
    assert "prices: https://aws.amazon.com/sagemaker/pricing/ (as of " in out
    assert "WARNING" not in out  # 21.7 min of judging is far inside judge_max_runtime_seconds 14400


def test_binary_one_order_and_running_judge_job_in_burn(deployed: Deployed, prices_file: Path) -> None:
    # Binary judge (nova-micro) on ml.g5.12xlarge: 20 lines at 10/min = 2 min + 15 = 17 min × 12/h = 3.40.
    deploy_endpoints(deployed)
    from moto.sagemaker.models import sagemaker_backends
    from ops_helpers import make_failed_training_job

    make_failed_training_job("busy-judge", "", [])
    sagemaker_backends[ACCOUNT][REGION].training_jobs["busy-judge"].training_job_status = "InProgress"
    args = ["estimate", "-n", "20", "--judge", "binary", "--no-both-orders", "--prices", str(prices_file)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "20 judge-input lines" in out and "17.0 min" in out and "3.40 USD" in out
    # Burn: two endpoints 20/h + the running p5 job 60/h.
    assert "hourly burn now: 80.00 USD/h" in out
    assert "training job busy-judge (1 × ml.p5.48xlarge): 60.00 USD/h" in out


def test_endpoints_not_deployed(deployed: Deployed, prices_file: Path) -> None:
    result = runner.invoke(app, ["estimate", "--prices", str(prices_file)])
    assert result.exit_code == 0, result.output
    assert "endpoint novajudge-model-a: not deployed" in result.output
    assert "hourly burn now: 0.00 USD/h" in result.output
    assert "`novajudge endpoints up` first" in result.output


def test_estimate_function_matches_hand_calculation(aws_env: None, prices_file: Path) -> None:
    from ops_helpers import REPO

    from novajudge.config import Settings

    settings = Settings.from_cdk_json(REPO / "cdk.json")
    r = est.estimate(settings, load_prices(prices_file), questions=10, variant="rubric", both_orders=True)
    assert r.judge_lines == 20
    # 10 questions: a batch of 10, 500 tokens × 20 ms × (1 + 0.094 × 9) = 18.46 s, one round.
    assert r.generation_hours == pytest.approx(18.46 / 3600)
    assert r.judge_hours == pytest.approx((15 + 20 / 6) / 60)
    assert r.judge_cost == pytest.approx(60 * (15 + 20 / 6) / 60)
    assert r.endpoint_hourly_total == 20.0
    assert r.total_if_left_up == pytest.approx(r.judge_cost + 20 * (r.generation_hours + r.judge_hours))
    assert r.endpoints_running is None  # no SageMaker client: not checked
    assert r.warnings == []


def _generation(
    questions: int, *, configured: int = 64, share: int = 1, replicas: int = 1, tokens: int = 500
) -> est.ModelGeneration:
    return est.model_generation(
        "A",
        questions=questions,
        configured=configured,
        share=share,
        replicas=replicas,
        max_new_tokens=tokens,
        assumptions=est.Assumptions(judge_lines_per_minute=6.0),
        slow_seconds=45.0,
    )


def test_generation_at_size_is_paced_by_the_60_s_limit() -> None:
    # 500 tokens × 20 ms = 10 s alone; under 45 s while 10 × (1 + 0.094 (b − 1)) < 45, i.e.
    # b − 1 < 3.5 / 0.094 = 37.2: at most 38 in flight, each answer 10 × (1 + 0.094 × 37) = 44.78 s.
    # 10,000 questions: ceil(10000 / 38) = 264 rounds × 44.78 s = 11,821.9 s.
    g = _generation(10_000)
    assert (g.in_flight, g.in_flight_used) == (64, 38)
    assert g.answer_seconds == pytest.approx(44.78)
    assert g.hours * 3600 == pytest.approx(264 * 44.78)


def test_generation_counts_replicas_and_share() -> None:
    # 2 instances: 64 over 2 = 32 each, 10 × (1 + 0.094 × 31) = 39.14 s (< 45): all 64 kept.
    # 10,000 questions: ceil(10000 / 64) = 157 rounds × 39.14 s.
    g = _generation(10_000, replicas=2)
    assert (g.in_flight_used, g.replicas) == (64, 2)
    assert g.answer_seconds == pytest.approx(39.14)
    assert g.hours * 3600 == pytest.approx(157 * 39.14)
    # 100 tokens (2 s alone, no latency cap); 3 Map children take 64 // 3 = 21 each: 63 in flight,
    # 2 × (1 + 0.094 × 62) = 13.656 s; 630 questions: 10 rounds. One caller: 64 in flight, 13.844 s,
    # ceil(630 / 64) = 10 rounds.
    shared = _generation(630, share=3, tokens=100)
    assert (shared.in_flight, shared.in_flight_used) == (63, 63)
    assert shared.hours * 3600 == pytest.approx(10 * 13.656)
    alone = _generation(630, tokens=100)
    assert alone.hours * 3600 == pytest.approx(10 * 13.844)


def test_a_full_answer_over_60_s_alone_is_a_warning(aws_env: None, prices_file: Path) -> None:
    from novajudge.config import Settings

    # 4,000 tokens × 20 ms = 80 s alone: over InvokeEndpoint's 60 s whatever the window.
    settings = Settings(max_new_tokens=4000, max_total_tokens=16384)
    r = est.estimate(settings, load_prices(prices_file), questions=10, variant="rubric", both_orders=False)
    assert [w for w in r.warnings if "80 s even alone" in w and "lower max_new_tokens" in w] != []
    assert all(m.in_flight_used == 1 for m in r.models)


def test_judge_that_cannot_finish_is_warned_first(aws_env: None, prices_file: Path) -> None:
    # 10,000 questions, both orders: 20,000 lines at 6/min = 3,333.3 min + 15 = 3,348 min, over
    # judge_max_runtime_seconds 14,400 s = 240 min. In 240 − 15 = 225 min the judge handles
    # 225 × 6 = 1,350 lines = 675 questions in both orders.
    args = [
        "estimate",
        "--offline",
        "-n",
        "10000",
        "--judge",
        "rubric",
        "--both-orders",
        "--prices",
        str(prices_file),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert out.startswith(
        "WARNING: the judge job cannot finish: 20000 lines at 6 lines/min after 15 start-up"
    )
    assert "take 3348 min, over judge_max_runtime_seconds=14400 (240 min)" in out
    assert "use at most 675 questions or raise judge_max_runtime_seconds" in out
    # Generation at this size, from the defaults: 264 rounds of 44.78 s = 197.0 min.
    # 38 / 44.78 s = 0.85 answers/s.
    assert (
        "model A: 38 in flight (concurrency_a=64; 38 keep answers under the latency mark) over 1 "
        "instance(s), 44.8 s per answer, 0.85 answers/s" in out
    )
    assert "→ 197.0 min" in out
    assert "the client's window settles near 38" in out


def test_judge_runtime_problem_boundary() -> None:
    a = est.Assumptions(judge_lines_per_minute=6.0, judge_startup_minutes=15.0)
    # 1,350 lines: 15 + 225 = 240 min = 14,400 s exactly: fits; one more line does not.
    fits = est.judge_runtime_problem(
        lines=1350, both_orders=False, judge_hours=240 / 60, assumptions=a, max_runtime_seconds=14400
    )
    over = est.judge_runtime_problem(
        lines=1351,
        both_orders=False,
        judge_hours=(15 + 1351 / 6) / 60,
        assumptions=a,
        max_runtime_seconds=14400,
    )
    assert fits is None
    assert over is not None and "use at most 1350 questions" in over


def test_offline_uses_the_shipped_price_table(aws_env: None) -> None:
    result = runner.invoke(app, ["estimate", "--offline", "-n", "4"])
    assert result.exit_code == 0, result.output
    shipped = load_prices()
    assert f"(as of {shipped.as_of})" in result.output
    assert f"{2 * shipped.endpoint_hourly('ml.g5.12xlarge'):,.2f} USD/h" in result.output
    assert "not checked (--offline)" in result.output


def test_assumptions_can_be_overridden(aws_env: None, prices_file: Path) -> None:
    args = [
        "estimate",
        "--offline",
        "-n",
        "30",
        "--both-orders",
        "--prices",
        str(prices_file),
        "--judge-lines-per-minute",
        "60",
        "--judge-startup-minutes",
        "0",
        "--seconds-per-token",
        "0",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # 60 lines at 60/min = 1 min on p5 at 60/h = 1.00; no generation time.
    assert "total: 1.33 USD" in result.output  # + endpoints 20/h × 1 min = 0.33


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--questions", "0"], "--questions"),
        (["--judge", "gpt"], "'gpt' is not one of"),
        (["--prices", "/nonexistent/prices.json"], "cannot read pricing override"),
        (["--judge-lines-per-minute", "0"], "--judge-lines-per-minute"),
        (["--prefix", "no_underscores"], "--prefix"),
    ],
)
def test_estimate_bad_input_exit_2(aws_env: None, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["estimate", "--offline", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
