"""Authentication of requests, login sessions (refresh tokens) and service API keys.

Secrets (refresh tokens, API keys) are random, shown once, and stored as SHA-256 only.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.audit import service as audit
from loyalty.auth.errors import ApiKeyNotFound, InvalidRefreshToken
from loyalty.auth.models import ApiKey, RefreshToken
from loyalty.auth.principal import ANONYMOUS, Principal, Role
from loyalty.auth.tokens import InvalidToken, decode_access_token, issue_access_token
from loyalty.errors import FieldErrors
from loyalty.settings import Settings

API_KEY_PREFIX = "lk_"
REFRESH_TOKEN_PREFIX = "rt_"
# How stale ``ApiKey.last_used_at`` may get before a request refreshes it (one write per window).
LAST_USED_RESOLUTION = timedelta(minutes=5)
KNOWN_SCOPES = frozenset({"pii"})


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a secret; what the database keeps instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


# --- request authentication -------------------------------------------------------------


async def authenticate(*, headers: Mapping[str, str], settings: Settings) -> Principal:
    """The caller behind the request headers; anonymous without credentials.

    Accepts ``Authorization: Bearer <access token>``, ``Authorization: ApiKey <key>`` and
    ``X-Api-Key: <key>``. Raises :class:`InvalidToken` for credentials that are present but
    not valid (expired, tampered, revoked, unknown).
    """
    header = headers.get("authorization")
    api_key = headers.get("x-api-key")
    if header:
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if not credential:
            raise InvalidToken("expected `Authorization: Bearer <token>` or `ApiKey <key>`")
        if scheme.lower() == "bearer":
            return await _active(decode_access_token(settings, credential))
        if scheme.lower() == "apikey":
            return await authenticate_api_key(key=credential)
        raise InvalidToken("expected `Authorization: Bearer <token>` or `ApiKey <key>`")
    if api_key:
        return await authenticate_api_key(key=api_key.strip())
    return ANONYMOUS


async def _active(principal: Principal) -> Principal:
    """A member token acts only while its member is active: once merged into another member,
    deactivated or erased, its tokens are refused (the app logs in again)."""
    if principal.role is Role.MEMBER:
        from loyalty.members.models import Member, MemberStatus

        active = await Member.filter(id=principal.member_id, status=MemberStatus.ACTIVE).exists()
        if not active:
            raise InvalidToken("invalid or expired token")
    return principal


async def authenticate_api_key(*, key: str) -> Principal:
    """The SERVICE principal of an active API key; raises :class:`InvalidToken` otherwise."""
    if not key.startswith(API_KEY_PREFIX):
        raise InvalidToken("invalid API key")
    row = await ApiKey.get_or_none(key_hash=hash_secret(key), revoked_at=None)
    if row is None:
        raise InvalidToken("invalid API key")
    now = clock.now()
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_RESOLUTION:
        await ApiKey.filter(id=row.id).update(last_used_at=now)
    return api_key_principal(row)


def api_key_principal(row: ApiKey) -> Principal:
    return Principal(
        role=Role.SERVICE,
        subject=f"apikey:{row.id}",
        scopes=frozenset(row.scopes or ()),
        channel=row.channel,
        store_id=row.store_id,
    )


# --- login sessions: access + refresh tokens ----------------------------------------------


@dataclass(frozen=True)
class TokenPair:
    """What a login or refresh returns. ``expires_in`` is the access token's life in seconds."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_at: datetime
    principal: Principal


def member_principal(member_id: int) -> Principal:
    return Principal(role=Role.MEMBER, subject=f"member:{member_id}", member_id=member_id)


async def start_session(*, settings: Settings, principal: Principal) -> TokenPair:
    """Issue an access token and the first refresh token of a new session (family)."""
    async with in_transaction() as conn:
        refresh, row = _new_refresh_token(settings, principal, family=uuid.uuid4().hex)
        await row.save(using_db=conn)
    return _pair(settings, principal, refresh, row)


