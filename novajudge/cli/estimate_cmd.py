"""`novajudge estimate`: the cost of a run and the hourly burn of what is deployed now."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from novajudge.cli.app import app
from novajudge.cli.ops_cmd import JUDGE, PREFIX, PROFILE, REGION, Judge, handle_errors, out
from novajudge.ops import estimate as est
from novajudge.ops.aws import OpsError, UsageProblem
from novajudge.ops.context import OpsContext
from novajudge.pricing import load_prices

PRICES = typer.Option(None, "--prices", help="Pricing JSON merged over novajudge/pricing.json.")


@app.command()
def estimate(
    questions: int | None = typer.Option(None, "--questions", "-n", min=1, max=10000, help="Questions."),
    judge: Judge | None = JUDGE,
    both_orders: bool | None = typer.Option(
        None, "--both-orders/--no-both-orders", help="Judge each pair in both orders (default: cdk.json)."
    ),
    prices_file: Path | None = PRICES,
    judge_lines_per_minute: float | None = typer.Option(
        None, "--judge-lines-per-minute", min=0.001, help="Override the judge throughput assumption."
    ),
    judge_startup_minutes: float = typer.Option(
        est.JUDGE_STARTUP_MINUTES, "--judge-startup-minutes", min=0.0, help="Assumed judge start-up (billed)."
    ),
    seconds_per_token: float = typer.Option(
        est.SECONDS_PER_TOKEN,
        "--seconds-per-token",
        min=0.0,
        help="Assumed seconds per token, one request alone.",
    ),
    batch_slowdown: float = typer.Option(
        est.BATCH_SLOWDOWN,
        "--batch-slowdown",
        min=0.0,
        help="Assumed β: slowdown per extra request in a batch.",
    ),
    map_concurrency: int = typer.Option(
        1,
        "--map-concurrency",
        min=1,
        help="Generate calls (Map children) at once, sharing each model's budget.",
    ),
    offline: bool = typer.Option(False, "--offline", help="Do not ask AWS what is deployed."),
    profile: str | None = PROFILE,
    region: str | None = REGION,
    prefix: str | None = PREFIX,
) -> None:
    """Estimate a run's cost (endpoints + judge job) and today's hourly burn, with the assumptions used.

    Prices come from the repository's price table (source and date printed); the judge's
    throughput and start-up time are assumptions, shown in the output and overridable.
    """
    console = out()
    with handle_errors():
        ctx = OpsContext.create(profile, region, prefix)
        settings = ctx.settings
        try:
            prices = load_prices(prices_file)
        except ValueError as exc:
            raise UsageProblem(f"--prices: {exc}") from None
        variant = judge.value if judge else settings.judge_variant
        judge_type = settings.resolved_judge_instance_type(variant)
        base = (
            est.Assumptions(judge_lines_per_minute=judge_lines_per_minute)
            if judge_lines_per_minute
            else est.default_assumptions(variant, judge_type)
        )
        assumptions = est.Assumptions(
            judge_lines_per_minute=base.judge_lines_per_minute,
            judge_startup_minutes=judge_startup_minutes,
            seconds_per_token=seconds_per_token,
            batch_slowdown=batch_slowdown,
        )
        sagemaker = None
        offline_note = None
        if not offline:
            try:
                sagemaker = ctx.aws.client("sagemaker")
            except OpsError as exc:
                offline_note = f"could not check what is deployed: {exc}"
        result = est.estimate(
            settings,
            prices,
            questions=questions or settings.default_questions,
            variant=variant,
            both_orders=settings.both_orders if both_orders is None else both_orders,
            assumptions=assumptions,
            sagemaker=sagemaker,
            share=map_concurrency,
        )
        if offline_note:
            result.notes.append(offline_note)
        _print(console, result, settings.endpoint_instance_type, offline)


def _money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def _minutes(hours: float) -> str:
    return f"{hours * 60:.1f} min"


def _print(console: Console, r: est.Estimate, endpoint_type: str, offline: bool) -> None:
    c = r.currency
    for warning in r.warnings:
        console.print(f"WARNING: {warning}", style="bold red", soft_wrap=True)
    console.print(
        f"Run of {r.questions} questions, {r.variant} judge on {r.judge_instance_type}, "
        f"{'both orders' if r.both_orders else 'one order'} → {r.judge_lines} judge-input lines"
    )
    for m in r.models:
        children = f", {r.share} Map children × {m.in_flight // r.share}" if r.share > 1 else ""
        console.print(
            f"model {m.which}: {m.in_flight_run} in flight (concurrency_{m.which.lower()}={m.configured}"
            f"{children}; {m.in_flight_used} keep answers under the latency mark) over {m.replicas} "
            f"instance(s), {m.answer_seconds:.1f} s per answer, {m.prompts_per_second:.2f} answers/s "
            f"→ {_minutes(m.hours)}",
            soft_wrap=True,
        )
    table = Table("item", "time", "rate", "cost")
    endpoints_rate = _money(r.endpoint_hourly_total, c) + "/h"
    table.add_row(
        "generation (both endpoints)",
        _minutes(r.generation_hours),
        endpoints_rate,
        _money(r.endpoint_cost_generation, c),
    )
    table.add_row(
        f"judge job ({r.judge_instance_type})",
        _minutes(r.judge_hours),
        _money(r.judge_hourly, c) + "/h",
        _money(r.judge_cost, c),
    )
    table.add_row(
        "endpoints while the judge runs",
        _minutes(r.judge_hours),
        endpoints_rate,
        _money(r.endpoint_cost_run - r.endpoint_cost_generation, c),
    )
    console.print(table)
    console.print(
        f"total: {_money(r.total_if_left_up, c)} with the endpoints up for the whole run "
        f"({_minutes(r.run_hours)}); {_money(r.total_minimum, c)} if you run `novajudge endpoints down` "
        "right after generation"
    )
    console.print(
        f"endpoints_mode=per_run: {_money(r.total_per_run_mode, c)} per run (endpoints billed for "
        f"{r.assumptions.endpoint_startup_minutes:g} start-up minutes + generation, "
        f"{_money(r.endpoint_cost_per_run_mode, c)}), 0 {c}/h between runs; "
        f"endpoints_mode=persistent: the endpoints burn {_money(r.endpoint_hourly_total, c)}/h while deployed"
    )
    if offline:
        console.print("deployed now: not checked (--offline)")
    elif r.endpoints_running is None:
        console.print("deployed now: unknown")
    else:
        for s in r.endpoints:
            console.print(f"endpoint {s.name}: {s.status or 'not deployed'}")
        console.print(f"hourly burn now: {_money(r.burn_per_hour, c)}/h")
        for label, cost in r.burn_items:
            console.print(f"  {label}: {_money(cost, c)}/h")
    a = r.assumptions
    console.print(
        "assumptions (not measured): the judge handles "
        f"{a.judge_lines_per_minute:g} lines/min on {r.judge_instance_type} after "
        f"{a.judge_startup_minutes:g} billed start-up minutes; "
        f"a token takes {a.seconds_per_token * 1000:g} ms for a request served alone and "
        f"(1 + {a.batch_slowdown:g}·(b − 1)) times that in a batch of b (TGI's continuous batching); "
        "answers are max_new_tokens long; a per-run endpoint bills "
        f"{a.endpoint_startup_minutes:g} min before it answers; judge time counted against "
        f"judge_max_runtime_seconds={r.judge_max_runtime_seconds}; override with --judge-lines-per-minute, "
        "--judge-startup-minutes, --seconds-per-token, --batch-slowdown, --map-concurrency",
        soft_wrap=True,
    )
    console.print(f"prices: {r.price_source} (as of {r.price_date}); endpoints priced as {endpoint_type} "
                  "unless deployed otherwise")  # fmt: skip
    for note in r.notes:
        console.print(f"note: {note}")
