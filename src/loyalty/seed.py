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
from loyalty.settings import Settings, get_settings

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
class ProgramSummary:
    tiers: int
    benefits: int
    earning_rules: int


@dataclass(frozen=True)
class DemoAccess:
    admin_token: str
    staff_token: str
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
    last = await Member.all().order_by("-id").first()
    last_id = last.id if last else 0
    bar = _progress(members)
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
            if bar:
                bar[0].update(bar[1], advance=len(batch))
    finally:
        if bar:
            bar[0].stop()
    seeded = await Member.filter(id__gt=last_id).order_by("id")
    await _seed_identities(rng, seeded)
    orders = await _seed_orders(rng, seeded)
    return SeedResult(members=members, orders=orders)


CATEGORIES = {
    "服装": [("T恤", 9_900), ("连衣裙", 39_900), ("外套", 59_900)],
    "美妆": [("口红", 23_000), ("面霜", 48_000), ("面膜", 12_900)],
    "食品": [("坚果礼盒", 16_800), ("咖啡豆", 8_800), ("茶叶", 26_800)],
    "家居": [("香薰", 13_800), ("床品四件套", 69_900)],
    "鞋包": [("运动鞋", 59_900), ("托特包", 89_900)],
}
ORDER_CHANNELS = [Channel.POS, Channel.ONLINE_STORE, Channel.WECHAT_MINIPROGRAM, Channel.APP]


async def ensure_program() -> None:
    """The demo loyalty program: tier ladder, benefit catalog, 1 point per yuan, and
    double points on member day (the 8th of each month). Idempotent."""
    from loyalty.auth.principal import SYSTEM
    from loyalty.benefits import service as benefits
    from loyalty.points.models import EarningRule, RuleKind
    from loyalty.points.service import program

    await benefits.seed_default_benefits()  # seeds the tier ladder first
    if not await EarningRule.exists():
        await program.save_rule(
            actor=SYSTEM,
            code="base",
            name="每消费1元积1分",
            kind=RuleKind.BASE,
            currency="CNY",
            points_per_unit=1,
        )
        await program.save_rule(
            actor=SYSTEM,
            code="member-day",
            name="会员日双倍积分",
            kind=RuleKind.PROMOTION,
            multiplier_permille=2000,
            days_of_month=[8],
        )


async def install_program() -> ProgramSummary:
    """:func:`ensure_program` for `loyalty install-program`; returns what the program holds."""
    from loyalty.benefits.models import Benefit
    from loyalty.points.models import EarningRule
    from loyalty.tiers.models import Tier

    await ensure_program()
    return ProgramSummary(
        tiers=await Tier.all().count(),
        benefits=await Benefit.all().count(),
        earning_rules=await EarningRule.all().count(),
    )


async def _seed_identities(rng: random.Random, members: list[Member]) -> None:
    """A phone identity for everyone, a POS card for store sign-ups, an openid (scoped to
    the mini-program) for mini-program sign-ups."""
    from loyalty.members.models import ChannelIdentity, IdentityKind

    app_id = get_settings().wechat_app_id
    rows: list[ChannelIdentity] = []
    for member in members:
        common = {"member_id": member.id, "linked_at": member.registered_at}
        channel = member.registered_channel
        if member.phone:
            rows.append(
                ChannelIdentity(
                    kind=IdentityKind.PHONE, value=member.phone, channel=channel, **common
                )
            )
        if channel is Channel.POS:
            card = f"8{member.id:011d}"
            rows.append(
                ChannelIdentity(kind=IdentityKind.POS_CARD, value=card, channel=channel, **common)
            )
        elif channel is Channel.WECHAT_MINIPROGRAM:
            openid = f"o{rng.getrandbits(120):030x}"
            rows.append(
                ChannelIdentity(
                    kind=IdentityKind.WECHAT_OPENID,
                    scope=app_id,
                    value=openid,
                    channel=channel,
                    **common,
                )
            )
    for start in range(0, len(rows), CHUNK):
        await ChannelIdentity.bulk_create(rows[start : start + CHUNK])


