"""The device provider: device dumps in, vendor artifacts out.

Why: fleetctl does not talk to devices. A plan reads what each device reported (its dump, one file per device,
read in bulk from the dumps folder), pairs it with the device's desired configuration resolved at plan time
(secrets, files, the AWS Target's IoT endpoint) and lets the library compare them under its rules R1–R10.
Apply carries out exactly the planned register changes by writing the vendor's own artifacts (SpringCoreConfig
JSON and its command line, u-blox and ST AT scripts, an ESP-IDF NVS CSV and the nvs_partition_gen / parttool
commands) into `--artifacts DIR` (default `out/`, one folder per model); artifacts that carry a secret are
flagged and written 0600. A field engineer then pushes them to the devices and reads the devices back.

What cannot be read back (passwords, a PSK, TLS slots on some modules) is compared by the fingerprint recorded
when apply wrote it (R7): the device state file, next to the journal (`.fleetctl/device-state.json`, or
FLEETCTL_DEVICE_STATE), maps each device address to `{register or slot: sha256 of what was written}`. So the
plan right after apply still lists the readable registers until the device is read back; once its new dump is
in place, the plan shows no changes.

Actual resources: address `device/<model>/<device-id>`, kind `device.DeviceConfig`, state = the model, firmware,
dump file and the recorded fingerprints' digest, token = the dump's fingerprint; a saved plan is refused when a
device's dump (or its recorded state) changed since the plan was made. The register changes travel in the
actual resource's `ids` (masked: no secret, no value), where the kind's diff hook reads them.

This module reads (in bulk) and applies; resolving one device (model, dump, references, the library's changes)
is engine/providers/device/resolve.py, the device state file state.py, lint's cross-checks fleetcheck.py.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine import errors
from engine.diagnostics import Diagnostic, error, warning
from engine.fingerprint import explain_mismatch
from engine.model import ActualResource, Change, DesiredResource, canonical_json
from engine.progress import SILENT, ProgressSink
from engine.providers.base import ApplyResult, CallHook, ReadResult

from .artifacts import Artifact, ArtifactKind, render, write_artifacts
from .crosscheck import Finding, FindingCode, crosscheck_device
from .diff import ChangeKind, commit_steps, fingerprint_of
from .dumps import DeviceDump
from .problems import ProblemsError
from .regmap import Adapter, DeviceModel
from .resolve import Resolved, Resolver
from .spec import KIND
from .state import DeviceState, state_path
from .tokens import sha256_of
from .values import DesiredConfig, value_fingerprint

ARTIFACTS_ENV = "FLEETCTL_ARTIFACTS"
# How the artifacts of each adapter reach the device (the last step a reviewer reads).
_DELIVERY: Mapping[Adapter, str] = {
    Adapter.SPRINGCORE: "run {id}.sh (SpringCoreConfig --file {id}.json --no-load-defaults; the reader "
    "resets), then read the reader back",
    Adapter.UBLOX_AT: "send {id}.at line by line over the module's AT interface, then read it back",
    Adapter.SPWF_AT: "send {id}.at line by line over the module's AT interface, then read it back",
    Adapter.ESP_NVS: "run {id}.sh (nvs_partition_gen.py generate {id}.csv, parttool.py write_partition), "
    "then read the partition back",
}
# Findings about the device as it is now that a plan may correct (the others are about the result of the plan).
_CURRENT = frozenset(
    {
        FindingCode.BROKER_NOT_ENDPOINT,
        FindingCode.CROSS_REGION,
        FindingCode.MALFORMED_REGION,
        FindingCode.TLS_PORT,
        FindingCode.CA_MISMATCH,
    }
)


def make_provider(target: str, spec: Any, env: Mapping[str, str], **options: Any) -> DeviceProvider:
    return DeviceProvider(env, options.get("fleet_targets") or {})


def artifacts_root(env: Mapping[str, str]) -> Path:
    return Path(env.get(ARTIFACTS_ENV) or "out")


class DeviceProvider:
    """Reads dumps and writes artifacts; see the module docstring. One instance per command."""

    target = ""

    def __init__(self, env: Mapping[str, str], fleet_targets: Mapping[str, Any]) -> None:
        self.env = dict(env)
        self.fleet_targets = fleet_targets
        self.hook: CallHook | None = None
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.resolver = Resolver(env, fleet_targets, self._counts)
        self._written: dict[str, list[dict[str, Any]]] = {}  # address → artifacts of the last apply
        self._secret_files: list[Path] = []  # secret-bearing artifacts written (mode 0600)
        self.progress: ProgressSink = SILENT  # long reads report here (engine/run/ sets the command's sink)

    # ------------------------------------------------------------------ plumbing
    def set_hook(self, hook: CallHook | None) -> None:
        self.hook = hook

    def stats(self) -> dict[str, Any]:
        return dict(self._counts)

    def secret_artifacts(self) -> list[Path]:
        """The artifact files this provider's applies wrote that hold a secret value (a password, a PSK, a
        private key slot): written 0600; apply tells the user to push them to the device and delete them."""
        with self._lock:
            return sorted(set(self._secret_files))

    def _actual(self, r: Resolved, recorded: Mapping[str, str]) -> ActualResource:
        d = r.desired
        state: dict[str, Any] = {"model": d.spec["model"], "dump": None}
        token = ""
        if r.dump is not None:
            state.update(
                firmware=r.dump.firmware,
                dump=os.path.basename(d.inputs["dump"]),
                recorded=sha256_of(canonical_json(recorded).encode())[:23] if recorded else None,
            )
            token = (
                fingerprint_of(r.dump, sensitive=[reg.name for reg in r.model.registers if reg.sensitive])[:23]
                if r.model is not None
                else fingerprint_of(r.dump)[:23]
            )
        elif d.inputs.get("dump"):
            state["dump"] = "unreadable: " + os.path.basename(d.inputs["dump"])
        ids: dict[str, Any] = {"device": d.address.name}
        if r.changes:
            assert r.model is not None
            ids.update(
                changes=[c.to_json() for c in r.changes],
                commit=list(commit_steps(r.model, r.changes)),
                deliver=_DELIVERY[r.model.adapter].format(id=d.address.name),
                clean=r.model.clean_before_load and any(c.kind is ChangeKind.SLOT for c in r.changes),
                resolved=dict(sorted((r.endpoints or {}).items())),
            )
        return ActualResource(d.address, KIND, state, token, ids=ids)

    def _findings(self, r: Resolved) -> list[Diagnostic]:
        """Cross-checks as plan warnings: the configuration the plan leads to, then what the dump shows now
        and the plan corrects."""
        assert r.model is not None and r.config is not None and r.dump is not None
        context = self.resolver.cloud(r)
        after = crosscheck_device(r.model, r.config, r.dump, context)
        before = crosscheck_device(r.model, DesiredConfig(r.model.name, r.config.device_id, {}, {}), r.dump, context)
        seen = {(f.code, f.path) for f in after}
        out = []
        address = str(r.desired.address)
        for f in after:
            out.append(
                warning(
                    f.message, f"cross-check {f.code.value}", source=r.desired.source, address=address, field=_field(f)
                )
            )
        for f in before:
            if f.code in _CURRENT and (f.code, f.path) not in seen:
                out.append(
                    warning(
                        f"currently: {f.message}",
                        f"cross-check {f.code.value}: the dump shows it; the planned changes correct it",
                        source=r.desired.source,
                        address=address,
                        field=_field(f),
                    )
                )
        return out

    # ------------------------------------------------------------------ read
    def read(self, desired: list[DesiredResource], *, prune: bool = False) -> ReadResult:
        """Every device's dump, paired with its desired configuration (bulk: one pass over the dumps)."""
        try:
            state = DeviceState(state_path(self.env)).load()
        except errors.ProviderError as exc:
            return ReadResult([], [error(str(exc))])
        actual: list[ActualResource] = []
        diags: list[Diagnostic] = []
        missing: dict[str, list[DesiredResource]] = {}
        progress = self.progress.task("read device dumps", len(desired) or None, unit="devices", final=False)
        for d in sorted(desired, key=lambda x: x.address):
            progress.advance()
            recorded = state.get(str(d.address), {})
            r = self.resolver.resolve(d, recorded)
            diags.extend(r.problems)
            if r.model is not None and r.dump is None and not d.inputs.get("dump"):
                missing.setdefault(d.spec.get("config", ""), []).append(d)
            if r.changes is not None and r.config is not None:
                diags.extend(self._findings(r))
            actual.append(self._actual(r, recorded))
        progress.close()
        for config, devices in sorted(missing.items()):
            names = [d.address.name for d in devices]
            diags.append(
                warning(
                    f"{len(names)} device(s) of DeviceConfig '{config}' have no dump, so they are not "
                    f"planned: {', '.join(names)}",
                    f"read them into {devices[0].inputs.get('dumps')} (one file per device, named by "
                    "its identity) and plan again",
                    source=devices[0].source,
                    address=f"device/DeviceConfig/{config}",
                )
            )
        return ReadResult(actual, diags)

    # ------------------------------------------------------------------ apply
    def batches(self, changes: list[Change]) -> list[list[Change]]:
        """Device changes of one wave are applied together: one pass, one write of the device state file."""
        return [list(changes)] if len(changes) > 1 else []

    def apply(self, change: Change, secrets: Mapping[str, str]) -> ApplyResult:
        outcome = self.apply_batch([change], [secrets])[0]
        if outcome is not None:
            raise outcome
        return ApplyResult(outputs={"artifacts": self._written.get(str(change.address), [])})

    def apply_batch(self, changes: list[Change], secrets: list[Mapping[str, str]]) -> list[errors.ProviderError | None]:
        """Render each device's artifacts into the artifacts folder and record the fingerprints of what they
        write. Each device succeeds or fails on its own; nothing is recorded for a failed one."""
        try:
            state = DeviceState(state_path(self.env))
            recorded_all = state.load()
        except errors.ProviderError as exc:
            return [exc] * len(changes)
        outcomes: list[errors.ProviderError | None] = []
        updates: dict[str, dict[str, str]] = {}
        for change, values in zip(changes, secrets, strict=True):
            try:
                address = str(change.address)
                updates[address] = self._apply_one(change, values, recorded_all.get(address, {}))
                outcomes.append(None)
            except errors.ProviderError as exc:
                outcomes.append(exc)
        if updates:
            try:
                with self._lock:
                    state.update(updates)
            except OSError as exc:  # the artifacts are written, but the next plan could not tell: say so
                failure = errors.ProviderError(
                    f"the artifacts are written, but recording them in {state.path} failed: {exc.strerror}; apply again"
                )
                outcomes = [failure if o is None else o for o in outcomes]
        return outcomes

    def _apply_one(self, change: Change, secrets: Mapping[str, str], recorded: Mapping[str, str]) -> dict[str, str]:
        if change.action.value != "update":
            raise errors.Invalid(
                f"fleetctl cannot {change.action.value} a device; it writes artifacts for register changes only"
            )
        d = DesiredResource(
            change.address, change.kind, change.desired, change.source, change.depends_on, change.inputs, change.secrets
        )
        r = self.resolver.resolve(d, recorded, secrets=secrets, resolved=change.ids.get("resolved", {}))
        if r.problems:
            raise errors.Conflict("; ".join(p.summary for p in r.problems) + "; re-run plan", code="Stale")
        assert r.model is not None and r.config is not None and r.changes is not None and r.dump is not None
        planned = [tuple(c) for c in change.ids.get("planned", [])]
        now = [(c.kind.value, c.name, c.action.value, c.fingerprint) for c in r.changes]
        if planned != now:
            before = {(p[0], p[1]): p[3] for p in planned if len(p) == 4}
            why = sorted(
                {
                    w
                    for c in r.changes
                    if c.sensitive
                    and before.get((c.kind.value, c.name)) not in (None, c.fingerprint)
                    and (w := explain_mismatch(str(before[(c.kind.value, c.name)])))
                }
            )
            raise errors.Conflict(
                "the device's desired configuration no longer gives the planned register changes "
                "(a secret, file or endpoint changed"
                + (f"; the plan's secret fingerprints: {'; '.join(why)}" if why else "")
                + "); re-run plan",
                code="Stale",
            )
        folder = artifacts_root(self.env) / r.model.name
        try:
            artifacts = render(r.model, d.address.name, r.changes, r.config, Path("."), dump=r.dump, write=False)
        except ProblemsError as exc:
            raise errors.Invalid(f"cannot render the artifacts: {exc}") from None
        try:
            write_artifacts(artifacts, folder)
            script = _script(r.model, d.address.name, artifacts)
            if script is not None:
                write_artifacts([script], folder)
                os.chmod(folder / str(script.path), 0o755)
                artifacts.append(script)
        except OSError as exc:
            raise errors.ProviderError(f"cannot write the artifacts into {folder}: {exc.strerror}") from None
        self._written[str(d.address)] = [
            {**a.to_json(), "content": None}
            if a.contains_secrets
            else {k: v for k, v in a.to_json().items() if k != "content"}
            for a in artifacts
        ]
        with self._lock:
            self._secret_files.extend(folder / str(a.path) for a in artifacts if a.contains_secrets and a.path)
        return _written_fingerprints(r.model, r.config, r.dump)


