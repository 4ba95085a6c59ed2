"""Structured logging, request ids and Prometheus metrics."""

from __future__ import annotations

import logging
import sys

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from loyalty.settings import Settings

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "loyalty_http_requests_total",
    "HTTP requests by route and status.",
    ["route", "status"],
    registry=REGISTRY,
)
GRAPHQL_OPERATIONS = Counter(
    "loyalty_graphql_operations_total",
    "GraphQL operations by operation name and type.",
    ["operation", "type"],
    registry=REGISTRY,
)
GRAPHQL_LATENCY = Histogram(
    "loyalty_graphql_duration_seconds",
    "GraphQL operation latency by operation name.",
    ["operation"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
GRAPHQL_ERRORS = Counter(
    "loyalty_graphql_errors_total",
    "Top-level GraphQL errors by extensions.code.",
    ["code"],
    registry=REGISTRY,
)
JOBS = Counter(
    "loyalty_jobs_total",
    "Jobs run by function and outcome.",
    ["function", "outcome"],
    registry=REGISTRY,
)


def configure_logging(settings: Settings) -> None:
    """structlog to stdout: JSON in production, readable lines in dev."""
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level, force=True)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
