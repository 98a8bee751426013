"""Value codecs: typed values ↔ canonical register bytes.

Why: a desired value (``{network: mqtt_client, primary: smartreader}``, ``192.168.5.152``, ``"5614030A1E1E"``)
and a dumped value (``"64"``, ``+UWSC:0,101,192.168.5.152``, ``{"aws/port": 8883}``) only compare once both
are in one canonical form. That form is bytes for every type (R4); each type states, in one `Codec` class
registered in `CODECS`, how to encode, decode, display and read/write the AT text form, and what it
rejects, with a message that names the expected range or choices. Bitfields add read-modify-write (R3).
"""

from __future__ import annotations

import binascii
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .problems import did_you_mean
from .regmap import FIXED_SIZE_TYPES, FieldSpec, FieldType, Register, RegType, int_bits


class CodecError(ValueError):
    """A value does not fit its register or field. The message is user-facing and complete."""


def problem_text(reg: Any, exc: Exception, value: object, sensitive: bool = False) -> str:
    """A CodecError's message for a user, or, for a sensitive register (or a value holding a secret), what was
    found without the value: codec messages quote the value they refuse (issue 13.1)."""
    if not (sensitive or getattr(reg, "sensitive", False)):
        return str(exc)
    size = len(value) if isinstance(value, (str, bytes)) else None
    what = f"a value of {size} character(s)" if size is not None else f"a {type(value).__name__} value"
    kind = getattr(getattr(reg, "type", None), "value", "its type")
    return f"{what} that is not a valid {kind} (the value is sensitive and not shown)"


_HEX = re.compile(r"[0-9A-Fa-f]*")


def parse_hex(text: str) -> bytes:
    """Hex text (any case, optional ``0x``) → bytes; raises CodecError."""
    cleaned = text.strip().removeprefix("0x").removeprefix("0X")
    if len(cleaned) % 2 or not _HEX.fullmatch(cleaned):
        raise CodecError(f"raw value {text!r} is not an even number of hex digits")
    return binascii.unhexlify(cleaned)


def to_hex(data: bytes) -> str:
    return data.hex().upper()


