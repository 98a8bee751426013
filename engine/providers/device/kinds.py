"""device.fleetctl.io/v1 kinds: DeviceModel (a register map declared in the fleet) and DeviceConfig (the desired
register values of a set of devices), and how they become one desired resource per device.

Why this module: it is the boundary between the fleet's manifests and the device library
(engine/providers/device). It validates what can be validated without touching a device or a cloud (so
`fleetctl validate` catches out-of-range values, unknown enum names, individual registers set for a group, a
host name loaded into a certificate slot, unresolved references, each at its file:line), and it names the devices
a plan compares. No SDK is imported here.

Which devices exist (the inventory):
- A DeviceConfig configures the devices listed under `devices:` (keys are device identities: a SpringCore serial
  number, a Wi-Fi MAC in any spelling) and, with `selector: {matchLabels: {...}}`, every known device whose labels
  match. Known devices are the AWS Thing and Azure Device manifests whose name is a device identity, and the
  devices listed by any DeviceConfig of the same model. A device's labels are its Thing's (Device's)
  metadata.labels, overlaid with the `labels` of its `devices:` entry. A device has at most one DeviceConfig.
- A device is planned only when its dump is at hand: `fleetctl plan --dumps DIR` (env FLEETCTL_DUMPS) names the
  folder, and a device's dump is the file named by its identity, optionally after a word and a dash
  (`DA1275B0.json`, `nina-D4-CA-6E-0A-1B-2C.at`). Without a dumps folder no device is planned and a plan holds
  only cloud changes; a configured device without a dump is reported by the plan as a warning. The dump's own
  identity and firmware are checked when it is read (R10).

Values (`values:` for the group, `devices.<ID>.values` per device; the device wins) are the library's typed
values, raw hex (`"5614030A1E1E"`, `{raw: ...}`), or references:
- `{env: NAME}`, `{secretRef: NAME}`, and `{file: path}` where the register or slot is sensitive: secrets. The
  desired state holds only the reference and the value's fingerprint; the value goes to the artifacts that need
  it. A secret that cannot be had now is not a validation error (validate needs no credentials): a plan that
  compares a device needing it reports it at its file:line, and apply fails that device.
- `{file: path}` elsewhere: public material (a CA or client certificate), read relative to the manifest.
- `{certificatePem: NAME}` (`target: T` when several Targets hold NAME): the PEM of an AWS Certificate or
  CACertificate manifest; the device is planned after that certificate.
- `{awsIotEndpoint: TARGET}`: the IoT data endpoint of that AWS Target, resolved when the plan is made;
  `{azureHubHost: TARGET}`: the IoT hub host name of that Azure Target. References may sit inside a structured
  value, e.g. the host of a u-blox peer URL `{host: {awsIotEndpoint: aws-eu}, port: 8883, query: {...}}`.

How the plan gets register-level changes: the desired spec of a device holds the values as written (references
as tokens, secrets as fingerprints), so it cannot be compared with a dump field by field: bitfields are
read-modify-write (R3), unreadable values compare by the fingerprint recorded at the last apply (R7), slots by
digest (R8). The provider's read therefore pairs each dump with the resolved desired configuration through the
library (`diff_device`) and hands the resulting register changes to the planner with the actual resource; this
kind's `diff` hook turns them into `registers.<name>` / `slots.<key>` field changes (masked when sensitive) and
its `refine` hook lists the steps in write order (slots, registers with the mode switch last, commit).
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator

from engine.diff import diff_values
from engine.kinds import KindDecl, ListKey, register
from engine.manifest.confine import FilePolicy, FileRefError, read_bounded
from engine.manifest.fleet import ExpandContext, Expanded, Manifest, resolve_secret_value
from engine.manifest.types import Name, SecretRefModel, Strict
from engine.model import (
    ActualResource, Address, Change, DesiredResource, FieldChange, SecretRef, canonical_json, secret_fingerprint,
)

from .model import builtin_models, check_model
from .regmap import Adapter, DeviceModel
from .values import Resolved, resolve_desired

GROUP = "device.fleetctl.io"
KIND = "device.DeviceConfig"
DUMPS_ENV = "FLEETCTL_DUMPS"
INVENTORY_KINDS = ("aws.Thing", "azure.Device")       # cloud identities named by a device identity
CERTIFICATE_KINDS = ("aws.Certificate", "aws.CACertificate")


# ---------------------------------------------------------------------------------------------------------
# Spec models (the manifest boundary).

def _reference_well_typed(value: Any) -> Any:
    """Every reference in a value (`{file: ...}`, `{env: ...}`, ...) names its target with a string: a wrongly
    typed one (`{file: {}}`) is a validation error at the value, not a failure when it is resolved."""
    def check(part: Any, where: str) -> None:
        if isinstance(part, Mapping):
            kind = raw_ref(part)
            if kind is not None:
                for key, item in part.items():
                    if not isinstance(item, str) or not item:
                        got = "an empty string" if item == "" else f"a {type(item).__name__}"
                        raise ValueError(f"{where}the {kind} reference's '{key}' must be a non-empty string, got {got}")
                return
            for key, item in part.items():
                check(item, f"{where}{key}: ")
        elif isinstance(part, list):
            for i, item in enumerate(part):
                check(item, f"{where}{i}: ")
    check(value, "")
    return value


Values = dict[str, Annotated[Any, AfterValidator(_reference_well_typed)]]


class Selector(Strict):
    matchLabels: dict[str, str] = Field(default_factory=dict,
                                        description="labels a device must carry (its Thing's metadata.labels, or "
                                                    "its devices entry's labels)")


class DeviceEntry(Strict):
    values: Values = Field(default_factory=dict, description="this device's values (override the group's)")
    labels: dict[str, str] = Field(default_factory=dict, description="labels of this device, for selectors")
    certificate: Name | None = Field(None, description="the AWS Certificate this device presents (cross-checks its "
                                                      "CN; the device is planned after it); default: the only "
                                                      "principal of the Thing named like the device")


class DeviceConfigSpec(Strict):
    model: Name = Field(description="a DeviceModel: built in (springcard-springpark, ublox-nina-w13, st-spwf01, "
                                    "esp32-nvs) or declared in the fleet")
    selector: Selector | None = Field(None, description="configure every known device whose labels match")
    devices: dict[str, DeviceEntry] = Field(default_factory=dict,
                                            description="devices by identity (serial number, MAC), with their own "
                                                        "values")
    values: Values = Field(default_factory=dict,
                           description="values for every device: register (or field) name → value, raw hex, "
                                               "or a reference ({env}, {file}, {secretRef}, {certificatePem}, "
                                               "{awsIotEndpoint}, {azureHubHost})")
    prune: bool = Field(False, description="manage every resettable register: unlisted ones go back to the default")
    allowSharedIndividual: bool = Field(False, description="allow per-device (individual) registers at group level")

    @model_validator(mode="after")
    def _devices_or_selector(self) -> "DeviceConfigSpec":
        if self.selector is None and not self.devices:
            raise ValueError("a DeviceConfig needs a selector ({matchLabels: {...}}) or devices ({ID: {values}})")
        return self


class DeviceModelSpec(Strict):
    """The register map of a device model (the library's model format; see engine/providers/device/models)."""

    adapter: Literal["springcore", "ublox-at", "spwf-at", "esp-nvs"]
    match: dict[str, str] = Field(description="{firmware: glob} a dump's firmware must match")
    identity: str = Field(description="the dump field naming the device (SerialNumber, wifi_mac, mac, ...)")
    registers: list[dict[str, Any]] = Field(description="named registers: address, type, size, default, flags")
    slots: list[dict[str, Any]] = Field(default_factory=list, description="certificate and key slots")
    commit: list[dict[str, Any]] = Field(default_factory=list, description="commands appended after the writes")
    roles: dict[str, Any] = Field(default_factory=dict, description="registers the cloud cross-checks read")
    partition: dict[str, Any] = Field(default_factory=dict, description="esp-nvs: {name, size}")
    clean_before_load: bool = False
    byte_order: Literal["big"] = "big"
    apply: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# Value tokens: how values are kept in the desired spec, and turned back into library values.

_RAW_REFS: Mapping[str, frozenset[str]] = {          # a manifest reference: its key, and the keys allowed beside it
    "env": frozenset(), "secretRef": frozenset(), "file": frozenset(), "certificatePem": frozenset({"target"}),
    "awsIotEndpoint": frozenset(), "azureHubHost": frozenset(),
}
_TOKENS: Mapping[str, frozenset[str]] = {            # a token in the desired spec: its key, and its exact key set
    "secret": frozenset({"secret", "fingerprint", "sha256"}), "file": frozenset({"file", "sha256"}),
    "certificatePem": frozenset({"certificatePem", "sha256", "target"}),
    "awsIotEndpoint": frozenset({"awsIotEndpoint"}), "azureHubHost": frozenset({"azureHubHost", "hostName"}),
}
_DIGEST_KEYS: Mapping[str, frozenset[str]] = {"secret": frozenset({"fingerprint", "sha256"}),
                                               "file": frozenset({"sha256"}), "certificatePem": frozenset({"sha256"})}
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


def library_values(model: DeviceModel, tokens: Mapping[str, Any], level: str, lookup: Lookup,
                   on_unavailable: Callable[[str, str], None]) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------------------------------------
# Device models: built in or declared in the fleet.

@dataclass(frozen=True)
class ModelRef:
    """A model and where it came from; `digest` changes whenever the model does (a saved plan then is stale)."""

    model: DeviceModel
    digest: str
    file: str | None = None
    index: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "index": self.index} if self.file is not None else {}


