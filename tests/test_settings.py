"""Settings refuse unsafe production configurations with a clear message."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from loyalty.settings import Settings

STRONG = SecretStr("s" * 48)


def test_defaults_are_the_embedded_development_setup() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.env == "dev"
    assert settings.is_sqlite
    assert settings.redis_url is None
    assert settings.graphiql_enabled and settings.introspection_enabled
    assert settings.business_timezone == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "LOYALTY_JWT_SECRET must be set in prod"),
        ({"jwt_secret": SecretStr("short")}, "at least 32 characters"),
        ({"jwt_secret": STRONG}, "LOYALTY_REDIS_URL must be set in prod"),
    ],
)
def test_prod_refuses_development_defaults(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(env="prod", _env_file=None, **overrides)  # type: ignore[call-arg, arg-type]


def test_prod_with_real_secrets_and_redis_turns_the_ide_and_introspection_off() -> None:
    settings = Settings(
        env="prod", jwt_secret=STRONG, redis_url="redis://redis:6379/0", _env_file=None
    )  # type: ignore[call-arg]
    assert not settings.graphiql_enabled
    assert not settings.introspection_enabled


def test_unknown_business_timezone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        Settings(business_timezone="Mars/Olympus", _env_file=None)  # type: ignore[call-arg]


def test_a_short_metrics_token_is_refused_without_echoing_it() -> None:
    from loyalty.settings import refusal_reason

    with pytest.raises(ValidationError) as refused:
        Settings(metrics_token=SecretStr("tok-12345"), _env_file=None)  # type: ignore[call-arg]
    reason = refusal_reason(refused.value)
    assert reason == "LOYALTY_METRICS_TOKEN: must be at least 16 characters"
    assert "12345" not in reason
