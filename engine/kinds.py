"""The registry of kinds: each kind declares its rules in exactly one place.

A `KindDecl` says which pydantic model validates the spec, which fields reference other resources (each
becomes a dependency edge and must resolve), which fields are immutable (a change means replace), which are
sensitive (masked everywhere, compared by fingerprint), how the elements of each list are matched (`ListKey`: a
set, keyed by a field such as a policy statement's `Sid`, or by an action's type), which maps are owned only for
the keys the manifest declares, and where the kind sits in the create order. The diff, the planner and the
validator read these declarations instead of carrying kind-specific `if`s.

Providers register their kinds from SDK-free modules (`engine/providers/<p>/kinds.py`), so validating a
manifest never imports a cloud SDK.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

KIND_MODULES = (
    "engine.manifest.core_kinds",
    "engine.providers.aws.kinds",
    "engine.providers.aws.kinds_access",
    "engine.providers.aws.kinds_account",  # issue 17 (b): account singletons, audit, authorizers, destinations
    "engine.providers.azure.kinds",
    "engine.providers.device.kinds",
    "engine.manifest.generators",
)


@dataclass(frozen=True)
class Ref:
    """A reference field: dotted `path` in the spec holds one name (or a list when `many`) of `kind`."""

    path: str
    kind: str  # qualified kind, e.g. "aws.Certificate"
    many: bool = False
    same_target: bool = True  # the referenced resource lives in the same Target
    optional_kinds: tuple[str, ...] = ()  # other kinds the name may resolve to


@dataclass(frozen=True)
class ListKey:
    """How the diff matches the elements of the list at `path` in the spec (engine/diff.py reads it).

    `path` is dotted; `*` stands for any map key and `[]` for any list element, e.g. `document.Statement` or
    `document.Statement[].Action`. `by` says what identifies an element:
    - "set": its content; order is no change, one added element is one `+` (principals, group members);
    - "key": the value of the element field `key` (a policy statement's `Sid`); elements without it, by content;
    - "type": the single top-level key of the element (a topic-rule action `{lambda: {...}}`), else content.
    A list without a declaration is ordered: elements are matched by position after a sequence alignment, so an
    inserted element is one `+`, not a shifted list.
    """

    path: str
    by: str = "set"  # "set" | "key" | "type"
    key: str = ""  # the identifying element field when by="key"

    @property
    def pattern(self) -> tuple[str, ...]:
        return tuple(p for p in self.path.replace("[]", ".[]").split(".") if p)


@dataclass(frozen=True)
class KindDecl:
    group: str  # "aws.fleetctl.io"
    kind: str  # "Thing"
    provider: str  # "aws" | "azure" | "device" | "fleetctl"
    spec_model: type[BaseModel]
    rank: int = 100  # create order among independent kinds (lower first)
    references: tuple[Ref, ...] = ()
    immutable: tuple[str, ...] = ()  # top-level spec fields: a change means replace
    sensitive: tuple[str, ...] = ()  # top-level spec fields compared by fingerprint, masked
    partial_maps: tuple[str, ...] = ()  # maps of which only the declared keys are managed
    lists: tuple[ListKey, ...] = ()  # how list elements are matched; undeclared lists are ordered
    always_managed: tuple[str, ...] = ()  # managed even when omitted (the model default applies): parent, type
    targeted: bool = True  # metadata.target is required
    # expand(ctx, manifest) -> Expanded: the kind's desired resources (ExpandContext, Manifest and Expanded are
    # engine/manifest/expand.py and validation.py; they build on this one, so the types are not named here).
    expand: Callable[[Any, Any], Any] | None = None
    # refine(change) -> Change | Blocked: a pure hook that adds the steps a reviewer must see (which policy
    # version is deleted, detach → INACTIVE → delete), or returns a Blocked (engine/model.py) for a change that
    # cannot be carried out: reason and remedy (a Diagnostic is still accepted and read as a Blocked).
    refine: Callable[[Any], Any] | None = None
    # diff(desired, actual) -> [FieldChange]: a kind whose desired values depend on the actual state (device
    # registers: read-modify-write bitfields, values compared by fingerprint, cloud references resolved at read
    # time) states its own field diff; every other kind is diffed by engine/diff.py.
    diff: Callable[[Any, Any], list[Any]] | None = None
    # calls(change) -> {API: count}: the mutating calls apply makes for a change (the provider's handlers make
    # exactly these); plans divide them by the default quotas to state the binding quota and the apply time.
    calls: Callable[[Any], Mapping[str, int]] | None = None
    # generate(document, fleet_root, diagnostics) -> documents: a generator kind (ThingSet) expands into
    # ordinary documents before validation, so each generated resource goes through every stage.
    generate: Callable[..., list[Any]] | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    versions: tuple[str, ...] = ("v1",)  # the apiVersion versions of the group this kind serves, oldest first

    @property
    def qualified(self) -> str:
        return f"{self.provider}.{self.kind}"

    @property
    def api_version(self) -> str:
        """The apiVersion new manifests are written with (schemas, import): the newest version served."""
        return f"{self.group}/{self.versions[-1]}"

    @property
    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{v}" for v in self.versions)


_REGISTRY: dict[tuple[str, str], KindDecl] = {}
_LOADED = False


def register(decl: KindDecl) -> KindDecl:
    _REGISTRY[(decl.group, decl.kind)] = decl
    return decl


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in KIND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not (exc.name and module.startswith(exc.name)):  # a present module failing to import is a bug
                raise


def lookup(api_version: str, kind: str) -> KindDecl | None:
    """The kind an apiVersion and kind name, checked in full: the group knows the kind and serves the version
    (`aws.fleetctl.io/v9` is no Thing while only v1 is served)."""
    decl = lookup_group(api_version, kind)
    return decl if decl is not None and api_version in decl.api_versions else None


def lookup_group(api_version: str, kind: str) -> KindDecl | None:
    """The kind by group and name whatever the version: for error messages naming the versions served, and for
    reading old manifests in git history."""
    _load()
    group = api_version.rsplit("/", 1)[0]
    return _REGISTRY.get((group, kind))


def by_qualified(qualified: str) -> KindDecl:
    _load()
    for decl in _REGISTRY.values():
        if decl.qualified == qualified:
            return decl
    raise KeyError(qualified)


def all_kinds() -> list[KindDecl]:
    _load()
    return sorted(_REGISTRY.values(), key=lambda d: (d.group, d.kind))
