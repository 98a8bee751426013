"""The commands' engine: load → read (providers, bulk) → plan (pure) → apply (journal), without printing.

The CLI calls these functions and renders what they return; tests call them directly. Providers are built per
Target only for the targets the fleet (or the plan) uses. The parts: context.py (Context, providers, load),
planning.py (`plan`), applying.py (`apply`, stale checks, the DAG runner, `reconcile`).
"""

from __future__ import annotations

from engine.run.applying import (
    ApplyReport,
    PlanNotApplicable,
    StaleCheck,
    StalePlan,
    Unit,
    apply,
    check_stale,
    reconcile,
    refuse_errored,
    run_dag,
    stale_check,
)
from engine.run.context import IDENTITY_FIELDS, INTERRUPTED_LISTED, Context, get_provider, load, provider_key
from engine.run.planning import PlanResult, SnapshotUse, plan

__all__ = [
    "IDENTITY_FIELDS",
    "INTERRUPTED_LISTED",
    "ApplyReport",
    "Context",
    "PlanNotApplicable",
    "PlanResult",
    "SnapshotUse",
    "StaleCheck",
    "StalePlan",
    "Unit",
    "apply",
    "check_stale",
    "get_provider",
    "load",
    "plan",
    "provider_key",
    "reconcile",
    "refuse_errored",
    "run_dag",
    "stale_check",
]
