"""`apply`: carry out exactly a reviewed plan. Refuses a plan that is stale, made for another account, errored or
already applied; runs the changes in dependency waves (a bounded DAG of workers, provider batches as one unit),
journals every change, writes the artifacts that carry secrets (0600), and records interrupted changes that later
plans found converged (`reconcile`). Never prints."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import accounts, errors
from engine import journal as journals
from engine.clock import actor, clock_from_env
from engine.diagnostics import FleetctlError, error
from engine.graph import apply_waves
from engine.journal import Journal, interrupted
from engine.manifest.confine import FilePolicy, allow_entries
from engine.manifest.secrets import resolve_secret_value
from engine.model import Action, ActualResource, Address, Change, DesiredResource
from engine.plan.model import Plan
from engine.plan.planner import converged
from engine.progress import SILENT
from engine.run.context import IDENTITY_FIELDS, Context, get_provider, provider_key


@dataclass
class ApplyReport:
    plan_id: str
    applied: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    already_applied: str = ""  # why nothing was done: the plan was applied before (the sentence to print)
    secret_files: list[str] = field(default_factory=list)  # artifacts written that hold secrets (mode 0600)
    reconciled: int = 0  # open changes of interrupted applies this apply recorded as converged

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
                DesiredResource(c.address, c.kind, c.desired, inputs=c.inputs)
            )
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
        if hasattr(provider, "read_scoped"):  # exactly the planned addresses, by describe or list, by cost
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
        for batch in batches(changes) if batches else []:
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
                future.result()  # `fn` reports a change's failure itself; anything else is a bug
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
    raise PlanNotApplicable(
        [
            error(
                f"plan {plan.plan_id} ended in error and cannot be applied",
                (
                    f"{len(plan.errors)} error(s), {len(plan.blocked)} difference(s) that cannot be "
                    "planned" + (": " + "; ".join(why) if why else "") + ". Resolve them and re-run "
                    "plan."
                ),
            )
        ]
    )


def _progress_task(ctx: Context, changes: list[Change], phase: str, unit: str) -> Any:
    """A progress task of an apply phase (creates/updates/replaces as one dependency graph; the deletes, one at a
    time, last); a phase without changes reports nothing."""
    return ctx.progress.task(phase, len(changes), unit=unit, failures=True) if changes else SILENT.task(phase)


def apply(
    plan: Plan,
    ctx: Context,
    fleet_root: Path,
    target_specs: Mapping[str, Any],
    *,
    check: bool = True,
    journal_check: bool = False,
) -> ApplyReport:
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
            return ApplyReport(
                plan.plan_id,
                already_applied=(
                    f"plan {plan.plan_id} was applied at {done.get('ts')} by journal entry {ctx.journal_path}:"
                    f"{done['line']} ({done.get('applied', 0)} change(s) applied); nothing to do"
                ),
            )
    # before any read: the plan's Targets must act in the accounts the plan was made for (engine/accounts.py)
    acting = accounts.check(
        plan.options.get("accounts", {}),
        lambda name: get_provider(ctx, ("aws", name), target_specs),
        target_specs,
        plan.plan_id,
    )
    if check:
        checked = stale_check(plan, ctx, target_specs)
        if checked.already_applied:
            return ApplyReport(
                plan.plan_id,
                already_applied=(
                    f"plan {plan.plan_id} is already applied (the actual state already matches this plan: "
                    f"{len(checked.converged)} change(s) in place); nothing to do"
                ),
            )
        if checked.stale:
            in_part = (
                f"; {len(checked.converged)} of them already match this plan (was it applied in part?)"
                if checked.converged
                else ""
            )
            raise StalePlan(
                [
                    error(
                        "plan is stale, re-run plan",
                        "the actual state changed since the plan was made: " + ", ".join(checked.stale) + in_part,
                    )
                ]
            )
    open_before = interrupted(ctx.journal_path)
    journal = Journal(
        ctx.journal_path, ctx.clock or clock_from_env(ctx.env), plan.plan_id, plan.git_commit, actor(ctx.env)
    )
    report = ApplyReport(plan.plan_id)
    failed: set[Address] = set()
    failed_targets: set[tuple[str, str]] = set()
    started = time.perf_counter()
    journal.write(
        "apply-start",
        changes=len(plan.changes),  # the review it came from (set by apply.yml)
        pullRequest=ctx.env.get("FLEETCTL_PULL_REQUEST") or None,
        runUrl=ctx.env.get("FLEETCTL_RUN_URL") or None,
        **({"accounts": acting} if acting else {}),
    )
    tasks = {
        False: _progress_task(ctx, [c for c in plan.changes if c.action is not Action.DELETE], "apply", "changes"),
        True: SILENT.task("delete"),
    }  # opened when the deletes start

    def ended(change: Change, failed: bool = False) -> None:
        tasks[change.action is Action.DELETE].advance(1, failed=int(failed))

    files = FilePolicy.of(
        fleet_root,
        [
            *allow_entries(target_specs.values()),  # the fence for {file:} secrets
            *plan.options.get("fileAllow", ()),
        ],
    )

    def prepare(change: Change) -> dict[str, str] | None:
        """The change's secret values, or None when it is skipped (a dependency failed) or a secret is missing."""
        key = provider_key(change.address)
        if any(d in failed for d in change.depends_on) or (change.action is Action.DELETE and key in failed_targets):
            failed.add(change.address)
            report.skipped.append(str(change.address))
            journal.write(
                "skipped",
                address=str(change.address),
                action=change.action.value,
                reason="a change it depends on failed",
            )
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
            journal.write(
                phase,
                op=op,
                requestId=request_id,
                batch=len(ready),
                error=(f"{getattr(exc, 'code', '') or type(exc).__name__}" if exc else None),
                **extra,
            )

        set_hook = getattr(provider, "set_hook", lambda _: None)
        set_hook(hook)
        try:
            outcomes = provider.apply_batch([c for c, _ in ready], [s for _, s in ready])  # type: ignore[attr-defined]
        except errors.ProviderError as exc:
            outcomes = [exc] * len(ready)
        finally:
            set_hook(None)
        for (c, _), outcome in zip(ready, outcomes, strict=True):
            key = provider_key(c.address)
            if outcome is None:
                report.applied.append(str(c.address))
                journal.write("success", address=str(c.address), action=c.action.value, batch=len(ready))
                ended(c)
                continue
            failed.add(c.address)
            failed_targets.add(key)
            report.failed.append((str(c.address), str(outcome)))
            journal.write(
                "failure", address=str(c.address), action=c.action.value, error=str(outcome), batch=len(ready)
            )
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
            journal.write(
                phase,
                address=address,
                op=op,
                requestId=request_id,
                error=(f"{getattr(exc, 'code', '') or type(exc).__name__}" if exc else None),
                **extra,
            )

        provider.set_hook(hook)
        try:
            provider.apply(change, secrets)
        except errors.ProviderError as exc:
            failed.add(change.address)
            failed_targets.add(key)
            report.failed.append((address, str(exc)))
            journal.write(
                "failure", address=address, action=change.action.value, error=str(exc), requestIds=request_ids
            )
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

    waves = apply_waves(list(plan.changes))
    forward = [w for w in waves if w[0].action is not Action.DELETE]
    try:
        run_dag([_batched(wave, ctx, target_specs) for wave in forward], unit, ctx.workers)
        tasks[False].close()
        tasks[True] = _progress_task(ctx, [w[0] for w in waves[len(forward) :]], "delete", "deletes")
        for wave in waves[len(forward) :]:  # deletes: one at a time, after everything else
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
    report.secret_files = sorted(
        str(path) for _, p in sorted(ctx.providers.items()) for path in getattr(p, "secret_artifacts", lambda: [])()
    )
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
        journal.write(
            "reconciled",
            reconciles=begun,
            addresses=sorted(addresses),
            how="converged by a later apply (re-read, nothing left to change, or applied again)",
        )
    return sum(len(a) for a in by_plan.values())


def reconcile(plan: Plan, ctx: Context) -> int:
    """For an apply whose plan has no change: record the interrupted changes it found converged. Returns how
    many were recorded (0 writes nothing)."""
    refuse_errored(plan)
    open_before = interrupted(ctx.journal_path)
    if not open_before or not plan.options.get("converged"):
        return 0
    journal = Journal(
        ctx.journal_path, ctx.clock or clock_from_env(ctx.env), plan.plan_id, plan.git_commit, actor(ctx.env)
    )
    try:
        return _write_reconciled(journal, open_before, plan, set())
    finally:
        journal.close()
