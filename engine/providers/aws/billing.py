"""BillingGroup reads and writes, and the billing-group membership of things (engine/providers/aws/kinds_access.py).

Bulk read: ListBillingGroups, then per group DescribeBillingGroup, ListTagsForResource (its cost-allocation tags
are declared state; the ownership marker `managed-by=fleetctl` is one of them) and ListThingsInBillingGroup. The
members index (`ctx.shared["billingGroupOf"]`) gives each thing its `billingGroup` (ListThings does not name it),
so a billing group is read before things, whenever things are. A thing joins its billing group in CreateThing
(`billingGroupName`) or with AddThingToBillingGroup; a billing group is deleted after its members are removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine import errors
from engine.model import Action, ActualResource, Change
from engine.providers.aws.families import Family, register
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.kinds_access import tag_changes
from engine.providers.aws.read import parallel

if TYPE_CHECKING:
    from engine.providers.aws.provider import AwsProvider
    from engine.providers.aws.read import ReadContext

TAGS = [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]


def read_billing_groups(ctx: ReadContext) -> list[ActualResource]:
    p = ctx.p
    names = [g["groupName"] for g in ctx.c.pages("list_billing_groups", "billingGroups")]

    def one(name: str) -> ActualResource | None:
        try:
            g = ctx.c.call("describe_billing_group", billingGroupName=name)
            tags = {
                t["Key"]: t.get("Value", "")
                for t in ctx.c.pages("list_tags_for_resource", "tags", page_size=None, resourceArn=g["billingGroupArn"])
            }
            members = sorted(ctx.c.pages("list_things_in_billing_group", "things", billingGroupName=name))
        except errors.NotFound:
            return None
        marked = tags.pop(MARKER_KEY, None) == MARKER_VALUE
        state: dict[str, Any] = {"tags": dict(sorted(tags.items()))}
        desc = (g.get("billingGroupProperties") or {}).get("billingGroupDescription")
        if desc:
            state["description"] = desc
        ctx.marker("aws.BillingGroup", name, state, marked)
        return ActualResource(
            p.addr("BillingGroup", name),
            "aws.BillingGroup",
            state,
            managed=ctx.declared("aws.BillingGroup", name) or marked,
            token=str(g.get("version", "")),
            ids={"arn": g["billingGroupArn"], "version": g.get("version"), "members": members},
        )

    groups = [r for r in parallel(one, names) if r is not None]
    ctx.shared["billingGroupOf"] = {thing: g.address.name for g in groups for thing in g.ids["members"]}
    return groups


def _create(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    props = {"billingGroupDescription": d["description"]} if d.get("description") else {}
    tags = [*TAGS, *({"Key": k, "Value": v} for k, v in (d.get("tags") or {}).items())]
    try:
        p.client.call("create_billing_group", billingGroupName=c.address.name, billingGroupProperties=props, tags=tags)
    except errors.Conflict:
        _update(p, c)
    return {}


def _update(p: AwsProvider, c: Change) -> dict[str, Any]:
    d, name = c.desired, c.address.name
    if any(f.path == "description" for f in c.fields) or c.action is Action.CREATE:
        args: dict[str, Any] = {
            "billingGroupName": name,
            "billingGroupProperties": {"billingGroupDescription": d.get("description") or ""},
        }
        if c.ids.get("version") is not None:
            args["expectedVersion"] = c.ids["version"]
        p.client.call("update_billing_group", **args)
    if "tags" in d:
        put, drop = tag_changes(c)
        arn = c.ids.get("arn") or p.client.call("describe_billing_group", billingGroupName=name)["billingGroupArn"]
        if put:
            p.client.call("tag_resource", resourceArn=arn, tags=[{"Key": k, "Value": v} for k, v in put.items()])
        if drop:
            p.client.call("untag_resource", resourceArn=arn, tagKeys=drop)
    return {}


def _delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    name = c.address.name
    for thing in p.client.pages("list_things_in_billing_group", "things", billingGroupName=name):
        try:
            p.client.call("remove_thing_from_billing_group", billingGroupName=name, thingName=thing)
        except errors.NotFound:
            pass
    try:
        p.client.call("delete_billing_group", billingGroupName=name)
    except errors.NotFound:
        pass
    return {}


def _declares_billing(by_kind: Any) -> bool:
    return any("billingGroup" in d.spec for d in by_kind.get("aws.Thing", {}).values())


def thing_billing(p: AwsProvider, c: Change) -> None:
    """A thing's update of `billingGroup`: leave the old group, join the new one."""
    if not any(f.path == "billingGroup" for f in c.fields):
        return
    old, new = c.actual.get("billingGroup"), c.desired.get("billingGroup")
    if old and old != new:
        p.client.call("remove_thing_from_billing_group", billingGroupName=old, thingName=c.address.name)
    if new and new != old:
        p.client.call("add_thing_to_billing_group", billingGroupName=new, thingName=c.address.name)


register(
    Family(
        "aws.BillingGroup",
        read_billing_groups,
        {Action.CREATE: _create, Action.UPDATE: _update, Action.DELETE: _delete},
        before="aws.ThingGroup",
        feeds=("aws.Thing",),
        feeds_when=_declares_billing,
    )
)
