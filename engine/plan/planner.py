"""The planner: a pure function from desired and actual resources to an ordered Plan.

It never reads a cloud, never prints, never looks at the clock itself (the caller passes `created_at`).
Pairing (gitops-engine's model): for each address the desired and the actual resource side by side; a
missing actual side means create, a missing desired side means delete — but only for resources carrying
fleetctl's ownership marker and only when pruning is enabled; anything else is reported, never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

from engine import kinds as registry
from engine.diagnostics import Diagnostic, Severity, Source, warning
from engine.diff import diff_fields
from engine.graph import topo_order
from engine.kinds import KindDecl
from engine.model import (
    ABSENT,
    SENSITIVE,
    Action,
    ActualResource,
    Address,
    Blocked,
    Change,
    DesiredResource,
    FieldChange,
    SecretRef,
)
from engine.plan.attention import assess
from engine.plan.model import Plan, change_to_json, plan_digest


@dataclass(frozen=True)
class PlanOptions:
    prune_targets: frozenset[str] = frozenset()  # targets where managed-but-undeclared resources are deleted
    git_commit: str | None = None
    created_at: str = "1970-01-01T00:00:00Z"
    desired_digest: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _references(kind: str, state: Mapping[str, Any], address: Address) -> list[Address]:
    """Addresses an actual resource points at (used to order deletes after their users)."""
    try:
        decl = registry.by_qualified(kind)
    except KeyError:
        return []
    out = []
    for ref in decl.references:
        value: Any = state
        for part in ref.path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            continue
        for name in value if isinstance(value, list) else [value]:
            out.append(Address.of(address.provider, address.target, ref.kind.split(".")[1], str(name)))
    return out


class _FromDesired(TypedDict):
    """The Change fields every action takes from the desired resource."""

    address: Address
    kind: str
    desired: dict[str, Any]
    inputs: dict[str, Any]
    secrets: dict[str, SecretRef]
    depends_on: tuple[Address, ...]
    source: Source | None


def _pair(d: DesiredResource, a: ActualResource | None) -> Change | None:
    decl = registry.by_qualified(d.kind)
    common = _FromDesired(
        address=d.address,
        kind=d.kind,
        desired=dict(d.spec),
        inputs=dict(d.inputs),
        secrets=dict(d.secrets),
        depends_on=d.depends_on,
        source=d.source,
    )
    if a is None:
        return Change(action=Action.CREATE, fields=tuple(_creation_fields(d, decl)), **common)
    fields = decl.diff(d, a) if decl.diff else diff_fields(d.spec, a.state, decl)
    if not fields:
        return None
    immutable = sorted({f.field for f in fields} & set(decl.immutable))
    action = Action.REPLACE if immutable else Action.UPDATE
    reason = f"{', '.join(immutable)} cannot be updated in place" if immutable else ""
    return Change(
        action=action,
        reason=reason,
        fields=tuple(fields),
        fingerprint=a.fingerprint,
        actual=dict(a.state),
        ids=dict(a.ids),
        **common,
    )


def _creation_fields(d: DesiredResource, decl: KindDecl) -> list[FieldChange]:
    out = []
    for key in sorted(d.spec):
        sensitive = key in decl.sensitive
        out.append(FieldChange(key, None, SENSITIVE if sensitive else d.spec[key], sensitive))
    return out


def _delete(a: ActualResource) -> Change:
    return Change(
        address=a.address,
        kind=a.kind,
        action=Action.DELETE,
        reason="managed by fleetctl, no longer declared, pruning enabled",
        fingerprint=a.fingerprint,
        actual=dict(a.state),
        ids=dict(a.ids),
    )


def as_blocked(change: Change, diag: Diagnostic) -> Blocked | Change:
    """A refine hook's Diagnostic read as a Blocked: an error means the change cannot be carried out (its
    summary is the reason, its detail the remedy); a warning leaves the change as it is."""
    if diag.severity is not Severity.ERROR:
        return change
    return Blocked(
        change.address,
        change.kind,
        change.action,
        diag.summary,
        diag.detail or "change the manifest, or the actual resource by hand, so that they agree",
        change.fields,
        diag.field,
        diag.source or change.source,
    )


def converged(change: Change, actual: ActualResource | None) -> bool:
    """Whether `actual` is already what applying `change` makes it: absent after a delete, else no field of
    the change's desired spec differs. (Apply uses it to tell "already applied" from "stale" when the journal
    of the earlier apply is not at hand.)

    A kind that states its own diff (device registers: desired values resolved against the fleet and the dump
    at read time) is never judged converged here: its stub desired side is not the whole desired state, and a
    device holds the new values only once it was pushed and read back, not when apply wrote the artifacts."""
    if change.action is Action.DELETE:
        return actual is None
    if actual is None or registry.by_qualified(change.kind).diff is not None:
        return False
    desired = DesiredResource(
        change.address, change.kind, change.desired, change.source, change.depends_on, change.inputs, change.secrets
    )
    return _pair(desired, actual) is None


def _rank(kind: str) -> int:
    try:
        return registry.by_qualified(kind).rank
    except KeyError:
        return 1000


def plan(desired: Iterable[DesiredResource], actual: Iterable[ActualResource], options: PlanOptions) -> Plan:
    """Pair, diff, refine and order. Same inputs, same Plan (bytes included)."""
    desired_by = {d.address: d for d in desired}
    actual_by = {a.address: a for a in actual}
    diags: list[Diagnostic] = []
    changes: list[Change] = []
    for address in sorted(desired_by):
        change = _pair(desired_by[address], actual_by.get(address))
        if change is not None:
            changes.append(change)
    deletes: list[Change] = []
    unmanaged: list[str] = []
    for address in sorted(set(actual_by) - set(desired_by)):
        a = actual_by[address]
        if a.managed and address.target in options.prune_targets:
            deletes.append(_delete(a))
        elif a.managed:
            diags.append(
                warning(
                    "managed by fleetctl but no longer declared; it is kept because pruning is off "
                    "(set prune: true on the Target or pass --prune to delete it)",
                    address=str(address),
                )
            )
        else:
            unmanaged.append(str(address))

    refined: list[Change] = []
    blocked: list[Blocked] = []
    for change in changes + deletes:
        decl = registry.by_qualified(change.kind)
        result = decl.refine(change) if decl.refine else change
        if isinstance(result, Diagnostic):
            result = as_blocked(change, result)
        if isinstance(result, Blocked):  # the change cannot be carried out: part of the plan, plan the rest
            blocked.append(result)
        elif result is not None:  # what a reviewer must not miss (engine/plan/attention.py), read by every view
            attention = assess(result)
            refined.append(replace(result, attention=attention) if attention else result)

    forward = [c for c in refined if c.action is not Action.DELETE]
    backward = [c for c in refined if c.action is Action.DELETE]
    ordered, cycle = topo_order(
        forward, lambda c: c.address, lambda c: c.depends_on, lambda c: (_rank(c.kind), str(c.address))
    )
    diags.extend(cycle)
    deleted = {c.address for c in backward}
    users: dict[Address, list[Address]] = {a: [] for a in deleted}
    for c in backward:
        for ref in _references(c.kind, c.actual, c.address):
            if ref in users:
                users[ref].append(c.address)
    ordered_deletes, cycle = topo_order(
        backward, lambda c: c.address, lambda c: users.get(c.address, []), lambda c: (-_rank(c.kind), str(c.address))
    )
    diags.extend(cycle)
    final = ordered + ordered_deletes
    plan_id = plan_digest([change_to_json(c) for c in final], options.desired_digest, options.created_at)
    return Plan(
        plan_id=plan_id,
        created_at=options.created_at,
        git_commit=options.git_commit,
        desired_digest=options.desired_digest,
        changes=tuple(final),
        unmanaged=tuple(unmanaged),
        diagnostics=tuple(diags),
        blocked=tuple(sorted(blocked, key=lambda b: b.address)),
        options={"pruneTargets": sorted(options.prune_targets), **options.extra},
    )


__all__ = ["PlanOptions", "plan", "converged", "as_blocked", "ABSENT"]
