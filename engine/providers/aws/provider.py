"""AWS IoT Core provider: bulk reads projected to the desired shape, and one handler per (kind, action).

Reads use list calls (things, types, groups, policies, certificates, rules) plus per-group and per-policy
enumerations for links (group membership, policy targets). Thing↔certificate links have no bulk API: they
cost one ListThingPrincipals per thing in scope (the documented floor, research/quotas.md §8.1), run
concurrently.

Ownership marker: things and thing groups carry the attribute `managed-by=fleetctl`; types, policies, CAs,
rules and templates carry the tag `managed-by=fleetctl` (read only for undeclared resources, the prune
candidates); a certificate is managed when a managed thing holds it.
"""
from __future__ import annotations

import dataclasses
import json
import queue
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

from engine import errors
from engine.diagnostics import Diagnostic, warning
from engine.model import Action, ActualResource, Address, Change, DesiredResource
from engine.providers.aws import bulkreg, families
from engine.providers.aws.client import AssumeRole, AwsClient
from engine.providers.aws.kinds import MANAGED_FIELD, MARKER_KEY, MARKER_VALUE
from engine.providers.aws.kinds_access import named_roles
from engine.providers.aws.planning import policy_version_steps
from engine.providers.base import ApplyResult, ReadResult
from engine.progress import SILENT, ProgressSink
from engine.ratelimit import aws_limiter

T = TypeVar("T")
TAGS = [{"Key": MARKER_KEY, "Value": MARKER_VALUE}]
MAX_TEMPLATE_VERSIONS = 5
READ_WORKERS = 16
# ListThings pages held ahead while the fleet loads (at its memory peak): 64 pages, 16,000 things, ~6 s at 10 TPS
# (a 100,000-device ThingSet loads in ~4.5 s)
PREFETCH_PAGES = 64
READ_ORDER = ("aws.ThingType", "aws.Policy", "aws.CACertificate", "aws.Certificate", "aws.ThingGroup", "aws.Thing",
              "aws.TopicRule", "aws.ProvisioningTemplate")


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
    only_things: frozenset[str] | None = None    # scoped reads (engine/providers/aws/scoped.py): these things only
    # incremental drift (engine/providers/aws/trail.py): certificate ids per thing from a snapshot, used instead of
    # ListThingPrincipals for every thing not in `links_reread` (things the snapshot does not hold are read)
    links_from: Mapping[str, tuple[str, ...]] | None = None
    links_reread: frozenset[str] = frozenset()
    # or both, once known: called before the first link is read (the events are looked up while the lists are read)
    links_pending: Callable[[], tuple[Mapping[str, tuple[str, ...]] | None, frozenset[str]]] | None = None


def make_provider(target: str, spec: Any, env: Mapping[str, str], **options: Any) -> "AwsProvider":
    aws = spec.aws
    endpoint = aws.endpointUrl or env.get("AWS_ENDPOINT_URL_IOT") or env.get("AWS_ENDPOINT_URL") or None
    s3_endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None   # bulk registration files
    sts_endpoint = env.get("AWS_ENDPOINT_URL_STS") or env.get("AWS_ENDPOINT_URL") or None
    trail_endpoint = env.get("AWS_ENDPOINT_URL_CLOUDTRAIL") or env.get("AWS_ENDPOINT_URL") or endpoint  # drift events
    role = getattr(aws, "assumeRole", None)
    assume = AssumeRole(role.roleArn, role.externalId, role.sessionName, role.durationSeconds) if role else None
    client = options.get("client") or AwsClient(aws.region, profile=aws.profile, endpoint_url=endpoint,
                                                limiter=aws_limiter(env, endpoint), s3_endpoint_url=s3_endpoint,
                                                assume_role=assume, sts_endpoint_url=sts_endpoint, target=target,
                                                cloudtrail_endpoint_url=trail_endpoint)
    return AwsProvider(target, client, bulk=bulkreg.BulkConfig.from_spec(getattr(aws, "bulkRegistration", None)))


