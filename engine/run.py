"""The commands' engine: load → read (providers, bulk) → plan (pure) → apply (journal), without printing.

The CLI calls these functions and renders what they return; tests call them directly. Providers are built
per Target only for the targets the fleet (or the plan) uses.
"""
from __future__ import annotations

import gc
import heapq
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import accounts, errors, incremental
from engine import journal as journals
from engine import snapshot as snapshots
from engine.clock import Clock, actor, clock_from_env, git_commit, iso
from engine.diagnostics import Diagnostics, FleetctlError, error, warning
from engine.journal import Journal, interrupted, interrupted_tasks
from engine.manifest import generators
from engine.manifest.confine import FilePolicy, allow_entries
from engine.manifest.core_kinds import unresolved_credentials
from engine.manifest.fleet import Fleet, load_fleet, resolve_secret_value
from engine.model import Action, ActualResource, Address, Change, DesiredResource
from engine.plan import permissions
from engine.plan.model import Plan
from engine.plan.planner import PlanOptions, converged
from engine.plan.planner import plan as make_plan
from engine.progress import SILENT, ProgressSink
from engine.providers.base import Provider, provider_for
from engine.ratelimit import apply_estimate

INTERRUPTED_LISTED = 20     # open changes of an interrupted apply named one by one in a plan's warnings
IDENTITY_FIELDS = {"aws.Certificate": "certificateId", "aws.CACertificate": "certificateId"}


