"""The extension point: one importer per provider, each with one exporter per kind (a table).

`core` runs the same pipeline for every provider (read → select → public files → names → export → write);
what differs per provider lives in a `ProviderImporter`: how to read everything in bulk (resumably), which facts
filters see, how to fetch public material, how to name resources the cloud identifies by id, and the exporter
table that turns each kind's actual state into a manifest spec. AWS is `engine.importer.aws`. An Azure importer
(devices, hub certificates, DPS enrollments) or a device-dump importer plugs in by adding its module to
IMPORTERS with a `make_importer()`; its exporters put a `SecretSlot` where a key belongs (symmetric keys,
connection strings), which the writer turns into `{env: NAME}` and lists in IMPORT-SECRETS.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.diagnostics import Diagnostic, FleetctlError, error
from engine.importer.checkpoint import Checkpoint
from engine.importer.model import Filter, Note
from engine.model import ActualResource, Address, DesiredResource
from engine.providers.base import provider_for

# An exporter: (actual resource, its public files read by `materials`) → manifest spec. May raise Unimportable.
Exporter = Callable[[ActualResource, Mapping[str, str]], dict[str, Any]]

IMPORTERS = {"aws": "engine.importer.aws", "azure": "engine.importer.azure", "device": "engine.importer.device"}


@dataclass
class Session:
    """What a provider importer gets for one import: the target, what to read, and where to report."""

    target: str
    target_spec: Any
    env: Mapping[str, str]
    read_kinds: frozenset[str]  # the requested kinds and every kind they reference
    filters: tuple[Filter, ...]
    declared: list[DesiredResource]  # the fleet's desired resources in this target
    adopt: bool
    checkpoint: Checkpoint
    page_size: int = 250
    progress: Callable[[str], None] = lambda text: None
    limiter: Any = None  # an engine.ratelimit.RateLimiter instead of the provider's own
    provider_factory: Callable[..., Any] | None = None
    notes: list[Note] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    sink: Any = None  # an engine.progress.ProgressSink the provider's reads report into

    def say(self, text: str) -> None:
        self.progress(f"{self.target}: {text}")


class ProviderImporter:
    """A provider's importer. The defaults suit a provider whose resources are named as read and that has no
    public files to fetch; `read` and `exporters` are what every provider must give."""

    provider = ""
    kinds: tuple[str, ...] = ()  # qualified kinds it imports, in the order files are listed
    adoptable: frozenset[str] = frozenset()  # kinds whose ownership marker an import can plan
    adopt_annotation = "fleetctl.io/adopt"
    filter_keys: Mapping[str, str] = {"name": "the resource's name (every kind)"}
    exporters: Mapping[str, Exporter] = {}

    def __init__(self) -> None:
        self.provider_obj: Any = None

    def connect(self, session: Session) -> Any:
        """The provider of the session's target, built once (tests and benchmarks may inject the factory)."""
        if self.provider_obj is None:
            factory = session.provider_factory or provider_for
            self.provider_obj = factory(self.provider, session.target, session.target_spec, session.env)
            if session.sink is not None and hasattr(self.provider_obj, "progress"):
                self.provider_obj.progress = session.sink  # items read per kind (engine/progress.py)
        return self.provider_obj

    def read(self, session: Session) -> list[ActualResource]:
        raise NotImplementedError

    def facts(self, resource: ActualResource) -> dict[str, Any]:
        """What `--filter KEY=GLOB` sees of a resource."""
        return {"name": resource.address.name}

    def materials(self, session: Session, selected: list[ActualResource]) -> dict[str, dict[str, str]]:
        """Public files per selected resource (address → field → content), e.g. certificate PEMs."""
        return {}

    def names(
        self, selected: list[ActualResource], materials: Mapping[str, Mapping[str, str]], taken: set[Address]
    ) -> dict[Address, str]:
        """Readable, valid, unique names for resources the cloud identifies by id (address → new name)."""
        return {}

    def split_keys(self, selected: list[ActualResource]) -> dict[Address, str]:
        """Which file a resource goes to when its kind has too many for one (e.g. its thing group)."""
        return {}

    def review_notes(self, selected: list[ActualResource]) -> list[Note]:
        """What an operator taking over the selected resources should look at (the import changes nothing)."""
        return []

    def stats(self) -> dict[str, int]:
        """API calls made, per operation."""
        return dict(self.provider_obj.client.calls) if self.provider_obj is not None else {}

    def paced_seconds(self) -> float:
        """Time spent waiting for the API quotas (engine/ratelimit.py), when the client is paced."""
        limiter = getattr(getattr(self.provider_obj, "client", None), "limiter", None)
        return sum(b["waitedSeconds"] for b in limiter.stats().values()) if limiter is not None else 0.0


def importer_for(provider: str) -> ProviderImporter:
    module_name = IMPORTERS.get(provider)
    if module_name is None:
        raise FleetctlError(error(f"fleetctl cannot import from '{provider}' targets"))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise FleetctlError(
                error(
                    f"importing from {provider} targets is not available yet",
                    f"it needs {module_name} (see engine/importer/registry.py)",
                )
            ) from None
        raise
    importer: ProviderImporter = module.make_importer()
    return importer
