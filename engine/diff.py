"""Field-level diff of one desired resource against its actual state, over managed fields only, to the leaf.

Both sides arrive already normalised (the kind's expand and the provider's read produce the same canonical
shape; set-like lists such as principals, groups and policies are sorted on both sides). Only the fields the
manifest declares are compared: server-filled fields never show as drift. A map listed in the kind's
`partial_maps` is managed only for the keys the manifest declares (twin tags/desired); any other map is owned
whole (a key the manifest drops is removed). Sensitive fields carry fingerprints and are masked in every change.

Nested values are diffed to the leaf, so every change has its own path and operation: maps key by key; lists as
the kind declares them (`KindDecl.lists`, engine/kinds.py `ListKey`): sets by content (a reordering is no
change), keyed lists by an element field (policy statements by `Sid`, else by content), typed lists by the
element's single key (topic-rule actions), and undeclared lists in order, aligned with difflib's
SequenceMatcher so one inserted element is one `+` and one changed element of a 40-element list one `~`.

Why hand-written rather than deepdiff (a declared dependency): the declared matching differs per list in one
document (a set here, keyed there, ordered elsewhere); deepdiff's `iterable_compare_func` is global and falls
back to positional pairing for the whole list as soon as one element cannot be compared, `ignore_order` pairs
near-equal elements of a set and reports them as changed members, `group_by` applies at the root only, and
its paths (`root['Statement'][2]`) name positions where a reviewer needs identities (`Statement[Sid=Widen]`).
Equal values are compared with `==` first (the fast path of a no-change 100k-thing plan), and only values that
differ are walked. `apply_changes` is the inverse used by the property tests: it interprets exactly the paths
the diff reports.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from engine.kinds import KindDecl, ListKey
from engine.model import ADD, CHANGE, REMOVE, SENSITIVE, Elem, FieldChange, canonical_json, display_path

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()  # an absent map key (exact mode)
_ELEM = "[]"


class _Walker:
    """One diff: the declared list rules, whether a null equals an absent key, whether maps are partial."""

    def __init__(self, lists: Iterable[ListKey], *, absent_is_null: bool) -> None:
        self.rules = {rule.pattern: rule for rule in lists}
        self.wild = [rule for rule in self.rules.values() if "*" in rule.pattern]
        self.absent_is_null = absent_is_null
        self.strict = not absent_is_null  # exact mode: 1, 1.0 and true are three values, as in JSON text
        self.out: list[FieldChange] = []

    def rule(self, pattern: tuple[str, ...]) -> ListKey | None:
        found = self.rules.get(pattern)
        if found is not None or not self.wild:
            return found
        for rule in self.wild:
            if len(rule.pattern) == len(pattern) and all(
                r in ("*", p) for r, p in zip(rule.pattern, pattern, strict=True)
            ):
                return rule
        return None

    def emit(self, segments: tuple[Any, ...], before: Any, after: Any) -> None:
        null = self.absent_is_null
        op = (
            ADD
            if before is MISSING or (null and before is None)
            else (REMOVE if after is MISSING or (null and after is None) else CHANGE)
        )
        self.out.append(
            FieldChange(
                display_path(segments),
                None if before is MISSING else before,
                None if after is MISSING else after,
                op=op,
                segments=segments,
            )
        )

    def walk(
        self, segments: tuple[Any, ...], pattern: tuple[str, ...], before: Any, after: Any, partial: bool = False
    ) -> None:
        if before == after and (not self.strict or _same_json(before, after)):
            return
        if isinstance(before, dict) and isinstance(after, dict):
            keys = after.keys() if partial else set(before) | set(after)
            for key in sorted(keys, key=str):
                b, a = before.get(key, MISSING), after.get(key, MISSING)
                if self.absent_is_null:
                    b, a = (None if b is MISSING else b), (None if a is MISSING else a)
                self.walk(segments + (key,), pattern + (str(key),), b, a, partial)
            return
        if self.absent_is_null and isinstance(after, dict) and not after and before is None:
            return  # an empty map declared, none read: the same
        if isinstance(before, list) and isinstance(after, list):
            rule = self.rule(pattern)
            if rule is None:
                self.ordered(segments, pattern, before, after)
            else:
                self.matched(segments, pattern, before, after, rule)
            return
        self.emit(segments, before, after)

    def ordered(self, segments: tuple[Any, ...], pattern: tuple[str, ...], before: list[Any], after: list[Any]) -> None:
        """An ordered list: align equal elements (difflib), pair the rest position by position and recurse."""
        sub = pattern + (_ELEM,)
        matcher = difflib.SequenceMatcher(
            None, [canonical_json(x) for x in before], [canonical_json(x) for x in after], autojunk=False
        )
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            paired = min(i2 - i1, j2 - j1)
            for k in range(paired):
                self.walk(segments + (Elem("index", at=i1 + k),), sub, before[i1 + k], after[j1 + k])
            for i in range(i1 + paired, i2):
                self.emit(segments + (Elem("index", at=i),), before[i], MISSING)
            for j in range(j1 + paired, j2):
                self.emit(segments + (Elem("index", at=j),), MISSING, after[j])

    def matched(
        self, segments: tuple[Any, ...], pattern: tuple[str, ...], before: list[Any], after: list[Any], rule: ListKey
    ) -> None:
        """A set, keyed or typed list: pair elements by identity; unpaired ones are added or removed whole."""
        sub = pattern + (_ELEM,)
        old = self.identities(before, rule, sub)
        new = self.identities(after, rule, sub)
        for ident, elem in old.items():
            if ident not in new:
                self.emit(segments + (elem[0],), elem[1], MISSING)
        for ident, elem in new.items():
            if ident not in old:
                self.emit(segments + (elem[0],), MISSING, elem[1])
            elif ident[0] != "member":  # equal content (up to the order of declared lists): nothing to say
                self.walk(segments + (elem[0],), sub, old[ident][1], elem[1])

    def identities(
        self, items: list[Any], rule: ListKey, pattern: tuple[str, ...]
    ) -> dict[tuple[Any, ...], tuple[Elem, Any]]:
        """Each element's identity (what it is matched by) → (its path element, the element), in list order."""
        out: dict[tuple[Any, ...], tuple[Elem, Any]] = {}
        seen: dict[tuple[Any, ...], int] = {}
        for item in items:
            if rule.by == "key" and isinstance(item, dict) and rule.key in item:
                by, value, base = "key", item[rule.key], ("key", canonical_json(item[rule.key]))
            elif rule.by == "type" and isinstance(item, dict) and len(item) == 1:
                by = "type"
                value = next(iter(item))
                base = ("type", value)
            else:
                by, value, base = "member", item, ("member", canonical_json(self.normal(item, pattern)))
            nth = seen.get(base, 0)
            seen[base] = nth + 1
            out[base + (nth,)] = (Elem(by, value, key=rule.key if by == "key" else "", nth=nth), item)
        return out

    def normal(self, value: Any, pattern: tuple[str, ...]) -> Any:
        """`value` with every declared list below `pattern` in a canonical order: the content an element is
        matched by (a statement whose Resource list is reordered is the same statement)."""
        if not self.rules:
            return value
        if isinstance(value, dict):
            return {k: self.normal(v, pattern + (str(k),)) for k, v in value.items()}
        if isinstance(value, list):
            items = [self.normal(v, pattern + (_ELEM,)) for v in value]
            return sorted(items, key=canonical_json) if self.rule(pattern) is not None else items
        return value


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON text, for values already equal under `==` (which says 1 == 1.0 == True)."""
    if type(a) is not type(b):
        return False
    return canonical_json(a) == canonical_json(b) if isinstance(a, (dict, list, float)) else True


def diff_values(
    before: Any, after: Any, lists: Iterable[ListKey] = (), *, root: tuple[Any, ...] = (), absent_is_null: bool = False
) -> list[FieldChange]:
    """Every leaf change that turns `before` into `after`, paths under `root` (a prefix of segments).

    Exact by default: an absent key and a null differ, and so do 1, 1.0 and true. `lists` patterns start at
    `root`'s first segment, as in `KindDecl.lists`.
    """
    walker = _Walker(lists, absent_is_null=absent_is_null)
    walker.walk(tuple(root), tuple(str(s) for s in root), before, after)
    return walker.out


def diff_fields(desired: Mapping[str, Any], actual: Mapping[str, Any], decl: KindDecl) -> list[FieldChange]:
    """The field changes that turn `actual` into `desired`, in a stable order (field, then path).

    A null and an absent key are the same here (providers read optional fields as null), and values are equal
    under Python's `==` (a service that returns 30.0 for 30 is no drift); sensitive fields are compared whole,
    by fingerprint, and masked.
    """
    out: list[FieldChange] = []
    walker: _Walker | None = None
    for key in sorted(desired):
        d = desired[key]
        a = actual.get(key, None)
        if d == a:
            continue
        if key in decl.sensitive:
            out.append(FieldChange(key, SENSITIVE if a is not None else None, SENSITIVE, sensitive=True))
            continue
        if walker is None:
            walker = _Walker(decl.lists, absent_is_null=True)
        walker.out = out
        walker.walk((key,), (key,), a, d, key in decl.partial_maps)
    return out


# ------------------------------------------------------------------------------------------ apply (inverse)
def apply_changes(value: Any, changes: Iterable[FieldChange]) -> Any:
    """`value` with `changes` applied (a copy): the inverse of diff_values, reading exactly the paths it reports.

    Ordered-list positions are those diff_values reports: changes and removals at old positions, additions at
    new positions. Members of sets and keyed or typed lists that are added go at the end (their order is no
    change by declaration).
    """
    return _apply(copy.deepcopy(value), [(tuple(f.segments), f) for f in changes])


def _apply(value: Any, changes: list[tuple[tuple[Any, ...], FieldChange]]) -> Any:
    if not changes:
        return value
    for segs, f in changes:
        if not segs:
            return MISSING if f.op == REMOVE else copy.deepcopy(f.after)
    groups: dict[Any, list[Any]] = {}
    order: list[Any] = []
    for segs, f in changes:
        head = segs[0]
        if not isinstance(head, Elem):
            ident: Any = head
        elif head.by == "index":  # an addition names a new position, anything else an old one
            ident = ("index", head.at, len(segs) == 1 and f.op == ADD)
        else:
            ident = (head.by, head.key, canonical_json(head.value), head.nth)
        if ident not in groups:
            groups[ident] = []
            order.append(ident)
        groups[ident].append((segs[1:], f, head))
    if isinstance(value, dict) or (not isinstance(value, list) and not any(isinstance(i, tuple) for i in order)):
        out = dict(value) if isinstance(value, dict) else {}
        for ident in order:
            result = _apply(out.get(ident, MISSING), [(s, f) for s, f, _ in groups[ident]])
            if result is MISSING:
                out.pop(ident, None)
            else:
                out[ident] = result
        return out
    items = list(value)
    keep: list[Any] = list(range(len(items)))  # positions of the old list still present
    slots: dict[int, Any] = {}  # old position → new value
    inserts: list[tuple[int, Any]] = []  # (new position, value) for ordered additions
    appends: list[Any] = []
    for ident in order:
        sub = groups[ident]
        elem: Elem = sub[0][2]
        rest = [(s, f) for s, f, _ in sub]
        whole = next((f for s, f in rest if not s), None)
        if elem.by == "index":
            if whole is not None and whole.op == ADD and len(rest) == 1:
                inserts.append((elem.at, copy.deepcopy(whole.after)))
                continue
            pos = elem.at
        else:
            found = _find(items, elem)
            if found is None:
                appends.append(_apply(MISSING, rest))
                continue
            pos = found
        result = _apply(slots.get(pos, items[pos]), rest)
        if result is MISSING:
            keep.remove(pos)
        else:
            slots[pos] = result
    survivors = [slots.get(i, items[i]) for i in keep]
    for at, item in sorted(inserts, key=lambda x: x[0]):
        survivors.insert(at, item)
    return survivors + appends


def _find(items: list[Any], elem: Elem) -> int | None:
    """The position of the element a key/type/member path element names (its nth match), or None. A member is
    found by exact content: the diff names removed members by their old value."""
    seen = 0
    want = canonical_json(elem.value)
    for i, item in enumerate(items):
        if elem.by == "key":
            hit = isinstance(item, dict) and elem.key in item and canonical_json(item[elem.key]) == want
        elif elem.by == "type":
            hit = isinstance(item, dict) and len(item) == 1 and next(iter(item)) == elem.value
        else:
            hit = canonical_json(item) == want
        if hit:
            if seen == elem.nth:
                return i
            seen += 1
    return None
