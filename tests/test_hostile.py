"""The hostile-input tier: Hypothesis builds arguments from each tool's own input schema
(plus junk: wrong types, unknown keys, huge strings), URIs and completion requests, and
sends them to a bridge fed with real Tilt recordings. Never an internal error, never a
traceback, never an answer over the size cap, and the server answers the next call."""

from __future__ import annotations

import time
from typing import Any

import anyio
import mcp_types as t
import pytest
from fastmcp import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import MCPError

from .test_mcp_tools import loaded_store, server

READ_TOOLS = ("get_status", "list_resources", "describe_resource", "get_logs", "list_buttons")
MAX_ANSWER = 64 * 1024
NASTY = st.sampled_from(
    ["(.*.*)*=", "(a+)+$", "((a{100}){100}){100}", "(", "\x00", "%", "%2F", "web#1?x", "9" * 400]
)
TEXT = st.one_of(st.text(max_size=50), NASTY, st.integers(1, 200_000).map(lambda n: "x" * n))
JUNK = st.one_of(
    st.none(), st.integers(), st.floats(), st.booleans(), TEXT, st.lists(TEXT, max_size=3)
)


def from_schema(prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    types = {p.get("type") for p in prop.get("anyOf", [prop])}
    options: list[st.SearchStrategy[Any]] = [JUNK]
    if "integer" in types:
        options.append(st.integers(-(10**12), 10**12))
    if "boolean" in types:
        options.append(st.booleans())
    if "string" in types:
        options.append(TEXT)
    if "array" in types:
        options.append(st.lists(TEXT, max_size=5))
    return st.one_of(options)


def arguments(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties", {})
    known = st.fixed_dictionaries({}, optional={k: from_schema(v) for k, v in props.items()})
    extra = st.dictionaries(st.text(max_size=10), JUNK, max_size=2)
    return st.tuples(known, extra).map(lambda kv: {**kv[1], **kv[0]})


async def answered_quickly(c: Client) -> None:
    t0 = time.perf_counter()
    await c.call_tool("get_status", {})
    assert time.perf_counter() - t0 < 5.0  # loose: a loaded 2-core machine


def check_error(exc: MCPError) -> None:
    assert exc.error.code != t.INTERNAL_ERROR, exc.error.message
    assert len(exc.error.message) < 2000


@pytest.mark.anyio
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_tools_never_fail_internally_on_schema_driven_hostile_arguments(
    data: st.DataObject, capfd: pytest.CaptureFixture[str]
) -> None:
    async with Client(server(loaded_store())) as c:
        tools = {x.name: x for x in await c.list_tools()}
        name = data.draw(st.sampled_from(READ_TOOLS))
        args = data.draw(arguments(tools[name].input_schema))
        with anyio.fail_after(20):
            try:
                result = await c.call_tool(name, args, raise_on_error=False)
            except MCPError as exc:
                check_error(exc)
            else:
                text = "".join(getattr(x, "text", "") for x in result.content)
                assert len(text) < MAX_ANSWER
                assert "Error calling tool" not in text
                assert "pydantic.dev" not in text
            await answered_quickly(c)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.anyio
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    tail=st.one_of(TEXT, st.just("web"), st.just("web/logs"), st.just("fail")),
    prefix=st.sampled_from(["tilt://resources/", "tilt://", "file:///", ""]),
    value=TEXT,
)
async def test_uris_and_completions_never_fail_internally(
    tail: str, prefix: str, value: str, capfd: pytest.CaptureFixture[str]
) -> None:
    async with Client(server(loaded_store())) as c:
        try:
            contents = await c.read_resource(prefix + tail)
            assert sum(len(getattr(x, "text", "")) for x in contents) < MAX_ANSWER * 2
        except MCPError as exc:
            check_error(exc)
        except ValueError as exc:  # the client itself refuses a URI that is not a URL
            assert "Provided resource URI is invalid" in str(exc)  # noqa: PT017
        done = await c.complete(
            ref={"type": "ref/resource", "uri": "tilt://resources/{name}"},
            argument={"name": "name", "value": value},
        )
        assert len(done.values) <= 100
        await answered_quickly(c)
    assert "Traceback" not in capfd.readouterr().err
