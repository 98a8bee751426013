"""Permission changes of a plan: which requests a change of policies, attachments or group memberships newly
allows or denies, for which devices, summarised per cause ("widens iot:Publish for 1,204 things: now topic/*
instead of topic/${thing}/*").

Why: a policy diff shows text; a reviewer needs the effect. `permission_delta(desired, actual)` is pure (plain
desired and actual resources in, frozen values out) so the planner's "Needs attention" section and drift
output can call it; it never prints. Both sides are evaluated the same way (engine/authz/matrix.py's cells:
what each device may connect as, publish, subscribe and receive, with its own name as `${thing}`), things are
compared per connection (thing, certificate), and a connection whose inputs did not change (same fold key, same
policy documents) is skipped, so a 100,000-thing plan costs one evaluation per distinct permission set, not per
device. Permissions are compared up to each thing's variables first (`${Thing.Attributes[site]}`: one line for a
policy change over every site); when only a variable's value changed (a thing moved to another site), with the
values. Each delta carries a concrete example request checked with the evaluator on both sides (denied before,
allowed after, or the reverse).

For drift, call it with the actual state as "desired" and the manifests as "actual": the deltas then say what
the account allows that the manifests do not (and the reverse).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from engine.authz.evaluate import Request, evaluate
from engine.authz.matrix import COLUMNS, THING_TOKEN, Cell, cell
from engine.authz.policy import Policy
from engine.authz.principals import AuthzFleet, Connection, fold_key
from engine.model import ActualResource, DesiredResource

AUTHZ_KINDS = ("aws.Policy", "aws.Certificate", "aws.ThingGroup", "aws.Thing", "aws.CACertificate")
_WILD = re.compile(r"\$\{thing\}|[*?]")


@dataclass(frozen=True)
class PermissionDelta:
    """One action's permissions changing the same way for a set of things, for the same causes."""

    target: str
    action: str
    change: str  # widens | narrows | changes
    causes: tuple[str, ...]
    things: tuple[str, ...]
    before: Cell
    after: Cell
    example: str = ""

    @property
    def count(self) -> int:
        return len(self.things)

    @property
    def newly_allowed(self) -> tuple[str, ...]:
        """Allow patterns no former one covers, and Deny patterns dropped that no remaining one covers."""
        return tuple(p for p in self.after.allow if not covered(p, self.before.allow)) + tuple(
            f"no longer denied: {p}" for p in self.before.deny if not covered(p, self.after.deny)
        )

    @property
    def newly_denied(self) -> tuple[str, ...]:
        return tuple(p for p in self.before.allow if not covered(p, self.after.allow)) + tuple(
            f"denied: {p}" for p in self.after.deny if not covered(p, self.before.deny)
        )

    @property
    def summary(self) -> str:
        def show(c: Cell) -> str:
            return ", ".join(c.lines()) if c.allow else "nothing"

        why = f" ({'; '.join(self.causes)})" if self.causes else ""
        return (
            f"{self.change} {self.action} for {self.count:,} thing(s): now {show(self.after)} instead of "
            f"{show(self.before)}{why}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "action": self.action,
            "change": self.change,
            "causes": list(self.causes),
            "count": self.count,
            "things": list(self.things),
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "newlyAllowed": list(self.newly_allowed),
            "newlyDenied": list(self.newly_denied),
            "example": self.example,
            "summary": self.summary,
        }


def _fill(match: re.Match[str], *, name: str, filler: str) -> str:
    """A wildcard of a policy resource made concrete: ${thing} is the thing's name, the others `filler`."""
    return name if match.group(0) == THING_TOKEN else filler


def covered(pattern: str, by: Iterable[str]) -> bool:
    """Whether one of the patterns `by` covers every resource `pattern` stands for: `pattern` read as text
    (its `*` and `${thing}` literal) is matched by the other, where `?` may not stand for a `*` (conservative: a
    pattern not shown covered is reported as a change)."""
    for other in by:
        if other == pattern:
            return True
        if other.startswith("every resource except") or pattern.startswith("every resource except"):
            continue
        regex = "".join(".*" if ch == "*" else "[^*]" if ch == "?" else re.escape(ch) for ch in other)
        if re.fullmatch(regex, pattern, re.DOTALL):
            return True
    return False


