"""Access tokens: short-lived HS256 JWTs carrying the principal."""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt

from loyalty import clock
from loyalty.auth.principal import Principal, Role
from loyalty.errors import DomainError
from loyalty.settings import Settings

ALGORITHM = "HS256"
ISSUER = "loyalty"


class InvalidToken(DomainError):
    code = "INVALID_TOKEN"


def issue_access_token(
    settings: Settings, principal: Principal, ttl: timedelta | None = None
) -> str:
    """A signed access token for ``principal`` (``kid`` header names the signing key)."""
    issued = clock.now()
    lifetime = ttl or timedelta(seconds=settings.access_token_ttl_seconds)
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": principal.subject,
        "role": principal.role.value,
        "scopes": sorted(principal.scopes),
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if principal.member_id is not None:
        claims["mid"] = principal.member_id
    if principal.channel is not None:
        claims["chn"] = principal.channel
    if principal.store_id is not None:
        claims["sto"] = principal.store_id
    return jwt.encode(
        claims,
        settings.jwt_secret.get_secret_value(),
        algorithm=ALGORITHM,
        headers={"kid": settings.jwt_key_id},
    )


def decode_access_token(settings: Settings, token: str) -> Principal:
    """The principal inside ``token``; raises :class:`InvalidToken` (expired, tampered…)."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "role"]},
            leeway=5,
        )
        role = Role(claims["role"])
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise InvalidToken("invalid or expired token") from exc
    if role is Role.ANONYMOUS:
        raise InvalidToken("invalid token")
    return Principal(
        role=role,
        subject=str(claims["sub"]),
        scopes=frozenset(claims.get("scopes") or ()),
        member_id=claims.get("mid"),
        channel=claims.get("chn"),
        store_id=claims.get("sto"),
    )
