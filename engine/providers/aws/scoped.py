"""Scoped reads: the actual state of a few named AWS IoT resources, for plans of a change (`plan
--changed-since`) and for the stale check of a small saved plan, at what the change costs, not the fleet.

For each kind in scope the reader prices two strategies at the default quotas (engine/quotas.py) and takes
the cheaper: per-resource describe calls (DescribeThing 350 TPS, ListThingGroupsForThing 100 TPS,
DescribeCertificate 10 TPS, ...) or the bulk list path of `AwsProvider.read` (ListThings 250 per page at 10 TPS
plus per-group enumerations), filtered to the scope. One changed thing in a 100,000-thing fleet costs three
calls instead of 400 ListThings pages.

The describe path projects exactly what the list path projects (same state, token and ownership rules), so a
plan made from one and checked with the other is not "stale": tests/scale/test_changed_since.py checks the
fingerprints of both paths against each other.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from engine import errors
from engine.model import ActualResource, Address, DesiredResource
from engine.providers.aws import families
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.read import ReadContext, ReadOptions, group_actual, parallel, thing_actual
from engine.providers.base import ReadResult
from engine.quotas import AWS_DEFAULT, AWS_IOT_QUOTAS, Quota

if TYPE_CHECKING:
    from engine.providers.aws.provider import AwsProvider

PAGE = 250
LIST_ONLY = ("aws.ThingType", "aws.CACertificate", "aws.TopicRule", "aws.ProvisioningTemplate")  # few per account


def _tps(api: str, quotas: Mapping[str, Quota]) -> float:
    return quotas.get(api, AWS_DEFAULT).tps


def seconds(calls: Mapping[str, float], quotas: Mapping[str, Quota] = AWS_IOT_QUOTAS) -> float:
    """Time the default quotas impose on `calls` when each API is paced on its own bucket (the binding API)."""
    return max((n / _tps(api, quotas) for api, n in calls.items() if n), default=0.0)


def thing_costs(
    scoped: int,
    fleet: int,
    groups: int,
    certificates: int,
    policies: int,
    links: int,
    quotas: Mapping[str, Quota] = AWS_IOT_QUOTAS,
) -> dict[str, float]:
    """Seconds at the quotas to read `scoped` things of a `fleet`-thing target: describe vs list path.
    The list path is AwsProvider.read's (things, group memberships by group, certificates, policy targets, in
    sequence); `links`: things whose certificate links are managed (one ListThingPrincipals each, both paths)."""
    pages, cert_pages = max(1, math.ceil(fleet / PAGE)), math.ceil(certificates / PAGE)
    describe = seconds(
        {"DescribeThing": scoped, "ListThingGroupsForThing": scoped, "ListThingPrincipals": links}, quotas
    )
    listing = (
        seconds({"ListThings": pages}, quotas)
        + seconds({"ListThingsInThingGroup": groups + pages}, quotas)
        + seconds({"ListCertificates": cert_pages}, quotas)
        + seconds({"ListTargetsForPolicy": policies + cert_pages}, quotas)
        + seconds({"ListThingPrincipals": links}, quotas)
    )
    return {"describe": describe, "list": listing}


def _cheaper(costs: Mapping[str, float]) -> str:
    """The path to take: the list path unless describing is clearly (>5 %) faster at the quotas. When a shared
    binding quota (ListThingPrincipals) makes both about equal, the list path makes far fewer calls, and for
    things that turn out not to exist (a stale check of planned creates) no principal is read at all."""
    return "list" if costs["list"] <= costs["describe"] * 1.05 else "describe"


def certificate_costs(
    scoped: int, fleet: int, policies: int, quotas: Mapping[str, Quota] = AWS_IOT_QUOTAS
) -> dict[str, float]:
    pages = max(1, math.ceil(fleet / PAGE))
    describe = seconds({"DescribeCertificate": scoped, "ListAttachedPolicies": scoped}, quotas)
    listing = seconds({"ListCertificates": pages}, quotas) + seconds({"ListTargetsForPolicy": policies + pages}, quotas)
    return {"describe": describe, "list": listing}


def read_scoped(
    p: AwsProvider,
    desired: list[DesiredResource],
    scope: Iterable[Address],
    previous: Iterable[DesiredResource] = (),
    *,
    strategy: str | None = None,
) -> ReadResult:
    """Actual state of the resources at `scope` addresses of this target (declared or not).

    `desired` is the target's whole desired state: it names certificates by id and says which links are
    managed; `previous` holds desired resources of an older revision, for addresses no longer declared (a
    removed certificate is found by its old id). Resources that do not exist are simply absent. `strategy`
    ("describe" or "list") overrides the choice by cost for things and certificates.
    """
    p.diagnostics = []
    wanted: dict[str, set[str]] = {}
    for a in scope:
        if a.provider == "aws" and a.target == p.target:
            wanted.setdefault("aws." + a.parts[2], set()).add(a.name)
    by_kind: dict[str, dict[str, DesiredResource]] = {}
    for d in desired:
        by_kind.setdefault(d.kind, {})[d.address.name] = d
    old = {(d.kind, d.address.name): d for d in previous}
    ctx = ReadContext(p, by_kind, False)
    out: list[ActualResource] = []
    extra = families.families()  # kinds of engine/providers/aws/families.py: few per account, listed
    listed = [k for k in (*LIST_ONLY, *extra) if k in wanted]
    for fam in extra.values():  # indexes other readers use (things' billing groups): read first
        if families.fed(fam, set(wanted), by_kind):
            fam.read(ctx)
    if listed:  # few per account: the list readers are as cheap as describes, and already exact
        result = p.read(
            [d for k in listed for d in by_kind.get(k, {}).values()], options=ReadOptions(kinds=frozenset(listed))
        )
        out += [a for a in result.actual if a.address.name in wanted.get(a.kind, set())]
    if "aws.Policy" in wanted:
        out += parallel(lambda n: _policy(ctx, n), sorted(wanted["aws.Policy"]))
    if "aws.ThingGroup" in wanted:
        out += parallel(lambda n: _group(ctx, n), sorted(wanted["aws.ThingGroup"]))
    if "aws.Certificate" in wanted:
        out += _certificates(ctx, wanted["aws.Certificate"], desired, by_kind, old, strategy)
    if "aws.Thing" in wanted:
        out += _things(ctx, wanted["aws.Thing"], desired, by_kind, strategy)
    return ReadResult([a for a in out if a is not None], list(p.diagnostics))


# ---------------------------------------------------------------------------------------------- per kind
def _policy(ctx: ReadContext, name: str) -> ActualResource | None:
    try:
        pol = ctx.c.call("get_policy", policyName=name)
        versions = ctx.c.call("list_policy_versions", policyName=name).get("policyVersions", [])
    except errors.NotFound:
        return None
    desired = ctx.by_kind.get("aws.Policy", {}).get(name)
    version_ids = sorted(int(v["versionId"]) for v in versions)
    state: dict[str, Any] = {"document": json.loads(pol["policyDocument"])}
    ids: dict[str, Any] = {
        "arn": pol["policyArn"],
        "defaultVersionId": pol["defaultVersionId"],
        "versions": version_ids,
    }
    if desired is not None:
        keep = int(desired.spec.get("keepVersions", 5))
        state["keepVersions"] = keep if len(version_ids) <= keep else len(version_ids)
        managed = True
    else:  # a removed policy: its delete detaches it from every target, so they are listed
        ids["targets"] = sorted(
            ctx.c.pages(
                "list_targets_for_policy",
                "targets",
                page_size=PAGE,
                size_arg="pageSize",
                token_in="marker",
                token_out="nextMarker",
                policyName=name,
            )
        )
        managed = ctx.p.tags_managed(pol["policyArn"])
    ctx.marker("aws.Policy", name, state, lambda: ctx.p.tags_managed(pol["policyArn"]))
    return ActualResource(
        ctx.p.addr("Policy", name), "aws.Policy", state, token=f"v{pol['defaultVersionId']}", managed=managed, ids=ids
    )


def _attached_policies(ctx: ReadContext, arn: str) -> list[str]:
    return sorted(
        p["policyName"]
        for p in ctx.c.pages(
            "list_attached_policies",
            "policies",
            page_size=PAGE,
            size_arg="pageSize",
            token_in="marker",
            token_out="nextMarker",
            target=arn,
        )
    )


def _group(ctx: ReadContext, name: str) -> ActualResource | None:
    try:
        g = ctx.c.call("describe_thing_group", thingGroupName=name)
    except errors.NotFound:
        return None
    group = group_actual(ctx, name, g, _attached_policies(ctx, g["thingGroupArn"]), [])
    desired = ctx.by_kind.get("aws.ThingGroup", {}).get(name)
    if desired is not None and desired.spec.get("parent") != group.state["parent"]:
        # members are only needed to re-add them when the group is replaced (its parent changes)
        members = sorted(ctx.c.pages("list_things_in_thing_group", "things", thingGroupName=name))
        group = dataclasses.replace(group, ids={**group.ids, "members": members})
    return group


def _certificates(
    ctx: ReadContext,
    names: set[str],
    desired: list[DesiredResource],
    by_kind: Mapping[str, Mapping[str, DesiredResource]],
    old: Mapping[tuple[str, str], DesiredResource],
    strategy: str | None,
) -> list[ActualResource]:
    declared = by_kind.get("aws.Certificate", {})
    fleet = len(declared)
    costs = certificate_costs(len(names), fleet, len(by_kind.get("aws.Policy", {})))
    ids: dict[str, str] = {}
    for name in names:
        d = declared.get(name) or old.get(("aws.Certificate", name))
        if d is not None and d.spec.get("certificateId"):
            ids[name] = d.spec["certificateId"]
        elif len(name) == 64:  # an undeclared certificate is addressed by its id
            ids[name] = name
    if (strategy or _cheaper(costs)) == "list":
        result = ctx.p.read(desired, options=ReadOptions(kinds=frozenset({"aws.Certificate"})))
        keep = {ctx.cert_name(cid) for cid in ids.values()}
        return [a for a in result.actual if a.address.name in keep]
    cas = {d.spec.get("certificateId"): n for n, d in by_kind.get("aws.CACertificate", {}).items()}

    def one(cid: str) -> ActualResource | None:
        try:
            desc = ctx.c.call("describe_certificate", certificateId=cid)["certificateDescription"]
        except errors.NotFound:
            return None
        arn = desc["certificateArn"]
        ctx.p.arns[cid] = arn
        name = ctx.cert_name(cid)
        ca = desc.get("caCertificateId")
        state = {
            "certificateId": cid,
            "status": desc.get("status"),
            "caCertificate": cas.get(ca, ca) if ca else None,
            "policies": _attached_policies(ctx, arn),
        }
        managed = name in declared or _held_by_managed_thing(ctx, arn)
        return ActualResource(
            ctx.p.addr("Certificate", name),
            "aws.Certificate",
            state,
            managed=managed,
            ids={"arn": arn, "certificateId": cid},
        )

    return [a for a in parallel(one, sorted(set(ids.values()))) if a is not None]


def _held_by_managed_thing(ctx: ReadContext, arn: str) -> bool:
    for thing in ctx.c.pages("list_principal_things", "things", principal=arn):
        try:
            attrs = ctx.c.call("describe_thing", thingName=thing).get("attributes") or {}
        except errors.NotFound:
            continue
        if attrs.get(MARKER_KEY) == MARKER_VALUE:
            return True
    return False


def _things(
    ctx: ReadContext,
    names: set[str],
    desired: list[DesiredResource],
    by_kind: Mapping[str, Mapping[str, DesiredResource]],
    strategy: str | None,
) -> list[ActualResource]:
    declared = by_kind.get("aws.Thing", {})
    groups = {g for d in declared.values() for g in d.spec.get("groups", [])}
    links = sum(1 for n in names if ctx.links_managed(n, n not in declared))
    certificates = by_kind.get("aws.Certificate", {})
    costs = thing_costs(
        len(names),
        max(len(declared), len(names)),
        len(groups),
        len(certificates),
        len(by_kind.get("aws.Policy", {})),
        links,
    )
    if (strategy or _cheaper(costs)) == "list":
        result = ctx.p.read(desired, options=ReadOptions(kinds=frozenset({"aws.Thing"}), only_things=frozenset(names)))
        return [a for a in result.actual if a.address.name in names]

    def one(name: str) -> ActualResource | None:
        try:
            t = ctx.c.call("describe_thing", thingName=name)
        except errors.NotFound:
            return None
        member_of = [g["groupName"] for g in ctx.c.pages("list_thing_groups_for_thing", "thingGroups", thingName=name)]
        principals: list[str] = []
        if ctx.links_managed(name, (t.get("attributes") or {}).get(MARKER_KEY) == MARKER_VALUE):
            arns = ctx.c.pages("list_thing_principals", "principals", thingName=name)
            principals = sorted(ctx.cert_name(arn.rsplit("/", 1)[-1]) for arn in arns if ":cert/" in arn)
        return thing_actual(ctx, name, t, member_of, principals)

    return [a for a in parallel(one, sorted(names)) if a is not None]