@dataclass
class Context:
    """Everything a command needs from outside: environment, clock, journal path, provider overrides."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Clock | None = None
    journal_path: Path = Path(".fleetctl/journal.jsonl")
    provider_factory: Callable[..., Provider] | None = None
    workers: int = 8
    providers: dict[tuple[str, str], Provider] = field(default_factory=dict)
    progress: ProgressSink = SILENT        # where apply and the providers' reads report progress (engine/progress.py)

    def now(self):
        return (self.clock or clock_from_env(self.env))()


def provider_key(address: Address) -> tuple[str, str]:
    return (address.provider, address.target) if address.provider in ("aws", "azure") else (address.provider, "")


def _read_key(address: str) -> tuple[str, str] | None:
    try:
        return provider_key(Address.parse(address))
    except IndexError:
        return None


def get_provider(ctx: Context, key: tuple[str, str], fleet_targets: Mapping[str, Any]) -> Provider:
    if key not in ctx.providers:
        kind, target = key
        spec = fleet_targets.get(target)
        if kind in ("aws", "azure") and spec is None:
            raise FleetctlError(f"target '{target}' is not declared in the fleet")
        factory = ctx.provider_factory or provider_for
        provider = factory(kind, target, spec, ctx.env, fleet_targets=fleet_targets)
        if hasattr(provider, "progress"):      # providers that report their long reads (items read per kind)
            provider.progress = ctx.progress
        ctx.providers[key] = provider
    return ctx.providers[key]


def load(path: Path, ctx: Context, on_targets: Callable[[dict[str, Any]], None] | None = None) -> Fleet:
    fleet = load_fleet(path, ctx.env, on_targets=on_targets)
    if fleet.diagnostics.has_errors:
        raise FleetctlError(fleet.diagnostics.sorted())
    return fleet


def _identities(desired: list[DesiredResource]) -> list[list[str]]:
    return sorted([str(d.address), d.kind, d.spec[IDENTITY_FIELDS[d.kind]]] for d in desired
                  if d.kind in IDENTITY_FIELDS and d.spec.get(IDENTITY_FIELDS[d.kind]))


def _unavailable_targets(fleet: Fleet, ctx: Context, diags: Diagnostics) -> set[str]:
    """Targets marked `optional: true` whose credential references do not resolve: not planned, with a warning."""
    skipped: set[str] = set()
    files = FilePolicy.for_targets(fleet.root, [m.spec for m in fleet.targets().values()])   # fleet-wide allowances
    for name, manifest in sorted(fleet.targets().items()):
        missing = unresolved_credentials(manifest.spec, fleet.root, ctx.env, files) if manifest.spec.optional else []
        if missing:
            skipped.add(name)
            diags.add(warning(f"optional target '{name}' is not planned: {missing[0]}",
                              "its resources are neither read nor changed; set its credentials to plan it",
                              address=f"fleetctl/Target/{name}"))
    return skipped


@dataclass
class PlanResult:
    plan: Plan
    fleet: Fleet
    stats: dict[str, Any]
    snapshot: snapshots.Snapshot | None = None     # the actual state read, when the plan was asked to keep it


@dataclass(frozen=True)
class SnapshotUse:
    """Drift/plan with snapshots (engine/snapshot.py, engine/providers/aws/trail.py): start from `since` (None:
    no usable snapshot, `refused` says why) and keep what was read. `settings`: a trail.Settings."""

    since: snapshots.Snapshot | None = None
    refused: str | None = None
    settings: Any = None


def plan(path: Path, ctx: Context, *, targets: set[str] | None = None, prune: bool = False,
         changed_since: str | None = None, snapshot: SnapshotUse | None = None) -> PlanResult:
    """Read actual state in bulk for every target the fleet uses, diff, and order. Raises FleetctlError.

    `changed_since` (a git revision) limits the plan to the resources whose manifests changed since then and
    their dependants (engine/incremental.py); providers read only those. `snapshot`: start AWS reads from a
    snapshot (CloudTrail events since, engine/providers/aws/trail.py) and return the state read as a new one."""
    started_early: list[Any] = []      # providers whose reads `load` started (prefetch); stopped if left unread
    if snapshot is not None and changed_since is not None:
        raise FleetctlError(error("--changed-since cannot be combined with snapshots",
                                  "a scoped plan reads a few resources; a snapshot holds a whole read"))
    try:
        return _plan(path, ctx, targets, prune, changed_since, started_early, snapshot)
    finally:
        gc.unfreeze()
        for provider in started_early:
            provider.cancel_prefetch()


def _plan(path: Path, ctx: Context, targets: set[str] | None, prune: bool, changed_since: str | None,
          started_early: list[Any], use: SnapshotUse | None = None) -> PlanResult:
    def prefetch(specs: dict[str, Any]) -> None:
        """A whole-fleet read is bound by one page chain (AWS ListThings, 10 TPS): start it while the fleet loads."""
        if changed_since is not None:
            return
        for name, spec in sorted(specs.items()):
            if spec.aws is not None and not spec.optional and (targets is None or name in targets):
                try:
                    provider = get_provider(ctx, ("aws", name), specs)
                except (FleetctlError, errors.ProviderError):
                    continue          # the read says so, with the fleet's diagnostics
                if hasattr(provider, "prefetch"):
                    provider.prefetch()
                    started_early.append(provider)

    fleet = load(path, ctx, prefetch)     # (with the cyclic collector paused: engine/manifest/fleet.py)
    gc.freeze()       # the loaded fleet is long-lived: the collector's passes during the read skip its objects
    fleet.manifests = generators.release(fleet.manifests)    # a ThingSet's rows live on as desired resources
    target_specs = {name: m.spec for name, m in fleet.targets().items()}
    diags = Diagnostics()
    skipped = _unavailable_targets(fleet, ctx, diags)
    desired = [d for d in fleet.desired if (targets is None or d.address.target in targets or
               provider_key(d.address)[0] == "device") and provider_key(d.address)[1] not in skipped]
    scope, every = None, desired
    if changed_since is not None:
        scope = incremental.changed_since(fleet.root, changed_since, desired, ctx.env)
        desired = incremental.select(desired, scope)
    groups: dict[tuple[str, str], list[DesiredResource]] = {}
    for d in desired:
        groups.setdefault(provider_key(d.address), []).append(d)
    for name, spec in target_specs.items():    # every target is read whole: undeclared managed resources show
        kind = "aws" if spec.aws else "azure"
        if (targets is None or name in targets) and name not in skipped and scope is None:
            groups.setdefault((kind, name), [])
    for address in scope.removed if scope else ():
        if (targets is None or address.target in targets) and address.target not in skipped:
            groups.setdefault(provider_key(address), [])
    scoped = incremental.ScopedRead(scope.addresses, scope.previous) if scope else None
    prune_targets = {name for name, spec in target_specs.items() if spec.prune or prune}
    # the account (and role) each AWS Target acts in, asked before its read: an unusable role fails here, by name
    identities = accounts.identities([k[1] for k in groups if k[0] == "aws"],
                                     lambda name: get_provider(ctx, ("aws", name), target_specs), target_specs, diags)
    actual = []
    started = time.perf_counter()
    reads: list[dict[str, Any]] = []                          # what each incremental-capable read trusted
    entries: dict[str, snapshots.TargetSnapshot] = {}         # the next snapshot, per Target
    for key in sorted(groups):
        provider = get_provider(ctx, key, target_specs)
        try:
            if scoped:
                result = scoped.read(provider, [d for d in every if provider_key(d.address) == key], groups[key], key)
            elif use is not None and key[0] == "aws":
                from engine.providers.aws import trail
                now = ctx.now()
                entry = use.since.targets.get(key[1]) if use.since is not None else None
                result, trust, entries[key[1]] = trail.read_since(
                    provider, groups[key], entry, now, use.settings or trail.Settings(),
                    region=target_specs[key[1]].aws.region, refused=use.refused)
                if use.since is not None and use.since.path:
                    trust["snapshot"] = use.since.path
                reads.append(trust)
            else:
                now = ctx.now()
                result = provider.read(groups[key], prune=True)
                if use is not None:
                    entries[key[1] or key[0]] = snapshots.TargetSnapshot(
                        key[1] or key[0], key[0], iso(now), iso(now),
                        actual=tuple(snapshots.actual_json(a) for a in result.actual))
        except errors.ProviderError as exc:
            raise FleetctlError(error(f"reading {key[0]} target '{key[1]}' failed: {exc}",
                                      "check the Target's credentials and endpoint")) from None
        actual.extend(result.actual)
        diags.extend(result.diagnostics)
    read_seconds = time.perf_counter() - started
    open_changes = interrupted(ctx.journal_path)
    read_whole = set(groups) if scope is None else set()
    read_addresses = ({str(d.address) for d in desired} | {str(a.address) for a in actual}) if open_changes else set()
    for task in interrupted_tasks(ctx.journal_path):     # AWS bulk registration, IoT Hub import jobs
        diags.add(warning(f"an earlier apply (plan {task['planId']}) was interrupted while "
                          f"{task.get('task') or 'AWS bulk registration task'} {task['taskId']} ran "
                          f"({task['changes']} change(s)"
                          + (f", input {task['input']}" if task.get("input") else "") + "); it goes on without "
                          "fleetctl: this plan shows what it had done when read, and the next apply waits for it to "
                          "end before it starts one of its own"))
    options = PlanOptions(prune_targets=frozenset(prune_targets), git_commit=git_commit(fleet.root, ctx.env),
                          created_at=iso(ctx.now()), desired_digest=fleet.digest,
                          extra={"identities": _identities(fleet.desired),
                                 "targets": sorted(k[1] for k in groups if k[1]),
                                 # `--target`: what was asked for, also when an optional Target was skipped
                                 **({"requestedTargets": sorted(targets)} if targets else {}),
                                 # the Targets' settings (references, never secret values): apply PLANFILE
                                 # needs no fleet load to reach them
                                 "targetSpecs": {name: target_specs[name].model_dump(mode="json", exclude_none=True)
                                                 for name in sorted({k[1] for k in groups if k[1]} & set(target_specs))},
                                 **({"accounts": identities} if identities else {}),
                                 **({"scope": scope.to_json()} if scope else {}),
                                 **({"reads": reads} if reads else {}),
                                 # the fleet's file allowances (issue 13.5): apply reads {file:} secrets in them
                                 **({"fileAllow": allow} if (allow := allow_entries(target_specs.values())) else {})})
    result_plan = make_plan(desired, actual, options)
    # what the policy, attachment and membership changes mean for the devices (engine/authz/delta.py), shown with
    # the other Needs-attention items; only plans that change an authorization input pay for it
    from engine.authz.principals import target_specs as authz_targets
    result_plan = permissions.annotate(result_plan, desired, actual, authz_targets(fleet))
    # open begins of an interrupted apply that this plan re-read and found nothing to change at: the apply of this
    # plan records them reconciled (engine/journal.py), and the warnings stop
    planned = {str(c.address) for c in result_plan.changes} | {str(b.address) for b in result_plan.blocked}
    settled = [[item["planId"], item["address"]] for item in open_changes
               if item["address"] not in planned and not result_plan.errored and not diags.has_errors
               and (item["address"] in read_addresses or _read_key(item["address"]) in read_whole)]
    if settled:
        result_plan = Plan(**{**result_plan.__dict__, "options": {**result_plan.options, "converged": settled}})
    done = {(p, a) for p, a in settled}
    for item in open_changes[:INTERRUPTED_LISTED]:
        diags.add(warning(f"an earlier apply (plan {item['planId']}) was interrupted while it was applying "
                          f"{item['action']} {item['address']}; "
                          + ("this plan re-read it and it is converged (nothing to change); the next apply records "
                             "that and this warning stops" if (item["planId"], item["address"]) in done else
                             "this plan re-reads the actual state and converges it"), address=item["address"]))
    if len(open_changes) > INTERRUPTED_LISTED:     # a killed bulk batch leaves thousands open: one line for the rest
        diags.add(warning(f"... and {len(open_changes) - INTERRUPTED_LISTED} more change(s) an earlier apply was "
                          "applying when it was interrupted; this plan re-reads their actual state too",
                          "`fleetctl journal` lists them all"))
    merged = tuple(sorted(diags, key=lambda d: (d.address or "", d.summary))) + result_plan.diagnostics
    estimate = apply_estimate(_levels(list(result_plan.changes)), ctx.env, ctx.workers,
                              [p.estimate_note for _, p in sorted(ctx.providers.items()) if hasattr(p, "estimate_note")])
    result_plan = Plan(**{**result_plan.__dict__, "diagnostics": merged,
                          "interrupted": tuple(interrupted(ctx.journal_path)),
                          "options": {**result_plan.options, **({"estimate": estimate} if estimate else {})}})
    stats = {"readSeconds": read_seconds, "providers": {f"{k[0]}/{k[1]}": p.stats() for k, p in ctx.providers.items()}}
    kept = snapshots.Snapshot(iso(ctx.now()), entries) if use is not None else None
    return PlanResult(result_plan, fleet, stats, kept)


# ---------------------------------------------------------------------------------------------- apply
@dataclass
class ApplyReport:
    plan_id: str
    applied: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    already_applied: str = ""          # why nothing was done: the plan was applied before (the sentence to print)
    secret_files: list[str] = field(default_factory=list)   # artifacts written that hold secrets (mode 0600)
    reconciled: int = 0                # open changes of interrupted applies this apply recorded as converged

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


class StalePlan(FleetctlError):
    pass


class PlanNotApplicable(FleetctlError):
    """The plan ended in error (an error diagnostic, or a difference no plan can carry out): never applied."""


def _stubs(plan: Plan) -> dict[tuple[str, str], list[DesiredResource]]:
    """Minimal desired resources to re-read exactly what the plan was made against."""
    out: dict[tuple[str, str], list[DesiredResource]] = {}
    seen: set[Address] = set()
    for c in plan.changes:
        if c.action is not Action.DELETE:
            out.setdefault(provider_key(c.address), []).append(
                DesiredResource(c.address, c.kind, c.desired, inputs=c.inputs))
            seen.add(c.address)
        else:
            out.setdefault(provider_key(c.address), [])
    for address, kind, identity in plan.options.get("identities", []):
        addr = Address.parse(address)
        if addr not in seen and provider_key(addr) in out:
            out[provider_key(addr)].append(DesiredResource(addr, kind, {IDENTITY_FIELDS[kind]: identity}))
    return out


@dataclass
class StaleCheck:
    """What apply's re-read found: `stale` changes whose actual resource no longer has the planned fingerprint,
    and among them those `converged` to exactly what the plan would have made them (the plan was applied
    already, e.g. by a CI run whose journal is not on this machine)."""

    stale: list[str] = field(default_factory=list)
    converged: list[str] = field(default_factory=list)
    changes: int = 0

    @property
    def already_applied(self) -> bool:
        """Every change of the plan is stale because it is already in place: nothing is left to do."""
        return bool(self.stale) and len(self.converged) == len(self.stale) == self.changes


def check_stale(plan: Plan, ctx: Context, target_specs: Mapping[str, Any]) -> list[str]:
    """Addresses whose actual resource no longer has the fingerprint the plan recorded."""
    return stale_check(plan, ctx, target_specs).stale


def stale_check(plan: Plan, ctx: Context, target_specs: Mapping[str, Any]) -> StaleCheck:
    """Re-read exactly what the plan was made against; a stale change is also checked against the plan's own
    desired state (converged: the world already is what the plan would make it)."""
    result = StaleCheck(changes=len(plan.changes))
    for key, stubs in sorted(_stubs(plan).items()):
        provider = get_provider(ctx, key, target_specs)
        has_deletes = any(c.action is Action.DELETE and provider_key(c.address) == key for c in plan.changes)
        if hasattr(provider, "read_scoped"):    # exactly the planned addresses, by describe or list, by cost
            addresses = [c.address for c in plan.changes if provider_key(c.address) == key]
            actual = {a.address: a for a in provider.read_scoped(stubs, addresses).actual}
        else:
            actual = {a.address: a for a in provider.read(stubs, prune=has_deletes).actual}
        for c in plan.changes:
            if provider_key(c.address) != key:
                continue
            a: ActualResource | None = actual.get(c.address)
            now = a.fingerprint if a is not None else "absent"
            if now != c.fingerprint:
                result.stale.append(str(c.address))
                if converged(c, a):
                    result.converged.append(str(c.address))
    return result


def _levels(changes: list[Change]) -> list[list[Change]]:
    """Waves of changes that may run concurrently: dependencies in earlier waves; deletes one by one last."""
    level: dict[Address, int] = {}
    forward: list[list[Change]] = []
    deletes: list[list[Change]] = []
    for c in changes:
        if c.action is Action.DELETE:
            deletes.append([c])
            continue
        lv = 1 + max([level[d] for d in c.depends_on if d in level] or [-1])
        level[c.address] = lv
        while len(forward) <= lv:
            forward.append([])
        forward[lv].append(c)
    return forward + deletes


def _batched(wave: list[Change], ctx: Context, target_specs: Mapping[str, Any]) -> list[Change | list[Change]]:
    """A wave as units of work: the batches a provider offers to carry out in one call (`batches(changes)`, e.g.
    Azure bulk device creates), then every other change on its own."""
    by_key: dict[tuple[str, str], list[Change]] = {}
    for c in wave:
        by_key.setdefault(provider_key(c.address), []).append(c)
    units: list[Change | list[Change]] = []
    taken: set[Address] = set()
    for key, changes in sorted(by_key.items()):
        batches = getattr(get_provider(ctx, key, target_specs), "batches", None)
        for batch in (batches(changes) if batches else []):
            units.append(batch)
            taken.update(c.address for c in batch)
    return units + [c for c in wave if c.address not in taken]


Unit = Change | list[Change]


def run_dag(waves: list[list[Unit]], fn: Callable[[Unit], None], workers: int) -> None:
    """Run units of work (a change, or a batch a provider carries out in one call) as soon as the units they
    depend on have ended, at most `workers` at a time: not wave after wave. A thing whose certificate is
    registered is created while the next certificates are still being registered, so a 10 TPS certificate quota
    and a 100 TPS thing quota overlap instead of adding up (research/quotas.md §8.2). Ready units of later
    waves go first (finish what is started); `workers <= 1` runs them wave after wave."""
    units = [(w, i, u) for w, wave in enumerate(waves) for i, u in enumerate(wave)]
    if workers <= 1 or len(units) <= 1:
        for _, _, u in units:
            fn(u)
        return
    owner = {c.address: n for n, (_, _, u) in enumerate(units) for c in (u if isinstance(u, list) else [u])}
    waiting: list[int] = []
    dependents: dict[int, list[int]] = {}
    for n, (_, _, u) in enumerate(units):
        deps = {owner[d] for c in (u if isinstance(u, list) else [u]) for d in c.depends_on if d in owner} - {n}
        waiting.append(len(deps))
        for d in deps:
            dependents.setdefault(d, []).append(n)
    ready = [(-w, i, n) for n, (w, i, _) in enumerate(units) if waiting[n] == 0]
    heapq.heapify(ready)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: dict[Future[None], int] = {}
        while ready or running:
            while ready and len(running) < workers:
                n = heapq.heappop(ready)[2]
                running[pool.submit(fn, units[n][2])] = n
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                n = running.pop(future)
                future.result()            # `fn` reports a change's failure itself; anything else is a bug
                for m in dependents.get(n, ()):
                    waiting[m] -= 1
                    if waiting[m] == 0:
                        heapq.heappush(ready, (-units[m][0], units[m][1], m))


def refuse_errored(plan: Plan) -> None:
    """Raise PlanNotApplicable for a plan that ended in error (a plan file marked failed, or one whose
    diagnostics or blocked differences say so): apply never carries out part of a failed plan."""
    if not plan.errored:
        return
    why = list(dict.fromkeys(d.summary for d in plan.errors)) + [f"{b.address}: {b.reason}" for b in plan.blocked]
    raise PlanNotApplicable([error(f"plan {plan.plan_id} ended in error and cannot be applied",
                                   (f"{len(plan.errors)} error(s), {len(plan.blocked)} difference(s) that cannot be "
                                    "planned" + (": " + "; ".join(why) if why else "") + ". Resolve them and re-run "
                                    "plan."))])


def _progress_task(ctx: Context, changes: list[Change], phase: str, unit: str) -> Any:
    """A progress task of an apply phase (creates/updates/replaces as one dependency graph; the deletes, one at a
    time, last); a phase without changes reports nothing."""
    return ctx.progress.task(phase, len(changes), unit=unit, failures=True) if changes else SILENT.task(phase)


def apply(plan: Plan, ctx: Context, fleet_root: Path, target_specs: Mapping[str, Any],
          *, check: bool = True, journal_check: bool = False) -> ApplyReport:
    """Apply exactly `plan`: refuse a plan that ended in error, refuse it when stale, journal every change and
    mutating call, skip dependants of failures, retry only throttling/transient errors (in the clients). Never
    re-diffs.

    With `journal_check` (a saved plan file) a plan the journal shows applied to its end is not applied again,
    and nothing is read: the report's `already_applied` says when and by which entry. Without that journal (a
    CI runner), a plan whose every change is stale because the actual state already is what the plan makes it
    is reported already applied too; a genuinely stale plan is refused."""
    refuse_errored(plan)
    if journal_check:
        done = journals.applied(ctx.journal_path, plan.plan_id)
        if done is not None:
            return ApplyReport(plan.plan_id, already_applied=(
                f"plan {plan.plan_id} was applied at {done.get('ts')} by journal entry {ctx.journal_path}:"
                f"{done['line']} ({done.get('applied', 0)} change(s) applied); nothing to do"))
    # before any read: the plan's Targets must act in the accounts the plan was made for (engine/accounts.py)
    acting = accounts.check(plan.options.get("accounts", {}),
                            lambda name: get_provider(ctx, ("aws", name), target_specs), target_specs, plan.plan_id)
    if check:
        checked = stale_check(plan, ctx, target_specs)
        if checked.already_applied:
            return ApplyReport(plan.plan_id, already_applied=(
                f"plan {plan.plan_id} is already applied (the actual state already matches this plan: "
                f"{len(checked.converged)} change(s) in place); nothing to do"))
        if checked.stale:
            stale = checked.stale
            done = (f"; {len(checked.converged)} of them already match this plan (was it applied in part?)"
                    if checked.converged else "")
            raise StalePlan([error("plan is stale, re-run plan",
                                   "the actual state changed since the plan was made: " + ", ".join(stale) + done)])
    open_before = interrupted(ctx.journal_path)
    journal = Journal(ctx.journal_path, ctx.clock or clock_from_env(ctx.env), plan.plan_id, plan.git_commit,
                      actor(ctx.env))
    report = ApplyReport(plan.plan_id)
    failed: set[Address] = set()
    failed_targets: set[tuple[str, str]] = set()
    started = time.perf_counter()
    journal.write("apply-start", changes=len(plan.changes),    # the review it came from (set by apply.yml)
                  pullRequest=ctx.env.get("FLEETCTL_PULL_REQUEST") or None, runUrl=ctx.env.get("FLEETCTL_RUN_URL") or None,
                  **({"accounts": acting} if acting else {}))
    tasks = {False: _progress_task(ctx, [c for c in plan.changes if c.action is not Action.DELETE], "apply", "changes"),
             True: SILENT.task("delete")}       # opened when the deletes start

    def ended(change: Change, failed: bool = False) -> None:
        tasks[change.action is Action.DELETE].advance(1, failed=int(failed))

    files = FilePolicy.of(fleet_root, [*allow_entries(target_specs.values()),     # the fence for {file:} secrets
                                       *plan.options.get("fileAllow", ())])

    def prepare(change: Change) -> dict[str, str] | None:
        """The change's secret values, or None when it is skipped (a dependency failed) or a secret is missing."""
        key = provider_key(change.address)
        if any(d in failed for d in change.depends_on) or (change.action is Action.DELETE and key in failed_targets):
            failed.add(change.address)
            report.skipped.append(str(change.address))
            journal.write("skipped", address=str(change.address), action=change.action.value,
                          reason="a change it depends on failed")
            ended(change)
            return None
        secrets: dict[str, str] = {}
        for name, ref in change.secrets.items():
            value = resolve_secret_value(ref, fleet_root, ctx.env, files)
            if isinstance(value, Exception):
                failed.add(change.address)
                failed_targets.add(key)
                report.failed.append((str(change.address), str(value)))
                journal.write("failure", address=str(change.address), action=change.action.value, error=str(value))
                ended(change, failed=True)
                return None
            secrets[name] = value
        return secrets

    def run_batch(batch: list[Change]) -> None:
        """Changes one provider call carries out together (Azure bulk device creates): a `begin` for each before
        the call, a `success`/`failure` for each after it."""
        ready = [(c, s) for c in batch if (s := prepare(c)) is not None]
        if not ready:
            return
        provider = get_provider(ctx, provider_key(ready[0][0].address), target_specs)
        for c, _ in ready:
            journal.write("begin", address=str(c.address), action=c.action.value)

        def hook(op: str, phase: str, request_id: str | None, exc: Exception | None, **extra: Any) -> None:
            # the batch's own requests and events (e.g. the AWS registration task's id): entries with `op`
            journal.write(phase, op=op, requestId=request_id, batch=len(ready),
                          error=(f"{getattr(exc, 'code', '') or type(exc).__name__}" if exc else None), **extra)

        set_hook = getattr(provider, "set_hook", lambda _: None)
        set_hook(hook)
        try:
            outcomes = provider.apply_batch([c for c, _ in ready], [s for _, s in ready])  # type: ignore[attr-defined]
        except errors.ProviderError as exc:
            outcomes = [exc] * len(ready)
        finally:
            set_hook(None)
        for (c, _), exc in zip(ready, outcomes):
            key = provider_key(c.address)
            if exc is None:
                report.applied.append(str(c.address))
                journal.write("success", address=str(c.address), action=c.action.value, batch=len(ready))
                ended(c)
                continue
            failed.add(c.address)
            failed_targets.add(key)
            report.failed.append((str(c.address), str(exc)))
            journal.write("failure", address=str(c.address), action=c.action.value, error=str(exc),
                          batch=len(ready))
            ended(c, failed=True)

    def run(change: Change) -> None:
        secrets = prepare(change)
        if secrets is None:
            return
        key = provider_key(change.address)
        provider = get_provider(ctx, key, target_specs)
        address = str(change.address)
        journal.write("begin", address=address, action=change.action.value)
        request_ids: list[str] = []

        def hook(op: str, phase: str, request_id: str | None, exc: Exception | None, **extra: Any) -> None:
            # `extra`: what the provider knows of the call's context (AWS: the account and role it acted in)
            if request_id:
                request_ids.append(request_id)
            journal.write(phase, address=address, op=op, requestId=request_id,
                          error=(f"{getattr(exc, 'code', '') or type(exc).__name__}" if exc else None), **extra)

        provider.set_hook(hook)
        try:
            provider.apply(change, secrets)
        except errors.ProviderError as exc:
            failed.add(change.address)
            failed_targets.add(key)
            report.failed.append((address, str(exc)))
            journal.write("failure", address=address, action=change.action.value, error=str(exc),
                          requestIds=request_ids)
            ended(change, failed=True)
            return
        finally:
            provider.set_hook(None)
        report.applied.append(address)
        journal.write("success", address=address, action=change.action.value, requestIds=request_ids)
        ended(change)

    def unit(work: Change | list[Change]) -> None:
        if isinstance(work, list):
            run_batch(work)
        else:
            run(work)

    waves = _levels(list(plan.changes))
    forward = [w for w in waves if w[0].action is not Action.DELETE]
    try:
        run_dag([_batched(wave, ctx, target_specs) for wave in forward], unit, ctx.workers)
        tasks[False].close()
        tasks[True] = _progress_task(ctx, [w[0] for w in waves[len(forward):]], "delete", "deletes")
        for wave in waves[len(forward):]:       # deletes: one at a time, after everything else
            for work in _batched(wave, ctx, target_specs):
                unit(work)
    finally:
        for task in tasks.values():
            task.close()
    report.seconds = time.perf_counter() - started
    report.reconciled = _write_reconciled(journal, open_before, plan, set(report.applied))
    journal.write("apply-end", applied=len(report.applied), failed=len(report.failed), skipped=len(report.skipped))
    journal.close()
    report.stats = {f"{k[0]}/{k[1]}": p.stats() for k, p in ctx.providers.items()}
    report.secret_files = sorted(str(path) for _, p in sorted(ctx.providers.items())
                                 for path in getattr(p, "secret_artifacts", lambda: [])())
    return report


