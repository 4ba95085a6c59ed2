"""Points test set-up: hypothesis profiles and the domain hooks."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from loyalty import hooks

settings.register_profile(
    "default",
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz",
    max_examples=1_000,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True, scope="session")
def _domain_hooks() -> None:
    """Register every domain's hooks, as the app and worker do."""
    hooks.load()
