"""Statement-level comparison of two AWS IoT / IAM policy documents: what the wider one grants that the other does not.

A reviewer must see "statement Widen adds Allow iot:* on *", not one opaque `~ document` line. `widenings(before,
after)` lists every way `after` grants more than `before`, each naming the statement (its Sid, or its index) and
exactly what widened:

- an Allow grant (action × resource) of `after` that no Allow statement of `before` covers — a new action or
  resource, a wildcard (`*`, `?`) or an MQTT wildcard (`#`, `+` in a topic/topicfilter resource) introduced;
- a Condition of a matched Allow statement removed or loosened (a key dropped, values added);
- NotAction / NotResource introduced in an Allow (it grants everything else), or more exemptions in a Deny;
- a Deny of `before` that no Deny of `after` still covers (removed, or narrowed to fewer actions or resources, or
  made conditional).

The narrowing of a change is the widening read the other way round: `widenings(after, before)`.

Coverage is glob containment (`covers("iot:*", "iot:Pub*")`), computed exactly for `*` and `?` patterns by a small
dynamic programme, sound by construction: a grant is reported as covered only when every string the new pattern
matches is matched by an old one. IoT policy variables (`${iot:Connection.Thing.ThingName}`) are literal text.
This is hand-written on purpose: the IAM libraries (policyuniverse, parliament) expand actions against AWS's
published action list and lint single policies; none compares two documents, handles resource globs, IoT topic
filters or condition strictness. This is *not* a policy evaluator (engine/authz/ answers "may principal X do Y"):
it compares documents statement by statement, which is what a diff reviewer reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ALLOW, DENY = "Allow", "Deny"
TOPIC_RESOURCES = (":topic/", ":topicfilter/")


class Aspect:
    """What a finding is about (a closed vocabulary; the renderer's verbs depend on it)."""

    ALLOW = "allow"  # an Allow grant the narrower document lacks
    CONDITION = "condition"  # a Condition the wider document no longer requires
    NOT_ELEMENT = "not-element"  # NotAction / NotResource widening
    DENY = "deny"  # a Deny the wider document no longer has


@dataclass(frozen=True)
class Statement:
    """One statement, normalised: Action/Resource as sorted tuples, Condition as {(operator, key): values}."""

    label: str  # "Statement[Sid=Widen]" or "Statement[2]"
    sid: str | None
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...]
    not_resources: tuple[str, ...] | None
    condition: tuple[tuple[tuple[str, str], tuple[str, ...]], ...]

    @property
    def key(self) -> tuple[Any, ...]:
        """The statement's content without its label (Sid-less statements are matched by it)."""
        return (self.effect, self.actions, self.not_actions, self.resources, self.not_resources, self.condition)

    def conditions(self) -> dict[tuple[str, str], frozenset[str]]:
        return {k: frozenset(v) for k, v in self.condition}


@dataclass(frozen=True)
class Finding:
    """One way a document grants more than another. `detail` is complete (never cut): "iot:* on *"."""

    statement: str  # the label of the statement concerned
    aspect: str  # an Aspect value
    detail: str
    wildcard: bool = False  # the widening introduces a wildcard (`*`, `?`, MQTT `#`/`+`)

    def describe(self) -> str:
        """What the wider document has, without a verb: "Allow iot:* on * (wildcard)", "no Deny of …"."""
        text = {Aspect.ALLOW: f"Allow {self.detail}", Aspect.DENY: f"no Deny of {self.detail}"}.get(
            self.aspect, self.detail
        )
        return text + (" (wildcard)" if self.wildcard else "")

    def as_change(self) -> str:
        """The same, as what a change to the wider document does: "adds Allow iot:* on *", "removes Deny …"."""
        if self.aspect == Aspect.DENY:
            return f"removes Deny {self.detail}"
        if self.aspect == Aspect.ALLOW or self.detail.startswith("Allow "):
            return "adds " + self.describe()
        return self.describe()


# ------------------------------------------------------------------------------------------------ normalising
def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(sorted({str(v) for v in items}))


def _condition(value: Any) -> tuple[Any, ...]:
    out = []
    for operator, keys in sorted((value or {}).items()):
        for key, values in sorted((keys or {}).items()) if isinstance(keys, Mapping) else ():
            out.append(
                ((str(operator), str(key)), _as_tuple(values if not isinstance(values, bool) else str(values).lower()))
            )
    return tuple(out)


