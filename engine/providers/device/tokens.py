"""Value tokens: how a DeviceConfig's values are kept in the desired spec, and turned back into library values.

Why: a desired resource must hold no secret and still change when one does. A manifest value that is a reference
(`{env: NAME}`, `{secretRef: NAME}`, `{file: path}`, `{certificatePem: NAME}`, `{awsIotEndpoint: T}`,
`{azureHubHost: T}`) becomes a token in the desired spec: a secret's reference and keyed fingerprint, a public
file's name and sha256, a certificate's name, a Target's name. `Tokens` makes them at expand time (reading public
files inside the fence, collecting dependency edges and the Targets named); `library_value(s)` turns a token tree
back into the values engine/providers/device/values.py takes, through a `Lookup` the caller supplies (validation
uses what is at hand, the provider resolves secrets and endpoints at plan and apply time).
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.manifest.confine import FilePolicy, FileRefError, read_bounded
from engine.manifest.core_kinds import TargetSpec
from engine.manifest.expand import ExpandContext
from engine.manifest.secrets import resolve_secret_value
from engine.manifest.specs import spec_as
from engine.manifest.types import SecretRefModel
from engine.manifest.validation import Manifest
from engine.model import Address, SecretRef, secret_fingerprint

from .regmap import DeviceModel
from .values import Resolved

CERTIFICATE_KINDS = ("aws.Certificate", "aws.CACertificate")


_RAW_REFS: Mapping[str, frozenset[str]] = {  # a manifest reference: its key, and the keys allowed beside it
    "env": frozenset(),
    "secretRef": frozenset(),
    "file": frozenset(),
    "certificatePem": frozenset({"target"}),
    "awsIotEndpoint": frozenset(),
    "azureHubHost": frozenset(),
}
_TOKENS: Mapping[str, frozenset[str]] = {  # a token in the desired spec: its key, and its exact key set
    "secret": frozenset({"secret", "fingerprint", "sha256"}),
    "file": frozenset({"file", "sha256"}),
    "certificatePem": frozenset({"certificatePem", "sha256", "target"}),
    "awsIotEndpoint": frozenset({"awsIotEndpoint"}),
    "azureHubHost": frozenset({"azureHubHost", "hostName"}),
}
_DIGEST_KEYS: Mapping[str, frozenset[str]] = {
    "secret": frozenset({"fingerprint", "sha256"}),
    "file": frozenset({"sha256"}),
    "certificatePem": frozenset({"sha256"}),
}
# a secret's token holds its keyed fingerprint (engine/fingerprint.py; `sha256` in plan files made before it, which
# apply refuses with the reason); public files their plain sha256


def raw_ref(value: Any) -> str | None:
    """The reference kind of a manifest value (`{env: NAME}` → "env"), or None for a plain value."""
    if not isinstance(value, Mapping):
        return None
    keys = set(value)
    for kind, extra in _RAW_REFS.items():
        if kind in keys and keys <= {kind} | extra:
            return kind
    return None


def token_ref(value: Any) -> str | None:
    """The reference kind of a desired-spec token, or None for a plain value."""
    if not isinstance(value, Mapping):
        return None
    keys = set(value)
    for kind, shape in _TOKENS.items():
        if kind in keys and keys <= shape and (kind not in _DIGEST_KEYS or bool(_DIGEST_KEYS[kind] & keys)):
            return kind
    return None


@dataclass(frozen=True)
class Found:
    """A resolved reference: the value (text, or bytes for file content), whether it is secret, and the file it
    came from when artifacts should point at the file rather than copy it (private keys)."""

    value: Any = field(repr=False)
    sensitive: bool = False
    source: str | None = None


class Unavailable(Exception):
    """A reference that cannot be resolved now; the message is user-facing."""


# lookup(kind, token, key, for_slot) -> Found; raises Unavailable.
Lookup = Callable[[str, Mapping[str, Any], str, bool], Found]


def file_value(data: bytes, for_slot: bool) -> Any:
    """File content as a value: bytes for a slot, text without the final line break for a register."""
    return data if for_slot else data.decode("utf-8", errors="strict").rstrip("\r\n")


def value_key(level: str, name: str) -> str:
    """The key of a value in secrets/files/sources maps: `group:profile`, `device:admin_password`."""
    return f"{level}:{name}"


def library_value(token: Any, key: str, lookup: Lookup, *, for_slot: bool = False, named_slot: bool = False) -> Any:
    """A token tree → the value the library takes: references replaced through `lookup`; a value holding a
    reference becomes `Resolved` (sensitive when any secret is in it). Raises Unavailable."""
    if named_slot and isinstance(token, Mapping) and token_ref(token) is None and "content" in token:
        return {**token, "content": library_value(token["content"], key, lookup, for_slot=True)}
    found: list[Found] = []

    def walk(node: Any, where: str) -> Any:
        kind = token_ref(node)
        if kind is not None:
            hit = lookup(kind, node, where, for_slot)
            found.append(hit)
            return hit.value
        if isinstance(node, Mapping):
            return {k: walk(v, f"{where}/{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{where}/{i}") for i, v in enumerate(node)]
        return node

    value = walk(token, key)
    if not found:
        return value
    whole = token_ref(token) is not None
    return Resolved.of(value, sensitive=any(f.sensitive for f in found), source=found[0].source if whole else None)


def slot_target(model: DeviceModel, name: str) -> tuple[bool, bool, bool]:
    """(sensitive, is a slot, is a named slot) for a value name; unknown names are left to the library."""
    reg = model.register(name)
    if reg is not None:
        return reg.sensitive, False, False
    slot = model.slot(name.split("/", 1)[0])
    if slot is not None:
        return slot.sensitive, True, slot.named
    return False, False, False


def library_values(
    model: DeviceModel,
    tokens: Mapping[str, Any],
    level: str,
    lookup: Lookup,
    on_unavailable: Callable[[str, str], None],
) -> dict[str, Any]:
    """Every token of one level as library values; a value with an unavailable reference is left out and
    reported through `on_unavailable(name, message)`."""
    out: dict[str, Any] = {}
    for name, token in tokens.items():
        _, is_slot, named = slot_target(model, name)
        try:
            out[name] = library_value(token, value_key(level, name), lookup, for_slot=is_slot, named_slot=named)
        except Unavailable as exc:
            on_unavailable(name, str(exc))
    return out


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def placeholder_endpoint(region: str) -> str:
    """An AWS IoT data endpoint of the region's shape, to validate a value before the real one is known."""
    return f"{'x' * 14}-ats.iot.{region}.amazonaws.com"


