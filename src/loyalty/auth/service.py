"""Authentication of incoming requests."""

from __future__ import annotations

from collections.abc import Mapping

from loyalty.auth.principal import ANONYMOUS, Principal
from loyalty.auth.tokens import InvalidToken, decode_access_token
from loyalty.settings import Settings


async def authenticate(*, headers: Mapping[str, str], settings: Settings) -> Principal:
    """The caller behind ``Authorization: Bearer …``; anonymous without one.

    Raises :class:`InvalidToken` for a token that is present but not valid.
    """
    header = headers.get("authorization")
    if not header:
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("expected `Authorization: Bearer <token>`")
    return decode_access_token(settings, token.strip())
