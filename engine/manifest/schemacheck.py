"""Check manifests against the published JSON Schemas only: `fleetctl validate --schema-only` (editor parity).

schemas/ holds one JSON Schema per kind (engine/schema_gen.py writes them from the pydantic models; an editor's
YAML language server validates manifests with them as they are typed). This module validates every document of a
fleet folder with exactly those schemas and `jsonschema`'s Draft 2020-12 validator, so a pipeline can say what an
editor says, before (and without) the engine's own checks: no model, no reference resolution, no file read (a
`{file: ...}` reference is not followed, a ThingSet's CSV is not read), no secret resolved.

What it shares with the engine is the loader (engine/manifest/loader.py): the same input limits (file size,
depth, aliases, documents; hostile input fails small, located) and the positions it records, so every error is a
`Diagnostic` at file:line:col with the field path and what was expected. All errors of all files are collected.

Two parts are written here rather than taken from jsonschema, each for editor parity:
- messages: jsonschema's own messages quote the instance (`'HostName=...;SharedAccessKey=...' is not of type
  'object'`), and a value written where a secret reference belongs must never be printed (DESIGN §1.1). Each
  error is reworded from its keyword and the schema (what was expected), and the value is quoted only where the
  schema says the field cannot hold a secret (no secret reference among its alternatives, not free-form);
- `pattern`: JSON Schema patterns are ECMA-262 regular expressions (what an editor runs), while jsonschema calls
  Python's `re.search`, which differs on the patterns the schemas use: `$` also matches before a final newline,
  `\\d` and `\\w` match any Unicode digit or letter, `.` matches `\\r`. `ecma_regex` translates those constructs
  (a full ECMA engine is not a Python package; the translation covers the syntax the generator emits and is held
  to it by tests/test_schema_only.py).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import by_relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from engine.diagnostics import Diagnostic, error
from engine.manifest.limits import Limits
from engine.manifest.loader import Document, load_path

Schema = Mapping[str, Any]
_RELEVANCE = by_relevance()
_SECRET_DEF = "SecretRefModel"  # the $defs entry of a secret reference ({env}, {file}, {secretRef})
_QUOTE_MAX = 80  # longer values are described by their length, not quoted


# ------------------------------------------------------------------------------------------ ECMA-262 patterns
_ECMA_DOT = "[^\\n\\r\\u2028\\u2029]"


@functools.lru_cache(maxsize=512)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema (ECMA-262) pattern as a Python regular expression with the same matches: `$` (no multiline
    flag) only at the end of the text, `\\d` and `\\w` ASCII only, `.` no line terminator (\\n \\r U+2028 U+2029)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "d":
                out.append("0-9" if in_class else "[0-9]")
            elif nxt == "D":
                out.append("\\D" if in_class else "[^0-9]")
            elif nxt == "w":
                out.append("A-Za-z0-9_" if in_class else "[A-Za-z0-9_]")
            elif nxt == "W":
                out.append("\\W" if in_class else "[^A-Za-z0-9_]")
            else:
                out.append(ch + nxt)
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
            if pattern[i + 1 : i + 2] == "^":  # a leading ^ or ] belongs to the class
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("\\]")
                i += 1
        elif ch == "$":
            out.append("\\Z")
        elif ch == ".":
            out.append(_ECMA_DOT)
        else:
            out.append(ch)
        i += 1
    return re.compile("".join(out))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Schema) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"does not match the pattern {pattern}")


Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]  # types-jsonschema leaves extend untyped


# ----------------------------------------------------------------------------------------------- the schemas
@dataclass(frozen=True)
class KindSchema:
    api_version: str
    kind: str
    schema: Schema
    validator: Any
    _secret: dict[tuple[Any, ...], bool] = field(default_factory=dict, repr=False, compare=False)

    def secret_capable(self, path: Iterable[Any]) -> bool:
        """`secret_capable` of this schema, remembered per field path (list positions alike): a list of 100,000
        wrong items asks 100,000 times."""
        key = tuple(0 if isinstance(p, int) else p for p in path)
        found = self._secret.get(key)
        if found is None:
            found = self._secret[key] = secret_capable(self.schema, key)
        return found


class SchemaSet:
    """Every kind's published schema, checked and compiled once; keyed by (apiVersion, kind)."""

    def __init__(self, schemas: Iterable[Schema]) -> None:
        self.by_kind: dict[tuple[str, str], KindSchema] = {}
        resources = [(s["$id"], Resource.from_contents(s, default_specification=DRAFT202012)) for s in schemas]
        self.registry: Registry[Any] = Registry().with_resources(resources)
        for _, resource in resources:
            schema = resource.contents
            Validator.check_schema(schema)
            api_version = schema["properties"]["apiVersion"]["const"]
            kind = schema["properties"]["kind"]["const"]
            validator = Validator(schema, registry=self.registry, format_checker=Validator.FORMAT_CHECKER)
            self.by_kind[(api_version, kind)] = KindSchema(api_version, kind, schema, validator)

    @classmethod
    def from_directory(cls, root: Path) -> SchemaSet:
        """The committed schemas (schemas/<group>/<Kind>.json)."""
        return cls(json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(root).rglob("*.json")))

    @classmethod
    def from_texts(cls, texts: Mapping[str, str]) -> SchemaSet:
        """Schemas as JSON texts (engine/schema_gen.py's render_all: what schemas/ holds)."""
        return cls(json.loads(texts[name]) for name in sorted(texts))

    def get(self, api_version: str, kind: str) -> KindSchema | None:
        return self.by_kind.get((api_version, kind))

    @property
    def api_versions(self) -> list[str]:
        return sorted({a for a, _ in self.by_kind})

    def kinds_of(self, api_version: str) -> list[str]:
        return sorted(k for a, k in self.by_kind if a == api_version)


