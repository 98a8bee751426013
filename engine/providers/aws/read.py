"""AWS reads: the bulk read of every kind the provider serves itself, projected to the desired shape.

Reads use list calls (things, types, groups, policies, certificates, rules) plus per-group and per-policy
enumerations for links (group membership, policy targets). Thing↔certificate links have no bulk API: they
cost one ListThingPrincipals per thing in scope (the documented floor, research/quotas.md §8.1), run
concurrently. `READERS` maps each kind to its reader; kinds of engine/providers/aws/families.py bring their own.
The scoped reads (engine/providers/aws/scoped.py) and the incremental ones (trail.py) build on this module.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from engine import errors
from engine.model import ActualResource, DesiredResource
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.planning import MANAGED_FIELD
from engine.providers.aws.references import named_roles

if TYPE_CHECKING:
    from engine.providers.aws.provider import AwsProvider

T = TypeVar("T")
READ_WORKERS = 16
# ListThings pages held ahead while the fleet loads (at its memory peak): 64 pages, 16,000 things, ~6 s at 10 TPS
# (a 100,000-device ThingSet loads in ~4.5 s)
PREFETCH_PAGES = 64
READ_ORDER = (
    "aws.ThingType",
    "aws.Policy",
    "aws.CACertificate",
    "aws.Certificate",
    "aws.ThingGroup",
    "aws.Thing",
    "aws.TopicRule",
    "aws.ProvisioningTemplate",
)


@dataclass
class ReadOptions:
    """What `fleetctl import` (engine/importer/aws.py) asks of `read` beyond a plan's needs; the defaults are
    exactly a plan's read.

    - `everything`: read every thing with its certificates, not only declared or marked ones (the other kinds
      are always listed whole); `select_thing` may reject a thing before its per-thing call, from
      {"name", "thingType", "attributes", "groups"}.
    - `kinds`: the kinds wanted (what they depend on is read too); None: those of `desired` (all when pruning).
    - `known`: the actual state of kinds an interrupted import finished: restored, not read again.
      `things_from`: (ListThings token, things read so far) to continue an interrupted page walk.
    - `on_kind(kind, resources)` after each kind read; `on_things_page(next_token, things)` after each
      ListThings page (with its things' certificate links): checkpoints and progress.
    """

    everything: bool = False
    select_thing: Callable[[Mapping[str, Any]], bool] | None = None
    kinds: frozenset[str] | None = None
    known: Mapping[str, list[ActualResource]] = field(default_factory=dict)
    things_from: tuple[str | None, list[ActualResource]] | None = None
    on_kind: Callable[[str, list[ActualResource]], None] | None = None
    on_things_page: Callable[[str | None, list[ActualResource]], None] | None = None
    page_size: int = 250
    only_things: frozenset[str] | None = None  # scoped reads (engine/providers/aws/scoped.py): these things only
    # incremental drift (engine/providers/aws/trail.py): certificate ids per thing from a snapshot, used instead of
    # ListThingPrincipals for every thing not in `links_reread` (things the snapshot does not hold are read)
    links_from: Mapping[str, tuple[str, ...]] | None = None
    links_reread: frozenset[str] = frozenset()
    # or both, once known: called before the first link is read (the events are looked up while the lists are read)
    links_pending: Callable[[], tuple[Mapping[str, tuple[str, ...]] | None, frozenset[str]]] | None = None


class ReadContext:
    """What readers share: the desired index (to name certificates), earlier kinds' results, link indexes."""

    def __init__(
        self,
        provider: AwsProvider,
        by_kind: dict[str, dict[str, DesiredResource]],
        prune: bool,
        options: ReadOptions | None = None,
    ) -> None:
        self.p = provider
        self.c = provider.client
        self.by_kind = by_kind
        self.prune = prune
        self.options = options or ReadOptions()
        self.actual: dict[str, list[ActualResource]] = {}
        self.cert_names: dict[str, str] = {
            cid: name for name, d in by_kind.get("aws.Certificate", {}).items() if (cid := d.spec.get("certificateId"))
        }
        self.ca_names: dict[str, str] = {
            cid: name
            for name, d in by_kind.get("aws.CACertificate", {}).items()
            if (cid := d.spec.get("certificateId"))
        }
        self.policy_targets: dict[str, list[str]] = {}  # target ARN → policy names
        self.group_members: dict[str, list[str]] = {}  # thing name → group names
        self.cert_ca: dict[str, str] = {}  # cert id → CA name
        self.things_pages: ReadAhead | None = None  # ListThings pages, fetched while other kinds are read
        self.cert_pages: ReadAhead | None = None  # ListCertificates pages, likewise
        self.groups_pending: Future[list[ActualResource]] | None = None  # thing groups, read while things are
        # indexes family readers (engine/providers/aws/families.py) leave for later readers: "billingGroupOf"
        # (thing name → billing group, from ListThingsInBillingGroup) is read by `thing_actual`
        self.shared: dict[str, Any] = {}

    def declared(self, kind: str, name: str) -> bool:
        return name in self.by_kind.get(kind, {})

    def cert_name(self, cert_id: str) -> str:
        return self.cert_names.get(cert_id, cert_id)

    def links_managed(self, thing: str, marked: bool) -> bool:
        """Whether a thing's certificate links are read (one ListThingPrincipals each, 10 TPS): for a declared
        thing only when its manifest manages them (a fleet whose policy sits on the thing group reads no per-thing
        link at all); for an undeclared thing when it carries the marker (a prune candidate's delete steps)."""
        desired = self.by_kind.get("aws.Thing", {}).get(thing)
        return "principals" in desired.spec if desired is not None else marked

    def marker(self, kind: str, name: str, state: dict[str, Any], marked: bool | Callable[[], bool]) -> None:
        """Report the ownership marker under MANAGED_FIELD, only where the manifest asks to adopt (so no other
        resource's state, nor its plan fingerprint, changes)."""
        desired = self.by_kind.get(kind, {}).get(name)
        if desired is not None and MANAGED_FIELD in desired.spec:
            state[MANAGED_FIELD] = MARKER_VALUE if (marked() if callable(marked) else marked) else None

    def ownership(self, kind: str, name: str, state: dict[str, Any], arn: str, *, declared: bool | None = None) -> bool:
        """Whether fleetctl manages the resource at `arn` (declared, or carrying the marker tag while pruning), with
        its marker reported in `state` (`marker`). The tag is read at most once, and only when one of them asks."""
        tagged: list[bool] = []

        def marked() -> bool:
            if not tagged:
                tagged.append(self.p.tags_managed(arn))
            return tagged[0]

        managed = (self.declared(kind, name) if declared is None else declared) or (self.prune and marked())
        self.marker(kind, name, state, marked)
        return managed


class ReadAhead:
    """Iterates a page iterator on a thread of its own, so that a quota-bound page chain (ListThings: 10 TPS, each
    page needs the previous page's token) runs while the fleet loads and other kinds are read.

    `depth` bounds the pages held ahead of the consumer while the manifests load (a 100,000-device fleet is at its
    memory peak then); `unbound()` lifts the bound once the read starts: a chain that waits for the consumer
    loses quota time it never gets back (research/quotas.md §8.1). `close()` stops it when nobody will read."""

    _END = object()

    def __init__(self, pages: Iterator[Any], depth: int = 0) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pages,), name="list-things", daemon=True)
        self._thread.start()

    def _run(self, pages: Iterator[Any]) -> None:
        try:
            for page in pages:
                if self._closed.is_set():
                    return
                self._queue.put(page)
            self._queue.put(self._END)
        except BaseException as exc:  # re-raised in the consumer
            self._queue.put(exc)

    def unbound(self) -> None:
        with self._queue.mutex:  # not 0: a `put` already waiting re-checks `qsize() >= maxsize`
            self._queue.maxsize = 1 << 40
            self._queue.not_full.notify_all()

    def close(self) -> None:
        self._closed.set()
        self.unbound()

    def __iter__(self) -> Iterator[Any]:
        self.unbound()
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def restore(ctx: ReadContext, kind: str) -> None:
    """Rebuild the link indexes a kind's reader fills, from that kind's restored resources (resumed import)."""
    for r in ctx.actual[kind]:
        if kind == "aws.Policy":
            for arn in r.ids.get("targets", []):
                ctx.policy_targets.setdefault(arn, []).append(r.address.name)
        elif kind == "aws.ThingGroup":
            ctx.p.arns["group:" + r.address.name] = r.ids["arn"]
            for thing in r.ids.get("members", []):
                ctx.group_members.setdefault(thing, []).append(r.address.name)
        elif kind == "aws.Certificate":
            ctx.p.arns[r.ids["certificateId"]] = r.ids["arn"]
        elif kind == "aws.CACertificate":
            ctx.p.arns[r.state["certificateId"]] = r.ids["arn"]


