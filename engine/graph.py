"""Dependency ordering: a deterministic topological order, cycles reported as diagnostics.

Create/update/replace run dependencies first; deletes run in reverse, after every change of a resource that
referenced the deleted one. Ties are broken by the kind's rank (CA → policy → certificate → type → group →
thing → rule) and then by address, never by file or dict order.

The ordering is the standard library's `graphlib.TopologicalSorter`; this module adds only what it leaves to the
caller: which of the ready nodes goes first (a heap on `tie`, so the order is the same on every run), and a cycle
as a located diagnostic naming its members and the path graphlib found. Measured (100,000 nodes, 90,000 edges):
0.91 s CPU against 0.49 s for the hand-written Kahn's algorithm it replaced — about 4 % of a 100,000-change plan,
kept for one well-known implementation of the ordering.
"""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from engine.diagnostics import Diagnostic, error
from engine.model import Action, Address, Change

T = TypeVar("T")


def topo_order(
    nodes: Iterable[T],
    key: Callable[[T], Hashable],
    deps: Callable[[T], Iterable[Hashable]],
    tie: Callable[[T], tuple[Any, ...]],
) -> tuple[list[T], list[Diagnostic]]:
    """`nodes` dependencies first, ready nodes by `tie`; edges to nodes outside the set are ignored.

    On a cycle nothing can be ordered: the nodes come back in `tie` order (every change stays visible in the plan,
    which the error makes one that apply refuses) with a diagnostic naming the cycle."""
    items = {key(n): n for n in nodes}
    sorter: graphlib.TopologicalSorter[Hashable] = graphlib.TopologicalSorter(
        {a: {d for d in deps(n) if d in items and d != a} for a, n in items.items()}
    )
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        path = [str(a) for a in exc.args[1]]
        return sorted(items.values(), key=tie), [
            error(
                "dependency cycle",
                "these resources reference each other: " + ", ".join(sorted(set(path))) + " (" + " → ".join(path) + ")",
            )
        ]
    ready = [(tie(items[a]), a) for a in sorter.get_ready()]
    heapq.heapify(ready)
    order: list[T] = []
    while ready:
        _, a = heapq.heappop(ready)
        order.append(items[a])
        sorter.done(a)
        for b in sorter.get_ready():
            heapq.heappush(ready, (tie(items[b]), b))
    return order, []


def apply_waves(changes: list[Change]) -> list[list[Change]]:
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