async def _seed_orders(rng: random.Random, members: list[Member]) -> int:
    """0–6 orders per member over the last year, across channels, through the real service
    (points, running stats and tier upgrades follow)."""
    from loyalty.orders import service as orders

    await ensure_program()
    now = clock.now()
    count = 0
    categories = list(CATEGORIES)
    for member in members:
        for n in range(rng.choices(range(7), weights=[25, 20, 18, 14, 10, 8, 5])[0]):
            lines = []
            for i in range(rng.randint(1, 3)):
                category = rng.choice(categories)
                name, price = rng.choice(CATEGORIES[category])
                lines.append(
                    orders.LineIn(
                        sku=f"{category}-{i}-{price}",
                        name=name,
                        category=category,
                        quantity=rng.randint(1, 2),
                        unit_price=price,
                    )
                )
            await orders.record(
                channel=rng.choice(ORDER_CHANNELS).value,
                external_id=f"seed-{member.id}-{n}",
                occurred_at=now - timedelta(days=rng.randint(0, 360), minutes=rng.randint(0, 900)),
                currency="CNY",
                lines=lines,
                member_id=member.id,
                store_id=f"S{rng.randint(1, 20):03d}",
            )
            count += 1
    return count


#: The demo member every example in docs/api.md uses: a store customer (phone, POS card) who
#: also uses the mini-program (openid ``o-demo-member``: log in with code
#: ``demo:o-demo-member``), GOLD on a year of spend, with points and a free-shipping benefit.
DEMO_PHONE = "+8613812345678"
DEMO_POS_CARD = "880000000001"
DEMO_OPENID = "o-demo-member"
DEMO_NAME = "王小明"
#: (days ago, store, lines as (sku, name, category, quantity, unit price in fen)).
DEMO_ORDERS = (
    (200, "S001", [("COAT-L", "外套", "服装", 2, 59_900), ("TSHIRT-M", "T恤", "服装", 3, 9_900)]),
    (120, "S001", [("CREAM-50", "面霜", "美妆", 4, 48_000)]),
    (45, "S002", [("BAG-TOTE", "托特包", "鞋包", 3, 89_900)]),
    (9, "S001", [("BEDDING-4", "床品四件套", "家居", 3, 69_900)]),
)  # fmt: skip


async def ensure_demo(*, members: int, settings: Settings | None = None) -> DemoAccess:
    """Seed when the database has no member yet, make sure the demo member exists, and
    return tokens to try the API with (signed with ``settings``' key)."""
    settings = settings or get_settings()
    await ensure_program()
    if not await Member.exists():
        # The demo member first, so a fresh database knows it as member 1.
        demo = await ensure_demo_member(settings)
        await run(members=members)
    else:
        demo = await ensure_demo_member(settings)
    admin = Principal(Role.ADMIN, subject="dev-admin", scopes=frozenset({"pii"}))
    staff = Principal(Role.STAFF, subject="dev-staff", scopes=frozenset({"pii"}))
    member = Principal(Role.MEMBER, subject=f"member:{demo.id}", member_id=demo.id)
    ttl = timedelta(days=7)
    return DemoAccess(
        admin_token=issue_access_token(settings, admin, ttl=ttl),
        staff_token=issue_access_token(settings, staff, ttl=ttl),
        member_token=issue_access_token(settings, member, ttl=ttl),
        member_id=demo.id,
    )


async def ensure_demo_member(settings: Settings) -> Member:
    """The demo member (see :data:`DEMO_PHONE`), registered with its consent and orders
    (¥8,209 of spend over the last 200 days: GOLD) on first call; later calls find it."""
    from loyalty.members import service as members
    from loyalty.members.models import ConsentPurpose, IdentityKind
    from loyalty.orders import service as orders

    registration = await members.register(
        channel=Channel.POS,
        display_name=DEMO_NAME,
        phone=DEMO_PHONE,
        birth_date=date(1990, 5, 20),
        gender=Gender.MALE,
        region="上海市",
        identities=[
            members.IdentityClaim(kind=IdentityKind.POS_CARD, value=DEMO_POS_CARD),
            members.IdentityClaim(
                kind=IdentityKind.WECHAT_OPENID, value=DEMO_OPENID, scope=settings.wechat_app_id
            ),
        ],
    )
    member = registration.member
    if not registration.created:
        return member
    await members.set_consent(
        member_id=member.id,
        purpose=ConsentPurpose.MARKETING_WECHAT,
        granted=True,
        channel=Channel.WECHAT_MINIPROGRAM,
        policy_version="2026-01",
    )
    now = clock.now()
    for n, (days_ago, store, lines) in enumerate(DEMO_ORDERS, start=1):
        await orders.record(
            channel=Channel.POS.value,
            external_id=f"demo-{n:04d}",
            occurred_at=now - timedelta(days=days_ago),
            currency="CNY",
            lines=[
                orders.LineIn(sku=sku, name=name, category=category, quantity=q, unit_price=price)
                for sku, name, category, q, price in lines
            ],
            member_id=member.id,
            store_id=store,
        )
    return await members.get(member_id=member.id)