def background(fn: Callable[[], T]) -> Future[T]:
    """`fn()` on a thread of its own; the Future carries its result or exception."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # re-raised by `result()` in the reader
            future.set_exception(exc)

    threading.Thread(target=run, name="read-behind", daemon=True).start()
    return future


def parallel(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """`fn` over `items`, READ_WORKERS at a time (per-resource describe calls; family readers use it too)."""
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
        return list(pool.map(fn, items))


def _read_thing_types(ctx: ReadContext) -> list[ActualResource]:
    out = []
    for t in ctx.c.pages("list_thing_types", "thingTypes"):
        name = t["thingTypeName"]
        props = t.get("thingTypeProperties", {})
        state = {
            "description": props.get("thingTypeDescription"),
            "searchableAttributes": sorted(props.get("searchableAttributes", []) or []),
            "deprecated": bool(t.get("thingTypeMetadata", {}).get("deprecated", False)),
        }
        managed = ctx.ownership("aws.ThingType", name, state, t["thingTypeArn"])
        out.append(
            ActualResource(
                ctx.p.addr("ThingType", name), "aws.ThingType", state, managed=managed, ids={"arn": t["thingTypeArn"]}
            )
        )
    return out


def _read_policies(ctx: ReadContext) -> list[ActualResource]:
    names = [
        p["policyName"]
        for p in ctx.c.pages(
            "list_policies", "policies", page_size=250, size_arg="pageSize", token_in="marker", token_out="nextMarker"
        )
    ]

    def one(name: str) -> ActualResource | None:
        try:
            pol = ctx.c.call("get_policy", policyName=name)
            versions = ctx.c.call("list_policy_versions", policyName=name).get("policyVersions", [])
            targets = list(
                ctx.c.pages(
                    "list_targets_for_policy",
                    "targets",
                    page_size=250,
                    size_arg="pageSize",
                    token_in="marker",
                    token_out="nextMarker",
                    policyName=name,
                )
            )
        except errors.NotFound:
            return None
        version_ids = sorted((int(v["versionId"]) for v in versions), reverse=False)
        desired = ctx.by_kind.get("aws.Policy", {}).get(name)
        state = {"document": json.loads(pol["policyDocument"])}
        ids = {
            "arn": pol["policyArn"],
            "defaultVersionId": pol["defaultVersionId"],
            "versions": version_ids,
            "targets": sorted(targets),
        }
        if desired is not None:  # retention is desired state: "at most keep versions" holds or shows the count
            keep = int(desired.spec.get("keepVersions", 5))
            state["keepVersions"] = keep if len(version_ids) <= keep else len(version_ids)
        for arn in targets:
            ctx.policy_targets.setdefault(arn, []).append(name)
        managed = ctx.ownership("aws.Policy", name, state, pol["policyArn"], declared=desired is not None)
        return ActualResource(
            ctx.p.addr("Policy", name),
            "aws.Policy",
            state,
            token=f"v{pol['defaultVersionId']}",
            managed=managed,
            ids=ids,
        )

    return [r for r in parallel(one, names) if r is not None]


def _ca_state(desc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    state: dict[str, Any] = {
        "certificateId": desc["certificateId"],
        "status": desc.get("status"),
        "autoRegistration": desc.get("autoRegistrationStatus") or "DISABLE",
    }
    return state, {"arn": desc.get("certificateArn"), "certificateMode": desc.get("certificateMode")}


def _read_cas(ctx: ReadContext) -> list[ActualResource]:
    out = []
    try:
        listed = [
            c["certificateId"]
            for c in ctx.c.pages(
                "list_ca_certificates", "certificates", size_arg="pageSize", token_in="marker", token_out="nextMarker"
            )
        ]
    except errors.Unsupported:
        ctx.p._gap("ListCACertificates: only declared CA certificates are read (by id)")
        listed = list(ctx.ca_names)
    for ca_id in sorted(set(listed) | set(ctx.ca_names)):
        try:
            resp = ctx.c.call("describe_ca_certificate", certificateId=ca_id)
        except errors.NotFound:
            continue
        desc = resp["certificateDescription"]
        state, ids = _ca_state(desc)
        reg = resp.get("registrationConfig") or {}
        name = ctx.ca_names.get(ca_id, ca_id)
        desired = ctx.by_kind.get("aws.CACertificate", {}).get(name)
        if desired is not None and "registrationConfig" in desired.spec or reg:
            state["registrationConfig"] = {
                k: v
                for k, v in {
                    "templateName": reg.get("templateName"),
                    "templateBody": json.loads(reg["templateBody"]) if reg.get("templateBody") else None,
                    "roleArn": reg.get("roleArn"),
                }.items()
                if v is not None
            } or None
        managed = ctx.ownership("aws.CACertificate", name, state, desc["certificateArn"], declared=desired is not None)
        ctx.p.arns[ca_id] = desc["certificateArn"]
        out.append(
            ActualResource(
                ctx.p.addr("CACertificate", name),
                "aws.CACertificate",
                state,
                token=str(desc.get("generationId", "")),
                managed=managed,
                ids=ids,
            )
        )
    return out


def _read_certificates(ctx: ReadContext) -> list[ActualResource]:
    for ca in ctx.actual.get("aws.CACertificate", []):
        for cert in ctx.c.pages(
            "list_certificates_by_ca",
            "certificates",
            size_arg="pageSize",
            token_in="marker",
            token_out="nextMarker",
            caCertificateId=ca.state["certificateId"],
        ):
            ctx.cert_ca[cert["certificateId"]] = ca.address.name
    out = []
    progress = ctx.p.progress.task(
        f"read {ctx.p.target}", len(ctx.by_kind.get("aws.Certificate", {})) or None, unit="certificates", final=False
    )
    pages = (
        page
        for page, _ in (
            ctx.cert_pages
            if ctx.cert_pages is not None
            else ctx.c.page_iter(
                "list_certificates", "certificates", size_arg="pageSize", token_in="marker", token_out="nextMarker"
            )
        )
    )
    for cert in (c for page in pages for c in page):
        progress.advance()
        cid, arn = cert["certificateId"], cert["certificateArn"]
        ctx.p.arns[cid] = arn
        name = ctx.cert_name(cid)
        state = {
            "certificateId": cid,
            "status": cert.get("status"),
            "caCertificate": ctx.cert_ca.get(cid),
            "policies": sorted(ctx.policy_targets.get(arn, [])),
        }
        out.append(
            ActualResource(
                ctx.p.addr("Certificate", name),
                "aws.Certificate",
                state,
                managed=ctx.declared("aws.Certificate", name),
                ids={"arn": arn, "certificateId": cid},
            )
        )
    progress.close()
    return out


def group_actual(
    ctx: ReadContext, name: str, g: Mapping[str, Any], policies: Iterable[str], members: Iterable[str]
) -> ActualResource:
    """A thing group as read: DescribeThingGroup's answer `g`, with its policies and members (bulk or scoped)."""
    props = g.get("thingGroupProperties", {})
    attrs = dict((props.get("attributePayload") or {}).get("attributes") or {})
    managed = attrs.pop(MARKER_KEY, None) == MARKER_VALUE
    ctx.p.arns["group:" + name] = g["thingGroupArn"]
    state = {
        "parent": (g.get("thingGroupMetadata") or {}).get("parentGroupName"),
        "description": props.get("thingGroupDescription"),
        "attributes": attrs,
        "policies": sorted(policies),
    }
    ctx.marker("aws.ThingGroup", name, state, managed)
    return ActualResource(
        ctx.p.addr("ThingGroup", name),
        "aws.ThingGroup",
        state,
        token=str(g.get("version", "")),
        managed=managed,
        ids={"arn": g["thingGroupArn"], "version": g.get("version"), "members": sorted(members)},
    )


