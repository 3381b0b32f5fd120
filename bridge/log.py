"""structlog configuration: the one place it is set up. Always to stderr, one format.

stdout is the MCP wire under stdio; nothing here ever writes to it. Records of the
libraries that log through the standard library (fastmcp, mcp, uvicorn, websockets,
fastmcp's httpx2) go through the same renderer as ours: JSON when stderr is not a
terminal, console otherwise. fastmcp's own Rich handlers are removed (and kept from coming back
when fastmcp is imported later), and every value a library logs is cut to a short
prefix first: at debug level fastmcp logs each tool call's arguments, and a 10 MB
argument must not become 10 MB of stderr.

This is the one module that imports structlog (every other gets its logger from
:func:`get_logger`), and it imports it without the optional modules structlog probes at
import to pretty-print exceptions: ``rich.traceback`` and ``rich.pretty`` (which pull in
pygments and attrs) and ``better_exceptions``. Rich comes with fastmcp, so structlog
would always find it; measured, those imports cost ~25 ms of start-up and ~3 MiB of
RSS for renderers the bridge does not use (JSON, and the console renderer with plain
tracebacks). They stay importable by anyone else afterwards.
"""

from __future__ import annotations

import logging
import os
import reprlib
import sys
from typing import Final, TextIO, cast

UNUSED_EXTRAS: Final = ("rich.traceback", "rich.pretty", "better_exceptions")
"""What structlog would import for tracebacks we do not render (see the module docstring)."""

_hidden = [name for name in UNUSED_EXTRAS if name not in sys.modules]
for _name in _hidden:
    sys.modules[_name] = None  # type: ignore[assignment]  # the import system's "not there"
try:
    import structlog
finally:
    for _name in _hidden:
        if _name in sys.modules and sys.modules[_name] is None:
            del sys.modules[_name]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
FORMATS: Final = ("auto", "console", "json")
LIBRARIES: Final = (
    "fastmcp",
    "mcp",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "httpx2",
    "websockets",
)
MAX_MESSAGE: Final = 500
"""Characters of a library's log message kept (values inside it are cut first)."""

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 8
_short.maxlevel = 3


class ShortValues(logging.Filter):
    """Cut each ``%``-argument of a library record to a short prefix before the message
    is formatted, and the message itself to :data:`MAX_MESSAGE` characters."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_cut(a) for a in args)
        elif isinstance(args, dict):
            record.args = {k: _cut(v) for k, v in args.items()}
        if isinstance(record.msg, str) and len(record.msg) > MAX_MESSAGE:
            record.msg = record.msg[:MAX_MESSAGE] + f"… ({len(record.msg)} chars)"
        return True


def _cut(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= 80 else value[:80] + f"… ({len(value)} chars)"
    return _short.repr(value)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """The logger for ``name`` (a module's ``log``), configured by :func:`configure`."""
    return cast("structlog.typing.FilteringBoundLogger", structlog.get_logger(name))


def _message_only(
    _: object, __: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """A library record's message, cut (its arguments were cut by :class:`ShortValues`)."""
    text = event.get("event")
    if isinstance(text, str) and len(text) > MAX_MESSAGE:
        event["event"] = text[:MAX_MESSAGE] + "…"
    return event


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """``fmt``: console on a tty, JSON otherwise (``auto``), or forced."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}; got {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: structlog.types.Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    else:
        renderer = structlog.processors.JSONRenderer()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging go to the same stream in the same format, at
    # warning and above even at debug: websockets' debug records quote the csrf in the
    # request line, fastmcp's quote every tool argument.
    handler = logging.StreamHandler(out)
    handler.addFilter(ShortValues())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, _message_only],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    quiet = max(LEVELS[level], logging.WARNING)
    root.setLevel(quiet)
    # fastmcp installs Rich handlers on its logger at import (propagate=False): drop them
    # now, and keep a later import from installing them again.
    os.environ.setdefault("FASTMCP_LOG_ENABLED", "false")
    for name in LIBRARIES:
        lib = logging.getLogger(name)
        for old in lib.handlers[:]:
            lib.removeHandler(old)
        lib.propagate = True
        lib.setLevel(quiet)