def _script(model: DeviceModel, device_id: str, artifacts: Sequence[Artifact]) -> Artifact | None:
    """The command artifacts as a shell script next to the files they name (run it from anywhere)."""
    commands = [a.content for a in artifacts if a.kind is ArtifactKind.COMMAND]
    if not commands:
        return None
    text = (
        "\n".join(
            [
                "#!/bin/sh",
                f"# fleetctl: {model.name} {device_id}: the commands that carry out the plan",
                "set -e",
                'cd "$(dirname "$0")"',
                *commands,
            ]
        )
        + "\n"
    )
    return Artifact(ArtifactKind.COMMAND, f"{device_id}.sh", False, text)


def _written_fingerprints(model: DeviceModel, config: DesiredConfig, dump: DeviceDump) -> dict[str, str]:
    """Fingerprints of every register and slot value the device holds once the artifacts ran (R7's record)."""
    out = {}
    for name, want in config.registers.items():
        reg = model.register(name)
        if reg is not None:
            out[name] = value_fingerprint(
                want.after(reg, dump.values.get(name, reg.default)), reg.sensitive or want.sensitive
            )
    for key, slot in config.slots.items():
        out[key] = slot.fingerprint
    return out


def _field(finding: Finding) -> str | None:
    return "registers." + ".".join(finding.path) if finding.path else None
