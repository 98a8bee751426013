"""DynamicThingGroup reads and writes (engine/providers/aws/kinds_access.py).

Bulk read: ListThingGroups lists static and dynamic groups alike; DescribeThingGroup tells them apart (a dynamic
group has a `queryString`): the static reader in provider.py skips dynamic groups and this one keeps only them.
Ownership marker: the tag `managed-by=fleetctl` (ListTagsForResource, undeclared groups only). Membership is
AWS's to compute from the fleet index (fleet indexing must be on: IndexingConfiguration); the plan's match count
comes from the manifests (engine/providers/aws/fleetquery.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine import errors
from engine.model import Action, ActualResource, Change
from engine.providers.aws.families import Family, register
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.read import parallel

if TYPE_CHECKING:
    from engine.providers.aws.provider import AwsProvider
    from engine.providers.aws.read import ReadContext

TAGS = [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]


def read_dynamic_groups(ctx: ReadContext) -> list[ActualResource]:
    p = ctx.p
    names = [g["groupName"] for g in ctx.c.pages("list_thing_groups", "thingGroups")]

    def one(name: str) -> ActualResource | None:
        try:
            g = ctx.c.call("describe_thing_group", thingGroupName=name)
        except errors.NotFound:
            return None
        if g.get("queryString") is None:
            return None  # a static group: aws.ThingGroup
        props = g.get("thingGroupProperties") or {}
        state: dict[str, Any] = {
            "queryString": g["queryString"],
            "indexName": g.get("indexName"),
            "queryVersion": g.get("queryVersion"),
            "attributes": dict((props.get("attributePayload") or {}).get("attributes") or {}),
        }
        if props.get("thingGroupDescription"):
            state["description"] = props["thingGroupDescription"]
        arn = g["thingGroupArn"]
        managed = ctx.ownership("aws.DynamicThingGroup", name, state, arn)
        return ActualResource(
            p.addr("DynamicThingGroup", name),
            "aws.DynamicThingGroup",
            state,
            managed=managed,
            token=str(g.get("version", "")),
            ids={"arn": arn, "version": g.get("version"), "status": g.get("status")},
        )

    return [r for r in parallel(one, names) if r is not None]


def _props(d: Mapping[str, Any], removed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if d.get("description") is not None:
        props["thingGroupDescription"] = d["description"]
    attrs = dict(d.get("attributes") or {})
    if attrs or removed:
        props["attributePayload"] = {
            "attributes": {**{k: "" for k in removed or {}}, **attrs},
            **({"merge": True} if removed is not None else {}),
        }
    return props


def _create(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    try:
        p.client.call(
            "create_dynamic_thing_group",
            thingGroupName=c.address.name,
            thingGroupProperties=_props(d),
            indexName=d.get("indexName", "AWS_Things"),
            queryString=d["queryString"],
            queryVersion=d.get("queryVersion", "2017-09-30"),
            tags=TAGS,
        )
    except errors.Conflict:
        _update(p, c)
    return {}


def _update(p: AwsProvider, c: Change) -> dict[str, Any]:
    d = c.desired
    removed = {k: "" for k in (c.actual.get("attributes") or {}) if k not in (d.get("attributes") or {})}
    args: dict[str, Any] = {
        "thingGroupName": c.address.name,
        "thingGroupProperties": _props(d, removed),
        "indexName": d.get("indexName", "AWS_Things"),
        "queryString": d["queryString"],
        "queryVersion": d.get("queryVersion", "2017-09-30"),
    }
    if c.ids.get("version") is not None:
        args["expectedVersion"] = c.ids["version"]
    p.client.call("update_dynamic_thing_group", **args)
    return {}


def _delete(p: AwsProvider, c: Change) -> dict[str, Any]:
    try:
        p.client.call("delete_dynamic_thing_group", thingGroupName=c.address.name)
    except errors.NotFound:
        pass
    return {}


register(
    Family(
        "aws.DynamicThingGroup",
        read_dynamic_groups,
        {Action.CREATE: _create, Action.UPDATE: _update, Action.DELETE: _delete},
        before="aws.Thing",
    )
)  # read before the long ListThings chain: an interrupted import keeps it
