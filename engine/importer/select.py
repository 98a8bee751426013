"""Which resources an import writes, and how they refer to each other: filters, reference closure, renames.

Generic over providers. References come from the kinds registry (`KindDecl.references`), the same
declarations that make a manifest's references resolve, so an import that follows them writes manifests whose
references resolve by construction: selecting a thing brings its thing type, groups (and their parents and
policies) and certificates (and their CA and policies). Reference paths apply alike to a provider's actual
state and to a manifest's spec (the read projects state to the spec's shape).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from engine import kinds as registry
from engine.importer.model import Filter
from engine.kinds import KindDecl, Ref
from engine.model import ActualResource, Address

Facts = Mapping[str, Any]  # filter key → a value or a list of values (a thing's groups)


def matches(filters: Iterable[Filter], facts: Facts) -> bool:
    """Every filter matches one of the resource's facts; a key the resource does not have never matches."""
    for f in filters:
        value = facts.get(f.key)
        values = value if isinstance(value, (list, tuple)) else [] if value is None else [value]
        if not any(fnmatch.fnmatchcase(str(v), f.pattern) for v in values):
            return False
    return True


def get_path(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        data = data[part]
    data[parts[-1]] = value


def drop_path(data: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        child = data.get(part)
        data = child if isinstance(child, dict) else {}
    data.pop(parts[-1], None)


def _kind_of(qualified: str) -> str:
    return qualified.split(".", 1)[1]


def references(decl: KindDecl, data: Mapping[str, Any]) -> Iterator[tuple[Ref, int | None, str]]:
    """(reference, index in its list or None, name) for every reference a state or spec holds."""
    for ref in decl.references:
        value = get_path(data, ref.path)
        if value is None:
            continue
        if ref.many:
            for i, name in enumerate(value):
                yield ref, i, str(name)
        else:
            yield ref, None, str(value)


def ref_addresses(owner: Address, ref: Ref, name: str) -> list[Address]:
    kinds = (ref.kind,) + ref.optional_kinds
    return [Address.of(owner.provider, owner.target, _kind_of(k), name) for k in kinds]


def referenced_kinds(kinds: Iterable[str]) -> set[str]:
    """The kinds `kinds` reference, transitively (what must be read to resolve them)."""
    out = set(kinds)
    todo = list(out)
    while todo:
        for ref in registry.by_qualified(todo.pop()).references:
            for k in (ref.kind,) + ref.optional_kinds:
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def closure(selected: Iterable[Address], actual: Mapping[Address, ActualResource]) -> set[Address]:
    """`selected` plus everything it references, transitively, that exists in `actual`."""
    out = set(selected)
    todo = list(out)
    while todo:
        r = actual[todo.pop()]
        for ref, _, name in references(registry.by_qualified(r.kind), r.state):
            for address in ref_addresses(r.address, ref, name):
                if address in actual and address not in out:
                    out.add(address)
                    todo.append(address)
    return out


def rename(resources: list[ActualResource], names: Mapping[Address, str]) -> list[ActualResource]:
    """New addresses for some resources (e.g. certificates read under their ids), and every reference to them
    rewritten. Reference lists stay sorted (the canonical shape of a set)."""
    if not names:
        return list(resources)
    out = []
    for r in resources:
        state = _deep_copy(r.state)
        changed = False
        for ref, index, name in list(references(registry.by_qualified(r.kind), r.state)):
            new = next((names[a] for a in ref_addresses(r.address, ref, name) if a in names), None)
            if new is None:
                continue
            changed = True
            if index is None:
                set_path(state, ref.path, new)
            else:
                get_path(state, ref.path)[index] = new
        if changed:
            for ref in registry.by_qualified(r.kind).references:
                if ref.many and isinstance(get_path(state, ref.path), list):
                    set_path(state, ref.path, sorted(get_path(state, ref.path)))
        address = r.address
        if r.address in names:
            address = Address(r.address.parts[:-1] + (names[r.address],))
        out.append(dataclasses.replace(r, address=address, state=state) if (changed or address != r.address) else r)
    return out


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def dangling(decl: KindDecl, address: Address, spec: Mapping[str, Any], known: set[Address]) -> dict[str, list[str]]:
    """Reference fields of `spec` naming something neither written nor declared: field path → the names."""
    out: dict[str, list[str]] = {}
    for ref, _, name in references(decl, spec):
        if not any(a in known for a in ref_addresses(address, ref, name)):
            out.setdefault(ref.path, []).append(name)
    return out