def _int_value(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        raise CodecError(f"expected an integer for {what}, got {value!r}")
    return value


def _check_range(number: int, limit: int, label: str) -> None:
    if not 0 <= number <= limit:
        raise CodecError(f"value {number} does not fit {label} (0..{limit})")


def _check_size(data: bytes, reg: Register) -> bytes:
    if reg.type in FIXED_SIZE_TYPES or reg.fixed:
        if len(data) != reg.size:
            raise CodecError(f"value is {len(data)} bytes; register {reg.name} holds exactly {reg.size}")
    elif len(data) > reg.size:
        raise CodecError(f"value is {len(data)} bytes, longer than the register's {reg.size}")
    return data


class Codec:
    """One register type. `encode` takes a typed value (never raw hex: see `encode_value`) and returns
    canonical bytes; `decode` is its inverse; `canonical` normalises bytes read from a dump; `from_text` and
    `to_text` convert the AT/transcript text form."""

    def encode(self, reg: Register, value: object) -> bytes:
        raise NotImplementedError

    def decode(self, reg: Register, data: bytes) -> object:
        return to_hex(data)

    def display(self, reg: Register, data: bytes) -> str:
        return str(self.decode(reg, data))

    def canonical(self, reg: Register, data: bytes) -> bytes:
        return _check_size(data, reg)

    def from_text(self, reg: Register, text: str) -> bytes:
        return self.canonical(reg, parse_hex(text))

    def to_text(self, reg: Register, data: bytes) -> str:
        return to_hex(data)


class IntCodec(Codec):
    def encode(self, reg: Register, value: object) -> bytes:
        number = _int_value(value, reg.name)
        bits = min(int_bits(reg.type.value) or 32, 8 * reg.size)
        _check_range(number, (1 << bits) - 1, reg.type.value)
        return number.to_bytes(reg.size, "big")

    def decode(self, reg: Register, data: bytes) -> object:
        return int.from_bytes(data, "big")

    def from_text(self, reg: Register, text: str) -> bytes:
        if not text.strip().isdigit():
            raise CodecError(f"{text!r} is not a decimal integer")
        return self.encode(reg, int(text))

    def to_text(self, reg: Register, data: bytes) -> str:
        return str(int.from_bytes(data, "big"))


class BoolCodec(IntCodec):
    _WORDS: Mapping[str, bool] = MappingProxyType({"true": True, "false": False, "1": True, "0": False})

    def encode(self, reg: Register, value: object) -> bytes:
        if isinstance(value, bool):
            return int(value).to_bytes(reg.size, "big")
        if value in (0, 1):
            return int(str(value)).to_bytes(reg.size, "big")
        raise CodecError(f"value {value!r} is not a boolean (true/false or 1/0)")

    def decode(self, reg: Register, data: bytes) -> object:
        number = int.from_bytes(data, "big")
        return {0: False, 1: True}.get(number, f"raw:{number}")

    def display(self, reg: Register, data: bytes) -> str:
        value = self.decode(reg, data)
        return str(value).lower() if isinstance(value, bool) else str(value)

    def from_text(self, reg: Register, text: str) -> bytes:
        word = text.strip().lower()
        if word not in self._WORDS:
            raise CodecError(f"{text!r} is not a boolean (0/1)")
        return self.encode(reg, self._WORDS[word])


class EnumCodec(IntCodec):
    """Names ↔ integers. Unknown integers read from a device decode as ``raw:<n>`` (never mapped)."""

    def encode(self, reg: Register, value: object) -> bytes:
        return enum_number(reg.values, value, reg.name, 8 * reg.size).to_bytes(reg.size, "big")

    def decode(self, reg: Register, data: bytes) -> object:
        return enum_name(reg.values, int.from_bytes(data, "big"))

    def from_text(self, reg: Register, text: str) -> bytes:
        if not text.strip().isdigit():
            raise CodecError(f"{text!r} is not a decimal integer")
        number = int(text)
        _check_range(number, (1 << (8 * reg.size)) - 1, f"{8 * reg.size} bits")
        return number.to_bytes(reg.size, "big")


class BytesCodec(Codec):
    def encode(self, reg: Register, value: object) -> bytes:
        if isinstance(value, bytes):
            return _check_size(value, reg)
        if isinstance(value, str):
            return _check_size(parse_hex(value), reg)
        raise CodecError(f"expected hex text, got {value!r}")


class StringCodec(Codec):
    """Text stored unpadded (SpringCore): trailing NULs read from a dump are stripped; ``""`` is blank."""

    def encode(self, reg: Register, value: object) -> bytes:
        if not isinstance(value, str):
            raise CodecError(f"expected text, got {value!r}")
        if "\x00" in value:
            raise CodecError("text must not contain NUL characters")
        data = value.encode("utf-8")
        if len(data) > reg.size:
            raise CodecError(f"value is {len(data)} bytes, longer than the register's {reg.size}")
        return data

    def decode(self, reg: Register, data: bytes) -> object:
        return data.decode("utf-8", errors="backslashreplace")

    def canonical(self, reg: Register, data: bytes) -> bytes:
        return _check_size(data.rstrip(b"\x00"), reg)

    def from_text(self, reg: Register, text: str) -> bytes:
        return self.canonical(reg, text.encode("utf-8"))

    def to_text(self, reg: Register, data: bytes) -> str:
        return data.decode("utf-8", errors="backslashreplace")


def _ipv4(value: object, what: str) -> bytes:
    try:
        return ipaddress.IPv4Address(str(value).strip()).packed
    except ValueError:
        raise CodecError(f"{what}: {value!r} is not an IPv4 address (a.b.c.d)") from None


class Ipv4Codec(Codec):
    def encode(self, reg: Register, value: object) -> bytes:
        return _ipv4(value, reg.name)

    def decode(self, reg: Register, data: bytes) -> object:
        return str(ipaddress.IPv4Address(data))

    def from_text(self, reg: Register, text: str) -> bytes:
        return _ipv4(text, reg.name)

    def to_text(self, reg: Register, data: bytes) -> str:
        return str(ipaddress.IPv4Address(data))


class Ipv4ListCodec(Codec):
    """Named IPv4 items, 4 bytes each in `items` order; items missing from the desired value are 0.0.0.0."""

    def encode(self, reg: Register, value: object) -> bytes:
        if isinstance(value, list):
            if len(value) > len(reg.items):
                raise CodecError(f"{len(value)} addresses given; {reg.name} holds {len(reg.items)}")
            value = dict(zip(reg.items, value, strict=False))
        if not isinstance(value, Mapping):
            raise CodecError(f"expected a mapping of {', '.join(reg.items)}, got {value!r}")
        unknown = [k for k in value if k not in reg.items]
        if unknown:
            raise CodecError(
                f"unknown item '{unknown[0]}'{did_you_mean(str(unknown[0]), reg.items)} "
                f"(expected: {', '.join(reg.items)})"
            )
        return b"".join(_ipv4(value.get(item, "0.0.0.0"), f"{reg.name}.{item}") for item in reg.items)

    def decode(self, reg: Register, data: bytes) -> object:
        return {item: str(ipaddress.IPv4Address(data[4 * i : 4 * i + 4])) for i, item in enumerate(reg.items)}

    def display(self, reg: Register, data: bytes) -> str:
        decoded = self.decode(reg, data)
        assert isinstance(decoded, dict)
        return " ".join(f"{k}={v}" for k, v in decoded.items())


@dataclass(frozen=True)
class Url:
    """A parsed URL. Equality ignores query-key order (R4): `canonical_text` puts declared params first."""

    scheme: str
    host: str
    port: int | None
    query: tuple[tuple[str, str], ...]

    def text(self, order: tuple[str, ...] = ()) -> str:
        rank = {key: i for i, key in enumerate(order)}
        pairs = sorted(self.query, key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
        port = f":{self.port}" if self.port is not None else ""
        query = "&".join(f"{k}={v}" for k, v in pairs)
        return f"{self.scheme}://{self.host}{port}/" + (f"?{query}" if query else "")


_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>[^:/?]+)(?::(?P<port>\d+))?"
    r"(?P<path>/[^?]*)?(?:\?(?P<query>.*))?",
    re.S,
)


