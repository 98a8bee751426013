"""Twin property collections: validation, merge-patch with `$metadata`, as IoT Hub applies them.

A PATCH merges objects recursively and `null` deletes; every touched key gets `$lastUpdated` (and, for desired
properties, `$lastUpdatedVersion`) in `$metadata`. Keys may not contain `.`, `$` or spaces, and nesting is limited
(10 levels, the current IoT Hub limit). Tags and desired properties share these rules.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from .common import ServiceError

MAX_DEPTH = 10
FORBIDDEN_KEY_CHARACTERS = (".", "$", " ")
SIZE_LIMITS = {"tags": 8 * 1024, "desired": 32 * 1024, "reported": 32 * 1024}


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, "ArgumentInvalid", message)


def validate_collection(name: str, value: Any, *, allow_null: bool, depth: int = 1) -> None:
    """Reject keys the service rejects, nesting deeper than MAX_DEPTH, and nulls where they mean nothing."""
    if not isinstance(value, dict):
        raise _invalid(f"{name} must be a JSON object")
    if depth > MAX_DEPTH:
        raise _invalid(f"{name} is nested deeper than {MAX_DEPTH} levels")
    for key, item in value.items():
        if not key or any(character in key for character in FORBIDDEN_KEY_CHARACTERS):
            raise _invalid(f"the key {key!r} in {name} is not allowed ('.', '$' and spaces are reserved)")
        if item is None and not allow_null:
            raise _invalid(f"{name}.{key} is null; null only deletes a key in a PATCH")
        if isinstance(item, dict):
            validate_collection(f"{name}.{key}", item, allow_null=allow_null, depth=depth + 1)


def check_size(name: str, value: dict[str, Any]) -> None:
    if len(json.dumps(value, separators=(",", ":")).encode()) > SIZE_LIMITS[name]:
        raise ServiceError(400, "ArgumentInvalid", f"{name} exceed the {SIZE_LIMITS[name]} byte limit")


def _stamped(value: Any, stamp: dict[str, Any]) -> dict[str, Any]:
    meta = dict(stamp)
    if isinstance(value, dict):
        meta.update({key: _stamped(item, stamp) for key, item in value.items()})
    return meta


def merge(target: dict[str, Any], meta: dict[str, Any], patch: dict[str, Any], stamp: dict[str, Any]) -> None:
    """Apply a JSON merge-patch to `target`, keeping `meta` (the `$metadata` tree) in step."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
            meta.pop(key, None)
        elif isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key], meta[key] = {}, {}
            child_meta = meta.setdefault(key, {})
            merge(target[key], child_meta, value, stamp)
            child_meta.update(stamp)
        else:
            target[key] = value
            meta[key] = _stamped(value, stamp)


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """What `base` becomes after a merge-patch, leaving `base` untouched (tags, size checks)."""
    result = copy.deepcopy(base)
    merge(result, {}, patch, {})
    return result


@dataclass
class PropertySet:
    """One of `properties.desired` / `properties.reported`: values, `$metadata` and `$version`."""

    versioned_metadata: bool
    values: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    last_updated: str = ""

    def _stamp(self, moment: str) -> dict[str, Any]:
        stamp: dict[str, Any] = {"$lastUpdated": moment}
        if self.versioned_metadata:
            stamp["$lastUpdatedVersion"] = self.version
        return stamp

    def patch(self, changes: dict[str, Any], moment: str) -> None:
        self.version += 1
        self.last_updated = moment
        merge(self.values, self.meta, changes, self._stamp(moment))

    def replace(self, values: dict[str, Any], moment: str) -> None:
        self.values, self.meta = {}, {}
        self.patch(values, moment)

    def document(self) -> dict[str, Any]:
        return {**self.values, "$metadata": {**self._stamp(self.last_updated), **self.meta}, "$version": self.version}
