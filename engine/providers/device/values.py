"""Desired values for one device: merge, validate, encode.

Why: a DeviceConfig sets values by name at group level and per device; before anything can be compared with a
dump they must be merged (model default < group < device), checked against the model, and encoded to the
canonical bytes of `codecs`. Every problem is returned at once with its field path, never raised one by one.

Secret and file references (``{secret: ...}``, ``{env: NAME}``, ``{file: path}``) are resolved by the caller
before this module sees them and arrive as `Resolved`; a plain literal where the model says *sensitive* is a
problem (secrets are never literals).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from engine.model import secret_fingerprint

from .codecs import CodecError, apply_fields, encode_fields, encode_value, is_raw, problem_text
from .pem import content_problem, slot_digests, slot_fingerprint
from .problems import PathPart, Problem, did_you_mean
from .regmap import Access, DeviceModel, Register, RegType, Role, SlotSpec


def sha256_fingerprint(data: bytes) -> str:
    """``sha256:<hex>``: the fingerprint recorded for unreadable public registers and slots (R7)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def value_fingerprint(data: bytes, sensitive: bool) -> str:
    """The fingerprint recorded for a value (R7): keyed (engine/fingerprint.py) when it is sensitive, so the plan
    and the device state never hold a digest a dictionary reverses; a plain sha256 for public values."""
    return secret_fingerprint(data) if sensitive else sha256_fingerprint(data)


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


@dataclass(frozen=True)
class Resolved:
    """A reference resolved by the caller. `value` is the secret or file content; `source` optionally names
    where it came from (``certs/ca.pem``) so artifacts can point at the file instead of copying it."""

    value: Any = field(repr=False)
    sensitive: bool
    fingerprint: str
    source: str | None = None

    @classmethod
    def of(cls, value: Any, *, sensitive: bool, source: str | None = None) -> Resolved:
        return cls(value, sensitive, value_fingerprint(_as_bytes(value), sensitive), source)


class Level(enum.Enum):
    """Where a desired value came from (precedence: default < group < device)."""

    DEFAULT = "default"
    GROUP = "group"
    DEVICE = "device"


@dataclass(frozen=True)
class DesiredRegister:
    """A managed register. `value` is the whole register (canonical bytes); when None, `fields` holds a
    partial bitfield to apply over the dump's bytes (R3). `blank` marks an explicit ``""``/null (R5 delete)."""

    name: str
    value: bytes | None = field(repr=False)
    fields: Mapping[str, int]
    blank: bool
    sensitive: bool
    level: Level

    def after(self, reg: Register, base: bytes) -> bytes:
        """The bytes to write given what the device holds (`base`: dump value or default)."""
        return self.value if self.value is not None else apply_fields(reg, base, self.fields)


@dataclass(frozen=True)
class DesiredSlot:
    """Desired content of one slot instance. `key` is ``x509/09``, ``ca/<stored name>`` or ``f_ca``."""

    key: str
    slot: str
    index: int | None
    stored_name: str | None
    content: bytes = field(repr=False)
    sensitive: bool
    source: str | None = None

    @property
    def fingerprint(self) -> str:
        return slot_fingerprint(self.content, self.sensitive)

    @property
    def digests(self) -> frozenset[str]:
        return slot_digests(self.content)


@dataclass(frozen=True)
class DesiredConfig:
    """Everything desired for one device; only what is here is managed (R1)."""

    model: str
    device_id: str
    registers: Mapping[str, DesiredRegister]
    slots: Mapping[str, DesiredSlot]


@dataclass
class _Merged:
    value: bytes | None
    fields: dict[str, int]
    blank: bool
    sensitive: bool
    level: Level


_BLANKABLE = frozenset({RegType.STRING, RegType.BYTES, RegType.URL})