@functools.lru_cache(maxsize=None)
def builtin_digest(source: str) -> str:
    """Digest of a built-in model's YAML (`models/<name>.yaml`)."""
    text = resources.files(__package__).joinpath(source).read_text(encoding="utf-8")
    return sha256_of(text.encode("utf-8"))


@functools.lru_cache(maxsize=256)
def _checked(text: str, source: str) -> tuple[DeviceModel | None, tuple[Any, ...]]:
    model, problems = check_model(json.loads(text), source)
    return model, tuple(problems)


def check_document(data: Mapping[str, Any], source: str) -> tuple[DeviceModel | None, str, tuple[Any, ...]]:
    """check_model with a cache: (model or None, digest, problems)."""
    text = canonical_json(data)
    model, problems = _checked(text, source)
    return model, sha256_of(text.encode("utf-8")), problems


def load_declared(path: str, index: int, digest: str) -> DeviceModel:
    """A fleet-declared model from its manifest file (what a plan recorded); raises ValueError when the file no
    longer holds that model."""
    from engine.manifest.loader import parse_text
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the DeviceModel manifest {path}: {exc.strerror}") from None
    docs, _ = parse_text(text, path, Path(path).parent)
    doc = next((d for d in docs if d.index == index), None)
    if doc is None:
        raise ValueError(f"{path} no longer holds the DeviceModel the plan was made with")
    model, found, problems = check_document(doc.data, path)
    if model is None or found != digest:
        raise ValueError(f"the DeviceModel in {path} changed since the plan was made")
    return model


