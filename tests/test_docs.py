"""Every GraphQL example in docs/ validates against the schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from graphql import parse, validate
from loyalty.graphql.schema import schema

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCKS = [
    (path.name, i, block)
    for path in sorted(DOCS.glob("*.md"))
    for i, block in enumerate(re.findall(r"```graphql\n(.*?)```", path.read_text(), re.S))
]


def test_docs_have_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize(("doc", "index", "block"), BLOCKS, ids=[f"{d}#{i}" for d, i, _ in BLOCKS])
def test_example_is_valid(doc: str, index: int, block: str) -> None:
    errors = validate(schema._schema, parse(block))
    assert not errors, [e.message for e in errors]
