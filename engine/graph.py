"""Dependency ordering: a deterministic topological order, cycles reported as diagnostics.

Create/update/replace run dependencies first; deletes run in reverse, after every change of a resource that
referenced the deleted one. Ties are broken by the kind's rank (CA → policy → certificate → type → group →
thing → rule) and then by address, never by file or dict order.
"""
from __future__ import annotations

import heapq
from typing import Callable, Hashable, Iterable, TypeVar

from engine.diagnostics import Diagnostic, error
from engine.model import Address

T = TypeVar("T")


def topo_order(nodes: Iterable[T], key: Callable[[T], Hashable], deps: Callable[[T], Iterable[Hashable]],
               tie: Callable[[T], tuple]) -> tuple[list[T], list[Diagnostic]]:
    """Kahn's algorithm with a heap on `tie`; edges to nodes outside the set are ignored."""
    items = {key(n): n for n in nodes}
    indegree = {a: 0 for a in items}
    users: dict[Address, list[Address]] = {a: [] for a in items}
    for a, n in items.items():
        for d in set(deps(n)):
            if d in items and d != a:
                indegree[a] += 1
                users[d].append(a)
    heap = [(tie(items[a]), a) for a, deg in indegree.items() if deg == 0]
    heapq.heapify(heap)
    order: list[T] = []
    while heap:
        _, a = heapq.heappop(heap)
        order.append(items[a])
        for u in users[a]:
            indegree[u] -= 1
            if indegree[u] == 0:
                heapq.heappush(heap, (tie(items[u]), u))
    diags: list[Diagnostic] = []
    if len(order) < len(items):
        stuck = sorted(str(a) for a, deg in indegree.items() if deg > 0)
        diags.append(error("dependency cycle", "these resources reference each other: " + ", ".join(stuck)))
    return order, diags