# ------------------------------------------------------------------------------------------------ checking
def check_path(root: Path, schemas: SchemaSet, limits: Limits | None = None) -> tuple[int, list[Diagnostic]]:
    """(documents read, diagnostics) for every manifest below `root`: the loader's own (syntax, limits, ...),
    then each document's schema errors. `limits`: default from FLEETCTL_MAX_* (engine/manifest/limits.py)."""
    root = Path(root)
    if not root.exists():
        return 0, [error(f"fleet path not found: {root}")]
    diags: list[Diagnostic] = []
    if limits is None:
        limits, bad = Limits.from_env()
        diags.extend(bad)
    docs, load_diags = load_path(root, limits)
    diags.extend(load_diags)
    for doc in docs:
        diags.extend(check_document(doc, schemas))
    return len(docs), diags


def check_document(doc: Document, schemas: SchemaSet) -> list[Diagnostic]:
    """The schema errors of one document, located (an unknown apiVersion/kind is one error naming the known)."""
    data = doc.data
    if not isinstance(data, dict):
        return [
            error(
                "a manifest document must be a mapping with apiVersion, kind, metadata and spec",
                f"got {_describe(data)}",
                source=doc.source(),
            )
        ]
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        missing = [k for k, v in (("apiVersion", api_version), ("kind", kind)) if not isinstance(v, str)]
        return [
            error(
                f"'{name}' is missing or not a string: the schema is chosen by apiVersion and kind",
                f"expected apiVersion one of: {', '.join(schemas.api_versions)}",
                source=doc.source((name,)),
                field=name,
            )
            for name in missing
        ]
    found = schemas.get(api_version, kind)
    if found is None:
        return [_unknown_kind(doc, schemas, api_version, kind)]
    return [diag for err in found.validator.iter_errors(data) for diag in _diagnostics(err, doc, found)]


def _unknown_kind(doc: Document, schemas: SchemaSet, api_version: str, kind: str) -> Diagnostic:
    group, _, version = api_version.rpartition("/")
    same = sorted(a for a, k in schemas.by_kind if k == kind and a.rpartition("/")[0] == group)
    if same:
        return error(
            f"apiVersion '{api_version}' is not served for {kind}",
            f"expected apiVersion: {', '.join(same)}",
            source=doc.source(("apiVersion",)),
            field="apiVersion",
        )
    if api_version not in schemas.api_versions:
        hint = difflib.get_close_matches(api_version, schemas.api_versions, n=1)
        return error(
            f"unknown apiVersion '{api_version}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
            f"expected one of: {', '.join(schemas.api_versions)}",
            source=doc.source(("apiVersion",)),
            field="apiVersion",
        )
    names = schemas.kinds_of(api_version)
    hint = difflib.get_close_matches(kind, names, n=1)
    return error(
        f"unknown kind '{kind}' for {api_version}" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
        f"expected one of: {', '.join(names)}",
        source=doc.source(("kind",)),
        field="kind",
    )