class _Resolver:
    def __init__(self, model: DeviceModel, allow_shared_individual: bool) -> None:
        self.model = model
        self.allow_shared_individual = allow_shared_individual
        self.problems: list[Problem] = []
        self.registers: dict[str, _Merged] = {}
        self.slots: dict[str, DesiredSlot] = {}
        domain = model.roles.get(Role.BROKER_HOST)
        self.domain_register = domain.register if domain else None

    def fail(self, path: tuple[PathPart, ...], message: str) -> None:
        self.problems.append(Problem(path, message))

    def level(self, values: Mapping[str, Any] | None, level: Level, path: tuple[PathPart, ...]) -> None:
        for name, raw in (values or {}).items():
            name = str(name)
            reg = self.model.register(name)
            if reg is not None:
                self.register(reg, raw, level, path + (name,))
                continue
            slot_name = name.split("/", 1)[0]
            slot = self.model.slot(slot_name)
            if slot is not None:
                self.slot(slot, name, raw, path + (name,))
                continue
            choices = [r.name for r in self.model.registers] + [s.name for s in self.model.slots]
            self.fail(
                path + (name,), f"unknown register '{name}' in model {self.model.name}{did_you_mean(name, choices)}"
            )

    def register(self, reg: Register, raw: object, level: Level, path: tuple[PathPart, ...]) -> None:
        sensitive = reg.sensitive
        value = raw
        if isinstance(raw, Resolved):
            sensitive = sensitive or raw.sensitive
            value = raw.value.decode("utf-8") if isinstance(raw.value, bytes) else raw.value
        elif reg.sensitive and raw not in (None, ""):
            self.fail(
                path,
                f"register '{reg.name}' is sensitive: reference it ({{secret: ...}}, {{env: NAME}} "
                "or {file: path}) instead of writing a literal",
            )
            return
        if reg.individual and level is Level.GROUP and not self.allow_shared_individual:
            self.fail(
                path,
                f"register '{reg.name}' is individual (one value per device): set it per device, not at group level",
            )
            return
        if reg.access is Access.RO:
            self.fail(path, f"register '{reg.name}' is read-only")
            return
        previous = self.registers.get(reg.name)
        try:
            data, fields, blank = self._merge(reg, value, previous)
        except CodecError as exc:
            self.fail(path, problem_text(reg, exc, value, sensitive))
            return
        sensitive = sensitive or (previous is not None and previous.sensitive)
        self.registers[reg.name] = _Merged(data, fields, blank, sensitive, level)

    @staticmethod
    def _merge(reg: Register, value: object, previous: _Merged | None) -> tuple[bytes | None, dict[str, int], bool]:
        """(whole value or None, partial bitfield fields, blank) for `value` over the lower level's result."""
        if value is None:
            return reg.default, {}, True
        if value == "":
            return (b"" if reg.type in _BLANKABLE else reg.default), {}, True
        if reg.type is RegType.BITFIELD and isinstance(value, Mapping) and not is_raw(reg, value):
            fields = encode_fields(reg, value)
            if previous is not None and previous.value is not None and not previous.blank:
                return apply_fields(reg, previous.value, fields), {}, False
            base = dict(previous.fields) if previous is not None and previous.value is None else {}
            return None, base | fields, False
        return encode_value(reg, value), {}, False

    def slot(self, slot: SlotSpec, name: str, raw: object, path: tuple[PathPart, ...]) -> None:
        index: int | None = None
        stored_name: str | None = None
        key = slot.name
        content_raw = raw
        if slot.indexed:
            suffix = name.partition("/")[2]
            try:
                index = int(suffix, 16)
            except ValueError:
                self.fail(
                    path,
                    f"slot '{slot.name}' is indexed: write it as {slot.name}/<hex index>, "
                    f"e.g. {slot.name}/{(slot.indexes or (0,))[0]:02X}",
                )
                return
            if index in slot.locked:
                self.fail(path, f"slot {slot.name}/{index:02X} is locked (factory content) and cannot be written")
                return
            if index not in slot.indexes:
                self.fail(
                    path,
                    f"slot index {index:02X} is outside {slot.name}'s writable range "
                    f"{min(slot.indexes):02X}-{max(slot.indexes):02X}",
                )
                return
            key = f"{slot.name}/{index:02X}"
            if not slot.write_command:
                self.fail(
                    path,
                    f"slot '{slot.name}' has no write procedure in model {self.model.name} "
                    "(its content is made on the device)",
                )
                return
        elif slot.named:
            if isinstance(raw, Mapping) and "name" in raw:
                stored_name = str(raw["name"])
                content_raw = raw.get("content")
            elif "/" in name:
                stored_name = name.partition("/")[2]
            else:
                self.fail(
                    path, f"slot '{slot.name}' stores content by name: give {{name: <stored name>, content: ...}}}}"
                )
                return
            if slot.max_name is not None and len(stored_name) > slot.max_name:
                self.fail(path + ("name",), f"stored name is {len(stored_name)} characters; at most {slot.max_name}")
                return
            key = f"{slot.name}/{stored_name}"
        sensitive = slot.sensitive
        if isinstance(content_raw, Resolved):
            sensitive = sensitive or content_raw.sensitive
            source = content_raw.source
            content = _as_bytes(content_raw.value)
        elif slot.sensitive:
            self.fail(
                path,
                f"slot '{slot.name}' holds a private key: reference it ({{file: path}} or "
                "{secret: ...}) instead of writing a literal",
            )
            return
        elif isinstance(content_raw, (str, bytes)):
            source, content = None, _as_bytes(content_raw)
        else:
            self.fail(path, f"expected PEM content, got {type(content_raw).__name__}")
            return
        problem = content_problem(slot.kind, content, self.domain_register)
        if problem is not None:
            self.fail(path, f"slot {key} {problem}")
            return
        if slot.max_size is not None and len(content) > slot.max_size:
            self.fail(path, f"content is {len(content)} bytes; slot {slot.name} holds at most {slot.max_size}")
            return
        self.slots[key] = DesiredSlot(key, slot.name, index, stored_name, content, sensitive, source)

    def prune(self) -> None:
        """Every unlisted register that can be reset safely goes back to its default (delete, R5)."""
        for reg in self.model.registers:
            if reg.name in self.registers or reg.individual or reg.sensitive or not reg.readable:
                continue
            if reg.access is Access.RW:
                self.registers[reg.name] = _Merged(reg.default, {}, True, False, Level.DEFAULT)


