"""The register map of a device model: the value types every part of the device library speaks.

Why: fleetctl reads, compares and writes device configuration by *name* (``profile``, ``wifi.ssid``), never
by raw address. A `DeviceModel` is the one place that knows where a name lives on the device, its size and type,
whether it is secret, readable or per-device, and how writes are ordered and committed. What differs between the
four adapters (address syntax, identity spelling, key limits) is declared once, in `ADAPTER_RULES`.

This module holds only the frozen types and the adapter rules; it imports nothing else of the library, so the
codecs, dumps, values, diff and artifacts build on it without a circle. Loading and checking a model document
(and the built-in models) is engine/providers/device/model.py.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class Adapter(enum.Enum):
    """The protocol family of a device model: how dumps look and which vendor artifacts are rendered."""

    SPRINGCORE = "springcore"
    UBLOX_AT = "ublox-at"
    SPWF_AT = "spwf-at"
    ESP_NVS = "esp-nvs"


class RegType(enum.Enum):
    """Register value types. The canonical form of every type is bytes; equality is on those bytes (R4)."""

    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    BOOL = "bool"
    ENUM = "enum"
    BITFIELD = "bitfield"
    BYTES = "bytes"
    STRING = "string"
    IPV4 = "ipv4"
    IPV4_LIST = "ipv4_list"
    URL = "url"


class FieldType(enum.Enum):
    """Types a bitfield field may have; a field is always an unsigned integer under its mask."""

    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    BOOL = "bool"
    ENUM = "enum"


class Access(enum.Enum):
    RO = "ro"
    RW = "rw"
    WO = "wo"


class OrderBucket(enum.IntEnum):
    """R9 write buckets: ``first``, the middle (integer ``order`` then address), ``last`` (mode switches)."""

    FIRST = 0
    MIDDLE = 1
    LAST = 2


class SlotKind(enum.Enum):
    PEM_CERT = "pem-cert-slot"
    KEY = "key-slot"


class CommitWhen(enum.Enum):
    """When a commit step runs: after any change, when a changed name matches, or when a change needs a reboot."""

    ANY = "any"
    MATCH = "match"
    REBOOT = "reboot"


class Role(enum.Enum):
    """What a register means to the cross-checks (broker host, port, TLS, CA slot, identities)."""

    BROKER_HOST = "broker_host"
    BROKER_URL = "broker_url"
    BROKER_PORT = "broker_port"
    TLS_ENABLED = "tls_enabled"
    CA_SLOT = "ca_slot"
    CLIENT_ID = "client_id"
    THING_NAME = "thing_name"


_INT_BITS: Mapping[str, int] = MappingProxyType({"u8": 8, "u16": 16, "u32": 32})
NATURAL_SIZE: Mapping[RegType, int] = MappingProxyType(
    {
        RegType.U8: 1,
        RegType.U16: 2,
        RegType.U32: 4,
        RegType.BOOL: 1,
        RegType.ENUM: 1,
        RegType.IPV4: 4,
    }
)
FIXED_SIZE_TYPES = frozenset(
    {
        RegType.U8,
        RegType.U16,
        RegType.U32,
        RegType.BOOL,
        RegType.ENUM,
        RegType.BITFIELD,
        RegType.IPV4,
        RegType.IPV4_LIST,
    }
)


def int_bits(type_name: str) -> int | None:
    """Bit width of ``u8``/``u16``/``u32``, else None."""
    return _INT_BITS.get(type_name)


# ---------------------------------------------------------------------------------------------------------
# Per-adapter rules, declared once.

_MAC_SEPARATORS = re.compile(r"[-:.\s]")


def _mac_identity(value: str) -> str:
    compact = _MAC_SEPARATORS.sub("", value).upper()
    if not re.fullmatch(r"[0-9A-F]{12}", compact):
        return value.strip().upper()
    return "-".join(compact[i : i + 2] for i in range(0, 12, 2))


def _serial_identity(value: str) -> str:
    return value.strip().upper()


def _springcore_address(raw: object) -> str:
    if isinstance(raw, bool):
        raise ValueError('expected a register address such as 0x02C0 or "02C0"')
    if isinstance(raw, int):
        number = raw
    elif isinstance(raw, str) and re.fullmatch(r"(0x)?[0-9A-Fa-f]{4}", raw.strip()):
        number = int(raw.strip().removeprefix("0x"), 16)
    else:
        raise ValueError(f'expected a 4-digit hex register address such as "02C0", got {raw!r}')
    if not 0 <= number <= 0xFFFF:
        raise ValueError(f"address {number:#x} is outside 0000..FFFF")
    return f"{number:04X}"


def _ublox_address(raw: object) -> str:
    text = str(raw).strip().upper()
    if not re.fullmatch(r"U[A-Z]+(=\d+(,\d+)*)?", text):
        raise ValueError(f'expected an AT address such as "UWSC=0,2", "UDDRP=0" or "UMSM", got {raw!r}')
    return text


def _spwf_address(raw: object) -> str:
    text = str(raw).strip()
    if not re.fullmatch(r"[a-z][a-z0-9_]*", text):
        raise ValueError(f'expected an SPWF configuration variable such as "ip_hostname", got {raw!r}')
    return text


def _nvs_address(raw: object) -> str:
    text = str(raw).strip()
    match = re.fullmatch(r"([A-Za-z0-9_]+)/([A-Za-z0-9_]+)", text)
    if not match:
        raise ValueError(f'expected "namespace/key", got {raw!r}')
    for part in match.groups():
        if len(part) > 15:
            raise ValueError(f"NVS names are at most 15 characters: {part!r} has {len(part)}")
    return text


def _hex_sort(address: str) -> tuple[int | str, ...]:
    return (int(address, 16),)


def natural_sort(address: str) -> tuple[int | str, ...]:
    """Sort key that orders digit runs numerically (``UWSC=0,2`` before ``UWSC=0,100``)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", address))


