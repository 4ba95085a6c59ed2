"""Normalisation at the boundary: phones to E.164, emails lower-cased and validated."""

from __future__ import annotations

from datetime import date

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from loyalty import clock
from loyalty.errors import FieldError

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
