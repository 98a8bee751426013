"""From a fleet folder to desired resources, in stages, collecting every diagnostic on the way.

Stages (cloud-custodian's order): YAML (syntax, duplicate keys) → envelope (apiVersion, kind, metadata)
→ spec (pydantic model of the kind) → addresses (duplicates) → references (every name resolves, in the
right Target) → expand (normalise to the provider's canonical shape, read public files, fingerprint
secrets). A later stage runs on whatever the earlier ones accepted, so one bad document does not hide the
errors of the others.
"""
from __future__ import annotations

import contextlib
import difflib
import functools
import gc
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from engine import kinds as registry
from engine.diagnostics import Diagnostic, Diagnostics, Source, error
from engine.fingerprint import key_setting_problem
from engine.kinds import KindDecl
from engine.manifest import generators
from engine.manifest.confine import FilePolicy, FileRefError, allowance_problem, read_bounded
from engine.manifest.limits import Limits
from engine.manifest.loader import Document, load_path
from engine.manifest.types import Envelope, PemRef, SecretRefModel
from engine.model import Address, DesiredResource, SecretRef, canonical_json, secret_fingerprint
from engine.pki import CertInfo, PemError, cert_info, issued_by


@dataclass
class Manifest:
    """One validated document: its kind declaration, envelope and typed spec."""

    decl: KindDecl
    doc: Document
    envelope: Envelope
    spec: BaseModel

    @property
    def name(self) -> str:
        return self.envelope.metadata.name

    @property
    def target(self) -> str | None:
        return self.envelope.metadata.target

    @functools.cached_property
    def address(self) -> Address:      # one object per manifest: 100,000 devices ask for it many times
        return address_for(self.decl, self.name, self.target)

    def source(self, *path: Any) -> Source:
        return self.doc.source(("spec",) + tuple(path)) if path else self.doc.source(("metadata", "name"))


def address_for(decl: KindDecl, name: str, target: str | None) -> Address:
    if decl.targeted:
        return Address.of(decl.provider, target or "-", decl.kind, name)
    return Address.of(decl.provider, decl.kind, name)


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
    files: FilePolicy | None = None          # the fence for file references (engine/manifest/confine.py)

    @property
    def policy(self) -> FilePolicy:
        if self.files is None:
            self.files = FilePolicy.of(self.root)
        return self.files

    def error(self, summary: str, *path: Any, detail: str = "") -> None:
        self.diags.add(error(summary, detail, source=self.manifest.source(*path),
                             address=str(self.manifest.address), field=("spec." + ".".join(map(str, path))) if path else None))

    def lookup(self, qualified_kind: str, name: str, target: str | None = None) -> Manifest | None:
        return self.index.get((qualified_kind, target if target is not None else self.manifest.target, name))

    def read_public(self, ref: PemRef | None, *path: Any) -> str | None:
        """Read public material (a PEM). Relative paths: the manifest's folder first, then the fleet root; the file
        must resolve inside the fleet folder or an allowed directory (engine/manifest/confine.py)."""
        if ref is None:
            return None
        if ref.inline is not None:
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
            self.error(f"file '{ref.file}' is not UTF-8 text (a file of {len(data)} bytes, invalid byte at offset "
                       f"{exc.start}); expected a PEM", *path)
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

    def read_ca_pair(self, ca_ref: PemRef | None, verification_ref: PemRef | None,
                     how: str) -> tuple[CertInfo | None, CertInfo | None]:
        """A CA certificate and its proof-of-possession certificate (made outside fleetctl: `how`)."""
        info = self.read_cert(ca_ref, "certificatePem")
        if info and not info.is_ca:
            self.error("certificatePem is not a CA certificate (basicConstraints CA:TRUE missing)", "certificatePem")
        vinfo = self.read_cert(verification_ref, "verificationCertificatePem") if verification_ref else None
        if vinfo and info and not issued_by(vinfo.pem, info.pem):
            self.error("the verification certificate is not signed by this CA", "verificationCertificatePem",
                       detail=how)
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


ENCRYPTED_SUFFIXES = (".enc", ".sops", ".age", ".gpg")


