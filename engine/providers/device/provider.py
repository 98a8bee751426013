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
"""
from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine import errors, fsutil
from engine.diagnostics import Diagnostic, Source, error, warning
from engine.fingerprint import explain_mismatch
from engine.manifest.confine import FilePolicy
from engine.manifest.fleet import Fleet, resolve_secret_value
from engine.model import ActualResource, Change, DesiredResource, SecretRef, canonical_json, secret_fingerprint
from engine.progress import SILENT, ProgressSink
from engine.providers.base import ApplyResult, CallHook, ReadResult

from .artifacts import Artifact, ArtifactKind, render, write_artifacts
from .crosscheck import CloudContext, Finding, FindingCode, crosscheck_device
from .diff import ChangeKind, RegisterChange, commit_steps, diff_device, fingerprint_of
from .dumps import DeviceDump, read_dump
from .catalogue import builtin_digest, load_declared, model_for
from .expand import only_aws_target
from .model import builtin_models
from .problems import ProblemsError
from .regmap import Adapter, DeviceModel
from .spec import KIND
from .tokens import Found, Tokens, Unavailable, file_value, library_values, placeholder_endpoint, sha256_of
from .values import DesiredConfig, resolve_desired, value_fingerprint

STATE_ENV = "FLEETCTL_DEVICE_STATE"
ARTIFACTS_ENV = "FLEETCTL_ARTIFACTS"
STATE_FORMAT = 1
AWS_ROOT_NAME = "Amazon Root CA 1"
# Amazon Root CA 1 (https://www.amazontrust.com/repository/AmazonRootCA1.pem): the root AWS IoT's ATS endpoints
# chain to, so the cross-checks can tell whether a device's CA slot holds it. Public material.
AMAZON_ROOT_CA_1 = """\
-----BEGIN CERTIFICATE-----
MIIDQTCCAimgAwIBAgITBmyfz5m/jAo54vB4ikPmljZbyjANBgkqhkiG9w0BAQsF
ADA5MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6
b24gUm9vdCBDQSAxMB4XDTE1MDUyNjAwMDAwMFoXDTM4MDExNzAwMDAwMFowOTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJv
b3QgQ0EgMTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBALJ4gHHKeNXj
ca9HgFB0fW7Y14h29Jlo91ghYPl0hAEvrAIthtOgQ3pOsqTQNroBvo3bSMgHFzZM
9O6II8c+6zf1tRn4SWiw3te5djgdYZ6k/oI2peVKVuRF4fn9tBb6dNqcmzU5L/qw
IFAGbHrQgLKm+a/sRxmPUDgH3KKHOVj4utWp+UhnMJbulHheb4mjUcAwhmahRWa6
VOujw5H5SNz/0egwLX0tdHA114gk957EWW67c4cX8jJGKLhD+rcdqsq08p8kDi1L
93FcXmn/6pUCyziKrlA4b9v7LWIbxcceVOF34GfID5yHI9Y/QCB/IIDEgEw+OyQm
jgSubJrIqg0CAwEAAaNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMC
AYYwHQYDVR0OBBYEFIQYzIU07LwMlJQuCFmcx7IQTgoIMA0GCSqGSIb3DQEBCwUA
A4IBAQCY8jdaQZChGsV2USggNiMOruYou6r4lK5IpDB/G/wkjUu0yKGX9rbxenDI
U5PMCCjjmCXPI6T53iHTfIUJrU6adTrCC2qJeHZERxhlbI1Bjjt/msv0tadQ1wUs
N+gDS63pYaACbvXy8MWy7Vu33PqUXHeeE6V/Uq2V8viTO96LXFvKWlJbYK8U90vv
o/ufQJVtMVT8QtPHRh8jrdkPSHCa2XV4cdFyQzR1bldZwgJcJmApzyMZFo6IQ6XU
5MsI+yMRQ+hDKXJioaldXgjUkK642M4UwtBV8ob2xJNDd2ZhwLnoQdeXeGADbkpy
rqXRfboQnoZsG4q5WTP468SQvvG5
-----END CERTIFICATE-----
"""
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
_CURRENT = frozenset({FindingCode.BROKER_NOT_ENDPOINT, FindingCode.CROSS_REGION, FindingCode.MALFORMED_REGION,
                      FindingCode.TLS_PORT, FindingCode.CA_MISMATCH})


def make_provider(target: str, spec: Any, env: Mapping[str, str], **options: Any) -> "DeviceProvider":
    return DeviceProvider(env, options.get("fleet_targets") or {})


def state_path(env: Mapping[str, str]) -> Path:
    """The device state file: FLEETCTL_DEVICE_STATE, else next to the journal (FLEETCTL_JOURNAL, .fleetctl/)."""
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    journal = env.get("FLEETCTL_JOURNAL")
    return (Path(journal).parent if journal else Path(".fleetctl")) / "device-state.json"


def artifacts_root(env: Mapping[str, str]) -> Path:
    return Path(env.get(ARTIFACTS_ENV) or "out")


class DeviceState:
    """The recorded fingerprints of what apply wrote, per device address (R7). Written atomically, mode 0600
    (it holds fingerprints of secrets, never values)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise errors.Invalid(f"cannot read the device state file {self.path}: {exc}") from None
        if not isinstance(data, dict) or data.get("formatVersion") != STATE_FORMAT:
            raise errors.Invalid(f"{self.path} is not a fleetctl device state file (format {STATE_FORMAT})")
        return {str(k): dict(v) for k, v in data.get("devices", {}).items()}

    def update(self, entries: Mapping[str, Mapping[str, str]]) -> None:
        devices = self.load()
        for address, recorded in entries.items():
            devices[address] = {**devices.get(address, {}), **recorded}
        text = json.dumps({"formatVersion": STATE_FORMAT, "devices": devices}, indent=1, sort_keys=True) + "\n"
        fsutil.write_atomic(self.path, text)