def thing_actual(
    ctx: ReadContext, name: str, t: Mapping[str, Any], groups: Iterable[str], principals: list[str]
) -> ActualResource:
    """A thing as read: its ListThings or DescribeThing record `t`, with its groups and certificate names."""
    attrs = dict(t.get("attributes") or {})
    managed = attrs.pop(MARKER_KEY, None) == MARKER_VALUE
    state = {
        "thingType": t.get("thingTypeName"),
        "attributes": attrs,
        "groups": sorted(groups),
        "principals": principals,
    }
    billing = (ctx.shared.get("billingGroupOf") or {}).get(name) or t.get("billingGroupName")
    if billing:  # DescribeThing names it; ListThings does not (engine/providers/aws/billing.py reads members)
        state["billingGroup"] = billing
    ctx.marker("aws.Thing", name, state, managed)
    return ActualResource(
        ctx.p.addr("Thing", name),
        "aws.Thing",
        state,
        token=f"v{t.get('version', 0)}",
        managed=managed,
        ids={"version": t.get("version"), "arn": t.get("thingArn")},
    )


def _read_groups(ctx: ReadContext) -> list[ActualResource]:
    names = [g["groupName"] for g in ctx.c.pages("list_thing_groups", "thingGroups")]

    def one(name: str) -> ActualResource | None:
        try:
            g = ctx.c.call("describe_thing_group", thingGroupName=name)
            if g.get("queryString") is not None:  # a dynamic group: aws.DynamicThingGroup (dynamic_groups.py)
                return None
            members = list(ctx.c.pages("list_things_in_thing_group", "things", thingGroupName=name))
        except errors.NotFound:
            return None
        return group_actual(ctx, name, g, ctx.policy_targets.get(g["thingGroupArn"], []), members)

    groups = [r for r in parallel(one, names) if r is not None]
    for g in groups:
        for thing in g.ids["members"]:
            ctx.group_members.setdefault(thing, []).append(g.address.name)
    return groups