def _write_reconciled(journal: Journal, open_before: list[dict[str, Any]], plan: Plan, applied: set[str]) -> int:
    """`reconciled` entries for the open begins of interrupted applies that this apply converged: it succeeded at
    the address, or its plan re-read the address and found nothing to change (`options.converged`). One entry
    per interrupted plan (a killed bulk batch leaves thousands open: one fsync, not thousands)."""
    settled = {(p, a) for p, a in plan.options.get("converged", [])}
    by_plan: dict[str, list[str]] = {}
    for item in open_before:
        if item["address"] in applied or (item["planId"], item["address"]) in settled:
            by_plan.setdefault(item["planId"], []).append(item["address"])
    for begun, addresses in sorted(by_plan.items()):
        journal.write("reconciled", reconciles=begun, addresses=sorted(addresses),
                      how="converged by a later apply (re-read, nothing left to change, or applied again)")
    return sum(len(a) for a in by_plan.values())


def reconcile(plan: Plan, ctx: Context) -> int:
    """For an apply whose plan has no change: record the interrupted changes it found converged. Returns how
    many were recorded (0 writes nothing)."""
    refuse_errored(plan)
    open_before = interrupted(ctx.journal_path)
    if not open_before or not plan.options.get("converged"):
        return 0
    journal = Journal(ctx.journal_path, ctx.clock or clock_from_env(ctx.env), plan.plan_id, plan.git_commit,
                      actor(ctx.env))
    try:
        return _write_reconciled(journal, open_before, plan, set())
    finally:
        journal.close()
