"""Hypothesis strategies built from fleetctl's published JSON Schemas: valid documents, and mutations of them.

hypothesis-jsonschema would build them, but its last release (0.23.1) fails on the Hypothesis this project runs
(6.170: `'many' object has no attribute 'more'`, from a Hypothesis internal it reaches into). The generator
(engine/schema_gen.py) emits a small subset of JSON Schema, all of which is covered here; a keyword outside it
raises, so a schema that grows a new keyword makes the agreement test fail until it is covered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from engine.manifest.schemacheck import Validator, ecma_regex

Schema = Mapping[str, Any]
ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$defs"}
COVERED = ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "const",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
}
MAX_DEPTH = 8

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers(-10, 1000) | st.floats(-1e6, 1e6, allow_nan=False) | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=6,
)


def resolve(schema: Any, root: Schema) -> Any:
    while isinstance(schema, Mapping) and "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        rest = {k: v for k, v in schema.items() if k != "$ref" and k not in ANNOTATIONS}
        schema = {**target, **rest} if rest else target
    return schema


def _merged(schema: Schema, root: Schema) -> dict[str, Any]:
    """allOf folded into one schema (the generator writes allOf only to add `required` to a referenced model)."""
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for sub in schema["allOf"]:
        sub = resolve(sub, root)
        for key, value in sub.items():
            if key == "required":
                out["required"] = sorted(set(out.get("required", ())) | set(value))
            elif key == "properties":
                out["properties"] = {**value, **out.get("properties", {})}
            else:
                out.setdefault(key, value)
    return out


def _narrowed(schema: Schema, branch: Schema) -> dict[str, Any]:
    out = dict(schema)
    for key, value in branch.items():
        if key == "required":
            out["required"] = sorted(set(out.get("required", ())) | set(value))
        elif key == "properties":
            out["properties"] = {**out.get("properties", {}), **value}
        else:
            out[key] = value
    return out


def from_schema(schema: Any, root: Schema, depth: int = 0) -> st.SearchStrategy[Any]:
    """Documents `schema` accepts (with the ECMA-262 pattern semantics of engine/manifest/schemacheck.py)."""
    if schema is True:
        return JSON_VALUES
    if schema is False:
        return st.nothing()
    schema = resolve(schema, root)
    unknown = set(schema) - COVERED
    if unknown:
        raise NotImplementedError(f"schema keywords not covered by the strategy: {sorted(unknown)}")
    if "allOf" in schema:
        return from_schema(_merged(schema, root), root, depth)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key and k not in ANNOTATIONS}
            if not rest:
                return st.one_of([from_schema(branch, root, depth) for branch in schema[key]])
            # alternatives beside the schema's own keywords (the secret reference's exactly-one-of): each branch
            # narrows the schema; what the whole accepts is kept (oneOf: exactly one branch may match)
            whole = Validator({**schema, "$defs": root.get("$defs", {})})
            return st.one_of(
                [from_schema(_narrowed(rest, resolve(branch, root)), root, depth) for branch in schema[key]]
            ).filter(whole.is_valid)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind is None:
        return JSON_VALUES
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, root, depth) for k in kind])
    if kind == "string":
        return _strings(schema)
    if kind == "integer":
        low = schema.get("minimum", schema["exclusiveMinimum"] + 1 if "exclusiveMinimum" in schema else -(10**6))
        high = schema.get("maximum", schema["exclusiveMaximum"] - 1 if "exclusiveMaximum" in schema else 10**9)
        return st.integers(low, high)
    if kind == "number":
        return st.floats(
            schema.get("minimum", schema.get("exclusiveMinimum", -1e9)),
            schema.get("maximum", schema.get("exclusiveMaximum", 1e9)),
            exclude_min="exclusiveMinimum" in schema,
            exclude_max="exclusiveMaximum" in schema,
            allow_nan=False,
        ) | st.integers(int(schema.get("minimum", 0)), int(schema.get("maximum", 100)))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = schema.get("items", True)
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", low + 3), low + 3) if depth < MAX_DEPTH else low
        return st.lists(from_schema(items, root, depth + 1), min_size=low, max_size=high)
    if kind == "object":
        return _objects(schema, root, depth)
    raise NotImplementedError(f"type {kind!r}")


def _strings(schema: Schema) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        strings = st.from_regex(ecma_regex(schema["pattern"]))
        return strings.filter(lambda s: len(s) >= low and (high is None or len(s) <= high))
    return st.text(min_size=low, max_size=min(high, 24) if high is not None else 24)


def _objects(schema: Schema, root: Schema, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties", {})
    required = set(schema.get("required", ()))
    fixed = {k: from_schema(v, root, depth + 1) for k, v in props.items() if k in required}
    optional = (
        {k: from_schema(v, root, depth + 1) for k, v in props.items() if k not in required} if depth < MAX_DEPTH else {}
    )
    declared = st.fixed_dictionaries(fixed, optional=optional)
    extra = schema.get("additionalProperties", True)
    if extra is False or depth >= MAX_DEPTH:
        return declared
    keys = st.text(min_size=1, max_size=10).filter(lambda k: k not in props)
    more = st.dictionaries(keys, from_schema(extra, root, depth + 1), max_size=2)
    return st.builds(lambda a, b: {**b, **a}, declared, more)


# ------------------------------------------------------------------------------------------------- mutations
OTHER_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    3,
    1.5,
    "",
    "x",
    "3",
    "true",
    "bad name!",
    "ACTIVE",
    [],
    [1],
    ["x"],
    {},
    {"env": "X"},
    {"file": "x.pem"},
    {"secretRef": "s"},
    {"env": "X", "file": "y"},
    "a" * 200,
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path in a document (keys of mappings, positions of lists), the document's own () included."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(paths(item, prefix + (key,)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(paths(item, prefix + (i,)))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@st.composite
def mutated(draw: st.DrawFn, documents: st.SearchStrategy[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """A valid document with one change at one place: (document, what was changed)."""
    doc = _copy(draw(documents))
    path = draw(st.sampled_from(paths(doc)))
    target = _get(doc, path)
    moves = ["replace", "add-field"] if isinstance(target, dict) else ["replace"]
    if path:
        moves.append("delete")
    if isinstance(target, str):
        moves += ["newline", "pad", "unicode-digit", "carriage-return", "lengthen"]
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        moves += ["bump", "as-text"]
    if isinstance(target, list):
        moves += ["append", "empty"]
    move = draw(st.sampled_from(moves))
    parent, last = (_get(doc, path[:-1]), path[-1]) if path else (None, None)

    def put(value: Any) -> None:
        nonlocal doc
        if parent is None:
            doc = value
        else:
            parent[last] = value

    if move == "replace":
        put(draw(st.sampled_from(OTHER_VALUES)))
    elif move == "add-field":
        target[draw(st.sampled_from(["zzUnknown", "spec", "file", "env", "name", "type"]))] = draw(
            st.sampled_from(OTHER_VALUES)
        )
    elif move == "delete":
        del parent[last]
    elif move == "newline":
        put(target + "\n")
    elif move == "pad":
        put(" " + target)
    elif move == "unicode-digit":  # an Arabic-Indic digit where an ASCII one may stand
        put((target[:-1] if target[-1:].isdigit() else target) + "\u0663")
    elif move == "carriage-return":
        put(target + "\r" + target)
    elif move == "lengthen":
        put(target + "a" * 130)
    elif move == "bump":
        put(target + draw(st.sampled_from([-(10**6), -1, 1, 10**6])))
    elif move == "as-text":
        put(str(target))
    elif move == "append":
        target.append(draw(st.sampled_from(OTHER_VALUES)))
    elif move == "empty":
        target.clear()
    return doc, f"{move} at {'.'.join(map(str, path)) or '(document)'}"