def _read_things(ctx: ReadContext) -> list[ActualResource]:
    opts = ctx.options
    if opts.links_pending is not None:  # incremental drift: which links to keep, once the events are read
        links_from, links_reread = opts.links_pending()
        opts = dataclasses.replace(opts, links_from=links_from, links_reread=links_reread, links_pending=None)
    token, done = opts.things_from or (None, [])
    out = list(done)

    def principals(row: tuple[Any, ...]) -> list[str]:
        if not row[4]:
            return []  # an unmanaged, undeclared thing is only listed: its links are not fleetctl's concern
        name = row[0]
        known = opts.links_from.get(name) if opts.links_from is not None and name not in opts.links_reread else None
        if known is not None:  # incremental drift: no event touched this thing's links since the snapshot
            ids = tuple(known)
        else:
            try:
                arns = ctx.c.pages("list_thing_principals", "principals", thingName=name)
                ids = tuple(sorted(arn.rsplit("/", 1)[-1] for arn in arns if ":cert/" in arn))
            except errors.NotFound:
                ids = ()
        ctx.p.links[name] = ids
        return sorted(ctx.cert_name(i) for i in ids)

    pages = (
        iter(ctx.things_pages)
        if ctx.things_pages is not None
        else ctx.c.page_iter("list_things", "things", page_size=opts.page_size, start_token=token)
    )
    declared = len(opts.only_things) if opts.only_things is not None else len(ctx.by_kind.get("aws.Thing", {}))
    progress = ctx.p.progress.task(f"read {ctx.p.target}", declared or None, unit="things", final=False)
    progress.advance(len(done))
    for page, token in pages:
        progress.advance(len(page))
        rows = []
        for t in page:
            attrs = dict(t.get("attributes") or {})
            managed = attrs.pop(MARKER_KEY, None) == MARKER_VALUE
            name = t["thingName"]
            if opts.only_things is not None and name not in opts.only_things:
                continue
            wanted = opts.everything and (
                opts.select_thing is None
                or opts.select_thing(
                    {
                        "name": name,
                        "thingType": t.get("thingTypeName"),
                        "attributes": attrs,
                        "groups": sorted(ctx.group_members.get(name, [])),
                    }
                )
            )
            if ctx.declared("aws.Thing", name) or managed or ctx.prune or wanted:
                rows.append((name, t, attrs, managed, wanted or ctx.links_managed(name, managed)))
        linked = [row for row in rows if row[4]]  # one ListThingPrincipals each; none for the others
        links = dict(zip((row[0] for row in linked), parallel(principals, linked), strict=True))
        page_out = []
        for name, t, _, _, _ in rows:
            groups = () if ctx.groups_pending is not None else ctx.group_members.get(name, [])
            page_out.append(thing_actual(ctx, name, t, groups, links.get(name, [])))
        out.extend(page_out)
        if opts.on_things_page is not None:
            opts.on_things_page(token, page_out)
    progress.close()
    if ctx.groups_pending is not None:  # read alongside: the things' groups are filled in now
        ctx.actual["aws.ThingGroup"] = ctx.groups_pending.result()
        for r in out:
            # the dict thing_actual built (readers see a Mapping): filled in place, the page callback holds it
            r.state["groups"] = sorted(ctx.group_members.get(r.address.name, []))  # type: ignore[index]
    # a certificate held by a managed thing is managed too (certificates carry no marker of their own)
    held = {p for r in out if r.managed for p in r.state["principals"]}
    certs = ctx.actual.get("aws.Certificate", [])
    ctx.actual["aws.Certificate"] = [
        ActualResource(c.address, c.kind, c.state, c.token, c.managed or c.address.name in held, c.ids) for c in certs
    ]
    return out