def load(document: Any) -> Mapping[str, Any]:
    """A policy document from a dict or its JSON string (PolicySpec accepts both; the provider reads JSON)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return {}
    return document if isinstance(document, Mapping) else {}


def statements(document: Any) -> list[Statement]:
    """The document's statements, normalised (`Statement` may be one object or a list; Action a string or a list)."""
    raw = load(document).get("Statement") or []
    if isinstance(raw, Mapping):
        raw = [raw]
    out = []
    for index, s in enumerate(raw):
        if not isinstance(s, Mapping):
            continue
        sid = s.get("Sid") or None
        out.append(
            Statement(
                label=f"Statement[Sid={sid}]" if sid else f"Statement[{index}]",
                sid=sid,
                effect=DENY if str(s.get("Effect", ALLOW)).lower() == "deny" else ALLOW,
                actions=_as_tuple(s.get("Action")),
                not_actions=_as_tuple(s["NotAction"]) if "NotAction" in s else None,
                resources=_as_tuple(s.get("Resource")),
                not_resources=_as_tuple(s["NotResource"]) if "NotResource" in s else None,
                condition=_condition(s.get("Condition")),
            )
        )
    return out


# ------------------------------------------------------------------------------------------------ coverage
@lru_cache(maxsize=4096)
def covers(pattern: str, other: str, ignore_case: bool = False) -> bool:
    """Whether every string `other` matches is matched by `pattern` (both globs over `*` and `?`).

    Sound: True only when the containment holds. `*` of `other` can only be absorbed by `*` of `pattern`; a `?` of
    `other` by `?` or `*`; a literal by itself, `?` or `*`. Actions compare ignoring case (IAM does).
    """
    p, q = (pattern.lower(), other.lower()) if ignore_case else (pattern, other)
    n, m = len(p), len(q)
    # ok[i][j]: p[i:] covers q[j:]
    ok = [[False] * (m + 1) for _ in range(n + 1)]
    ok[n][m] = True
    for i in range(n - 1, -1, -1):
        ok[i][m] = p[i] == "*" and ok[i + 1][m]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if p[i] == "*":
                ok[i][j] = ok[i + 1][j] or ok[i][j + 1]
            elif p[i] == "?":
                ok[i][j] = q[j] != "*" and ok[i + 1][j + 1]
            else:
                ok[i][j] = q[j] == p[i] and ok[i + 1][j + 1]
    return ok[0][0]


def has_wildcard(value: str, resource: bool = False) -> bool:
    """`*`/`?` anywhere; MQTT `#`/`+` levels in a topic or topicfilter resource."""
    if "*" in value or "?" in value:
        return True
    if resource and any(marker in value for marker in TOPIC_RESOURCES):
        topic = value.split("/", 1)[1] if "/" in value else ""
        return any(level in ("#", "+") for level in topic.split("/"))
    return False


# Condition operators whose values are alternatives (more values admit more requests) and their negations (more
# values admit fewer); for any other operator (numeric, date, Null, ...) only the same values are known to be no
# looser. Set qualifiers (ForAnyValue:, ForAllValues:) keep the relation; `…IfExists` is another operator.
_ALTERNATIVES = {
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnEquals",
    "ArnLike",
    "IpAddress",
    "Bool",
    "BinaryEquals",
}
_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NotIpAddress",
}


def _relation(operator: str) -> str:
    base = operator.split(":", 1)[-1]
    base = base[: -len("IfExists")] if base.endswith("IfExists") else base
    return "any" if base in _ALTERNATIVES else "none" if base in _NEGATED else "same"


def _no_looser(operator: str, new: frozenset[str], old: frozenset[str]) -> bool:
    """Whether the condition (operator, new values) admits no request that (operator, old values) does not."""
    relation = _relation(operator)
    return new <= old if relation == "any" else new >= old if relation == "none" else new == old


def _at_least_as_strict(
    strict: Mapping[tuple[str, str], frozenset[str]], loose: Mapping[tuple[str, str], frozenset[str]]
) -> bool:
    """Whether a statement with conditions `strict` applies in no case where one with `loose` does not: every
    condition of `loose` is also required by `strict`, and admits no more."""
    return all(k in strict and _no_looser(k[0], strict[k], v) for k, v in loose.items())


def _may_exclude(exclusions: tuple[str, ...], value: str, ignore_case: bool) -> bool:
    """Whether a NotAction/NotResource list may exclude part of `value` (conservative for wildcard values)."""
    if has_wildcard(value):
        return bool(exclusions)
    return any(covers(e, value, ignore_case) for e in exclusions)


def _grants(stmt: Statement, action: str, resource: str) -> bool:
    """Whether `stmt` (ignoring its conditions) applies to every (action, resource) the two patterns match."""
    if stmt.not_actions is not None:
        if _may_exclude(stmt.not_actions, action, True):
            return False
    elif not any(covers(a, action, True) for a in stmt.actions):
        return False
    if stmt.not_resources is not None:
        return not _may_exclude(stmt.not_resources, resource, False)
    return any(covers(r, resource) for r in stmt.resources)


def _allow_covered(action: str, resource: str, stmt: Statement, olds: Iterable[Statement]) -> bool:
    return any(
        _grants(old, action, resource) and _at_least_as_strict(stmt.conditions(), old.conditions()) for old in olds
    )


