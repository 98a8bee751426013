"""Bulk paths: how the changes of one apply wave are grouped into bulk API calls, and when bulk pays.

Why: at IoT Hub S1 an identity-registry operation costs 1 of 100 per minute per unit (research/quotas.md
§2.1), so 10,000 individual device creates take 100 minutes on one unit. The bulk registry API takes up to 100
devices per call (create, update and delete, each with or without etag checks). If the hub counts a bulk call as
one registry operation — not documented, quotas.md §11 — 10,000 creates take 100 calls, one minute. Either
way bulk is never slower, and it makes 100× fewer requests.

`batches` is the grouping strategy the Azure provider calls for a wave: changes with the same import mode,
at most `limit` per call, in plan order; a change whose mode is None (twin-only updates, kinds the registry
API does not cover) stays individual. Changes of one wave never depend on each other (engine/graph.py `apply_waves` builds
waves from dependencies), so grouping cannot reorder a dependency.

`choose` prices the paths for n changes at a hub's tier and units: individual calls, bulk calls (under both
readings of the quota accounting), and an import job (ImportDevices from a blob container, one job at a time per
hub; engine/providers/azure/importjob.py). A Target with `azure.importExport` sends a wave's device creates and
deletes through one job from its `threshold` on (`choose(n, import_jobs=True, threshold=…)`); without a threshold
the job is chosen only where it beats even the optimistic bulk reading (with the assumed minute of job overhead,
above ~25,000 changes per S1 unit).

Measured (docs/performance.md §5, §7; W11) on the quota-faithful emulator — S1×1, which counts a bulk call of 100
devices as one registry operation, and runs jobs at the peer's 1,000,000 devices per hour — with fleetctl paced:

    creates   import job          bulk (100 per call)   one request per device
    1,000     5.4 s, 13 calls     5.3 s, 12 calls       ~597 s (300 measured: 179 s, floor 180 s)
    10,000    42.3 s, 43 calls    59.3 s, 101 calls     ~99 min, extrapolated

So under the optimistic reading bulk and job tie at ~1,000 and the job saves 0.24 s per 100 devices beyond;
under the pessimistic one (each device of a bulk call counts, not documented: quotas.md §11) bulk costs what
individual requests cost and the job wins by ~140× at 10,000. A real hub's job queueing time and S1 job
throughput are not documented, hence the operator's threshold (default 1,000). Reproduce:

    .venv/bin/python benchmarks/bench_azure.py --paths --devices 1000,10000 --individual-max 300
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.model import Action, Change
from engine.quotas import azure_hub_quotas

BULK_LIMIT = 100  # devices per bulk registry call (quotas.md §2.2, S22–S24)
IMPORT_DEVICES_PER_SECOND = 1_000_000 / 3600  # peer assumption for an S3 hub, ~1M/h (quotas.md §2.2 [P])
IMPORT_JOB_OVERHEAD_S = 60.0  # queueing, blob upload and polling: assumed [U]


@dataclass(frozen=True)
class Batch:
    """One bulk registry call: `mode` is its importMode, `changes` its devices in plan order."""

    mode: str
    changes: tuple[Change, ...]


def device_mode(change: Change) -> str | None:
    """The import mode of an azure.Device change, with the etag check wherever the plan recorded one."""
    if change.kind != "azure.Device":
        return None
    etag = bool(change.ids.get("etag")) if change.ids else False
    if change.action is Action.CREATE:
        return "create"
    if change.action is Action.DELETE:
        return "deleteIfMatchETag" if etag else "delete"
    return None  # updates touch twin tags/desired with their own etag: individual PATCHes


def batches(
    changes: Sequence[Change],
    mode_of: Callable[[Change], str | None] = device_mode,
    *,
    limit: int = BULK_LIMIT,
    minimum: int = 2,
) -> tuple[list[Batch], list[Change]]:
    """(bulk calls, changes left individual). A mode with fewer than `minimum` changes gains nothing from a
    bulk call and stays individual (its error reporting is richer)."""
    if limit < 1:
        raise ValueError("limit must be positive")
    by_mode: dict[str, list[Change]] = {}
    single: list[Change] = []
    for c in changes:
        mode = mode_of(c)
        if mode is None:
            single.append(c)
        else:
            by_mode.setdefault(mode, []).append(c)
    out: list[Batch] = []
    for mode in sorted(by_mode):
        group = by_mode[mode]
        if len(group) < minimum:
            single.extend(group)
            continue
        out += [Batch(mode, tuple(group[i : i + limit])) for i in range(0, len(group), limit)]
    order = {id(c): i for i, c in enumerate(changes)}
    return out, sorted(single, key=lambda c: order[id(c)])


@dataclass(frozen=True)
class Choice:
    path: str  # individual | bulk | import-job
    seconds: dict[str, float]  # each path's estimate
    note: str


def choose(
    n: int, *, tier: str = "S1", units: int = 1, import_jobs: bool = False, threshold: int | None = None
) -> Choice:
    """Price `n` registry changes per path. Bulk is priced pessimistically (each device counts as one registry
    operation) for the choice; the optimistic reading (one per call) is reported next to it. With `import_jobs`
    (the Target has an import/export container), `threshold` is the operator's crossover: from `threshold` changes
    on, one import job; without one, the job is taken only where it beats even the optimistic bulk reading."""
    rate = azure_hub_quotas(tier, units)["registry"].tps
    calls = math.ceil(n / BULK_LIMIT)
    seconds = {
        "individual": n / rate,
        "bulk": n / rate,
        "bulk-if-one-op-per-call": calls / rate,
        "import-job": IMPORT_JOB_OVERHEAD_S + n / IMPORT_DEVICES_PER_SECOND,
    }
    if n < 2:
        return Choice("individual", seconds, "one change: nothing to group")
    if import_jobs and threshold is not None:
        if n >= threshold:
            return Choice(
                "import-job", seconds, f"{n} device changes, at or above the configured threshold {threshold}"
            )
    elif import_jobs and seconds["import-job"] < seconds["bulk-if-one-op-per-call"]:
        return Choice("import-job", seconds, "an import job beats even the optimistic bulk reading")
    return Choice("bulk", seconds, f"{calls} bulk call(s) instead of {n} requests; never slower than individual")
