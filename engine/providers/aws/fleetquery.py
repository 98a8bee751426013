"""An offline evaluator of the common AWS IoT fleet-indexing query forms, for a DynamicThingGroup's plan line.

Why hand-written: the fleet-indexing query language (a Lucene dialect, AWS IoT developer guide "Query syntax")
has no Python implementation, and fleetctl needs only a small, exact subset of it to say how many declared things
a dynamic group would hold before AWS indexes them. Evaluated offline, from the manifests:

- `field:value` for `thingName`, `thingTypeName`, `thingGroupNames` and `attributes.<key>`; the value may be
  quoted ("...") and may hold the wildcards `*` (any run) and `?` (one character);
- `AND`, `OR`, `NOT`, parentheses; adjacent terms are joined by AND; NOT binds tighter than AND, AND than OR.

Anything else — other fields (connectivity, shadow, registry version, Device Defender), ranges (`[a TO b]`),
comparisons (`attributes.n>3`), a term without a field — still parses when it is well-formed, but the query is
marked not evaluable offline (`Query.offline` is False, `why_not` says which part), and the plan says so rather
than guess. A malformed query (unbalanced parentheses, a dangling operator) is a `QueryError`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

OFFLINE_FIELDS = ("thingName", "thingTypeName", "thingGroupNames")
_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|([^\s()"]+(?:"(?:[^"\\]|\\.)*")?))')


class QueryError(ValueError):
    pass


@dataclass(frozen=True)
class Term:
    field: str | None
    value: str
    raw: str
    offline: bool


@dataclass(frozen=True)
class Op:
    op: str  # "AND" | "OR" | "NOT"
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Query:
    root: Any
    offline: bool
    why_not: str = ""


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise QueryError(f"cannot read the query at character {pos + 1}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return out


def _term(raw: str) -> Term:
    if raw.startswith('"'):
        return Term(None, raw[1:-1], raw, False)
    field, sep, value = raw.partition(":")
    if not sep or not field or not value:
        return Term(None, raw, raw, False)
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        value = value[1:-1].replace('\\"', '"')
    elif value.startswith(("[", "{", ">", "<")) or re.search(r"[<>]", field):
        return Term(field, value, raw, False)
    offline = field in OFFLINE_FIELDS or (field.startswith("attributes.") and len(field) > len("attributes."))
    return Term(field, value, raw, offline)


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.t, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> str:
        tok = self.t[self.i]
        self.i += 1
        return tok

    def parse_or(self) -> Any:
        args = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            args.append(self.parse_and())
        return args[0] if len(args) == 1 else Op("OR", tuple(args))

    def parse_and(self) -> Any:
        args = [self.parse_not()]
        while self.peek() not in (None, ")", "OR"):
            if self.peek() == "AND":
                self.take()
            args.append(self.parse_not())
        return args[0] if len(args) == 1 else Op("AND", tuple(args))

    def parse_not(self) -> Any:
        if self.peek() == "NOT":
            self.take()
            return Op("NOT", (self.parse_not(),))
        return self.parse_atom()

    def parse_atom(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise QueryError("the query ends where a term is expected")
        if tok in ("AND", "OR", ")"):
            raise QueryError(f"'{tok}' where a term is expected")
        self.take()
        if tok == "(":
            inner = self.parse_or()
            if self.peek() != ")":
                raise QueryError("a '(' is not closed")
            self.take()
            return inner
        return _term(tok)


def _terms(node: Any) -> Iterable[Term]:
    if isinstance(node, Term):
        yield node
    else:
        for arg in node.args:
            yield from _terms(arg)


def parse(text: str) -> Query:
    tokens = _tokens(text)
    if not tokens:
        raise QueryError("the query is empty")
    parser = _Parser(tokens)
    root = parser.parse_or()
    if parser.peek() is not None:
        raise QueryError(f"unexpected '{parser.peek()}'")
    unknown = [t.raw for t in _terms(root) if not t.offline]
    if unknown:
        return Query(
            root,
            False,
            "it uses "
            + ", ".join(f"'{u}'" for u in unknown)
            + f"; fleetctl evaluates {', '.join(OFFLINE_FIELDS)} and attributes.<key> terms only",
        )
    return Query(root, True)


def _value_matches(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    if "*" in pattern or "?" in pattern:
        return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))
    return value == pattern


def _thing_field(field: str, name: str, spec: Any) -> list[str]:
    get = spec.get if isinstance(spec, dict) else lambda k, d=None: getattr(spec, k, d)
    if field == "thingName":
        return [name]
    if field == "thingTypeName":
        thing_type = get("thingType")
        return [thing_type] if thing_type else []
    if field == "thingGroupNames":
        return list(get("groups", None) or [])
    attrs = get("attributes", None) or {}
    key = field[len("attributes.") :]
    return [attrs[key]] if key in attrs else []


def matches(node: Any, name: str, spec: Any) -> bool:
    """Whether a thing (its name and ThingSpec or spec dict) matches an offline-evaluable query node."""
    if isinstance(node, Term):
        return any(_value_matches(node.value, v) for v in _thing_field(node.field or "", name, spec))
    if node.op == "NOT":
        return not matches(node.args[0], name, spec)
    results = (matches(a, name, spec) for a in node.args)
    return all(results) if node.op == "AND" else any(results)


def count(query: Query, things: Iterable[tuple[str, Any]]) -> int:
    """How many of `things` ((name, spec) pairs) the query matches; the query must be `offline`."""
    if not query.offline:
        raise ValueError("the query cannot be evaluated offline")
    return sum(1 for name, spec in things if matches(query.root, name, spec))
