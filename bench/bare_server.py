"""The framework's floor: a FastMCP server with one no-op tool over stdio, nothing else.

``python -m bench.bare_server`` imports only fastmcp and anyio (no ``bridge``), so its
start-up time and idle RSS are what any fastmcp 4 server on this interpreter costs;
the bridge's own share is the difference.
"""

from __future__ import annotations

from functools import partial

import anyio
from fastmcp import FastMCP


def main() -> None:
    mcp = FastMCP("bare")

    @mcp.tool
    def bench_noop() -> str:
        """Does nothing."""
        return "ok"

    anyio.run(
        partial(mcp.run_stdio_async, show_banner=False, log_level="warning"), backend="asyncio"
    )


if __name__ == "__main__":
    main()
