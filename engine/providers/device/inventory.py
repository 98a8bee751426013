"""The device inventory: which devices a DeviceConfig configures, whether a key is a device identity, and which
file in the dumps folder is whose dump.

Why: the rules of engine/providers/device/kinds.py's docstring ("Which devices exist") in one place. Known devices
are the AWS Thing and Azure Device manifests named by a device identity and the devices any DeviceConfig of the
model lists; a selector picks among them by labels. Identities name addresses and artifact files, so they are
validated before they become either.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine.manifest.expand import ExpandContext
from engine.manifest.specs import spec_as
from engine.manifest.validation import Manifest

from .regmap import Adapter, DeviceModel
from .spec import KIND, DeviceConfigSpec, DeviceEntry

DUMPS_ENV = "FLEETCTL_DUMPS"
INVENTORY_KINDS = ("aws.Thing", "azure.Device")  # cloud identities named by a device identity


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
        return (
            f"'{key}' is not a device serial number: letters, digits, '-' and '_', at most 64, starting with a "
            "letter or digit"
        )
    if MAC_ID.match(ident):
        return None
    return f"'{key}' is not a MAC address (12 hex digits, e.g. 00:80:E1:B7:3C:21) identifying a {model.name} device"


# ---------------------------------------------------------------------------------------------------------
# Inventory: which devices a DeviceConfig configures.


@dataclass
class Device:
    id: str  # the model's normal form (what addresses use)
    key: str | None = None  # as written under devices:
    entry: DeviceEntry | None = None
    known: list[Manifest] = field(default_factory=list)  # Things / Azure Devices of this identity


def known_devices(ctx: ExpandContext, model: DeviceModel) -> dict[str, list[Manifest]]:
    out: dict[str, list[Manifest]] = {}
    for (kind, _, name), manifest in sorted(ctx.index.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])):
        if kind in INVENTORY_KINDS:
            out.setdefault(model.rules.identity(name), []).append(manifest)
    return out


def selection(
    manifest: Manifest,
    model: DeviceModel,
    known: Mapping[str, list[Manifest]],
    listed_labels: Mapping[str, dict[str, str]],
) -> dict[str, Device]:
    spec = spec_as(manifest, DeviceConfigSpec)
    devices: dict[str, Device] = {}
    for key, entry in spec.devices.items():
        ident = model.rules.identity(key)
        devices.setdefault(ident, Device(ident, key, entry, list(known.get(ident, []))))
    if spec.selector is not None:
        wanted = spec.selector.matchLabels.items()
        for ident in sorted(set(known) | set(listed_labels)):
            labels: dict[str, str] = {}
            for m in known.get(ident, []):
                labels.update(m.envelope.metadata.labels)
            labels.update(listed_labels.get(ident, {}))
            if ident not in devices and all(labels.get(k) == v for k, v in wanted):
                devices[ident] = Device(ident, None, None, list(known.get(ident, [])))
    return devices


def configs_of(ctx: ExpandContext, model_name: str) -> list[Manifest]:
    return sorted(
        (m for (k, _, _), m in ctx.index.items() if k == KIND and spec_as(m, DeviceConfigSpec).model == model_name),
        key=lambda m: (m.doc.file, m.doc.index, m.name),
    )


def listed_labels(configs: list[Manifest], model: DeviceModel) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for config in configs:
        for key, entry in spec_as(config, DeviceConfigSpec).devices.items():
            out.setdefault(model.rules.identity(key), {}).update(entry.labels)
    return out
