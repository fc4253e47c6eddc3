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
    # cdk.json: generation_concurrency 4, endpoints ml.g5.12xlarge, rubric judge on ml.p5.48xlarge.
    # 20 questions, 4 in flight per endpoint, 20 s each: ceil(20/4) × 20 s = 100 s of generation.
    # Endpoints: 2 × 10/h = 20/h → 20 × 100/3600 = 0.5556 during generation.
    # Judge: 40 lines at 6 lines/min = 6.667 min + 15 min start-up = 21.667 min × 60/h = 21.667.
    # Endpoints while the judge runs: 20/h × 21.667 min = 7.2222.
    # Total left up: 21.667 + 0.5556 + 7.2222 = 29.444; endpoints down after generation: 22.222.
    deploy_endpoints(deployed)
    result = runner.invoke(
        app,
        ["estimate", "--questions", "20", "--judge", "rubric", "--both-orders", "--prices", str(prices_file)],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "40 judge-input lines" in out
    assert "1.7 min" in out and "0.56 USD" in out
    assert "21.7 min" in out and "21.67 USD" in out and "7.22 USD" in out
    assert "total: 29.44 USD with the endpoints up for the whole run" in out
    assert "22.22 USD if you run `novajudge endpoints down`" in out
    # Per-run endpoints: 20/h × (10 start-up min + 100 s) = 20 × 700/3600 = 3.8889; + judge 21.667.
    assert "endpoints_mode=per_run: 25.56 USD per run" in out and "3.89 USD), 0 USD/h between runs" in out
    assert "endpoints_mode=persistent: the endpoints burn 20.00 USD/h while deployed" in out
    assert "endpoint novajudge-model-a: InService" in out
    assert "hourly burn now: 20.00 USD/h" in out
    assert "assumptions (not measured): the judge handles 6 lines/min on ml.p5.48xlarge" in out
    assert "prices: https://aws.amazon.com/sagemaker/pricing/ (as of " in out


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
    assert r.generation_hours == pytest.approx(3 * 20 / 3600)  # ceil(10/4) = 3 rounds of 20 s
    assert r.judge_hours == pytest.approx((15 + 20 / 6) / 60)
    assert r.judge_cost == pytest.approx(60 * (15 + 20 / 6) / 60)
    assert r.endpoint_hourly_total == 20.0
    assert r.total_if_left_up == pytest.approx(r.judge_cost + 20 * (r.generation_hours + r.judge_hours))
    assert r.endpoints_running is None  # no SageMaker client: not checked


def test_offline_uses_the_shipped_price_table(aws_env: None) -> None:
    result = runner.invoke(app, ["estimate", "--offline", "-n", "4"])
    assert result.exit_code == 0, result.output
    shipped = load_prices()
    assert f"(as of {shipped.as_of})" in result.output
    assert f"{2 * shipped.endpoint_hourly('ml.g5.12xlarge'):,.2f} USD/h" in result.output
    assert "not checked (--offline)" in result.output


def test_assumptions_can_be_overridden(aws_env: None, prices_file: Path) -> None:
    args = ["estimate", "--offline", "-n", "30", "--both-orders", "--prices", str(prices_file),
            "--judge-lines-per-minute",
            "60", "--judge-startup-minutes", "0", "--seconds-per-generation", "0"]  # fmt: skip
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