def _read_rules(ctx: ReadContext) -> list[ActualResource]:
    names = [r["ruleName"] for r in ctx.c.pages("list_topic_rules", "rules", token_in="nextToken")]

    def one(name: str) -> ActualResource | None:
        try:
            resp = ctx.c.call("get_topic_rule", ruleName=name)
        except errors.NotFound:
            return None
        rule = resp["rule"]
        state = {
            k: rule.get(k)
            for k in ("sql", "description", "awsIotSqlVersion", "ruleDisabled", "actions", "errorAction")
            if rule.get(k) not in (None, "")
        }
        state.setdefault("actions", [])
        state = named_roles(state)  # a ServiceRole's ARN reads as its name, as manifests declare it
        managed = ctx.ownership("aws.TopicRule", name, state, resp["ruleArn"])
        return ActualResource(
            ctx.p.addr("TopicRule", name),
            "aws.TopicRule",
            json.loads(json.dumps(state)),
            managed=managed,
            ids={"arn": resp["ruleArn"]},
        )

    return [r for r in parallel(one, names) if r is not None]


def _read_templates(ctx: ReadContext) -> list[ActualResource]:
    try:
        names = [t["templateName"] for t in ctx.c.pages("list_provisioning_templates", "templates")]
    except errors.Unsupported:
        if ctx.by_kind.get("aws.ProvisioningTemplate"):
            raise
        if ctx.options.everything:
            ctx.p._gap("ListProvisioningTemplates: provisioning templates are not read")
        return []
    out = []
    for name in names:
        t = ctx.c.call("describe_provisioning_template", templateName=name)
        state = {
            "templateBody": json.loads(t["templateBody"]),
            "provisioningRoleArn": t.get("provisioningRoleArn"),
            "description": t.get("description"),
            "enabled": t.get("enabled"),
            "type": t.get("type"),
            "preProvisioningHook": t.get("preProvisioningHook"),
        }
        managed = ctx.ownership("aws.ProvisioningTemplate", name, state, t["templateArn"])
        out.append(
            ActualResource(
                ctx.p.addr("ProvisioningTemplate", name),
                "aws.ProvisioningTemplate",
                state,
                token=str(t.get("defaultVersionId", "")),
                managed=managed,
                ids={"arn": t["templateArn"], "defaultVersionId": t.get("defaultVersionId")},
            )
        )
    return out


READERS: dict[str, Callable[[ReadContext], list[ActualResource]]] = {
    "aws.ThingType": _read_thing_types,
    "aws.Policy": _read_policies,
    "aws.CACertificate": _read_cas,
    "aws.Certificate": _read_certificates,
    "aws.ThingGroup": _read_groups,
    "aws.Thing": _read_things,
    "aws.TopicRule": _read_rules,
    "aws.ProvisioningTemplate": _read_templates,
}
