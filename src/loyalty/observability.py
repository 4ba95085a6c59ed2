"""Structured logging, request ids and Prometheus metrics."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from structlog.types import EventDict, Processor

from loyalty.settings import Settings

# prometheus_client picks its storage when first imported: with PROMETHEUS_MULTIPROC_DIR set
# (``loyalty serve`` sets it before any worker starts) every process writes its values to
# files there, and a scrape of any one process adds up all of them.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

REGISTRY = CollectorRegistry(auto_describe=True)
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

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

OUTBOX_DELIVERED = Counter(
    "loyalty_outbox_delivered_total",
    "Outbox rows the receiver accepted, by kind.",
    ["kind"],
    registry=REGISTRY,
)
OUTBOX_FAILED = Counter(
    "loyalty_outbox_failed_total",
    "Outbox delivery attempts that failed and will be retried, by kind.",
    ["kind"],
    registry=REGISTRY,
)
OUTBOX_DEAD = Counter(
    "loyalty_outbox_dead_total",
    "Outbox rows given up (attempts exhausted or refused for good), by kind.",
    ["kind"],
    registry=REGISTRY,
)
# Gauges are set from the database at each scrape (and by the reconciler): the latest
# value wins across processes.
OUTBOX_ROWS = Gauge(
    "loyalty_outbox_rows",
    "Outbox rows by status and kind.",
    ["status", "kind"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "loyalty_outbox_oldest_pending_age_seconds",
    "Seconds the oldest unfinished outbox row (PENDING, FAILED, IN_FLIGHT) has waited; "
    "0 when none waits.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is when a record is emitted (not at set-up)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _exception_type(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """``exception_type`` next to the stack of any event logged with ``exc_info``."""
    exc_info = event_dict.get("exc_info")
    if isinstance(exc_info, BaseException):
        event_dict.setdefault("exception_type", type(exc_info).__name__)
    elif isinstance(exc_info, tuple) and exc_info and exc_info[0] is not None:
        event_dict.setdefault("exception_type", exc_info[0].__name__)
    return event_dict


_SHARED: tuple[Processor, ...] = (
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _exception_type,
)


def log_handler(log_format: str = "console") -> logging.Handler:
    """The one handler of the process: every record, ours or a library's (uvicorn, arq,
    starlette), becomes one line on stdout.

    In ``json`` each line is one JSON object, a stack included as the ``exception`` field.
    """
    renderer: Processor
    if log_format == "json":
        final: list[Processor] = [structlog.processors.format_exc_info]
        renderer = structlog.processors.JSONRenderer()
    else:
        final = []
        # Plain stacks: rich's would print every frame's local variables (tokens, PII).
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    handler = _StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=list(_SHARED),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *final,
                renderer,
            ],
        )
    )
    handler._loyalty = True  # type: ignore[attr-defined]
    return handler


def _level(settings: Settings) -> int:
    level = logging.getLevelName(settings.log_level.upper())
    return level if isinstance(level, int) else logging.INFO


def scrape() -> bytes:
    """The text exposition of every metric: of all worker processes in multiprocess mode,
    of this process otherwise."""
    if MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
    return generate_latest(registry)


def process_stopped() -> None:
    """Drop this process's live gauges from the multiprocess directory (its counters stay:
    totals survive a worker's restart)."""
    if MULTIPROCESS_DIR is not None:
        multiprocess.mark_process_dead(os.getpid(), path=MULTIPROCESS_DIR)


def configure_logging(settings: Settings) -> None:
    """structlog and the standard library to one stdout handler: JSON lines in production,
    readable lines in dev. Library loggers (uvicorn's included) write through it too."""
    level = _level(settings)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_loyalty", False):
            root.removeHandler(handler)
    root.addHandler(log_handler(settings.log_format))
    root.setLevel(level)
    for name in _UVICORN_LOGGERS:
        # uvicorn's default config gives some of these plain-text handlers of their own;
        # a logger it silenced (no handler, not propagating: access log off) stays silent.
        logger = logging.getLogger(name)
        if logger.handlers:
            logger.handlers = []
            logger.propagate = True
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )


_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's ``log_config``: its loggers write through :func:`log_handler`, in every
    worker process from its start (before the app is loaded)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "loyalty": {
                "()": "loyalty.observability.log_handler",
                "log_format": settings.log_format,
            }
        },
        "root": {"handlers": ["loyalty"], "level": _level(settings)},
        "loggers": {name: {"handlers": [], "propagate": True} for name in _UVICORN_LOGGERS},
    }