@dataclass
class _Resolved:
    """One device with everything the library needs, or `problems` saying why it cannot be compared."""

    desired: DesiredResource
    model: DeviceModel | None = None
    dump: DeviceDump | None = None
    config: DesiredConfig | None = None
    changes: list[RegisterChange] | None = None
    problems: list[Diagnostic] = field(default_factory=list)
    endpoints: dict[str, str] | None = None


def _source(text: str | None) -> Source | None:
    """`file:line:col` (or `file:line`, or `file`) back into a Source."""
    if not text:
        return None
    parts = text.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return Source(parts[0], int(parts[1]), int(parts[2]))
    parts = text.rsplit(":", 1)
    if len(parts) == 2 and parts[1].isdigit():
        return Source(parts[0], int(parts[1]))
    return Source(text)


def _display(path: str) -> str:
    """A dump path as users read it: relative to the working folder when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:          # another drive
        return path
    return path if relative.startswith("..") else relative


class DeviceProvider:
    """Reads dumps and writes artifacts; see the module docstring. One instance per command."""

    target = ""

    def __init__(self, env: Mapping[str, str], fleet_targets: Mapping[str, Any]) -> None:
        self.env = dict(env)
        self.fleet_targets = fleet_targets
        self.hook: CallHook | None = None
        self._endpoints: dict[str, str | errors.ProviderError] = {}
        self._files: dict[str, bytes] = {}
        self._models: dict[tuple[str, str], DeviceModel] = {}
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._written: dict[str, list[dict[str, Any]]] = {}   # address → artifacts of the last apply
        self._secret_files: list[Path] = []                    # secret-bearing artifacts written (mode 0600)
        self.progress: ProgressSink = SILENT      # long reads report here (engine/run.py sets the command's sink)

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

    def _model(self, d: DesiredResource) -> DeviceModel:
        name, digest = d.spec["model"], d.spec["modelDigest"]
        key = (name, digest)
        if key not in self._models:
            where = d.inputs.get("model") or {}
            if where.get("file"):
                self._models[key] = load_declared(where["file"], int(where["index"]), digest)
            else:
                model = builtin_models().get(name)
                if model is None or builtin_digest(model.source) != digest:
                    raise ValueError(f"the built-in model {name} changed since the plan was made")
                self._models[key] = model
        return self._models[key]

    def _file(self, path: str) -> bytes:
        if path not in self._files:
            self._files[path] = Path(path).read_bytes()
        return self._files[path]

    def endpoint(self, target: str) -> str:
        """The IoT data endpoint of an AWS Target (one DescribeEndpoint per Target and command)."""
        if target not in self._endpoints:
            spec = self.fleet_targets.get(target)
            if spec is None or getattr(spec, "aws", None) is None:
                raise Unavailable(f"awsIotEndpoint: '{target}' is not an AWS Target of this fleet")
            from engine.providers.base import provider_for   # the AWS SDK only when a value needs it
            try:
                self._endpoints[target] = provider_for("aws", target, spec, self.env).endpoint()  # type: ignore[attr-defined]
                self._counts["describeEndpoint"] += 1
            except errors.ProviderError as exc:
                self._endpoints[target] = exc
        found = self._endpoints[target]
        if isinstance(found, errors.ProviderError):
            raise Unavailable(f"cannot resolve the IoT endpoint of target '{target}': {found}")
        return found

    def _lookup(self, d: DesiredResource, *, secrets: Mapping[str, str] | None = None,
                resolved: Mapping[str, str] | None = None, used: dict[str, str] | None = None):
        """Resolution of one device's references: secrets (given by apply, else from their reference), public
        files (checked against the fingerprint validation saw), endpoints (recorded by the plan when apply)."""
        inputs = d.inputs
        root = Path(inputs.get("fleetRoot") or ".")

        def lookup(kind: str, token: Mapping[str, Any], key: str, for_slot: bool) -> Found:
            if kind == "secret":
                ref = SecretRef(*next(iter(token["secret"].items())))
                value = secrets.get(key) if secrets is not None and key in secrets else \
                    resolve_secret_value(ref, root, self.env, FilePolicy.for_targets(root, self.fleet_targets.values()))
                if isinstance(value, Exception):
                    raise Unavailable(str(value))
                recorded = token.get("fingerprint") or token.get("sha256")
                if recorded and secret_fingerprint(value) != recorded:
                    why = explain_mismatch(recorded)
                    raise Unavailable(f"secret {ref.source} {ref.ref} " + (f"cannot be checked against the plan: {why}"
                                      if why else "changed since the plan was made"))
                path = inputs.get("files", {}).get(key)
                if for_slot and ref.source == "file" and path:   # the artifact names the file: its exact bytes
                    try:
                        value = self._file(path)
                    except OSError as exc:
                        raise Unavailable(f"cannot read {path}: {exc.strerror}") from None
                return Found(value, True, path)
            if kind in ("file", "certificatePem"):
                pem = inputs.get("pems", {}).get(key)
                path = inputs.get("files", {}).get(key)
                try:
                    data = pem.encode("utf-8") if pem is not None else self._file(path) if path else None
                except OSError as exc:
                    raise Unavailable(f"cannot read {path}: {exc.strerror}") from None
                if data is None:
                    raise Unavailable(f"no file for {key}")
                if sha256_of(data) != token.get("sha256"):
                    raise Unavailable(f"{path or key} changed since the manifests were validated")
                return Found(file_value(data, for_slot))
            if kind == "awsIotEndpoint":
                target = token["awsIotEndpoint"]
                host = resolved[target] if resolved is not None and target in resolved else self.endpoint(target)
                if used is not None:
                    used[target] = host
                return Found(host)
            return Found(token["hostName"])

        return lookup

    # ------------------------------------------------------------------ resolution
    def _resolve(self, d: DesiredResource, recorded: Mapping[str, str], *, secrets: Mapping[str, str] | None = None,
                 resolved: Mapping[str, str] | None = None) -> _Resolved:
        """Model, dump, desired configuration and the library's changes for one device."""
        out = _Resolved(d)
        address = str(d.address)
        try:
            out.model = self._model(d)
        except (ValueError, ProblemsError) as exc:
            out.problems.append(error(str(exc), source=d.source, address=address))
            return out
        path = d.inputs.get("dump")
        if not path:
            return out
        self._counts["dumps"] += 1
        try:
            dump, problems = read_dump(Path(path), out.model, expected_id=d.address.name, name=_display(path))
        except (OSError, UnicodeDecodeError) as exc:
            out.problems.append(error(f"cannot read the dump {path}: {exc}", address=address))
            return out
        for p in problems:
            out.problems.append(error(f"dump: {p.message}", source=_source(p.location), address=address,
                                      field=".".join(map(str, p.path)) or None))
        out.dump = dump
        if dump is None:
            return out
        used: dict[str, str] = {}
        lookup = self._lookup(d, secrets=secrets, resolved=resolved, used=used)
        sources = d.inputs.get("sources", {})

        def where(level: str, name: str) -> dict[str, Any]:
            return {"source": _source(sources.get(f"{level}:{name}")) or d.source, "address": address,
                    "field": ("values." if level == "group" else f"devices.{d.address.name}.values.") + name}

        def unavailable(level: str) -> Callable[[str, str], None]:
            return lambda name, message: out.problems.append(error(message, **where(level, name)))

        group = library_values(out.model, d.spec.get("values", {}), "group", lookup, unavailable("group"))
        device = library_values(out.model, d.spec.get("device", {}), "device", lookup, unavailable("device"))
        if out.problems:
            return out
        config, problems = resolve_desired(out.model, group, device, device_id=d.address.name,
                                           prune=bool(d.spec.get("prune")),
                                           allow_shared_individual=bool(d.spec.get("allowSharedIndividual")),
                                           group_path=("group",), device_path=("device",))
        for p in problems:
            out.problems.append(error(p.message, **where(str(p.path[0]), ".".join(map(str, p.path[1:])))))
        if out.problems:
            return out
        out.config, out.endpoints = config, used
        out.changes = diff_device(out.model, config, dump, recorded)
        return out

    def _actual(self, r: _Resolved, recorded: Mapping[str, str]) -> ActualResource:
        d = r.desired
        state: dict[str, Any] = {"model": d.spec["model"], "dump": None}
        token = ""
        if r.dump is not None:
            state.update(firmware=r.dump.firmware, dump=os.path.basename(d.inputs["dump"]),
                         recorded=sha256_of(canonical_json(recorded).encode())[:23] if recorded else None)
            token = fingerprint_of(r.dump, sensitive=[reg.name for reg in r.model.registers if reg.sensitive])[:23] \
                if r.model is not None else fingerprint_of(r.dump)[:23]
        elif d.inputs.get("dump"):
            state["dump"] = "unreadable: " + os.path.basename(d.inputs["dump"])
        ids: dict[str, Any] = {"device": d.address.name}
        if r.changes:
            assert r.model is not None
            ids.update(changes=[c.to_json() for c in r.changes], commit=list(commit_steps(r.model, r.changes)),
                       deliver=_DELIVERY[r.model.adapter].format(id=d.address.name),
                       clean=r.model.clean_before_load and any(c.kind is ChangeKind.SLOT for c in r.changes),
                       resolved=dict(sorted((r.endpoints or {}).items())))
        return ActualResource(d.address, KIND, state, token, ids=ids)

    def _cloud(self, r: _Resolved) -> CloudContext:
        cloud = r.desired.inputs.get("cloud") or {}
        target = cloud.get("target")
        spec = self.fleet_targets.get(target) if target else None
        common = dict(target=target or "", expected_client_id=cloud.get("thing"),
                      client_cert_cn=cloud.get("certificateCn"))
        if spec is not None and getattr(spec, "aws", None) is not None:
            try:
                endpoint: str | None = (r.endpoints or {}).get(target) or self.endpoint(target)
            except Unavailable:
                endpoint = None
            return CloudContext(iot_endpoint=endpoint, region=spec.aws.region, required_root_name=AWS_ROOT_NAME,
                                required_root_pem=AMAZON_ROOT_CA_1.encode(), **common)
        if spec is not None and getattr(spec, "azure", None) is not None and spec.azure.hub is not None:
            return CloudContext(iot_endpoint=spec.azure.hub.hostName, **common)
        return CloudContext(**common)

    def _findings(self, r: _Resolved) -> list[Diagnostic]:
        """Cross-checks as plan warnings: the configuration the plan leads to, then what the dump shows now
        and the plan corrects."""
        assert r.model is not None and r.config is not None and r.dump is not None
        context = self._cloud(r)
        after = crosscheck_device(r.model, r.config, r.dump, context)
        before = crosscheck_device(r.model, DesiredConfig(r.model.name, r.config.device_id, {}, {}), r.dump, context)
        seen = {(f.code, f.path) for f in after}
        out = []
        address = str(r.desired.address)
        for f in after:
            out.append(warning(f.message, f"cross-check {f.code.value}", source=r.desired.source, address=address,
                               field=_field(f)))
        for f in before:
            if f.code in _CURRENT and (f.code, f.path) not in seen:
                out.append(warning(f"currently: {f.message}",
                                   f"cross-check {f.code.value}: the dump shows it; the planned changes correct it",
                                   source=r.desired.source, address=address, field=_field(f)))
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
            r = self._resolve(d, recorded)
            diags.extend(r.problems)
            if r.model is not None and r.dump is None and not d.inputs.get("dump"):
                missing.setdefault(d.spec.get("config", ""), []).append(d)
            if r.changes is not None and r.config is not None:
                diags.extend(self._findings(r))
            actual.append(self._actual(r, recorded))
        progress.close()
        for config, devices in sorted(missing.items()):
            names = [d.address.name for d in devices]
            diags.append(warning(f"{len(names)} device(s) of DeviceConfig '{config}' have no dump, so they are not "
                                 f"planned: {', '.join(names)}",
                                 f"read them into {devices[0].inputs.get('dumps')} (one file per device, named by "
                                 "its identity) and plan again", source=devices[0].source,
                                 address=f"device/DeviceConfig/{config}"))
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
        for change, values in zip(changes, secrets):
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
            except OSError as exc:    # the artifacts are written, but the next plan could not tell: say so
                failure = errors.ProviderError(f"the artifacts are written, but recording them in {state.path} "
                                               f"failed: {exc.strerror}; apply again")
                outcomes = [failure if o is None else o for o in outcomes]
        return outcomes

    def _apply_one(self, change: Change, secrets: Mapping[str, str], recorded: Mapping[str, str]) -> dict[str, str]:
        if change.action.value != "update":
            raise errors.Invalid(f"fleetctl cannot {change.action.value} a device; it writes artifacts for "
                                 "register changes only")
        d = DesiredResource(change.address, change.kind, change.desired, change.source, change.depends_on,
                            change.inputs, change.secrets)
        r = self._resolve(d, recorded, secrets=secrets, resolved=change.ids.get("resolved", {}))
        if r.problems:
            raise errors.Conflict("; ".join(p.summary for p in r.problems) + "; re-run plan", code="Stale")
        assert r.model is not None and r.config is not None and r.changes is not None and r.dump is not None
        planned = [tuple(c) for c in change.ids.get("planned", [])]
        now = [(c.kind.value, c.name, c.action.value, c.fingerprint) for c in r.changes]
        if planned != now:
            before = {(p[0], p[1]): p[3] for p in planned if len(p) == 4}
            why = sorted({w for c in r.changes if c.sensitive and before.get((c.kind.value, c.name)) not in
                          (None, c.fingerprint) and (w := explain_mismatch(str(before[(c.kind.value, c.name)])))})
            raise errors.Conflict("the device's desired configuration no longer gives the planned register changes "
                                  "(a secret, file or endpoint changed" + (f"; the plan's secret fingerprints: "
                                                                           f"{'; '.join(why)}" if why else "")
                                  + "); re-run plan", code="Stale")
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
        self._written[str(d.address)] = [{**a.to_json(), "content": None} if a.contains_secrets else
                                         {k: v for k, v in a.to_json().items() if k != "content"}
                                         for a in artifacts]
        with self._lock:
            self._secret_files.extend(folder / str(a.path) for a in artifacts if a.contains_secrets and a.path)
        return _written_fingerprints(r.model, r.config, r.dump)