def parse_url(text: str) -> Url:
    """Parse without percent-decoding or ``#`` fragments: MQTT topics carry ``+``, ``#``, ``?`` and ``$``."""
    match = _URL.fullmatch(text.strip().strip('"'))
    if not match:
        raise CodecError(f"{text!r} is not a URL of the form scheme://host:port/?key=value")
    query: list[tuple[str, str]] = []
    for part in (match.group("query") or "").split("&"):
        part = part.strip()
        if part:
            key, _, value = part.partition("=")
            query.append((key.strip(), value.strip()))
    port = int(match.group("port")) if match.group("port") else None
    return Url(match.group("scheme").lower(), match.group("host").lower(), port, tuple(query))


class UrlCodec(Codec):
    def encode(self, reg: Register, value: object) -> bytes:
        if value == "":
            return b""
        if isinstance(value, Mapping):
            url = _url_from_mapping(reg, value)
        elif isinstance(value, str):
            url = parse_url(value)
        else:
            raise CodecError(f"expected a URL or {{host, port, query}}, got {value!r}")
        if reg.scheme and url.scheme != reg.scheme:
            raise CodecError(f"scheme '{url.scheme}' is not '{reg.scheme}'")
        keys = [k for k, _ in url.query]
        for key in keys:
            if reg.params and key not in reg.params:
                raise CodecError(
                    f"unknown query key '{key}'{did_you_mean(key, reg.params)} "
                    f"(expected one of: {', '.join(reg.params)})"
                )
        if len(set(keys)) != len(keys):
            raise CodecError("a query key appears twice")
        return self.canonical(reg, url.text(reg.params).encode("utf-8"))

    def decode(self, reg: Register, data: bytes) -> object:
        return data.decode("utf-8", errors="backslashreplace")

    def canonical(self, reg: Register, data: bytes) -> bytes:
        if not data:
            return data
        url = parse_url(data.decode("utf-8", errors="backslashreplace"))
        return _check_size(url.text(reg.params).encode("utf-8"), reg)

    def from_text(self, reg: Register, text: str) -> bytes:
        return self.canonical(reg, text.strip().strip('"').encode("utf-8"))

    def to_text(self, reg: Register, data: bytes) -> str:
        return data.decode("utf-8", errors="backslashreplace")