def _as_desired(actual: Iterable[ActualResource], desired: Sequence[DesiredResource]) -> list[DesiredResource]:
    """Actual resources in the desired shape (providers project `state` onto it). Certificate PEMs are public
    and not read back: they come from the desired certificate of the same address, when declared."""
    pems = {r.address: r.inputs for r in desired if r.kind == "aws.Certificate"}
    return [
        DesiredResource(
            a.address, a.kind, a.state, None, (), pems.get(a.address, {}) if a.kind == "aws.Certificate" else {}
        )
        for a in actual
        if a.kind in AUTHZ_KINDS
    ]


def _content(policy: Policy) -> tuple[Any, ...]:
    return policy.content


def _signature(conn: Connection, symbolic: bool = False) -> tuple[Any, ...]:
    """What a connection's permissions depend on; `symbolic`: up to its variables' values (fold_key)."""
    return (
        fold_key(conn, all_variables=symbolic),
        tuple((p.name, _content(p)) for p in conn.policies + conn.certificate_policies),
    )


def _cells(fleet: AuthzFleet, conn: Connection | None, symbolic: bool = False) -> tuple[Cell, ...]:
    if conn is None or conn.refused:
        return tuple(Cell() for _ in COLUMNS)
    return tuple(cell(fleet, conn, action, rtype, all_variables=symbolic) for _, action, rtype in COLUMNS)


def _causes(before: Connection | None, after: Connection | None) -> tuple[str, ...]:
    if before is None:
        return ("thing created" if after and after.certificate is None else f"{after.label} attached" if after else "",)
    if after is None:
        return (f"{before.label} detached or thing deleted",)
    out = []
    old = {p.name: _content(p) for p in before.policies}
    new = {p.name: _content(p) for p in after.policies}
    out += [f"policy '{n}' now in effect" for n in sorted(set(new) - set(old))]
    out += [f"policy '{n}' no longer in effect" for n in sorted(set(old) - set(new))]
    out += [f"policy '{n}' document changed" for n in sorted(set(old) & set(new)) if old[n] != new[n]]
    if before.refused != after.refused:
        out.append(after.refused or f"{after.label} reactivated")
    if before.thing.facts != after.thing.facts:
        out.append("thing type or attributes changed")
    if before.attached != after.attached:
        out.append("certificate attached to other things")
    return tuple(out)


def _example(
    fleet_before: AuthzFleet,
    fleet_after: AuthzFleet,
    before: Connection | None,
    after: Connection | None,
    action: str,
    rtype: str,
    patterns: tuple[str, ...],
    widens: bool,
) -> str:
    """A concrete request allowed on one side and not the other, checked with the evaluator on both."""
    conn = after or before
    assert conn is not None
    name = conn.thing.name
    for pattern in patterns:
        if pattern.startswith(("deny ", "every resource except", "no longer denied: ", "denied: ")):
            pattern = pattern.split(": ", 1)[-1].removeprefix("deny ")
            if pattern.startswith("every resource except"):
                continue
        for filler in ("x", name):
            concrete = _WILD.sub(functools.partial(_fill, name=name, filler=filler), pattern)
            resource = concrete if concrete.startswith("arn:") else fleet_after.arn(conn.thing.target, rtype, concrete)
            request = Request(action, resource)
            results = []
            for c in (before, after):
                if c is None:
                    results.append(False)
                    continue
                session, policies = c.session(name)
                results.append(evaluate(policies, request, session, refused=c.refused).allowed)
            if results == [not widens, widens]:
                verb = "may now" if widens else "may no longer"
                return f"{name} {verb} {action} {concrete}"
    return ""