class AwsProvider:
    def __init__(self, target: str, client: AwsClient, bulk: bulkreg.BulkConfig | None = None) -> None:
        self.target = target
        self.client = client
        self.arns: dict[str, str] = {}            # certificate id / group name → ARN, filled by read and create
        self.diagnostics: list[Diagnostic] = []
        self._prefetched: _ReadAhead | None = None   # ListThings pages started by `prefetch`, taken by `read`
        self.bulk = bulk                          # aws.bulkRegistration: registration tasks for large batches
        self.cert_status: dict[str, str] = {}     # certificate id → status, of certificates this apply wrote
        self.bulk_stats: Counter[str] = Counter()
        self._task_lock = threading.Lock()
        self.progress: ProgressSink = SILENT      # long reads report here (engine/run.py sets the command's sink)
        # thing → certificate ids of its links, as the last `read` knew them (read, or kept from a snapshot): what a
        # snapshot saves (engine/snapshot.py)
        self.links: dict[str, tuple[str, ...]] = {}

    # ------------------------------------------------------------------ plumbing
    def addr(self, kind: str, name: str) -> Address:
        return Address.of("aws", self.target, kind, name)

    def set_hook(self, hook) -> None:
        self.client.hook = hook

    def identity(self) -> dict[str, str]:
        """The account (and assumed role) this Target acts in: engine/run.py records and checks it."""
        return self.client.identity()

    def stats(self) -> dict[str, Any]:
        return {"calls": dict(self.client.calls), "total": self.client.total_calls(),
                "mutating": self.client.mutating_calls(), "throttles": self.client.throttles,
                **({"rateLimiter": self.client.limiter.stats()} if self.client.limiter else {}),
                **({"bulkRegistration": dict(self.bulk_stats)} if self.bulk_stats else {})}

    def _gap(self, what: str) -> None:
        self.diagnostics.append(warning(f"the AWS endpoint does not implement {what}", address=f"aws/{self.target}"))

    def gap(self, what: str) -> None:
        """A warning that the endpoint lacks an API (for readers in other modules)."""
        self._gap(what)

    def tags_managed(self, arn: str) -> bool:
        """Whether the IoT resource at `arn` carries the ownership marker tag (for readers in other modules)."""
        return self._tags_managed(arn)

    def _tags_managed(self, arn: str) -> bool:
        try:
            tags = self.client.call("list_tags_for_resource", resourceArn=arn).get("tags", [])
        except errors.Unsupported:
            self._gap("ListTagsForResource: ownership of undeclared resources is unknown, so they are never pruned")
            return False
        except errors.NotFound:
            return False
        return any(t.get("Key") == MARKER_KEY and t.get("Value") == MARKER_VALUE for t in tags)

    def endpoint(self) -> str:
        return self.client.call("describe_endpoint", endpointType="iot:Data-ATS")["endpointAddress"]

    # ------------------------------------------------------------------ read
    def prefetch(self, depth: int = PREFETCH_PAGES) -> None:
        """Start the ListThings page chain now, before `read` is called: `plan` calls this as soon as it knows the
        Targets, so the chain that bounds a whole-fleet read runs while the manifests load (engine/run.py)."""
        if self._prefetched is None:
            self._prefetched = _ReadAhead(self.client.page_iter("list_things", "things",
                                                                page_size=ReadOptions.page_size), depth)

    def cancel_prefetch(self) -> None:
        if self._prefetched is not None:
            self._prefetched.close()
            self._prefetched = None

    def read(self, desired: list[DesiredResource], *, prune: bool = False,
             options: ReadOptions | None = None) -> ReadResult:
        """Actual state for the kinds declared in this target (plus everything managed when pruning)."""
        self.diagnostics = []
        opts = options or ReadOptions()
        self.links = {}
        prefetched, self._prefetched = self._prefetched, None
        by_kind: dict[str, dict[str, DesiredResource]] = {}
        for d in desired:
            by_kind.setdefault(d.kind, {})[d.address.name] = d
        ctx = _ReadContext(self, by_kind, prune, opts)
        out: list[ActualResource] = []
        readers: dict[str, Callable[[_ReadContext], list[ActualResource]]] = {
            "aws.ThingType": _read_thing_types, "aws.Policy": _read_policies, "aws.CACertificate": _read_cas,
            "aws.Certificate": _read_certificates, "aws.ThingGroup": _read_groups, "aws.Thing": _read_things,
            "aws.TopicRule": _read_rules, "aws.ProvisioningTemplate": _read_templates}
        extra = families.families()             # kinds served by their own modules (engine/providers/aws/families.py)
        readers.update({kind: fam.read for kind, fam in extra.items()})
        order = families.read_order(READ_ORDER)
        kinds = set(opts.kinds) if opts.kinds is not None else set(order) if prune else {d.kind for d in desired}
        needed = set(kinds)
        for kind, fam in extra.items():
            if kind in needed or families.fed(fam, needed, by_kind, opts.everything):
                needed |= {kind, *fam.needs}
        if "aws.Thing" in needed or (prune and opts.kinds is None):
            needed |= {"aws.Certificate", "aws.ThingGroup"}
        if "aws.Certificate" in needed:
            needed |= {"aws.Policy", "aws.CACertificate"}
        if "aws.ThingGroup" in needed:
            needed.add("aws.Policy")
        if "aws.Thing" in needed and "aws.Thing" not in opts.known and opts.things_from is None \
                and opts.on_things_page is None:
            # ListThings (10 TPS, one page after the other) is the binding read: its pages are fetched while the
            # other kinds are read, not after them (research/quotas.md §8.1: the floor is ListThings alone)
            ctx.things_pages = prefetched if prefetched is not None and opts.page_size == ReadOptions.page_size \
                and opts.only_things is None else _ReadAhead(self.client.page_iter("list_things", "things",
                                                                                   page_size=opts.page_size))
        if "aws.Certificate" in needed and "aws.Certificate" not in opts.known and opts.on_kind is None:
            # ListCertificates is a page chain of its own (10 TPS): fetched while policies and CAs are read
            ctx.cert_pages = _ReadAhead(self.client.page_iter("list_certificates", "certificates", size_arg="pageSize",
                                                              token_in="marker", token_out="nextMarker"))
        if prefetched is not None and ctx.things_pages is not prefetched:
            prefetched.close()
        elif prefetched is not None:
            prefetched.unbound()      # the fleet is loaded: let the chain run ahead of the other kinds' reads
        for kind in order:
            if kind not in needed:
                continue
            if kind in opts.known:
                ctx.actual[kind] = list(opts.known[kind])
                _restore(ctx, kind)
                continue
            if kind == "aws.ThingGroup" and ctx.things_pages is not None and "aws.Thing" in needed \
                    and opts.on_kind is None and opts.select_thing is None:
                # group members (ListThingsInThingGroup, a page chain of its own) are read while the things are:
                # things get their groups when both are done (`_read_things`), so neither chain waits for the other
                ctx.actual[kind] = []
                ctx.groups_pending = background(lambda: _read_groups(ctx))
                continue
            ctx.actual[kind] = readers[kind](ctx)
            if opts.on_kind is not None:
                opts.on_kind(kind, ctx.actual[kind])
        for kind, resources in ctx.actual.items():   # collected last: readers may refine earlier kinds
            if kind in kinds:
                out.extend(resources)
        return ReadResult(out, list(self.diagnostics))

    def read_scoped(self, desired: list[DesiredResource], scope: Iterable[Address],
                    previous: Iterable[DesiredResource] = (), *, strategy: str | None = None) -> ReadResult:
        """Actual state of the resources at `scope` only, by the cheaper of describe and list calls
        (engine/providers/aws/scoped.py): what `plan --changed-since` and stale checks read."""
        from engine.providers.aws.scoped import read_scoped
        return read_scoped(self, desired, scope, previous, strategy=strategy)

    # ------------------------------------------------------------------ apply
    def apply(self, change: Change, secrets: Mapping[str, str]) -> ApplyResult:
        adopt = change.action is Action.UPDATE and any(f.path == MANAGED_FIELD for f in change.fields)
        rest = tuple(f for f in change.fields if f.path != MANAGED_FIELD)
        outputs: dict = {}
        if not adopt or rest:
            handler = HANDLERS.get((change.kind, change.action))
            if handler is None and change.kind in families.families():
                handler = families.families()[change.kind].handlers.get(change.action)
            if handler is None:
                raise errors.Invalid(f"fleetctl cannot {change.action.value} {change.kind}")
            outputs = handler(self, dataclasses.replace(change, fields=rest) if adopt else change) or {}
        if adopt:   # after the other fields: their expectedVersion was read before this write bumps the version
            _write_marker(self, change, check_version=not rest)
        self.cert_status.update(bulkreg.created_statuses([change]))    # a later wave's bulk template links it
        return ApplyResult(outputs=outputs)

    # ------------------------------------------------------------------ bulk registration (engine/providers/aws/bulkreg.py)
    def estimate_note(self, waves: list[list[Change]], calls: Callable[[Change], Mapping[str, int] | None],
                      tps: Callable[[str], float]) -> dict[str, Any] | None:
        """The plan's sentence on the registration tasks apply will start for this target (none without
        aws.bulkRegistration)."""
        return bulkreg.estimate_note(waves, {self.target: self.bulk}, calls, tps) if self.bulk is not None else None

    def batches(self, changes: list[Change]) -> list[list[Change]]:
        """The changes of one apply wave carried out by AWS bulk registration tasks (none without
        aws.bulkRegistration, or below its threshold)."""
        return bulkreg.batches(changes, self.bulk, self.cert_status) if self.bulk is not None else []

    def apply_batch(self, changes: list[Change], secrets: list[Mapping[str, str]]) -> list[errors.ProviderError | None]:
        """One registration task for `changes` (one `batches` batch); the outcome of each change, in order."""
        return bulkreg.run_task(self, changes, self._task_lock)

    # helpers shared by handlers
    def cert_arn(self, cert_id: str) -> str:
        if cert_id not in self.arns:
            self.arns[cert_id] = self.client.call("describe_certificate", certificateId=cert_id)[
                "certificateDescription"]["certificateArn"]
        return self.arns[cert_id]

    def group_arn(self, name: str) -> str:
        key = "group:" + name
        if key not in self.arns:
            self.arns[key] = self.client.call("describe_thing_group", thingGroupName=name)["thingGroupArn"]
        return self.arns[key]


