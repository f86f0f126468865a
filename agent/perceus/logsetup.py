"""structlog set-up shared by every entry point: one event per line, key=value (or JSON on request)."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure(*, level: str = "info", json: bool = False, stream: TextIO | None = None) -> None:
    """Configure structlog once per process; `stream` defaults to stderr."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.processors.LogfmtRenderer(key_order=["timestamp", "level", "event"], drop_missing=True)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