def permission_delta(
    desired: Sequence[DesiredResource],
    actual: Sequence[ActualResource],
    *,
    targets: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[PermissionDelta]:
    """The permission changes from `actual` to `desired`, per target, action and cause (largest first).
    `targets` maps a Target name to its `aws` section (region, accountId) for ARNs:
    `engine.authz.principals.target_specs(fleet)`; without it, the policies' ARNs name them."""
    from engine.manifest.fleet import paused_gc

    with paused_gc():
        return _permission_delta(desired, actual, targets)


def _permission_delta(
    desired: Sequence[DesiredResource],
    actual: Sequence[ActualResource],
    targets: Mapping[str, Mapping[str, Any]] | None,
) -> list[PermissionDelta]:
    after_fleet = AuthzFleet.build(desired, targets=targets)
    before_fleet = AuthzFleet.build(_as_desired(actual, desired), targets=targets)
    for f in (before_fleet, after_fleet):  # both sides name resources with the desired side's account
        for t in set(after_fleet.regions) | {k[0] for k in after_fleet.things}:
            f.accounts.setdefault(t, after_fleet.account(t)[0])
    keys = sorted(set(after_fleet.things) | set(before_fleet.things))
    cache: dict[tuple[Any, ...], tuple[Cell, ...]] = {}
    grouped: dict[tuple[Any, ...], list[str]] = {}
    examples: dict[tuple[Any, ...], str] = {}
    for key in keys:
        conns_after = {
            c.certificate.name if c.certificate else None: c
            for c in (after_fleet.connections(after_fleet.things[key]) if key in after_fleet.things else [])
        }
        conns_before = {
            c.certificate.name if c.certificate else None: c
            for c in (before_fleet.connections(before_fleet.things[key]) if key in before_fleet.things else [])
        }
        for cert in sorted(set(conns_after) | set(conns_before), key=lambda c: c or ""):
            a, b = conns_after.get(cert), conns_before.get(cert)
            sig_a = _signature(a) if a else None
            sig_b = _signature(b) if b else None
            if sig_a is not None and sig_a == sig_b:
                continue  # nothing its permissions depend on changed
            # first up to the things' variables (one line for a policy change over every site), then, when only
            # a variable's value changed (a thing moved to another site), with the values
            for symbolic in (True, False):
                side_a = ("a", symbolic, _signature(a, symbolic) if a else None)
                side_b = ("b", symbolic, _signature(b, symbolic) if b else None)
                if side_a[2] is None or side_a not in cache:
                    cache[side_a] = _cells(after_fleet, a, symbolic)
                if side_b[2] is None or side_b not in cache:
                    cache[side_b] = _cells(before_fleet, b, symbolic)
                cells_a, cells_b = cache[side_a], cache[side_b]
                if cells_a != cells_b:
                    break
            causes = _causes(b, a)
            for (label, action, rtype), before_cell, after_cell in zip(COLUMNS, cells_b, cells_a, strict=True):
                if before_cell == after_cell:
                    continue
                group_key = (key[0], action, rtype, causes, before_cell, after_cell)
                grouped.setdefault(group_key, []).append(key[1])
                if group_key not in examples:  # a concrete request, from this thing's own values
                    concrete = [
                        _cells(f, c)[COLUMNS.index((label, action, rtype))]
                        for f, c in ((before_fleet, b), (after_fleet, a))
                    ]
                    probe = PermissionDelta(key[0], action, "", causes, (), concrete[0], concrete[1])
                    examples[group_key] = _example(
                        before_fleet, after_fleet, b, a, action, rtype, probe.newly_allowed, True
                    ) or _example(before_fleet, after_fleet, b, a, action, rtype, probe.newly_denied, False)
    out = []
    for (target, action, rtype, causes, before_cell, after_cell), names in grouped.items():
        d = PermissionDelta(
            target,
            action,
            "",
            causes,
            tuple(sorted(set(names))),
            before_cell,
            after_cell,
            examples[(target, action, rtype, causes, before_cell, after_cell)],
        )
        change = "changes" if d.newly_allowed and d.newly_denied else "widens" if d.newly_allowed else "narrows"
        out.append(replace(d, change=change))
    return sorted(out, key=lambda d: (d.target, -d.count, d.action, d.causes, d.things[0]))