class _ReadContext:
    """What readers share: the desired index (to name certificates), earlier kinds' results, link indexes."""

    def __init__(self, provider: AwsProvider, by_kind: dict[str, dict[str, DesiredResource]], prune: bool,
                 options: ReadOptions | None = None) -> None:
        self.p = provider
        self.c = provider.client
        self.by_kind = by_kind
        self.prune = prune
        self.options = options or ReadOptions()
        self.actual: dict[str, list[ActualResource]] = {}
        self.cert_names: dict[str, str] = {d.spec.get("certificateId"): name
                                           for name, d in by_kind.get("aws.Certificate", {}).items()
                                           if d.spec.get("certificateId")}
        self.ca_names: dict[str, str] = {d.spec.get("certificateId"): name
                                         for name, d in by_kind.get("aws.CACertificate", {}).items()
                                         if d.spec.get("certificateId")}
        self.policy_targets: dict[str, list[str]] = {}   # target ARN → policy names
        self.group_members: dict[str, list[str]] = {}    # thing name → group names
        self.cert_ca: dict[str, str] = {}                # cert id → CA name
        self.things_pages: _ReadAhead | None = None      # ListThings pages, fetched while other kinds are read
        self.cert_pages: _ReadAhead | None = None        # ListCertificates pages, likewise
        self.groups_pending: Future[list[ActualResource]] | None = None   # thing groups, read while things are
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


class _ReadAhead:
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
        except BaseException as exc:      # re-raised in the consumer
            self._queue.put(exc)

    def unbound(self) -> None:
        with self._queue.mutex:       # not 0: a `put` already waiting re-checks `qsize() >= maxsize`
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


ReadContext = _ReadContext      # the public name family modules (engine/providers/aws/families.py) type against


def _restore(ctx: _ReadContext, kind: str) -> None:
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


