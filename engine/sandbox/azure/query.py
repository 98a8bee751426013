"""A small, real subset of the IoT Hub query language, evaluated over twin documents.

fleetctl reads a hub in bulk with `SELECT * FROM devices [WHERE …]`, so the emulator must filter for real: a fake
that ignored WHERE would hide bugs in how the engine scopes its reads. Supported: `SELECT * FROM devices`, WHERE
with AND / OR / NOT and parentheses, comparisons `= != <> < <= > >=`, `IN [..]` / `NIN [..]`, `IS_DEFINED(path)`,
on any dotted path of the twin (deviceId, status, tags.x.y, properties.desired.x, capabilities.iotEdge, …).
String, number, true/false and null literals. Anything else is a 400 (`BadRequest`), as the service answers
a query it cannot parse. As in IoT Hub, a comparison with an undefined path is false.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .common import ServiceError

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op><>|!=|<=|>=|=|<|>)
    | (?P<punct>[()\[\],*])
    | (?P<word>[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z0-9_$]+)*)
    )""",
    re.VERBOSE,
)

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MISSING = object()


def _error(message: str) -> ServiceError:
    return ServiceError(400, "BadRequest", f"query syntax error: {message}")


@dataclass
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise _error(f"unexpected character at {position}: {text[position : position + 10]!r}")
        kind = found.lastgroup or ""
        tokens.append(_Token(kind, found.group(kind)))
        position = found.end()
    return tokens


def lookup(document: dict[str, Any], path: str) -> Any:
    """The value at a dotted path, or a sentinel when any step is missing."""
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise _error("unexpected end of query")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.upper() == word:
            self.position += 1
            return True
        return False

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text.upper() != text:
            raise _error(f"expected {text!r}, found {token.text!r}")

    def statement(self) -> Predicate:
        self.expect("SELECT")
        self.expect("*")
        self.expect("FROM")
        source = self.take()
        if source.text.lower() != "devices":
            raise _error(f"only FROM devices is supported, not {source.text!r}")
        predicate: Predicate = lambda _twin: True  # noqa: E731 - the identity filter
        if self.keyword("WHERE"):
            predicate = self.disjunction()
        if self.peek() is not None:
            raise _error(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda twin: any(part(twin) for part in parts))

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.keyword("AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda twin: all(part(twin) for part in parts))

    def negation(self) -> Predicate:
        if self.keyword("NOT"):
            inner = self.negation()
            return lambda twin: not inner(twin)
        return self.primary()

    def primary(self) -> Predicate:
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.disjunction()
            self.expect(")")
            return inner
        if token is not None and token.kind == "word" and token.text.upper() == "IS_DEFINED":
            self.take()
            self.expect("(")
            path = self.path()
            self.expect(")")
            return lambda twin: lookup(twin, path) is not _MISSING
        return self.comparison()

    def path(self) -> str:
        token = self.take()
        if token.kind != "word":
            raise _error(f"expected a property path, found {token.text!r}")
        return token.text

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        words = {"TRUE": True, "FALSE": False, "NULL": None}
        if token.kind == "word" and token.text.upper() in words:
            return words[token.text.upper()]
        raise _error(f"expected a literal, found {token.text!r}")

    def literal_list(self) -> list[Any]:
        opening = self.take().text
        closing = {"[": "]", "(": ")"}.get(opening)
        if closing is None:
            raise _error(f"expected '[' after IN, found {opening!r}")
        values = [self.literal()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            values.append(self.literal())
        self.expect(closing)
        return values

    def comparison(self) -> Predicate:
        path = self.path()
        if self.keyword("IN") or self.keyword("NIN"):
            negate = self.tokens[self.position - 1].text.upper() == "NIN"
            values = self.literal_list()
            return lambda twin: _member(lookup(twin, path), values) != negate
        token = self.take()
        if token.kind != "op":
            raise _error(f"expected a comparison operator after {path}, found {token.text!r}")
        compare = _COMPARE[token.text]
        value = self.literal()
        return lambda twin: _compare(compare, lookup(twin, path), value)


def _member(found: Any, values: list[Any]) -> bool:
    return found is not _MISSING and found in values


def _compare(compare: Callable[[Any, Any], bool], found: Any, value: Any) -> bool:
    if found is _MISSING:
        return False
    try:
        return bool(compare(found, value))
    except TypeError:
        return False


def compile_query(text: str) -> Predicate:
    """Parse `SELECT * FROM devices [WHERE …]` into a predicate over twin documents (400 on anything else)."""
    if not isinstance(text, str) or not text.strip():
        raise _error("the query is empty")
    return _Parser(_tokenize(text.strip())).statement()
