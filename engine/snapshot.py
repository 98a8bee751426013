"""Drift snapshots: the actual state a read found, saved so the next drift run reads only what changed since.

`fleetctl drift --snapshot-out FILE` (and `plan`) saves, per Target, the actual state it read, the certificate
links of every thing whose links it read (AWS: one ListThingPrincipals each, the 10 TPS floor of a full read), and
the read's facts: when it started, the account and region, when the last full read was. `--since-snapshot FILE`
starts from one (engine/providers/aws/trail.py reads the CloudTrail events since then and re-reads only the links
they touch).

A snapshot is a cache, never a source of truth: `apply` never reads one (its stale check reads the cloud, as
always), and a snapshot that cannot be trusted is refused with a plain reason and the read is a full one:
another format or an incompatible fleetctl version (major.minor), a content hash that does not match (a damaged
or edited file), and, per Target, another account or region (engine/providers/aws/trail.py checks those against
the live credentials).

The file: one JSON document, compressed with zstd when the `zstandard` module is installed, else gzip (the
loader tells them apart by their magic bytes), written 0600 and atomically with engine/fsutil.py. It holds no
secret: actual state carries only keyed fingerprints of secrets (engine/fingerprint.py), never their values.
The content hash is SHA-256 over the canonical JSON of everything but the hash itself.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from engine import fsutil
from engine.model import ActualResource, Address, canonical_json

FORMAT = 1
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class SnapshotRefused(Exception):
    """A snapshot that cannot be started from; the message says why in plain words."""


def fleetctl_version() -> str:
    try:
        return metadata.version("fleetctl")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _series(version: str) -> str:
    return ".".join(version.split(".")[:2])


@dataclass(frozen=True)
class TargetSnapshot:
    """One Target's part of a snapshot. `read_at`: when the read started (ISO 8601, UTC): every change after it is
    in the next window. `links`: thing → certificate ids, for the things whose links were read or kept."""

    target: str
    provider: str
    read_at: str
    last_full_read: str
    account: str | None = None
    region: str | None = None
    links: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    actual: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "provider": self.provider,
            "readAt": self.read_at,
            "lastFullRead": self.last_full_read,
            "account": self.account,
            "region": self.region,
            "links": {k: list(v) for k, v in sorted(self.links.items())},
            "actual": list(self.actual),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TargetSnapshot:
        return cls(
            data["target"],
            data["provider"],
            data["readAt"],
            data["lastFullRead"],
            data.get("account"),
            data.get("region"),
            {k: tuple(v) for k, v in (data.get("links") or {}).items()},
            tuple(data.get("actual") or ()),
        )


def actual_json(resource: ActualResource) -> dict[str, Any]:
    return {
        "address": str(resource.address),
        "kind": resource.kind,
        "state": resource.state,
        "token": resource.token,
        "managed": resource.managed,
        "ids": resource.ids,
    }


def actual_from_json(data: Mapping[str, Any]) -> ActualResource:
    return ActualResource(
        Address.parse(data["address"]),
        data["kind"],
        data["state"],
        data.get("token", ""),
        bool(data.get("managed")),
        data.get("ids") or {},
    )


@dataclass(frozen=True)
class Snapshot:
    created_at: str
    targets: Mapping[str, TargetSnapshot]
    version: str = field(default_factory=fleetctl_version)
    path: str = ""  # where it was loaded from (reports name it)
    content_hash: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "fleetctlVersion": self.version,
            "createdAt": self.created_at,
            "targets": {name: t.to_json() for name, t in sorted(self.targets.items())},
        }


def content_hash(body: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _compress(data: bytes) -> bytes:
    try:
        import zstandard
    except ImportError:
        return gzip.compress(data, compresslevel=6, mtime=0)
    compressed: bytes = zstandard.ZstdCompressor(level=6).compress(data)
    return compressed


def _decompress(data: bytes) -> bytes:
    if data.startswith(GZIP_MAGIC):
        return gzip.decompress(data)
    if data.startswith(ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:
            raise SnapshotRefused("it is zstd-compressed and the zstandard module is not installed") from None
        plain: bytes = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        return plain
    raise SnapshotRefused("it is not a fleetctl snapshot (neither gzip nor zstd)")


def dumps(snapshot: Snapshot) -> bytes:
    body = snapshot.body()
    return _compress(
        json.dumps(
            {**body, "contentHash": content_hash(body)},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        ).encode("utf-8")
    )


def write(path: str | Path, snapshot: Snapshot) -> Path:
    """Save `snapshot` at `path`: 0600, atomically (engine/fsutil.py)."""
    return fsutil.write_atomic(path, dumps(snapshot), mode=fsutil.PRIVATE)


def load(path: str | Path) -> Snapshot:
    """Read and verify a snapshot; SnapshotRefused says why it cannot be used."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SnapshotRefused(f"it cannot be read ({exc.strerror or exc})") from None
    try:
        doc = json.loads(_decompress(raw))
    except (OSError, EOFError, ValueError) as exc:
        if isinstance(exc, SnapshotRefused):
            raise
        raise SnapshotRefused(f"it is damaged ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SnapshotRefused(
            f"it has format {doc.get('format') if isinstance(doc, dict) else '?'}; this fleetctl reads format {FORMAT}"
        )
    recorded = doc.pop("contentHash", None)
    if recorded != content_hash(doc):
        raise SnapshotRefused("its content hash does not match (the file was changed or damaged)")
    made_by = str(doc.get("fleetctlVersion", ""))
    if _series(made_by) != _series(fleetctl_version()):
        raise SnapshotRefused(
            f"it was made by fleetctl {made_by}; this is fleetctl {fleetctl_version()}, which "
            "projects actual state differently"
        )
    try:
        targets = {name: TargetSnapshot.from_json(t) for name, t in doc["targets"].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise SnapshotRefused(f"it is incomplete ({exc})") from None
    return Snapshot(doc["createdAt"], targets, made_by, str(path), recorded)
