"""Quota pre-flight: refuse a run the account's SageMaker quotas cannot start, before any spend.

New accounts often have a quota of 0 for GPU instances (ml.p5.48xlarge for the rubric judge,
ml.g5.12xlarge for the endpoints). Without this check the failure comes late: after generation
(the judge cannot start) or after minutes of endpoint provisioning, with the endpoints billed
meanwhile. SageMaker names its instance quotas `<instance type> for endpoint usage` and `<instance
type> for training job usage` (the name SageMaker's own ResourceLimitExceeded error quotes), so
they are found by name in `ListServiceQuotas` (service code `sagemaker`), which answers the values
applied to this account.

What a run needs: one judge instance (`training job usage`) and, with per-run endpoints, two
endpoint instances (`endpoint usage`); persistent endpoints already hold theirs. A quota that is not
listed (an account whose quotas Service Quotas cannot answer) is reported, not refused.

Two callers: `novajudge start` (refuses before starting, exit 1) and the prepare step, which runs
first in every execution however it was started (console, SDK, a resume), before per-run endpoints
are created, and fails the run with `QuotaExceeded`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SERVICE_CODE = "sagemaker"
QUOTAS_CONSOLE = "https://console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas"


@dataclass(frozen=True)
class QuotaNeed:
    """A quota by name and how many instances this run needs under it."""

    name: str
    needed: int
    why: str


@dataclass(frozen=True)
class QuotaCheck:
    need: QuotaNeed
    value: float | None  # None: not listed for this account
    code: str | None

    @property
    def short(self) -> bool:
        return self.value is not None and self.value < self.need.needed

    def refusal(self, region: str) -> str:
        """One line: which quota, its value, what the run needs and how to ask for more."""
        how = (
            f"aws service-quotas request-service-quota-increase --region {region} --service-code "
            f"{SERVICE_CODE} --quota-code {self.code} --desired-value {self.need.needed}"
            if self.code
            else QUOTAS_CONSOLE
        )
        return (
            f"SageMaker quota '{self.need.name}' is {self.value:g} in {region}; this run needs "
            f"{self.need.needed} ({self.need.why}). Request an increase: {how}"
        )


def run_needs(judge_instance_type: str, endpoint_instance_type: str | None) -> list[QuotaNeed]:
    """The instance quotas one run draws on: its judge, and its two endpoints when they are
    created per run (`endpoint_instance_type` None: persistent endpoints already hold theirs)."""
    needs = [QuotaNeed(f"{judge_instance_type} for training job usage", 1, "the judge training job")]
    if endpoint_instance_type:
        needs.append(
            QuotaNeed(
                f"{endpoint_instance_type} for endpoint usage",
                2,
                "the run's two endpoints, models A and B",
            )
        )
    return needs


def applied_quotas(quotas_client: Any) -> dict[str, tuple[float, str]]:
    """SageMaker quota name -> (value applied to this account, quota code)."""
    found: dict[str, tuple[float, str]] = {}
    paginator = quotas_client.get_paginator("list_service_quotas")
    for page in paginator.paginate(ServiceCode=SERVICE_CODE):
        for quota in page.get("Quotas", []):
            found[quota["QuotaName"]] = (float(quota["Value"]), quota.get("QuotaCode", ""))
    return found


def check(quotas_client: Any, needs: Iterable[QuotaNeed]) -> list[QuotaCheck]:
    applied = applied_quotas(quotas_client)
    checks = []
    for need in needs:
        value, code = applied.get(need.name, (None, None))
        checks.append(QuotaCheck(need, value, code or None))
    return checks