def _url_from_mapping(reg: Register, value: Mapping[str, Any]) -> Url:
    unknown = [k for k in value if k not in ("scheme", "host", "port", "query")]
    if unknown:
        raise CodecError(f"unknown URL part '{unknown[0]}' (expected scheme, host, port, query)")
    if not isinstance(value.get("host"), str):
        raise CodecError("a URL mapping needs `host`")
    query = value.get("query") or {}
    if not isinstance(query, Mapping):
        raise CodecError("`query` must be a mapping")
    port = value.get("port")
    return Url(
        str(value.get("scheme") or reg.scheme or "").lower(),
        value["host"].lower(),
        None if port is None else _int_value(port, "port"),
        tuple((str(k), _query_text(v)) for k, v in query.items()),
    )


def _query_text(value: object) -> str:
    """Query values compare as strings: ``encr: 3`` equals ``encr=3``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class BitfieldCodec(Codec):
    """A whole-register value; `encode` takes a mapping of fields and applies it over the default (R3)."""

    def encode(self, reg: Register, value: object) -> bytes:
        if not isinstance(value, Mapping):
            raise CodecError(
                f"expected a mapping of fields ({', '.join(f.name for f in reg.settable_fields)})"
                f" or raw hex, got {value!r}"
            )
        return apply_fields(reg, reg.default, encode_fields(reg, value))

    def decode(self, reg: Register, data: bytes) -> object:
        number = int.from_bytes(data, "big")
        return {f.name: field_decode(f, (number & f.mask) >> f.shift) for f in reg.settable_fields}


CODECS: Mapping[RegType, Codec] = MappingProxyType(
    {
        RegType.U8: IntCodec(),
        RegType.U16: IntCodec(),
        RegType.U32: IntCodec(),
        RegType.BOOL: BoolCodec(),
        RegType.ENUM: EnumCodec(),
        RegType.BITFIELD: BitfieldCodec(),
        RegType.BYTES: BytesCodec(),
        RegType.STRING: StringCodec(),
        RegType.IPV4: Ipv4Codec(),
        RegType.IPV4_LIST: Ipv4ListCodec(),
        RegType.URL: UrlCodec(),
    }
)

# Types where a bare hex string is raw bytes. Never integers ("8883" is decimal), enums, text, URLs or IPs.
_BARE_HEX_TYPES = frozenset({RegType.BITFIELD, RegType.BYTES, RegType.IPV4_LIST})


def codec(reg: Register) -> Codec:
    return CODECS[reg.type]


def is_raw(reg: Register, value: object) -> bool:
    """True for ``{raw: hex}`` on any register, and for bare hex text on bitfield, bytes and ipv4_list
    registers (whose size is then checked like any raw value)."""
    if isinstance(value, Mapping):
        return set(value) == {"raw"}
    if not isinstance(value, str) or reg.type not in _BARE_HEX_TYPES:
        return False
    text = value.strip().removeprefix("0x")
    return bool(text) and len(text) % 2 == 0 and bool(_HEX.fullmatch(text))


def raw_bytes(reg: Register, value: object) -> bytes:
    """The bytes of a raw value (``{raw: hex}`` or bare hex), size-checked and canonical."""
    text = value["raw"] if isinstance(value, Mapping) else value
    if not isinstance(text, str):
        raise CodecError(f"raw value must be hex text, got {text!r}")
    return codec(reg).canonical(reg, parse_hex(text))


def encode_value(reg: Register, value: object) -> bytes:
    """Any accepted spelling of a register value (typed, ``{raw: hex}`` or bare hex) → canonical bytes."""
    if is_raw(reg, value):
        return raw_bytes(reg, value)
    return codec(reg).encode(reg, value)


def display(reg: Register, data: bytes) -> str:
    """Human form for plans: enum names, dotted quads, text; bitfields and bytes as uppercase hex."""
    if reg.type is RegType.BITFIELD:
        return to_hex(data)
    return codec(reg).display(reg, data)


# ---------------------------------------------------------------------------------------------------------
# Enums and bitfield fields.


def enum_number(values: Mapping[str, int], value: object, what: str, bits: int) -> int:
    if isinstance(value, str):
        if value in values:
            return values[value]
        raise CodecError(
            f"unknown enum name {value!r} (expected one of: {', '.join(values)}){did_you_mean(value, values)}"
        )
    number = _int_value(value, what)
    if number not in values.values():
        _check_range(number, (1 << bits) - 1, f"{bits} bits")
        choices = ", ".join(f"{k}={v}" for k, v in values.items())
        raise CodecError(f"value {number} is not a declared value (expected one of: {choices})")
    return number


def enum_name(values: Mapping[str, int], number: int) -> str:
    for label, candidate in values.items():
        if candidate == number:
            return label
    return f"raw:{number}"


def field_encode(spec: FieldSpec, value: object) -> int:
    """A field value (bool, enum name or integer) → the integer under the mask; range-checked."""
    if spec.type is FieldType.BOOL:
        if isinstance(value, bool) or value in (0, 1):
            return int(bool(value))
        raise CodecError(f"field {spec.name}: value {value!r} is not a boolean (true/false)")
    if spec.type is FieldType.ENUM:
        try:
            return enum_number(spec.values, value, spec.name, spec.width)
        except CodecError as exc:
            raise CodecError(f"field {spec.name}: {exc}") from None
    number = _int_value(value, f"field {spec.name}")
    if not 0 <= number <= spec.max_value:
        raise CodecError(f"field {spec.name}: value {number} does not fit {spec.width} bits (0..{spec.max_value})")
    return number


def field_decode(spec: FieldSpec, number: int) -> object:
    if spec.type is FieldType.BOOL:
        return bool(number)
    if spec.type is FieldType.ENUM:
        return enum_name(spec.values, number)
    return number


def encode_fields(reg: Register, value: Mapping[str, Any]) -> dict[str, int]:
    """Validate a partial mapping of bitfield fields; returns field name → integer (unknown names raise)."""
    names = [f.name for f in reg.settable_fields]
    out: dict[str, int] = {}
    for name, item in value.items():
        spec = reg.field(str(name))
        if spec is None or spec.reserved is not None:
            raise CodecError(
                f"unknown field '{name}'{did_you_mean(str(name), names)} (expected one of: {', '.join(names)})"
            )
        out[spec.name] = field_encode(spec, item)
    return out


def apply_fields(reg: Register, base: bytes, fields: Mapping[str, int]) -> bytes:
    """R3 read-modify-write: the given fields overwrite their bits of `base`, other bits keep `base`,
    reserved fields are forced to their declared value."""
    number = int.from_bytes(base or reg.default, "big")
    for spec in reg.fields:
        if spec.reserved is not None:
            number = (number & ~spec.mask) | ((spec.reserved << spec.shift) & spec.mask)
        elif spec.name in fields:
            number = (number & ~spec.mask) | ((fields[spec.name] << spec.shift) & spec.mask)
    return number.to_bytes(reg.size, "big")


def read_field(reg: Register, data: bytes, name: str) -> object:
    """The decoded value of one field of a bitfield register's bytes."""
    spec = reg.field(name)
    if spec is None:
        raise KeyError(name)
    return field_decode(spec, (int.from_bytes(data, "big") & spec.mask) >> spec.shift)