def resolve_secret_value(ref: SecretRef, root: Path, env: Mapping[str, str],
                         policy: FilePolicy | None = None) -> str | Exception:
    """The secret's value, or the reason it cannot be had. Callers keep the value out of every output; the reason
    names the reference, never the content. A `{file:}` secret lies outside the fleet repository (or is an
    encrypted file inside it) and, outside it, in a directory a Target allows (`policy`; default: none)."""
    if ref.source == "env":
        if ref.ref not in env:
            return LookupError(f"secret environment variable {ref.ref} is not set")
        return env[ref.ref]
    if ref.source == "file":
        policy = policy or FilePolicy.of(root)
        path = Path(os.path.expanduser(ref.ref))
        if not path.is_absolute():
            path = root / path
        try:
            resolved = policy.check(ref.ref, path)
        except FileRefError as exc:
            return ValueError(f"secret {exc}")
        if policy.inside_root(resolved) and not resolved.name.endswith(ENCRYPTED_SUFFIXES):
            return ValueError(f"secret file {ref.ref} lies inside the fleet repository; keep secrets outside it "
                              "(in a directory a Target's spec.files.allow names) or encrypted (.enc/.sops/.age/.gpg)")
        try:
            data = read_bounded(resolved)
        except FileRefError as exc:
            return ValueError(f"secret file {ref.ref}: {exc}")
        except OSError as exc:
            return LookupError(f"cannot read secret file {ref.ref}: {exc.strerror}")
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:
            return ValueError(f"secret file {ref.ref} is not UTF-8 text (a file of {len(data)} bytes)")
    key = "FLEETCTL_SECRET_" + "".join(c if c.isalnum() else "_" for c in ref.ref).upper()
    if key in env:
        return env[key]
    return LookupError(f"secretRef '{ref.ref}' is not available (set {key})")


@dataclass
class Fleet:
    root: Path
    manifests: list[Manifest]
    desired: list[DesiredResource]
    diagnostics: Diagnostics

    def targets(self) -> dict[str, Manifest]:
        return {m.name: m for m in self.manifests if m.decl.qualified == "fleetctl.Target"}

    @property
    def digest(self) -> str:
        """Digest of the desired state (what a saved plan was made from)."""
        digest = hashlib.sha256(b"[")     # canonical_json of the whole list, hashed item by item (one 100,000-
        for i, r in enumerate(sorted(self.desired, key=lambda r: r.address)):     # item JSON text is 100s of MB)
            item = (str(r.address), r.kind, r.spec, {k: v.to_json() for k, v in r.secrets.items()})
            digest.update((("," if i else "") + canonical_json(item)).encode())
        digest.update(b"]")
        return "sha256:" + digest.hexdigest()


def _loc_text(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _allowed_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at `loc` (for 'unknown field' messages); best effort through nested models."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", {})
        info = fields.get(part)
        if info is None:
            return []
        annotation = info.annotation
        current = _model_in(annotation)
        if current is None:
            return []
    return sorted(getattr(current, "model_fields", {}).keys())


def secret_capable(model: type[BaseModel], loc: tuple) -> bool:
    """Whether the field at `loc` (or one it sits in) may hold a secret reference: pydantic's `input` of an error
    there is never quoted. Free-form fields (dict[str, Any]) count as secret-capable: device values hold secrets."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = getattr(current, "model_fields", {}).get(part)
        if info is None:
            return False
        if _mentions(info.annotation, SecretRefModel) or _free_form(info.annotation):
            return True
        current = _model_in(info.annotation)
    return False


def _mentions(annotation: Any, target: type) -> bool:
    if annotation is target:
        return True
    return any(_mentions(arg, target) for arg in getattr(annotation, "__args__", ()) or ()) or \
        any(_mentions(arg, target) for arg in getattr(annotation, "__metadata__", ()) or () if isinstance(arg, type))


def _free_form(annotation: Any) -> bool:
    return annotation is Any or any(a is Any for a in getattr(annotation, "__args__", ()) or ())


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _data_loc(loc: tuple, data: Any, kind: str) -> tuple:
    """The part of a pydantic error location that is a path in the input `data` (pydantic adds the names of
    union members and validators, `function-after[...]`, which a key written with a `[` must not be taken for);
    a missing field's name, not in the data, ends the path."""
    out: list[Any] = []
    current = data
    for i, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            out.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            out.append(part)
            current = current[part]
        elif i == len(loc) - 1 and kind == "missing" and isinstance(part, str):
            out.append(part)
    return tuple(out)