def background(fn: Callable[[], T]) -> "Future[T]":
    """`fn()` on a thread of its own; the Future carries its result or exception."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:     # re-raised by `result()` in the reader
            future.set_exception(exc)

    threading.Thread(target=run, name="read-behind", daemon=True).start()
    return future


def _parallel(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
        return list(pool.map(fn, items))


parallel = _parallel     # per-resource describe calls of family readers, READ_WORKERS at a time


def _read_thing_types(ctx: _ReadContext) -> list[ActualResource]:
    out = []
    for t in ctx.c.pages("list_thing_types", "thingTypes"):
        name = t["thingTypeName"]
        props = t.get("thingTypeProperties", {})
        state = {"description": props.get("thingTypeDescription"),
                 "searchableAttributes": sorted(props.get("searchableAttributes", []) or []),
                 "deprecated": bool(t.get("thingTypeMetadata", {}).get("deprecated", False))}
        managed = ctx.declared("aws.ThingType", name) or (ctx.prune and ctx.p._tags_managed(t["thingTypeArn"]))
        ctx.marker("aws.ThingType", name, state, lambda: ctx.p._tags_managed(t["thingTypeArn"]))
        out.append(ActualResource(ctx.p.addr("ThingType", name), "aws.ThingType", state, managed=managed,
                                  ids={"arn": t["thingTypeArn"]}))
    return out


def _read_policies(ctx: _ReadContext) -> list[ActualResource]:
    names = [p["policyName"] for p in ctx.c.pages("list_policies", "policies", page_size=250, size_arg="pageSize",
                                                   token_in="marker", token_out="nextMarker")]

    def one(name: str) -> ActualResource | None:
        try:
            pol = ctx.c.call("get_policy", policyName=name)
            versions = ctx.c.call("list_policy_versions", policyName=name).get("policyVersions", [])
            targets = list(ctx.c.pages("list_targets_for_policy", "targets", page_size=250, size_arg="pageSize",
                                       token_in="marker", token_out="nextMarker", policyName=name))
        except errors.NotFound:
            return None
        version_ids = sorted((int(v["versionId"]) for v in versions), reverse=False)
        desired = ctx.by_kind.get("aws.Policy", {}).get(name)
        state = {"document": json.loads(pol["policyDocument"])}
        ids = {"arn": pol["policyArn"], "defaultVersionId": pol["defaultVersionId"], "versions": version_ids,
               "targets": sorted(targets)}
        if desired is not None:   # retention is desired state: "at most keep versions" holds or shows the count
            keep = int(desired.spec.get("keepVersions", 5))
            state["keepVersions"] = keep if len(version_ids) <= keep else len(version_ids)
        for arn in targets:
            ctx.policy_targets.setdefault(arn, []).append(name)
        managed = desired is not None or (ctx.prune and ctx.p._tags_managed(pol["policyArn"]))
        ctx.marker("aws.Policy", name, state, lambda: ctx.p._tags_managed(pol["policyArn"]))
        return ActualResource(ctx.p.addr("Policy", name), "aws.Policy", state, token=f"v{pol['defaultVersionId']}",
                              managed=managed, ids=ids)

    return [r for r in _parallel(one, names) if r is not None]


def _ca_state(desc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    state: dict[str, Any] = {"certificateId": desc["certificateId"], "status": desc.get("status"),
                             "autoRegistration": desc.get("autoRegistrationStatus") or "DISABLE"}
    return state, {"arn": desc.get("certificateArn"), "certificateMode": desc.get("certificateMode")}


def _read_cas(ctx: _ReadContext) -> list[ActualResource]:
    out = []
    try:
        listed = [c["certificateId"] for c in ctx.c.pages("list_ca_certificates", "certificates", size_arg="pageSize",
                                                           token_in="marker", token_out="nextMarker")]
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
            state["registrationConfig"] = {k: v for k, v in {
                "templateName": reg.get("templateName"),
                "templateBody": json.loads(reg["templateBody"]) if reg.get("templateBody") else None,
                "roleArn": reg.get("roleArn")}.items() if v is not None} or None
        managed = desired is not None or (ctx.prune and ctx.p._tags_managed(desc["certificateArn"]))
        ctx.marker("aws.CACertificate", name, state, lambda: ctx.p._tags_managed(desc["certificateArn"]))
        ctx.p.arns[ca_id] = desc["certificateArn"]
        out.append(ActualResource(ctx.p.addr("CACertificate", name), "aws.CACertificate", state,
                                  token=str(desc.get("generationId", "")), managed=managed, ids=ids))
    return out


def _read_certificates(ctx: _ReadContext) -> list[ActualResource]:
    for ca in ctx.actual.get("aws.CACertificate", []):
        for cert in ctx.c.pages("list_certificates_by_ca", "certificates", size_arg="pageSize", token_in="marker",
                                token_out="nextMarker", caCertificateId=ca.state["certificateId"]):
            ctx.cert_ca[cert["certificateId"]] = ca.address.name
    out = []
    progress = ctx.p.progress.task(f"read {ctx.p.target}", len(ctx.by_kind.get("aws.Certificate", {})) or None,
                                   unit="certificates", final=False)
    pages = (page for page, _ in (ctx.cert_pages if ctx.cert_pages is not None else ctx.c.page_iter(
        "list_certificates", "certificates", size_arg="pageSize", token_in="marker", token_out="nextMarker")))
    for cert in (c for page in pages for c in page):
        progress.advance()
        cid, arn = cert["certificateId"], cert["certificateArn"]
        ctx.p.arns[cid] = arn
        name = ctx.cert_name(cid)
        state = {"certificateId": cid, "status": cert.get("status"),
                 "caCertificate": ctx.cert_ca.get(cid),
                 "policies": sorted(ctx.policy_targets.get(arn, []))}
        out.append(ActualResource(ctx.p.addr("Certificate", name), "aws.Certificate", state,
                                  managed=ctx.declared("aws.Certificate", name), ids={"arn": arn, "certificateId": cid}))
    progress.close()
    return out


def group_actual(ctx: _ReadContext, name: str, g: Mapping[str, Any], policies: Iterable[str],
                 members: Iterable[str]) -> ActualResource:
    """A thing group as read: DescribeThingGroup's answer `g`, with its policies and members (bulk or scoped)."""
    props = g.get("thingGroupProperties", {})
    attrs = dict((props.get("attributePayload") or {}).get("attributes") or {})
    managed = attrs.pop(MARKER_KEY, None) == MARKER_VALUE
    ctx.p.arns["group:" + name] = g["thingGroupArn"]
    state = {"parent": (g.get("thingGroupMetadata") or {}).get("parentGroupName"),
             "description": props.get("thingGroupDescription"), "attributes": attrs, "policies": sorted(policies)}
    ctx.marker("aws.ThingGroup", name, state, managed)
    return ActualResource(ctx.p.addr("ThingGroup", name), "aws.ThingGroup", state, token=str(g.get("version", "")),
                          managed=managed, ids={"arn": g["thingGroupArn"], "version": g.get("version"),
                                                "members": sorted(members)})


def thing_actual(ctx: _ReadContext, name: str, t: Mapping[str, Any], groups: Iterable[str],
                 principals: list[str]) -> ActualResource:
    """A thing as read: its ListThings or DescribeThing record `t`, with its groups and certificate names."""
    attrs = dict(t.get("attributes") or {})
    managed = attrs.pop(MARKER_KEY, None) == MARKER_VALUE
    state = {"thingType": t.get("thingTypeName"), "attributes": attrs, "groups": sorted(groups),
             "principals": principals}
    billing = (ctx.shared.get("billingGroupOf") or {}).get(name) or t.get("billingGroupName")
    if billing:     # DescribeThing names it; ListThings does not (engine/providers/aws/billing.py reads members)
        state["billingGroup"] = billing
    ctx.marker("aws.Thing", name, state, managed)
    return ActualResource(ctx.p.addr("Thing", name), "aws.Thing", state, token=f"v{t.get('version', 0)}",
                          managed=managed, ids={"version": t.get("version"), "arn": t.get("thingArn")})


def _read_groups(ctx: _ReadContext) -> list[ActualResource]:
    names = [g["groupName"] for g in ctx.c.pages("list_thing_groups", "thingGroups")]

    def one(name: str) -> ActualResource | None:
        try:
            g = ctx.c.call("describe_thing_group", thingGroupName=name)
            if g.get("queryString") is not None:   # a dynamic group: aws.DynamicThingGroup (dynamic_groups.py)
                return None
            members = list(ctx.c.pages("list_things_in_thing_group", "things", thingGroupName=name))
        except errors.NotFound:
            return None
        return group_actual(ctx, name, g, ctx.policy_targets.get(g["thingGroupArn"], []), members)

    groups = [r for r in _parallel(one, names) if r is not None]
    for g in groups:
        for thing in g.ids["members"]:
            ctx.group_members.setdefault(thing, []).append(g.address.name)
    return groups


