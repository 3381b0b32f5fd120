"""Compact JSON Schemas for the tools: the one place they are produced.

``tools/list`` is read by every client on every connection (and by the model), so the
schemas are cut to what a caller needs to form a value: no ``title``, no ``default:
null``, no ``anyOf`` with ``null``, no ``maxLength``.

* :func:`schema`: a tool's output schema, built from the answer model's fields (not from
  pydantic's JSON Schema generator, so no model has to be built at start-up). Answers are
  sent without ``null`` fields (``model_errors`` dumps with ``exclude_none``), so a field
  that may be ``None`` is optional and typed without ``null``; every other field is always
  sent and is required. A model used twice in one schema is a shared ``$defs`` entry; one
  used once is inlined. A description is kept once per schema.
* :func:`compact_input`: a tool's input schema (as fastmcp derives it from the signature)
  without titles, ``default: null``, the ``null`` branch of optional arguments, the
  top-level ``additionalProperties: false`` and ``maxLength`` (the length caps of
  :mod:`bridge.core.inputs` are guard rails against hostile input, far above any real
  name, and a value over one is refused naming the cap). The arguments are still
  validated by fastmcp against the signature (``null`` stays accepted, an unknown
  argument and an over-long string stay refused); only what is advertised is shorter.
"""

from __future__ import annotations

import types
from collections import Counter
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

JSON = dict[str, Any]
SCALARS: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}
OUTPUT_DEPTH: int | None = 0
"""The depth of every tool's listed output schema (see :func:`schema`)."""


def schema(model: type[BaseModel], *, depth: int | None = 0) -> JSON:
    """``model``'s output schema (an object), compact; raises :class:`TypeError` for a
    field type it cannot describe.

    ``depth``: how many levels of models are spelled out with their properties (``None``:
    all). A model below that is ``{"type": "object"}`` (a list of them, an array of
    objects), its field descriptions left out with it; the answer itself always lists its
    ``required`` keys. Tools use 0 (the object and the keys it always has: about 60 bytes
    a tool, so ``tools/list`` stays under 8 KB); 1 types the answer's own fields (+3.5 KB
    for the 13 tools), ``None`` is the whole tree (+6.5 KB).
    """
    uses = Counter(_models_in(model)) if depth is None else Counter[type[BaseModel]]()
    shared = {m for m, n in uses.items() if n > 1 and m is not model}
    seen: set[str] = set()
    spell = _Spell(shared, seen, depth)
    defs: dict[str, JSON] = {m.__name__: spell.object(m, 1) for m in _ordered(shared)}
    root = spell.object(model, 0)
    if defs:
        root["$defs"] = defs
    return root


def compact_input(schema: JSON) -> JSON:
    """A copy of the input schema without titles, ``default: null``, ``maxLength``,
    ``{"type": "null"}`` branches (a one-branch ``anyOf`` is unwrapped) and the top-level
    ``additionalProperties: false``."""
    out: JSON = _compact(schema)
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    return out


def _compact(value: Any) -> Any:
    if isinstance(value, list):
        return [_compact(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: JSON = {}
    for key, item in value.items():
        if key == "properties" and isinstance(item, dict):
            out[key] = {name: _compact(v) for name, v in item.items()}
        elif key in ("title", "maxLength") or (key == "default" and item is None):
            continue
        else:
            out[key] = _compact(item)
    branches = out.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1 and isinstance(kept[0], dict):
            del out["anyOf"]
            out = {**kept[0], **out}
        elif kept != branches:
            out["anyOf"] = kept
    return out


# ---------------------------------------------------------------------------- output


def _models_in(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """Every model a field of ``model`` names, recursively, once per mention."""
    for field in model.model_fields.values():
        for found in _nested(field.annotation):
            yield found
            yield from _models_in(found)


def _nested(tp: Any) -> Iterator[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield tp
        return
    for arg in get_args(tp):
        yield from _nested(arg)


def _ordered(shared: set[type[BaseModel]]) -> list[type[BaseModel]]:
    return sorted(shared, key=lambda m: m.__name__)


class _Spell:
    def __init__(self, shared: set[type[BaseModel]], seen: set[str], depth: int | None) -> None:
        self.shared = shared
        self.seen = seen
        self.depth = depth

    def object(self, model: type[BaseModel], level: int) -> JSON:
        spelled = self.depth is None or level < self.depth
        if not spelled and level > 0:
            return {"type": "object"}
        properties: JSON = {}
        required: list[str] = []
        for name, field in model.model_fields.items():
            nullable, prop = self.type(field.annotation, level)
            if not spelled:
                if not nullable:
                    required.append(name)
                continue
            if field.description and field.description not in self.seen:
                self.seen.add(field.description)
                prop = {**prop, "description": field.description}
            properties[name] = prop
            if not nullable:
                required.append(name)
        out: JSON = {"type": "object"}
        if spelled:
            out["properties"] = properties
        if required:
            out["required"] = required
        return out

    def type(self, tp: Any, level: int) -> tuple[bool, JSON]:
        """(may be None, the schema of the value when it is not None)."""
        origin = get_origin(tp)
        if origin is Union or origin is types.UnionType:
            args = get_args(tp)
            nullable = type(None) in args
            parts = [self.type(a, level)[1] for a in args if a is not type(None)]
            if len(parts) == 1:
                return nullable, parts[0]
            if all(set(p) == {"type"} and isinstance(p["type"], str) for p in parts):
                return nullable, {"type": [p["type"] for p in parts]}
            return nullable, {"anyOf": parts}
        if tp in SCALARS:
            return False, {"type": SCALARS[tp]}
        if origin is list:
            (item,) = get_args(tp)
            return False, {"type": "array", "items": self.type(item, level)[1]}
        if origin is dict:
            key, value = get_args(tp)
            if key is not str:
                raise TypeError(f"dict keys must be str in an answer model, got {tp!r}")
            return False, {"type": "object", "additionalProperties": self.type(value, level)[1]}
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in self.shared:
                return False, {"$ref": f"#/$defs/{tp.__name__}"}
            return False, self.object(tp, level + 1)
        raise TypeError(f"no compact schema for {tp!r}; teach bridge.mcp.schemas")
