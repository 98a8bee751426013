"""Reads and writes of the AWS IoT account singletons (fleet indexing, v2 logging with per-target levels,
registry events, Device Defender audit configuration) and of scheduled audits.

A singleton is read only where a manifest declares it (or an import asks for everything), under the declared
name: it is one setting of the account, so it is always there, is never a prune candidate and is never deleted.
Its apply is one update that writes the whole declared setting (per-target log levels: set each that differs,
delete each the manifest does not declare). Scheduled audits are named resources with the ownership tag.
Declarations: engine/providers/aws/kinds_account.py; the seam: engine/providers/aws/families.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine import errors
from engine.model import Action, ActualResource, Change
from engine.providers.aws.families import Family, register
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.kinds_account import level_key

if TYPE_CHECKING:
    from engine.providers.aws.read import ReadContext

TAGS = [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]
IMPORT_NAME = "account"  # the name `fleetctl import` gives a singleton


def singleton_name(ctx: ReadContext, kind: str) -> str | None:
    """The declared name of the singleton `kind` in this Target, IMPORT_NAME for an import, else None (unread)."""
    declared = sorted(ctx.by_kind.get(kind, {}))
    if declared:
        return declared[0]
    return IMPORT_NAME if ctx.options.everything or (ctx.options.kinds and kind in ctx.options.kinds) else None


def _singleton(ctx: Any, kind: str, state: dict[str, Any], name: str) -> list[ActualResource]:
    return [ActualResource(ctx.p.addr(kind[4:], name), kind, state, managed=ctx.declared(kind, name))]


# ---------------------------------------------------------------------------------------------- indexing
def _read_indexing(ctx: Any) -> list[ActualResource]:
    name = singleton_name(ctx, "aws.IndexingConfiguration")
    if name is None:
        return []
    conf = ctx.c.call("get_indexing_configuration")
    thing = conf.get("thingIndexingConfiguration") or {}
    group = conf.get("thingGroupIndexingConfiguration") or {}
    state = {
        "thingIndexingMode": thing.get("thingIndexingMode", "OFF"),
        "thingConnectivityIndexingMode": thing.get("thingConnectivityIndexingMode") or "OFF",
        "deviceDefenderIndexingMode": thing.get("deviceDefenderIndexingMode") or "OFF",
        "namedShadowIndexingMode": thing.get("namedShadowIndexingMode") or "OFF",
        "thingGroupIndexingMode": group.get("thingGroupIndexingMode") or "OFF",
        "customFields": sorted(
            ({"name": f["name"], "type": f["type"]} for f in thing.get("customFields") or []), key=lambda f: f["name"]
        ),
    }
    return _singleton(ctx, "aws.IndexingConfiguration", state, name)


def _write_indexing(p: Any, c: Change) -> dict[str, Any]:
    d = c.desired
    thing: dict[str, Any] = {
        k: d[k]
        for k in (
            "thingIndexingMode",
            "thingConnectivityIndexingMode",
            "deviceDefenderIndexingMode",
            "namedShadowIndexingMode",
        )
    }
    if d.get("customFields") or c.actual.get("customFields"):
        thing["customFields"] = d.get("customFields", [])
    p.client.call(
        "update_indexing_configuration",
        thingIndexingConfiguration=thing,
        thingGroupIndexingConfiguration={"thingGroupIndexingMode": d["thingGroupIndexingMode"]},
    )
    return {}


# ---------------------------------------------------------------------------------------------- logging
def _read_logging(ctx: Any) -> list[ActualResource]:
    name = singleton_name(ctx, "aws.LoggingOptions")
    if name is None:
        return []
    try:
        opts = ctx.c.call("get_v2_logging_options")
        levels = {
            level_key(t["logTarget"]["targetType"], t["logTarget"].get("targetName", "")): t["logLevel"]
            for t in ctx.c.pages("list_v2_logging_levels", "logTargetConfigurations")
            if t["logTarget"]["targetType"] != "DEFAULT"
        }
    except errors.NotFound:  # an account where v2 logging was never set: logging is off
        opts, levels = {"defaultLogLevel": "DISABLED", "disableAllLogs": True}, {}
    state = {
        "roleArn": opts.get("roleArn"),
        "defaultLogLevel": opts.get("defaultLogLevel", "ERROR"),
        "disableAllLogs": bool(opts.get("disableAllLogs", False)),
        "levels": levels,
    }
    return _singleton(ctx, "aws.LoggingOptions", state, name)


def _write_logging(p: Any, c: Change) -> dict[str, Any]:
    d = c.desired
    if any(f.path.split(".")[0] != "levels" for f in c.fields) or not c.actual.get("roleArn"):
        p.client.call(
            "set_v2_logging_options",
            roleArn=d["roleArn"],
            defaultLogLevel=d["defaultLogLevel"],
            disableAllLogs=d["disableAllLogs"],
        )
    want, have = d.get("levels") or {}, c.actual.get("levels") or {}
    for key, level in sorted(want.items()):
        if have.get(key) != level:
            target_type, target_name = key.split("/", 1)
            p.client.call(
                "set_v2_logging_level", logTarget={"targetType": target_type, "targetName": target_name}, logLevel=level
            )
    for key in sorted(set(have) - set(want)):
        target_type, target_name = key.split("/", 1)
        p.client.call("delete_v2_logging_level", targetType=target_type, targetName=target_name)
    return {}


# ---------------------------------------------------------------------------------------------- events
def _read_events(ctx: Any) -> list[ActualResource]:
    name = singleton_name(ctx, "aws.EventConfigurations")
    if name is None:
        return []
    conf = ctx.c.call("describe_event_configurations").get("eventConfigurations") or {}
    state = {"enabled": sorted(k for k, v in conf.items() if (v or {}).get("Enabled"))}
    return _singleton(ctx, "aws.EventConfigurations", state, name)


def _write_events(p: Any, c: Change) -> dict[str, Any]:
    want = set(c.desired.get("enabled", []))
    have = set(c.actual.get("enabled", []) or [])
    changes = {k: {"Enabled": k in want} for k in sorted(want ^ have)}
    p.client.call("update_event_configurations", eventConfigurations=changes)
    return {}


# ---------------------------------------------------------------------------------------------- audit
def _read_audit(ctx: Any) -> list[ActualResource]:
    name = singleton_name(ctx, "aws.AccountAuditConfiguration")
    if name is None:
        return []
    conf = ctx.c.call("describe_account_audit_configuration")
    sns = (conf.get("auditNotificationTargetConfigurations") or {}).get("SNS")
    state = {
        "roleArn": conf.get("roleArn"),
        "sns": {
            "targetArn": sns.get("targetArn"),
            "roleArn": sns.get("roleArn"),
            "enabled": bool(sns.get("enabled", False)),
        }
        if sns
        else None,
        "enabledChecks": sorted(
            k for k, v in (conf.get("auditCheckConfigurations") or {}).items() if (v or {}).get("enabled")
        ),
    }
    return _singleton(ctx, "aws.AccountAuditConfiguration", state, name)


def _write_audit(p: Any, c: Change) -> dict[str, Any]:
    d = c.desired
    want, have = set(d.get("enabledChecks", [])), set(c.actual.get("enabledChecks", []) or [])
    args: dict[str, Any] = {
        "roleArn": d["roleArn"],
        "auditCheckConfigurations": {k: {"enabled": k in want} for k in sorted(want | have)},
    }
    if d.get("sns"):
        args["auditNotificationTargetConfigurations"] = {"SNS": d["sns"]}
    elif c.actual.get("sns"):  # declared without a target: the existing one is turned off
        args["auditNotificationTargetConfigurations"] = {"SNS": {**c.actual["sns"], "enabled": False}}
    p.client.call("update_account_audit_configuration", **args)
    return {}


# ---------------------------------------------------------------------------------------------- scheduled audits
def _read_scheduled(ctx: Any) -> list[ActualResource]:
    try:
        rows = list(ctx.c.pages("list_scheduled_audits", "scheduledAudits"))
    except errors.Unsupported:
        ctx.p.gap("ListScheduledAudits: scheduled audits are not read")
        return []
    out = []
    for row in rows:
        name, arn = row["scheduledAuditName"], row["scheduledAuditArn"]
        try:
            a = ctx.c.call("describe_scheduled_audit", scheduledAuditName=name)
        except errors.NotFound:
            continue
        state = {
            "frequency": a.get("frequency"),
            "dayOfMonth": a.get("dayOfMonth"),
            "dayOfWeek": a.get("dayOfWeek"),
            "targetCheckNames": sorted(a.get("targetCheckNames") or []),
        }
        state = {k: v for k, v in state.items() if v is not None}
        managed = ctx.ownership("aws.ScheduledAudit", name, state, arn)
        out.append(
            ActualResource(
                ctx.p.addr("ScheduledAudit", name), "aws.ScheduledAudit", state, managed=managed, ids={"arn": arn}
            )
        )
    return out


def _schedule_args(d: dict[str, Any]) -> dict[str, Any]:
    args = {"frequency": d["frequency"], "targetCheckNames": d["targetCheckNames"]}
    for key in ("dayOfMonth", "dayOfWeek"):
        if d.get(key):
            args[key] = d[key]
    return args


def _scheduled_create(p: Any, c: Change) -> dict[str, Any]:
    p.client.call(
        "create_scheduled_audit", scheduledAuditName=c.address.name, tags=TAGS, **_schedule_args(dict(c.desired))
    )
    return {}


def _scheduled_update(p: Any, c: Change) -> dict[str, Any]:
    p.client.call("update_scheduled_audit", scheduledAuditName=c.address.name, **_schedule_args(dict(c.desired)))
    return {}


def _scheduled_delete(p: Any, c: Change) -> dict[str, Any]:
    try:
        p.client.call("delete_scheduled_audit", scheduledAuditName=c.address.name)
    except errors.NotFound:
        pass
    return {}


register(Family("aws.IndexingConfiguration", _read_indexing, {Action.UPDATE: _write_indexing}, before="aws.ThingType"))
register(Family("aws.LoggingOptions", _read_logging, {Action.UPDATE: _write_logging}, before="aws.ThingType"))
register(Family("aws.EventConfigurations", _read_events, {Action.UPDATE: _write_events}, before="aws.ThingType"))
register(Family("aws.AccountAuditConfiguration", _read_audit, {Action.UPDATE: _write_audit}, before="aws.ThingType"))
register(
    Family(
        "aws.ScheduledAudit",
        _read_scheduled,
        {Action.CREATE: _scheduled_create, Action.UPDATE: _scheduled_update, Action.DELETE: _scheduled_delete},
    )
)