@dataclass(frozen=True)
class AdapterRules:
    """Everything adapter-specific that the model loader needs."""

    address: Callable[[object], str]
    sort_key: Callable[[str], tuple[int | str, ...]]
    identity: Callable[[str], str]
    default_string_size: int | None  # None: string/url registers must declare `size`
    full_image: bool  # artifacts replace the whole store: render needs the dump


ADAPTER_RULES: Mapping[Adapter, AdapterRules] = MappingProxyType(
    {
        Adapter.SPRINGCORE: AdapterRules(_springcore_address, _hex_sort, _serial_identity, None, False),
        Adapter.UBLOX_AT: AdapterRules(_ublox_address, natural_sort, _mac_identity, None, False),
        Adapter.SPWF_AT: AdapterRules(_spwf_address, natural_sort, _mac_identity, None, False),
        Adapter.ESP_NVS: AdapterRules(_nvs_address, natural_sort, _mac_identity, 4000, True),
    }
)


# ---------------------------------------------------------------------------------------------------------
# The model's vocabulary.


@dataclass(frozen=True)
class FieldSpec:
    """A named bit range of a bitfield register. `mask` is an integer over the whole register, byte 0 most
    significant (SpringCore bitmaps are written that way). A `reserved` field is forced to its value (R3)."""

    name: str
    mask: int
    type: FieldType
    values: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    reserved: int | None = None
    ref: str | None = None  # name of the slot this field indexes (e.g. x509)

    @property
    def shift(self) -> int:
        return (self.mask & -self.mask).bit_length() - 1

    @property
    def width(self) -> int:
        return bin(self.mask).count("1")

    @property
    def max_value(self) -> int:
        return (1 << self.width) - 1


