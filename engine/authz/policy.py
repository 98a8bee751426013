"""AWS IoT Core policy documents, parsed once into frozen statements that the evaluator matches.

Why its own module: a policy is written as YAML or a JSON string, with `Statement` a mapping or a list, `Action`
and `Resource` a string or a list, and `Condition` operator → key → value(s). Normalising that once (and keeping
each statement's manifest position, policy name and Sid) lets the evaluator, `fleetctl authz`, lint and the plan's
permission delta speak of "policy 'reader-policy' statement 2 (fleet/aws/springpark.yaml:31)" the same way.

Rules followed (AWS IoT Core developer guide):
- "AWS IoT Core policies": a policy is a JSON document of statements, each with `Effect` (Allow | Deny), `Action`
  and `Resource`; AWS IoT policies follow the conventions of IAM policies, so `NotAction`, `NotResource`,
  `Condition` and `Sid` are read as IAM's policy grammar defines them (IAM User Guide, "IAM JSON policy elements").
- "AWS IoT Core policy variables": `*` matches any combination of characters and `?` any single character (in
  `Action` and in resource ARNs); the MQTT wildcards `+` and `#` are literal characters in a policy; `$(*)`,
  `$(?)` and `$($)` stand for the literal characters `*`, `?` and `$`.
- Action names are case-insensitive (IAM: "action names are not case sensitive"); resource ARNs are matched
  case-sensitively.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.diagnostics import Source

PathT = tuple[Any, ...]
VARIABLE = re.compile(r"\$\{([^}]*)\}")
ESCAPES = {"$(*)": "*", "$(?)": "?", "$($)": "$"}


class Effect:
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class Condition:
    """One `Condition` test: `operator` as written (e.g. `ForAnyValue:StringLikeIfExists`), one key, its values."""

    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    """One policy statement, normalised. `actions`/`resources` are None when the statement uses the `Not` form
    (then `not_actions`/`not_resources` hold the list). `index` is its position in the policy's Statement list."""

    policy: str
    index: int
    sid: str | None
    effect: str
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    conditions: tuple[Condition, ...] = ()
    source: Source | None = None

    @property
    def label(self) -> str:
        """How reports name it: policy name, then Sid when there is one, else the statement's index."""
        return f"policy '{self.policy}' statement {self.sid if self.sid else self.index}"

    @property
    def where(self) -> str:
        return f"{self.label}" + (f" ({self.source})" if self.source and self.source.file else "")

    @functools.cached_property
    def variables(self) -> frozenset[str]:
        """Every policy variable the statement uses: in resources, condition keys and condition values."""
        out: set[str] = set()
        for text in (self.resources or ()) + (self.not_resources or ()):
            out.update(VARIABLE.findall(text))
        for c in self.conditions:
            out.add(c.key)
            for v in c.values:
                out.update(VARIABLE.findall(v))
        return frozenset(v.strip() for v in out if v.strip() not in ("*", "?", "$"))


