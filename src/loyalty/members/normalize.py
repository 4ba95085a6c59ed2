"""Normalisation at the boundary: phones to E.164, emails lower-cased and validated."""

from __future__ import annotations

from datetime import date

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from loyalty import clock
from loyalty.errors import FieldError
from loyalty.members.models import SCOPED_KINDS, IdentityKind

DEFAULT_REGION = "CN"
MAX_NAME_LENGTH = 64


def phone(raw: str, *, field: str = "phone", region: str = DEFAULT_REGION) -> str:
    """``"138 1234 5678"``, ``"+86 138…"`` and ``"0086…"`` all give ``"+8613812345678"``."""
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise _invalid(field, "not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise _invalid(field, "not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def email(raw: str, *, field: str = "email") -> str:
    """Validated, lower-cased address (no DNS look-up)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise _invalid(field, "not a valid email address") from exc
    return result.normalized.lower()


def display_name(raw: str, *, field: str = "displayName") -> str:
    text = " ".join(raw.split())
    if not text:
        raise _invalid(field, "must not be empty", "REQUIRED")
    if len(text) > MAX_NAME_LENGTH:
        raise _invalid(field, f"at most {MAX_NAME_LENGTH} characters", "TOO_LONG")
    return text


def birth_date(value: date, *, field: str = "birthDate") -> date:
    if value > clock.today():
        raise _invalid(field, "must not be in the future")
    if value.year < 1900:
        raise _invalid(field, "must be after 1900")
    return value


class InvalidField(Exception):
    """Raised by the normalisers; services collect these into one ValidationError."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message)
        self.error = error


def _invalid(field: str, message: str, code: str = "INVALID") -> InvalidField:
    return InvalidField(FieldError(field, message, code))


MAX_IDENTITY_LENGTH = 128
MAX_SCOPE_LENGTH = 64


def identity(
    kind: IdentityKind, value: str, scope: str | None = None, *, field: str = "value"
) -> tuple[str, str]:
    """``(scope, value)`` as stored: phones E.164, emails lower-cased, others trimmed.

    Only WECHAT_OPENID is scoped (the mini-program app id, required); other kinds are stored
    with scope ``""`` whatever the caller passed.
    """
    prefix = field.rsplit(".", 1)[0] + "." if "." in field else ""
    if kind is IdentityKind.PHONE:
        normalised = phone(value, field=field)
    elif kind is IdentityKind.EMAIL:
        normalised = email(value, field=field)
    else:
        normalised = value.strip()
        if not normalised:
            raise _invalid(field, "must not be empty", "REQUIRED")
        if len(normalised) > MAX_IDENTITY_LENGTH:
            raise _invalid(field, f"at most {MAX_IDENTITY_LENGTH} characters", "TOO_LONG")
    if kind not in SCOPED_KINDS:
        return "", normalised
    stored_scope = (scope or "").strip()
    if not stored_scope:
        raise _invalid(f"{prefix}scope", "the mini-program app id is required", "REQUIRED")
    if len(stored_scope) > MAX_SCOPE_LENGTH:
        raise _invalid(f"{prefix}scope", f"at most {MAX_SCOPE_LENGTH} characters", "TOO_LONG")
    return stored_scope, normalised


MAX_TAG_LENGTH = 32
MAX_TAGS = 50


def tags(values: list[str], *, field: str = "tags") -> list[str]:
    """Trimmed, de-duplicated tags in first-seen order."""
    seen: dict[str, None] = {}
    for raw in values:
        tag = raw.strip()
        if not tag:
            raise _invalid(field, "tags must not be empty", "REQUIRED")
        if len(tag) > MAX_TAG_LENGTH:
            raise _invalid(field, f"each tag at most {MAX_TAG_LENGTH} characters", "TOO_LONG")
        seen.setdefault(tag, None)
    if len(seen) > MAX_TAGS:
        raise _invalid(field, f"at most {MAX_TAGS} tags", "TOO_LONG")
    return list(seen)


def short_text(value: str, *, field: str, maximum: int = 64) -> str:
    text = value.strip()
    if len(text) > maximum:
        raise _invalid(field, f"at most {maximum} characters", "TOO_LONG")
    return text
