"""Effective-permission changes in a plan's "Needs attention" section (issue 14.4).

engine/plan/attention.py reads one change at a time: it can say that a policy statement widened, not what that
means for the devices. engine/authz/delta.py evaluates the whole desired fleet against the actual one and says
which requests a change of policies, attachments or group memberships newly allows or denies, for how many
things ("widens iot:Publish for 1,204 thing(s): now topic/* instead of topic/${thing}/*"). This module puts those
deltas where a reviewer already looks: each becomes an Attention item on the change that causes it (the policy
whose document changed, the certificate attached, the thing created), with the drift wording beside it, so
plan, drift, markdown, JSON and `show --address` show it with the other flags.

Only plans that change an authorization input pay for the evaluation (a re-plan with no policy, certificate,
group or thing change costs nothing). The drift direction needs no second evaluation: the delta from the actual
state to the manifests, read backwards, is what the actual state allows that the manifests do not.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.attention import Attention, Code, Severity
from engine.authz.delta import AUTHZ_KINDS
from engine.model import ActualResource, Address, Change, DesiredResource
from engine.plan.model import Plan, change_to_json, plan_digest

_POLICY = re.compile(r"policy '([^']+)'")
_LABEL = re.compile(r"certificate '([^']+)'")


def _touches_authz(plan: Plan) -> bool:
    return any(c.kind in AUTHZ_KINDS for c in plan.changes)


def _owner(delta: Any, by_address: Mapping[str, Change], plan: Plan) -> Change | None:
    """The change a delta is shown on: the policy it names, else the certificate, else a thing it affects,
    else the first authorization change of its Target."""
    candidates: list[str] = []
    for cause in delta.causes:
        candidates += [str(Address.of("aws", delta.target, "Policy", n)) for n in _POLICY.findall(cause)]
        candidates += [str(Address.of("aws", delta.target, "Certificate", n)) for n in _LABEL.findall(cause)]
    candidates += [str(Address.of("aws", delta.target, "Thing", t)) for t in delta.things[:50]]
    for address in candidates:
        if address in by_address:
            return by_address[address]
    return next((c for c in plan.changes if c.kind in AUTHZ_KINDS and c.address.target == delta.target), None)


def _cells(delta: Any) -> tuple[str, str]:
    def show(cell: Any) -> str:
        return ", ".join(cell.lines()) if cell.allow else "nothing"

    return show(delta.before), show(delta.after)


def _item(deltas: list[Any]) -> Attention:
    """One plan item (what applying does) with its drift item (what the account allows that the manifests do
    not, or the reverse) for the deltas of one cause on one set of things, one clause per MQTT action: the same
    deltas read in both directions."""
    first = deltas[0]
    widens = any(d.change in ("widens", "changes") for d in deltas)
    narrows = any(d.change in ("narrows", "changes") for d in deltas)
    verb = "widen and narrow" if widens and narrows else "widen" if widens else "narrow"
    why = f" ({'; '.join(first.causes)})" if first.causes else ""
    clauses = "; ".join(f"{d.action} now {_cells(d)[1]} instead of {_cells(d)[0]}" for d in deltas)
    examples = "; ".join(d.example for d in deltas if d.example)
    plan_item = Attention(
        Code.PERMISSIONS_WIDENED if widens else Code.PERMISSIONS_NARROWED,
        f"effective permissions {verb} for {first.count:,} thing(s){why}: {clauses}"
        + (f"; e.g. {examples}" if examples else ""),
        Severity.HIGH if widens else Severity.INFO,
    )
    more = narrows  # applying takes something away: the account allows more than the manifests
    drift_clauses = "; ".join(f"{d.action} is {_cells(d)[0]} where the manifests say {_cells(d)[1]}" for d in deltas)
    repair = f" (repaired by: {'; '.join(first.causes)})" if first.causes else ""
    drift_item = Attention(
        Code.PERMISSIONS_WIDENED if more else Code.PERMISSIONS_NARROWED,
        f"effective permissions in the account {'exceed' if more else 'fall short of'} the "
        f"manifests for {first.count:,} thing(s): {drift_clauses}{repair}",
        Severity.HIGH if more else Severity.WARNING,
    )
    return dataclasses.replace(plan_item, drift=drift_item)


def annotate(
    plan: Plan,
    desired: Sequence[DesiredResource],
    actual: Sequence[ActualResource],
    targets: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """`plan` with an attention item per effective-permission change on the change that causes it (a new plan
    id when any was added, since the id covers every change's JSON). Pure: no cloud call, no output."""
    if not _touches_authz(plan):
        return plan
    from engine.authz import delta as authz_delta  # looked up at call time (tests count the calls)

    wanted = [d for d in desired if d.kind in AUTHZ_KINDS]
    have = [a for a in actual if a.kind in AUTHZ_KINDS]
    deltas = authz_delta.permission_delta(wanted, have, targets=dict(targets) if targets else None)
    if not deltas:
        return plan
    by_address = {str(c.address): c for c in plan.changes}
    grouped: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[Any]] = {}
    for delta in deltas:  # one item per cause and set of things, all its actions together
        owner = _owner(delta, by_address, plan)
        if owner is not None:
            grouped.setdefault((str(owner.address), delta.causes, delta.things), []).append(delta)
    extra: dict[str, list[Attention]] = {}
    for (address, _, _), group in grouped.items():
        extra.setdefault(address, []).append(_item(group))
    changes = tuple(
        dataclasses.replace(c, attention=c.attention + tuple(extra[str(c.address)])) if str(c.address) in extra else c
        for c in plan.changes
    )
    plan_id = plan_digest([change_to_json(c) for c in changes], plan.desired_digest, plan.created_at)
    return dataclasses.replace(plan, changes=changes, plan_id=plan_id)


def summaries(plan: Plan) -> Iterable[str]:
    """The effective-permission messages of a plan (for tests and tools)."""
    return (a.message for _, a in plan.attention if a.message.startswith("effective permissions "))


__all__ = ["annotate", "summaries"]
