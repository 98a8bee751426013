"""The commands' engine: load → read (providers, bulk) → plan (pure) → apply (journal), without printing.

The CLI calls these functions and renders what they return; tests call them directly. Providers are built
per Target only for the targets the fleet (or the plan) uses.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from engine import errors
from engine.clock import Clock, actor, clock_from_env, git_commit, iso
from engine.diagnostics import Diagnostic, Diagnostics, FleetctlError, error, warning
from engine.journal import Journal, interrupted
from engine.manifest.fleet import Fleet, load_fleet, resolve_secret_value
from engine.model import Action, Address, Change, DesiredResource
from engine.plan.model import Plan
from engine.plan.planner import PlanOptions, plan as make_plan
from engine.providers.base import Provider, provider_for

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

    def now(self):
        return (self.clock or clock_from_env(self.env))()


def provider_key(address: Address) -> tuple[str, str]:
    return (address.provider, address.target) if address.provider in ("aws", "azure") else (address.provider, "")


def get_provider(ctx: Context, key: tuple[str, str], fleet_targets: Mapping[str, Any]) -> Provider:
    if key not in ctx.providers:
        kind, target = key
        spec = fleet_targets.get(target)
        if kind in ("aws", "azure") and spec is None:
            raise FleetctlError(f"target '{target}' is not declared in the fleet")
        factory = ctx.provider_factory or provider_for
        ctx.providers[key] = factory(kind, target, spec, ctx.env, fleet_targets=fleet_targets)
    return ctx.providers[key]


def load(path: Path, ctx: Context) -> Fleet:
    fleet = load_fleet(path, ctx.env)
    if fleet.diagnostics.has_errors:
        raise FleetctlError(fleet.diagnostics.sorted())
    return fleet


def _identities(desired: list[DesiredResource]) -> list[list[str]]:
    return sorted([str(d.address), d.kind, d.spec[IDENTITY_FIELDS[d.kind]]] for d in desired
                  if d.kind in IDENTITY_FIELDS and d.spec.get(IDENTITY_FIELDS[d.kind]))


@dataclass
class PlanResult:
    plan: Plan
    fleet: Fleet
    stats: dict[str, Any]


def plan(path: Path, ctx: Context, *, targets: set[str] | None = None, prune: bool = False) -> PlanResult:
    """Read actual state in bulk for every target the fleet uses, diff, and order. Raises FleetctlError."""
    fleet = load(path, ctx)
    target_specs = {name: m.spec for name, m in fleet.targets().items()}
    desired = [d for d in fleet.desired if targets is None or d.address.target in targets or
               provider_key(d.address)[0] == "device"]
    groups: dict[tuple[str, str], list[DesiredResource]] = {}
    for d in desired:
        groups.setdefault(provider_key(d.address), []).append(d)
    for name, spec in target_specs.items():    # every target is read whole: undeclared managed resources show
        kind = "aws" if spec.aws else "azure"
        if targets is None or name in targets:
            groups.setdefault((kind, name), [])
    prune_targets = {name for name, spec in target_specs.items() if spec.prune or prune}
    diags = Diagnostics()
    actual = []
    started = time.perf_counter()
    for key in sorted(groups):
        provider = get_provider(ctx, key, target_specs)
        try:
            result = provider.read(groups[key], prune=True)
        except errors.ProviderError as exc:
            raise FleetctlError(error(f"reading {key[0]} target '{key[1]}' failed: {exc}",
                                      "check the Target's credentials and endpoint")) from None
        actual.extend(result.actual)
        diags.extend(result.diagnostics)
    read_seconds = time.perf_counter() - started
    for item in interrupted(ctx.journal_path):
        diags.add(warning(f"an earlier apply (plan {item['planId']}) was interrupted while it was applying "
                          f"{item['action']} {item['address']}; this plan re-reads the actual state and "
                          "converges it", address=item["address"]))
    options = PlanOptions(prune_targets=frozenset(prune_targets), git_commit=git_commit(fleet.root, ctx.env),
                          created_at=iso(ctx.now()), desired_digest=fleet.digest,
                          extra={"identities": _identities(fleet.desired),
                                 "targets": sorted(k[1] for k in groups if k[1])})
    result_plan = make_plan(desired, actual, options)
    merged = tuple(sorted(diags, key=lambda d: (d.address or "", d.summary))) + result_plan.diagnostics
    result_plan = Plan(**{**result_plan.__dict__, "diagnostics": merged,
                          "interrupted": tuple(interrupted(ctx.journal_path))})
    stats = {"readSeconds": read_seconds, "providers": {f"{k[0]}/{k[1]}": p.stats() for k, p in ctx.providers.items()}}
    return PlanResult(result_plan, fleet, stats)


# ---------------------------------------------------------------------------------------------- apply
@dataclass
class ApplyReport:
    plan_id: str
    applied: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


class StalePlan(FleetctlError):
    pass


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


def check_stale(plan: Plan, ctx: Context, target_specs: Mapping[str, Any]) -> list[str]:
    """Addresses whose actual resource no longer has the fingerprint the plan recorded."""
    stale: list[str] = []
    for key, stubs in sorted(_stubs(plan).items()):
        provider = get_provider(ctx, key, target_specs)
        has_deletes = any(c.action is Action.DELETE and provider_key(c.address) == key for c in plan.changes)
        actual = {a.address: a for a in provider.read(stubs, prune=has_deletes).actual}
        for c in plan.changes:
            if provider_key(c.address) != key:
                continue
            a = actual.get(c.address)
            now = a.fingerprint if a is not None else "absent"
            if now != c.fingerprint:
                stale.append(str(c.address))
    return stale


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


def apply(plan: Plan, ctx: Context, fleet_root: Path, target_specs: Mapping[str, Any],
          *, check: bool = True) -> ApplyReport:
    """Apply exactly `plan`: refuse it when stale, journal every change and mutating call, skip dependants
    of failures, retry only throttling/transient errors (in the clients). Never re-diffs."""
    if check:
        stale = check_stale(plan, ctx, target_specs)
        if stale:
            raise StalePlan([error("plan is stale, re-run plan",
                                   "the actual state changed since the plan was made: " + ", ".join(stale[:20])
                                   + (f" and {len(stale) - 20} more" if len(stale) > 20 else ""))])
    journal = Journal(ctx.journal_path, ctx.clock or clock_from_env(ctx.env), plan.plan_id, plan.git_commit,
                      actor(ctx.env))
    report = ApplyReport(plan.plan_id)
    failed: set[Address] = set()
    failed_targets: set[tuple[str, str]] = set()
    started = time.perf_counter()
    journal.write("apply-start", changes=len(plan.changes),    # the review it came from (set by apply.yml)
                  pullRequest=ctx.env.get("FLEETCTL_PULL_REQUEST") or None, runUrl=ctx.env.get("FLEETCTL_RUN_URL") or None)

    def run(change: Change) -> None:
        key = provider_key(change.address)
        if any(d in failed for d in change.depends_on) or (change.action is Action.DELETE and key in failed_targets):
            failed.add(change.address)
            report.skipped.append(str(change.address))
            journal.write("skipped", address=str(change.address), action=change.action.value,
                          reason="a change it depends on failed")
            return
        provider = get_provider(ctx, key, target_specs)
        address = str(change.address)
        secrets: dict[str, str] = {}
        for name, ref in change.secrets.items():
            value = resolve_secret_value(ref, fleet_root, ctx.env)
            if isinstance(value, Exception):
                failed.add(change.address)
                failed_targets.add(key)
                report.failed.append((address, str(value)))
                journal.write("failure", address=address, action=change.action.value, error=str(value))
                return
            secrets[name] = value
        journal.write("begin", address=address, action=change.action.value)
        request_ids: list[str] = []

        def hook(op: str, phase: str, request_id: str | None, exc: Exception | None) -> None:
            if request_id:
                request_ids.append(request_id)
            journal.write(phase, address=address, op=op, requestId=request_id,
                          error=(f"{getattr(exc, 'code', '') or type(exc).__name__}" if exc else None))

        provider.set_hook(hook)
        try:
            provider.apply(change, secrets)
        except errors.ProviderError as exc:
            failed.add(change.address)
            failed_targets.add(key)
            report.failed.append((address, str(exc)))
            journal.write("failure", address=address, action=change.action.value, error=str(exc),
                          requestIds=request_ids)
            return
        finally:
            provider.set_hook(None)
        report.applied.append(address)
        journal.write("success", address=address, action=change.action.value, requestIds=request_ids)

    for wave in _levels(list(plan.changes)):
        if len(wave) == 1 or ctx.workers <= 1:
            for change in wave:
                run(change)
        else:
            with ThreadPoolExecutor(max_workers=ctx.workers) as pool:
                list(pool.map(run, wave))
    report.seconds = time.perf_counter() - started
    journal.write("apply-end", applied=len(report.applied), failed=len(report.failed), skipped=len(report.skipped))
    report.stats = {f"{k[0]}/{k[1]}": p.stats() for k, p in ctx.providers.items()}
    return report