def _read_things(ctx: _ReadContext) -> list[ActualResource]:
    opts = ctx.options
    if opts.links_pending is not None:     # incremental drift: which links to keep, once the events are read
        links_from, links_reread = opts.links_pending()
        opts = dataclasses.replace(opts, links_from=links_from, links_reread=links_reread, links_pending=None)
    token, done = opts.things_from or (None, [])
    out = list(done)

    def principals(row: tuple) -> list[str]:
        if not row[4]:
            return []     # an unmanaged, undeclared thing is only listed: its links are not fleetctl's concern
        name = row[0]
        known = opts.links_from.get(name) if opts.links_from is not None and name not in opts.links_reread else None
        if known is not None:     # incremental drift: no event touched this thing's links since the snapshot
            ids = tuple(known)
        else:
            try:
                arns = ctx.c.pages("list_thing_principals", "principals", thingName=name)
                ids = tuple(sorted(arn.rsplit("/", 1)[-1] for arn in arns if ":cert/" in arn))
            except errors.NotFound:
                ids = ()
        ctx.p.links[name] = ids
        return sorted(ctx.cert_name(i) for i in ids)

    pages = (iter(ctx.things_pages) if ctx.things_pages is not None else
             ctx.c.page_iter("list_things", "things", page_size=opts.page_size, start_token=token))
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
            wanted = opts.everything and (opts.select_thing is None or opts.select_thing(
                {"name": name, "thingType": t.get("thingTypeName"), "attributes": attrs,
                 "groups": sorted(ctx.group_members.get(name, []))}))
            if ctx.declared("aws.Thing", name) or managed or ctx.prune or wanted:
                rows.append((name, t, attrs, managed, wanted or ctx.links_managed(name, managed)))
        linked = [row for row in rows if row[4]]      # one ListThingPrincipals each; none for the others
        links = dict(zip((row[0] for row in linked), _parallel(principals, linked)))
        page_out = []
        for name, t, _, _, _ in rows:
            groups = () if ctx.groups_pending is not None else ctx.group_members.get(name, [])
            page_out.append(thing_actual(ctx, name, t, groups, links.get(name, [])))
        out.extend(page_out)
        if opts.on_things_page is not None:
            opts.on_things_page(token, page_out)
    progress.close()
    if ctx.groups_pending is not None:          # read alongside: the things' groups are filled in now
        ctx.actual["aws.ThingGroup"] = ctx.groups_pending.result()
        for r in out:
            r.state["groups"] = sorted(ctx.group_members.get(r.address.name, []))  # type: ignore[index]
    # a certificate held by a managed thing is managed too (certificates carry no marker of their own)
    held = {p for r in out if r.managed for p in r.state["principals"]}
    certs = ctx.actual.get("aws.Certificate", [])
    ctx.actual["aws.Certificate"] = [ActualResource(c.address, c.kind, c.state, c.token, c.managed or c.address.name in held, c.ids)
                                     for c in certs]
    return out


def _read_rules(ctx: _ReadContext) -> list[ActualResource]:
    names = [r["ruleName"] for r in ctx.c.pages("list_topic_rules", "rules", token_in="nextToken")]

    def one(name: str) -> ActualResource | None:
        try:
            resp = ctx.c.call("get_topic_rule", ruleName=name)
        except errors.NotFound:
            return None
        rule = resp["rule"]
        state = {k: rule.get(k) for k in ("sql", "description", "awsIotSqlVersion", "ruleDisabled", "actions",
                                          "errorAction") if rule.get(k) not in (None, "")}
        state.setdefault("actions", [])
        state = named_roles(state)      # a ServiceRole's ARN reads as its name, as manifests declare it
        managed = ctx.declared("aws.TopicRule", name) or (ctx.prune and ctx.p._tags_managed(resp["ruleArn"]))
        ctx.marker("aws.TopicRule", name, state, lambda: ctx.p._tags_managed(resp["ruleArn"]))
        return ActualResource(ctx.p.addr("TopicRule", name), "aws.TopicRule", json.loads(json.dumps(state)),
                              managed=managed, ids={"arn": resp["ruleArn"]})

    return [r for r in _parallel(one, names) if r is not None]


def _read_templates(ctx: _ReadContext) -> list[ActualResource]:
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
        state = {"templateBody": json.loads(t["templateBody"]), "provisioningRoleArn": t.get("provisioningRoleArn"),
                 "description": t.get("description"), "enabled": t.get("enabled"), "type": t.get("type"),
                 "preProvisioningHook": t.get("preProvisioningHook")}
        managed = ctx.declared("aws.ProvisioningTemplate", name) or (ctx.prune and ctx.p._tags_managed(t["templateArn"]))
        ctx.marker("aws.ProvisioningTemplate", name, state, lambda: ctx.p._tags_managed(t["templateArn"]))
        out.append(ActualResource(ctx.p.addr("ProvisioningTemplate", name), "aws.ProvisioningTemplate", state,
                                  token=str(t.get("defaultVersionId", "")), managed=managed,
                                  ids={"arn": t["templateArn"], "defaultVersionId": t.get("defaultVersionId")}))
    return out


# ====================================================================== apply handlers
def _write_marker(p: AwsProvider, c: Change, *, check_version: bool) -> None:
    """Adoption: add the ownership marker (a merged attribute on things and groups, a tag elsewhere), nothing else."""
    version = {"expectedVersion": c.ids["version"]} if check_version and c.ids.get("version") is not None else {}
    marker = {"attributes": {MARKER_KEY: MARKER_VALUE}, "merge": True}
    if c.kind == "aws.Thing":
        p.client.call("update_thing", thingName=c.address.name, attributePayload=marker, **version)
    elif c.kind == "aws.ThingGroup":
        p.client.call("update_thing_group", thingGroupName=c.address.name,
                      thingGroupProperties={"attributePayload": marker}, **version)
    elif c.kind in families.families() and "mark" in families.families()[c.kind].extra:
        families.families()[c.kind].extra["mark"](p, c)      # a kind whose marker is not an IoT tag (IAM roles)
    else:
        p.client.call("tag_resource", resourceArn=c.ids["arn"], tags=TAGS)


