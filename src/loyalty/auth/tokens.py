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
LEEWAY_SECONDS = 5


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


def verification_key(settings: Settings, kid: object) -> str | None:
    """The secret for ``kid``: the current key or a retired one still accepted."""
    if kid == settings.jwt_key_id:
        return settings.jwt_secret.get_secret_value()
    if isinstance(kid, str) and kid in settings.jwt_previous_keys:
        return settings.jwt_previous_keys[kid].get_secret_value()
    return None


def decode_access_token(settings: Settings, token: str) -> Principal:
    """The principal inside ``token``; raises :class:`InvalidToken` (expired, tampered,
    signed with an unknown or retired-and-removed key)."""
    try:
        header = jwt.get_unverified_header(token)
        key = verification_key(settings, header.get("kid"))
        if key is None or header.get("alg") != ALGORITHM:
            raise InvalidToken("invalid or expired token")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            # Expiry is checked against loyalty.clock below, not the wall clock.
            options={
                "require": ["exp", "iat", "sub", "role"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
        if int(claims["exp"]) + LEEWAY_SECONDS < clock.now().timestamp():
            raise InvalidToken("invalid or expired token")
        role = Role(claims["role"])
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise InvalidToken("invalid or expired token") from exc
    if role is Role.ANONYMOUS:
        raise InvalidToken("invalid token")
    member_id = claims.get("mid")
    if role is Role.MEMBER and not isinstance(member_id, int):
        raise InvalidToken("invalid token")
    return Principal(
        role=role,
        subject=str(claims["sub"]),
        scopes=frozenset(claims.get("scopes") or ()),
        member_id=member_id,
        channel=claims.get("chn"),
        store_id=claims.get("sto"),
    )
