"""What the server does not serve, answered as the spec says and in our words: an unknown
method is JSON-RPC -32601, an unknown tool is the protocol error -32602 "Unknown tool" (not a
tool result), each naming the value (cut) and what exists. In-memory fastmcp client, both
protocol eras, against the bridge's own server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as t
import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError

from bridge.mcp.app import assemble
from bridge.settings import Settings
from bridge.store import Store

pytestmark = pytest.mark.anyio

MODES = pytest.mark.parametrize("mode", ["legacy", "auto"])


class AnyRequest(t.Request[dict[str, Any] | None, str]):
    """A request with any method name (what a careless or hostile client may send)."""

    method: str  # type: ignore[assignment]
    params: dict[str, Any] | None = None


@asynccontextmanager
async def bridge_client(mode: str, **settings: Any) -> AsyncIterator[Client[Any]]:
    app = await assemble(Settings(**settings), Store(), None)
    async with Client(app.mcp, mode=mode) as client:
        yield client


async def send(client: Client[Any], method: str, params: dict[str, Any] | None = None) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await client.session.send_request(AnyRequest(method=method, params=params), t.EmptyResult)
    return caught.value


@MODES
async def test_an_unknown_method_is_method_not_found_in_our_words(mode: str) -> None:
    async with bridge_client(mode) as client:
        err = await send(client, "tools/delete", {})
        assert err.code == t.METHOD_NOT_FOUND
        assert err.message.startswith("method 'tools/delete' is not served at protocol 20")
        assert err.message.endswith(
            "tools/list, resources/list and prompts/list say what this server offers."
        )
        assert err.data == "tools/delete"
        huge = await send(client, "x" * 1_000_000)
        assert huge.code == t.METHOD_NOT_FOUND
        assert "(1000000 characters)" in huge.message
        assert len(huge.message) < 600
        assert huge.data == "x" * 100  # never the whole value echoed back
        await client.list_tools()  # and the session goes on


@MODES
async def test_an_unknown_tool_is_the_specs_protocol_error_with_close_matches(mode: str) -> None:
    async with bridge_client(mode) as client:
        err = await send(client, "tools/call", {"name": "get_stauts", "arguments": {}})
        assert err.code == t.INVALID_PARAMS
        assert err.message == (
            "Unknown tool: 'get_stauts'; did you mean get_status? (tools/list describes each)."
        )
        err = await send(client, "tools/call", {"name": "zzz", "arguments": {"a": 1}})
        assert err.code == t.INVALID_PARAMS
        assert err.message.startswith("Unknown tool: 'zzz'; tools: describe_resource, get_changes")
        err = await send(client, "tools/call", {"name": "q" * 1_000_000, "arguments": {}})
        assert err.code == t.INVALID_PARAMS
        assert len(err.message) < 600
        with pytest.raises(MCPError, match="Unknown tool: 'nope'"):
            await client.call_tool("nope", {})


async def test_a_tool_hidden_by_the_filters_is_unknown_and_a_known_tools_error_stays_a_result() -> (
    None
):
    async with bridge_client("legacy", deny_tools=frozenset({"get_changes"})) as client:
        err = await send(client, "tools/call", {"name": "get_changes", "arguments": {}})
        assert err.code == t.INVALID_PARAMS
        assert "Unknown tool: 'get_changes'" in err.message
        # a real tool that fails answers a tool result with isError, as before
        result = await client.call_tool("describe_resource", {"name": "nope"}, raise_on_error=False)
        assert result.is_error
