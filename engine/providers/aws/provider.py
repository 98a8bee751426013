"""AWS IoT Core provider: the Provider protocol glue over the reads, the writes and the families.

The seam, one module per job: read.py (bulk reads of the kinds served here, `READERS`), scoped.py (reads of a
few addresses), trail.py (incremental reads from CloudTrail events), writes.py (one handler per (kind, action),
`HANDLERS`), families.py (kinds served by their own modules: IAM roles, role aliases, billing and dynamic groups,
account settings, authorizers, destinations), bulkreg.py (registration tasks) and client.py (the only boto3 user).
This module orders the reads, dispatches applies and keeps what handlers share (ARNs, certificate statuses).

Ownership marker: things and thing groups carry the attribute `managed-by=fleetctl`; types, policies, CAs,
rules and templates carry the tag `managed-by=fleetctl` (read only for undeclared resources, the prune
candidates); a certificate is managed when a managed thing holds it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine import errors
from engine.diagnostics import Diagnostic, warning
from engine.model import Action, ActualResource, Address, Change, DesiredResource
from engine.progress import SILENT, ProgressSink
from engine.providers.aws import bulkreg, families, scoped
from engine.providers.aws.client import AssumeRole, AwsClient
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE
from engine.providers.aws.planning import MANAGED_FIELD
from engine.providers.aws.read import (
    PREFETCH_PAGES,
    READ_ORDER,
    READERS,
    ReadAhead,
    ReadContext,
    ReadOptions,
    background,
    restore,
)
from engine.providers.aws.writes import HANDLERS, write_marker
from engine.providers.base import ApplyResult, ReadResult
from engine.ratelimit import aws_limiter


def make_provider(target: str, spec: Any, env: Mapping[str, str], **options: Any) -> AwsProvider:
    aws = spec.aws
    endpoint = aws.endpointUrl or env.get("AWS_ENDPOINT_URL_IOT") or env.get("AWS_ENDPOINT_URL") or None
    s3_endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None  # bulk registration files
    sts_endpoint = env.get("AWS_ENDPOINT_URL_STS") or env.get("AWS_ENDPOINT_URL") or None
    trail_endpoint = env.get("AWS_ENDPOINT_URL_CLOUDTRAIL") or env.get("AWS_ENDPOINT_URL") or endpoint  # drift events
    role = getattr(aws, "assumeRole", None)
    assume = AssumeRole(role.roleArn, role.externalId, role.sessionName, role.durationSeconds) if role else None
    client = options.get("client") or AwsClient(
        aws.region,
        profile=aws.profile,
        endpoint_url=endpoint,
        limiter=aws_limiter(env, endpoint),
        s3_endpoint_url=s3_endpoint,
        assume_role=assume,
        sts_endpoint_url=sts_endpoint,
        target=target,
        cloudtrail_endpoint_url=trail_endpoint,
    )
    return AwsProvider(target, client, bulk=bulkreg.BulkConfig.from_spec(getattr(aws, "bulkRegistration", None)))


class AwsProvider:
    def __init__(self, target: str, client: AwsClient, bulk: bulkreg.BulkConfig | None = None) -> None:
        self.target = target
        self.client = client
        self.arns: dict[str, str] = {}  # certificate id / group name → ARN, filled by read and create
        self.diagnostics: list[Diagnostic] = []
        self._prefetched: ReadAhead | None = None  # ListThings pages started by `prefetch`, taken by `read`
        self.bulk = bulk  # aws.bulkRegistration: registration tasks for large batches
        self.cert_status: dict[str, str] = {}  # certificate id → status, of certificates this apply wrote
        self.bulk_stats: defaultdict[str, float] = defaultdict(int)  # tasks, changes (int), seconds (float)
        self._task_lock = threading.Lock()
        self.progress: ProgressSink = SILENT  # long reads report here (engine/run/ sets the command's sink)
        # thing → certificate ids of its links, as the last `read` knew them (read, or kept from a snapshot): what a
        # snapshot saves (engine/snapshot.py)
        self.links: dict[str, tuple[str, ...]] = {}

    # ------------------------------------------------------------------ plumbing
    def addr(self, kind: str, name: str) -> Address:
        return Address.of("aws", self.target, kind, name)

    def set_hook(self, hook: Any) -> None:
        self.client.hook = hook

    def identity(self) -> dict[str, str]:
        """The account (and assumed role) this Target acts in: engine/run/ records and checks it."""
        return self.client.identity()

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.client.calls),
            "total": self.client.total_calls(),
            "mutating": self.client.mutating_calls(),
            "throttles": self.client.throttles,
            **({"rateLimiter": self.client.limiter.stats()} if self.client.limiter else {}),
            **({"bulkRegistration": dict(self.bulk_stats)} if self.bulk_stats else {}),
        }

    def _gap(self, what: str) -> None:
        self.diagnostics.append(warning(f"the AWS endpoint does not implement {what}", address=f"aws/{self.target}"))

    def gap(self, what: str) -> None:
        """A warning that the endpoint lacks an API (for readers in other modules)."""
        self._gap(what)

    def tags_managed(self, arn: str) -> bool:
        """Whether the IoT resource at `arn` carries the ownership marker tag."""
        try:
            tags = self.client.call("list_tags_for_resource", resourceArn=arn).get("tags", [])
        except errors.Unsupported:
            self._gap("ListTagsForResource: ownership of undeclared resources is unknown, so they are never pruned")
            return False
        except errors.NotFound:
            return False
        return any(t.get("Key") == MARKER_KEY and t.get("Value") == MARKER_VALUE for t in tags)

    def endpoint(self) -> str:
        host: str = self.client.call("describe_endpoint", endpointType="iot:Data-ATS")["endpointAddress"]
        return host

    # ------------------------------------------------------------------ read
    def prefetch(self, depth: int = PREFETCH_PAGES) -> None:
        """Start the ListThings page chain now, before `read` is called: `plan` calls this as soon as it knows the
        Targets, so the chain that bounds a whole-fleet read runs while the manifests load (engine/run/planning.py)."""
        if self._prefetched is None:
            self._prefetched = ReadAhead(
                self.client.page_iter("list_things", "things", page_size=ReadOptions.page_size), depth
            )

    def cancel_prefetch(self) -> None:
        if self._prefetched is not None:
            self._prefetched.close()
            self._prefetched = None

    def read(
        self, desired: list[DesiredResource], *, prune: bool = False, options: ReadOptions | None = None
    ) -> ReadResult:
        """Actual state for the kinds declared in this target (plus everything managed when pruning)."""
        self.diagnostics = []
        opts = options or ReadOptions()
        self.links = {}
        prefetched, self._prefetched = self._prefetched, None
        by_kind: dict[str, dict[str, DesiredResource]] = {}
        for d in desired:
            by_kind.setdefault(d.kind, {})[d.address.name] = d
        ctx = ReadContext(self, by_kind, prune, opts)
        out: list[ActualResource] = []
        readers: dict[str, Callable[[ReadContext], list[ActualResource]]] = dict(READERS)
        extra = families.families()  # kinds served by their own modules (engine/providers/aws/families.py)
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
        if (
            "aws.Thing" in needed
            and "aws.Thing" not in opts.known
            and opts.things_from is None
            and opts.on_things_page is None
        ):
            # ListThings (10 TPS, one page after the other) is the binding read: its pages are fetched while the
            # other kinds are read, not after them (research/quotas.md §8.1: the floor is ListThings alone)
            ctx.things_pages = (
                prefetched
                if prefetched is not None and opts.page_size == ReadOptions.page_size and opts.only_things is None
                else ReadAhead(self.client.page_iter("list_things", "things", page_size=opts.page_size))
            )
        if "aws.Certificate" in needed and "aws.Certificate" not in opts.known and opts.on_kind is None:
            # ListCertificates is a page chain of its own (10 TPS): fetched while policies and CAs are read
            ctx.cert_pages = ReadAhead(
                self.client.page_iter(
                    "list_certificates", "certificates", size_arg="pageSize", token_in="marker", token_out="nextMarker"
                )
            )
        if prefetched is not None and ctx.things_pages is not prefetched:
            prefetched.close()
        elif prefetched is not None:
            prefetched.unbound()  # the fleet is loaded: let the chain run ahead of the other kinds' reads
        for kind in order:
            if kind not in needed:
                continue
            if kind in opts.known:
                ctx.actual[kind] = list(opts.known[kind])
                restore(ctx, kind)
                continue
            if (
                kind == "aws.ThingGroup"
                and ctx.things_pages is not None
                and "aws.Thing" in needed
                and opts.on_kind is None
                and opts.select_thing is None
            ):
                # group members (ListThingsInThingGroup, a page chain of its own) are read while the things are:
                # things get their groups when both are done (`_read_things`), so neither chain waits for the other
                ctx.actual[kind] = []
                ctx.groups_pending = background(lambda: READERS["aws.ThingGroup"](ctx))
                continue
            ctx.actual[kind] = readers[kind](ctx)
            if opts.on_kind is not None:
                opts.on_kind(kind, ctx.actual[kind])
        for kind, resources in ctx.actual.items():  # collected last: readers may refine earlier kinds
            if kind in kinds:
                out.extend(resources)
        return ReadResult(out, list(self.diagnostics))

    def read_scoped(
        self,
        desired: list[DesiredResource],
        scope: Iterable[Address],
        previous: Iterable[DesiredResource] = (),
        *,
        strategy: str | None = None,
    ) -> ReadResult:
        """Actual state of the resources at `scope` only, by the cheaper of describe and list calls
        (engine/providers/aws/scoped.py): what `plan --changed-since` and stale checks read."""
        return scoped.read_scoped(self, desired, scope, previous, strategy=strategy)

    # ------------------------------------------------------------------ apply
    def apply(self, change: Change, secrets: Mapping[str, str]) -> ApplyResult:
        adopt = change.action is Action.UPDATE and any(f.path == MANAGED_FIELD for f in change.fields)
        rest = tuple(f for f in change.fields if f.path != MANAGED_FIELD)
        outputs: dict[str, Any] = {}
        if not adopt or rest:
            handler = HANDLERS.get((change.kind, change.action))
            if handler is None and change.kind in families.families():
                handler = families.families()[change.kind].handlers.get(change.action)
            if handler is None:
                raise errors.Invalid(f"fleetctl cannot {change.action.value} {change.kind}")
            outputs = handler(self, dataclasses.replace(change, fields=rest) if adopt else change) or {}
        if adopt:  # after the other fields: their expectedVersion was read before this write bumps the version
            write_marker(self, change, check_version=not rest)
        self.cert_status.update(bulkreg.created_statuses([change]))  # a later wave's bulk template links it
        return ApplyResult(outputs=outputs)

    # ------------------------------------------------------------------ bulk registration (engine/providers/aws/bulkreg.py)
    def estimate_note(
        self,
        waves: list[list[Change]],
        calls: Callable[[Change], Mapping[str, int] | None],
        tps: Callable[[str], float],
    ) -> dict[str, Any] | None:
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
                "certificateDescription"
            ]["certificateArn"]
        return self.arns[cert_id]

    def group_arn(self, name: str) -> str:
        key = "group:" + name
        if key not in self.arns:
            self.arns[key] = self.client.call("describe_thing_group", thingGroupName=name)["thingGroupArn"]
        return self.arns[key]
