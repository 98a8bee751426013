"""Device models as declared data: a DeviceModel document checked and built into its register map.

Why: models are data (YAML shipped in ``models/`` or declared in a fleet as ``kind: DeviceModel``), so a new
device model needs no code. This module reads such a document into the frozen types of
engine/providers/device/regmap.py, collecting every problem with its field path (a default value is checked by
the register's own codec), and loads the built-in models once.
"""

from __future__ import annotations

import enum
import graphlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib import resources
from types import MappingProxyType
from typing import Any

from ruamel.yaml import YAML

from .codecs import CodecError, encode_value
from .problems import ModelError, PathPart, Problem, did_you_mean
from .regmap import (
    ADAPTER_RULES,
    FIXED_SIZE_TYPES,
    NATURAL_SIZE,
    Access,
    Adapter,
    CommitStep,
    CommitWhen,
    DeviceModel,
    FieldSpec,
    FieldType,
    OrderBucket,
    Register,
    RegType,
    Role,
    RoleRef,
    SlotKind,
    SlotSpec,
    int_bits,
)

# ---------------------------------------------------------------------------------------------------------
# Loading.


class _Reader:
    """Reads a plain mapping with a path, collecting problems instead of raising."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def fail(self, path: tuple[PathPart, ...], message: str) -> None:
        self.problems.append(Problem(path, message))

    def keys(self, data: Mapping[str, Any], allowed: Sequence[str], path: tuple[PathPart, ...]) -> None:
        for key in data:
            if key not in allowed:
                self.fail(path + (str(key),), f"unknown key '{key}'{did_you_mean(str(key), allowed)}")

    def mapping(self, value: object, path: tuple[PathPart, ...]) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.fail(path, f"expected a mapping, got {type(value).__name__}")
        return {}

    def text(
        self, data: Mapping[str, Any], key: str, path: tuple[PathPart, ...], *, required: bool = True, default: str = ""
    ) -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(path + (key,), "is required")
            return default
        if not isinstance(value, str) or not value:
            self.fail(path + (key,), f"expected a non-empty string, got {value!r}")
            return default
        return value

    def flag(self, data: Mapping[str, Any], key: str, path: tuple[PathPart, ...], default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(path + (key,), f"expected true or false, got {value!r}")
            return default
        return value

    def integer(self, data: Mapping[str, Any], key: str, path: tuple[PathPart, ...]) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(path + (key,), f"expected a non-negative integer, got {value!r}")
            return None
        return value

    def enum(
        self,
        data: Mapping[str, Any],
        key: str,
        kind: type[enum.Enum],
        path: tuple[PathPart, ...],
        default: enum.Enum | None = None,
    ) -> Any:
        value = data.get(key)
        if value is None:
            if default is None:
                self.fail(path + (key,), "is required")
            return default
        choices = [str(m.value) for m in kind]
        for member in kind:
            if member.value == value:
                return member
        self.fail(
            path + (key,),
            f"unknown value {value!r} (expected one of: {', '.join(choices)}){did_you_mean(str(value), choices)}",
        )
        return default

    def names(self, data: Mapping[str, Any], key: str, path: tuple[PathPart, ...]) -> tuple[str, ...]:
        value = data.get(key, [])
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path + (key,), f"expected a list of names, got {value!r}")
            return ()
        return tuple(value)


_REGISTER_KEYS = (
    "name",
    "address",
    "command",
    "config_id",
    "tag",
    "peer_id",
    "size",
    "max",
    "type",
    "default",
    "fields",
    "values",
    "items",
    "scheme",
    "params",
    "connect_scheme",
    "fixed",
    "sensitive",
    "readable",
    "access",
    "individual",
    "order",
    "depends_on",
    "requires_reboot",
    "write",
    "dump_encoding",
    "description",
)
_FIELD_KEYS = ("name", "mask", "lsb", "width", "type", "values", "reserved", "ref", "description")
_SLOT_KEYS = (
    "name",
    "kind",
    "address",
    "indexes",
    "locked",
    "usecmng_type",
    "max_name",
    "max_size",
    "sensitive",
    "tool",
    "write_command",
    "factory",
    "description",
)
_SPEC_KEYS = (
    "adapter",
    "match",
    "identity",
    "byte_order",
    "apply",
    "registers",
    "slots",
    "commit",
    "roles",
    "partition",
    "clean_before_load",
)
_SPWF_WRITES = ("scfg", "ssidtxt", "tlsdomain")


def _parse_index_range(text: object) -> tuple[int, ...]:
    """``"00-09"`` or ``[0, 1]`` → (0, 1, ...). Raises ValueError."""
    if isinstance(text, list):
        return tuple(int(str(v), 16) if isinstance(v, str) else int(v) for v in text)
    match = re.fullmatch(r"([0-9A-Fa-f]{1,2})(?:-([0-9A-Fa-f]{1,2}))?", str(text).strip())
    if not match:
        raise ValueError(f'expected an index range such as "00-09", got {text!r}')
    low = int(match.group(1), 16)
    high = int(match.group(2), 16) if match.group(2) else low
    return tuple(range(low, high + 1))


def _ublox_compose(data: Mapping[str, Any]) -> object:
    """Build ``UWSC=0,2`` from the structured ``command/config_id/tag/peer_id`` spelling."""
    command = str(data["command"]).upper()
    numbers = [data[k] for k in ("config_id", "tag", "peer_id") if data.get(k) is not None]
    return command + ("=" + ",".join(str(n) for n in numbers) if numbers else "")


def _parse_mask(raw: object, size: int) -> int:
    if isinstance(raw, bool):
        raise ValueError("mask must be hex text or an integer")
    if isinstance(raw, int):
        return raw
    text = str(raw).strip().removeprefix("0x")
    if not re.fullmatch(r"[0-9A-Fa-f]+", text):
        raise ValueError(f"mask {raw!r} is not hex")
    if len(text) != 2 * size and not str(raw).startswith("0x"):
        raise ValueError(f"mask {raw!r} must have {2 * size} hex digits (the register is {size} bytes)")
    return int(text, 16)


def _load_field(reader: _Reader, data: Mapping[str, Any], size: int, path: tuple[PathPart, ...]) -> FieldSpec | None:
    reader.keys(data, _FIELD_KEYS, path)
    name = reader.text(data, "name", path)
    try:
        if "mask" in data:
            mask = _parse_mask(data["mask"], size)
        elif "lsb" in data and "width" in data:
            mask = ((1 << int(data["width"])) - 1) << int(data["lsb"])
        else:
            raise ValueError("give either `mask` or `lsb` and `width`")
    except (ValueError, TypeError) as exc:
        reader.fail(path + ("mask",), str(exc))
        return None
    if mask <= 0 or mask >= 1 << (8 * size):
        reader.fail(path + ("mask",), f"mask {mask:#x} does not fit the {size}-byte register")
        return None
    reserved = data.get("reserved")
    if reserved is not None:
        if not isinstance(reserved, int) or isinstance(reserved, bool):
            reader.fail(path + ("reserved",), f"expected an integer, got {reserved!r}")
            reserved = None
        return FieldSpec(name, mask, FieldType.U32, reserved=reserved if reserved is not None else 0)
    spec = FieldSpec(
        name,
        mask,
        reader.enum(data, "type", FieldType, path, FieldType.U8) or FieldType.U8,
        values=MappingProxyType(dict(_enum_values(reader, data, path))),
        ref=data.get("ref"),
    )
    if spec.mask >> spec.shift != spec.max_value:
        reader.fail(path + ("mask",), f"mask {mask:#x} is not a contiguous run of bits")
    bits = int_bits(spec.type.value)
    if bits is not None and spec.width > bits:
        reader.fail(path + ("type",), f"a {spec.width}-bit field does not fit {spec.type.value}")
    if spec.type is FieldType.BOOL and spec.width != 1:
        reader.fail(path + ("type",), f"a bool field must be 1 bit wide, this mask has {spec.width}")
    for label, number in spec.values.items():
        if number > spec.max_value:
            reader.fail(path + ("values", label), f"{number} does not fit {spec.width} bits")
    return spec


def _enum_values(reader: _Reader, data: Mapping[str, Any], path: tuple[PathPart, ...]) -> dict[str, int]:
    raw = data.get("values")
    if raw is None:
        if data.get("type") == "enum":
            reader.fail(path + ("values",), "an enum needs `values: {name: number}`")
        return {}
    values = reader.mapping(raw, path + ("values",))
    out: dict[str, int] = {}
    for label, number in values.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            reader.fail(path + ("values", str(label)), f"expected a non-negative integer, got {number!r}")
        else:
            out[str(label)] = number
    return out


def _load_register(
    reader: _Reader, adapter: Adapter, data: Mapping[str, Any], path: tuple[PathPart, ...]
) -> Register | None:
    reader.keys(data, _REGISTER_KEYS, path)
    rules = ADAPTER_RULES[adapter]
    name = reader.text(data, "name", path)
    reg_type: RegType | None = reader.enum(data, "type", RegType, path)
    raw_address = data.get("address")
    if raw_address is None and "command" in data:
        raw_address = _ublox_compose(data)
    if raw_address is None:
        reader.fail(path + ("address",), "is required")
        return None
    try:
        address = rules.address(raw_address)
    except ValueError as exc:
        reader.fail(path + ("address",), str(exc))
        return None
    if reg_type is None:
        return None
    size = reader.integer(data, "size", path) or reader.integer(data, "max", path)
    if reg_type is RegType.IPV4_LIST:
        items = reader.names(data, "items", path)
        if not items:
            reader.fail(path + ("items",), "an ipv4_list needs `items`")
        size = size or 4 * len(items)
        if size != 4 * len(items):
            reader.fail(path + ("size",), f"{len(items)} items need {4 * len(items)} bytes, not {size}")
    else:
        items = ()
    if size is None:
        size = NATURAL_SIZE.get(reg_type) or rules.default_string_size
    if size is None or size <= 0:
        reader.fail(path + ("size",), f"a {reg_type.value} register needs `size`")
        return None
    fields: list[FieldSpec] = []
    if reg_type is RegType.BITFIELD:
        for i, raw_field in enumerate(data.get("fields") or []):
            spec = _load_field(reader, reader.mapping(raw_field, path + ("fields", i)), size, path + ("fields", i))
            if spec is not None:
                fields.append(spec)
        _check_overlaps(reader, fields, path)
    order_raw = data.get("order")
    bucket, order = OrderBucket.MIDDLE, 0
    if order_raw == "first":
        bucket = OrderBucket.FIRST
    elif order_raw == "last":
        bucket = OrderBucket.LAST
    elif isinstance(order_raw, int) and not isinstance(order_raw, bool):
        order = order_raw
    elif order_raw is not None:
        reader.fail(path + ("order",), f"expected first, last or an integer, got {order_raw!r}")
    write = data.get("write")
    if adapter is Adapter.SPWF_AT:
        write = write or "scfg"
        if write not in _SPWF_WRITES:
            reader.fail(
                path + ("write",), f"unknown write style {write!r} (expected one of: {', '.join(_SPWF_WRITES)})"
            )
    params = reader.names(data, "params", path)
    register = Register(
        name=name,
        address=address,
        type=reg_type,
        size=size,
        default=b"",
        sort_address=rules.sort_key(address),
        fields=tuple(fields),
        values=MappingProxyType(_enum_values(reader, data, path)),
        items=items,
        scheme=data.get("scheme"),
        params=params,
        connect_scheme=reader.integer(data, "connect_scheme", path),
        fixed=reader.flag(data, "fixed", path, False),
        sensitive=reader.flag(data, "sensitive", path, False),
        readable=reader.flag(data, "readable", path, True),
        access=reader.enum(data, "access", Access, path, Access.RW),
        individual=reader.flag(data, "individual", path, False),
        order_bucket=bucket,
        order=order,
        depends_on=reader.names(data, "depends_on", path),
        requires_reboot=reader.flag(data, "requires_reboot", path, False),
        write=write,
        dump_encoding=str(data.get("dump_encoding", "text")),
        description=str(data.get("description", "")),
    )
    try:
        default = encode_value(register, data["default"]) if data.get("default") is not None else None
    except CodecError as exc:
        reader.fail(path + ("default",), str(exc))
        default = None
    if default is None:
        default = bytes(size) if reg_type in FIXED_SIZE_TYPES else b""
    return replace(register, default=default)


def _check_overlaps(reader: _Reader, fields: Sequence[FieldSpec], path: tuple[PathPart, ...]) -> None:
    seen = 0
    for spec in fields:
        if spec.mask & seen:
            reader.fail(path + ("fields", spec.name), f"mask {spec.mask:#x} overlaps an earlier field")
        seen |= spec.mask


def _load_slot(reader: _Reader, data: Mapping[str, Any], path: tuple[PathPart, ...]) -> SlotSpec | None:
    reader.keys(data, _SLOT_KEYS, path)
    name = reader.text(data, "name", path)
    kind: SlotKind | None = reader.enum(data, "kind", SlotKind, path)
    if kind is None:
        return None
    try:
        indexes = _parse_index_range(data["indexes"]) if "indexes" in data else ()
        locked = _parse_index_range(data["locked"]) if "locked" in data else ()
    except (ValueError, TypeError) as exc:
        reader.fail(path + ("indexes",), str(exc))
        indexes, locked = (), ()
    factory_raw = reader.mapping(data.get("factory", {}), path + ("factory",))
    factory: dict[int, str] = {}
    for key, label in factory_raw.items():
        try:
            factory[_parse_index_range(str(key))[0]] = str(label)
        except ValueError as exc:
            reader.fail(path + ("factory", str(key)), str(exc))
    usecmng = reader.integer(data, "usecmng_type", path)
    if usecmng is not None and usecmng not in (0, 1, 2):
        reader.fail(path + ("usecmng_type",), "expected 0 (trusted root CA), 1 (client cert) or 2 (key)")
    return SlotSpec(
        name=name,
        kind=kind,
        address=str(data.get("address") or (f"USECMNG:{usecmng}" if usecmng is not None else name)),
        indexes=indexes,
        locked=locked,
        usecmng_type=usecmng,
        max_name=reader.integer(data, "max_name", path),
        max_size=reader.integer(data, "max_size", path),
        sensitive=reader.flag(data, "sensitive", path, kind is SlotKind.KEY),
        write_command=reader.names(data, "write_command", path),
        factory=MappingProxyType(factory),
    )


def _load_commit(reader: _Reader, raw: object, path: tuple[PathPart, ...]) -> tuple[CommitStep, ...]:
    steps: list[CommitStep] = []
    if raw is None:
        return ()
    if not isinstance(raw, list):
        reader.fail(path, "expected a list of {when, commands}")
        return ()
    for i, item in enumerate(raw):
        data = reader.mapping(item, path + (i,))
        reader.keys(data, ("when", "commands"), path + (i,))
        when = data.get("when", "any")
        commands = reader.names(data, "commands", path + (i,))
        if when in ("any", "reboot"):
            steps.append(CommitStep(CommitWhen(when), commands))
        elif isinstance(when, Mapping) and "changed" in when:
            patterns = when["changed"]
            steps.append(
                CommitStep(
                    CommitWhen.MATCH, commands, tuple(patterns) if isinstance(patterns, list) else (str(patterns),)
                )
            )
        else:
            reader.fail(path + (i, "when"), f"expected any, reboot or {{changed: [patterns]}}, got {when!r}")
    return tuple(steps)


def _load_role(reader: _Reader, raw: object, path: tuple[PathPart, ...]) -> RoleRef:
    data = reader.mapping(raw, path)
    reader.keys(data, ("register", "field", "slot", "index", "name_from"), path)
    return RoleRef(
        register=data.get("register"),
        field=data.get("field"),
        slot=data.get("slot"),
        index=_load_role(reader, data["index"], path + ("index",)) if "index" in data else None,
        name_from=(_load_role(reader, data["name_from"], path + ("name_from",)) if "name_from" in data else None),
    )


def _check_references(reader: _Reader, model: DeviceModel) -> None:
    names = [r.name for r in model.registers]
    slot_names = [s.name for s in model.slots]
    seen: set[str] = set()
    addresses: dict[str, str] = {}
    for i, reg in enumerate(model.registers):
        path: tuple[PathPart, ...] = ("spec", "registers", i)
        if reg.name in seen or reg.name in slot_names:
            reader.fail(path + ("name",), f"name '{reg.name}' is declared twice")
        seen.add(reg.name)
        if reg.address in addresses:
            reader.fail(path + ("address",), f"address {reg.address} is also '{addresses[reg.address]}'")
        addresses[reg.address] = reg.name
        for dep in reg.depends_on:
            if dep not in names:
                reader.fail(path + ("depends_on",), f"unknown register '{dep}'{did_you_mean(dep, names)}")
        for spec in reg.fields:
            if spec.ref is not None and spec.ref not in slot_names:
                reader.fail(path + ("fields", spec.name, "ref"), f"unknown slot '{spec.ref}'")
    graph = {r.name: set(r.depends_on) for r in model.registers}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        reader.fail(("spec", "registers"), f"depends_on forms a cycle: {' -> '.join(exc.args[1])}")
    for role, ref in model.roles.items():
        for target in (ref, ref.index, ref.name_from):
            if target is None:
                continue
            if target.register is not None and target.register not in names:
                reader.fail(("spec", "roles", role.value), f"unknown register '{target.register}'")
            if target.slot is not None and target.slot not in slot_names:
                reader.fail(("spec", "roles", role.value), f"unknown slot '{target.slot}'")


def check_model(data: Mapping[str, Any], source: str = "") -> tuple[DeviceModel | None, list[Problem]]:
    """Validate a DeviceModel document (``{apiVersion, kind, metadata, spec}``) and build the model.

    Returns the model (None when any problem was found) and every problem, each with its field path."""
    problems: list[Problem] = []
    reader = _Reader(problems)
    doc = reader.mapping(data, ())
    metadata = reader.mapping(doc.get("metadata", {}), ("metadata",))
    spec = reader.mapping(doc.get("spec", {}), ("spec",))
    if doc.get("kind", "DeviceModel") != "DeviceModel":
        reader.fail(("kind",), f"expected DeviceModel, got {doc.get('kind')!r}")
    name = reader.text(metadata, "name", ("metadata",))
    reader.keys(spec, _SPEC_KEYS, ("spec",))
    adapter: Adapter | None = reader.enum(spec, "adapter", Adapter, ("spec",))
    match = reader.mapping(spec.get("match", {}), ("spec", "match"))
    firmware = reader.text(match, "firmware", ("spec", "match"))
    identity = reader.text(spec, "identity", ("spec",))
    if adapter is None:
        return None, problems
    registers = []
    raw_registers = spec.get("registers") or []
    if not isinstance(raw_registers, list):
        reader.fail(("spec", "registers"), "expected a list")
        raw_registers = []
    for i, raw in enumerate(raw_registers):
        path: tuple[PathPart, ...] = ("spec", "registers", i)
        register = _load_register(reader, adapter, reader.mapping(raw, path), path)
        if register is not None:
            registers.append(register)
    slots = []
    for i, raw in enumerate(spec.get("slots") or []):
        path = ("spec", "slots", i)
        slot = _load_slot(reader, reader.mapping(raw, path), path)
        if slot is not None:
            slots.append(slot)
    roles: dict[Role, RoleRef] = {}
    for key, raw in reader.mapping(spec.get("roles", {}), ("spec", "roles")).items():
        role = reader.enum({"role": key}, "role", Role, ("spec", "roles"))
        if role is not None:
            roles[role] = _load_role(reader, raw, ("spec", "roles", key))
    model = DeviceModel(
        name=name,
        adapter=adapter,
        identity=identity,
        firmware_match=firmware,
        registers=tuple(registers),
        slots=tuple(slots),
        commit=_load_commit(reader, spec.get("commit"), ("spec", "commit")),
        roles=MappingProxyType(roles),
        vendor=str(metadata.get("vendor", "")),
        partition=MappingProxyType(dict(reader.mapping(spec.get("partition", {}), ("spec", "partition")))),
        clean_before_load=reader.flag(spec, "clean_before_load", ("spec",), False),
        source=source,
    )
    _check_references(reader, model)
    return (None if problems else model), problems


def load_model(data: Mapping[str, Any], source: str = "") -> DeviceModel:
    """Build a DeviceModel from its document; raises `ModelError` carrying every problem."""
    model, problems = check_model(data, source)
    if model is None:
        raise ModelError([Problem(p.path, p.message, p.location or source or None) for p in problems])
    return model


_BUILTINS: dict[str, DeviceModel] = {}


def builtin_models() -> dict[str, DeviceModel]:
    """The models shipped in ``engine/providers/device/models/*.yaml``, by name (loaded once)."""
    if not _BUILTINS:
        yaml = YAML(typ="safe", pure=True)
        folder = resources.files(__package__).joinpath("models")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".yaml"):
                model = load_model(yaml.load(entry.read_text(encoding="utf-8")), f"models/{entry.name}")
                _BUILTINS[model.name] = model
    return dict(_BUILTINS)
