"""strawberry execution against raw graphql-core on the same document and schema.

Ceiling: graphql-core's ``execute`` on strawberry's underlying GraphQLSchema with the parsed,
validated document (no parsing, no extensions). Goal (DESIGN §5): strawberry ≤ 1.5× that time
with its parser and validation caches on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from graphql import execute, parse
from loyalty.auth.principal import Principal, Role
from loyalty.graphql.loaders import Loaders
from loyalty.graphql.schema import build_schema
from loyalty.jobs import JobQueue
from loyalty.settings import Settings

DOCUMENT = """
query Page {
  __typename
}
"""


@dataclass(frozen=True)
class ExecutionResult:
    iterations: int
    strawberry_us: float
    graphql_core_us: float

    @property
    def ratio(self) -> float:
        return self.strawberry_us / self.graphql_core_us if self.graphql_core_us else 0.0


def _context(settings: Settings) -> Any:
    from loyalty.graphql.context import Context

    return Context(
        request=None,  # type: ignore[arg-type]
        response=None,
        settings=settings,
        principal=Principal(Role.ADMIN, subject="bench", scopes=frozenset({"pii"})),
        loaders=Loaders(),
        jobs=JobQueue(None),
    )


async def run(*, iterations: int, document: str = DOCUMENT) -> ExecutionResult:
    settings = Settings(env="test", rate_limit_per_minute=10**9)
    schema = build_schema(settings)
    parsed = parse(document)
    # warm-up fills the parser and validation caches
    for _ in range(20):
        await schema.execute(document, context_value=_context(settings))
    started = time.perf_counter()
    for _ in range(iterations):
        result = await schema.execute(document, context_value=_context(settings))
        assert result.errors is None, result.errors
    strawberry_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(iterations):
        raw = execute(schema._schema, parsed, context_value=_context(settings))
        if hasattr(raw, "__await__"):
            raw = await raw  # type: ignore[misc]
        assert raw.errors is None, raw.errors  # type: ignore[union-attr]
    core_s = time.perf_counter() - started
    if result.data != raw.data:  # type: ignore[union-attr]
        raise AssertionError(f"strawberry answered {result.data}, graphql-core {raw.data}")  # type: ignore[union-attr]
    return ExecutionResult(
        iterations=iterations,
        strawberry_us=strawberry_s / iterations * 1e6,
        graphql_core_us=core_s / iterations * 1e6,
    )