def model_for(ctx: ExpandContext, name: str, *path: Any) -> ModelRef | None:
    """The model a DeviceConfig names: declared in the fleet (wins), else built in; None with an error."""
    declared = ctx.index.get(("device.DeviceModel", None, name))
    if declared is not None:
        model, digest, _ = check_document(declared.doc.data, declared.doc.file)
        if model is None:      # its own expand reports why
            return None
        return ModelRef(model, digest, _manifest_path(ctx, declared), declared.doc.index)
    builtins = builtin_models()
    if name in builtins:
        return ModelRef(builtins[name], builtin_digest(builtins[name].source))
    choices = sorted(set(builtins) | {n for (k, _, n) in ctx.index if k == "device.DeviceModel"})
    hint = difflib.get_close_matches(name, choices, n=1)
    if path:
        ctx.error(f"unknown device model '{name}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""), *path,
                  detail=f"expected a built-in or declared DeviceModel: {', '.join(choices)}")
    return None


def _manifest_path(ctx: ExpandContext, manifest: Manifest) -> str:
    """Absolute path of a manifest's file (Document.file is relative to the fleet's parent folder)."""
    for base in (ctx.root.parent, ctx.root, Path.cwd()):
        candidate = (base / manifest.doc.file)
        if candidate.is_file():
            return str(candidate.resolve())
    return str(Path(manifest.doc.file).resolve())


