"""Field-level diff of one desired resource against its actual state, over managed fields only.

Both sides arrive already normalised (the kind's expand and the provider's read produce the same canonical
shape), so this is a plain comparison. Only the fields the manifest declares are compared: server-filled
fields never show as drift. A map listed in the kind's `partial_maps` is managed only for the keys the
manifest declares (twin tags/desired); any other map is owned whole (a key the manifest drops is removed).
Sensitive fields carry fingerprints and are masked in every change.
"""
from __future__ import annotations

from typing import Any, Mapping

from engine.kinds import KindDecl
from engine.model import SENSITIVE, FieldChange

_MISSING = object()


def _walk(path: str, desired: Any, actual: Any, partial: bool, out: list[FieldChange]) -> None:
    if isinstance(desired, dict) and isinstance(actual, dict):
        keys = desired.keys() if partial else sorted(set(desired) | set(actual))
        for key in sorted(keys):
            _walk(f"{path}.{key}", desired.get(key, None), actual.get(key, None), partial, out)
        return
    if isinstance(desired, dict) and actual is None and not desired:
        return
    if desired != actual:
        out.append(FieldChange(path, None if actual is _MISSING else actual, desired))


def diff_fields(desired: Mapping[str, Any], actual: Mapping[str, Any], decl: KindDecl) -> list[FieldChange]:
    """The field changes that turn `actual` into `desired`, in a stable order."""
    out: list[FieldChange] = []
    for key in sorted(desired):
        d = desired[key]
        a = actual.get(key, None)
        if key in decl.sensitive:
            if d != a:
                out.append(FieldChange(key, SENSITIVE if a is not None else None, SENSITIVE, sensitive=True))
            continue
        before = len(out)
        _walk(key, d, a, key in decl.partial_maps, out)
        if isinstance(d, dict) and len(out) - before > 20:   # a large map: one summary change reads better
            del out[before:]
            out.append(FieldChange(key, a, d))
    return out