def _deny_kept(action: str, resource: str, stmt: Statement, news: Iterable[Statement]) -> bool:
    """Whether a Deny of (action, resource) under `stmt`'s conditions is still denied by some new Deny."""
    for new in news:
        if new.not_actions is not None or new.not_resources is not None:
            continue  # compared as a whole below
        if (
            any(covers(a, action, True) for a in new.actions)
            and any(covers(r, resource) for r in new.resources)
            and _at_least_as_strict(stmt.conditions(), new.conditions())
        ):
            return True
    return False


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else "[" + ", ".join(items) + "]"


def _group(pairs: list[tuple[str, str]]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(actions, resources) blocks for a list of (action, resource) grants: actions sharing the same resources."""
    by_action: dict[str, list[str]] = {}
    for a, r in pairs:
        by_action.setdefault(a, []).append(r)
    blocks: dict[tuple[str, ...], list[str]] = {}
    for a, rs in by_action.items():
        blocks.setdefault(tuple(rs), []).append(a)
    return [(tuple(actions), resources) for resources, actions in blocks.items()]


def _match(before: list[Statement], after: list[Statement]) -> dict[int, Statement]:
    """For each statement of `after` (by index), its counterpart in `before`: same Sid, else the same content,
    else (Sid-less, same effect) the one sharing most actions and resources."""
    out: dict[int, Statement] = {}
    by_sid = {s.sid: s for s in before if s.sid}
    used: set[int] = set()
    for i, s in enumerate(after):
        if s.sid and s.sid in by_sid:
            out[i] = by_sid[s.sid]
            used.add(id(by_sid[s.sid]))
    sidless = [s for s in before if not s.sid]
    for i, s in enumerate(after):
        if i in out or s.sid:
            continue
        same = next((o for o in sidless if id(o) not in used and o.key == s.key), None)
        if same is not None:
            out[i] = same
            used.add(id(same))
    for i, s in enumerate(after):
        if i in out or s.sid:
            continue
        best, score = None, 0
        for o in sidless:
            if id(o) in used or o.effect != s.effect:
                continue
            shared = len(set(o.actions) & set(s.actions)) + len(set(o.resources) & set(s.resources))
            if shared > score:
                best, score = o, shared
        if best is not None:
            out[i] = best
            used.add(id(best))
    return out


def _condition_text(key: tuple[str, str], values: Iterable[str]) -> str:
    return f"{key[0]} {key[1]} {_listing(sorted(values))}"


# ------------------------------------------------------------------------------------------------ the analysis
def widenings(before: Any, after: Any) -> list[Finding]:
    """Every way the policy document `after` grants more than `before`: the statements of `after` in order, then
    the Denies of `before` that no longer hold. Identical, reordered or narrowed documents give []."""
    old, new = statements(before), statements(after)
    old_allows = [s for s in old if s.effect == ALLOW]
    new_denies = [s for s in new if s.effect == DENY]
    matched = _match(old, new)
    old_keys = {s.key for s in old}
    findings: list[Finding] = []
    for i, s in enumerate(new):
        if s.key in old_keys:
            continue  # the same statement exists (perhaps under another index): nothing new
        if s.effect == ALLOW:
            findings += _allow_findings(s, matched.get(i), old_allows)
        else:
            findings += _deny_exemptions(s, matched.get(i))
    exempted = {f.statement for f in findings if f.aspect == Aspect.NOT_ELEMENT}
    new_keys = {s.key for s in new}
    for o in old:
        if o.effect != DENY or o.key in new_keys:
            continue
        if o.not_actions is not None or o.not_resources is not None:
            successor = next((n for n in new_denies if o.sid and n.sid == o.sid), None)
            if successor is not None and successor.label in exempted:
                continue  # reported as the exemptions it gained
            kept = any(_denies_at_least(n, o) for n in new_denies)
            if not kept:
                findings.append(Finding(o.label, Aspect.DENY, _deny_text(o)))
            continue
        lost = [(a, r) for a in o.actions for r in o.resources if not _deny_kept(a, r, o, new_denies)]
        for actions, resources in _group(lost):
            findings.append(Finding(o.label, Aspect.DENY, f"{_listing(actions)} on {_listing(resources)}{_when(o)}"))
    return findings


def _exempts_no_more(new: tuple[str, ...] | None, old: tuple[str, ...] | None, case: bool) -> bool:
    if new is None or old is None:
        return new is None and old is None
    return all(any(covers(o, n, case) for o in old) for n in new)


def _denies_at_least(new: Statement, old: Statement) -> bool:
    """Whether the Deny `new` (with NotAction/NotResource) denies everything the Deny `old` does."""
    actions_ok = (
        _exempts_no_more(new.not_actions, old.not_actions, True)
        if old.not_actions is not None
        else new.not_actions is None and all(any(covers(n, a, True) for n in new.actions) for a in old.actions)
    )
    resources_ok = (
        _exempts_no_more(new.not_resources, old.not_resources, False)
        if old.not_resources is not None
        else new.not_resources is None and all(any(covers(n, r) for n in new.resources) for r in old.resources)
    )
    return actions_ok and resources_ok and _at_least_as_strict(old.conditions(), new.conditions())


def _when(s: Statement) -> str:
    return (" when " + " and ".join(_condition_text(k, v) for k, v in s.condition)) if s.condition else ""


def _deny_text(s: Statement) -> str:
    actions = f"every action except {_listing(s.not_actions)}" if s.not_actions is not None else _listing(s.actions)
    resources = (
        f"every resource except {_listing(s.not_resources)}" if s.not_resources is not None else _listing(s.resources)
    )
    return f"{actions} on {resources}{_when(s)}"


def _allow_findings(s: Statement, counterpart: Statement | None, old_allows: list[Statement]) -> list[Finding]:
    out: list[Finding] = []
    pair = counterpart if counterpart is not None and counterpart.effect == ALLOW else None
    if s.not_actions is not None or s.not_resources is not None:
        same_shape = (
            pair is not None
            and (pair.actions, pair.resources) == (s.actions, s.resources)
            and (pair.not_actions is None) == (s.not_actions is None)
            and (pair.not_resources is None) == (s.not_resources is None)
        )
        if not same_shape:
            actions = (
                f"NotAction {_listing(s.not_actions)} (every other action)"
                if s.not_actions is not None
                else _listing(s.actions)
            )
            resources = (
                f"NotResource {_listing(s.not_resources)} (every other resource)"
                if s.not_resources is not None
                else _listing(s.resources)
            )
            return [Finding(s.label, Aspect.NOT_ELEMENT, f"Allow {actions} on {resources}{_when(s)}", wildcard=True)]
        assert pair is not None
        for name, now, was, case in (
            ("NotAction", s.not_actions, pair.not_actions, True),
            ("NotResource", s.not_resources, pair.not_resources, False),
        ):
            fewer = [w for w in was or () if not any(covers(n, w, case) for n in now or ())]
            if fewer:
                out.append(
                    Finding(s.label, Aspect.NOT_ELEMENT, f"{name} no longer excludes {_listing(fewer)}", wildcard=True)
                )
    if pair is not None:
        loosened = _loosened(pair, s)
        if loosened:
            out.append(Finding(s.label, Aspect.CONDITION, "; ".join(loosened)))
    if s.not_actions is not None or s.not_resources is not None:
        return out
    uncovered = [(a, r) for a in s.actions for r in s.resources if not _allow_covered(a, r, s, old_allows)]
    if pair is not None and out:  # the condition finding already says why the grants the pair had widened
        uncovered = [(a, r) for a, r in uncovered if not _grants(pair, a, r)]
    for granted, on in _group(uncovered):
        wild = any(has_wildcard(a) for a in granted) or any(has_wildcard(r, resource=True) for r in on)
        out.append(Finding(s.label, Aspect.ALLOW, f"{_listing(granted)} on {_listing(on)}{_when(s)}", wildcard=wild))
    return out


def _loosened(old: Statement, new: Statement) -> list[str]:
    """The conditions `old` required that `new` no longer requires, or now allows more values for."""
    before, after = old.conditions(), new.conditions()
    out = []
    for key, values in sorted(before.items()):
        if key not in after:
            out.append(f"Condition {_condition_text(key, values)} not required")
        elif not _no_looser(key[0], after[key], values):
            relation, now = _relation(key[0]), after[key]
            out.append(
                f"Condition {key[0]} {key[1]} "
                + (
                    f"also allows {_listing(sorted(now - values))}"
                    if relation == "any" and values <= now
                    else f"no longer excludes {_listing(sorted(values - now))}"
                    if relation == "none" and now <= values
                    else f"is {_listing(sorted(now))}, was {_listing(sorted(values))}"
                )
            )
    return out


def _deny_exemptions(s: Statement, counterpart: Statement | None) -> list[Finding]:
    """A Deny with NotAction/NotResource denies everything else: more exemptions widen. A Deny that is new, or
    changed in its actions/resources, is compared as the Denies of `before` that no longer hold."""
    if counterpart is None or counterpart.effect != DENY:
        return []
    out = []
    for name, now, was, case in (
        ("NotAction", s.not_actions, counterpart.not_actions, True),
        ("NotResource", s.not_resources, counterpart.not_resources, False),
    ):
        if now is None or was is None:
            continue
        extra = [n for n in now if not any(covers(w, n, case) for w in was)]
        if extra:
            out.append(Finding(s.label, Aspect.NOT_ELEMENT, f"Deny {name} also exempts {_listing(extra)}"))
    return out
