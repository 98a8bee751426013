"""Dump parsers: one file per device, in the vendor's read-back shape, to canonical register bytes.

Why: the actual state of a device is whatever it reported when it was read (a SpringCore CONFIG_DATA JSON,
a u-blox or ST AT transcript, an ESP-IDF NVS listing). Each shape is parsed by one function registered in
`_PARSERS`; all of them produce the same `DeviceDump`, keyed by register *name* and holding canonical bytes,
so the diff never sees a vendor format. Every problem (syntax, a value that does not fit, an identity or
firmware that does not belong to the model, R10) is collected with the file and line.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .codecs import CodecError, codec, parse_hex, problem_text
from .problems import DumpError, Problem
from .regmap import Adapter, DeviceModel, Register, RegType

SPRINGCORE_FORMAT = "fleetctl.springcore-dump/v1"
ESP_NVS_FORMAT = "fleetctl.esp-nvs-dump/v1"


@dataclass(frozen=True)
class DeviceDump:
    """What one device reported. `values` holds canonical bytes of readable model registers present in the
    dump; `assumed_default` names the readable registers it lacked (R2: they hold the model default);
    `slots` maps slot instance keys to the reported MD5 (uppercase), or None when the device said the slot
    is absent; a slot key missing from `slots` was not read (R8 falls back to the recorded fingerprint)."""

    device_id: str
    model: str
    identity: Mapping[str, str]
    firmware: str
    values: Mapping[str, bytes] = field(repr=False)
    slots: Mapping[str, str | None]
    assumed_default: frozenset[str]
    source: str = ""
    unknown: tuple[str, ...] = ()  # addresses present in the dump that the model does not declare


@dataclass
class _Parsed:
    """Mutable collector shared by the adapter parsers."""

    name: str
    text: str
    model: DeviceModel
    identity: dict[str, str] = field(default_factory=dict)
    firmware: str = ""
    values: dict[str, bytes] = field(default_factory=dict)
    blank_fixed: set[str] = field(default_factory=set)
    slots: dict[str, str | None] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def fail(self, line: int | None, path: tuple[str | int, ...], message: str) -> None:
        location = f"{self.name}:{line}" if line else self.name
        self.problems.append(Problem(path, message, location))

    def line_of(self, needle: str) -> int | None:
        """1-based line of the first occurrence of `needle` (only computed when a problem is reported)."""
        index = self.text.find(needle)
        return self.text.count("\n", 0, index) + 1 if index >= 0 else None

    def key_line(self, key: str) -> int | None:
        """1-based line where the JSON key `key` is written."""
        match = re.search(re.escape(json.dumps(key)) + r"\s*:", self.text)
        return self.text.count("\n", 0, match.start()) + 1 if match else None

    def lookup(self, address: str) -> Register | None:
        """The readable register at `address`. Unknown addresses are noted; unreadable registers give None:
        whatever the device answered for them is not trusted (R7)."""
        reg = self.model.by_address(address)
        if reg is None:
            self.unknown.append(address)
            return None
        return reg if reg.readable else None

    def store(self, reg: Register, data: bytes, line: int | None, path: tuple[str | int, ...]) -> None:
        """Canonicalise and keep one value; a second value for the same register is a problem."""
        if reg.name in self.values or reg.name in self.blank_fixed:
            self.fail(line, path, f"register {reg.address} ({reg.name}) appears twice")
            return
        try:
            self.values[reg.name] = codec(reg).canonical(reg, data)
        except CodecError as exc:
            self.fail(line, path, f"register {reg.address} ({reg.name}): {problem_text(reg, exc, data)}")


# ---------------------------------------------------------------------------------------------------------
# JSON envelopes (SpringCore CONFIG_DATA, ESP NVS).


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _load_json(parsed: _Parsed, expected_format: str) -> Mapping[str, Any] | None:
    try:
        doc = json.loads(parsed.text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        parsed.fail(exc.lineno, (), f"invalid JSON: {exc.msg} (column {exc.colno})")
        return None
    except ValueError as exc:
        key = str(exc).removeprefix("duplicate key ")
        parsed.fail(parsed.line_of(key.strip("'\"")), (), str(exc))
        return None
    if not isinstance(doc, dict):
        parsed.fail(1, (), "expected a JSON object")
        return None
    if doc.get("format", expected_format) != expected_format:
        parsed.fail(
            parsed.key_line("format"),
            ("format",),
            f"unknown dump format {doc.get('format')!r} (expected {expected_format!r})",
        )
        return None
    device = doc.get("device", {})
    if not isinstance(device, dict):
        parsed.fail(parsed.key_line("device"), ("device",), "expected an object")
    else:
        parsed.identity = {str(k): str(v) for k, v in device.items()}
    return doc


def _slot_digests(parsed: _Parsed, doc: Mapping[str, Any]) -> None:
    slots = doc.get("slots", {})
    if not isinstance(slots, dict):
        parsed.fail(parsed.key_line("slots"), ("slots",), "expected an object of slot: md5")
        return
    for key, digest in slots.items():
        if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9A-Fa-f]{32}", digest)):
            parsed.fail(
                parsed.key_line(key), ("slots", key), f"expected an MD5 (32 hex digits) or null, got {digest!r}"
            )
            continue
        parsed.slots[key] = digest.upper() if digest else None


def _modifier_hex(raw: object, reg: Register) -> bytes:
    if not isinstance(raw, str):
        raise CodecError(f"expected hex text, got {raw!r}")
    return parse_hex(raw)


def _modifier_text(raw: object, reg: Register) -> bytes:
    if not isinstance(raw, str):
        raise CodecError(f"expected text, got {raw!r}")
    return raw.encode("utf-8")


def _modifier_int(raw: object, reg: Register) -> bytes:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < 1 << (8 * reg.size):
        raise CodecError(f"expected an integer that fits {reg.size} bytes, got {raw!r}")
    return raw.to_bytes(reg.size, "big")


def _modifier_bool(raw: object, reg: Register) -> bytes:
    if not isinstance(raw, bool):
        raise CodecError(f"expected true or false, got {raw!r}")
    return int(raw).to_bytes(reg.size, "big")


def _modifier_base64(raw: object, reg: Register) -> bytes:
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        raise CodecError(f"{raw!r} is not base64") from None


# CONFIG_DATA format modifiers (docs.springcard.com …/CONFIG_DATA/Format_modifiers); hex is the default.
_SPRINGCORE_MODIFIERS: Mapping[str, Callable[[object, Register], bytes]] = MappingProxyType(
    {
        "h": _modifier_hex,
        "s": _modifier_text,
        "i": _modifier_int,
        "b": _modifier_bool,
        "64": _modifier_base64,
    }
)
_SPRINGCORE_BANKS: Mapping[str, int] = MappingProxyType({"config": 0x02, "templates": 0x03})
_SPRINGCORE_KEY = re.compile(r"(?P<addr>[0-9A-Fa-f]{4}|[0-9A-Fa-f]{2})(?:\.(?P<mod>s|i|b|64|h))?")


def _parse_springcore(parsed: _Parsed) -> None:
    doc = _load_json(parsed, SPRINGCORE_FORMAT)
    if doc is None:
        return
    parsed.firmware = parsed.identity.get("Firmware", "")
    for section, bank in _SPRINGCORE_BANKS.items():
        entries = doc.get(section, {})
        if not isinstance(entries, dict):
            parsed.fail(parsed.key_line(section), (section,), "expected an object of address: value")
            continue
        for key, raw in entries.items():
            line = parsed.key_line(key)
            match = _SPRINGCORE_KEY.fullmatch(key)
            if not match:
                parsed.fail(
                    line,
                    (section, key),
                    f"'{key}' is not a register address (2 or 4 hex digits, optionally .s .i .b .64 .h)",
                )
                continue
            number = int(match.group("addr"), 16)
            if len(match.group("addr")) == 2:
                number |= bank << 8
            elif number >> 8 != bank:
                parsed.fail(line, (section, key), f"address {number:04X} is not in bank {bank:02X} ({section})")
                continue
            reg = parsed.lookup(f"{number:04X}")
            if reg is None:
                continue
            try:
                data = _SPRINGCORE_MODIFIERS[match.group("mod") or "h"](raw, reg)
            except CodecError as exc:
                parsed.fail(line, (section, key), f"register {reg.address} ({reg.name}): {problem_text(reg, exc, raw)}")
                continue
            if not data and reg.size and reg.type not in (RegType.STRING, RegType.BYTES, RegType.URL):
                parsed.blank_fixed.add(reg.name)  # "" erases a fixed-size register: the default applies
                continue
            parsed.store(reg, data, line, (section, key))
    _slot_digests(parsed, doc)


def _esp_value(raw: object, reg: Register) -> bytes:
    if reg.type is RegType.BYTES:
        return _modifier_base64(raw, reg)  # nvs_tool prints blobs as base64
    return codec(reg).encode(reg, raw)


def _parse_esp_nvs(parsed: _Parsed) -> None:
    doc = _load_json(parsed, ESP_NVS_FORMAT)
    if doc is None:
        return
    parsed.firmware = parsed.identity.get("firmware", "")
    entries = doc.get("nvs", {})
    if not isinstance(entries, dict):
        parsed.fail(parsed.key_line("nvs"), ("nvs",), "expected an object of namespace/key: value")
        return
    for key, raw in entries.items():
        line = parsed.key_line(key)
        reg = parsed.lookup(key)
        if reg is None:
            continue
        try:
            data = _esp_value(raw, reg)
        except CodecError as exc:
            parsed.fail(line, ("nvs", key), f"register {reg.address} ({reg.name}): {problem_text(reg, exc, raw)}")
            continue
        parsed.store(reg, data, line, ("nvs", key))
    _slot_digests(parsed, doc)


# ---------------------------------------------------------------------------------------------------------
# AT transcripts (u-blox u-connectXpress, ST SPWF01).


@dataclass
class _AtBlock:
    command: str
    line: int
    responses: list[tuple[int, str]] = field(default_factory=list)
    status: str | None = None


def _at_blocks(parsed: _Parsed, response_comment: re.Pattern[str] | None = None) -> list[_AtBlock]:
    """Split a transcript: a line starting with ``AT`` opens a command; lines up to ``OK``/``ERROR`` are its
    response. Blank lines and ``#`` comments are skipped, except lines matching `response_comment` (the
    SPWF ``#  name = value`` answers); unsolicited ``+WIND:`` lines belong to no command."""
    blocks: list[_AtBlock] = []
    current: _AtBlock | None = None
    for number, raw_line in enumerate(parsed.text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or (line.startswith("#") and not (response_comment and response_comment.fullmatch(line))):
            continue
        if line[:2].upper() == "AT":
            current = _AtBlock(line, number)
            blocks.append(current)
        elif line in ("OK", "ERROR") or line.startswith("ERROR:"):
            if current is None:
                parsed.fail(number, (), f"'{line}' without a command")
            else:
                current.status = "ERROR" if line.startswith("ERROR") else "OK"
                current = None
        elif line.startswith("+WIND:"):
            blocks.append(_AtBlock("", number, [(number, line)], "OK"))
        elif current is None:
            parsed.fail(
                number,
                (),
                f"a response line of {len(line)} characters outside a command (expected a line "
                "starting with AT; the line is not shown: responses may hold secrets)",
            )
        else:
            current.responses.append((number, line))
    if current is not None:
        name = current.command.split("=", 1)[0]  # its parameters may hold a secret: not shown
        parsed.fail(current.line, (), f"command {name!r} has no final OK or ERROR")
    return blocks


def split_at_params(text: str) -> list[str]:
    """Split AT parameters on commas outside double quotes, unquoting each."""
    params: list[str] = []
    buf: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            params.append("".join(buf).strip())
            buf = []
        else:
            buf.append(char)
    params.append("".join(buf).strip())
    return params


def _store_text(parsed: _Parsed, address: str, text: str, line: int) -> None:
    reg = parsed.lookup(address)
    if reg is None:
        return
    try:
        if reg.dump_encoding == "hex-colon" and re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*", text):
            data = codec(reg).canonical(reg, bytes.fromhex(text.replace(":", "")))
        else:
            data = codec(reg).from_text(reg, text)
    except CodecError as exc:
        parsed.fail(line, (address,), f"register {address} ({reg.name}): {problem_text(reg, exc, text)}")
        return
    parsed.store(reg, data, line, (address,))


def _ublox_usecmng(parsed: _Parsed, params: list[str], line: int) -> None:
    if len(params) == 4:  # +USECMNG:<op>,<type>,<name>,<md5> (import / md5 answers)
        params = params[1:]
    if len(params) != 3 or not params[0].isdigit():
        parsed.fail(line, ("USECMNG",), "expected +USECMNG:[<op>,]<type>,<name>,<md5>")
        return
    slot = next((s for s in parsed.model.slots if s.usecmng_type == int(params[0])), None)
    if slot is None:
        parsed.fail(line, ("USECMNG",), f"no slot of the model has +USECMNG type {params[0]}")
        return
    parsed.slots[f"{slot.name}/{params[1]}"] = params[2].upper()


# How many leading numeric parameters of each u-blox response form the register address.
_UBLOX_ADDRESS_ARITY: Mapping[str, int] = MappingProxyType({"UWSC": 2, "UDDRP": 1, "UMSM": 0})


def _parse_ublox(parsed: _Parsed) -> None:
    product = version = ""
    for block in _at_blocks(parsed):
        command = block.command.upper()
        first = block.responses[0][1] if block.responses else ""
        if command == "ATI0":
            product = first.strip('"')
        elif command == "ATI9":
            version = split_at_params(first)[0] if first else ""
        elif command.startswith("AT+USECMNG=4") and block.status == "ERROR":
            params = split_at_params(block.command.split("=", 1)[1])
            slot = next((s for s in parsed.model.slots if len(params) > 2 and str(s.usecmng_type) == params[1]), None)
            if slot is not None:
                parsed.slots[f"{slot.name}/{params[2]}"] = None  # absent on the module
        for line, response in block.responses:
            prefix, _, rest = response.partition(":")
            name = prefix.lstrip("+").upper()
            params = split_at_params(rest)
            if name == "UMLA":
                parsed.identity["wifi_mac"] = params[0]
            elif name == "USECMNG":
                _ublox_usecmng(parsed, params, line)
            elif name in _UBLOX_ADDRESS_ARITY:
                arity = _UBLOX_ADDRESS_ARITY[name]
                address = name + ("=" + ",".join(params[:arity]) if arity else "")
                _store_text(parsed, address, params[arity] if len(params) > arity else "", line)
    parsed.identity.update({k: v for k, v in (("product", product), ("version", version)) if v})
    parsed.firmware = f"{product}/{version}" if product else version


_SPWF_VARIABLE = re.compile(r"#\s+(?P<name>[A-Za-z0-9_]+)\s*=\s*(?P<value>.*)")
_SPWF_POWERON = re.compile(r"\+WIND:1:Poweron \((?P<version>[^)]+)\)")
_SPWF_IDENTITY = ("nv_wifi_macaddr", "nv_model", "nv_serial", "version")


def _parse_spwf(parsed: _Parsed) -> None:
    for block in _at_blocks(parsed, _SPWF_VARIABLE):
        for line, response in block.responses:
            poweron = _SPWF_POWERON.match(response)
            if poweron:
                parsed.firmware = parsed.firmware or poweron.group("version")
                continue
            match = _SPWF_VARIABLE.fullmatch(response)
            if not match:
                continue
            name, value = match.group("name"), match.group("value").strip()
            if name in _SPWF_IDENTITY:
                parsed.identity[name] = value
                if name == "version":
                    parsed.firmware = value
                continue
            _store_text(parsed, name, value, line)


_PARSERS: Mapping[Adapter, Callable[[_Parsed], None]] = MappingProxyType(
    {
        Adapter.SPRINGCORE: _parse_springcore,
        Adapter.UBLOX_AT: _parse_ublox,
        Adapter.SPWF_AT: _parse_spwf,
        Adapter.ESP_NVS: _parse_esp_nvs,
    }
)


# ---------------------------------------------------------------------------------------------------------
# Entry points.


def _read_source(source: str | Path, name: str | None) -> tuple[str, str]:
    if isinstance(source, Path) or ("\n" not in source and len(source) < 4096 and Path(source).is_file()):
        path = Path(source)
        return path.read_text(encoding="utf-8"), name or str(path)
    return source, name or "<dump>"


def read_dump(
    source: str | Path, model: DeviceModel, *, expected_id: str | None = None, name: str | None = None
) -> tuple[DeviceDump | None, list[Problem]]:
    """Parse a dump (a path, or the text itself) for `model`.

    Returns the dump (None if anything is wrong) and every problem with ``file:line``. R10: the identity
    field the model names must be present and, when `expected_id` is given, equal the device key (compared
    in the adapter's normal form: serials upper-case, MACs as ``XX-XX-XX-XX-XX-XX``); the firmware must
    match the model's `firmware_match`."""
    text, label = _read_source(source, name)
    parsed = _Parsed(label, text, model)
    _PARSERS[model.adapter](parsed)
    identity = parsed.identity.get(model.identity)
    normal = model.rules.identity
    if identity is None:
        parsed.fail(
            None, ("identity",), f"the dump does not report {model.identity}, the identity of model {model.name}"
        )
    elif expected_id is not None and normal(identity) != normal(expected_id):
        parsed.fail(None, ("identity",), f"{model.identity} {identity} does not match device {expected_id}")
    if not model.firmware_matches(parsed.firmware):
        parsed.fail(
            None,
            ("firmware",),
            f"firmware {parsed.firmware!r} does not match model {model.name} (expected {model.firmware_match!r})",
        )
    if parsed.problems or identity is None:
        return None, parsed.problems
    assumed = frozenset(r.name for r in model.registers if r.readable and r.name not in parsed.values)
    dump = DeviceDump(
        device_id=normal(identity),
        model=model.name,
        identity=MappingProxyType(dict(parsed.identity)),
        firmware=parsed.firmware,
        values=MappingProxyType(dict(parsed.values)),
        slots=MappingProxyType(dict(parsed.slots)),
        assumed_default=assumed,
        source=label,
        unknown=tuple(sorted(set(parsed.unknown))),
    )
    return dump, []


def parse_dump(
    source: str | Path, model: DeviceModel, *, expected_id: str | None = None, name: str | None = None
) -> DeviceDump:
    """`read_dump` that raises `DumpError` carrying every problem."""
    dump, problems = read_dump(source, model, expected_id=expected_id, name=name)
    if dump is None:
        raise DumpError(problems)
    return dump
