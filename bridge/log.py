"""structlog configuration: the one place it is set up. Always to stderr.

stdout is the MCP wire under stdio; nothing here ever writes to it.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """``fmt``: console on a tty, JSON otherwise (``auto``), or forced."""
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: structlog.types.Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (uvicorn, mcp) go to stderr too, at warning+.
    quiet = max(LEVELS.get(level, logging.INFO), logging.WARNING)
    logging.basicConfig(stream=out, level=quiet)
    for name in ("fastmcp", "mcp", "uvicorn", "httpx2", "websockets"):
        logging.getLogger(name).setLevel(quiet)
