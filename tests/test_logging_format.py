"""One log format on stderr: fastmcp's, mcp's and uvicorn's stdlib records go through
structlog like ours, and library messages never carry more than a short prefix of a value."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from bridge import log


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    saved = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in log.LIBRARIES
    }
    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    yield out
    structlog.configure(**saved_structlog)
    for name, (handlers, propagate) in saved.items():
        lib = logging.getLogger(name)
        lib.handlers[:] = handlers
        lib.propagate = propagate
    root.handlers[:] = root_handlers
    root.setLevel(root_level)


def test_library_records_are_json_lines_like_ours(stream: io.StringIO) -> None:
    import fastmcp  # noqa: F401  # installs its Rich handler at import

    log.configure("info", "json", stream)
    assert not logging.getLogger("fastmcp").handlers
    logging.getLogger("fastmcp.server").warning("Error calling tool %r", "get_logs")
    logging.getLogger("uvicorn.error").error("boom")
    logging.getLogger("mcp.server").warning("x")
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["Error calling tool 'get_logs'", "boom", "x"]
    assert all(r["level"] in ("warning", "error") and "timestamp" in r for r in records)


def test_debug_does_not_dump_a_10_mb_argument(stream: io.StringIO) -> None:
    """Library records stay at warning+ even at debug (fastmcp logs every argument there,
    websockets the csrf), and any value a library does log is cut to a short prefix."""
    log.configure("debug", "json", stream)
    huge = {"grep": "x" * 10_000_000, "list": list(range(100_000))}
    logging.getLogger("fastmcp.server").debug("call_tool %s with %s", "get_logs", huge)
    assert stream.getvalue() == ""
    logging.getLogger("fastmcp.server").warning("call_tool %s with %s", "get_logs", huge)
    logging.getLogger("fastmcp.server").warning(f"read {'u' * 1_000_000}")
    assert len(stream.getvalue()) < 3000
    first = json.loads(stream.getvalue().splitlines()[0])
    assert first["event"].startswith("call_tool get_logs with {")


def test_a_traceback_is_one_json_line(stream: io.StringIO) -> None:
    log.configure("info", "json", stream)
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        logging.getLogger("fastmcp").exception("failed")
    (line,) = stream.getvalue().splitlines()
    assert "ZeroDivisionError" in json.loads(line)["exception"]


def test_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log level must be one of"):
        log.configure("loud")
    with pytest.raises(ValueError, match="log format must be one of"):
        log.configure("info", "xml")
