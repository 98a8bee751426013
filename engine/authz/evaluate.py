"""The decision: given the policies in effect for a connection and one request, allow, explicit deny or implicit
deny, with the statements that decided it (what TestAuthorization answers on a live account).

Why hand-written: no library evaluates AWS IoT policies offline (IAM simulators are cloud APIs, and IoT adds its
own variables and MQTT resources). The evaluator is pure: no SDK, no I/O; the same inputs give the same result.

Rules followed (AWS IoT Core developer guide, and the IAM User Guide it defers to):
- "AWS IoT Core policies" / IAM "Policy evaluation logic": every statement of every policy in effect is
  considered; an explicit `Deny` that applies wins over any `Allow`; without a `Deny`, an `Allow` that applies
  allows; with neither, the request is implicitly denied. Statement and policy order never matter.
- IAM "Action" / "NotAction": a statement applies to an action listed in `Action` (wildcards `*`, `?`,
  case-insensitive), or to every action not listed in `NotAction`.
- IAM "Resource" / "NotResource" and "AWS IoT Core action resources": the resource is the ARN
  `arn:aws:iot:REGION:ACCOUNT:TYPE/NAME` (`client/` for iot:Connect, `topic/` for Publish/Receive/RetainPublish,
  `topicfilter/` for Subscribe, `thing/` for shadow and jobs actions); a statement applies to a resource matching
  one `Resource` pattern, or matching none of the `NotResource` patterns. An entry whose variable cannot be
  resolved matches nothing ("Thing policy examples": an unresolved variable "will result in an access denied
  error"; IAM "Policy variables with no value": a request without the key matches no resource that contains the
  variable, and "might cause the entire statement to be invalid"); a `NotResource` statement with an
  unresolvable entry does not apply at all, so that no statement ever widens because a variable is missing.
- IAM "Condition operators" (the ones AWS IoT's keys take): String{Equals,NotEquals,EqualsIgnoreCase,
  NotEqualsIgnoreCase,Like,NotLike}, Arn{Equals,Like,NotEquals,NotLike}, Bool, Null, Numeric*, Date*,
  IpAddress/NotIpAddress, each with the `IfExists` suffix, and the set prefixes `ForAnyValue:` / `ForAllValues:`.
  All keys of a `Condition` must hold (AND); one of a key's values suffices (OR), except that a negated operator
  needs the value to differ from every listed one (IAM: "works like a logical AND"). "If the key ... is not
  present in the request context, the values do not match and the condition is false"; for a negated operator
  it is true; `IfExists` makes it true; `Null: true` holds exactly when the key is absent; `ForAllValues` over an
  absent key holds, `ForAnyValue` does not. Keys fleetctl cannot know offline (e.g. `aws:SourceIp`) are absent;
  the result lists them in `assumed`.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.authz.policy import Condition, Effect, Policy, Statement, matches
from engine.authz.variables import Session, resolve, substitute

KNOWN_PREFIXES = ("iot:ClientId", "iot:Connection.Thing.", "iot:Certificate", "iot:CertificateId")


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


@dataclass(frozen=True)
class Request:
    """One data-plane request: the action (e.g. `iot:Publish`) on a resource ARN."""

    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.action} {self.resource}"


@dataclass(frozen=True)
class Result:
    decision: Decision
    request: Request
    deciding: tuple[Statement, ...] = ()  # the Deny statements (explicit deny) or the Allow ones (allow)
    reason: str = ""
    assumed: tuple[str, ...] = ()  # condition keys fleetctl cannot know offline, taken as absent

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "action": self.request.action,
            "resource": self.request.resource,
            "reason": self.reason,
            "statements": [
                {
                    "policy": s.policy,
                    "statement": s.index,
                    "sid": s.sid,
                    "effect": s.effect,
                    "source": str(s.source) if s.source and s.source.file else None,
                }
                for s in self.deciding
            ],
            **({"assumed": list(self.assumed)} if self.assumed else {}),
        }


# ------------------------------------------------------------------------------------------- matching
def action_applies(st: Statement, action: str) -> bool:
    if st.actions is not None:
        return any(matches(p, action, ignore_case=True) for p in st.actions)
    if st.not_actions is not None:
        return not any(matches(p, action, ignore_case=True) for p in st.not_actions)
    return False


def resource_applies(st: Statement, resource: str, session: Session) -> bool:
    if st.resources is not None:
        for pattern in st.resources:
            text = substitute(pattern, session)
            if text is not None and matches(text, resource):
                return True
        return False
    if st.not_resources is not None:
        texts = [substitute(p, session) for p in st.not_resources]
        if any(t is None for t in texts):
            return False
        return not any(matches(t, resource) for t in texts if t is not None)
    return False


def _split(operator: str) -> tuple[str | None, str, bool]:
    quantifier = None
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        if operator.startswith(prefix):
            quantifier, operator = prefix[:-1], operator[len(prefix) :]
    if_exists = operator.endswith("IfExists")
    return quantifier, operator[: -len("IfExists")] if if_exists else operator, if_exists


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        number = _number(text)
        return dt.datetime.fromtimestamp(number, dt.UTC) if number is not None else None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a != b,
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def _value_matches(base: str, context: str, wanted: str) -> bool | None:
    """Whether one context value satisfies one policy value for the positive form of `base`; None: unsupported."""
    if base in ("StringEquals", "StringNotEquals"):
        return context == wanted
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return context.casefold() == wanted.casefold()
    if base in ("StringLike", "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"):
        return matches(wanted, context)
    if base == "Bool":
        return context.lower() == wanted.lower()
    if base in ("IpAddress", "NotIpAddress"):
        try:
            return ipaddress.ip_address(context) in ipaddress.ip_network(wanted, strict=False)
        except ValueError:
            return False
    for family, parse in (("Numeric", _number), ("Date", _date)):
        if base.startswith(family) and base[len(family) :] in _ORDER:
            a, b = parse(context), parse(wanted)
            if a is None or b is None:
                return False
            op = base[len(family) :]
            return _ORDER["Equals" if op == "NotEquals" else op](a, b)
    return None


SUPPORTED = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
        "Bool",
        "Null",
        "IpAddress",
        "NotIpAddress",
    }
    | {f"{family}{op}" for family in ("Numeric", "Date") for op in _ORDER}
)
NEGATED = frozenset(
    {
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "ArnNotEquals",
        "ArnNotLike",
        "NumericNotEquals",
        "DateNotEquals",
        "NotIpAddress",
    }
)


def condition_holds(c: Condition, session: Session) -> bool | None:
    """True/False, or None when the operator is not one AWS IoT policies support (the statement then does not
    apply: AWS refuses to store such a policy, so a manifest holding one is already wrong)."""
    quantifier, base, if_exists = _split(c.operator)
    if base not in SUPPORTED:
        return None
    present = resolve(c.key, session)
    if base == "Null":
        want = {v.lower() for v in c.values}
        return ("true" in want and present is None) or ("false" in want and present is not None)
    negated = base in NEGATED
    if present is None:
        if if_exists:
            return True
        if quantifier == "ForAllValues":
            return True
        if quantifier == "ForAnyValue":
            return False
        return negated
    wanted = [w for w in (substitute(v, session) for v in c.values) if w is not None]
    if base.startswith("String") and "Like" not in base:
        wanted = [_unescape(w) for w in wanted]

    def one(value: str) -> bool:
        hit = any(_value_matches(base, value, w) for w in wanted)
        return not hit if negated else hit

    if quantifier == "ForAllValues":
        return all(one(v) for v in present)
    return any(one(v) for v in present)


def _unescape(text: str) -> str:
    """An exact-match value carries substituted values in pattern form: back to plain text."""
    return text.replace("$(*)", "*").replace("$(?)", "?").replace("$($)", "$")


def conditions_hold(st: Statement, session: Session) -> bool:
    return all(condition_holds(c, session) is True for c in st.conditions)


def applies(st: Statement, request: Request, session: Session) -> bool:
    return (
        action_applies(st, request.action)
        and resource_applies(st, request.resource, session)
        and conditions_hold(st, session)
    )


def _assumed(statements: Iterable[Statement]) -> tuple[str, ...]:
    keys = {c.key for st in statements for c in st.conditions}
    return tuple(sorted(k for k in keys if not k.startswith(KNOWN_PREFIXES)))


def evaluate(policies: Sequence[Policy], request: Request, session: Session, *, refused: str = "") -> Result:
    """The decision for `request` over every statement of `policies`. `refused` (e.g. "certificate X is
    INACTIVE") means the connection never authenticates: an implicit deny whatever the policies say."""
    if refused:
        return Result(Decision.IMPLICIT_DENY, request, (), refused)
    allows: list[Statement] = []
    denies: list[Statement] = []
    considered: list[Statement] = []
    for policy in policies:
        for st in policy.statements:
            if not action_applies(st, request.action):
                continue
            considered.append(st)
            if resource_applies(st, request.resource, session) and conditions_hold(st, session):
                (denies if st.effect == Effect.DENY else allows).append(st)
    key = lambda s: (s.policy, s.index)  # noqa: E731 - deterministic, order-free naming of the deciders
    assumed = _assumed(considered)
    if denies:
        return Result(
            Decision.EXPLICIT_DENY,
            request,
            tuple(sorted(denies, key=key)),
            "an explicit Deny applies (it overrides every Allow)",
            assumed,
        )
    if allows:
        return Result(Decision.ALLOW, request, tuple(sorted(allows, key=key)), "an Allow applies and no Deny", assumed)
    names = ", ".join(sorted({p.name for p in policies})) or "none"
    return Result(Decision.IMPLICIT_DENY, request, (), f"no statement allows it (policies in effect: {names})", assumed)