# -------------------------------------------------------------------------------------- errors → diagnostics
def _diagnostics(err: ValidationError, doc: Document, kind: KindSchema) -> list[Diagnostic]:
    """One jsonschema error as diagnostics: an alternative (anyOf/oneOf) that matched the value's shape and
    failed inside is followed (the most relevant by jsonschema's ranking), an unknown field is one diagnostic per
    field."""
    path = tuple(err.absolute_path)
    keyword = str(err.validator)
    # an error raised by a validator always has these set (jsonschema types them as possibly unset, or a bool schema)
    schema: Mapping[str, Any] = err.schema if isinstance(err.schema, Mapping) else {}
    value: Any = err.validator_value
    if keyword in ("anyOf", "oneOf"):
        # an alternative that took the value's shape and failed inside says more than "none matched"; the most
        # relevant by jsonschema's own ranking (best_match's key), followed one level at a time
        context = list(err.context or ())
        deeper = [e for e in context if len(e.absolute_path) > len(path)]
        if deeper:
            return _diagnostics(max(deeper, key=_RELEVANCE), doc, kind)
        # or a branch of the value's type that failed on its own rule (a secret reference naming two sources)
        mistyped = {e.relative_schema_path[0] for e in context if e.validator == "type" and e.relative_schema_path}
        shaped = [e for e in context if e.relative_schema_path and e.relative_schema_path[0] not in mistyped]
        if shaped:
            return _diagnostics(max(shaped, key=_RELEVANCE), doc, kind)
        summary = f"expected {_alternatives(schema, kind.schema)}"
        return [_diag(doc, path, summary, _got(err.instance, kind, path))]
    if keyword == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        out = []
        for key in _extras(err.instance, schema):
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            out.append(
                _diag(
                    doc,
                    path + (key,),
                    f"unknown field '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                    f"expected one of: {', '.join(allowed)}" if allowed else "no fields are allowed here",
                )
            )
        return out
    if keyword == "required":
        missing = [k for k in value if isinstance(err.instance, dict) and k not in err.instance]
        return [_diag(doc, path + (k,), f"required field '{k}' is missing", "") for k in missing]
    return [_diag(doc, path, _expected(keyword, value), _got(err.instance, kind, path))]


def _diag(doc: Document, path: tuple[Any, ...], summary: str, detail: str) -> Diagnostic:
    return error(summary, detail, source=doc.source(path), field=".".join(str(p) for p in path) or None)


def _extras(instance: Mapping[Any, Any], schema: Schema) -> list[Any]:
    props = schema.get("properties", {})
    patterns = [ecma_regex(p) for p in schema.get("patternProperties", {})]
    return sorted(
        (k for k in instance if k not in props and not (isinstance(k, str) and any(p.search(k) for p in patterns))),
        key=str,
    )


def _expected(keyword: str, value: Any) -> str:
    if keyword == "type":
        return f"expected {_type_names(value)}"
    if keyword == "const":
        return f"expected {json.dumps(value)}"
    if keyword == "enum":
        return f"expected one of: {', '.join(json.dumps(v) for v in value)}"
    if keyword == "pattern":
        return f"expected a text matching the pattern {value}"
    if keyword == "format":
        return f"expected a text in the format '{value}'"
    bounds = {
        "minimum": "at least {}",
        "maximum": "at most {}",
        "exclusiveMinimum": "more than {}",
        "exclusiveMaximum": "less than {}",
        "multipleOf": "a multiple of {}",
        "minLength": "a text of at least {} character(s)",
        "maxLength": "a text of at most {} character(s)",
        "minItems": "at least {} item(s)",
        "maxItems": "at most {} item(s)",
        "minProperties": "at least {} field(s)",
        "maxProperties": "at most {} field(s)",
    }
    if keyword in bounds:
        return "expected " + bounds[keyword].format(value)
    if keyword == "uniqueItems":
        return "expected items that are all different"
    if keyword == "not":
        return "the value is not allowed here"
    return f"does not satisfy the schema's '{keyword}'"


