"""`plan`: load the fleet, read the actual state of every Target it uses (in bulk, scoped by --changed-since, or from
a snapshot and CloudTrail), diff and order it (engine/plan/planner.py, pure), and add what the journal knows of
interrupted applies and the apply estimate. Never prints."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from engine import accounts, errors, incremental
from engine import snapshot as snapshots
from engine.clock import git_commit, iso
from engine.diagnostics import Diagnostics, FleetctlError, error, warning
from engine.estimate import apply_estimate
from engine.graph import apply_waves
from engine.journal import interrupted, interrupted_tasks
from engine.manifest import generators
from engine.manifest.confine import FilePolicy, allow_entries
from engine.manifest.core_kinds import TargetSpec, unresolved_credentials
from engine.manifest.fleet import Fleet
from engine.manifest.specs import spec_as
from engine.model import DesiredResource
from engine.plan import permissions
from engine.plan.model import Plan
from engine.plan.planner import PlanOptions
from engine.plan.planner import plan as make_plan
from engine.run.context import INTERRUPTED_LISTED, Context, get_provider, identity_rows, load, provider_key, read_key

if TYPE_CHECKING:  # for the annotation only
    from engine.providers.aws.provider import AwsProvider


def unavailable_targets(fleet: Fleet, ctx: Context, diags: Diagnostics) -> set[str]:
    """Targets marked `optional: true` whose credential references do not resolve: not planned, with a warning."""
    skipped: set[str] = set()
    files = FilePolicy.for_targets(fleet.root, [m.spec for m in fleet.targets().values()])  # fleet-wide allowances
    for name, manifest in sorted(fleet.targets().items()):
        spec = spec_as(manifest, TargetSpec)
        missing = unresolved_credentials(spec, fleet.root, ctx.env, files) if spec.optional else []
        if missing:
            skipped.add(name)
            diags.add(
                warning(
                    f"optional target '{name}' is not planned: {missing[0]}",
                    "its resources are neither read nor changed; set its credentials to plan it",
                    address=f"fleetctl/Target/{name}",
                )
            )
    return skipped


@dataclass
class PlanResult:
    plan: Plan
    fleet: Fleet
    stats: dict[str, Any]
    snapshot: snapshots.Snapshot | None = None  # the actual state read, when the plan was asked to keep it


@dataclass(frozen=True)
class SnapshotUse:
    """Drift/plan with snapshots (engine/snapshot.py, engine/providers/aws/trail.py): start from `since` (None:
    no usable snapshot, `refused` says why) and keep what was read. `settings`: a trail.Settings."""

    since: snapshots.Snapshot | None = None
    refused: str | None = None
    settings: Any = None


def plan(
    path: Path,
    ctx: Context,
    *,
    targets: set[str] | None = None,
    prune: bool = False,
    changed_since: str | None = None,
    snapshot: SnapshotUse | None = None,
) -> PlanResult:
    """Read actual state in bulk for every target the fleet uses, diff, and order. Raises FleetctlError.

    `changed_since` (a git revision) limits the plan to the resources whose manifests changed since then and
    their dependants (engine/incremental.py); providers read only those. `snapshot`: start AWS reads from a
    snapshot (CloudTrail events since, engine/providers/aws/trail.py) and return the state read as a new one."""
    started_early: list[Any] = []  # providers whose reads `load` started (prefetch); stopped if left unread
    if snapshot is not None and changed_since is not None:
        raise FleetctlError(
            error(
                "--changed-since cannot be combined with snapshots",
                "a scoped plan reads a few resources; a snapshot holds a whole read",
            )
        )
    try:
        return _plan(path, ctx, targets, prune, changed_since, started_early, snapshot)
    finally:
        gc.unfreeze()
        for provider in started_early:
            provider.cancel_prefetch()


def _plan(
    path: Path,
    ctx: Context,
    targets: set[str] | None,
    prune: bool,
    changed_since: str | None,
    started_early: list[Any],
    use: SnapshotUse | None = None,
) -> PlanResult:
    def prefetch(specs: dict[str, Any]) -> None:
        """A whole-fleet read is bound by one page chain (AWS ListThings, 10 TPS): start it while the fleet loads."""
        if changed_since is not None:
            return
        for name, spec in sorted(specs.items()):
            if spec.aws is not None and not spec.optional and (targets is None or name in targets):
                try:
                    provider = get_provider(ctx, ("aws", name), specs)
                except (FleetctlError, errors.ProviderError):
                    continue  # the read says so, with the fleet's diagnostics
                if hasattr(provider, "prefetch"):
                    provider.prefetch()
                    started_early.append(provider)

    fleet = load(path, ctx, prefetch)  # (with the cyclic collector paused: engine/manifest/fleet.py)
    gc.freeze()  # the loaded fleet is long-lived: the collector's passes during the read skip its objects
    fleet.manifests = generators.release(fleet.manifests)  # a ThingSet's rows live on as desired resources
    target_specs = {name: spec_as(m, TargetSpec) for name, m in fleet.targets().items()}
    diags = Diagnostics()
    skipped = unavailable_targets(fleet, ctx, diags)
    desired = [
        d
        for d in fleet.desired
        if (targets is None or d.address.target in targets or provider_key(d.address)[0] == "device")
        and provider_key(d.address)[1] not in skipped
    ]
    scope, every = None, desired
    if changed_since is not None:
        scope = incremental.changed_since(fleet.root, changed_since, desired, ctx.env)
        desired = incremental.select(desired, scope)
    groups: dict[tuple[str, str], list[DesiredResource]] = {}
    for d in desired:
        groups.setdefault(provider_key(d.address), []).append(d)
    for name, spec in target_specs.items():  # every target is read whole: undeclared managed resources show
        kind = "aws" if spec.aws else "azure"
        if (targets is None or name in targets) and name not in skipped and scope is None:
            groups.setdefault((kind, name), [])
    for address in scope.removed if scope else ():
        if (targets is None or address.target in targets) and address.target not in skipped:
            groups.setdefault(provider_key(address), [])
    scoped = incremental.ScopedRead(scope.addresses, scope.previous) if scope else None
    prune_targets = {name for name, spec in target_specs.items() if spec.prune or prune}
    # the account (and role) each AWS Target acts in, asked before its read: an unusable role fails here, by name
    identities = accounts.identities(
        [k[1] for k in groups if k[0] == "aws"],
        lambda name: get_provider(ctx, ("aws", name), target_specs),
        target_specs,
        diags,
    )
    actual = []
    started = time.perf_counter()
    reads: list[dict[str, Any]] = []  # what each incremental-capable read trusted
    entries: dict[str, snapshots.TargetSnapshot] = {}  # the next snapshot, per Target
    for key in sorted(groups):
        provider = get_provider(ctx, key, target_specs)
        try:
            if scoped:
                result = scoped.read(provider, [d for d in every if provider_key(d.address) == key], groups[key], key)
            elif use is not None and key[0] == "aws":
                from engine.providers.aws import trail

                aws_spec = target_specs[key[1]].aws
                assert aws_spec is not None  # key[0] == "aws": the Target declares aws
                now = ctx.now()
                entry = use.since.targets.get(key[1]) if use.since is not None else None
                result, trust, entries[key[1]] = trail.read_since(
                    cast("AwsProvider", provider),
                    groups[key],
                    entry,
                    now,
                    use.settings or trail.Settings(),
                    region=aws_spec.region,
                    refused=use.refused,
                )
                if use.since is not None and use.since.path:
                    trust["snapshot"] = use.since.path
                reads.append(trust)
            else:
                now = ctx.now()
                result = provider.read(groups[key], prune=True)
                if use is not None:
                    entries[key[1] or key[0]] = snapshots.TargetSnapshot(
                        key[1] or key[0],
                        key[0],
                        iso(now),
                        iso(now),
                        actual=tuple(snapshots.actual_json(a) for a in result.actual),
                    )
        except errors.ProviderError as exc:
            raise FleetctlError(
                error(
                    f"reading {key[0]} target '{key[1]}' failed: {exc}", "check the Target's credentials and endpoint"
                )
            ) from None
        actual.extend(result.actual)
        diags.extend(result.diagnostics)
    read_seconds = time.perf_counter() - started
    open_changes = interrupted(ctx.journal_path)
    read_whole = set(groups) if scope is None else set()
    read_addresses = ({str(d.address) for d in desired} | {str(a.address) for a in actual}) if open_changes else set()
    for task in interrupted_tasks(ctx.journal_path):  # AWS bulk registration, IoT Hub import jobs
        diags.add(
            warning(
                f"an earlier apply (plan {task['planId']}) was interrupted while "
                f"{task.get('task') or 'AWS bulk registration task'} {task['taskId']} ran "
                f"({task['changes']} change(s)"
                + (f", input {task['input']}" if task.get("input") else "")
                + "); it goes on without "
                "fleetctl: this plan shows what it had done when read, and the next apply waits for it to "
                "end before it starts one of its own"
            )
        )
    options = PlanOptions(
        prune_targets=frozenset(prune_targets),
        git_commit=git_commit(fleet.root, ctx.env),
        created_at=iso(ctx.now()),
        desired_digest=fleet.digest,
        extra={
            "identities": identity_rows(fleet.desired),
            "targets": sorted(k[1] for k in groups if k[1]),
            # `--target`: what was asked for, also when an optional Target was skipped
            **({"requestedTargets": sorted(targets)} if targets else {}),
            # the Targets' settings (references, never secret values): apply PLANFILE
            # needs no fleet load to reach them
            "targetSpecs": {
                name: target_specs[name].model_dump(mode="json", exclude_none=True)
                for name in sorted({k[1] for k in groups if k[1]} & set(target_specs))
            },
            **({"accounts": identities} if identities else {}),
            **({"scope": scope.to_json()} if scope else {}),
            **({"reads": reads} if reads else {}),
            # the fleet's file allowances (issue 13.5): apply reads {file:} secrets in them
            **({"fileAllow": allow} if (allow := allow_entries(target_specs.values())) else {}),
        },
    )
    result_plan = make_plan(desired, actual, options)
    # what the policy, attachment and membership changes mean for the devices (engine/authz/delta.py), shown with
    # the other Needs-attention items; only plans that change an authorization input pay for it
    from engine.authz.principals import target_specs as authz_targets

    result_plan = permissions.annotate(result_plan, desired, actual, authz_targets(fleet))
    # open begins of an interrupted apply that this plan re-read and found nothing to change at: the apply of this
    # plan records them reconciled (engine/journal.py), and the warnings stop
    planned = {str(c.address) for c in result_plan.changes} | {str(b.address) for b in result_plan.blocked}
    settled = [
        [item["planId"], item["address"]]
        for item in open_changes
        if item["address"] not in planned
        and not result_plan.errored
        and not diags.has_errors
        and (item["address"] in read_addresses or read_key(item["address"]) in read_whole)
    ]
    if settled:
        result_plan = Plan(**{**result_plan.__dict__, "options": {**result_plan.options, "converged": settled}})
    done = {(p, a) for p, a in settled}
    for item in open_changes[:INTERRUPTED_LISTED]:
        diags.add(
            warning(
                f"an earlier apply (plan {item['planId']}) was interrupted while it was applying "
                f"{item['action']} {item['address']}; "
                + (
                    "this plan re-read it and it is converged (nothing to change); the next apply records "
                    "that and this warning stops"
                    if (item["planId"], item["address"]) in done
                    else "this plan re-reads the actual state and converges it"
                ),
                address=item["address"],
            )
        )
    if len(open_changes) > INTERRUPTED_LISTED:  # a killed bulk batch leaves thousands open: one line for the rest
        diags.add(
            warning(
                f"... and {len(open_changes) - INTERRUPTED_LISTED} more change(s) an earlier apply was "
                "applying when it was interrupted; this plan re-reads their actual state too",
                "`fleetctl journal` lists them all",
            )
        )
    merged = tuple(sorted(diags, key=lambda d: (d.address or "", d.summary))) + result_plan.diagnostics
    estimate = apply_estimate(
        apply_waves(list(result_plan.changes)),
        ctx.env,
        ctx.workers,
        [p.estimate_note for _, p in sorted(ctx.providers.items()) if hasattr(p, "estimate_note")],
    )
    result_plan = Plan(
        **{
            **result_plan.__dict__,
            "diagnostics": merged,
            "interrupted": tuple(interrupted(ctx.journal_path)),
            "options": {**result_plan.options, **({"estimate": estimate} if estimate else {})},
        }
    )
    stats = {"readSeconds": read_seconds, "providers": {f"{k[0]}/{k[1]}": p.stats() for k, p in ctx.providers.items()}}
    kept = snapshots.Snapshot(iso(ctx.now()), entries) if use is not None else None
    return PlanResult(result_plan, fleet, stats, kept)