# ---------------------------------------------------------------------------------------------------------
# Dumps folder: which file is whose dump.

_PREFIX = re.compile(r"[^0-9A-Fa-f]")


@functools.lru_cache(maxsize=8)
def _dump_names(folder: str, mtime_ns: int) -> tuple[tuple[str, str], ...]:
    """(candidate identity, absolute path) for every dump file: its stem, and the stem after a leading word."""
    out = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            stem = entry.name.rsplit(".", 1)[0] if "." in entry.name else entry.name
            path = os.path.abspath(entry.path)
            out.append((stem, path))
            head, sep, rest = stem.partition("-")
            if sep and rest and _PREFIX.search(head):
                out.append((rest, path))
    return tuple(sorted(out))


@functools.lru_cache(maxsize=16)
def _dump_index(folder: str, mtime_ns: int, identity: Callable[[str], str]) -> Mapping[str, tuple[str, ...]]:
    index: dict[str, set[str]] = {}
    for candidate, path in _dump_names(folder, mtime_ns):
        index.setdefault(identity(candidate), set()).add(path)
    return {k: tuple(sorted(v)) for k, v in index.items()}


def dump_paths(folder: str, identity: Callable[[str], str]) -> Mapping[str, tuple[str, ...]]:
    """Device identity (in the model's normal form) → dump files named by it."""
    return _dump_index(folder, os.stat(folder).st_mtime_ns, identity)


# ---------------------------------------------------------------------------------------------------------
# Device identities: validated before they become addresses and artifact paths.

SERIAL_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$")
MAC_ID = re.compile(r"^[0-9A-F]{2}(-[0-9A-F]{2}){5}$")


def device_id_problem(model: DeviceModel, key: str) -> str | None:
    """Why `key` is not a device identity of this model, or None. SpringCore readers are named by their serial
    number (letters, digits, `-`, `_`; at most 64); Wi-Fi modules by their MAC (12 hex digits in any spelling:
    `00:80:E1:B7:3C:21`, `0080E1B73C21`, `00-80-e1-…`). Identities name addresses and artifact files, so
    nothing else (a `/`, `..`) may pass."""
    ident = model.rules.identity(str(key))
    if model.adapter is Adapter.SPRINGCORE:
        if SERIAL_ID.match(ident):
            return None
        return (f"'{key}' is not a device serial number: letters, digits, '-' and '_', at most 64, starting with a "
                "letter or digit")
    if MAC_ID.match(ident):
        return None
    return f"'{key}' is not a MAC address (12 hex digits, e.g. 00:80:E1:B7:3C:21) identifying a {model.name} device"


# ---------------------------------------------------------------------------------------------------------
# Inventory: which devices a DeviceConfig configures.

@dataclass
class _Device:
    id: str                                   # the model's normal form (what addresses use)
    key: str | None = None                    # as written under devices:
    entry: DeviceEntry | None = None
    known: list[Manifest] = field(default_factory=list)   # Things / Azure Devices of this identity


def _known(ctx: ExpandContext, model: DeviceModel) -> dict[str, list[Manifest]]:
    out: dict[str, list[Manifest]] = {}
    for (kind, _, name), manifest in sorted(ctx.index.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])):
        if kind in INVENTORY_KINDS:
            out.setdefault(model.rules.identity(name), []).append(manifest)
    return out


