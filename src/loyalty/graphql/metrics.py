"""Per-operation metrics as a schema extension (operation name known after parsing)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from loyalty.observability import GRAPHQL_LATENCY, GRAPHQL_OPERATIONS


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = context.operation_name or "anonymous"
        try:
            kind = context.operation_type.value
        except Exception:  # the document did not parse
            kind = "invalid"
        GRAPHQL_OPERATIONS.labels(operation=name, type=kind).inc()
        GRAPHQL_LATENCY.labels(operation=name).observe(time.perf_counter() - started)