async def refresh_session(*, settings: Settings, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new access token and a new refresh token.

    The presented token is used up. Presenting a used token again (a replay: someone else
    holds a copy) revokes every token of its session. Raises :class:`InvalidRefreshToken`.
    """
    now = clock.now()
    row = await RefreshToken.get_or_none(token_hash=hash_secret(refresh_token))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise InvalidRefreshToken()
    principal = await _current_principal(row)
    async with in_transaction() as conn:
        # Conditional update: of two concurrent uses exactly one wins.
        won = await (
            RefreshToken.filter(id=row.id, used_at=None, revoked_at=None)
            .using_db(conn)
            .update(used_at=now)
        )
        if won and principal is not None:
            token, new_row = _new_refresh_token(settings, principal, family=row.family)
            await new_row.save(using_db=conn)
            return _pair(settings, principal, token, new_row)
    # Reused (or the member is gone): the whole session ends.
    await RefreshToken.filter(family=row.family, revoked_at=None).update(revoked_at=now)
    raise InvalidRefreshToken()


async def revoke_session(*, refresh_token: str) -> bool:
    """Log out: revoke every refresh token of the session ``refresh_token`` belongs to.

    Returns False when the token is unknown. Access tokens already issued stay valid until
    they expire (minutes).
    """
    row = await RefreshToken.get_or_none(token_hash=hash_secret(refresh_token))
    if row is None:
        return False
    await RefreshToken.filter(family=row.family, revoked_at=None).update(revoked_at=clock.now())
    return True


async def revoke_member_sessions(*, member_id: int) -> int:
    """Revoke every refresh token of a member (erasure, merge, stolen phone)."""
    return await RefreshToken.filter(member_id=member_id, revoked_at=None).update(
        revoked_at=clock.now()
    )


def _new_refresh_token(
    settings: Settings, principal: Principal, *, family: str
) -> tuple[str, RefreshToken]:
    token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    issued = clock.now()
    row = RefreshToken(
        family=family,
        token_hash=hash_secret(token),
        subject=principal.subject,
        role=principal.role.value,
        member_id=principal.member_id,
        channel=principal.channel,
        store_id=principal.store_id,
        scopes=sorted(principal.scopes),
        issued_at=issued,
        expires_at=issued + timedelta(seconds=settings.refresh_token_ttl_seconds),
    )
    return token, row


def _pair(settings: Settings, principal: Principal, refresh: str, row: RefreshToken) -> TokenPair:
    return TokenPair(
        access_token=issue_access_token(settings, principal),
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_seconds,
        refresh_expires_at=row.expires_at,
        principal=principal,
    )


async def _current_principal(row: RefreshToken) -> Principal | None:
    """The principal a refresh continues, or None when it may no longer log in."""
    role = Role(row.role)
    if role is not Role.MEMBER:
        return Principal(
            role=role,
            subject=row.subject,
            scopes=frozenset(row.scopes or ()),
            channel=row.channel,
            store_id=row.store_id,
        )
    from loyalty.members import service as members
    from loyalty.members.errors import MemberNotFound
    from loyalty.members.models import MemberStatus

    if row.member_id is None:
        return None
    try:
        member = await members.get(member_id=row.member_id)  # follows a merge to the survivor
    except MemberNotFound:
        return None
    if member.status != MemberStatus.ACTIVE:
        return None
    return member_principal(member.id)


# --- service API keys -------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedApiKey:
    """A new key: ``secret`` is shown once and never stored."""

    api_key: ApiKey
    secret: str


async def create_api_key(
    *,
    actor: Principal,
    name: str,
    channel: str,
    store_id: str | None = None,
    scopes: Iterable[str] = (),
) -> IssuedApiKey:
    """Create a service key for ``channel`` (and ``store_id``). Raises ValidationError."""
    errors = FieldErrors()
    name = name.strip()
    if not name:
        errors.add("name", "required", "REQUIRED")
    elif len(name) > 64:
        errors.add("name", "at most 64 characters", "TOO_LONG")
    if store_id is not None:
        store_id = store_id.strip() or None
        if store_id is not None and len(store_id) > 64:
            errors.add("storeId", "at most 64 characters", "TOO_LONG")
    scope_set = sorted(set(scopes))
    unknown = [s for s in scope_set if s not in KNOWN_SCOPES]
    if unknown:
        errors.add("scopes", f"unknown scopes: {', '.join(unknown)}")
    errors.raise_if_any()

    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    async with in_transaction() as conn:
        row = await ApiKey.create(
            using_db=conn,
            name=name,
            prefix=secret[:10],
            key_hash=hash_secret(secret),
            channel=channel,
            store_id=store_id,
            scopes=scope_set,
            created_at=clock.now(),
            created_by=actor.subject,
        )
        await audit.record(
            actor=actor,
            action="api_key.create",
            target_type="ApiKey",
            target_id=row.id,
            details={"channel": channel, "store_id": store_id, "scopes": scope_set},
            connection=conn,
        )
    return IssuedApiKey(api_key=row, secret=secret)


async def list_api_keys(
    *, first: int, after_id: int | None = None, include_revoked: bool = False
) -> tuple[list[ApiKey], bool]:
    """API keys by ascending id after ``after_id``: ``(rows, has_next_page)``."""
    query = ApiKey.all()
    if not include_revoked:
        query = query.filter(revoked_at=None)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    rows = await query.order_by("id").limit(first + 1)
    return rows[:first], len(rows) > first


async def revoke_api_key(*, actor: Principal, api_key_id: int) -> ApiKey:
    """Revoke a key at once (idempotent). Raises :class:`ApiKeyNotFound`."""
    async with in_transaction() as conn:
        row = await ApiKey.filter(id=api_key_id).using_db(conn).first()
        if row is None:
            raise ApiKeyNotFound(api_key_id)
        if row.revoked_at is None:
            row.revoked_at = clock.now()
            await (
                ApiKey.filter(Q(id=row.id) & Q(revoked_at=None))
                .using_db(conn)
                .update(revoked_at=row.revoked_at)
            )
            await audit.record(
                actor=actor,
                action="api_key.revoke",
                target_type="ApiKey",
                target_id=row.id,
                connection=conn,
            )
    return row