def _script(model: DeviceModel, device_id: str, artifacts: Sequence[Artifact]) -> Artifact | None:
    """The command artifacts as a shell script next to the files they name (run it from anywhere)."""
    commands = [a.content for a in artifacts if a.kind is ArtifactKind.COMMAND]
    if not commands:
        return None
    text = "\n".join(["#!/bin/sh", f"# fleetctl: {model.name} {device_id}: the commands that carry out the plan",
                      "set -e", 'cd "$(dirname "$0")"', *commands]) + "\n"
    return Artifact(ArtifactKind.COMMAND, f"{device_id}.sh", False, text)


def _written_fingerprints(model: DeviceModel, config: DesiredConfig, dump: DeviceDump) -> dict[str, str]:
    """Fingerprints of every register and slot value the device holds once the artifacts ran (R7's record)."""
    out = {}
    for name, want in config.registers.items():
        reg = model.register(name)
        if reg is not None:
            out[name] = value_fingerprint(want.after(reg, dump.values.get(name, reg.default)),
                                          reg.sensitive or want.sensitive)
    for key, slot in config.slots.items():
        out[key] = slot.fingerprint
    return out


def _field(finding: Finding) -> str | None:
    return "registers." + ".".join(finding.path) if finding.path else None


# ---------------------------------------------------------------------------------------------------------
# Cross-checks for `fleetctl lint`.

