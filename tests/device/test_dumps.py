"""Dump parsers: every shape, every modifier, both +USECMNG answers, and problems naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.providers.device import DeviceModel, DumpError, parse_dump, read_dump

from .helpers import DUMPS, REPO

SP_DEVICE = {"Firmware": "SpringCore/E518/SpringPark", "SerialNumber": "DA1275B0"}


def sp_dump(config: dict[str, object], **extra: object) -> str:
    return json.dumps(
        {"format": "fleetctl.springcore-dump/v1", "device": SP_DEVICE, "config": config} | extra, indent=2
    )


@pytest.mark.parametrize(
    ("name", "model", "device_id"),
    [
        ("DA1275B0.json", "springcard-springpark", "DA1275B0"),
        ("DA1275B1.json", "springcard-springpark", "DA1275B1"),
        ("DA1275B2.json", "springcard-springpark", "DA1275B2"),
        ("nina-D4-CA-6E-0A-1B-2C.at", "ublox-nina-w13", "D4-CA-6E-0A-1B-2C"),
        ("spwf-00-80-E1-B7-3C-21.at", "st-spwf01", "00-80-E1-B7-3C-21"),
        ("24-0A-C4-5F-12-9C.json", "esp32-nvs", "24-0A-C4-5F-12-9C"),
    ],
)
def test_fleet_dumps_parse(models: dict[str, DeviceModel], name: str, model: str, device_id: str) -> None:
    dump = parse_dump(DUMPS / name, models[model], expected_id=device_id)
    assert dump.device_id == device_id and dump.model == model and dump.unknown == ()
    readme = (REPO / "fleet" / "devices" / "README.md").read_text()
    assert f"`fleet/dumps/{name}`" in readme


def test_every_fleet_dump_is_covered() -> None:
    names = sorted(p.name for p in DUMPS.iterdir())
    assert names == sorted(
        [
            "DA1275B0.json",
            "DA1275B1.json",
            "DA1275B2.json",
            "nina-D4-CA-6E-0A-1B-2C.at",
            "spwf-00-80-E1-B7-3C-21.at",
            "24-0A-C4-5F-12-9C.json",
        ]
    )


def test_springcore_factory_values(models: dict[str, DeviceModel]) -> None:
    dump = parse_dump(DUMPS / "DA1275B0.json", models["springcard-springpark"])
    assert dump.values["profile"] == b"\x00"
    assert dump.values["mqtt_client_options"].hex().upper() == "5314030A1E1E"
    assert dump.values["mqtt_topic_prefix"] == b"springcard/springcore"
    assert dump.values["mqtt_broker"] == b""
    assert dump.identity["SerialNumber"] == "DA1275B0" and dump.firmware == "SpringCore/E518/SpringPark"
    assert dump.assumed_default == {"ipv6"}  # readable registers the dump lacks (R2)
    assert "admin_password" not in dump.values  # unreadable: never taken from a dump


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("C0", "64", b"\x64"),
        ("02C0", "64", b"\x64"),
        ("c0", "64", b"\x64"),
        ("C0.h", "64", b"\x64"),
        ("C0.i", 100, b"\x64"),
        ("C0.b", True, b"\x01"),
        ("C0.64", "ZA==", b"\x64"),
        ("89", "5614030a1e1e", bytes.fromhex("5614030A1E1E")),
        ("86.s", "broker.example", b"broker.example"),
        ("0286", "62726F6B65720000", b"broker"),  # trailing NULs of a string are stripped
        ("86", "", b""),
    ],
)
def test_springcore_keys_and_modifiers(
    models: dict[str, DeviceModel], key: str, value: object, expected: bytes
) -> None:
    model = models["springcard-springpark"]
    dump = parse_dump(sp_dump({key: value}), model)
    address = key.split(".")[0].upper()
    reg = model.by_address(address if len(address) == 4 else "02" + address)
    assert reg is not None and dump.values[reg.name] == expected


def test_springcore_blank_fixed_register_is_default(models: dict[str, DeviceModel]) -> None:
    dump = parse_dump(sp_dump({"C0": ""}), models["springcard-springpark"])
    assert "profile" not in dump.values and "profile" in dump.assumed_default


def test_springcore_unknown_address_is_noted(models: dict[str, DeviceModel]) -> None:
    dump = parse_dump(sp_dump({"F0": "00000000"}, templates={"10": "12345678"}), models["springcard-springpark"])
    assert dump.unknown == ("02F0", "0310")


@pytest.mark.parametrize(
    ("config", "line", "message"),
    [
        ({"C0": "64", "02C0": "65"}, 9, "register 02C0 (profile) appears twice"),
        ({"C0": "6"}, 8, "register 02C0 (profile): raw value '6' is not an even number of hex digits"),
        ({"C0": "6464"}, 8, "register 02C0 (profile): value is 2 bytes; register profile holds exactly 1"),
        ({"0380": "00"}, 8, "address 0380 is not in bank 02 (config)"),
        ({"C0.x": "00"}, 8, "'C0.x' is not a register address"),
        ({"C0.i": "100"}, 8, "expected an integer that fits 1 bytes"),
        ({"86.s": "x" * 49}, 8, "value is 49 bytes, longer than the register's 48"),
    ],
)
def test_springcore_problems_name_file_and_line(
    models: dict[str, DeviceModel], tmp_path: Path, config: dict[str, object], line: int, message: str
) -> None:
    path = tmp_path / "DA1275B0.json"
    path.write_text(sp_dump(config))
    dump, problems = read_dump(path, models["springcard-springpark"])
    assert dump is None
    assert [p.location for p in problems] == [f"{path}:{line}"], problems
    assert message in problems[0].message


def test_invalid_json_names_line(models: dict[str, DeviceModel]) -> None:
    with pytest.raises(DumpError) as caught:
        parse_dump('{\n  "config": {\n    "C0": "00",\n  }\n}\n', models["springcard-springpark"], name="x.json")
    assert caught.value.problems[0].location == "x.json:4"
    assert "invalid JSON" in str(caught.value)


def test_duplicate_json_key(models: dict[str, DeviceModel]) -> None:
    text = '{"device": {"SerialNumber": "A"},\n "config": {"C0": "00",\n "C0": "64"}}'
    _, problems = read_dump(text, models["springcard-springpark"], name="d.json")
    assert problems[0].message == "duplicate key 'C0'" and problems[0].location == "d.json:2"


@pytest.mark.parametrize(
    ("device", "expected_id", "message"),
    [
        (
            {"Firmware": "SpringCore/E518/SpringPark", "SerialNumber": "DA1275B1"},
            "DA1275B0",
            "SerialNumber DA1275B1 does not match device DA1275B0",
        ),
        (
            {"Firmware": "SpringCore/E518/Puck", "SerialNumber": "DA1275B0"},
            "DA1275B0",
            "firmware 'SpringCore/E518/Puck' does not match model springcard-springpark "
            "(expected 'SpringCore/*/SpringPark')",
        ),
        (
            {"Firmware": "SpringCore/E518/SpringPark"},
            None,
            "the dump does not report SerialNumber, the identity of model springcard-springpark",
        ),
    ],
)
def test_r10_identity_and_firmware(
    models: dict[str, DeviceModel], device: dict[str, str], expected_id: str | None, message: str
) -> None:
    text = json.dumps({"format": "fleetctl.springcore-dump/v1", "device": device, "config": {}})
    _, problems = read_dump(text, models["springcard-springpark"], expected_id=expected_id, name="d.json")
    assert [p.message for p in problems] == [message]


def test_identity_compared_in_normal_form(models: dict[str, DeviceModel]) -> None:
    text = json.dumps({"format": "fleetctl.springcore-dump/v1", "device": SP_DEVICE, "config": {}})
    assert parse_dump(text, models["springcard-springpark"], expected_id="da1275b0").device_id == "DA1275B0"


def test_wrong_format(models: dict[str, DeviceModel]) -> None:
    text = json.dumps({"format": "fleetctl.esp-nvs-dump/v1", "device": SP_DEVICE})
    _, problems = read_dump(text, models["springcard-springpark"])
    assert "unknown dump format 'fleetctl.esp-nvs-dump/v1'" in problems[0].message


NINA_HEAD = 'ATI0\nNINA-W132-04B-00\nOK\nATI9\n"3.1.0-025","x"\nOK\nAT+UMLA=2\n+UMLA:D4CA6E0A1B2C\nOK\n'


@pytest.mark.parametrize(
    "answer",
    [
        '+USECMNG:4,0,"AmazonRootCA1.pem","7095142f080d1d25221eec161ff14223"',  # op,type,name,md5
        '+USECMNG:0,"AmazonRootCA1.pem","7095142F080D1D25221EEC161FF14223"',  # type,name,md5 (driver shape)
        "+USECMNG:0,AmazonRootCA1.pem,7095142F080D1D25221EEC161FF14223",  # quotes are optional
    ],
)
def test_ublox_usecmng_shapes(models: dict[str, DeviceModel], answer: str) -> None:
    text = NINA_HEAD + f'AT+USECMNG=4,0,"AmazonRootCA1.pem"\n{answer}\nOK\n'
    dump = parse_dump(text, models["ublox-nina-w13"])
    assert dump.slots == {"ca/AmazonRootCA1.pem": "7095142F080D1D25221EEC161FF14223"}


def test_ublox_transcript(models: dict[str, DeviceModel]) -> None:
    dump = parse_dump(DUMPS / "nina-D4-CA-6E-0A-1B-2C.at", models["ublox-nina-w13"])
    assert dump.firmware == "NINA-W132-04B-00/3.1.0-025"
    assert dump.identity["wifi_mac"] == "D4CA6E0A1B2C"
    assert dump.slots["cert/nina-cert.pem"] is None and dump.slots["key/nina-key.pem"] is None  # ERROR = absent
    assert dump.values["wifi.auth"] == b"\x01" and dump.values["wifi.ipv4_mode"] == b"\x02"
    assert dump.values["mqtt.peer"] == b"" and dump.values["start_mode"] == b"\x00"
    assert dump.assumed_default == set()


def test_ublox_values_and_unreadable(models: dict[str, DeviceModel]) -> None:
    text = NINA_HEAD + (
        'AT+UWSC=0\n+UWSC:0,2,"lab, 2nd floor"\n+UWSC:0,8,"leaked?"\n+UWSC:0,101,192.168.0.10\nOK\n'
        'AT+UDDRP=0\n+UDDRP:0,"mqtt://H.example:8883/?encr=3&ca=ca.pem",2\nOK\n'
        "AT+UMSM?\n+UMSM:1\nOK\n"
    )
    dump = parse_dump(text, models["ublox-nina-w13"])
    assert dump.values["wifi.ssid"] == b"lab, 2nd floor"
    assert "wifi.psk" not in dump.values  # readable: false — the answer is ignored
    assert dump.values["mqtt.peer"] == b"mqtt://h.example:8883/?ca=ca.pem&encr=3"
    assert dump.values["start_mode"] == b"\x01"


@pytest.mark.parametrize(
    ("tail", "line", "message"),
    [
        ("AT+UWSC=0\n+UWSC:0,5,x\nOK\n", 11, "register UWSC=0,5 (wifi.auth): 'x' is not a decimal integer"),
        ("AT+UMSM?\n+UMSM:0\n", 10, "command 'AT+UMSM?' has no final OK or ERROR"),
        ("+UMSM:0\n", 10, "a response line of 7 characters outside a command"),
        ('AT+USECMNG=4,7,x\n+USECMNG:4,7,"x","00"\nOK\n', 11, "no slot of the model has +USECMNG type 7"),
    ],
)
def test_ublox_problems(models: dict[str, DeviceModel], tail: str, line: int, message: str) -> None:
    _, problems = read_dump(NINA_HEAD + tail, models["ublox-nina-w13"], name="nina.at")
    assert [p.location for p in problems] == [f"nina.at:{line}"]
    assert message in problems[0].message


def test_ublox_firmware_mismatch(models: dict[str, DeviceModel]) -> None:
    _, problems = read_dump(NINA_HEAD.replace("NINA-W132", "ODIN-W262"), models["ublox-nina-w13"])
    assert "does not match model ublox-nina-w13" in problems[0].message


def test_spwf_transcript(models: dict[str, DeviceModel]) -> None:
    dump = parse_dump(DUMPS / "spwf-00-80-E1-B7-3C-21.at", models["st-spwf01"])
    assert dump.firmware == "170111-665d284-SPWF01S"
    assert dump.values["wifi_ssid"] == b"TPNY"  # hex-colon read-back, NUL padding stripped
    assert dump.values["ip_ipaddr"] == bytes([192, 168, 0, 102])
    assert dump.slots == {}  # TLS slots are never read back on SPWF01
    assert "tls_domain" not in dump.assumed_default  # unreadable: R7, not R2


def test_spwf_error_lines(models: dict[str, DeviceModel]) -> None:
    text = (
        "+WIND:1:Poweron (170111-665d284-SPWF01S)\nAT+S.GCFG=nv_wifi_macaddr\n#  nv_wifi_macaddr = "
        "00:80:E1:B7:3C:21\nOK\nAT+S.SOCKON=api.amazon.com,443,s,ind\nERROR: Unable to load CA certificate\n"
        "AT+S.GCFG=ip_use_dhcp\n#  ip_use_dhcp = 2\nOK\n"
    )
    _, problems = read_dump(text, models["st-spwf01"], name="s.at")
    assert [(p.location, p.message) for p in problems] == [
        ("s.at:8", "register ip_use_dhcp (ip_use_dhcp): '2' is not a boolean (0/1)")
    ]


def test_esp_nvs(models: dict[str, DeviceModel]) -> None:
    dump = parse_dump(DUMPS / "24-0A-C4-5F-12-9C.json", models["esp32-nvs"], expected_id="240ac45f129c")
    assert dump.values == {"mqtt_port": (8883).to_bytes(2, "big"), "wifi_ssid": b"factory-test"}
    assert dump.slots == {"ca": None, "cert": None, "key": None}
    text = json.dumps(
        {
            "format": "fleetctl.esp-nvs-dump/v1",
            "device": {"mac": "24:0A:C4:5F:12:9C"},
            "nvs": {"aws/port": "x", "aws/thing": 5},
            "slots": {"ca": "nope"},
        },
        indent=1,
    )
    _, problems = read_dump(text, models["esp32-nvs"], name="e.json")
    assert [p.path for p in problems] == [("nvs", "aws/port"), ("nvs", "aws/thing"), ("slots", "ca")]


def test_transcript_comments_and_crlf(models: dict[str, DeviceModel]) -> None:
    text = "# note = read on the bench\r\n" + NINA_HEAD.replace("\n", "\r\n") + "# expect: OK\r\n"
    assert parse_dump(text, models["ublox-nina-w13"]).device_id == "D4-CA-6E-0A-1B-2C"