def _pydantic_diags(exc: ValidationError, doc: Document, prefix: tuple, model: type[BaseModel],
                    address: str | None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[tuple] = set()
    data: Any = doc.data
    for part in prefix:
        data = data.get(part) if isinstance(data, dict) else None
    for err in exc.errors(include_url=False):
        loc = _data_loc(tuple(err["loc"]), data, err["type"])
        if loc in seen:
            continue
        seen.add(loc)
        field_path = _loc_text(prefix + loc)
        kind = err["type"]
        if kind in ("extra_forbidden", "missing") and not loc:
            summary, detail = err["msg"], ""
        elif kind == "extra_forbidden":
            allowed = _allowed_fields(model, loc)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            summary = f"unknown field '{loc[-1]}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
            detail = f"expected one of: {', '.join(allowed)}" if allowed else ""
        elif kind == "missing":
            summary, detail = f"required field '{loc[-1]}' is missing", ""
        else:
            msg = err["msg"].removeprefix("Value error, ")
            summary = msg
            got = err.get("input")
            quotable = isinstance(got, (str, int, float, bool)) and kind != "value_error" \
                and not secret_capable(model, loc)      # a secret's input is described, never quoted (13.1)
            detail = f"got {got!r}" if quotable else ""
            if not quotable and isinstance(got, str) and kind != "value_error":
                detail = f"got a text of {len(got)} character(s) (not shown: this field may hold a secret)"
        out.append(error(summary, detail, source=doc.source(prefix + loc), address=address, field=field_path))
    return out


def _check_envelope(doc: Document, diags: Diagnostics) -> tuple[KindDecl, Envelope] | None:
    data = doc.data
    if not isinstance(data, dict):
        diags.add(error("a manifest document must be a mapping with apiVersion, kind, metadata and spec",
                        source=doc.source()))
        return None
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as exc:
        diags.extend(_pydantic_diags(exc, doc, (), Envelope, None))
        return None
    decl = registry.lookup(envelope.apiVersion, envelope.kind)
    if decl is None:
        known = registry.all_kinds()
        groups = sorted({v for d in known for v in d.api_versions})
        group, _, version = envelope.apiVersion.rpartition("/")
        same_kind = registry.lookup_group(envelope.apiVersion, envelope.kind) if group else None
        served = list(same_kind.versions) if same_kind else sorted({v for d in known if d.group == group
                                                                    for v in d.versions})
        if served and version not in served:     # a known group (and kind), a version it does not serve
            listed = ", ".join(f"{group}/{v}" for v in served)
            diags.add(error(f"apiVersion '{envelope.apiVersion}' is not served: {group} serves {listed}"
                            + (f" for {envelope.kind}" if same_kind else ""),
                            f"expected apiVersion: {listed}", source=doc.source(("apiVersion",)),
                            field="apiVersion"))
        elif envelope.apiVersion not in groups:
            hint = difflib.get_close_matches(envelope.apiVersion, groups, n=1)
            diags.add(error(f"unknown apiVersion '{envelope.apiVersion}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                            f"expected one of: {', '.join(groups)}", source=doc.source(("apiVersion",)),
                            field="apiVersion"))
        else:
            names = sorted(d.kind for d in known if envelope.apiVersion in d.api_versions)
            hint = difflib.get_close_matches(envelope.kind, names, n=1)
            diags.add(error(f"unknown kind '{envelope.kind}' for {envelope.apiVersion}"
                            + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                            f"expected one of: {', '.join(names)}", source=doc.source(("kind",)), field="kind"))
        return None
    if decl.targeted and not envelope.metadata.target:
        diags.add(error(f"{decl.kind} needs metadata.target (the Target it lives in)",
                        source=doc.source(("metadata",)), field="metadata.target"))
        return None
    return decl, envelope


def _get_path(spec: BaseModel, path: str) -> Any:
    value: Any = spec
    for part in path.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
    return value


def _check_references(manifests: list[Manifest], index: dict, diags: Diagnostics) -> None:
    for m in manifests:
        for ref in m.decl.references:
            value = _get_path(m.spec, ref.path)
            if value is None:
                continue
            names = value if ref.many else [value]
            for i, name in enumerate(names):
                if not isinstance(name, str):
                    continue
                kinds = (ref.kind,) + ref.optional_kinds
                target = m.target if ref.same_target else None
                if any((k, target, name) in index for k in kinds):
                    continue
                path = tuple(ref.path.split(".")) + ((i,) if ref.many else ())
                candidates = sorted(n for (k, t, n) in index if k in kinds and t == target)
                hint = difflib.get_close_matches(name, candidates, n=1)
                where = f" in target '{m.target}'" if ref.same_target and m.target else ""
                diags.add(error(f"unresolved reference: no {' or '.join(k.split('.')[-1] for k in kinds)} named "
                                f"'{name}'{where}" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                                f"declared: {', '.join(candidates) or 'none'}",
                                source=m.source(*path), address=str(m.address), field="spec." + ".".join(map(str, path))))


def validate_documents(docs: list[Document], diags: Diagnostics) -> list[Manifest]:
    manifests: list[Manifest] = []
    shared: dict[frozenset[str], set[str]] = {}
    for doc in docs:
        checked = _check_envelope(doc, diags)
        if checked is None:
            continue
        decl, envelope = checked
        try:
            spec = decl.spec_model.model_validate(envelope.spec)
        except ValidationError as exc:
            address = str(address_for(decl, envelope.metadata.name, envelope.metadata.target))
            diags.extend(_pydantic_diags(exc, doc, ("spec",), decl.spec_model, address))
            continue
        envelope.spec = {}     # the typed spec supersedes the raw one (a 100,000-device fleet would hold both)
        _share_fields_sets(envelope, shared)
        _share_fields_sets(spec, shared)
        manifests.append(Manifest(decl, doc, envelope, spec))
    return manifests


def _share_fields_sets(model: BaseModel, shared: dict[frozenset[str], set[str]]) -> None:
    """Give every validated model the one set of its set fields that all models with the same fields share.
    Pydantic keeps a set per model instance (216 bytes): three per document, 65 MB for 100,000 generated devices.
    Validated manifests are never assigned to afterwards (an assignment would add to the shared set; pydantic-core
    needs a real `set`, so a frozenset cannot enforce it)."""
    fields = frozenset(model.__pydantic_fields_set__)
    object.__setattr__(model, "__pydantic_fields_set__", shared.setdefault(fields, set(fields)))
    for value in model.__dict__.values():
        if isinstance(value, BaseModel):
            _share_fields_sets(value, shared)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            for item in value:
                if isinstance(item, BaseModel):
                    _share_fields_sets(item, shared)


def _index(manifests: list[Manifest], diags: Diagnostics) -> dict[tuple[str, str | None, str], Manifest]:
    index: dict[tuple[str, str | None, str], Manifest] = {}
    for m in manifests:
        key = (m.decl.qualified, m.target, m.name)
        if key in index:
            first = index[key]
            diags.add(error(f"duplicate address {m.address}", f"first declared at {first.source()}",
                            source=m.source(), address=str(m.address)))
            continue
        index[key] = m
    return index


def _check_targets(manifests: list[Manifest], targets: dict[str, Manifest], diags: Diagnostics) -> None:
    for m in manifests:
        if not m.decl.targeted:
            continue
        t = targets.get(m.target or "")
        if t is None:
            hint = difflib.get_close_matches(m.target or "", list(targets), n=1)
            diags.add(error(f"unknown target '{m.target}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                            f"declared targets: {', '.join(sorted(targets)) or 'none'}",
                            source=m.doc.source(("metadata", "target")), address=str(m.address),
                            field="metadata.target"))
            continue
        needs = m.decl.provider
        if needs in ("aws", "azure") and getattr(t.spec, needs, None) is None:
            diags.add(error(f"target '{m.target}' has no {needs} section, but {m.decl.kind} is an {needs} kind",
                            source=m.doc.source(("metadata", "target")), address=str(m.address),
                            field="metadata.target"))


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector. Loading a 100,000-device fleet allocates millions of long-lived
    objects and no garbage cycles; the collector would traverse all of them at every full pass: 3.6 s of an 8.2 s
    load (docs/performance.md). Reference counting still frees everything that is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_fleet(root: str | Path, env: Mapping[str, str] | None = None, *, resolve_secrets: bool = True,
               on_targets: Callable[[dict[str, BaseModel]], None] | None = None) -> Fleet:
    """Load, validate and expand a fleet. Never raises for bad input: look at `fleet.diagnostics`.

    `on_targets(specs)` is called with the valid Target specs as soon as the files are parsed, before the
    (long, at 100,000 devices) expansion and validation of everything else: `plan` starts reading the clouds then."""
    with paused_gc():
        return _load_fleet(Path(root), env, resolve_secrets, on_targets)


def _load_fleet(root: Path, env: Mapping[str, str] | None, resolve_secrets: bool,
                on_targets: Callable[[dict[str, BaseModel]], None] | None) -> Fleet:
    env = dict(os.environ) if env is None else env
    diags = Diagnostics()
    problem = key_setting_problem()       # the key secret fingerprints are made with (engine/fingerprint.py)
    if problem is not None:
        diags.add(error(problem))
        return Fleet(root, [], [], diags)
    if not root.exists():
        diags.add(error(f"fleet path not found: {root}"))
        return Fleet(root, [], [], diags)
    limits, bad_limits = Limits.from_env(env)      # FLEETCTL_MAX_* (engine/manifest/limits.py)
    diags.extend(bad_limits)
    docs, load_diags = load_path(root, limits)
    diags.extend(load_diags)
    fleet_root = root if root.is_dir() else root.parent
    early = [d for d in docs if isinstance(d.data, dict) and d.data.get("kind") == "Target"]
    early_targets = [m for m in validate_documents(early, Diagnostics()) if m.decl.qualified == "fleetctl.Target"]
    if on_targets is not None:
        on_targets({m.name: m.spec for m in early_targets})
    policy = file_policy(fleet_root, early_targets, diags)
    docs = generators.expand_all(docs, fleet_root, diags, registry.lookup, limits)   # ThingSet rows → documents
    manifests = validate_documents(docs, diags)
    index = _index(manifests, diags)
    manifests = [m for m in manifests if index.get((m.decl.qualified, m.target, m.name)) is m]
    targets = {m.name: m for m in manifests if m.decl.qualified == "fleetctl.Target"}
    _check_targets(manifests, targets, diags)
    _check_references(manifests, index, diags)
    desired: list[DesiredResource] = []
    shared: dict[tuple[Address, ...], tuple[Address, ...]] = {}
    for m in manifests:
        if m.decl.expand is None:
            continue
        ctx = ExpandContext(fleet_root, m, index, env, diags, resolve_secrets, shared, policy)
        desired.extend(m.decl.expand(ctx, m).resources)
    diags.items = generators.fold(diags.items)   # one template mistake, not one error per generated row
    return Fleet(fleet_root, manifests, desired, diags)


def file_policy(root: Path, targets: list[Manifest], diags: Diagnostics) -> FilePolicy:
    """The fleet's file fence: its folder and every Target's `spec.files.allow` (a refused entry is an error at
    its line and allows nothing)."""
    entries: list[str] = []
    for m in targets:
        files = getattr(m.spec, "files", None)
        for i, entry in enumerate(getattr(files, "allow", None) or ()):
            problem = allowance_problem(entry, root)
            if problem is not None:
                diags.add(error(f"files.allow: {problem}", source=m.source("files", "allow", i),
                                address=str(m.address), field=f"spec.files.allow.{i}"))
            elif entry not in entries:
                entries.append(entry)
    return FilePolicy.of(root, entries)


def declared(spec: BaseModel) -> dict[str, Any]:
    """The fields the manifest wrote (a field it leaves out is not managed), as plain JSON values."""
    return spec.model_dump(mode="json", exclude_unset=True)


def dependency_addresses(ctx: ExpandContext) -> tuple[Address, ...]:
    """Addresses of everything this manifest references (each is a dependency edge)."""
    m = ctx.manifest
    out: list[Address] = []
    for ref in m.decl.references:
        value = _get_path(m.spec, ref.path)
        if value is None:
            continue
        for name in (value if ref.many else [value]):
            for kind in (ref.kind,) + ref.optional_kinds:
                dep = ctx.lookup(kind, name, m.target if ref.same_target else None)
                if dep is not None:
                    out.append(dep.address)
                    break
    deps = tuple(sorted(set(out)))
    shared = ctx.shared_dependencies      # 100,000 generated things that depend on one group and one type: one tuple
    if deps in shared or len(shared) < 1024:
        return shared.setdefault(deps, deps)
    return deps


def simple_desired(ctx: ExpandContext, spec: dict[str, Any], *, inputs: dict | None = None,
                   secrets: dict[str, SecretRef] | None = None) -> Expanded:
    m = ctx.manifest
    for name in m.decl.always_managed:
        if name not in spec:
            value = getattr(m.spec, name)
            spec[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return Expanded([DesiredResource(m.address, m.decl.qualified, spec, m.source(), dependency_addresses(ctx),
                                     inputs or _NONE, secrets or _NONE)])


_NONE: Mapping[str, Any] = MappingProxyType({})   # one shared, read-only "no inputs" for 100,000 resources


def canonical(value: Any) -> Any:
    """A JSON value with keys sorted (documents compared in canonical form)."""
    return json.loads(canonical_json(value))