def resolve_desired(
    model: DeviceModel,
    group_values: Mapping[str, Any] | None = None,
    device_values: Mapping[str, Any] | None = None,
    *,
    device_id: str,
    prune: bool = False,
    allow_shared_individual: bool = False,
    group_path: tuple[PathPart, ...] = ("spec", "values"),
    device_path: tuple[PathPart, ...] | None = None,
) -> tuple[DesiredConfig, list[Problem]]:
    """Merge group then device values over the model, validate and encode them.

    Returns the desired configuration of the valid values and every problem (unknown names with a "did you
    mean", out-of-range or oversize values, unknown enum names, individual registers at group level,
    literal secrets, slots holding something that is not the expected PEM). A caller must not plan a device
    whose problems are non-empty. With `prune`, unlisted resettable registers are managed at their default.
    """
    resolver = _Resolver(model, allow_shared_individual)
    resolver.level(group_values, Level.GROUP, group_path)
    resolver.level(
        device_values,
        Level.DEVICE,
        device_path if device_path is not None else ("spec", "devices", device_id, "values"),
    )
    if prune:
        resolver.prune()
    registers = {
        name: DesiredRegister(name, m.value, MappingProxyType(dict(m.fields)), m.blank, m.sensitive, m.level)
        for name, m in resolver.registers.items()
    }
    config = DesiredConfig(model.name, device_id, MappingProxyType(registers), MappingProxyType(dict(resolver.slots)))
    return config, resolver.problems