def _selection(manifest: Manifest, model: DeviceModel, known: Mapping[str, list[Manifest]],
               listed_labels: Mapping[str, dict[str, str]]) -> dict[str, _Device]:
    spec: DeviceConfigSpec = manifest.spec    # type: ignore[assignment]
    devices: dict[str, _Device] = {}
    for key, entry in spec.devices.items():
        ident = model.rules.identity(key)
        devices.setdefault(ident, _Device(ident, key, entry, list(known.get(ident, []))))
    if spec.selector is not None:
        wanted = spec.selector.matchLabels.items()
        for ident in sorted(set(known) | set(listed_labels)):
            labels: dict[str, str] = {}
            for m in known.get(ident, []):
                labels.update(m.envelope.metadata.labels)
            labels.update(listed_labels.get(ident, {}))
            if ident not in devices and all(labels.get(k) == v for k, v in wanted):
                devices[ident] = _Device(ident, None, None, list(known.get(ident, [])))
    return devices


def _configs_of(ctx: ExpandContext, model_name: str) -> list[Manifest]:
    return sorted((m for (k, _, _), m in ctx.index.items() if k == KIND and m.spec.model == model_name),
                  key=lambda m: (m.doc.file, m.doc.index, m.name))


def _listed_labels(configs: list[Manifest], model: DeviceModel) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for config in configs:
        for key, entry in config.spec.devices.items():
            out.setdefault(model.rules.identity(key), {}).update(entry.labels)
    return out


# ---------------------------------------------------------------------------------------------------------
# Expand.

def _read_public(policy: FilePolicy, name: str, bases: list[Path]) -> tuple[bytes, str] | str:
    """(bytes, resolved path) of a public file inside the fence, or why not (a message without content)."""
    try:
        found = policy.locate(name, bases)
        return read_bounded(found), str(found)
    except FileRefError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read file '{name}': {exc.strerror}"


@functools.lru_cache(maxsize=4096)
def _cn_of(pem: str) -> str | None:
    from engine.pki import PemError, cert_info
    try:
        return cert_info(pem).subject_cn
    except PemError:
        return None


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
        if isinstance(value, LookupError):          # not at hand now: an error only where a device needs it
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

    def certificate(self, name: str, target: str | None, path: tuple[Any, ...], *,
                    report: bool = True) -> tuple[Manifest, bytes, str | None] | None:
        """An AWS Certificate/CACertificate manifest by name (and Target) and its PEM bytes and file; errors
        are reported at `path` unless `report` is off (a link the manifests already check)."""
        candidates = sorted((m for m in self.catalog.certificates.get(name, ())
                             if target is None or m.target == target), key=lambda m: str(m.address))
        if not report and len(candidates) != 1:
            return None
        if not candidates:
            names = sorted(self.catalog.certificates)
            hint = difflib.get_close_matches(name, names, n=1)
            self.ctx.error(f"unresolved reference: no Certificate or CACertificate named '{name}'"
                           + (f" in target '{target}'" if target else "")
                           + (f" (did you mean '{hint[0]}'?)" if hint else ""), *path,
                           detail=f"declared: {', '.join(names) or 'none'}")
            return None
        if len(candidates) > 1:
            self.ctx.error(f"'{name}' names certificates in several targets "
                           f"({', '.join(sorted(m.target or '' for m in candidates))}): add `target:`", *path)
            return None
        manifest = candidates[0]
        pem = getattr(manifest.spec, "certificatePem", None)
        if pem is not None and pem.inline is not None:
            return manifest, pem.inline.encode("utf-8"), None
        found = _read_public(self.ctx.policy, pem.file, [manifest.doc.base_dir, self.ctx.root]) \
            if pem is not None and pem.file else None
        if found is None or isinstance(found, str):
            if report:
                self.ctx.error(f"the certificate '{name}' has no readable certificatePem", *path,
                               detail=f"declared at {manifest.source()}")
            return None
        return manifest, found[0], found[1]

    def _target(self, name: str, cloud: str, path: tuple[Any, ...]) -> Manifest | None:
        targets = self.catalog.targets
        manifest = targets.get(name)
        if manifest is None or getattr(manifest.spec, cloud, None) is None:
            fitting = sorted(n for n, m in targets.items() if getattr(m.spec, cloud, None) is not None)
            hint = difflib.get_close_matches(name, fitting, n=1)
            what = "no Target" if manifest is None else f"Target '{name}' is not an {cloud.upper()} target; no " \
                                                      f"{cloud.upper()} Target"
            self.ctx.error(f"unresolved reference: {what} named '{name}'" + (f" (did you mean '{hint[0]}'?)"
                                                                             if hint else ""), *path,
                           detail=f"{cloud} targets: {', '.join(fitting) or 'none'}")
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
        hub = manifest.spec.azure.hub if manifest is not None else None
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
            if manifest is None or manifest.spec.aws is None:
                raise Unavailable("unknown target")
            return Found(placeholder_endpoint(manifest.spec.aws.region))
        return Found(token["hostName"])


