"""Every GraphQL example in docs/ works as written on the demo data of `loyalty dev`.

Each example selects every member of each result union, validates against the schema, and,
sent over HTTP with the credential its section names (and the variables shown under it) to a
dev app seeded by the same function `loyalty dev` uses, answers a success: no errors, no
`…Error` result, no empty list or zero count.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from tortoise import Tortoise

from graphql import (
    DocumentNode,
    FieldNode,
    InlineFragmentNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_union_type,
    parse,
    validate,
    visit,
)
from loyalty import db
from loyalty import seed as seeding
from loyalty.app import Resources, create_app
from loyalty.auth import service as auth
from loyalty.auth.principal import Principal, Role
from loyalty.graphql.schema import schema
from loyalty.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: The credential named in parentheses at the end of a `## ` heading.
CALLERS = {
    "staff token": "staff",
    "member token": "member",
    "service key": "service",
    "admin token": "admin",
}
PIECES = re.compile(
    r"^## (?P<heading>[^\n]*)$"
    r"|<!-- caller: (?P<caller>\w+) -->"
    r"|```graphql\n(?P<graphql>.*?)```"
    r"|```json\n(?P<json>.*?)```",
    re.M | re.S,
)


@dataclass
class Example:
    doc: str
    index: int
    query: str
    caller: str
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.doc}#{self.index}"


def _examples(path: Path) -> Iterator[Example]:
    section: str | None = None
    override: str | None = None
    last: Example | None = None
    index = 0
    for piece in PIECES.finditer(path.read_text(encoding="utf-8")):
        if piece["heading"] is not None:
            named = re.search(r"\(([^)]*)\)\s*$", piece["heading"])
            section = CALLERS.get(named.group(1)) if named else None
        elif piece["caller"] is not None:
            override = piece["caller"]
        elif piece["graphql"] is not None:
            caller = override or section
            assert caller, f"{path.name}: example {index} has no caller (section or marker)"
            last = Example(path.name, index, piece["graphql"], caller)
            override = None
            index += 1
            yield last
        elif last is not None:
            # Variables follow the example they belong to.
            last.variables = json.loads(piece["json"])


EXAMPLES = [example for path in sorted(DOCS.glob("*.md")) for example in _examples(path)]


def _unselected_union_members(document: DocumentNode) -> list[str]:
    """``field: Member`` for each union member a field's selection has no fragment for."""
    type_info = TypeInfo(schema._schema)
    missing: list[str] = []

    class Unions(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            named = get_named_type(type_info.get_type())
            if not is_union_type(named) or node.selection_set is None:
                return
            chosen = {
                selection.type_condition.name.value
                for selection in node.selection_set.selections
                if isinstance(selection, InlineFragmentNode) and selection.type_condition
            }
            missing.extend(
                f"{node.name.value}: {member.name}"
                for member in named.types  # type: ignore[attr-defined]
                if member.name not in chosen
            )

    visit(document, TypeInfoVisitor(type_info, Unions()))
    return missing


def _failures(value: Any, path: str = "data") -> Iterator[str]:
    """Where a result is not a plain success (nested nulls are answers, not failures)."""
    if isinstance(value, dict):
        typename = value.get("__typename")
        if isinstance(typename, str) and typename.endswith("Error"):
            yield f"{path} is {typename}: {value.get('message')}"
        if value.get("totalCount") == 0:
            yield f"{path}.totalCount is 0"
        for key, item in value.items():
            if key == "edges" and item == []:
                yield f"{path}.edges is empty"
            elif isinstance(item, (dict, list)):
                yield from _failures(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _failures(item, f"{path}[{i}]")


def test_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 10
    assert {example.caller for example in EXAMPLES} >= set(CALLERS.values())


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_is_valid_and_selects_every_result(example: Example) -> None:
    document = parse(example.query)
    errors = validate(schema._schema, document)
    assert not errors, [e.message for e in errors]
    assert not _unselected_union_members(document)


# --- running the examples ----------------------------------------------------------------------


async def _restart_ids() -> None:
    """Empty tables whose ids start again at 1, as in the fresh database of `make run`."""
    connection = db.connection()
    if connection.capabilities.dialect == "postgres":
        tables = ", ".join(f'"{m._meta.db_table}"' for m in Tortoise.apps.get_models_iterable())
        await connection.execute_script(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    else:
        has_sequences = await connection.execute_query_dict(
            "SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'"
        )
        if has_sequences:
            await connection.execute_script("DELETE FROM sqlite_sequence")


@pytest_asyncio.fixture
async def demo(orm: Any, redis: Any, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """A dev app (the WeChat stand-in included) on the data `loyalty dev` seeds, with the
    credentials the docs name."""
    dev = settings.model_copy(update={"env": "dev"})
    application = create_app(dev, resources=Resources(redis))  # loads the domains' hooks
    await _restart_ids()
    access = await seeding.ensure_demo(members=20, settings=dev)
    # As `loyalty create-api-key --name pos --channel POS` makes it.
    key = await auth.create_api_key(
        actor=Principal(role=Role.ADMIN, subject="cli"), name="pos", channel="POS"
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield {
                "http": http,
                "headers": {
                    "anonymous": {},
                    "admin": {"Authorization": f"Bearer {access.admin_token}"},
                    "staff": {"Authorization": f"Bearer {access.staff_token}"},
                    "member": {"Authorization": f"Bearer {access.member_token}"},
                    "service": {"Authorization": f"ApiKey {key.secret}"},
                },
            }


async def test_every_example_answers_a_success_on_the_demo_data(demo: dict[str, Any]) -> None:
    http: httpx.AsyncClient = demo["http"]
    failures: dict[str, list[str]] = {}
    for example in EXAMPLES:
        response = await http.post(
            "/graphql",
            json={"query": example.query, "variables": example.variables},
            headers=demo["headers"][example.caller],
        )
        body = response.json()
        problems = [f"HTTP {response.status_code}"] if response.status_code != 200 else []
        problems += [error["message"] for error in body.get("errors", [])]
        data = body.get("data") or {}
        problems += [f"data.{root} is null" for root, value in data.items() if value is None]
        problems += list(_failures(data))
        if problems:
            failures[example.id] = problems
    assert not failures, json.dumps(failures, ensure_ascii=False, indent=1)
