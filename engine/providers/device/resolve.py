"""One device resolved for the library: its model, its dump, its desired configuration with every reference
resolved, and the register changes the library computes (R1-R9); plus the cloud context its cross-checks use.

Why a module of its own: plan (read), apply and lint resolve devices the same way, and only here. Secrets are
given by apply or read from their reference and checked against the fingerprint the plan saw; public files
against the sha256 validation saw; an `{awsIotEndpoint: T}` is the Target's IoT data endpoint (one
DescribeEndpoint per Target and command, the AWS SDK imported only when a value needs it) or the one a plan
recorded. The provider (engine/providers/device/provider.py) reads and applies with a `Resolver`; lint's
cross-checks (fleetcheck.py) use one without a cloud call.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from engine import errors
from engine.diagnostics import Diagnostic, Source, error
from engine.fingerprint import explain_mismatch
from engine.manifest.confine import FilePolicy
from engine.manifest.secrets import resolve_secret_value
from engine.model import DesiredResource, SecretRef, secret_fingerprint
from engine.providers.base import provider_for  # imports the AWS provider (and SDK) only when called

from .catalogue import builtin_digest, load_declared
from .crosscheck import CloudContext
from .diff import RegisterChange, diff_device
from .dumps import DeviceDump, read_dump
from .model import builtin_models
from .problems import ProblemsError
from .regmap import DeviceModel
from .tokens import Found, Lookup, Unavailable, file_value, library_values, sha256_of
from .values import DesiredConfig, resolve_desired

if TYPE_CHECKING:
    from engine.manifest.core_kinds import TargetSpec


@runtime_checkable
class EndpointSource(Protocol):
    """A provider that knows its IoT data endpoint (the AWS provider's `endpoint()`; DescribeEndpoint)."""

    def endpoint(self) -> str: ...


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


@dataclass
class Resolved:
    """One device with everything the library needs, or `problems` saying why it cannot be compared."""

    desired: DesiredResource
    model: DeviceModel | None = None
    dump: DeviceDump | None = None
    config: DesiredConfig | None = None
    changes: list[RegisterChange] | None = None
    problems: list[Diagnostic] = field(default_factory=list)
    endpoints: dict[str, str] | None = None


def source_of(text: str | None) -> Source | None:
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
    except ValueError:  # another drive
        return path
    return path if relative.startswith("..") else relative


class Resolver:
    """Resolves devices for one command, caching models, files and endpoints; counts dumps read and endpoint
    look-ups into `counts` (the provider's stats)."""

    def __init__(
        self, env: Mapping[str, str], fleet_targets: Mapping[str, TargetSpec], counts: Counter[str] | None = None
    ) -> None:
        self.env = dict(env)
        self.fleet_targets = fleet_targets
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self._endpoints: dict[str, str | errors.ProviderError] = {}
        self._files: dict[str, bytes] = {}
        self._models: dict[tuple[str, str], DeviceModel] = {}

    def know_endpoints(self, endpoints: Mapping[str, str]) -> None:
        """Take these IoT endpoints as the Targets' own (lint: placeholders or given hosts; no cloud call)."""
        self._endpoints.update(endpoints)

    def model(self, d: DesiredResource) -> DeviceModel:
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
            if spec is None or spec.aws is None:
                raise Unavailable(f"awsIotEndpoint: '{target}' is not an AWS Target of this fleet")
            try:
                provider = provider_for("aws", target, spec, self.env)
                if not isinstance(provider, EndpointSource):
                    raise TypeError(f"the aws provider {type(provider).__name__} has no endpoint()")
                self._endpoints[target] = provider.endpoint()
                self.counts["describeEndpoint"] += 1
            except errors.ProviderError as exc:
                self._endpoints[target] = exc
        found = self._endpoints[target]
        if isinstance(found, errors.ProviderError):
            raise Unavailable(f"cannot resolve the IoT endpoint of target '{target}': {found}")
        return found

    def lookup(
        self,
        d: DesiredResource,
        *,
        secrets: Mapping[str, str] | None = None,
        resolved: Mapping[str, str] | None = None,
        used: dict[str, str] | None = None,
    ) -> Lookup:
        """Resolution of one device's references: secrets (given by apply, else from their reference), public
        files (checked against the fingerprint validation saw), endpoints (recorded by the plan when apply)."""
        inputs = d.inputs
        root = Path(inputs.get("fleetRoot") or ".")

        def lookup(kind: str, token: Mapping[str, Any], key: str, for_slot: bool) -> Found:
            if kind == "secret":
                ref = SecretRef(*next(iter(token["secret"].items())))
                value: str | bytes | Exception = (
                    secrets[key]
                    if secrets is not None and key in secrets
                    else resolve_secret_value(
                        ref, root, self.env, FilePolicy.for_targets(root, self.fleet_targets.values())
                    )
                )
                if isinstance(value, Exception):
                    raise Unavailable(str(value))
                recorded = token.get("fingerprint") or token.get("sha256")
                if recorded and secret_fingerprint(value) != recorded:
                    why = explain_mismatch(recorded)
                    raise Unavailable(
                        f"secret {ref.source} {ref.ref} "
                        + (f"cannot be checked against the plan: {why}" if why else "changed since the plan was made")
                    )
                path = inputs.get("files", {}).get(key)
                if for_slot and ref.source == "file" and path:  # the artifact names the file: its exact bytes
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

    def resolve(
        self,
        d: DesiredResource,
        recorded: Mapping[str, str],
        *,
        secrets: Mapping[str, str] | None = None,
        resolved: Mapping[str, str] | None = None,
    ) -> Resolved:
        """Model, dump, desired configuration and the library's changes for one device."""
        out = Resolved(d)
        address = str(d.address)
        try:
            out.model = self.model(d)
        except (ValueError, ProblemsError) as exc:
            out.problems.append(error(str(exc), source=d.source, address=address))
            return out
        path = d.inputs.get("dump")
        if not path:
            return out
        self.counts["dumps"] += 1
        try:
            dump, problems = read_dump(Path(path), out.model, expected_id=d.address.name, name=_display(path))
        except (OSError, UnicodeDecodeError) as exc:
            out.problems.append(error(f"cannot read the dump {path}: {exc}", address=address))
            return out
        for p in problems:
            out.problems.append(
                error(
                    f"dump: {p.message}",
                    source=source_of(p.location),
                    address=address,
                    field=".".join(map(str, p.path)) or None,
                )
            )
        out.dump = dump
        if dump is None:
            return out
        used: dict[str, str] = {}
        lookup = self.lookup(d, secrets=secrets, resolved=resolved, used=used)
        sources = d.inputs.get("sources", {})

        def where(level: str, name: str) -> dict[str, Any]:
            return {
                "source": source_of(sources.get(f"{level}:{name}")) or d.source,
                "address": address,
                "field": ("values." if level == "group" else f"devices.{d.address.name}.values.") + name,
            }

        def unavailable(level: str) -> Callable[[str, str], None]:
            return lambda name, message: out.problems.append(error(message, **where(level, name)))

        group = library_values(out.model, d.spec.get("values", {}), "group", lookup, unavailable("group"))
        device = library_values(out.model, d.spec.get("device", {}), "device", lookup, unavailable("device"))
        if out.problems:
            return out
        config, problems = resolve_desired(
            out.model,
            group,
            device,
            device_id=d.address.name,
            prune=bool(d.spec.get("prune")),
            allow_shared_individual=bool(d.spec.get("allowSharedIndividual")),
            group_path=("group",),
            device_path=("device",),
        )
        for p in problems:
            out.problems.append(error(p.message, **where(str(p.path[0]), ".".join(map(str, p.path[1:])))))
        if out.problems:
            return out
        out.config, out.endpoints = config, used
        out.changes = diff_device(out.model, config, dump, recorded)
        return out

    def cloud(self, r: Resolved) -> CloudContext:
        cloud = r.desired.inputs.get("cloud") or {}
        target = cloud.get("target")
        spec = self.fleet_targets.get(target) if target else None
        common: dict[str, Any] = dict(
            target=target or "", expected_client_id=cloud.get("thing"), client_cert_cn=cloud.get("certificateCn")
        )
        if target and spec is not None and spec.aws is not None:
            try:
                endpoint: str | None = (r.endpoints or {}).get(target) or self.endpoint(target)
            except Unavailable:
                endpoint = None
            return CloudContext(
                iot_endpoint=endpoint,
                region=spec.aws.region,
                required_root_name=AWS_ROOT_NAME,
                required_root_pem=AMAZON_ROOT_CA_1.encode(),
                **common,
            )
        if spec is not None and spec.azure is not None and spec.azure.hub is not None:
            return CloudContext(iot_endpoint=spec.azure.hub.hostName, **common)
        return CloudContext(**common)
