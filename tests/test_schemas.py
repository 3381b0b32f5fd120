"""Output and input schemas (bridge/mcp/schemas.py): every tool keeps an output schema, and
every answer the tools give validates against both the schema the server lists and the
compact one, at every depth.

Validated with a small checker of the JSON Schema keywords these schemas use; any other
keyword fails the test, so nothing is skipped silently. (``jsonschema`` is installed
through fastmcp but is not a declared dev dependency: tests/test_dependencies.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client
from pydantic import BaseModel

from bench.tooldefs import TARGET_MODEL, TARGET_TOTAL, ToolList
from bridge.core import present
from bridge.mcp import control, live, schemas
from bridge.mcp.context import BridgeContext
from bridge.mcp.server import build_server
from bridge.settings import Settings, TokenSource
from bridge.store import Store
from bridge.tilt.client import TiltHTTP

from .test_mcp_tools import loaded_store, server

ANNOTATIONS = {"title", "description", "default"}
READ_CALLS: list[tuple[str, dict[str, Any], type[BaseModel]]] = [
    ("get_status", {}, present.StatusOut),
    ("list_resources", {}, present.ResourceList),
    ("describe_resource", {"name": "fail"}, present.ResourceDetail),
    ("describe_resource", {"name": "crasher", "builds": 50}, present.ResourceDetail),
    ("get_logs", {"tail": 50}, present.LogsOut),
    ("get_logs", {"resource": "fail", "grep": "error", "context": 2}, present.LogsOut),
    ("get_changes", {}, live.ChangesOut),
    ("get_changes", {"cursor": "0.0"}, live.ChangesOut),
    ("wait_for", {"resources": ["fail"], "timeout_s": 1}, live.WaitOut),
    ("list_buttons", {"include_builtin": True}, control.ButtonList),
]
WRITE_ANSWERS: list[BaseModel] = [
    control.TriggerOut(resource="web", outcome="error", error="boom", log=["x"], waited_s=1.5),
    control.TriggerOut(resource="web", outcome="triggered"),
    control.ToggleList(
        results=[control.ToggleOut(resource="a", state="disabled", changed=True, confirmed=False)]
    ),
    control.ClickOut(button="b"),
    control.ModeOut(resource="a", trigger_mode="manual"),
    control.ArgsOut(args=["--x"], note="n"),
]
DEPTHS = (0, 1, 2, None)


def check(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> None:
    """Raise AssertionError when ``value`` does not satisfy ``schema``."""
    root = root or schema
    unknown = (
        set(schema)
        - ANNOTATIONS
        - {
            "type",
            "properties",
            "required",
            "items",
            "additionalProperties",
            "anyOf",
            "$ref",
            "$defs",
            "minItems",
            "maxLength",
            "minimum",
            "maximum",
            "exclusiveMinimum",
        }
    )
    assert not unknown, f"keywords the checker does not know: {unknown}"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        check(value, root["$defs"][name], root)
    if "anyOf" in schema:
        errors = []
        for branch in schema["anyOf"]:
            try:
                check(value, branch, root)
                break
            except AssertionError as exc:
                errors.append(exc)
        else:
            raise AssertionError(f"{value!r} matches no branch: {errors}")
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert any(_is(value, k) for k in kinds), f"{value!r} is not {kinds}"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            assert key in value, f"required {key!r} missing from {sorted(value)}"
        for key, item in value.items():
            if key in props:
                check(item, props[key], root)
            elif isinstance(schema.get("additionalProperties"), dict):
                check(item, schema["additionalProperties"], root)
            else:
                assert schema.get("additionalProperties", True) is not False, key
    if isinstance(value, list) and "items" in schema:
        for item in value:
            check(item, schema["items"], root)


def _is(value: Any, kind: str) -> bool:
    match kind:
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "string":
            return isinstance(value, str)
        case "boolean":
            return isinstance(value, bool)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "null":
            return value is None
    raise AssertionError(f"unknown type {kind!r}")


@pytest.fixture
async def client() -> Any:
    async with Client(server(loaded_store(), read_only=False)) as c:
        yield c


@pytest.mark.anyio
async def test_every_tool_lists_an_object_output_schema(client: Client) -> None:
    tools = await client.list_tools()
    assert len(tools) == 8  # no Tilt HTTP client here: the read tools
    for tool in tools:
        assert tool.output_schema is not None, tool.name
        assert tool.output_schema.get("type") == "object", tool.name


@pytest.mark.anyio
async def test_the_default_tool_set_lists_within_8_kb_and_the_model_reads_within_5_kb() -> None:
    """A regression guard for issue 13's target, measured as bench/tooldefs.py does (compact
    JSON of the ``tools/list`` response; names, descriptions and input schemas): the 14
    tools a bridge with a Tilt HTTP client serves. Only the listing matters here, so the
    client never connects (the figures do not depend on Tilt)."""
    http = TiltHTTP("http://127.0.0.1:9", TokenSource(), timeout_s=1)
    try:
        ctx = BridgeContext(store=Store(), settings=Settings(), http=http)
        async with Client(build_server(ctx)) as c:
            tools = await c.list_tools()
    finally:
        await http.aclose()
    listed = tuple(t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools)
    assert len(listed) == 14
    response = {"jsonrpc": "2.0", "id": 1, "result": {"tools": list(listed)}}
    got = ToolList(ToolList.part(response, ("jsonrpc", "id", "result")), listed)
    assert all("outputSchema" in t for t in listed)
    assert got.wire_bytes <= TARGET_TOTAL, got.wire_bytes
    assert got.model_bytes <= TARGET_MODEL, got.model_bytes


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "args", "model"), READ_CALLS)
async def test_every_read_answer_validates_against_its_listed_and_compact_schemas(
    client: Client, tool: str, args: dict[str, Any], model: type[BaseModel]
) -> None:
    listed = {t.name: t.output_schema for t in await client.list_tools()}
    result = await client.call_tool(tool, args, raise_on_error=False)
    assert not result.is_error, result.content
    answer = result.structured_content
    assert answer is not None
    listed_schema = listed[tool]
    assert listed_schema is not None
    check(answer, listed_schema)
    for depth in DEPTHS:
        check(answer, schemas.schema(model, depth=depth))


@pytest.mark.parametrize("answer", WRITE_ANSWERS, ids=lambda a: type(a).__name__)
def test_write_answers_validate_against_their_compact_schemas(answer: BaseModel) -> None:
    sent = answer.model_dump(mode="json", exclude_none=True)
    for depth in DEPTHS:
        check(sent, schemas.schema(type(answer), depth=depth))


def test_a_wrong_answer_fails_the_compact_schema() -> None:
    """The checker and the schemas can fail: a missing required key, a wrong type inside
    a nested model, a null where the field is never sent as null."""
    good = present.ConnectionOut(state="connected", url="ws://x").model_dump(exclude_none=True)
    status = {
        "connection": good,
        "tiltfile": "ok",
        "resources": 1,
        "counts": {"ok": 1},
        "problems": [{"name": "a", "state": "error", "why": "w"}],
    }
    check(status, schemas.schema(present.StatusOut, depth=None))
    with pytest.raises(AssertionError):
        check(
            {k: v for k, v in status.items() if k != "tiltfile"}, schemas.schema(present.StatusOut)
        )
    with pytest.raises(AssertionError):
        check(
            {**status, "problems": [{"name": "a", "state": 3, "why": "w"}]},
            schemas.schema(present.StatusOut, depth=None),
        )
    with pytest.raises(AssertionError):
        check({**status, "stale": None}, schemas.schema(present.StatusOut, depth=1))


def test_depth_zero_is_the_object_and_the_keys_it_always_has() -> None:
    assert schemas.schema(present.LogsOut) == {
        "type": "object",
        "required": ["resource", "lines", "shown"],
    }


def test_full_depth_shares_a_model_used_twice_and_keeps_each_description_once() -> None:
    full = schemas.schema(present.ResourceDetail, depth=None)
    assert set(full["$defs"]) == {"BuildOut"}
    assert full["properties"]["builds"]["items"] == {"$ref": "#/$defs/BuildOut"}
    text = repr(full)
    assert "title" not in text
    assert "null" not in text
    assert text.count("resource name, or 'global'") == 1


def test_a_field_type_it_cannot_describe_is_refused() -> None:
    class Odd(present.Compact):
        when: complex

    with pytest.raises(TypeError, match="no compact schema"):
        schemas.schema(Odd, depth=1)


def test_compact_input_drops_nulls_titles_length_caps_and_closed_objects_only() -> None:
    fastmcp_style = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "label": {
                "anyOf": [{"type": "string", "maxLength": 9}, {"type": "null"}],
                "default": None,
                "title": "Label",
                "description": "d",
            },
            "tail": {"type": "integer", "default": 100, "minimum": 1},
            "inputs": {
                "anyOf": [
                    {
                        "type": "object",
                        "additionalProperties": {
                            "anyOf": [{"type": "string"}, {"type": "boolean"}]
                        },
                    },
                    {"type": "null"},
                ]
            },
        },
        "required": [],
    }
    assert schemas.compact_input(fastmcp_style) == {
        "type": "object",
        "properties": {
            "label": {"type": "string", "description": "d"},
            "tail": {"type": "integer", "default": 100, "minimum": 1},
            "inputs": {
                "type": "object",
                "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
            },
        },
        "required": [],
    }
    assert fastmcp_style["additionalProperties"] is False  # a copy: the input is untouched