def _report(ctx: ExpandContext, problems: Any) -> None:
    for problem in problems:
        ctx.error(problem.message, *problem.path)


def _expand_model(ctx: ExpandContext, m: Manifest) -> Expanded:
    """A declared model is data: it is checked here (every problem at its file:line) and used by DeviceConfigs;
    it is no resource of its own (nothing to read or write). A declared model overrides a built-in one of the
    same name (to narrow a firmware match, say)."""
    _, _, problems = check_document(m.doc.data, m.doc.file)
    for problem in problems:
        path = tuple(problem.path)
        if path[:1] == ("spec",):
            ctx.error(problem.message, *path[1:])
        else:
            ctx.diags.add(_error_at(ctx, m, path, problem.message))
    return Expanded()


def _error_at(ctx: ExpandContext, m: Manifest, path: tuple[Any, ...], message: str) -> Any:
    from engine.diagnostics import error
    return error(message, source=m.doc.source(path), address=str(m.address),
                 field=".".join(map(str, path)) or None)


def _validate(ctx: ExpandContext, model: DeviceModel, spec: DeviceConfigSpec, group: tuple[Tokens, dict[str, Any]],
              devices: Mapping[str, tuple[Tokens, dict[str, Any]]]) -> None:
    """What the library checks, before any dump: the group's values once, each listed device's values once.
    A value whose reference cannot be resolved now (a secret not at hand) is checked when a plan resolves it."""
    def skip(name: str, message: str) -> None:
        return None

    values = library_values(model, group[1], "group", group[0].lookup, skip)
    _, problems = resolve_desired(model, values, None, device_id="*", allow_shared_individual=spec.allowSharedIndividual,
                                  group_path=("values",))
    _report(ctx, problems)
    for key, (tokens, device) in devices.items():
        values = library_values(model, device, "device", tokens.lookup, skip)
        _, problems = resolve_desired(model, None, values, device_id=key, device_path=("devices", key, "values"))
        _report(ctx, problems)


def only_aws_target(ctx: ExpandContext) -> list[str]:
    """[the fleet's only AWS Target], the cloud a device talks to when nothing else names one; else []."""
    names = [n for (k, _, n), m in ctx.index.items() if k == "fleetctl.Target" and m.spec.aws is not None]
    return names if len(names) == 1 else []


def _client_certificate(tokens: Tokens, device: _Device, referenced: list[Manifest],
                        path: tuple[Any, ...]) -> tuple[Manifest, bytes] | None:
    """The certificate a device presents: its entry's `certificate`, else the only principal of its Thing, else
    the only AWS Certificate its values reference. Only an entry's own `certificate` is reported when wrong."""
    explicit = device.entry.certificate if device.entry is not None else None
    if explicit is not None:
        hit = tokens.certificate(explicit, None, path)
        return (hit[0], hit[1]) if hit is not None else None
    things = [m for m in device.known if m.decl.qualified == "aws.Thing"]
    principals = things[0].spec.principals if len(things) == 1 else []
    if len(principals) == 1:
        name, target = principals[0], things[0].target
    else:
        distinct = {m.address: m for m in referenced}
        if len(distinct) != 1:
            return None
        only = next(iter(distinct.values()))
        name, target = only.name, only.target
    hit = tokens.certificate(name, target, path, report=False)
    return (hit[0], hit[1]) if hit is not None else None


