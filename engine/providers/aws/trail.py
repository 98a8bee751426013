"""Incremental drift reads on AWS: from a snapshot, the IoT events CloudTrail recorded since, and only the
certificate links they touch re-read.

Why: at full fidelity a drift read costs one ListThingPrincipals per linked thing at 10 TPS (research/quotas.md
§1.1): 10,000 s for 100,000 things, however good the engine. Almost nothing changes between two hourly runs, and
the account records every change itself: CloudTrail's event history holds 90 days of management events, free,
with no trail to set up.

How a read goes (`read_since`):
1. The snapshot's part for this Target (engine/snapshot.py) must be for this account (STS) and region, its last
   full read no older than `max_age` (default 7 days: a full read runs periodically whatever the events say), and
   its window inside CloudTrail's 90-day retention. Otherwise: a full read, and the report says why.
2. `LookupEvents` from the snapshot's read start minus `overlap` to this read's start, 50 events per page, paced
   at 2 TPS by engine/ratelimit.py. The overlap covers CloudTrail's delivery delay: "CloudTrail typically
   delivers logs within an average of about 5 minutes of an API call. This time is not guaranteed" (AWS CloudTrail
   User Guide, get-and-view-cloudtrail-log-files.html; the guide said 15 minutes before March 2023). An average is
   not a bound, so the default overlap is 15 minutes: an event delivered late is still inside the next window,
   and an event seen twice only re-reads one thing twice. AccessDenied, throttling beyond the retries, or an
   unreadable page: a full read, and the report says why.
3. Each event is mapped to the resources it touches with EVENTS (one row per mutating IoT API fleetctl manages;
   tests/aws/test_trail.py fails when the provider makes a mutating call the table does not map). An event
   whose resources cannot be named (an API missing from the table whose request names a thing or a principal,
   or a row whose parameters are missing) forces every thing's links to be re-read, and says so. Events of APIs
   whose requests name nothing fleetctl reads (CreateJob, ...) are counted and ignored. Failed calls (errorCode)
   changed nothing and are skipped.
4. `AwsProvider.read` runs as always — every list read (ListThings, ListCertificates, policies, groups, ...) in
   full, so creations, deletions, status and policy changes are never missed — except that the links of a thing
   the snapshot holds and no event touched are taken from the snapshot (ReadOptions.links_from).

Which filter: `LookupAttributes` takes one attribute. EventSource=iot.amazonaws.com returns IoT's read-only
events too, and a drift read makes one ListThingPrincipals per thing: a full read of 100,000 things leaves
100,000 read events in the next window (2,000 pages at 2 TPS: 1,000 s). ReadOnly=false returns only write
events, of every service, filtered here to iot.amazonaws.com. FLEETCTL_TRAIL_LOOKUP picks: `write-only` (the
default) or `event-source`; both skip read-only events.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine import errors
from engine.clock import iso
from engine.model import DesiredResource
from engine.providers.aws.read import ReadOptions, background
from engine.providers.base import ReadResult
from engine.snapshot import TargetSnapshot, actual_json

if TYPE_CHECKING:
    from engine.providers.aws.provider import AwsProvider

EVENT_SOURCE = "iot.amazonaws.com"
PAGE = 50  # LookupEvents MaxResults: at most 50
OVERLAP = timedelta(minutes=15)
RETENTION = timedelta(days=90)  # CloudTrail event history
MAX_AGE = timedelta(days=7)
LOOKUPS = {
    "write-only": {"AttributeKey": "ReadOnly", "AttributeValue": "false"},
    "event-source": {"AttributeKey": "EventSource", "AttributeValue": EVENT_SOURCE},
}
# request members that name a thing or its links: an unmapped event carrying one forces every link to be re-read
THING_MEMBERS = frozenset({"thingName", "thingArn", "principal", "thingNames"})
# ARN resource types (arn:aws:iot:REGION:ACCOUNT:TYPE/NAME) → kind
ARN_KINDS = {
    "thing": "aws.Thing",
    "thinggroup": "aws.ThingGroup",
    "thingtype": "aws.ThingType",
    "policy": "aws.Policy",
    "cert": "aws.Certificate",
    "cacert": "aws.CACertificate",
    "rule": "aws.TopicRule",
    "provisioningtemplate": "aws.ProvisioningTemplate",
    "billinggroup": "aws.BillingGroup",
    "rolealias": "aws.RoleAlias",
    "authorizer": "aws.Authorizer",
    "domainconfiguration": "aws.DomainConfiguration",
    "scheduledaudit": "aws.ScheduledAudit",
    "ruledestination": "aws.TopicRuleDestination",
}


@dataclass(frozen=True)
class Req:
    """The resource named by request parameter `member` (a list of names when the parameter is a list)."""

    kind: str
    member: str


@dataclass(frozen=True)
class Arn:
    """The resource an ARN in request parameter `member` names (kind from the ARN's resource type); `kind` limits
    it (a principal that is not a certificate, e.g. a Cognito identity, names nothing fleetctl reads)."""

    member: str
    kind: str | None = None


@dataclass(frozen=True)
class Resp:
    """The resource named by response element `member` (an id AWS chose: RegisterCertificate's certificateId)."""

    kind: str
    member: str


@dataclass(frozen=True)
class AnyOf:
    """The first of several ways a request can name the same resource (thingGroupName or thingGroupArn)."""

    rules: tuple[Any, ...]


@dataclass(frozen=True)
class Whole:
    """An account singleton (IndexingConfiguration, LoggingOptions, ...): the event changes the one resource."""

    kind: str
    name: str = "account"


Rule = Req | Arn | Resp | AnyOf | Whole
T, G = Req("aws.Thing", "thingName"), AnyOf((Req("aws.ThingGroup", "thingGroupName"), Arn("thingGroupArn")))
THING = AnyOf((T, Arn("thingArn")))
POLICY, CERT = Req("aws.Policy", "policyName"), Req("aws.Certificate", "certificateId")
TEMPLATE, RULE = Req("aws.ProvisioningTemplate", "templateName"), Req("aws.TopicRule", "ruleName")
BILLING, ALIAS = Req("aws.BillingGroup", "billingGroupName"), Req("aws.RoleAlias", "roleAlias")
DYNAMIC = Req("aws.DynamicThingGroup", "thingGroupName")
AUDIT, AUTHORIZER = Req("aws.ScheduledAudit", "scheduledAuditName"), Req("aws.Authorizer", "authorizerName")
DOMAIN = Req("aws.DomainConfiguration", "domainConfigurationName")

# Every mutating IoT API fleetctl calls (engine/providers/aws/*.py), and the ones that change what it reads when
# someone else calls them, → the resources an event of it touches. One row per API: a new kind adds its rows here.
EVENTS: dict[str, tuple[Rule, ...]] = {
    "CreateThing": (T,),
    "UpdateThing": (T,),
    "DeleteThing": (T,),
    "AttachThingPrincipal": (T, Arn("principal", "aws.Certificate")),
    "DetachThingPrincipal": (T, Arn("principal", "aws.Certificate")),
    "AddThingToThingGroup": (THING, G),
    "RemoveThingFromThingGroup": (THING, G),
    "UpdateThingGroupsForThing": (
        T,
        Req("aws.ThingGroup", "thingGroupsToAdd"),
        Req("aws.ThingGroup", "thingGroupsToRemove"),
    ),
    "CreateThingType": (Req("aws.ThingType", "thingTypeName"),),
    "DeprecateThingType": (Req("aws.ThingType", "thingTypeName"),),
    "DeleteThingType": (Req("aws.ThingType", "thingTypeName"),),
    "CreateThingGroup": (Req("aws.ThingGroup", "thingGroupName"),),
    "UpdateThingGroup": (Req("aws.ThingGroup", "thingGroupName"),),
    "DeleteThingGroup": (Req("aws.ThingGroup", "thingGroupName"),),
    "CreatePolicy": (POLICY,),
    "CreatePolicyVersion": (POLICY,),
    "SetDefaultPolicyVersion": (POLICY,),
    "DeletePolicyVersion": (POLICY,),
    "DeletePolicy": (POLICY,),
    "AttachPolicy": (POLICY, Arn("target")),
    "DetachPolicy": (POLICY, Arn("target")),
    "AttachPrincipalPolicy": (POLICY, Arn("principal")),
    "DetachPrincipalPolicy": (POLICY, Arn("principal")),
    "RegisterCertificate": (Resp("aws.Certificate", "certificateId"),),
    "RegisterCertificateWithoutCA": (Resp("aws.Certificate", "certificateId"),),
    "CreateKeysAndCertificate": (Resp("aws.Certificate", "certificateId"),),
    "CreateCertificateFromCsr": (Resp("aws.Certificate", "certificateId"),),
    "UpdateCertificate": (CERT,),
    "DeleteCertificate": (CERT,),
    "TransferCertificate": (CERT,),
    "AcceptCertificateTransfer": (CERT,),
    "RejectCertificateTransfer": (CERT,),
    "CancelCertificateTransfer": (CERT,),
    "RegisterCACertificate": (Resp("aws.CACertificate", "certificateId"),),
    "UpdateCACertificate": (Req("aws.CACertificate", "certificateId"),),
    "DeleteCACertificate": (Req("aws.CACertificate", "certificateId"),),
    "CreateTopicRule": (RULE,),
    "ReplaceTopicRule": (RULE,),
    "EnableTopicRule": (RULE,),
    "DisableTopicRule": (RULE,),
    "DeleteTopicRule": (RULE,),
    "CreateProvisioningTemplate": (TEMPLATE,),
    "UpdateProvisioningTemplate": (TEMPLATE,),
    "DeleteProvisioningTemplate": (TEMPLATE,),
    "CreateProvisioningTemplateVersion": (TEMPLATE,),
    "DeleteProvisioningTemplateVersion": (TEMPLATE,),
    "TagResource": (Arn("resourceArn"),),
    "UntagResource": (Arn("resourceArn"),),
    "CreateBillingGroup": (BILLING,),
    "UpdateBillingGroup": (BILLING,),
    "DeleteBillingGroup": (BILLING,),
    "AddThingToBillingGroup": (THING, AnyOf((BILLING, Arn("billingGroupArn")))),
    "RemoveThingFromBillingGroup": (THING, AnyOf((BILLING, Arn("billingGroupArn")))),
    "CreateDynamicThingGroup": (DYNAMIC,),
    "UpdateDynamicThingGroup": (DYNAMIC,),
    "DeleteDynamicThingGroup": (DYNAMIC,),
    "CreateRoleAlias": (ALIAS,),
    "UpdateRoleAlias": (ALIAS,),
    "DeleteRoleAlias": (ALIAS,),
    "SetV2LoggingOptions": (Whole("aws.LoggingOptions"),),
    "SetV2LoggingLevel": (Whole("aws.LoggingOptions"),),
    "DeleteV2LoggingLevel": (Whole("aws.LoggingOptions"),),
    "UpdateIndexingConfiguration": (Whole("aws.IndexingConfiguration"),),
    "UpdateEventConfigurations": (Whole("aws.EventConfigurations"),),
    "UpdateAccountAuditConfiguration": (Whole("aws.AccountAuditConfiguration"),),
    "CreateScheduledAudit": (AUDIT,),
    "UpdateScheduledAudit": (AUDIT,),
    "DeleteScheduledAudit": (AUDIT,),
    "CreateAuthorizer": (AUTHORIZER,),
    "UpdateAuthorizer": (AUTHORIZER,),
    "DeleteAuthorizer": (AUTHORIZER,),
    "CreateDomainConfiguration": (DOMAIN,),
    "UpdateDomainConfiguration": (DOMAIN,),
    "DeleteDomainConfiguration": (DOMAIN,),
    # destinations are named by the ARN AWS gives them (arn:...:ruledestination/<kind>/<uuid>)
    "CreateTopicRuleDestination": (Resp("aws.TopicRuleDestination", "topicRuleDestination"),),
    "UpdateTopicRuleDestination": (Arn("arn", "aws.TopicRuleDestination"),),
    "DeleteTopicRuleDestination": (Arn("arn", "aws.TopicRuleDestination"),),
    # bulk registration creates things and links in AWS's own calls: the task names none of them
    "StartThingRegistrationTask": (Req("aws.Thing", "*every*"),),
}


@dataclass(frozen=True)
class Touch:
    kind: str
    key: str  # thing / group / policy / rule / template name, certificate id


@dataclass
class Mapped:
    """What a window of events touches."""

    touches: set[Touch] = field(default_factory=set)
    every_link: list[str] = field(default_factory=list)  # why every thing's links must be re-read
    ignored: int = 0  # events naming nothing fleetctl reads
    failed: int = 0  # calls that failed (errorCode): changed nothing

    @property
    def things(self) -> frozenset[str]:
        return frozenset(t.key for t in self.touches if t.kind == "aws.Thing")


def _arn_touch(arn: Any) -> Touch | None:
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        return None
    resource = arn.split(":", 5)[-1]
    rtype, _, name = resource.partition("/")
    kind = ARN_KINDS.get(rtype)
    return Touch(kind, name) if kind and name else None


def _apply(rule: Rule, request: Mapping[str, Any], response: Mapping[str, Any]) -> list[Touch] | None:
    """The touches of one rule; None when the event does not carry what the rule needs."""
    if isinstance(rule, AnyOf):
        for r in rule.rules:
            found = _apply(r, request, response)
            if found is not None:
                return found
        return None
    if isinstance(rule, Whole):
        return [Touch(rule.kind, rule.name)]
    if isinstance(rule, Arn):
        value = request.get(rule.member)
        if value is None:
            return None
        touch = _arn_touch(value)
        if touch is None:  # not an IoT ARN (a Cognito identity): it names nothing fleetctl reads
            return [] if isinstance(value, str) else None
        return [touch] if rule.kind in (None, touch.kind) else []
    source = request if isinstance(rule, Req) else response
    if rule.member == "*every*":
        return None
    value = source.get(rule.member)
    if value is None or value == "":
        return None
    if isinstance(value, dict):  # a response element holding the resource (CreateTopicRuleDestination): its ARN
        touch = _arn_touch(value.get("arn"))
        return [touch] if touch is not None and touch.kind == rule.kind else None
    values = value if isinstance(value, list) else [value]
    return [Touch(rule.kind, str(v)) for v in values]


def _names_thing(rule: Rule) -> bool:
    if isinstance(rule, AnyOf):
        return any(_names_thing(r) for r in rule.rules)
    if isinstance(rule, Arn):
        return rule.member in THING_MEMBERS or rule.kind == "aws.Thing"
    return rule.kind == "aws.Thing"


def map_events(events: Iterable[Mapping[str, Any]], members_of: Any = None) -> Mapped:
    """The resources `events` (CloudTrail records: eventName, requestParameters, responseElements, errorCode)
    touch. `members_of(api)`: the request members of an API not in EVENTS (AwsClient.operation_members)."""
    out = Mapped()
    for e in events:
        name = str(e.get("eventName") or "")
        if e.get("errorCode"):
            out.failed += 1
            continue
        request = e.get("requestParameters") or {}
        response = e.get("responseElements") or {}
        when = e.get("eventTime", "")
        rules = EVENTS.get(name)
        if rules is None:
            members = members_of(name) if members_of is not None else None
            if members is None or members & THING_MEMBERS:
                out.every_link.append(
                    f"{name} at {when}: an API fleetctl has no mapping for"
                    + (" (unknown to the AWS model)" if members is None else " names a thing or a principal")
                )
            else:
                out.ignored += 1
            continue
        unnamed = None
        for rule in rules:
            touches = _apply(rule, request, response)
            if touches is None:
                if _names_thing(rule) and unnamed is None:
                    unnamed = (
                        "it creates things and links without naming them"
                        if getattr(rule, "member", "") == "*every*"
                        else "its event does not name the thing it changed"
                    )
                # any other kind is listed in full on every read: nothing more to re-read
                continue
            out.touches.update(touches)
        if unnamed:
            out.every_link.append(f"{name} at {when}: {unnamed}")
    return out


# ---------------------------------------------------------------------------------------------- reading events
class TrailUnavailable(Exception):
    """The events of the window cannot be read in full; the message says why (the read falls back to full)."""


def _record(event: Mapping[str, Any]) -> dict[str, Any]:
    try:
        doc = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        doc = {}
    when = event.get("EventTime")
    return {
        "eventName": event.get("EventName") or doc.get("eventName"),
        "eventTime": when.isoformat() if isinstance(when, datetime) else str(when or doc.get("eventTime", "")),
        "eventSource": event.get("EventSource") or doc.get("eventSource"),
        "readOnly": str(event.get("ReadOnly", doc.get("readOnly", ""))).lower() == "true",
        "requestParameters": doc.get("requestParameters") or {},
        "responseElements": doc.get("responseElements") or {},
        "errorCode": doc.get("errorCode"),
    }


@dataclass(frozen=True)
class Window:
    events: tuple[dict[str, Any], ...]
    pages: int
    seen: int  # events returned, before the IoT / write filter


def lookup(provider: AwsProvider, start: datetime, end: datetime, mode: str = "write-only") -> Window:
    """The IoT write events of [start, end], every page (50 each, paced at 2 TPS)."""
    if mode not in LOOKUPS:
        raise ValueError(f"FLEETCTL_TRAIL_LOOKUP must be one of {', '.join(LOOKUPS)}, not {mode!r}")
    token: str | None = None
    events, pages, seen = [], 0, 0
    while True:
        args: dict[str, Any] = {
            "LookupAttributes": [LOOKUPS[mode]],
            "StartTime": start,
            "EndTime": end,
            "MaxResults": PAGE,
        }
        if token:
            args["NextToken"] = token
        try:
            response = provider.client.trail_call("lookup_events", **args)
        except errors.Forbidden as exc:
            raise TrailUnavailable(
                f"CloudTrail LookupEvents is not allowed ({exc.code or 'AccessDenied'}): grant "
                "cloudtrail:LookupEvents to the drift role"
            ) from None
        except errors.Throttled:
            raise TrailUnavailable("CloudTrail LookupEvents stayed throttled after every retry") from None
        except errors.Unsupported:
            raise TrailUnavailable(
                "the endpoint does not implement CloudTrail LookupEvents (moto alone does not: "
                "the quota-faithful sandbox does)"
            ) from None
        except errors.ProviderError as exc:
            raise TrailUnavailable(f"CloudTrail LookupEvents failed on page {pages + 1} ({exc})") from None
        pages += 1
        for raw in response.get("Events", []):
            seen += 1
            record = _record(raw)
            if record["eventSource"] == EVENT_SOURCE and not record["readOnly"]:
                events.append(record)
        token = response.get("NextToken")
        if not token:
            return Window(tuple(events), pages, seen)


# ---------------------------------------------------------------------------------------------- the read
@dataclass(frozen=True)
class Settings:
    """How drift uses snapshots: `full` forces a full read; the others as in the module docstring."""

    full: bool = False
    max_age: timedelta = MAX_AGE
    overlap: timedelta = OVERLAP
    lookup: str = "write-only"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _ago(delta: timedelta) -> str:
    from engine.humanize import duration

    seconds = max(delta.total_seconds(), 0)
    return f"{seconds / 86400:.1f} days".replace(".0 days", " days") if seconds >= 86400 else duration(seconds)


def _full_reason(
    provider: AwsProvider, entry: TargetSnapshot | None, now: datetime, settings: Settings, region: str
) -> tuple[str | None, datetime | None]:
    """Why this read must be full (None: it can be incremental), and the window start."""
    if settings.full:
        return "--full was given", None
    if entry is None:
        return "the snapshot holds no read of this Target", None
    if entry.provider != "aws":
        return f"the snapshot's part for this Target is a {entry.provider} read", None
    if entry.region != region:
        return f"the snapshot was made in region {entry.region}, this Target is in {region}", None
    account = provider.client.account_id()
    if entry.account != account:
        return f"the snapshot was made for account {entry.account}, the credentials are for account {account}", None
    read_at, last_full = _parse(entry.read_at), _parse(entry.last_full_read)
    if read_at > now:
        return f"the snapshot's read ({entry.read_at}) is later than now ({iso(now)}): the clocks disagree", None
    if now - last_full > settings.max_age:
        return (
            f"the last full read ({entry.last_full_read}) is {_ago(now - last_full)} old, more than the "
            f"maximum snapshot age of {_ago(settings.max_age)}"
        ), None
    start = read_at - settings.overlap
    if now - start > RETENTION:
        return (f"the window since {iso(start)} is longer than CloudTrail's 90-day event history"), None
    return None, start


def read_since(
    provider: AwsProvider,
    desired: list[DesiredResource],
    entry: TargetSnapshot | None,
    now: datetime,
    settings: Settings,
    *,
    region: str,
    refused: str | None = None,
) -> tuple[ReadResult, dict[str, Any], TargetSnapshot]:
    """The actual state of this Target, incrementally from `entry` where it can be trusted (else in full), the
    trust facts the drift report states, and the snapshot part for the next run. `refused`: why the snapshot
    file as a whole was refused (engine/snapshot.py), which makes the read full."""
    now = now.astimezone(UTC)
    reason, start = (refused, None) if refused else _full_reason(provider, entry, now, settings, region)
    trust: dict[str, Any] = {"target": provider.target, "readAt": iso(now)}
    options: ReadOptions | None = None
    decided: list[tuple[Mapping[str, tuple[str, ...]] | None, frozenset[str]]] = []
    lock = threading.Lock()
    if reason is None and entry is not None and start is not None:
        # the events are looked up while the provider's list reads run; the link reads wait for them
        future = background(lambda: lookup(provider, start, now, settings.lookup))

        def pending() -> tuple[Mapping[str, tuple[str, ...]] | None, frozenset[str]]:
            with lock:
                if decided:
                    return decided[0]
                try:
                    window = future.result()
                except TrailUnavailable as exc:
                    trust["fullBecause"] = str(exc)
                    decided.append((None, frozenset()))
                    return decided[0]
                mapped = map_events(window.events, provider.client.operation_members)
                trust.update(
                    {
                        "windowStart": iso(start),
                        "windowEnd": iso(now),
                        "overlapSeconds": int(settings.overlap.total_seconds()),
                        "events": len(window.events),
                        "eventsSeen": window.seen,
                        "pages": window.pages,
                        "ignoredEvents": mapped.ignored,
                        "failedEvents": mapped.failed,
                        "lookup": settings.lookup,
                        "thingsTouched": len(mapped.things),
                    }
                )
                if mapped.every_link:
                    trust["everyLinkBecause"] = mapped.every_link
                    decided.append((None, frozenset()))
                else:
                    decided.append((entry.links, mapped.things))
                return decided[0]

        options = ReadOptions(links_pending=pending)
    account = provider.client.account_id()
    result = provider.read(desired, prune=True, options=options)
    links_from, reread = (
        options.links_pending() if options is not None and options.links_pending else (None, frozenset())
    )
    # an unreadable window makes the read full; every link re-read because of an unmapped event is still incremental
    # as to the window (the report says why every link was read)
    incremental = options is not None and "fullBecause" not in trust
    kept = sum(1 for n in provider.links if links_from is not None and n in links_from and n not in reread)
    trust.update(
        {
            "mode": "incremental" if incremental else "full",
            "linksRead": len(provider.links) - kept,
            "linksKept": kept,
            "lastFullRead": entry.last_full_read if incremental and entry is not None else iso(now),
        }
    )
    if entry is not None:
        trust["snapshotReadAt"] = entry.read_at
    if reason:
        trust["fullBecause"] = reason
    if "fullBecause" in trust:
        trust["mode"] = "full"
    new = TargetSnapshot(
        provider.target,
        "aws",
        iso(now),
        trust["lastFullRead"],
        account,
        region,
        dict(provider.links),
        tuple(actual_json(a) for a in result.actual),
    )
    return result, trust, new
