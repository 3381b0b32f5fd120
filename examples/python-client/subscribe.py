"""Subscribe to a Tilt resource through tilt-mcp-bridge and print each update as it happens.

    pip install tilt-mcp-bridge            # brings fastmcp and mcp, all this script needs
    python subscribe.py web                # starts `tilt-mcp-bridge` over stdio itself
    python subscribe.py web --logs         # the resource's log lines instead of its state
    python subscribe.py web --url http://127.0.0.1:8765/mcp      # a bridge serving HTTP
    python subscribe.py ticker --logs --count 3 -- --demo         # args after -- go to the bridge

The bridge pushes a change notification for the subscribed URI; the script then reads the
resource and prints what changed. It uses MCP's 2026-07-28 `subscriptions/listen` stream
(what fastmcp's Client negotiates); clients of the 2025 era send `resources/subscribe` and get
`notifications/resources/updated` instead, and the bridge serves both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import datetime

import anyio
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from mcp.client.subscriptions import ResourceUpdated, listen


def summary(uri: str, text: str, seen: list[str]) -> list[str]:
    """What to print for one read of ``uri``: new log lines, or the resource's state."""
    data = json.loads(text)
    if uri.endswith("/logs"):
        # The resource holds the newest lines; print the ones after the last line printed.
        lines = [str(line) for line in data.get("lines", [])]
        last = seen[-1] if seen else None
        at = len(lines) - 1 - lines[::-1].index(last) if last in lines else None
        new = lines[at + 1 :] if at is not None else lines[-5:]
        seen[:] = lines
        return new
    keys = ("name", "state", "update", "runtime", "why", "last_error")
    return [json.dumps({k: data[k] for k in keys if k in data}, separators=(", ", ": "))]


def is_logs(uri: str) -> bool:
    return uri.endswith("/logs")  # log lines carry their own timestamps


async def watch(client: Client, uri: str, count: int | None) -> None:
    seen: list[str] = []
    async with client, listen(client.session, resource_subscriptions=[uri]) as updates:
        print(f"subscribed to {uri}", file=sys.stderr)
        got = 0
        async for event in updates:
            if not isinstance(event, ResourceUpdated) or event.uri != uri:
                continue
            contents = await client.read_resource(uri)
            text = getattr(contents[0], "text", "{}")
            stamp = "" if is_logs(uri) else datetime.now().strftime("%H:%M:%S ")
            for line in summary(uri, text, seen):
                print(f"{stamp}{line.rstrip()}", flush=True)
            got += 1
            if count is not None and got >= count:
                return


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    bridge_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, bridge_args = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("resource", help="Tilt resource name, e.g. web")
    parser.add_argument("--logs", action="store_true", help="follow its logs, not its state")
    parser.add_argument("--url", help="a bridge serving Streamable HTTP (default: start one)")
    parser.add_argument("--token", help="bearer token for --url (or set BRIDGE_HTTP_TOKEN)")
    parser.add_argument("--command", default="tilt-mcp-bridge", help="the bridge to start")
    parser.add_argument("--count", type=int, help="stop after this many updates")
    opts = parser.parse_args(argv)

    uri = f"tilt://resources/{opts.resource}" + ("/logs" if opts.logs else "")
    if opts.url:
        transport: StdioTransport | StreamableHttpTransport = StreamableHttpTransport(
            opts.url, auth=opts.token
        )
    else:
        transport = StdioTransport(command=opts.command, args=bridge_args)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it quietly
        anyio.run(watch, Client(transport), uri, opts.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