def _expand_config(ctx: ExpandContext, m: Manifest) -> Expanded:
    spec: DeviceConfigSpec = m.spec    # type: ignore[assignment]
    ref = model_for(ctx, spec.model, "model")
    if ref is None:
        return Expanded()
    model = ref.model
    catalog = Catalog(ctx)
    tokens = Tokens(ctx, model, catalog)
    group = tokens.level(spec.values, "group", ("values",))
    configs = _configs_of(ctx, model.name)
    known = _known(ctx, model)
    listed = _listed_labels(configs, model)
    selected = _selection(m, model, known, listed)
    seen: dict[str, str] = {}
    for key in list(spec.devices):
        problem = device_id_problem(model, key)
        if problem is not None:
            ctx.error(problem, "devices", key)
            selected.pop(model.rules.identity(key), None)
            continue
        ident = model.rules.identity(key)
        if ident in seen:
            ctx.error(f"device '{key}' is listed twice (as '{seen[ident]}' too): both are {ident}", "devices", key)
        seen.setdefault(ident, key)
    for other in configs:
        if other is m:
            break
        for ident in sorted(set(_selection(other, model, known, listed)) & set(selected)):
            where = ("devices", selected[ident].key) if selected[ident].key else ("selector",)
            ctx.error(f"device {ident} is also configured by DeviceConfig '{other.name}' ({other.source()}); "
                      "a device has one DeviceConfig", *where)
            del selected[ident]
    own: dict[str, tuple[Tokens, dict[str, Any]]] = {}
    for ident, device in selected.items():
        if device.entry is not None and device.key is not None:
            device_tokens = Tokens(ctx, model, catalog)
            own[ident] = (device_tokens, device_tokens.level(device.entry.values, "device",
                                                             ("devices", device.key, "values")))
    _validate(ctx, model, spec, (tokens, group), {selected[i].key or i: pair for i, pair in own.items()})
    folder = ctx.env.get(DUMPS_ENV)
    if not folder:       # validation only: explicit certificates must resolve
        for ident, (device_tokens, _) in own.items():
            _client_certificate(device_tokens, selected[ident], [], ("devices", selected[ident].key, "certificate"))
        return Expanded()
    if not os.path.isdir(folder):
        ctx.diags.add(_error_at(ctx, m, ("metadata", "name"), f"dumps folder not found: {folder}"))
        return Expanded()
    dumps = dump_paths(os.path.abspath(folder), model.rules.identity)
    root = str(ctx.root.resolve())
    fallback = only_aws_target(ctx)
    out: list[DesiredResource] = []
    for ident in sorted(selected):
        device = selected[ident]
        if device_id_problem(model, ident) is not None:     # a Thing named like no device of this model
            continue
        device_tokens, device_values = own.get(ident, (Tokens(ctx, model, catalog), {}))
        paths = dumps.get(ident, ())
        where = ("devices", device.key) if device.key else ("selector",)
        if len(paths) > 1:
            ctx.error(f"several dumps for device {ident}: {', '.join(os.path.basename(p) for p in paths)}", *where)
            continue
        client = _client_certificate(device_tokens, device, tokens.certificates + device_tokens.certificates,
                                     where + ("certificate",))
        depends = tokens.depends | device_tokens.depends
        thing = next((k for k in device.known if k.decl.qualified in INVENTORY_KINDS), None)
        targets = device_tokens.targets + tokens.targets + ([thing.target] if thing is not None and thing.target
                                                             else []) + fallback
        cloud: dict[str, Any] = {"target": targets[0] if targets else None,
                                 "thing": thing.name if thing is not None else None}
        if client is not None:
            depends = depends | {client[0].address}
            cloud.update(certificate=client[0].name, certificateCn=_cn_of(client[1].decode("utf-8", "replace")))
        spec_out = {"model": model.name, "modelDigest": ref.digest, "config": m.name, "values": group,
                    "device": device_values, "prune": spec.prune,
                    "allowSharedIndividual": spec.allowSharedIndividual}
        inputs = {"dump": paths[0] if paths else None, "dumps": os.path.abspath(folder), "fleetRoot": root,
                  "files": {**tokens.files, **device_tokens.files}, "pems": {**tokens.pems, **device_tokens.pems},
                  "sources": {**tokens.sources, **device_tokens.sources}, "cloud": cloud, "model": ref.to_json()}
        out.append(DesiredResource(Address.of("device", model.name, ident), KIND, spec_out, m.source(),
                                   tuple(sorted(depends)), inputs, {**tokens.secrets, **device_tokens.secrets}))
    return Expanded(out)


