"""Orders test set-up: the domain hooks, as the app and worker register them."""

from __future__ import annotations

import pytest

from loyalty import hooks


@pytest.fixture(autouse=True, scope="session")
def _domain_hooks() -> None:
    hooks.load()
