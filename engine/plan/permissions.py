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
from typing import Any, Iterable, Mapping, Sequence

from engine.model import ActualResource, Address, Change, DesiredResource
from engine.plan.attention import Attention, Code, Severity
from engine.plan.model import Plan, change_to_json, plan_digest

AUTHZ_KINDS = ("aws.Policy", "aws.Certificate", "aws.ThingGroup", "aws.Thing", "aws.CACertificate")
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


def _items(delta: Any) -> Attention:
    """The plan item (what applying does) with its drift item (what the account allows that the manifests do
    not, or the reverse): the same delta read in both directions."""
    example = f"; e.g. {delta.example}" if delta.example else ""
    widens = delta.change in ("widens", "changes")
    plan_item = Attention(Code.PERMISSIONS_WIDENED if widens else Code.PERMISSIONS_NARROWED,
                          f"effective permissions: {delta.summary}{example}",
                          Severity.HIGH if widens else Severity.INFO)
    before = ", ".join(delta.before.lines()) if delta.before.allow else "nothing"
    after = ", ".join(delta.after.lines()) if delta.after.allow else "nothing"
    drift_more = delta.change in ("narrows", "changes")        # applying takes something away: the account has more
    drift_item = Attention(Code.PERMISSIONS_WIDENED if drift_more else Code.PERMISSIONS_NARROWED,
                           f"effective permissions in the account {'exceed' if drift_more else 'fall short of'} the "
                           f"manifests: {delta.action} for {delta.count:,} thing(s) is {before} where the manifests "
                           f"say {after}" + (f" ({'; '.join(delta.causes)})" if delta.causes else ""),
                           Severity.HIGH if drift_more else Severity.WARNING)
    return dataclasses.replace(plan_item, drift=drift_item)


def annotate(plan: Plan, desired: Sequence[DesiredResource], actual: Sequence[ActualResource],
             targets: Mapping[str, Mapping[str, Any]] | None = None) -> Plan:
    """`plan` with an attention item per effective-permission change on the change that causes it (a new plan
    id when any was added, since the id covers every change's JSON). Pure: no cloud call, no output."""
    if not _touches_authz(plan):
        return plan
    from engine.authz.delta import permission_delta
    wanted = [d for d in desired if d.kind in AUTHZ_KINDS]
    have = [a for a in actual if a.kind in AUTHZ_KINDS]
    deltas = permission_delta(wanted, have, targets=dict(targets) if targets else None)
    if not deltas:
        return plan
    by_address = {str(c.address): c for c in plan.changes}
    extra: dict[str, list[Attention]] = {}
    for delta in deltas:
        owner = _owner(delta, by_address, plan)
        if owner is not None:
            extra.setdefault(str(owner.address), []).append(_items(delta))
    changes = tuple(dataclasses.replace(c, attention=c.attention + tuple(extra[str(c.address)]))
                    if str(c.address) in extra else c for c in plan.changes)
    plan_id = plan_digest([change_to_json(c) for c in changes], plan.desired_digest, plan.created_at)
    return dataclasses.replace(plan, changes=changes, plan_id=plan_id)


def summaries(plan: Plan) -> Iterable[str]:
    """The effective-permission messages of a plan (for tests and tools)."""
    return (a.message for _, a in plan.attention if a.message.startswith("effective permissions:"))


__all__ = ["annotate", "summaries", "AUTHZ_KINDS"]
