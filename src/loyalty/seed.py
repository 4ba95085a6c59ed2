"""Realistic zh_CN demo data (Faker): members across channels, with their orders."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from datetime import date, timedelta

import phonenumbers
from faker import Faker

from loyalty import clock
from loyalty.auth.principal import Principal, Role
from loyalty.auth.tokens import issue_access_token
from loyalty.members.models import Channel, Gender, Member
from loyalty.settings import get_settings

CHUNK = 1_000
CHANNEL_WEIGHTS = {
    Channel.WECHAT_MINIPROGRAM: 45,
    Channel.POS: 30,
    Channel.APP: 15,
    Channel.ONLINE_STORE: 10,
}


@dataclass(frozen=True)
class SeedResult:
    members: int
    orders: int


@dataclass(frozen=True)
class DemoAccess:
    admin_token: str
    member_token: str
    member_id: int


def _phone(fake: Faker, used: set[str]) -> str:
    while True:
        raw = fake.phone_number()
        parsed = phonenumbers.parse(raw, "CN")
        if not phonenumbers.is_valid_number(parsed):
            continue
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if e164 not in used:
            used.add(e164)
            return e164


def _progress(total: int):  # type: ignore[no-untyped-def]
    if not sys.stdout.isatty():
        return None
    from rich.progress import Progress

    progress = Progress()
    progress.start()
    return progress, progress.add_task("members", total=total)


async def run(*, members: int, seed: int = 2026) -> SeedResult:
    """Create ``members`` demo members (plus orders where the orders domain is installed)."""
    fake = Faker("zh_CN")
    Faker.seed(seed)
    rng = random.Random(seed)
    existing = set(await Member.filter(phone__not_isnull=True).values_list("phone", flat=True))
    used: set[str] = {p for p in existing if p}
    channels = list(CHANNEL_WEIGHTS)
    weights = list(CHANNEL_WEIGHTS.values())
    now = clock.now()
    bar = _progress(members)
    created: list[Member] = []
    try:
        for start in range(0, members, CHUNK):
            batch = []
            for _ in range(min(CHUNK, members - start)):
                birth: date = fake.date_of_birth(minimum_age=16, maximum_age=75)
                gender = rng.choice([Gender.FEMALE, Gender.FEMALE, Gender.MALE, Gender.UNDISCLOSED])
                name = fake.name_female() if gender is Gender.FEMALE else fake.name()
                batch.append(
                    Member(
                        display_name=name,
                        phone=_phone(fake, used),
                        email=None,
                        birth_date=birth,
                        birth_month=birth.month,
                        birth_day=birth.day,
                        gender=gender,
                        region=fake.province(),
                        registered_channel=rng.choices(channels, weights)[0],
                        registered_at=now - timedelta(days=rng.randint(0, 3 * 365)),
                    )
                )
            await Member.bulk_create(batch)
            created.extend(batch)
            if bar:
                bar[0].update(bar[1], advance=len(batch))
    finally:
        if bar:
            bar[0].stop()
    orders = await _seed_orders(rng, fake)
    return SeedResult(members=members, orders=orders)


async def _seed_orders(rng: random.Random, fake: Faker) -> int:
    """Orders across channels for the seeded members (none until orders exist)."""
    return 0


async def ensure_demo(*, members: int) -> DemoAccess:
    """Seed when the database has no member yet; return tokens to try the API with."""
    if not await Member.exists():
        await run(members=members)
    demo = await Member.all().order_by("id").first()
    settings = get_settings()
    admin = Principal(Role.ADMIN, subject="dev-admin", scopes=frozenset({"pii"}))
    admin_token = issue_access_token(settings, admin, ttl=timedelta(days=7))
    member_id = demo.id if demo else 0
    member_token = issue_access_token(
        settings,
        Principal(Role.MEMBER, subject=f"member:{member_id}", member_id=member_id),
        ttl=timedelta(days=7),
    )
    return DemoAccess(admin_token=admin_token, member_token=member_token, member_id=member_id)
