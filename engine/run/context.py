"""What every command of engine.run needs from outside and shares: the Context (environment, clock, journal path,
provider overrides), the providers built per Target on first use, and the fleet load that refuses a fleet with errors."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.clock import Clock, clock_from_env
from engine.diagnostics import FleetctlError
from engine.manifest.fleet import Fleet, load_fleet
from engine.model import Address, DesiredResource
from engine.progress import SILENT, ProgressSink
from engine.providers.base import Provider, provider_for

INTERRUPTED_LISTED = 20  # open changes of an interrupted apply named one by one in a plan's warnings
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
    progress: ProgressSink = SILENT  # where apply and the providers' reads report progress (engine/progress.py)

    def now(self) -> dt.datetime:
        return (self.clock or clock_from_env(self.env))()


def provider_key(address: Address) -> tuple[str, str]:
    return (address.provider, address.target) if address.provider in ("aws", "azure") else (address.provider, "")


def read_key(address: str) -> tuple[str, str] | None:
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
        if hasattr(provider, "progress"):  # providers that report their long reads (items read per kind)
            provider.progress = ctx.progress
        ctx.providers[key] = provider
    return ctx.providers[key]


def load(path: Path, ctx: Context, on_targets: Callable[[dict[str, Any]], None] | None = None) -> Fleet:
    fleet = load_fleet(path, ctx.env, on_targets=on_targets)
    if fleet.diagnostics.has_errors:
        raise FleetctlError(fleet.diagnostics.sorted())
    return fleet


def identity_rows(desired: list[DesiredResource]) -> list[list[str]]:
    return sorted(
        [str(d.address), d.kind, d.spec[IDENTITY_FIELDS[d.kind]]]
        for d in desired
        if d.kind in IDENTITY_FIELDS and d.spec.get(IDENTITY_FIELDS[d.kind])
    )