def _ignore_missing(call: Callable[..., dict], op: str, **kwargs: Any) -> dict:
    """Detach/delete calls converge: an already-gone link or resource is the desired outcome."""
    try:
        return call(op, **kwargs)
    except errors.NotFound:
        return {}


def _changed(change: Change, key: str) -> bool:
    return any(f.path == key or f.path.startswith(key + ".") for f in change.fields)


def _set_diff(change: Change, key: str) -> tuple[list[str], list[str]]:
    want = set(change.desired.get(key, []))
    have = set(change.actual.get(key, []) or [])
    return sorted(want - have), sorted(have - want)


def _thing_create(p: AwsProvider, c: Change) -> dict:
    d = c.desired
    args: dict[str, Any] = {"thingName": c.address.name,
                            "attributePayload": {"attributes": {**d.get("attributes", {}), MARKER_KEY: MARKER_VALUE}}}
    if d.get("thingType"):
        args["thingTypeName"] = d["thingType"]
    if d.get("billingGroup"):
        args["billingGroupName"] = d["billingGroup"]
    try:
        p.client.call("create_thing", **args)
    except errors.Conflict:
        pass   # created by an interrupted apply (identical config is idempotent on AWS); links follow below
    for group in d.get("groups", []):
        p.client.call("add_thing_to_thing_group", thingGroupName=group, thingName=c.address.name)
    for cert in d.get("principals", []):
        p.client.call("attach_thing_principal", thingName=c.address.name, principal=p.cert_arn(_cert_id(p, c, cert)))
    return {}


def _cert_id(p: AwsProvider, c: Change, name: str) -> str:
    """A Certificate name → its id (the plan carries ids for every principal it references)."""
    return c.inputs.get("certificateIds", {}).get(name, name)


def _thing_update(p: AwsProvider, c: Change) -> dict:
    d, name = c.desired, c.address.name
    if _changed(c, "attributes") or _changed(c, "thingType"):
        args: dict[str, Any] = {"thingName": name}
        if "attributes" in d:
            attrs = {**d["attributes"], MARKER_KEY: MARKER_VALUE}
            removed = {k: "" for k in (c.actual.get("attributes") or {}) if k not in attrs}
            args["attributePayload"] = {"attributes": {**attrs, **removed}, "merge": True}
        if _changed(c, "thingType"):
            if d.get("thingType"):
                args["thingTypeName"] = d["thingType"]
            else:
                args["removeThingType"] = True
        if c.ids.get("version") is not None:
            args["expectedVersion"] = c.ids["version"]
        p.client.call("update_thing", **args)
    from engine.providers.aws.billing import thing_billing
    thing_billing(p, c)
    add, remove = _set_diff(c, "groups")
    for group in add:
        p.client.call("add_thing_to_thing_group", thingGroupName=group, thingName=name)
    for group in remove:
        p.client.call("remove_thing_from_thing_group", thingGroupName=group, thingName=name)
    add, remove = _set_diff(c, "principals")
    for cert in add:
        p.client.call("attach_thing_principal", thingName=name, principal=p.cert_arn(_cert_id(p, c, cert)))
    for cert in remove:
        p.client.call("detach_thing_principal", thingName=name, principal=p.cert_arn(_cert_id(p, c, cert)))
    return {}


def _thing_delete(p: AwsProvider, c: Change) -> dict:
    name = c.address.name
    for arn in p.client.pages("list_thing_principals", "principals", thingName=name):
        _ignore_missing(p.client.call, "detach_thing_principal", thingName=name, principal=arn)
    args: dict[str, Any] = {"thingName": name}
    if c.ids.get("version") is not None:
        args["expectedVersion"] = c.ids["version"]
    _ignore_missing(p.client.call, "delete_thing", **args)
    return {}


def _type_create(p: AwsProvider, c: Change) -> dict:
    d = c.desired
    props: dict[str, Any] = {}
    if d.get("description"):
        props["thingTypeDescription"] = d["description"]
    if d.get("searchableAttributes"):
        props["searchableAttributes"] = d["searchableAttributes"]
    try:
        p.client.call("create_thing_type", thingTypeName=c.address.name, thingTypeProperties=props, tags=TAGS)
    except errors.Conflict:
        pass
    if d.get("deprecated"):
        p.client.call("deprecate_thing_type", thingTypeName=c.address.name, undoDeprecate=False)
    return {}


def _type_update(p: AwsProvider, c: Change) -> dict:
    p.client.call("deprecate_thing_type", thingTypeName=c.address.name, undoDeprecate=not c.desired.get("deprecated"))
    return {}


def _type_delete(p: AwsProvider, c: Change) -> dict:
    if not c.actual.get("deprecated"):
        p.client.call("deprecate_thing_type", thingTypeName=c.address.name, undoDeprecate=False)
    p.client.call("delete_thing_type", thingTypeName=c.address.name)
    return {}