@dataclass(frozen=True)
class Policy:
    """A named policy (its default version: the manifest's document) and its statements."""

    name: str
    statements: tuple[Statement, ...]
    target: str | None = None
    source: Source | None = None
    problems: tuple[str, ...] = ()  # parts of the document the evaluator could not read

    @functools.cached_property
    def variables(self) -> frozenset[str]:
        out: set[str] = set()
        for st in self.statements:
            out |= st.variables
        return frozenset(out)

    @functools.cached_property
    def content(self) -> tuple[Any, ...]:
        """What the policy grants, without its name or positions: two policies with the same content are the
        same permissions (one policy per device, written by a generator, folds like one shared policy)."""
        return tuple(
            (s.effect, s.actions, s.not_actions, s.resources, s.not_resources, s.conditions) for s in self.statements
        )

    @functools.cached_property
    def text(self) -> str:
        return json.dumps(self.content, default=repr)

    def content_without(self, name: str) -> tuple[Any, ...]:
        """`content` with the thing name `name` (as a whole name) replaced by a placeholder: a policy written for
        one device with its literal name reads the same as the next device's."""
        if name not in self.text:
            return self.content
        pattern = own_name(name)

        def strip(value: Any) -> Any:
            if isinstance(value, str):
                return pattern.sub("\0", value)
            if isinstance(value, tuple):
                return tuple(strip(v) for v in value)
            if isinstance(value, Condition):
                return Condition(value.operator, value.key, strip(value.values))
            return value

        stripped: tuple[Any, ...] = strip(self.content)  # strip keeps the shape: a tuple stays a tuple
        return stripped


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, int, float, bool)):
        return (_text(value),)
    if isinstance(value, list):
        return tuple(_text(v) for v in value if isinstance(v, (str, int, float, bool)))
    return ()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_policy(
    name: str,
    document: Any,
    *,
    target: str | None = None,
    source: Source | None = None,
    source_of: Callable[[PathT], Source] | None = None,
) -> Policy:
    """A policy from its document (a mapping or a JSON string). Never raises: what cannot be read is named in
    `problems` and left out (a statement without a valid Effect grants nothing and denies nothing).
    `source_of(path)` gives the manifest position of a path below `spec.document`, e.g. ("Statement", 2)."""
    problems: list[str] = []
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            return Policy(name, (), target, source, (f"not JSON: {exc}",))
    if not isinstance(document, Mapping):
        return Policy(name, (), target, source, ("the document is not a mapping",))
    raw = document.get("Statement")
    listed = isinstance(raw, list)
    items: list[Any] = raw if isinstance(raw, list) else [raw] if isinstance(raw, Mapping) else []
    statements = []
    for i, st in enumerate(items):
        if not isinstance(st, Mapping):
            problems.append(f"statement {i} is not a mapping")
            continue
        path: PathT = ("Statement", i) if listed else ("Statement",)
        effect = st.get("Effect")
        if effect not in (Effect.ALLOW, Effect.DENY):
            problems.append(f"statement {i}: Effect must be Allow or Deny, not {effect!r}")
            continue
        conditions: list[Condition] = []
        cond = st.get("Condition")
        if isinstance(cond, Mapping):
            for op, tests in cond.items():
                if not isinstance(tests, Mapping):
                    problems.append(f"statement {i}: Condition {op} must map keys to values")
                    continue
                for key, values in tests.items():
                    conditions.append(Condition(str(op), str(key), _strings(values) or ()))
        elif cond is not None:
            problems.append(f"statement {i}: Condition must be a mapping")
        sid = st.get("Sid")
        statements.append(
            Statement(
                name,
                i,
                str(sid) if sid not in (None, "") else None,
                effect,
                _strings(st.get("Action")),
                _strings(st.get("NotAction")),
                _strings(st.get("Resource")),
                _strings(st.get("NotResource")),
                tuple(conditions),
                source_of(path) if source_of else source,
            )
        )
    if raw is None:
        problems.append("the document has no Statement")
    return Policy(name, tuple(statements), target, source, tuple(problems))


# ------------------------------------------------------------------------------------------- wildcards
@functools.lru_cache(maxsize=1 << 16)
def wildcard(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """A policy pattern (`*` any characters, `?` one character, `$(*)` `$(?)` `$($)` literal) as a regex.
    `+` and `#` are literal (developer guide: "treated as literal strings in a policy")."""
    out = []
    i = 0
    while i < len(pattern):
        escape = pattern[i : i + 4]
        if escape in ESCAPES:
            out.append(re.escape(ESCAPES[escape]))
            i += 4
            continue
        ch = pattern[i]
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@functools.lru_cache(maxsize=1 << 12)
def own_name(name: str) -> re.Pattern[str]:
    """`name` as a whole thing name (thing names are [a-zA-Z0-9:_-]+), not inside a longer one."""
    return re.compile(r"(?<![A-Za-z0-9:_-])" + re.escape(name) + r"(?![A-Za-z0-9:_-])")


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return wildcard(pattern, ignore_case).fullmatch(value) is not None


def has_wildcard(pattern: str) -> bool:
    text = pattern
    for escape in ESCAPES:
        text = text.replace(escape, "")
    return "*" in text or "?" in text


def literal(text: str) -> str:
    """`text` as a pattern that matches exactly itself: fleetctl substitutes a variable's value literally (thing
    names cannot hold `*` or `?`; a client id that does is not read as a wildcard)."""
    return "".join(_LITERAL.get(c, c) for c in text)


_LITERAL = {"*": "$(*)", "?": "$(?)", "$": "$($)"}
