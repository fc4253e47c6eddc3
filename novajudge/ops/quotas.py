"""The quota pre-flight of `novajudge start`: the deployment's settings turned into quota needs.

The check itself is `novajudge.judge.quotas` (shared with the prepare step, which runs it in every
execution); this module only knows how a deployment's `Settings` say what a run needs.
"""

from __future__ import annotations

from novajudge.config import Settings
from novajudge.judge.quotas import QuotaCheck, QuotaNeed, check

__all__ = ["QuotaCheck", "QuotaNeed", "check", "run_needs"]


def run_needs(settings: Settings, judge_instance_type: str) -> list[QuotaNeed]:
    """The instance quotas one run of this deployment draws on."""
    from novajudge.judge import quotas

    per_run = settings.endpoints_mode == "per_run"
    return quotas.run_needs(judge_instance_type, settings.endpoint_instance_type if per_run else None)
