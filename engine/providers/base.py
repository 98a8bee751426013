"""The provider contract, and how the engine finds the provider for a Target.

`read` returns the actual state of everything in scope in bulk (list/paginated/query calls), projected to
the shape of the desired specs. With `prune=True` it also discovers undeclared resources and reports whether
each carries fleetctl's ownership marker (the planner decides whether to delete, warn or just list them). `apply` carries out one Change with the API's optimistic concurrency where
it exists and raises only engine.errors. Provider modules are imported when a Target needs them, so
validating manifests never imports a cloud SDK.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.diagnostics import Diagnostic
from engine.model import ActualResource, Change, DesiredResource

CallHook = Callable[[str, str, str | None, Exception | None], None]


@dataclass
class ReadResult:
    actual: list[ActualResource] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


@dataclass
class ApplyResult:
    request_ids: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    target: str

    def read(self, desired: list[DesiredResource], *, prune: bool) -> ReadResult: ...

    def apply(self, change: Change, secrets: Mapping[str, str]) -> ApplyResult: ...

    def set_hook(self, hook: CallHook | None) -> None: ...

    def stats(self) -> dict[str, Any]: ...


PROVIDER_MODULES = {
    "aws": "engine.providers.aws.provider",
    "azure": "engine.providers.azure.provider",
    "device": "engine.providers.device.provider",
}


def provider_for(kind: str, target_name: str, target_spec: Any, env: Mapping[str, str], **options: Any) -> Provider:
    module = importlib.import_module(PROVIDER_MODULES[kind])
    provider: Provider = module.make_provider(target_name, target_spec, env, **options)
    return provider
