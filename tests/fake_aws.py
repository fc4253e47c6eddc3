"""Fake AWS credentials and region for the tests: moto accepts anything, and no real account's keys
may ever be picked up (the suites also clear AWS_PROFILE and friends)."""

from __future__ import annotations


def fake_credentials(region: str) -> dict[str, str]:
    """The environment variables of fake credentials in `region`."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }
