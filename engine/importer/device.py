"""The device-dump importer: one DeviceConfig per model from a folder of device dumps (`fleetctl import --dumps`).

There is no account to read: the dumps folder is the actual state. Each file is read with the device library
(`read_dump`) against the built-in models; the model whose firmware pattern and identity field the dump satisfies
is the device's model (the same R10 check a plan makes). A device is written only when the plan will find its dump
again: the file must be named by the device's identity (`kinds.dump_paths`, the plan's own pairing).

What is written (OUT/devices/<model>.yaml, one DeviceConfig named after the model): under `devices:`, one entry
per device (`# imported from <dump file>`) whose `values:` hold exactly the readable registers whose dumped value
differs from the model default, in the library's decoded form (what a DeviceConfig accepts), or `{raw: HEX}` when
decoding and re-encoding would not give the same bytes. So `fleetctl plan OUT --dumps DIR` shows no changes.

Secrets: a sensitive register's value is never written; it becomes `{env: FLEETCTL_<MODEL>_<DEVICE>_<REGISTER>}`,
listed in IMPORT-SECRETS.md (set it to the device's value and the plan compares it). Unreadable registers are not
in any dump (the library never trusts what a device answers for them), so the import cannot know them: they are
left unmanaged, with a note (a reference would plan a write, as there is no recorded fingerprint). Slots
(certificates, keys) are not imported: the dumps hold only their digests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import fsutil
from engine.diagnostics import FleetctlError, error
from engine.importer import writer, yamlout
from engine.importer.checkpoint import check_out
from engine.importer.model import ImportReport, ImportRequest, Note
from engine.importer.registry import ProviderImporter
from engine.providers.device.codecs import codec, encode_value, to_hex
from engine.providers.device.dumps import DeviceDump, read_dump
from engine.providers.device.inventory import DUMPS_ENV, dump_paths
from engine.providers.device.model import builtin_models
from engine.providers.device.regmap import DeviceModel
from engine.providers.device.spec import KIND

OUT_DIR = "devices"


def secret_env(model: str, device: str, register: str) -> str:
    """`FLEETCTL_<MODEL>_<DEVICE>_<REGISTER>`, e.g. FLEETCTL_ESP32_NVS_24_0A_C4_5F_12_9C_WIFI_PASS."""
    return "_".join(
        ["FLEETCTL"] + [re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_").upper() for p in (model, device, register)]
    )


def recognise(path: Path, models: dict[str, DeviceModel]) -> tuple[DeviceModel, DeviceDump] | None:
    """The model a dump belongs to: the one the library reads it with, without a problem (firmware, identity)."""
    for name in sorted(models):
        try:
            dump, _ = read_dump(path, models[name], name=path.name)
        except (UnicodeDecodeError, ValueError):
            return None
        if dump is not None:
            return models[name], dump
    return None


def structured(reg: Any, data: bytes) -> Any:
    """The register value as a DeviceConfig writes it: decoded when that encodes back to the same bytes."""
    try:
        value = codec(reg).decode(reg, data)
        if encode_value(reg, value) == data:
            return value
    except (ValueError, TypeError, KeyError):
        pass
    return {"raw": to_hex(data)}


@dataclass
class _Device:
    model: DeviceModel
    dump: DeviceDump
    file: str
    values: dict[str, Any] = field(default_factory=dict)


def _configured(fleet: Path, dumps: Path, env: Mapping[str, str]) -> set[str]:
    """Addresses (`device/<model>/<id>`) of the devices the fleet already configures (left to the fleet)."""
    if not fleet.is_dir():
        return set()
    from engine.manifest.fleet import load_fleet

    loaded = load_fleet(fleet, {**env, DUMPS_ENV: str(dumps.resolve())}, resolve_secrets=False)
    if loaded.diagnostics.has_errors:
        raise FleetctlError(
            loaded.diagnostics.sorted()
            + [
                error(
                    f"the fleet at {fleet} does not validate; fix it first (the import skips the devices it configures)"
                )
            ]
        )
    return {str(d.address) for d in loaded.desired if d.kind == KIND}


def run_device_import(dumps: Path, out: Path, fleet: Path, env: Mapping[str, str], when: str) -> ImportReport:
    if not dumps.is_dir():
        raise FleetctlError(error(f"--dumps {dumps} is not a folder"))
    check_out(out, False)
    configured = _configured(fleet, dumps, env)
    models = builtin_models()
    report = ImportReport("device dumps", out)
    notes: list[Note] = []
    devices: dict[str, dict[str, _Device]] = {}
    for path in sorted(p for p in dumps.iterdir() if p.is_file() and not p.name.startswith(".")):
        found = recognise(path, models)
        if found is None:
            notes.append(
                Note(
                    "skipped",
                    path.name,
                    "no built-in model reads it (firmware or identity not recognised, or not a dump)",
                )
            )
            report.skipped[KIND] = report.skipped.get(KIND, 0) + 1
            continue
        model, dump = found
        address = f"device/{model.name}/{dump.device_id}"
        if os.path.abspath(path) not in dump_paths(str(dumps.resolve()), model.rules.identity).get(dump.device_id, ()):
            notes.append(
                Note(
                    "skipped",
                    address,
                    f"{path.name} is not named by the device's identity, so a plan "
                    f"would not find it: rename it (e.g. {dump.device_id}"
                    f"{path.suffix})",
                )
            )
            report.skipped[KIND] = report.skipped.get(KIND, 0) + 1
            continue
        if address in configured:
            report.declared[KIND] = report.declared.get(KIND, 0) + 1
            continue
        if dump.device_id in devices.get(model.name, {}):
            notes.append(Note("skipped", address, f"{path.name}: a second dump of this device"))
            report.skipped[KIND] = report.skipped.get(KIND, 0) + 1
            continue
        device = _Device(model, dump, path.name)
        for reg in model.registers:
            if not reg.readable:
                continue
            data = dump.values.get(reg.name)
            if data is None or data == reg.default or reg.fixed:
                continue
            if reg.sensitive:
                env_name = secret_env(model.name, dump.device_id, reg.name)
                device.values[reg.name] = {"env": env_name}
                report.secrets.append((env_name, address, f"register {reg.name} ({reg.address}), from {path.name}"))
            else:
                device.values[reg.name] = structured(reg, data)
        unreadable = [r.name for r in model.registers if not r.readable]
        if unreadable:
            notes.append(
                Note(
                    "unmanaged field",
                    address,
                    "unreadable register(s) " + ", ".join(unreadable) + " are not in the dump: left unmanaged (add "
                    f"`{{env: {secret_env(model.name, dump.device_id, 'REGISTER')}}}` values to manage "
                    "them; the first plan then writes them)",
                )
            )
        devices.setdefault(model.name, {})[dump.device_id] = device
    files: dict[str, str] = {}
    for name, items in sorted(devices.items()):
        spec = {"model": name, "devices": {ident: {"values": d.values} for ident, d in sorted(items.items())}}
        doc = {"apiVersion": "device.fleetctl.io/v1", "kind": "DeviceConfig", "metadata": {"name": name}, "spec": spec}
        text = yamlout.document(
            doc,
            f"imported from the device dumps in {dumps.name}/ on {when}: the registers "
            "that differ from the model's defaults",
        )
        lines = text.split("\n")
        for ident, d in sorted(items.items()):
            key = f"    {yamlout.scalar(ident)}:"
            at = next(i for i, line in enumerate(lines) if line == key or line.startswith(key + " "))
            lines.insert(at, f"    # imported from {d.file}")
        files[f"{OUT_DIR}/{name}.yaml"] = "\n".join(lines)
        report.written[KIND] = report.written.get(KIND, 0) + len(items)
    notes.append(
        Note(
            "attention",
            "",
            "slots (certificates and keys) are not imported: a dump holds only their "
            "digests; declare them in the DeviceConfigs to manage them",
        )
    )
    report.notes = sorted(set(notes))
    report.secrets.sort()
    request = ImportRequest(target=report.target, out=out, fleet=fleet)
    summary = writer.summary(report, request, when, inside=False, annotation="", adoptable=())
    summary = summary.replace(
        f"# fleetctl import of target `{report.target}`", f"# fleetctl import of the device dumps in `{dumps.name}/`"
    )
    summary = re.sub(
        r"\(kinds: all; filters: none\)\. The import only read the account",
        "(dumps only). The import only read the dump files",
        summary,
    )
    summary = re.sub(r"\n4\. This folder holds a copy of the Target.*\n", "\n", summary)
    summary = summary.replace(
        "fleetctl plan <this folder> --detailed-exitcode",
        f"fleetctl plan <this folder> --dumps {dumps.name}/ --detailed-exitcode",
    )
    files[writer.SUMMARY] = summary
    if report.secrets:
        files[writer.SECRETS] = writer.secrets_summary(report).replace(
            "target `device dumps`", f"device dumps `{dumps.name}/`"
        )
    out.mkdir(parents=True, exist_ok=True)
    for rel, text in sorted(files.items()):
        path = out / rel
        fsutil.write_atomic(path, text, mode=fsutil.PUBLIC)  # manifests for the repository
    report.files = sorted(files)
    from engine.manifest.fleet import load_fleet

    problems = load_fleet(out, {**env, DUMPS_ENV: str(dumps.resolve())}, resolve_secrets=False).diagnostics
    if problems.has_errors:
        raise FleetctlError(
            problems.sorted() + [error(f"the manifests written to {out} do not validate; this is a fleetctl bug")]
        )
    return report


class DeviceImporter(ProviderImporter):
    """Registered for completeness: device dumps are imported by `run_device_import`, not through a Target."""

    provider = "device"
    kinds = (KIND,)

    def read(self, session: Any) -> list[Any]:
        raise FleetctlError(
            error(
                "devices are imported from their dumps, not from a Target",
                "run `fleetctl import --dumps DIR --out OUT`",
            )
        )


def make_importer() -> DeviceImporter:
    return DeviceImporter()


__all__ = ["run_device_import", "recognise", "structured", "secret_env", "make_importer"]