def _read_public(policy: FilePolicy, name: str, bases: list[Path]) -> tuple[bytes, str] | str:
    """(bytes, resolved path) of a public file inside the fence, or why not (a message without content)."""
    try:
        found = policy.locate(name, bases)
        return read_bounded(found), str(found)
    except FileRefError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read file '{name}': {exc.strerror}"


class Catalog:
    """The manifests references name, indexed once per DeviceConfig (a fleet may hold 10,000 certificates)."""

    def __init__(self, ctx: ExpandContext) -> None:
        self.certificates: dict[str, list[Manifest]] = {}
        self.targets: dict[str, Manifest] = {}
        for (kind, _, name), manifest in ctx.index.items():
            if kind in CERTIFICATE_KINDS:
                self.certificates.setdefault(name, []).append(manifest)
            elif kind == "fleetctl.Target":
                self.targets[name] = manifest


class Tokens:
    """Turns manifest values into desired-spec tokens, collecting what a device's desired resource carries:
    secret references (and, for validation only, their values), public files, sources of values resolved later,
    dependency edges and the cloud Targets named."""

    def __init__(self, ctx: ExpandContext, model: DeviceModel, catalog: Catalog | None = None) -> None:
        self.ctx, self.model = ctx, model
        self.catalog = catalog or Catalog(ctx)
        self.secrets: dict[str, SecretRef] = {}
        self.secret_values: dict[str, tuple[str, str | None]] = {}
        self.files: dict[str, str] = {}
        self.pems: dict[str, str] = {}
        self.contents: dict[str, bytes] = {}
        self.sources: dict[str, str] = {}
        self.depends: set[Address] = set()
        self.targets: list[str] = []
        self.certificates: list[Manifest] = []

    def level(self, values: Mapping[str, Any], level: str, path: tuple[Any, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, raw in values.items():
            name = str(name)
            sensitive, is_slot, named = slot_target(self.model, name)
            key = value_key(level, name)
            where = path + (name,)
            if named and isinstance(raw, Mapping) and raw_ref(raw) is None and "content" in raw:
                out[name] = {**raw, "content": self._token(raw["content"], key, sensitive, where + ("content",))}
            else:
                out[name] = self._token(raw, key, sensitive, where)
        return out

    def _token(self, value: Any, key: str, sensitive: bool, path: tuple[Any, ...]) -> Any:
        kind = raw_ref(value)
        if kind is None:
            if isinstance(value, Mapping):
                return {k: self._token(v, f"{key}/{k}", sensitive, path + (k,)) for k, v in value.items()}
            if isinstance(value, list):
                return [self._token(v, f"{key}/{i}", sensitive, path + (i,)) for i, v in enumerate(value)]
            return value
        if kind in ("env", "secretRef") or (kind == "file" and sensitive):
            return self._secret(value, key, path)
        if kind == "file":
            return self._file(value["file"], key, path)
        if kind == "certificatePem":
            return self._certificate(value, key, path)
        if kind == "awsIotEndpoint":
            return self._endpoint(value["awsIotEndpoint"], key, path)
        return self._hub(value["azureHubHost"], key, path)

    def _where(self, path: tuple[Any, ...]) -> str:
        return str(self.ctx.manifest.source(*path))

    def _secret(self, raw: Mapping[str, Any], key: str, path: tuple[Any, ...]) -> dict[str, Any]:
        try:
            ref = SecretRefModel.model_validate(dict(raw))
        except ValidationError as exc:
            self.ctx.error(exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, "), *path)
            return {"secret": dict(raw), "fingerprint": None}
        sref = SecretRef(ref.source, ref.ref)
        source = None
        if sref.source == "file":
            target = Path(os.path.expanduser(sref.ref))
            source = str((target if target.is_absolute() else self.ctx.root / target).resolve())
            self.files[key] = source
        value = resolve_secret_value(sref, self.ctx.root, self.ctx.env, self.ctx.policy)
        fingerprint = None
        if isinstance(value, LookupError):  # not at hand now: an error only where a device needs it
            self.sources[key] = self._where(path)
        elif isinstance(value, Exception):
            self.ctx.error(str(value), *path)
        else:
            self.secret_values[key] = (value, source)
            fingerprint = secret_fingerprint(value)
        self.secrets[key] = sref
        return {"secret": sref.to_json(), "fingerprint": fingerprint}

    def _file(self, name: str, key: str, path: tuple[Any, ...]) -> dict[str, Any]:
        found = _read_public(self.ctx.policy, name, [self.ctx.manifest.doc.base_dir, self.ctx.root])
        if isinstance(found, str):
            self.ctx.error(found, *path)
            return {"file": name, "sha256": None}
        data, where = found
        self.files[key], self.contents[key] = where, data
        return {"file": name, "sha256": sha256_of(data)}

    def _certificate(self, raw: Mapping[str, Any], key: str, path: tuple[Any, ...]) -> dict[str, Any]:
        name, target = raw["certificatePem"], raw.get("target")
        token: dict[str, Any] = {"certificatePem": name, "sha256": None, **({"target": target} if target else {})}
        found = self.certificate(name, target, path)
        if found is None:
            return token
        manifest, data, where = found
        self.depends.add(manifest.address)
        if manifest.decl.qualified == "aws.Certificate":
            self.certificates.append(manifest)
        if where is None:
            self.pems[key] = data.decode("utf-8")
        else:
            self.files[key] = where
        self.contents[key] = data
        token["sha256"] = sha256_of(data)
        return token

    def certificate(
        self, name: str, target: str | None, path: tuple[Any, ...], *, report: bool = True
    ) -> tuple[Manifest, bytes, str | None] | None:
        """An AWS Certificate/CACertificate manifest by name (and Target) and its PEM bytes and file; errors
        are reported at `path` unless `report` is off (a link the manifests already check)."""
        candidates = sorted(
            (m for m in self.catalog.certificates.get(name, ()) if target is None or m.target == target),
            key=lambda m: str(m.address),
        )
        if not report and len(candidates) != 1:
            return None
        if not candidates:
            names = sorted(self.catalog.certificates)
            hint = difflib.get_close_matches(name, names, n=1)
            self.ctx.error(
                f"unresolved reference: no Certificate or CACertificate named '{name}'"
                + (f" in target '{target}'" if target else "")
                + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                *path,
                detail=f"declared: {', '.join(names) or 'none'}",
            )
            return None
        if len(candidates) > 1:
            self.ctx.error(
                f"'{name}' names certificates in several targets "
                f"({', '.join(sorted(m.target or '' for m in candidates))}): add `target:`",
                *path,
            )
            return None
        manifest = candidates[0]
        pem = getattr(manifest.spec, "certificatePem", None)
        if pem is not None and pem.inline is not None:
            return manifest, pem.inline.encode("utf-8"), None
        found = (
            _read_public(self.ctx.policy, pem.file, [manifest.doc.base_dir, self.ctx.root])
            if pem is not None and pem.file
            else None
        )
        if found is None or isinstance(found, str):
            if report:
                self.ctx.error(
                    f"the certificate '{name}' has no readable certificatePem",
                    *path,
                    detail=f"declared at {manifest.source()}",
                )
            return None
        return manifest, found[0], found[1]

    def _target(self, name: str, cloud: str, path: tuple[Any, ...]) -> Manifest | None:
        targets = self.catalog.targets
        manifest = targets.get(name)
        if manifest is None or getattr(manifest.spec, cloud, None) is None:
            fitting = sorted(n for n, m in targets.items() if getattr(m.spec, cloud, None) is not None)
            hint = difflib.get_close_matches(name, fitting, n=1)
            what = (
                "no Target"
                if manifest is None
                else f"Target '{name}' is not an {cloud.upper()} target; no {cloud.upper()} Target"
            )
            self.ctx.error(
                f"unresolved reference: {what} named '{name}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""),
                *path,
                detail=f"{cloud} targets: {', '.join(fitting) or 'none'}",
            )
            return None
        if name not in self.targets:
            self.targets.append(name)
        return manifest

    def _endpoint(self, name: str, key: str, path: tuple[Any, ...]) -> dict[str, Any]:
        self._target(name, "aws", path)
        self.sources[key] = self._where(path)
        return {"awsIotEndpoint": name}

    def _hub(self, name: str, key: str, path: tuple[Any, ...]) -> dict[str, Any]:
        manifest = self._target(name, "azure", path)
        azure = spec_as(manifest, TargetSpec).azure if manifest is not None else None
        hub = azure.hub if azure is not None else None
        if manifest is not None and hub is None:
            self.ctx.error(f"target '{name}' declares no IoT hub (azure.hub)", *path)
        return {"azureHubHost": name, "hostName": hub.hostName if hub is not None else ""}

    def lookup(self, kind: str, token: Mapping[str, Any], key: str, for_slot: bool) -> Found:
        """Validation-time resolution: what is at hand, a placeholder endpoint, Unavailable otherwise."""
        if kind == "secret":
            if key not in self.secret_values:
                raise Unavailable("the secret is not available now")
            value, source = self.secret_values[key]
            return Found(value, True, source)
        if kind in ("file", "certificatePem"):
            if key not in self.contents:
                raise Unavailable("unreadable file")
            return Found(file_value(self.contents[key], for_slot))
        if kind == "awsIotEndpoint":
            manifest = self.ctx.index.get(("fleetctl.Target", None, token["awsIotEndpoint"]))
            aws = spec_as(manifest, TargetSpec).aws if manifest is not None else None
            if aws is None:
                raise Unavailable("unknown target")
            return Found(placeholder_endpoint(aws.region))
        return Found(token["hostName"])
