"""The expand stage: what a kind's expand function gets (ExpandContext: files inside the fence, certificates, secrets
as fingerprints, the other manifests) and the helpers most kinds expand with (declared fields, dependency edges,
one DesiredResource)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from engine.diagnostics import Diagnostics, error
from engine.manifest.confine import FilePolicy, FileRefError, read_bounded
from engine.manifest.secrets import resolve_secret_value
from engine.manifest.types import PemRef, SecretRefModel
from engine.manifest.validation import Manifest, spec_value
from engine.model import Address, DesiredResource, SecretRef, canonical_json, secret_fingerprint
from engine.pki import CertInfo, PemError, cert_info, issued_by


@dataclass
class Expanded:
    resources: list[DesiredResource] = field(default_factory=list)


@dataclass
class ExpandContext:
    """What a kind's expand function may use: files, secrets, the other manifests, and a diagnostics sink."""

    root: Path
    manifest: Manifest
    index: dict[tuple[str, str | None, str], Manifest]
    env: Mapping[str, str]
    diags: Diagnostics
    resolve_secrets: bool = True
    shared_dependencies: dict[tuple[Address, ...], tuple[Address, ...]] = field(default_factory=dict)
    files: FilePolicy | None = None  # the fence for file references (engine/manifest/confine.py)

    @property
    def policy(self) -> FilePolicy:
        if self.files is None:
            self.files = FilePolicy.of(self.root)
        return self.files

    def error(self, summary: str, *path: Any, detail: str = "") -> None:
        self.diags.add(
            error(
                summary,
                detail,
                source=self.manifest.source(*path),
                address=str(self.manifest.address),
                field=("spec." + ".".join(map(str, path))) if path else None,
            )
        )

    def lookup(self, qualified_kind: str, name: str, target: str | None = None) -> Manifest | None:
        return self.index.get((qualified_kind, target if target is not None else self.manifest.target, name))

    def read_public(self, ref: PemRef | None, *path: Any) -> str | None:
        """Read public material (a PEM). Relative paths: the manifest's folder first, then the fleet root; the file
        must resolve inside the fleet folder or an allowed directory (engine/manifest/confine.py)."""
        if ref is None:
            return None
        if ref.inline is not None or ref.file is None:  # (PemRef holds one of the two)
            return ref.inline
        try:
            found = self.policy.locate(ref.file, (self.manifest.doc.base_dir, self.root))
        except FileRefError as exc:
            self.error(str(exc), *path)
            return None
        try:
            data = read_bounded(found)
        except (OSError, FileRefError) as exc:
            self.error(f"cannot read file '{ref.file}': {getattr(exc, 'strerror', None) or exc}", *path)
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.error(
                f"file '{ref.file}' is not UTF-8 text (a file of {len(data)} bytes, invalid byte at offset "
                f"{exc.start}); expected a PEM",
                *path,
            )
            return None

    def read_cert(self, ref: PemRef | None, *path: Any) -> CertInfo | None:
        """Read and parse a public certificate; a missing file, a private key or a non-PEM is an error at `path`."""
        pem = self.read_public(ref, *path)
        if pem is None:
            return None
        try:
            return _cert_info(pem)
        except PemError as exc:
            self.error(str(exc), *path)
            return None

    def read_ca_pair(
        self, ca_ref: PemRef | None, verification_ref: PemRef | None, how: str
    ) -> tuple[CertInfo | None, CertInfo | None]:
        """A CA certificate and its proof-of-possession certificate (made outside fleetctl: `how`)."""
        info = self.read_cert(ca_ref, "certificatePem")
        if info and not info.is_ca:
            self.error("certificatePem is not a CA certificate (basicConstraints CA:TRUE missing)", "certificatePem")
        vinfo = self.read_cert(verification_ref, "verificationCertificatePem") if verification_ref else None
        if vinfo and info and not issued_by(vinfo.pem, info.pem):
            self.error(
                "the verification certificate is not signed by this CA", "verificationCertificatePem", detail=how
            )
            return info, None
        return info, vinfo

    def secret(self, ref: SecretRefModel, *path: Any) -> tuple[str | None, SecretRef]:
        """Resolve a secret reference to its fingerprint (never its value) and the reference apply re-reads."""
        sref = SecretRef(ref.source, ref.ref)
        value = resolve_secret_value(sref, self.root, self.env, self.policy)
        if isinstance(value, Exception):
            if self.resolve_secrets:
                self.error(str(value), *path)
            return None, sref
        return secret_fingerprint(value), sref


@functools.lru_cache(maxsize=65536)
def _cert_info(pem: str) -> CertInfo:
    return cert_info(pem)


def declared(spec: BaseModel) -> dict[str, Any]:
    """The fields the manifest wrote (a field it leaves out is not managed), as plain JSON values."""
    return spec.model_dump(mode="json", exclude_unset=True)


def dependency_addresses(ctx: ExpandContext) -> tuple[Address, ...]:
    """Addresses of everything this manifest references (each is a dependency edge)."""
    m = ctx.manifest
    out: list[Address] = []
    for ref in m.decl.references:
        value = spec_value(m.spec, ref.path)
        if value is None:
            continue
        for name in value if ref.many else [value]:
            for kind in (ref.kind,) + ref.optional_kinds:
                dep = ctx.lookup(kind, name, m.target if ref.same_target else None)
                if dep is not None:
                    out.append(dep.address)
                    break
    deps = tuple(sorted(set(out)))
    shared = ctx.shared_dependencies  # 100,000 generated things that depend on one group and one type: one tuple
    if deps in shared or len(shared) < 1024:
        return shared.setdefault(deps, deps)
    return deps


def simple_desired(
    ctx: ExpandContext,
    spec: dict[str, Any],
    *,
    inputs: Mapping[str, Any] | None = None,
    secrets: dict[str, SecretRef] | None = None,
) -> Expanded:
    m = ctx.manifest
    for name in m.decl.always_managed:
        if name not in spec:
            value = getattr(m.spec, name)
            spec[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return Expanded(
        [
            DesiredResource(
                m.address,
                m.decl.qualified,
                spec,
                m.source(),
                dependency_addresses(ctx),
                inputs or _NONE,
                secrets or _NONE,
            )
        ]
    )


_NONE: Mapping[str, Any] = MappingProxyType({})  # one shared, read-only "no inputs" for 100,000 resources


def canonical(value: Any) -> Any:
    """A JSON value with keys sorted (documents compared in canonical form)."""
    return json.loads(canonical_json(value))