@dataclass(frozen=True)
class Register:
    """One named setting on the device. `address` is the adapter's canonical text (``02C0``, ``UWSC=0,2``,
    ``aws/thing``, ``ip_hostname``); `default` is canonical bytes (the factory value, used by R2)."""

    name: str
    address: str
    type: RegType
    size: int
    default: bytes
    sort_address: tuple[int | str, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    values: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    items: tuple[str, ...] = ()
    scheme: str | None = None
    params: tuple[str, ...] = ()
    connect_scheme: int | None = None
    fixed: bool = False
    sensitive: bool = False
    readable: bool = True
    access: Access = Access.RW
    individual: bool = False
    order_bucket: OrderBucket = OrderBucket.MIDDLE
    order: int = 0
    depends_on: tuple[str, ...] = ()
    requires_reboot: bool = False
    write: str | None = None  # adapter write style (spwf-at: scfg | ssidtxt | tlsdomain)
    dump_encoding: str = "text"  # how a transcript shows the value: text | hex-colon
    description: str = ""

    def field(self, name: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    @property
    def settable_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.reserved is None)

    @property
    def write_key(self) -> tuple[int, int, tuple[int | str, ...], str]:
        """R9 order within the register step: bucket, explicit order, address, name."""
        return (int(self.order_bucket), self.order, self.sort_address, self.name)


@dataclass(frozen=True)
class SlotSpec:
    """A certificate or key store that is not a register. Indexed slots (SpringCore x509 00-0F) are addressed
    as ``<name>/<index:02X>``; named slots (u-blox +USECMNG, by stored name) as ``<name>/<stored name>``;
    single slots (SPWF f_ca, an NVS key) as ``<name>``."""

    name: str
    kind: SlotKind
    address: str
    indexes: tuple[int, ...] = ()
    locked: tuple[int, ...] = ()
    usecmng_type: int | None = None
    max_name: int | None = None
    max_size: int | None = None
    sensitive: bool = False
    write_command: tuple[str, ...] = ()  # argv template for tool-written slots ({index}, {file})
    factory: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def named(self) -> bool:
        return self.usecmng_type is not None

    @property
    def indexed(self) -> bool:
        return bool(self.indexes or self.locked)


@dataclass(frozen=True)
class CommitStep:
    """Commands the adapter appends after the writes (R9 step 3), when `when` holds for the change set."""

    when: CommitWhen
    commands: tuple[str, ...]
    patterns: tuple[str, ...] = ()

    def applies(self, changed: Sequence[str], reboot_needed: bool) -> bool:
        if self.when is CommitWhen.ANY:
            return bool(changed)
        if self.when is CommitWhen.REBOOT:
            return reboot_needed
        return any(fnmatch.fnmatchcase(name, pattern) for name in changed for pattern in self.patterns)


@dataclass(frozen=True)
class RoleRef:
    """Where a role's value lives: a register (and a bitfield field or URL query key), or a slot. For an
    indexed CA slot, `index` names the register field holding the index; for a named one, `name_from`."""

    register: str | None = None
    field: str | None = None
    slot: str | None = None
    index: RoleRef | None = None
    name_from: RoleRef | None = None


@dataclass(frozen=True)
class DeviceModel:
    """The register map of one device model (one firmware line). Immutable; build with `load_model`."""

    name: str
    adapter: Adapter
    identity: str
    firmware_match: str
    registers: tuple[Register, ...]
    slots: tuple[SlotSpec, ...] = ()
    commit: tuple[CommitStep, ...] = ()
    roles: Mapping[Role, RoleRef] = field(default_factory=lambda: MappingProxyType({}))
    vendor: str = ""
    partition: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    clean_before_load: bool = False
    source: str = ""

    _by_name: Mapping[str, Register] = field(init=False, repr=False, compare=False)
    _by_address: Mapping[str, Register] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", MappingProxyType({r.name: r for r in self.registers}))
        object.__setattr__(self, "_by_address", MappingProxyType({r.address: r for r in self.registers}))

    @property
    def rules(self) -> AdapterRules:
        return ADAPTER_RULES[self.adapter]

    def register(self, name: str) -> Register | None:
        return self._by_name.get(name)

    def slot(self, name: str) -> SlotSpec | None:
        for spec in self.slots:
            if spec.name == name:
                return spec
        return None

    def by_address(self, address: str) -> Register | None:
        return self._by_address.get(address)

    def firmware_matches(self, firmware: str) -> bool:
        """Case-insensitive glob match of a dump's firmware string against the model (R10)."""
        return fnmatch.fnmatchcase(firmware.strip().lower(), self.firmware_match.lower())
