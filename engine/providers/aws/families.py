"""The seam through which AWS kinds whose reads and writes live outside provider.py plug into the provider.

provider.py holds the original kinds (things, types, groups, policies, certificates, rules, templates); every
kind added since lives in a module of its own, by family (engine/providers/aws/iam.py, credentials.py,
billing.py, ...). Such a module calls `register(Family(...))` at import time with the kind's bulk reader and
its apply handlers per action, and its name is listed in `FAMILY_MODULES`. The provider reads the table: a
registered kind is read in `READ_ORDER` position (`before`), its `needs` are read first, and `apply` dispatches
to its handlers exactly like the built-in ones. Nothing else in provider.py knows about these kinds.

A reader takes the provider's `ReadContext` (declared resources, prune flag, read options, earlier kinds'
results) and returns the kind's `ActualResource`s; a handler takes `(provider, change)` and returns outputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine import errors
from engine.model import Action

if TYPE_CHECKING:
    from engine.model import ActualResource, Change

# Modules that register families (imported once, on first use by the provider). Add a module here.
FAMILY_MODULES: tuple[str, ...] = (
    "engine.providers.aws.iam",
    "engine.providers.aws.credentials",
    "engine.providers.aws.billing",
    "engine.providers.aws.dynamic_groups",
    "engine.providers.aws.account",  # account singletons (logging, indexing, events, audit), scheduled audits
    "engine.providers.aws.authn",  # Authorizer, DomainConfiguration
    "engine.providers.aws.destinations",  # TopicRuleDestination
)


@dataclass(frozen=True)
class Family:
    """One kind served outside provider.py."""

    kind: str  # qualified, e.g. "aws.RoleAlias"
    read: Callable[[Any], list[ActualResource]]  # read(ctx: ReadContext) -> resources
    handlers: Mapping[Action, Callable[[Any, Change], dict[str, Any]]]  # action -> handler(provider, change)
    before: str | None = None  # read before this kind of READ_ORDER (None: after all of them)
    needs: tuple[str, ...] = ()  # kinds whose read results this kind's reader uses (read first)
    feeds: tuple[str, ...] = ()  # kinds whose readers use this kind's results (this kind is read for them)
    # feeds_when(desired by kind) -> bool: whether the fed kinds' declared resources need this kind's results
    # (things need billing groups only when one declares `billingGroup`); None: always. Imports read everything.
    feeds_when: Callable[[Mapping[str, Mapping[str, Any]]], bool] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


_FAMILIES: dict[str, Family] = {}
_LOADED = False


def register(family: Family) -> Family:
    _FAMILIES[family.kind] = family
    return family


def ignore_missing(call: Callable[..., dict[str, Any]], op: str, **kwargs: Any) -> dict[str, Any]:
    """Detach/delete calls converge: an already-gone link or resource is the desired outcome."""
    try:
        return call(op, **kwargs)
    except errors.NotFound:
        return {}


def replacing(
    delete: Callable[[Any, Change], dict[str, Any]], create: Callable[[Any, Change], dict[str, Any]]
) -> Callable[[Any, Change], dict[str, Any]]:
    """The replace handler of a kind AWS cannot update in place: its delete, then its create."""

    def replace(p: Any, c: Change) -> dict[str, Any]:
        delete(p, c)
        return create(p, c)

    return replace


def families() -> dict[str, Family]:
    """Every registered family by qualified kind (the modules of FAMILY_MODULES imported first)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in FAMILY_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:  # a module of another branch not merged yet
                if not (exc.name and module.startswith(exc.name)):
                    raise
    return _FAMILIES


def fed(
    fam: Family, wanted: set[str] | frozenset[str], by_kind: Mapping[str, Mapping[str, Any]], everything: bool = False
) -> bool:
    """Whether `fam` must be read because a wanted kind's reader uses its results."""
    if not any(k in wanted for k in fam.feeds):
        return False
    return everything or fam.feeds_when is None or fam.feeds_when(by_kind)


def read_order(base: tuple[str, ...]) -> tuple[str, ...]:
    """`base` (provider.py's READ_ORDER) with each registered kind inserted before its `before` kind."""
    order = list(base)
    for fam in families().values():
        if fam.kind in order:
            continue
        if fam.before in order:
            order.insert(order.index(fam.before), fam.kind)
        else:
            order.append(fam.kind)
    return tuple(order)
