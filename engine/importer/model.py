"""The importer's values: what an import was asked, what it writes, and what the operator must be told.

An exporter turns one actual resource into a manifest spec. Public material (certificate PEMs) and secrets
cannot sit inline in that spec: a `PublicFile` leaf becomes `{file: path}` next to a file the writer creates,
and a `SecretSlot` leaf becomes `{env: NAME}` listed in IMPORT-SECRETS.md, never a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.model import Address


@dataclass(frozen=True)
class PublicFile:
    """Public material written under the output folder (`path` is relative to it, e.g. `certs/x.pem`)."""

    path: str
    content: str


@dataclass(frozen=True)
class SecretSlot:
    """A secret the import must not write: the manifest references `env`, which the operator fills in."""

    env: str
    what: str


def secret_slot(address: Address, field: str, what: str) -> SecretSlot:
    """A secret of `address` at `field`: `FLEETCTL_<NAME>_<FIELD>` (e.g. FLEETCTL_DEVICE2_PRIMARY_KEY)."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", address.name).strip("_").upper() or "RESOURCE"
    fld = re.sub(r"[^A-Za-z0-9]+", "_", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", field)).strip("_").upper()
    return SecretSlot(f"FLEETCTL_{name}_{fld}", what)


class Unimportable(Exception):
    """An exporter cannot express this resource as a manifest that plans clean; the reason says why."""


@dataclass(frozen=True)
class Filter:
    """`KEY=GLOB` (fnmatch, case-sensitive): a resource is selected when every filter matches one of its facts."""

    key: str
    pattern: str

    @classmethod
    def parse(cls, text: str) -> Filter:
        key, sep, pattern = text.partition("=")
        if not sep or not key.strip() or not pattern:
            raise ValueError(f"filter {text!r} is not KEY=GLOB (e.g. name=ESP32-*, thingType=IoTReady)")
        return cls(key.strip(), pattern)

    def __str__(self) -> str:
        return f"{self.key}={self.pattern}"


@dataclass
class Exported:
    """One manifest document about to be written. `origin` is the address the provider read it under (a
    certificate's is its id), `split` the key used when a kind's file grows too large (e.g. a thing group)."""

    address: Address
    kind: str
    spec: dict[str, Any]
    origin: Address
    annotations: dict[str, str] = field(default_factory=dict)
    split: str | None = None


@dataclass(frozen=True, order=True)
class Note:
    """Something the operator must know before merging (a skipped resource, a field left unmanaged)."""

    topic: str  # "skipped" | "unmanaged field" | "attention" | "endpoint"
    address: str
    text: str


@dataclass(frozen=True)
class ImportRequest:
    target: str
    out: Path
    fleet: Path = Path("fleet")
    kinds: tuple[str, ...] = ()  # kind names as the user wrote them; () = every kind of the provider
    filters: tuple[Filter, ...] = ()
    adopt: bool = False
    resume: bool = False
    page_size: int = 250

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed import must ask again (the output depends on it)."""
        return {
            "target": self.target,
            "kinds": sorted(self.kinds),
            "filters": sorted(map(str, self.filters)),
            "pageSize": self.page_size,
        }


@dataclass
class ImportReport:
    """What an import did, for the CLI's summary (the files hold the details)."""

    target: str
    out: Path
    written: dict[str, int] = field(default_factory=dict)  # qualified kind → manifests written
    declared: dict[str, int] = field(default_factory=dict)  # kind → skipped: already declared in the fleet
    skipped: dict[str, int] = field(default_factory=dict)  # kind → skipped: cannot be imported (see notes)
    adopted: int = 0
    files: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    secrets: list[tuple[str, str, str]] = field(default_factory=list)  # (env, address, what)
    calls: dict[str, int] = field(default_factory=dict)
    paced_seconds: float = 0.0
    seconds: float = 0.0
    resumed: list[str] = field(default_factory=list)  # kinds restored from the checkpoint
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds per phase (read, files, ...)