def device_findings(fleet: Fleet, *, endpoints: Mapping[str, str] | None = None) -> list[Finding]:
    """The device cross-checks of a loaded fleet, for lint: a pure function (no cloud call, no secret read).

    Devices the fleet planned (loaded with a dumps folder) are checked as the plan would leave them, over their
    dump; a DeviceConfig without such devices is checked on its group values over the model defaults. An
    `{awsIotEndpoint: T}` value is the Target's endpoint by construction (`endpoints` may give the real host);
    values holding a secret are left out. Each Finding carries the address and the DeviceConfig's file:line."""
    from engine.diagnostics import Diagnostics
    from engine.manifest.fleet import ExpandContext

    targets = {name: m.spec for name, m in fleet.targets().items()}
    known = dict(endpoints or {})
    for name, spec in targets.items():
        if getattr(spec, "aws", None) is not None:
            known.setdefault(name, placeholder_endpoint(spec.aws.region))
    provider = DeviceProvider({}, targets)
    provider._endpoints.update(known)

    def check(d: DesiredResource, model: DeviceModel, lookup: Any, dump: DeviceDump | None) -> list[Finding]:
        def secretless(kind: str, token: Mapping[str, Any], key: str, for_slot: bool) -> Found:
            if kind == "secret":
                raise Unavailable("secret")
            return lookup(kind, token, key, for_slot)
        group = library_values(model, d.spec.get("values", {}), "group", secretless, lambda n, m: None)
        device = library_values(model, d.spec.get("device", {}), "device", secretless, lambda n, m: None)
        config, _ = resolve_desired(model, group, device, device_id=d.address.name, allow_shared_individual=True)
        context = provider._cloud(_Resolved(d, model, dump, config, endpoints=known))
        context = replace(context, iot_endpoint=(endpoints or {}).get(context.target))   # only a real one compares
        return [_with(f, str(d.address), d.source) for f in crosscheck_device(model, config, dump, context)]

    out: list[Finding] = []
    planned: set[str] = set()
    for d in sorted((d for d in fleet.desired if d.kind == KIND), key=lambda x: x.address):
        planned.add(d.spec.get("config", ""))
        try:
            model = provider._model(d)
        except ValueError:
            continue
        dump = read_dump(Path(d.inputs["dump"]), model, expected_id=d.address.name)[0] if d.inputs.get("dump") \
            else None
        out += check(d, model, provider._lookup(d, resolved=known), dump)
    index = {(m.decl.qualified, m.target, m.name): m for m in fleet.manifests}
    for m in sorted((m for m in fleet.manifests if m.decl.qualified == KIND), key=lambda m: m.name):
        if m.name in planned:
            continue
        ctx = ExpandContext(fleet.root, m, index, {}, Diagnostics(), False)
        ref = model_for(ctx, m.spec.model)
        if ref is None:
            continue
        tokens = Tokens(ctx, ref.model)
        group = tokens.level(m.spec.values, "group", ("values",))
        stub = DesiredResource(m.address, KIND, {"model": ref.model.name, "values": group}, m.source(),
                               inputs={"cloud": {"target": (tokens.targets + only_aws_target(ctx) + [None])[0]}})

        def lookup(kind: str, token: Mapping[str, Any], key: str, for_slot: bool, _t: Tokens = tokens) -> Found:
            if kind == "awsIotEndpoint":
                return Found(known.get(token["awsIotEndpoint"], ""))
            return _t.lookup(kind, token, key, for_slot)

        out += check(stub, ref.model, lookup, None)
    return out


def _with(finding: Finding, address: str, source: Source | None) -> Finding:
    return replace(finding, address=address, source=str(source) if source else "")