_TYPE_NAMES = {
    "string": "a text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _type_names(value: Any) -> str:
    names = [value] if isinstance(value, str) else list(value)
    return " or ".join(_TYPE_NAMES.get(n, n) for n in names)


def _resolve(schema: Any, root: Schema) -> Any:
    """A local `$ref` (`#/$defs/Name`: the generator writes no other kind) followed to its schema."""
    seen = 0
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < 32:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        schema, seen = target, seen + 1
    return schema


def _alternatives(schema: Schema, root: Schema) -> str:
    """What an anyOf/oneOf accepts, in words: `a secret reference ({env}, {file} or {secretRef}) or null`."""
    branches = schema.get("anyOf") or schema.get("oneOf") or ()
    only_required = [
        b.get("required") for b in branches if isinstance(b, Mapping) and set(b) <= {"required", "properties"}
    ]
    if branches and len(only_required) == len(branches) and all(len(r or ()) == 1 for r in only_required):
        fields = ", ".join(r[0] for r in only_required if r)
        return f"exactly one of the fields {fields}" if "oneOf" in schema else f"one of the fields {fields}"
    words: list[str] = []
    for branch in branches:
        ref = branch.get("$ref", "") if isinstance(branch, Mapping) else ""
        target = _resolve(branch, root)
        if ref.endswith("/" + _SECRET_DEF):
            word = "a secret reference ({env: NAME}, {file: path} or {secretRef: name})"
        elif isinstance(target, Mapping) and "const" in target:
            word = json.dumps(target["const"])
        elif isinstance(target, Mapping) and "enum" in target:
            word = "one of " + ", ".join(json.dumps(v) for v in target["enum"])
        elif isinstance(target, Mapping) and target.get("type") == "object" and target.get("properties"):
            word = "a mapping of " + ", ".join(sorted(target["properties"]))
        elif isinstance(target, Mapping) and "type" in target:
            word = _type_names(target["type"])
            if "pattern" in target:
                word += f" matching {target['pattern']}"
        else:
            word = "a value of another shape"
        if word not in words:
            words.append(word)
    return " or ".join(words) or "a value of another shape"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"a text of {len(value)} character(s)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _got(instance: Any, kind: KindSchema, path: tuple[Any, ...]) -> str:
    """`got ...`: the value quoted where its field cannot hold a secret and it is short, else described."""
    quotable = isinstance(instance, (bool, int, float)) or (
        isinstance(instance, str) and len(instance) <= _QUOTE_MAX and instance.isprintable()
    )
    if quotable and not kind.secret_capable(path):
        return f"got {json.dumps(instance)}"
    if quotable:
        return f"got {_describe(instance)} (not shown: this field may hold a secret)"
    return f"got {_describe(instance)}"


def secret_capable(root: Schema, path: Iterable[Any]) -> bool:
    """Whether the value at `path` of a document (or a field it sits in) may hold a secret, by the schema: a
    secret reference among the alternatives, or a free-form value (device values hold secrets)."""
    level: list[Any] = [root]
    for part in path:
        following: list[Any] = []
        for schema in level:
            for branch in _branches(schema, root):
                if _secretish(branch):
                    return True
                following.extend(_child(branch, part))
        if not following:
            return True  # a place the schema does not describe: assume the worst
        level = following
    return any(_secretish(b) for s in level for b in _branches(s, root))


def _branches(schema: Any, root: Schema, depth: int = 0) -> Iterator[Any]:
    """A schema and its anyOf/oneOf/allOf alternatives (refs followed), with a `$ref` marker kept visible."""
    if depth > 16:
        return
    yield schema
    target = _resolve(schema, root)
    if target is not schema:
        yield from _branches(target, root, depth + 1)
    if isinstance(target, Mapping):
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in target.get(key, ()):
                yield from _branches(sub, root, depth + 1)


def _secretish(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return schema is True
    if str(schema.get("$ref", "")).endswith("/" + _SECRET_DEF):
        return True
    shape = {k for k in schema if k not in ("title", "description", "default", "examples")}
    return not shape or schema.get("additionalProperties") is True


def _child(schema: Any, part: Any) -> list[Any]:
    if not isinstance(schema, Mapping):
        return []
    if isinstance(part, int):
        return [schema["items"]] if isinstance(schema.get("items"), (Mapping, bool)) else []
    props = schema.get("properties", {})
    if part in props:
        return [props[part]]
    extra = schema.get("additionalProperties")
    return [extra] if isinstance(extra, (Mapping, bool)) and extra is not False else []
