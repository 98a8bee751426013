"""Cross-checks between a device's configuration and the cloud target it must reach.

Why: a register map can be internally valid and still never connect: a broker in another AWS region than the
target's (cross-region is not allowed, seed 000), a malformed endpoint (the u-blox note's ``eu-west2``), a
client certificate whose CN is not the thing name or DPS registration id, a CA slot that does not hold the
root the service presents, TLS on a port other than 8883. These checks are pure and return `Finding`s; the
engine turns them into plan warnings and lint findings. Which register plays which part is declared per
model (`roles`), so no check knows an adapter.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .codecs import CodecError, codec, parse_url, read_field
from .dumps import DeviceDump
from .pem import slot_digests
from .regmap import DeviceModel, Role, RoleRef
from .values import DesiredConfig


class FindingCode(enum.Enum):
    BROKER_NOT_ENDPOINT = "broker-not-endpoint"
    CROSS_REGION = "cross-region"
    MALFORMED_REGION = "malformed-region"
    CN_MISMATCH = "cn-mismatch"
    CA_MISMATCH = "ca-mismatch"
    CA_UNVERIFIED = "ca-unverified"
    TLS_PORT = "tls-port"
    SLOT_REF_EMPTY = "slot-ref-empty"


@dataclass(frozen=True)
class Finding:
    """A warning: `path` names the register (and field) concerned. The engine fills in `address` (the device,
    or the DeviceConfig when no device is known) and `source` (``file:line:col`` of the DeviceConfig)."""

    code: FindingCode
    path: tuple[str, ...]
    message: str
    address: str = ""
    source: str = ""


@dataclass(frozen=True)
class CloudContext:
    """What the target expects. `expected_client_id` is the thing name (AWS) or registration id (DPS);
    `client_cert_cn` the CN of the certificate the device presents; `required_root_pem` the root CA the
    endpoint chains to, and `required_root_name` its label as models name factory slots."""

    iot_endpoint: str | None = None
    region: str | None = None
    target: str = ""
    expected_client_id: str | None = None
    client_cert_cn: str | None = None
    required_root_pem: bytes | None = None
    required_root_name: str | None = None


TLS_PORT = 8883
_AWS_IOT_HOST = re.compile(r"[a-z0-9]+(?:-ats)?\.iot\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
_AWS_REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d")


def aws_region_of(host: str) -> str | None:
    """The region label of an AWS IoT data endpoint host, or None for other hosts."""
    match = _AWS_IOT_HOST.fullmatch(host.strip().lower().rstrip("."))
    return match.group("region") if match else None


def check_broker(
    host: str, *, iot_endpoint: str | None, region: str | None, target: str = "", path: tuple[str, ...] = ()
) -> list[Finding]:
    """The broker must be the target's IoT endpoint, and in the target's region."""
    findings = []
    host = host.strip().lower().rstrip(".")
    where = f"target {target}" if target else "the target"
    if iot_endpoint and host != iot_endpoint.strip().lower():
        findings.append(
            Finding(
                FindingCode.BROKER_NOT_ENDPOINT,
                path,
                f"broker {host} is not the IoT endpoint {iot_endpoint} of {where}",
            )
        )
    broker_region = aws_region_of(host)
    if broker_region is None:
        return findings
    if not _AWS_REGION.fullmatch(broker_region):
        findings.append(
            Finding(FindingCode.MALFORMED_REGION, path, f"broker {host}: '{broker_region}' is not an AWS region name")
        )
    elif region and broker_region != region:
        findings.append(
            Finding(
                FindingCode.CROSS_REGION,
                path,
                f"broker {host} is in {broker_region} but {where} is in {region}: "
                "cross-region connections are not allowed",
            )
        )
    return findings


def check_client_cn(
    cn: str | None, expected: str | None, *, what: str = "thing name", path: tuple[str, ...] = ()
) -> list[Finding]:
    """The client certificate CN must equal the thing name (AWS) or the registration id (DPS)."""
    if cn is None or expected is None or cn == expected:
        return []
    return [Finding(FindingCode.CN_MISMATCH, path, f"client certificate CN '{cn}' is not the {what} '{expected}'")]


def check_tls_port(tls: bool, port: int | None, *, path: tuple[str, ...] = ()) -> list[Finding]:
    """With TLS on, the MQTT port must be 8883; None or 0 means the device default (8883 with TLS)."""
    if not tls or port in (None, 0, TLS_PORT):
        return []
    return [Finding(FindingCode.TLS_PORT, path, f"TLS is enabled but the MQTT port is {port}, not {TLS_PORT}")]


def check_ca(
    slot: str,
    digests: frozenset[str] | None,
    factory_label: str | None,
    *,
    required_pem: bytes | None,
    required_name: str | None,
) -> list[Finding]:
    """The CA slot in use must hold the required root: by digest when known, else by factory label."""
    if required_pem is None and required_name is None:
        return []
    if digests is not None and required_pem is not None:
        if digests & slot_digests(required_pem):
            return []
        wanted = required_name or "the required root"
        return [Finding(FindingCode.CA_MISMATCH, (slot,), f"CA slot {slot} does not hold {wanted}")]
    if factory_label is not None and required_name is not None:
        if factory_label.lower() == required_name.lower():
            return []
        return [
            Finding(
                FindingCode.CA_MISMATCH,
                (slot,),
                f"CA slot {slot} holds '{factory_label}' from the factory, not '{required_name}'",
            )
        ]
    return [
        Finding(
            FindingCode.CA_UNVERIFIED,
            (slot,),
            f"cannot tell what CA slot {slot} holds: neither desired nor reported by the dump",
        )
    ]


class _View:
    """The effective value of each register: desired (over the dump) else dumped else the model default."""

    def __init__(self, model: DeviceModel, desired: DesiredConfig, dump: DeviceDump | None) -> None:
        self.model, self.desired, self.dump = model, desired, dump

    def raw(self, name: str) -> bytes | None:
        reg = self.model.register(name)
        if reg is None:
            return None
        current = self.dump.values.get(name) if self.dump is not None else None
        base = current if current is not None else reg.default
        want = self.desired.registers.get(name)
        return want.after(reg, base) if want is not None else base

    def value(self, ref: RoleRef | None) -> object:
        if ref is None or ref.register is None:
            return None
        reg = self.model.register(ref.register)
        data = self.raw(ref.register)
        if reg is None or data is None:
            return None
        if ref.field is not None and reg.fields:
            return read_field(reg, data, ref.field)
        decoded = codec(reg).decode(reg, data)
        if ref.field is not None and isinstance(decoded, str):
            try:
                return dict(parse_url(decoded).query).get(ref.field)
            except CodecError:
                return None
        return decoded

    def ca_slot_key(self, ref: RoleRef) -> tuple[str, int | None]:
        assert ref.slot is not None
        if ref.index is not None:
            index = self.value(ref.index)
            if isinstance(index, int):
                return f"{ref.slot}/{index:02X}", index
        if ref.name_from is not None:
            name = self.value(ref.name_from)
            if name:
                return f"{ref.slot}/{name}", None
        return ref.slot, None


def crosscheck_device(
    model: DeviceModel, desired: DesiredConfig, dump: DeviceDump | None, context: CloudContext
) -> list[Finding]:
    """All cross-checks for one device, in a fixed order (broker, port, identity, CA, slot references)."""
    view = _View(model, desired, dump)
    roles = model.roles
    findings: list[Finding] = []
    host: str | None = None
    port: int | None = None
    tls = True  # AWS IoT and IoT Hub MQTT require TLS
    if Role.BROKER_URL in roles:
        url_text = view.value(roles[Role.BROKER_URL])
        if isinstance(url_text, str) and url_text:
            url = parse_url(url_text)
            host, port = url.host, url.port
    broker_ref = roles.get(Role.BROKER_HOST)
    if host is None and broker_ref is not None:
        value = view.value(broker_ref)
        host = value if isinstance(value, str) and value else None
    broker_path = tuple(filter(None, [(roles.get(Role.BROKER_URL) or broker_ref or RoleRef()).register]))
    if host:
        findings += check_broker(
            host, iot_endpoint=context.iot_endpoint, region=context.region, target=context.target, path=broker_path
        )
    if Role.TLS_ENABLED in roles:
        tls = bool(view.value(roles[Role.TLS_ENABLED]))
    if Role.BROKER_PORT in roles:
        number = view.value(roles[Role.BROKER_PORT])
        port = number if isinstance(number, int) else port
        ref = roles[Role.BROKER_PORT]
        findings += check_tls_port(tls, port, path=tuple(filter(None, (ref.register, ref.field))))
    elif host:
        findings += check_tls_port(tls, port, path=broker_path)
    client_id = view.value(roles.get(Role.CLIENT_ID)) or desired.device_id  # "" = the serial number
    findings += check_client_cn(
        context.client_cert_cn, context.expected_client_id or str(client_id), path=("client certificate",)
    )
    ca_ref = roles.get(Role.CA_SLOT)
    if ca_ref is not None and ca_ref.slot is not None and tls:
        key, index = view.ca_slot_key(ca_ref)
        slot = model.slot(ca_ref.slot)
        want = desired.slots.get(key)
        digests: frozenset[str] | None = want.digests if want is not None else None
        if digests is None and dump is not None and dump.slots.get(key):
            digests = frozenset({str(dump.slots[key])})
        label = slot.factory.get(index) if slot is not None and index is not None else None
        findings += check_ca(
            key, digests, label, required_pem=context.required_root_pem, required_name=context.required_root_name
        )
    if tls:
        findings += _slot_refs(model, view, dump)
    return findings


def _slot_refs(model: DeviceModel, view: _View, dump: DeviceDump | None) -> list[Finding]:
    """Research §2.7: a field indexing a writable slot that is empty from the factory and not populated."""
    findings = []
    for reg in model.registers:
        if reg.name not in view.desired.registers:
            continue
        for spec in reg.fields:
            slot = model.slot(spec.ref) if spec.ref else None
            if slot is None:
                continue
            index = view.value(RoleRef(register=reg.name, field=spec.name))
            if not isinstance(index, int) or index in slot.locked or index in slot.factory:
                continue
            key = f"{slot.name}/{index:02X}"
            if key in view.desired.slots or (dump is not None and dump.slots.get(key)):
                continue
            findings.append(
                Finding(
                    FindingCode.SLOT_REF_EMPTY,
                    (reg.name, spec.name),
                    f"{reg.name}.{spec.name} points at {key}, which is empty from the factory "
                    "and not populated by this configuration",
                )
            )
    return findings