# ---------------------------------------------------------------------------------------------------------
# Planner hooks.

def diff_registers(desired: DesiredResource, actual: ActualResource) -> list[FieldChange]:
    """The register and slot changes the provider's read computed with the library (R1–R9), as field changes:
    `registers.<name>` and `slots.<key>`, before → after in display form, `(sensitive)` where secret."""
    out: list[FieldChange] = []
    for change in actual.ids.get("changes", ()):
        root = ("slots" if change["kind"] == "slot" else "registers", change["name"])
        before, after, sensitive = change["before"], change["after"], bool(change["sensitive"])
        if not sensitive and isinstance(before, (dict, list)) and type(before) is type(after):
            out.extend(diff_values(before, after, root=root))       # a structured value: to the leaf
        else:
            out.append(FieldChange(".".join(root), before, after, sensitive))
    return out


def refine_steps(change: Change) -> Change:
    """The steps a reviewer sees, in write order (R9): slots, registers (the mode switch last), the commit
    commands, how the artifacts reach the device. The register changes, now in the fields, are kept in `ids`
    only as what apply checks it carries out: (kind, name, action, fingerprint) each."""
    ids = change.ids
    changes = ids.get("changes", ())
    steps = ["erase every TLS slot, then load every desired slot and the TLS domain again (the model cleans "
             "before loading)"] if ids.get("clean") else []
    for c in changes:
        steps.append(f"load slot {c['name']}: {c['reason']}" if c["kind"] == "slot" else
                     f"{c['action']} {c['name']} @{c['address']}: {c['reason']}")
    steps += [f"commit: {command}" for command in ids.get("commit", ())]
    steps += [f"deliver: {ids['deliver']}"] if ids.get("deliver") else []
    registers = sum(c["kind"] == "register" for c in changes)
    parts = [f"{registers} register(s)"] * bool(registers) + [f"{len(changes) - registers} slot(s)"] * bool(
        len(changes) - registers)
    planned = [[c["kind"], c["name"], c["action"], c["fingerprint"]] for c in changes]
    compact = {k: v for k, v in ids.items() if k not in ("changes", "commit", "deliver", "clean")}
    return replace(change, steps=tuple(steps), reason=" and ".join(parts) + " to write",
                   ids={**compact, "planned": planned})


register(KindDecl(GROUP, "DeviceModel", "device", DeviceModelSpec, rank=80, targeted=False, expand=_expand_model,
                  lists=(ListKey("registers", "key", "name"), ListKey("slots", "key", "name")),
                  description="The register map of a device model (adapter, registers, slots, commit steps), "
                              "declared in the fleet; overrides a built-in model of the same name."))
register(KindDecl(GROUP, "DeviceConfig", "device", DeviceConfigSpec, rank=90, targeted=False,
                  expand=_expand_config, diff=diff_registers, refine=refine_steps, calls=lambda change: {},
                  description="Desired register values of a set of devices of one model (by label selector or "
                              "by identity), compared with their dumps and carried out as vendor artifacts."))