def _group_props(d: Mapping[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {"attributePayload": {"attributes": {**d.get("attributes", {}), MARKER_KEY: MARKER_VALUE}}}
    if d.get("description") is not None:
        props["thingGroupDescription"] = d["description"]
    return props


def _group_create(p: AwsProvider, c: Change) -> dict:
    d, name = c.desired, c.address.name
    args: dict[str, Any] = {"thingGroupName": name, "thingGroupProperties": _group_props(d), "tags": TAGS}
    if d.get("parent"):
        args["parentGroupName"] = d["parent"]
    try:
        resp = p.client.call("create_thing_group", **args)
        p.arns["group:" + name] = resp["thingGroupArn"]
    except errors.Conflict:
        pass
    for policy in d.get("policies", []):
        p.client.call("attach_policy", policyName=policy, target=p.group_arn(name))
    return {}


def _group_update(p: AwsProvider, c: Change) -> dict:
    d, name = c.desired, c.address.name
    if _changed(c, "attributes") or _changed(c, "description"):
        props = _group_props(d)
        removed = {k: "" for k in (c.actual.get("attributes") or {}) if k not in props["attributePayload"]["attributes"]}
        props["attributePayload"] = {"attributes": {**props["attributePayload"]["attributes"], **removed}, "merge": True}
        args: dict[str, Any] = {"thingGroupName": name, "thingGroupProperties": props}
        if c.ids.get("version") is not None:
            args["expectedVersion"] = c.ids["version"]
        p.client.call("update_thing_group", **args)
    add, remove = _set_diff(c, "policies")
    for policy in add:
        p.client.call("attach_policy", policyName=policy, target=p.group_arn(name))
    for policy in remove:
        p.client.call("detach_policy", policyName=policy, target=p.group_arn(name))
    return {}


def _group_delete(p: AwsProvider, c: Change) -> dict:
    name = c.address.name
    for policy in c.actual.get("policies", []):
        p.client.call("detach_policy", policyName=policy, target=p.group_arn(name))
    p.client.call("delete_thing_group", thingGroupName=name)
    p.arns.pop("group:" + name, None)
    return {}


def _group_replace(p: AwsProvider, c: Change) -> dict:
    _group_delete(p, c)
    _group_create(p, c)
    for thing in c.ids.get("members", []):     # membership is the things' desired state: keep it
        p.client.call("add_thing_to_thing_group", thingGroupName=c.address.name, thingName=thing)
    return {}


def _policy_doc(c: Change) -> str:
    return json.dumps(c.desired["document"], sort_keys=True, separators=(",", ":"))


def _policy_create(p: AwsProvider, c: Change) -> dict:
    try:
        p.client.call("create_policy", policyName=c.address.name, policyDocument=_policy_doc(c), tags=TAGS)
    except errors.Conflict:
        pass
    return {}


def _policy_update(p: AwsProvider, c: Change) -> dict:
    name = c.address.name
    before, after, create = policy_version_steps(c)
    for version in before:
        p.client.call("delete_policy_version", policyName=name, policyVersionId=str(version))
    if create:
        p.client.call("create_policy_version", policyName=name, policyDocument=_policy_doc(c), setAsDefault=True)
    for version in after:
        p.client.call("delete_policy_version", policyName=name, policyVersionId=str(version))
    return {}


def _policy_delete(p: AwsProvider, c: Change) -> dict:
    name = c.address.name
    for target in p.client.pages("list_targets_for_policy", "targets", page_size=250, size_arg="pageSize",
                                 token_in="marker", token_out="nextMarker", policyName=name):
        _ignore_missing(p.client.call, "detach_policy", policyName=name, target=target)
    for version in c.ids.get("versions", []):
        if str(version) != str(c.ids.get("defaultVersionId")):
            p.client.call("delete_policy_version", policyName=name, policyVersionId=str(version))
    p.client.call("delete_policy", policyName=name)
    return {}


def _cert_create(p: AwsProvider, c: Change) -> dict:
    """With policies: register INACTIVE, attach them, then set the desired status, so a crash leaves no orphan
    ACTIVE certificate holding a policy. Without (the policy is on the thing group): register with the desired
    status at once, one call fewer per device; such a certificate grants nothing until its thing holds it."""
    d = c.desired
    cid = d["certificateId"]
    pem = c.inputs["certificatePem"]
    status = "INACTIVE" if d.get("policies") else d.get("status", "ACTIVE")
    try:
        if c.inputs.get("caCertificatePem"):
            resp = p.client.call("register_certificate", certificatePem=pem,
                                 caCertificatePem=c.inputs["caCertificatePem"], status=status)
        else:
            resp = p.client.call("register_certificate_without_ca", certificatePem=pem, status=status)
        p.arns[cid] = resp["certificateArn"]
    except errors.Conflict:   # registered by an interrupted apply: continue from where it stopped
        status = None
    arn = p.cert_arn(cid)
    for policy in d.get("policies", []):
        p.client.call("attach_policy", policyName=policy, target=arn)
    if d.get("status", "ACTIVE") != status:
        p.client.call("update_certificate", certificateId=cid, newStatus=d.get("status", "ACTIVE"))
    return {}


def _cert_update(p: AwsProvider, c: Change) -> dict:
    d = c.desired
    cid = c.ids.get("certificateId") or d["certificateId"]
    arn = p.cert_arn(cid)
    add, remove = _set_diff(c, "policies")
    going_active = _changed(c, "status") and d.get("status") == "ACTIVE"
    if _changed(c, "status") and not going_active:   # deactivate before touching anything else
        p.client.call("update_certificate", certificateId=cid, newStatus=d["status"])
    for policy in add:
        p.client.call("attach_policy", policyName=policy, target=arn)
    for policy in remove:
        p.client.call("detach_policy", policyName=policy, target=arn)
    if going_active:
        p.client.call("update_certificate", certificateId=cid, newStatus="ACTIVE")
    return {}


def _cert_delete(p: AwsProvider, c: Change) -> dict:
    """detach from things → detach policies → INACTIVE → delete (a certificate is never deleted attached)."""
    cid = c.ids.get("certificateId") or c.actual.get("certificateId")
    arn = p.cert_arn(cid)
    for thing in p.client.pages("list_principal_things", "things", principal=arn):
        p.client.call("detach_thing_principal", thingName=thing, principal=arn)
    for policy in c.actual.get("policies", []):
        _ignore_missing(p.client.call, "detach_policy", policyName=policy, target=arn)
    if c.actual.get("status") == "ACTIVE":
        p.client.call("update_certificate", certificateId=cid, newStatus="INACTIVE")
    p.client.call("delete_certificate", certificateId=cid, forceDelete=False)
    p.arns.pop(cid, None)
    return {}


def _cert_replace(p: AwsProvider, c: Change) -> dict:
    _cert_delete(p, c)
    return _cert_create(p, c)


def _ca_registration(d: Mapping[str, Any]) -> dict[str, Any]:
    reg = dict(d.get("registrationConfig") or {})
    if reg.get("templateBody") is not None:
        reg["templateBody"] = json.dumps(reg["templateBody"], sort_keys=True)
    return reg


def _ca_create(p: AwsProvider, c: Change) -> dict:
    d = c.desired
    args: dict[str, Any] = {"caCertificate": c.inputs["certificatePem"], "setAsActive": d.get("status") == "ACTIVE",
                            "allowAutoRegistration": d.get("autoRegistration") == "ENABLE", "tags": TAGS,
                            "certificateMode": c.inputs.get("certificateMode", "DEFAULT")}
    if c.inputs.get("verificationCertificatePem"):
        args["verificationCertificate"] = c.inputs["verificationCertificatePem"]
    if d.get("registrationConfig"):
        args["registrationConfig"] = _ca_registration(d)
    try:
        resp = p.client.call("register_ca_certificate", **args)
        p.arns[d["certificateId"]] = resp["certificateArn"]
    except errors.Conflict:
        _ca_update(p, c)
    return {}


def _ca_update(p: AwsProvider, c: Change) -> dict:
    d = c.desired
    args: dict[str, Any] = {"certificateId": d["certificateId"]}
    if "status" in d:
        args["newStatus"] = d["status"]
    if "autoRegistration" in d:
        args["newAutoRegistrationStatus"] = d["autoRegistration"]
    if d.get("registrationConfig"):
        args["registrationConfig"] = _ca_registration(d)
    elif "registrationConfig" in d:
        args["removeAutoRegistration"] = True
    p.client.call("update_ca_certificate", **args)
    return {}


def _ca_delete(p: AwsProvider, c: Change) -> dict:
    cid = c.actual.get("certificateId")
    if c.actual.get("status") == "ACTIVE":
        p.client.call("update_ca_certificate", certificateId=cid, newStatus="INACTIVE")
    p.client.call("delete_ca_certificate", certificateId=cid)
    return {}


def _ca_replace(p: AwsProvider, c: Change) -> dict:
    _ca_delete(p, c)
    return _ca_create(p, c)


def _rule_payload(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k in ("sql", "description", "actions", "ruleDisabled", "awsIotSqlVersion",
                                                "errorAction")}


def _rule_create(p: AwsProvider, c: Change) -> dict:
    from engine.providers.aws.iam import with_role_arns     # a roleArn naming a ServiceRole → its ARN
    p.client.call("create_topic_rule", ruleName=c.address.name,
                  topicRulePayload=with_role_arns(p, _rule_payload(c.desired)), tags=f"{MARKER_KEY}={MARKER_VALUE}")
    return {}


def _rule_update(p: AwsProvider, c: Change) -> dict:
    from engine.providers.aws.iam import with_role_arns
    p.client.call("replace_topic_rule", ruleName=c.address.name,
                  topicRulePayload=with_role_arns(p, _rule_payload(c.desired)))
    return {}


def _rule_delete(p: AwsProvider, c: Change) -> dict:
    p.client.call("delete_topic_rule", ruleName=c.address.name)
    return {}


def _template_args(d: Mapping[str, Any]) -> dict[str, Any]:
    args = {"templateBody": json.dumps(d["templateBody"], sort_keys=True), "enabled": d.get("enabled", True),
            "provisioningRoleArn": d["provisioningRoleArn"]}
    if d.get("description") is not None:
        args["description"] = d["description"]
    if d.get("preProvisioningHook"):
        args["preProvisioningHook"] = d["preProvisioningHook"]
    return args


def _template_create(p: AwsProvider, c: Change) -> dict:
    p.client.call("create_provisioning_template", templateName=c.address.name, type=c.desired.get("type", "FLEET_PROVISIONING"),
                  tags=TAGS, **_template_args(c.desired))
    return {}


def _template_update(p: AwsProvider, c: Change) -> dict:
    args = _template_args(c.desired)
    body = args.pop("templateBody")
    if _changed(c, "templateBody"):
        name = c.address.name
        versions = p.client.call("list_provisioning_template_versions", templateName=name).get("versions", [])
        if len(versions) >= MAX_TEMPLATE_VERSIONS:     # like policies: AWS keeps at most 5 versions
            oldest = min(int(v["versionId"]) for v in versions if not v.get("isDefaultVersion"))
            p.client.call("delete_provisioning_template_version", templateName=name, versionId=oldest)
        p.client.call("create_provisioning_template_version", templateName=name, templateBody=body,
                      setAsDefault=True)
    p.client.call("update_provisioning_template", templateName=c.address.name, **args)
    return {}


def _template_delete(p: AwsProvider, c: Change) -> dict:
    p.client.call("delete_provisioning_template", templateName=c.address.name)
    return {}


Handler = Callable[[AwsProvider, Change], dict]
HANDLERS: dict[tuple[str, Action], Handler] = {
    ("aws.Thing", Action.CREATE): _thing_create, ("aws.Thing", Action.UPDATE): _thing_update,
    ("aws.Thing", Action.DELETE): _thing_delete,
    ("aws.ThingType", Action.CREATE): _type_create, ("aws.ThingType", Action.UPDATE): _type_update,
    ("aws.ThingType", Action.DELETE): _type_delete,
    ("aws.ThingGroup", Action.CREATE): _group_create, ("aws.ThingGroup", Action.UPDATE): _group_update,
    ("aws.ThingGroup", Action.DELETE): _group_delete, ("aws.ThingGroup", Action.REPLACE): _group_replace,
    ("aws.Policy", Action.CREATE): _policy_create, ("aws.Policy", Action.UPDATE): _policy_update,
    ("aws.Policy", Action.DELETE): _policy_delete,
    ("aws.Certificate", Action.CREATE): _cert_create, ("aws.Certificate", Action.UPDATE): _cert_update,
    ("aws.Certificate", Action.DELETE): _cert_delete, ("aws.Certificate", Action.REPLACE): _cert_replace,
    ("aws.CACertificate", Action.CREATE): _ca_create, ("aws.CACertificate", Action.UPDATE): _ca_update,
    ("aws.CACertificate", Action.DELETE): _ca_delete, ("aws.CACertificate", Action.REPLACE): _ca_replace,
    ("aws.TopicRule", Action.CREATE): _rule_create, ("aws.TopicRule", Action.UPDATE): _rule_update,
    ("aws.TopicRule", Action.DELETE): _rule_delete,
    ("aws.ProvisioningTemplate", Action.CREATE): _template_create,
    ("aws.ProvisioningTemplate", Action.UPDATE): _template_update,
    ("aws.ProvisioningTemplate", Action.DELETE): _template_delete,
}
